"""Small previews of image files for lists, decoded at reduced size where the format allows.

JPEG decodes straight to 1/2, 1/4 or 1/8 scale (Pillow's `draft`), so a folder of photos previews
without decoding any of them at full size. Previews are for looking at only: models always get
`images.load_image`'s pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def load_thumbnail(path: str | Path, size: int) -> np.ndarray:
    """RGB uint8 [h, w, 3] with the long side at most `size`, upright (EXIF), first frame.

    Raises OSError or ValueError (Pillow's) when the file cannot be read as an image."""
    if size < 1:
        raise ValueError(f"thumbnail size must be at least 1 pixel, got {size}")
    with Image.open(path) as img:
        img.draft("RGB", (size, size))  # a no-op for formats that cannot decode scaled
        upright = ImageOps.exif_transpose(img) or img
        small = upright.convert("RGB")
        small.thumbnail((size, size), Image.Resampling.BILINEAR)
        return np.asarray(small, dtype=np.uint8).copy()
