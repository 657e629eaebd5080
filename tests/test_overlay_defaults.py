"""Overlay defaults that read well, checked in core against numpy: the background drawn
transparent, per-class opacity, dark default colours lifted (ids untouched), and a palette chosen
for its colours keeping the model's class names."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from segviewer.core.labels import colorize, colorize_rgba, default_palette_for, get_palette
from segviewer.core.overlay import blend, overlay_lut
from segviewer.core.palettes import (
    LIFT_BELOW,
    LIFT_FLOOR,
    background_id,
    lift_dark,
    shown_palette,
)
from segviewer.core.serving.base import ClassInfo, ModelMetadata
from segviewer.core.viewer_state import ModelIdentity, ViewerState

PASCAL = get_palette("pascal")
CAT = 8


def model(classes=None, num_classes: int | None = None) -> ModelMetadata:
    settings = {"num_classes": num_classes} if num_classes else {}
    return ModelMetadata("toy", 1, {}, classes, settings)


def hue(rgb) -> float:
    return colorsys.rgb_to_hsv(*(c / 255 for c in rgb))[0]


def luma(rgb) -> float:
    r, g, b = (c / 255 for c in rgb)
    return 0.299 * r + 0.587 * g + 0.114 * b


def test_pascal_cat_is_lifted_keeping_its_hue_and_every_class_stays_distinct():
    lifted = lift_dark(PASCAL.colors[:21])
    assert tuple(PASCAL.colors[CAT]) == (64, 0, 0)  # nearly invisible over a photo
    assert tuple(lifted[CAT]) == (198, 0, 0)
    assert len({tuple(c) for c in lifted}) == 21
    for before, after in zip(PASCAL.colors[:21], lifted, strict=True):
        if luma(before) >= LIFT_BELOW:
            assert tuple(after) == tuple(before)  # light enough colours are left alone
        else:
            assert LIFT_FLOOR - 0.01 <= luma(after) < LIFT_BELOW + 0.01
            assert luma(after) > luma(before)
            if max(before) > 0:
                assert hue(after) == pytest.approx(hue(before), abs=0.01)
    # Darker stays darker: aeroplane (128,0,0) and cat (64,0,0) keep their order.
    assert luma(lifted[1]) > luma(lifted[CAT])
    # Pure blue cannot be scaled further: it is mixed with white, its hue kept.
    blue = lift_dark(np.array([[0, 0, 255]], np.uint8))[0]
    assert luma(blue) >= LIFT_FLOOR and hue(blue) == pytest.approx(hue((0, 0, 255)), abs=0.01)


def test_the_default_palette_is_lifted_but_named_palettes_and_ids_are_not():
    shown = shown_palette(None, model(num_classes=21))
    assert tuple(shown.colors[CAT]) == tuple(lift_dark(PASCAL.colors[CAT:CAT + 1])[0])
    assert tuple(shown.colors[0]) == (0, 0, 0)  # the background keeps its swatch (transparent)
    assert shown.names[:21] == PASCAL.names[:21]
    assert tuple(get_palette("pascal").colors[CAT]) == (64, 0, 0)  # ground truth still maps back
    chosen = shown_palette("pascal", model(num_classes=21))
    assert tuple(chosen.colors[CAT]) == (64, 0, 0)  # chosen: as is
    labels = np.array([[0, CAT], [15, CAT]], np.uint8)
    before = labels.copy()
    rgb, unknown = colorize(labels, shown)
    np.testing.assert_array_equal(labels, before)  # exported label maps hold the ids
    assert tuple(rgb[0, 1]) == tuple(shown.colors[CAT]) and unknown.size == 0


def test_a_model_with_declared_classes_gets_them_lifted_too():
    classes = [ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "crack", (40, 0, 60)),
               ClassInfo(2, "rust", (230, 120, 20))]
    shown = shown_palette(None, model(classes))
    assert luma(shown.colors[1]) >= LIFT_FLOOR
    assert tuple(shown.colors[2]) == (230, 120, 20)
    assert shown.names == ["background", "crack", "rust"]


def test_a_palette_chosen_for_colours_keeps_the_model_class_names():
    classes = [ClassInfo(0, "sky", (1, 2, 3)), ClassInfo(1, "ground", (4, 5, 6)),
               ClassInfo(25, "drone", (7, 8, 9))]
    shown = shown_palette("cityscapes", model(classes))
    assert shown.names[0] == "sky" and shown.names[1] == "ground" and shown.names[25] == "drone"
    assert shown.names[2] == "building"  # ids the model does not name keep the palette's
    assert tuple(shown.colors[0]) == (128, 64, 128)  # the colours are cityscapes'
    assert len(shown) == 26  # the model's id 25 is past cityscapes' 19: a fallback colour
    without_names = shown_palette("cityscapes", model(num_classes=19))
    assert without_names.names[0] == "road"


def test_background_is_the_declared_one_or_id_0_for_unnamed_classes():
    assert background_id(PASCAL) == 0
    assert background_id(get_palette("mapillary")) == 65  # "Unlabeled" is its last id
    assert background_id(get_palette("cityscapes")) is None  # id 0 is road, a real class
    assert background_id(default_palette_for(7)) == 0  # no names: id 0 by convention


def test_background_is_transparent_and_classes_have_their_own_opacity():
    image = np.full((2, 3, 3), 100, np.uint8)
    labels = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    colors = np.array([[0, 0, 0], [200, 0, 0], [0, 200, 0]], np.uint8)
    lut = overlay_lut(colors, hidden={background_id(PASCAL)}, opacities={2: 0.5})
    assert lut[:, 3].tolist() == [0, 255, 128]
    out = blend(image, lut[labels], 0.5)
    np.testing.assert_array_equal(out[0, 0], image[0, 0])  # background: the photo, untouched
    np.testing.assert_array_equal(out[0, 1], [150, 50, 50])  # 100 * 0.5 + 200 * 0.5
    # class 2 at half opacity under the 0.5 slider: weight 0.25 (quantised to 1/256)
    np.testing.assert_array_equal(out[0, 2], [75, 125, 75])
    np.testing.assert_array_equal(blend(image, lut[labels], 0.0), image)
    opaque = overlay_lut(colors)
    np.testing.assert_array_equal(blend(image, opaque[labels], 0.5),
                                  blend(image, colors[labels], 0.5))  # RGBA at 255 = RGB


def test_overlay_lut_rejects_bad_input():
    with pytest.raises(ValueError, match="between 0 and 1"):
        overlay_lut(np.zeros((3, 3), np.uint8), opacities={1: 1.5})
    with pytest.raises(ValueError, match=r"uint8 \[N, 3\]"):
        overlay_lut(np.zeros((3, 4), np.uint8))


def test_the_viewer_colours_through_the_overlay_lut_and_starts_with_the_background_hidden():
    palette = shown_palette(None, model(num_classes=21))
    labels = np.array([[0, CAT], [15, 0]], np.uint8)
    np.testing.assert_array_equal(colorize_rgba(labels, palette, {0}),
                                  overlay_lut(palette.lut(16), {0})[labels])
    state = ViewerState()
    assert state.hidden == frozenset()  # no model yet: nothing hidden
    state.set_model(ModelIdentity("toy", 1, "here"), model(num_classes=21))
    assert state.hidden == {0} and tuple(state.palette.colors[CAT]) != (64, 0, 0)
    state.set_class_hidden(0, False)
    state.choose_palette("cityscapes")  # id 0 is road there, a real class: stays shown
    assert state.hidden == frozenset()
