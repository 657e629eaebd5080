"""Reading images as RGB uint8, writing label maps and colour images as lossless PNG, atomically.

Every image that reaches a model goes through `load_image`, so the viewer, the batch runner and the
CLI feed identical pixels whatever the file's format, mode or EXIF orientation:

- EXIF orientation is applied (a phone photo is segmented upright, as it is displayed).
- Alpha is dropped, keeping the stored colour values. This is what TensorFlow's
  `decode_png`/`decode_image(channels=3)` does, so a server-side encoded-image signature and this
  client see the same pixels. (Compositing on a background would change the colours under
  semi-transparent pixels and make local and server predictions differ.)
- 16-bit images keep their high byte (`value >> 8`), as `decode_png(dtype=uint8)` does.
  (Both choices were checked against tf.io.decode_png, value for value.)
- Grayscale is replicated to three channels; palette, CMYK and other modes are converted by Pillow.
- Animated GIF/WebP/TIFF: the first frame.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import secrets
import shutil
import socket
import stat
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError
from zlib_ng import zlib_ng

from segviewer.core.liveness import process_alive

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif",
)



class ImageLoadError(Exception):
    """An image that cannot be used; str(e) is one line naming the file, the reason and the fix."""


def _umask() -> int:
    # Read once at import: reading os.umask means setting it, unsafe once threads run.
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


# ---------------------------------------------------------------------------------------------
# Loading


def load_image(
    path: str | Path,
    max_pixels: int | None = None,
    reserve: Callable[[int], None] | None = None,
    raise_hint: str = "raise it with --max-pixels",
) -> np.ndarray:
    """Read an image file as RGB uint8 [H, W, 3] (see the module docstring for the conversions).

    The size is read from the header before any pixel is decoded: above `max_pixels` the image is
    refused (the error says how to raise it: `raise_hint`), and up to it Pillow's
    decompression-bomb guard is set aside (the limit was chosen); `reserve(pixels)` (a run's
    memory budget) is called before decoding. Only regular files are opened: a FIFO, device or
    socket is refused without blocking on it."""
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise ImageLoadError(_open_error(path, e)) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImageLoadError(_open_error(path, IsADirectoryError()))
        raise ImageLoadError(f"cannot read '{path}': not a regular file "
                             f"({_kind(info.st_mode)}) — pass image files only")
    with os.fdopen(fd, "rb") as f:
        if info.st_size == 0:
            raise ImageLoadError(f"cannot read '{path}': file is empty (0 bytes) "
                                 "(re-export or re-download it)")
        try:
            return _decode(f, str(path), max_pixels, reserve, raise_hint)
        except OSError as e:  # reading failed (EIO, a file that vanished under a network mount)
            raise ImageLoadError(f"cannot read '{path}': {e.strerror or e}") from None


def _open_error(path: Path, e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        return f"cannot read '{path}': file not found (check the path)"
    if isinstance(e, IsADirectoryError):
        return (f"cannot read '{path}': is a folder, not an image file "
                "(pass the files, or the folder to a batch run)")
    if isinstance(e, PermissionError):
        return f"cannot read '{path}': permission denied (check the file's permissions)"
    if e.errno == errno.ELOOP:
        return f"cannot read '{path}': symlink loop (fix or remove the link)"
    return f"cannot read '{path}': {e.strerror or e}"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def load_image_bytes(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode an encoded image (PNG, JPEG, ...) held in memory; `name` is used in error messages."""
    if not data:
        raise ImageLoadError(f"cannot read '{name}': file is empty (0 bytes) "
                             "(re-export or re-download it)")
    return _decode(io.BytesIO(data), name)


_ORIENTATION = 0x0112  # the EXIF tag


def _decode_jpeg(f: BinaryIO, img: Image.Image) -> np.ndarray | None:
    """An upright RGB or gray JPEG decoded by libjpeg-turbo (simplejpeg) straight into the
    array: the same pixels as Pillow (same library, same settings) in a third of the time, as
    Pillow copies the decoded image twice more to hand it to numpy; the GIL is released while it
    decodes. None for anything else (Pillow decodes it). A damaged file raises OSError."""
    if img.format != "JPEG" or img.mode not in ("RGB", "L"):
        return None
    f.seek(0)
    try:
        return simplejpeg.decode_jpeg(f.read(), colorspace="RGB")
    except ValueError as exc:  # strict: libjpeg's warnings (a truncated file) are errors too
        text = str(exc)
        raise OSError("image file is truncated" if "Premature end" in text else text) from None


_BOMB_LIMIT = threading.Lock()  # Pillow's limit is one global: raised for one open at a time


def _open(f: BinaryIO, max_pixels: int | None) -> Image.Image:
    """Image.open; a caller's own `max_pixels` (checked from the header before decoding, the
    user's deliberate choice) replaces Pillow's decompression-bomb guard (and its warning)."""
    if max_pixels is None or Image.MAX_IMAGE_PIXELS is None \
            or max_pixels <= Image.MAX_IMAGE_PIXELS:
        return Image.open(f)
    with _BOMB_LIMIT:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # `max_pixels` is checked from the header instead
        try:
            return Image.open(f)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _decode(f: BinaryIO, name: str, max_pixels: int | None = None,
            reserve: Callable[[int], None] | None = None,
            raise_hint: str = "raise it with --max-pixels") -> np.ndarray:
    try:
        with _open(f, max_pixels) as img:
            pixels = img.width * img.height  # from the header: nothing decoded yet
            if max_pixels is not None and pixels > max_pixels:
                raise ImageLoadError(
                    f"cannot read '{name}': {img.width}x{img.height} is {pixels:,} pixels, above "
                    f"the limit of {max_pixels:,} ({raise_hint})")
            if reserve is not None:
                reserve(pixels)
            # exif_transpose copies the image even when it has nothing to turn: ask first.
            turned = img.getexif().get(_ORIENTATION, 1) not in (1, None)
            rgb = None if turned else _decode_jpeg(f, img)
            if rgb is None:
                img.load()  # decode now, so a truncated file fails here and not later
                upright = (ImageOps.exif_transpose(img) or img) if turned else img
                rgb = _to_rgb(upright)
    except UnidentifiedImageError:
        f.seek(0)
        raise ImageLoadError(f"cannot read '{name}': {_unidentified(f.read(32))}") from None
    except Image.DecompressionBombError:
        raise ImageLoadError(
            f"cannot read '{name}': image is larger than Pillow's decompression-bomb limit of "
            f"{2 * Image.MAX_IMAGE_PIXELS:,} pixels (open it with a --max-pixels above its size "
            "if you trust the file)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageLoadError(f"cannot read '{name}': {_describe(e)} "
                             "(re-export or re-download it)") from None
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageLoadError(f"cannot read '{name}': image has zero size "
                             f"({rgb.shape[1]}x{rgb.shape[0]})")
    return rgb


# Leading bytes of the formats we read, to tell a damaged image from a file that is not one.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"RIFF", "WebP"),
)


def _unidentified(head: bytes) -> str:
    fmt = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    if fmt is None:
        return f"not an image file (supported: {', '.join(IMAGE_EXTENSIONS)})"
    if fmt == "PNG" and head[12:16] == b"IHDR" and (head[16:20] == bytes(4)
                                                    or head[20:24] == bytes(4)):
        width, height = int.from_bytes(head[16:20]), int.from_bytes(head[20:24])
        return f"image has zero size ({width}x{height}) (re-export it)"
    return f"{fmt} file is truncated or damaged (re-export or re-download it)"


def _describe(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "truncated" in text or "broken data stream" in text or isinstance(e, EOFError):
        return "file is truncated"
    return f"file is damaged ({text})"


_STRIP_ROWS = 1024


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grayscale (Pillow may widen it to 32-bit "I"): keep the high byte, like TF.
        values = np.asarray(img).astype(np.int64)
        gray = (np.clip(values, 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "RGB":
        # In strips: np.asarray(img) first copies the whole image into a bytes object, and a
        # writable array is one more copy (a 10000x10000 photo would peak at 3x its size).
        out = np.empty((img.height, img.width, 3), np.uint8)
        for top in range(0, img.height, _STRIP_ROWS):
            out[top:top + _STRIP_ROWS] = np.asarray(
                img.crop((0, top, img.width, min(img.height, top + _STRIP_ROWS))))
        return out
    if mode in ("RGBA", "RGBa", "RGBX"):
        return np.asarray(img.convert("RGBA"), dtype=np.uint8)[:, :, :3].copy()
    if mode in ("P", "PA"):
        # Palette with transparency: convert through RGBA, then drop alpha like any other.
        return np.asarray(img.convert("RGBA"), dtype=np.uint8)[:, :, :3].copy()
    if mode in ("L", "LA", "La", "1"):
        gray = np.asarray(img.convert("L"), dtype=np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


# ---------------------------------------------------------------------------------------------
# Writing


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a part."""
    atomic_write_group([(Path(path), data)])


def atomic_write_group(files: list[tuple[Path, bytes]]) -> None:
    """Write several files as one: each goes to a temporary name first, and only when all are
    written are they renamed into place. If any write or rename fails, none of them stays (a
    label map never outlives its failed overlay)."""
    temps: list[Path] = []
    placed: list[Path] = []
    try:
        for path, data in files:
            tmp = temp_name(path)
            temps.append(tmp)
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp-style 0600 would surprise users
        for tmp, (path, _) in zip(temps, files, strict=True):
            os.replace(tmp, path)
            placed.append(path)
    except BaseException:
        for tmp in temps:
            _remove(tmp)
        for path in placed:
            _remove(path)
        raise


# Temporary names have a fixed length whatever the final name's (a 250-character name must not
# fail because of its temporary one), and say which host and process wrote them, so that a later
# run can tell a killed run's leftovers from another live run's files in flight.
_HOST = hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()
_TEMP = re.compile(r"^\.segviewer-([0-9a-f]{8})-(\d+)-[0-9a-f]{8}\.tmp(\.[A-Za-z0-9]+)?$")
# Leftovers of another machine (or a container since gone) are removed once this old.
FOREIGN_TEMP_AGE = 24 * 3600.0


def temp_name(path: Path) -> Path:
    """A fresh temporary path beside `path` (same suffix, so format-by-suffix writers work)."""
    return path.with_name(
        f".segviewer-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix[:8]}")


def remove_stale_temps(folder: Path) -> int:
    """Remove the temporary files that killed runs left in `folder`; returns how many.

    Stale: written on this host by a process that is gone, or older than FOREIGN_TEMP_AGE."""
    removed = 0
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(".segviewer-")]
    except OSError:
        return 0
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None:
            continue
        host, pid = match.group(1), int(match.group(2))
        try:
            age = time.time() - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if (host == _HOST and not process_alive(pid)) or age > FOREIGN_TEMP_AGE:
            _remove(Path(entry.path))
            removed += 1
    return removed


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside `path`; on success it replaces `path`, on error it is
    removed. The temporary name keeps the suffix so writers that pick a format by suffix work."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp-style 0600 would surprise users
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path) -> None:
    try:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    except OSError:
        pass


def encode_png(array: np.ndarray) -> bytes:
    """Encode uint8 or uint16 gray [H, W], or uint8 RGB [H, W, 3], as a lossless PNG.

    Written here rather than by Pillow, whose encoder tries five filters on every row: each row
    is stored as its difference from the row above (PNG filter "up") and deflated at level 1,
    run-length only for gray, by zlib-ng (for gray, the same stream as zlib's, 5-8x faster on
    1080p label maps). Runs of one class become runs of zeros (smaller than Pillow at level 1),
    and the compressor releases the GIL while it works, so --workers scale."""
    array = np.asarray(array)
    if array.ndim == 2 and array.dtype in (np.uint8, np.uint16):
        depth, color, channels = 8 * array.dtype.itemsize, 0, 1
        strategy = zlib_ng.Z_RLE
    elif array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.uint8:
        depth, color, channels = 8, 2, 3
        strategy = zlib_ng.Z_DEFAULT_STRATEGY
    else:
        raise ValueError(f"cannot encode an array of shape {array.shape} and dtype {array.dtype} "
                         "as PNG (use uint8/uint16 [H, W] or uint8 [H, W, 3])")
    height, width = array.shape[:2]
    rows = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(">")).view(np.uint8)
    rows = rows.reshape(height, width * channels * depth // 8)
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2  # "up": each byte minus the one above it (row 0: minus zeros)
    if height:
        filtered[0, 1:] = rows[0]
        np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    deflate = zlib_ng.compressobj(1, zlib_ng.DEFLATED, 15, 9, strategy)
    data = deflate.compress(filtered) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return b"".join([_PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data),
                     _chunk(b"IEND", b"")])


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(data, zlib.crc32(kind)))


def save_label_png(path: str | Path, labels: np.ndarray) -> None:
    """Save integer class ids as a gray PNG: 8-bit when all ids < 256, else 16-bit. Atomic."""
    atomic_write_bytes(path, encode_png(label_array_for_png(labels)))


def label_array_for_png(labels: np.ndarray) -> np.ndarray:
    """The uint8/uint16 [H, W] array `save_label_png` writes; ValueError when ids do not fit."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"a label map must be 2-D [H, W], got shape {labels.shape}")
    if labels.dtype == np.uint8:
        return labels
    if labels.dtype == np.bool_:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"a label map must hold integer class ids, got dtype {labels.dtype}")
    if labels.size == 0:
        return labels.astype(np.uint8)
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise ValueError(f"label map has negative class id {low} (PNG stores ids 0-65535)")
    if high > 65535:
        raise ValueError(f"label map has class id {high} > 65535 (PNG stores ids 0-65535)")
    return labels.astype(np.uint8 if high < 256 else np.uint16)


def load_label_png(path: str | Path) -> np.ndarray:
    """Read a label map PNG back: the class ids exactly as saved, [H, W] uint8 or uint16.

    Palette ("P") PNGs, as PASCAL VOC ground truth is stored, give their palette indices."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            array = np.asarray(img)
    except FileNotFoundError:
        raise ImageLoadError(f"cannot read '{path}': file not found (check the path)") from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"cannot read '{path}': not an image file") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageLoadError(f"cannot read '{path}': {_describe(e)}") from None
    if mode in ("L", "P", "1"):
        return array.astype(np.uint8)
    if mode.startswith("I") and (array.size == 0 or 0 <= array.min() <= array.max() <= 65535):
        return array.astype(np.uint16)
    raise ImageLoadError(f"cannot read '{path}' as a label map: it is a {mode} image, not "
                         "single-channel class ids (convert colour ground truth with "
                         "gt_from_color)")


def save_rgb_png(path: str | Path, rgb: np.ndarray) -> None:
    """Save a uint8 RGB [H, W, 3] image as PNG, atomically."""
    atomic_write_bytes(path, encode_png(rgb))


def is_valid_png(path: str | Path) -> bool:
    """True when `path` is a PNG that decodes completely (so a resumed run can skip it)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if not data.startswith(b"\x89PNG\r\n\x1a\n") or not data.endswith(_IEND):
            return False
        with Image.open(io.BytesIO(data)) as img:
            img.load()
        return True
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error):
        return False


# The 12-byte IEND chunk every complete PNG ends with.
_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


# ---------------------------------------------------------------------------------------------
# Finding


def find_images(inputs: Iterable[str | Path], recursive: bool = True) -> list[Path]:
    """Expand files, folders and glob patterns into a list of image paths, duplicates removed.

    Folders give their image files (by extension, case-insensitive; hidden files skipped), sorted,
    searched recursively unless `recursive` is False. Glob patterns give the matching image files,
    sorted. A file named explicitly is kept as given (even if it is missing or has an unknown
    extension) so that the caller reports it by name when it fails to load. The list form of
    `inputs.walk_inputs`, for callers that hold every path anyway (the viewer, the review).
    """
    from segviewer.core.inputs import walk_inputs  # it builds on this module's extensions

    return [item.path for item in walk_inputs(inputs, recursive=recursive)]
