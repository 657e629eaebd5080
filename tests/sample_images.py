"""Files that exercise the loader and the folder walk: corrupt, 16-bit, RGBA, grayscale JPEG, a
portrait EXIF JPEG, and folders too deep to read, for the batch runner and segviewer-predict
tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image


def write_mixed_folder(folder: Path) -> list[Path]:
    """A corrupt PNG, a 16-bit PNG, an RGBA PNG, a grayscale JPEG and a portrait EXIF JPEG (in a
    subfolder). Returns the four good files."""
    rng = np.random.default_rng(7)
    (folder / "phone").mkdir(parents=True)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    deep = rng.integers(0, 65536, size=(24, 32), dtype=np.uint16)
    Image.frombytes("I;16", (32, 24), deep.astype("<u2").tobytes()).save(folder / "deep16.png")
    rgba = rng.integers(0, 256, size=(20, 30, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    gray = rng.integers(0, 256, size=(18, 26), dtype=np.uint8)
    Image.fromarray(gray, "L").save(folder / "gray.jpg", quality=90)
    landscape = Image.fromarray(rng.integers(0, 256, size=(16, 28, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display -> 28 x 16 portrait
    landscape.save(folder / "phone" / "portrait.jpg", exif=exif, quality=90)
    return [folder / "deep16.png", folder / "rgba.png", folder / "gray.jpg",
            folder / "phone" / "portrait.jpg"]


def deeper_than_path_max(folder: Path) -> Path:
    """Folders nested until a path to them is too long for the system (ENAMETOOLONG, which root
    meets too, unlike a chmod 000 folder); the first one whose path is too long."""
    name = "d" * 200
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    path = str(folder)
    first = None
    try:
        while len(path) < os.pathconf(folder, "PC_PATH_MAX") + 500:
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, path = inner, f"{path}/{name}"
            if first is None and len(path) >= os.pathconf(folder, "PC_PATH_MAX"):
                first = Path(path)
    finally:
        os.close(fd)
    return first
