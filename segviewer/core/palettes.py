"""The one rule for a model's class count and its default palette (viewer, batch, review alike)."""

from __future__ import annotations

from segviewer.core.labels import Palette, default_palette_for, get_palette, palette_from_classes
from segviewer.core.serving.base import ModelMetadata


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
