"""labels.py: the built-in palettes carry the official colours and names, custom JSON palettes are
validated with one-line errors, and colorize handles ids past the palette deterministically."""

from __future__ import annotations

import json

import numpy as np
import pytest

from segviewer.core.labels import (
    PALETTE_NAMES,
    Palette,
    PaletteError,
    colorize,
    default_palette_for,
    fallback_color,
    get_palette,
    load_palette_json,
    palette_from_classes,
    parse_palette_json,
    pascal_colormap,
)
from segviewer.core.serving.base import ClassInfo


def _reference_pascal(n: int) -> np.ndarray:
    # tensorflow/models research/deeplab create_pascal_label_colormap, written out loop by loop.
    colormap = np.zeros((n, 3), dtype=int)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colormap[i] = (r, g, b)
    return colormap


def test_pascal_colormap_matches_deeplab():
    cmap = pascal_colormap(512)
    np.testing.assert_array_equal(cmap, _reference_pascal(512).astype(np.uint8))
    assert tuple(cmap[15]) == (192, 128, 128)  # person
    assert tuple(cmap[1]) == (128, 0, 0)
    assert tuple(cmap[255]) == (224, 224, 192)  # the VOC "void" border colour


def test_pascal_palette():
    pascal = get_palette("pascal")
    assert len(pascal) == 256
    assert pascal.color(15) == (192, 128, 128) and pascal.class_name(15) == "person"
    assert pascal.class_name(0) == "background" and pascal.class_name(20) == "tvmonitor"
    assert pascal.class_name(21) == "class 21" and pascal.class_name(300) == "class 300"


def test_cityscapes_palette():
    city = get_palette("cityscapes")
    assert len(city) == 19
    assert city.color(0) == (128, 64, 128) and city.class_name(0) == "road"
    assert city.color(13) == (0, 0, 142) and city.class_name(13) == "car"
    assert city.class_name(18) == "bicycle" and city.color(18) == (119, 11, 32)


def test_ade20k_palette():
    ade = get_palette("ade20k")
    assert len(ade) == 151 and ade.class_name(0) == "background"
    assert len(set(ade.names[1:])) == 150  # 150 distinct classes after background
    assert (ade.class_name(1), ade.color(1)) == ("wall", (120, 120, 120))
    assert (ade.class_name(13), ade.color(13)) == ("person", (150, 5, 61))
    assert (ade.class_name(150), ade.color(150)) == ("flag", (92, 0, 255))


def test_mapillary_palette():
    vistas = get_palette("mapillary")
    assert len(vistas) == 66 and vistas.class_name(65) == "Unlabeled"
    assert len(set(vistas.names[:65])) == 65  # 65 classes, then "Unlabeled"
    assert (vistas.class_name(13), vistas.color(13)) == ("Road", (128, 64, 128))
    assert (vistas.class_name(19), vistas.color(19)) == ("Person", (220, 20, 60))
    assert (vistas.class_name(0), vistas.color(0)) == ("Bird", (165, 42, 42))
    assert (vistas.class_name(21), vistas.color(21)) == ("Motorcyclist", (255, 0, 100))
    assert len({vistas.color(i) for i in range(66)}) == 66  # v1.2 colours are all distinct


@pytest.mark.parametrize("name", PALETTE_NAMES)
def test_builtin_palettes_are_independent_copies(name):
    first = get_palette(name)
    first.names[0] = "renamed"
    with pytest.raises(ValueError):
        first.colors[0] = (1, 2, 3)  # read-only: edits go through with_color
    again = get_palette(name.upper())
    assert again.names[0] != "renamed" and again.name == name


def test_with_color_copies():
    city = get_palette("cityscapes")
    edited = city.with_color(0, (1, 2, 3))
    assert edited.color(0) == (1, 2, 3) and city.color(0) == (128, 64, 128)
    grown = city.with_color(25, "#ff8000")
    assert len(grown) == 26 and grown.color(25) == (255, 128, 0)
    assert grown.color(22) == fallback_color(22) and grown.class_name(22) == "class 22"
    with pytest.raises(PaletteError, match="colour for class 0"):
        city.with_color(0, (300, 0, 0))


def test_fallback_colors_are_deterministic_and_distinct():
    assert fallback_color(300) == fallback_color(300)
    colors = {fallback_color(i) for i in range(21, 1021)}
    assert len(colors) == 1000
    city = get_palette("cityscapes")
    np.testing.assert_array_equal(city.lut(40)[19:], [fallback_color(i) for i in range(19, 40)])


def test_colorize_known_and_unknown_ids():
    city = get_palette("cityscapes")
    labels = np.array([[0, 13, 13], [40, 0, 19]], dtype=np.uint8)
    rgb, unknown = colorize(labels, city)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (128, 64, 128) and tuple(rgb[0, 1]) == (0, 0, 142)
    assert tuple(rgb[1, 0]) == fallback_color(40) and tuple(rgb[1, 2]) == fallback_color(19)
    assert unknown.tolist() == [19, 40]
    _, none = colorize(labels.clip(0, 18), city)
    assert none.size == 0


def test_colorize_uint16_labels():
    labels = np.array([[0, 65535], [256, 15]], dtype=np.uint16)
    rgb, unknown = colorize(labels, get_palette("pascal"))
    assert unknown.tolist() == [256, 65535]
    assert tuple(rgb[1, 1]) == (192, 128, 128) and tuple(rgb[0, 1]) == fallback_color(65535)


def test_colorize_rejects_bad_labels():
    pascal = get_palette("pascal")
    with pytest.raises(ValueError, match="negative"):
        colorize(np.array([[-1, 0]]), pascal)
    with pytest.raises(ValueError, match="integer"):
        colorize(np.zeros((2, 2), dtype=np.float32), pascal)


def test_default_palette_for():
    assert default_palette_for(21).name == "pascal"
    assert default_palette_for(19).name == "cityscapes"
    assert default_palette_for(151).name == "ade20k"
    assert default_palette_for(66).name == "mapillary"
    other = default_palette_for(5)
    assert len(other) == 5 and other.color(1) == (128, 0, 0) and other.class_name(1) == "class 1"


def test_palette_from_model_classes_with_gaps():
    classes = [ClassInfo(0, "sky", (0, 0, 255)), ClassInfo(3, "cat", (1, 2, 3))]
    palette = palette_from_classes(classes)
    assert len(palette) == 4 and palette.name == "model"
    assert palette.class_name(3) == "cat" and palette.color(3) == (1, 2, 3)
    assert palette.class_name(1) == "class 1" and palette.color(1) == fallback_color(1)
    with pytest.raises(PaletteError, match="appears more than once"):
        palette_from_classes([ClassInfo(1, "a", (0, 0, 0)), ClassInfo(1, "b", (0, 0, 0))])


def test_json_round_trip(tmp_path):
    original = get_palette("cityscapes").with_color(2, (9, 8, 7))
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(original.to_json()))
    loaded = get_palette(str(path))
    assert loaded.name == "cityscapes" and loaded.names == original.names
    np.testing.assert_array_equal(loaded.colors, original.colors)


def test_classes_round_trip():
    vistas = get_palette("mapillary")
    classes = vistas.classes()
    assert classes[13] == ClassInfo(13, "Road", (128, 64, 128))
    again = palette_from_classes(classes, "mapillary")
    assert again.names == vistas.names
    np.testing.assert_array_equal(again.colors, vistas.colors)


def test_json_hex_colours_default_names(tmp_path):
    path = tmp_path / "hex.json"
    path.write_text(json.dumps({"classes": [{"id": 1, "color": "#0A0b0C"}]}))
    palette = load_palette_json(path)
    assert palette.name == "hex" and palette.color(1) == (10, 11, 12)
    assert palette.class_name(1) == "class 1"


@pytest.mark.parametrize("obj, words", [
    ([], "expected an object"),
    ({"name": "x"}, 'missing "classes"'),
    ({"classes": []}, "non-empty list"),
    ({"classes": ["road"]}, r"classes\[0\] must be an object"),
    ({"classes": [{"name": "road", "color": [1, 2, 3]}]}, r'classes\[0\] has no "id"'),
    ({"classes": [{"id": "1", "color": [1, 2, 3]}]}, r'\[0\]\.id must be an integer, got "1"'),
    ({"classes": [{"id": 1.5, "color": [1, 2, 3]}]}, "must be an integer"),
    ({"classes": [{"id": True, "color": [1, 2, 3]}]}, "must be an integer"),
    ({"classes": [{"id": -2, "color": [1, 2, 3]}]}, "must not be negative, got -2"),
    ({"classes": [{"id": 70000, "color": [1, 2, 3]}]}, "at most 65535"),
    ({"classes": [{"id": 0, "name": 5, "color": [1, 2, 3]}]}, r"\.name must be a string"),
    ({"classes": [{"id": 0}]}, r'has no "color"'),
    ({"classes": [{"id": 0, "color": [1, 2]}]}, r"classes\[0\]\.color must be \[r, g, b\]"),
    ({"classes": [{"id": 0, "color": [1, 2, 256]}]}, r"got \[1, 2, 256\]"),
    ({"classes": [{"id": 0, "color": [1, 2, 3.5]}]}, "integers 0-255"),
    ({"classes": [{"id": 0, "color": "red"}]}, 'got "red"'),
    ({"classes": [{"id": 0, "color": "#12345g"}]}, "#rrggbb"),
    ({"classes": [{"id": 4, "color": [1, 2, 3]}, {"id": 4, "color": [1, 2, 3]}]},
     "class id 4 appears more than once"),
])
def test_bad_palette_json(obj, words):
    with pytest.raises(PaletteError, match=words) as info:
        parse_palette_json(obj, "labels.json")
    assert "labels.json" in str(info.value) and "\n" not in str(info.value)


def test_palette_file_errors(tmp_path):
    with pytest.raises(PaletteError, match="file not found"):
        get_palette(str(tmp_path / "nope.json"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"classes": [')
    with pytest.raises(PaletteError, match=r"not valid JSON \(line 1"):
        get_palette(str(broken))
    with pytest.raises(PaletteError, match=r"unknown palette 'voc'.*pascal, cityscapes"):
        get_palette("voc")


def test_palette_needs_as_many_colours_as_names():
    with pytest.raises(PaletteError, match="2 names for 1 colours"):
        Palette("x", np.zeros((1, 3)), ["a", "b"])
