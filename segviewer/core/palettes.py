"""The one rule for a model's class count and its default palette (viewer, batch, review alike),
and the palette the viewer shows: dark colours lifted, the background found, model names kept."""

from __future__ import annotations

import numpy as np

from segviewer.core.labels import Palette, default_palette_for, get_palette, palette_from_classes
from segviewer.core.serving.base import ModelMetadata

BACKGROUND_NAMES = frozenset({"background", "unlabeled", "unlabelled"})
LIFT_BELOW = 0.35  # luma (Rec. 601, 0-1) under which a colour is too dark to read over a photo
LIFT_FLOOR = 0.20  # ...and the luma the darkest colour (black) is lifted to
_LUMA = np.array([0.299, 0.587, 0.114])


def num_classes_of(meta: ModelMetadata) -> int | None:
    """The class count a model declares: its export settings, else its class list, else the
    last dimension of a [batch, height, width, classes] output (logits or probabilities)."""
    count = meta.settings.get("num_classes")
    if isinstance(count, int) and not isinstance(count, bool) and count > 0:
        return count
    if meta.classes:
        return max(c.id for c in meta.classes) + 1
    for signature in meta.signatures.values():
        for spec in signature.outputs.values():
            if spec.shape and len(spec.shape) == 4 and spec.shape[-1]:
                return int(spec.shape[-1])
    return None


def palette_for(meta: ModelMetadata) -> Palette:
    """The model's own classes when it stores them, else the usual palette for its class count,
    else PASCAL's colours (any id gets a colour)."""
    if meta.classes:
        return palette_from_classes(meta.classes, meta.name)
    count = num_classes_of(meta)
    return default_palette_for(count) if count else get_palette("pascal")


def shown_palette(choice: str | None, meta: ModelMetadata | None) -> Palette:
    """The palette the viewer shows. `choice` None means the model's own (`palette_for`; PASCAL
    before a model is chosen) with colours too dark for an overlay lifted (see `lift_dark`). A
    chosen palette (a built-in name or a JSON file) is shown as it is, but gives colours only
    when the model names its classes: the model's names stay."""
    classes = meta.classes if meta is not None else None
    if choice is None:
        palette = palette_for(meta) if meta is not None else get_palette("pascal")
        colors = lift_dark(palette.colors)
        background = background_id(palette)
        if background is not None and background < len(colors):
            colors[background] = palette.colors[background]  # drawn transparent: keep its swatch
        return Palette(palette.name, colors, list(palette.names))
    palette = get_palette(choice)
    if not classes:
        return palette
    size = max(len(palette), max(info.id for info in classes) + 1)
    names = [palette.class_name(i) for i in range(size)]
    for info in classes:
        names[info.id] = info.name
    return Palette(palette.name, palette.lut(size), names)


def background_id(palette: Palette) -> int | None:
    """The class drawn transparent by default: the one named background (or unlabeled), else
    id 0 when the classes have no names at all; None when id 0 is a real class (Cityscapes'
    road)."""
    for class_id, name in enumerate(palette.names):
        if name.strip().lower() in BACKGROUND_NAMES:
            return class_id
    if palette.names and palette.names[0] == "class 0":
        return 0
    return None


def lift_dark(colors: np.ndarray, below: float = LIFT_BELOW,
              floor: float = LIFT_FLOOR) -> np.ndarray:
    """Colours readable over a photo: a luma Y under `below` becomes
    floor + Y * (below - floor) / below, with the hue kept (PASCAL's cat #400000 becomes
    #c60000). Darker stays darker, so colours of one hue stay apart; lighter colours are
    unchanged. Returns a new (N, 3) uint8 array."""
    rgb = np.asarray(colors, dtype=np.float64).reshape(-1, 3) / 255.0
    luma = rgb @ _LUMA
    target = floor + luma * (below - floor) / below
    out = rgb.copy()
    dark = luma < below
    lit = dark & (luma > 0)
    # Scale the channels (hue and saturation kept); where that would pass 1, scale to a full
    # channel and mix with white (hue kept) for the rest of the way.
    scaled = rgb[lit] * (target[lit] / luma[lit])[:, None]
    over = scaled.max(axis=1) > 1.0
    full = rgb[lit][over] / rgb[lit][over].max(axis=1, keepdims=True)
    full_luma = full @ _LUMA
    mix = (target[lit][over] - full_luma) / (1.0 - full_luma)
    scaled[over] = full + mix[:, None] * (1.0 - full)
    out[lit] = scaled
    out[dark & (luma == 0)] = floor  # black has no hue: a grey
    return np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
