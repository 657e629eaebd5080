"""Class palettes: the colour and name of each class id, and colouring label maps with them.

Built-in palettes: pascal (the DeepLab bit-interleaved colour map), cityscapes (19 train ids),
ade20k (background + 150 classes, DeepLab's colours) and mapillary (Vistas v1.2: 65 classes +
unlabeled, with the dataset's own colours so its colour-coded ground truth maps back to ids). Custom
palettes are JSON files: {"name": "...", "classes": [{"id": 0, "name": "road", "color": [r, g, b]}]}
("color" may also be "#rrggbb"). Ids past a palette's end get a deterministic fallback colour, so
any label map can be shown and its unknown ids reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from segviewer.core.overlay import overlay_lut
from segviewer.core.serving.base import ClassInfo
from segviewer.paths import resource_dir

PALETTE_NAMES = ("pascal", "cityscapes", "ade20k", "mapillary")

MAX_CLASS_ID = 65535  # the largest id a 16-bit label PNG can hold

PASCAL_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)

# Cityscapes train ids 0-18 (cityscapesScripts labels.py), with their official colours.
CITYSCAPES_CLASSES = (
    ("road", (128, 64, 128)), ("sidewalk", (244, 35, 232)), ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)), ("fence", (190, 153, 153)), ("pole", (153, 153, 153)),
    ("traffic light", (250, 170, 30)), ("traffic sign", (220, 220, 0)),
    ("vegetation", (107, 142, 35)), ("terrain", (152, 251, 152)), ("sky", (70, 130, 180)),
    ("person", (220, 20, 60)), ("rider", (255, 0, 0)), ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)), ("bus", (0, 60, 100)), ("train", (0, 80, 100)),
    ("motorcycle", (0, 0, 230)), ("bicycle", (119, 11, 32)),
)


class PaletteError(ValueError):
    """A palette that cannot be used; the message is one line naming the file or field."""


@dataclass
class Palette:
    """Colours and names for class ids 0..N-1. `colors` is read-only: use `with_color` to edit."""

    name: str
    colors: np.ndarray  # (N, 3) uint8
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        colors = np.array(self.colors, dtype=np.uint8).reshape(-1, 3)
        colors.flags.writeable = False  # palettes are shared (cached built-ins, GUI and workers)
        self.colors = colors
        names = list(self.names)
        if len(names) > len(colors):
            raise PaletteError(f"palette '{self.name}' has {len(names)} names for "
                               f"{len(colors)} colours")
        names += [f"class {i}" for i in range(len(names), len(colors))]
        self.names = names

    def __len__(self) -> int:
        return len(self.colors)

    def color(self, class_id: int) -> tuple[int, int, int]:
        if 0 <= class_id < len(self.colors):
            r, g, b = (int(c) for c in self.colors[class_id])
            return (r, g, b)
        return fallback_color(class_id)

    def class_name(self, class_id: int) -> str:
        if 0 <= class_id < len(self.names):
            return self.names[class_id]
        return f"class {class_id}"

    def lut(self, size: int) -> np.ndarray:
        """A (size, 3) uint8 lookup table: the palette's colours, then fallback colours."""
        if not 0 <= size <= MAX_CLASS_ID + 1:
            raise ValueError(f"a colour table holds 0-{MAX_CLASS_ID + 1} entries, not {size}")
        n = min(size, len(self.colors))
        table = np.empty((size, 3), dtype=np.uint8)
        table[:n] = self.colors[:n]
        table[n:] = _fallback_table()[n:size]
        return table

    def with_color(self, class_id: int, rgb: Sequence[int]) -> Palette:
        """A copy with one class's colour changed (growing the palette if `class_id` is past it)."""
        if not 0 <= class_id <= MAX_CLASS_ID:
            raise PaletteError(f"class id {class_id} is out of range (0-{MAX_CLASS_ID})")
        colors = self.lut(max(len(self.colors), class_id + 1))
        colors[class_id] = _check_color(rgb, f"colour for class {class_id}")
        return Palette(self.name, colors, list(self.names))

    def classes(self) -> list[ClassInfo]:
        """The palette as the class list a model carries (see ModelMetadata.classes)."""
        return [ClassInfo(i, self.names[i], self.color(i)) for i in range(len(self.colors))]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "classes": [
                {"id": i, "name": self.names[i], "color": [int(c) for c in self.colors[i]]}
                for i in range(len(self.colors))
            ],
        }


# ---------------------------------------------------------------------------------------------
# Fallback colours


def fallback_colors(ids: np.ndarray) -> np.ndarray:
    """Deterministic, well-spread colours for ids with no palette entry: (len(ids), 3) uint8.

    Hue steps by the golden ratio (neighbouring ids get very different hues); saturation and
    value vary with a hash of the id so that ids far apart rarely collide."""
    ids = np.asarray(ids, dtype=np.uint64).ravel()
    hue = (ids.astype(np.float64) * 0.6180339887498949) % 1.0
    mixed = _mix(ids)
    sat = 0.55 + 0.40 * ((mixed & np.uint64(0xFF)).astype(np.float64) / 255.0)
    val = 0.70 + 0.30 * (((mixed >> np.uint64(8)) & np.uint64(0xFF)).astype(np.float64) / 255.0)
    return _hsv_to_rgb(hue, sat, val)


@cache
def _fallback_table() -> np.ndarray:
    # Computed once (190 kB): building a LUT for a uint16 map then costs a copy, not 65k HSV maths.
    table = fallback_colors(np.arange(MAX_CLASS_ID + 1))
    table.flags.writeable = False
    return table


def fallback_color(class_id: int) -> tuple[int, int, int]:
    r, g, b = (int(c) for c in fallback_colors(np.array([class_id]))[0])
    return (r, g, b)


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser; uint64 arithmetic wraps, which is what we want.
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    i = np.floor(h * 6.0).astype(np.int64) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.rint(np.stack([r, g, b], axis=1) * 255.0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Built-in palettes


def pascal_colormap(n: int = 256) -> np.ndarray:
    """The DeepLab/PASCAL VOC colour map, (n, 3) uint8: the bits of each id spread over R, G, B."""
    ids = np.arange(n, dtype=np.int64)
    cmap = np.zeros((n, 3), dtype=np.int64)
    for shift in range(7, -1, -1):
        for channel in range(3):
            cmap[:, channel] |= ((ids >> channel) & 1) << shift
        ids >>= 3
    return cmap.astype(np.uint8)


def get_palette(name_or_path: str | Path) -> Palette:
    """A built-in palette by name (see PALETTE_NAMES) or a custom palette from a JSON file."""
    key = str(name_or_path).strip()
    if key.lower() in PALETTE_NAMES:
        return _copy(_builtin(key.lower()))
    path = Path(key)
    if path.suffix.lower() == ".json" or path.exists():
        return load_palette_json(path)
    raise PaletteError(f"unknown palette '{key}' (use one of {', '.join(PALETTE_NAMES)} "
                       "or a path to a palette JSON file)")


@cache
def _builtin(name: str) -> Palette:
    if name == "pascal":
        return Palette("pascal", pascal_colormap(256), list(PASCAL_CLASSES))
    if name == "cityscapes":
        return Palette("cityscapes", np.array([c for _, c in CITYSCAPES_CLASSES]),
                       [n for n, _ in CITYSCAPES_CLASSES])
    palette = load_palette_json(resource_dir() / "palettes" / f"{name}.json")
    palette.name = name
    return palette


def _copy(palette: Palette) -> Palette:
    return Palette(palette.name, palette.colors, list(palette.names))


def default_palette_for(num_classes: int) -> Palette:
    """The usual palette for a model with this many classes: 21 pascal, 19 cityscapes,
    151 ade20k, 66 mapillary (as DeepLab counts them); otherwise PASCAL colours, "class N" names."""
    by_count = {21: "pascal", 19: "cityscapes", 151: "ade20k", 66: "mapillary"}
    if num_classes in by_count:
        return get_palette(by_count[num_classes])
    return Palette(f"{num_classes} classes", pascal_colormap(max(num_classes, 1)))


def palette_from_classes(classes: Sequence[ClassInfo], name: str = "model") -> Palette:
    """A palette from the class list a model carries; ids need not be contiguous."""
    return _build(classes, name, f"palette '{name}'")


def _build(classes: Sequence[ClassInfo], name: str, where: str) -> Palette:
    if not classes:
        raise PaletteError(f"{where} has no classes")
    seen: set[int] = set()
    for info in classes:
        if not 0 <= info.id <= MAX_CLASS_ID:
            raise PaletteError(f"{where}: class id {info.id} is out of range (0-{MAX_CLASS_ID})")
        if info.id in seen:
            raise PaletteError(f"{where}: class id {info.id} appears more than once")
        seen.add(info.id)
    size = max(seen) + 1
    colors = fallback_colors(np.arange(size))
    names = [f"class {i}" for i in range(size)]
    for info in classes:
        colors[info.id] = _check_color(info.color, f"{where}: class {info.id} colour")
        names[info.id] = info.name
    return Palette(name, colors, names)


# ---------------------------------------------------------------------------------------------
# JSON


def load_palette_json(path: str | Path) -> Palette:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PaletteError(f"cannot read palette '{path}': file not found "
                           "(check the path)") from None
    except IsADirectoryError:
        raise PaletteError(f"cannot read palette '{path}': is a folder, not a JSON file") from None
    except UnicodeDecodeError:
        raise PaletteError(f"cannot read palette '{path}': not a UTF-8 text file") from None
    except OSError as e:
        raise PaletteError(f"cannot read palette '{path}': {e.strerror or e}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise PaletteError(f"palette '{path}' is not valid JSON (line {e.lineno} column "
                           f"{e.colno}: {e.msg})") from None
    return parse_palette_json(obj, str(path), default_name=path.stem)


def parse_palette_json(obj: Any, source: str, default_name: str = "custom") -> Palette:
    """Validate a decoded palette JSON object; errors name `source` and the field at fault."""
    if not isinstance(obj, dict):
        raise PaletteError(f"palette '{source}': expected an object with a \"classes\" list, "
                           f"got {type(obj).__name__}")
    if "classes" not in obj:
        raise PaletteError(f"palette '{source}': missing \"classes\" (a list of "
                           "{\"id\", \"name\", \"color\"} objects)")
    entries = obj["classes"]
    if not isinstance(entries, list) or not entries:
        raise PaletteError(f"palette '{source}': \"classes\" must be a non-empty list")
    name = obj.get("name", default_name)
    if not isinstance(name, str):
        raise PaletteError(f"palette '{source}': \"name\" must be a string")
    classes = [_parse_class(entry, f"palette '{source}': classes[{i}]")
               for i, entry in enumerate(entries)]
    return _build(classes, name, f"palette '{source}'")


def _parse_class(entry: Any, where: str) -> ClassInfo:
    if not isinstance(entry, dict):
        raise PaletteError(f"{where} must be an object with \"id\", \"name\" and \"color\"")
    if "id" not in entry:
        raise PaletteError(f"{where} has no \"id\"")
    class_id = entry["id"]
    if isinstance(class_id, bool) or not isinstance(class_id, int):
        raise PaletteError(f"{where}.id must be an integer, got {json.dumps(class_id)}")
    if class_id < 0:
        raise PaletteError(f"{where}.id must not be negative, got {class_id}")
    if class_id > MAX_CLASS_ID:
        raise PaletteError(f"{where}.id must be at most {MAX_CLASS_ID}, got {class_id}")
    name = entry.get("name", f"class {class_id}")
    if not isinstance(name, str):
        raise PaletteError(f"{where}.name must be a string, got {json.dumps(name)}")
    if "color" not in entry:
        raise PaletteError(f"{where} has no \"color\" (use [r, g, b] or \"#rrggbb\")")
    return ClassInfo(class_id, name, _check_color(entry["color"], f"{where}.color"))


def _check_color(value: Any, where: str) -> tuple[int, int, int]:
    """[r, g, b] with 0-255 integers, or "#rrggbb"."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 7 and text.startswith("#"):
            try:
                return (int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16))
            except ValueError:
                pass
    elif isinstance(value, Sequence | np.ndarray) and len(value) == 3:
        items = list(value)
        if all(isinstance(c, int | np.integer) and not isinstance(c, bool) and 0 <= c <= 255
               for c in items):
            r, g, b = (int(c) for c in items)
            return (r, g, b)
    raise PaletteError(f"{where} must be [r, g, b] with integers 0-255 or \"#rrggbb\", "
                       f"got {_show(value)}")


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


# ---------------------------------------------------------------------------------------------
# Colouring


def colorize(labels: np.ndarray, palette: Palette) -> tuple[np.ndarray, np.ndarray]:
    """Colour a label map: (RGB uint8 [H, W, 3], sorted ids that are past the palette's end).

    One LUT lookup sized to the largest id, so uint16 maps colour as fast as uint8 ones."""
    labels = np.asarray(labels)
    high = _highest_id(labels)
    if high < 0:
        return np.zeros((*labels.shape, 3), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    rgb = np.take(palette.lut(high + 1), labels, axis=0)  # several times faster than lut[labels]
    if high < len(palette):
        return rgb, np.zeros(0, dtype=np.int64)
    counts = np.bincount(labels.ravel(), minlength=high + 1)
    unknown = np.flatnonzero(counts[len(palette):]) + len(palette)
    return rgb, unknown.astype(np.int64)


def colorize_rgba(labels: np.ndarray, palette: Palette,
                  hidden: Iterable[int] = frozenset()) -> np.ndarray:
    """What the viewer draws and exports blend: the palette's colours through
    `overlay.overlay_lut`, opaque except the `hidden` classes (fully clear). RGBA uint8."""
    labels = np.asarray(labels)
    high = _highest_id(labels)
    if high < 0:
        return np.zeros((*labels.shape, 4), dtype=np.uint8)
    return np.take(overlay_lut(palette.lut(high + 1), hidden), labels, axis=0)


def labels_lut(labels: np.ndarray, palette: Palette,
               hidden: Iterable[int] = frozenset()) -> np.ndarray:
    """The RGBA table (N, 4) `colorize_rgba` gathers through, covering every id of `labels`, so
    a view can colour just the part it shows. uint8 and uint16 maps get a row for every id
    their dtype holds, without reading the map; others are checked like `colorize_rgba`'s."""
    labels = np.asarray(labels)
    if labels.dtype in (np.uint8, np.uint16):
        size = np.iinfo(labels.dtype).max + 1
    else:
        size = _highest_id(labels) + 1
    return overlay_lut(palette.lut(max(size, 1)), hidden)


def _highest_id(labels: np.ndarray) -> int:
    """The largest class id in `labels` (-1 when empty); ValueError for ids no palette colours."""
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
    if labels.size == 0:
        return -1
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise ValueError(f"labels contain negative class id {low}")
    if high > MAX_CLASS_ID:
        raise ValueError(f"labels contain class id {high} (at most {MAX_CLASS_ID} are supported)")
    return high
