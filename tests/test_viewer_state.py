"""The viewer's Qt-free model: the prediction queue, the one gate results pass to be shown, the
palette rule and the user's colours. No Qt, no TensorFlow: plain objects and callbacks."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from segviewer.core.labels import colorize, colorize_rgba, get_palette
from segviewer.core.palettes import num_classes_of, palette_for
from segviewer.core.serving.base import ClassInfo, ModelMetadata, Prediction, Signature, TensorSpec
from segviewer.core.viewer_state import (
    ModelIdentity,
    PredictionQueue,
    Status,
    ViewerState,
)

V1 = ModelIdentity("toy", 1, "in-process /models/toy")
V2 = ModelIdentity("toy", 2, "in-process /models/toy")


def meta(version: int, classes=None, settings=None, channels: int | None = None) -> ModelMetadata:
    outputs = {"labels": TensorSpec("labels", "int64", (None, None, None))}
    if channels is not None:
        outputs["logits"] = TensorSpec("logits", "float32", (None, None, None, channels))
    return ModelMetadata("toy", version, {"serving_default": Signature("serving_default", {},
                                                                       outputs)},
                         classes, settings or {})


def prediction(version: int | None, value: int = 1) -> Prediction:
    return Prediction(np.full((4, 6), value, np.uint8), None, "toy", version, "serving_default")


def recorder(event) -> list:
    seen: list = []
    event.connect(lambda *args: seen.append(args))
    return seen


def test_the_queue_counts_distinct_images_and_puts_the_shown_one_first():
    queue = PredictionQueue()
    queue.add(["a", "b", "c", "d"])
    queue.put_first("c")  # the image on screen, already queued: not counted twice
    queue.add(["a"])
    assert queue.progress == (0, 4)
    assert queue.pop() == "c"
    assert queue.pop() is None  # one at a time
    queue.put_first("c")  # running: stays where it is
    assert queue.progress == (0, 4)
    queue.finish()
    assert queue.progress == (1, 4)
    assert [queue.pop(), queue.finish(), queue.pop()] == ["a", None, "b"]
    assert queue.progress == (2, 4)
    assert "b" in queue and "c" not in queue
    assert queue.clear() == ["b", "d"]
    assert queue.idle and queue.progress == (0, 0)


def test_progress_starts_again_after_the_queue_drains():
    queue = PredictionQueue()
    queue.add(["a"])
    queue.pop()
    queue.finish()
    assert queue.progress == (0, 0)
    queue.add(["b", "c"])
    queue.pop()
    queue.skip()  # cached: no run, but done
    assert queue.progress == (1, 2)


def test_the_view_plans_the_current_image_and_a_bounded_look_ahead():
    queue = PredictionQueue(look_ahead=3)
    folder = [f"img{i:03d}" for i in range(200)]
    queue.plan(folder[0], folder[1:])
    assert queue.waiting == folder[:4]  # not the whole folder
    assert queue.progress == (0, 4)
    assert queue.pop() == "img000"
    # The user moves on while img000 runs: the old look-ahead is dropped, the new one planned.
    queue.plan(folder[50], folder[51:])
    assert queue.waiting == folder[50:54] and "img001" not in queue
    queue.plan(folder[0], folder[1:])  # the one running is not planned twice
    assert queue.waiting == folder[1:4] and queue.running == "img000"
    queue.finish()
    assert [queue.pop(), queue.finish(), queue.pop()] == ["img001", None, "img002"]
    queue.finish()
    queue.pop()
    queue.finish()
    assert queue.idle and queue.pop() is None and queue.progress == (0, 0)


def test_run_all_waits_behind_the_plan_and_survives_a_move():
    queue = PredictionQueue(look_ahead=2)
    folder = [f"img{i}" for i in range(10)]
    queue.add(folder)  # Run All
    queue.plan("img5", ["img6", "img7", "img8"])
    assert queue.waiting == ["img5", "img6", "img7", "img0", "img1", "img2", "img3", "img4",
                             "img8", "img9"]
    assert queue.progress == (0, 10)  # planned images are not counted twice
    assert queue.pop() == "img5"
    queue.finish()
    queue.plan("img9", [])  # a move: the backlog stays, in its order
    assert queue.waiting == ["img9", "img0", "img1", "img2", "img3", "img4", "img6", "img7",
                             "img8"]
    queue.remove(["img0", "img1"])
    ran = []
    while (path := queue.pop()) is not None:
        ran.append(path)
        queue.finish()
    assert ran == ["img9", "img2", "img3", "img4", "img6", "img7", "img8"]
    assert queue.idle


def test_putting_the_shown_image_first_keeps_the_plan():
    queue = PredictionQueue()
    queue.plan("a", ["b", "c"])
    queue.put_first("c")
    assert queue.waiting == ["c", "a", "b"]
    assert queue.clear() == ["c", "a", "b"] and queue.idle


def test_a_result_is_shown_only_for_the_current_image_and_the_chosen_model():
    state = ViewerState()
    shown = recorder(state.shown_changed)
    state.add_images(["a.png", "b.png"])
    state.set_current("a.png")
    state.set_model(V1, meta(1))
    assert not state.offer_result("b.png", V1, prediction(1))  # not the image on screen
    assert not state.offer_result("a.png", V2, prediction(2))  # not the model chosen
    assert not state.offer_result("a.png", V1, prediction(2))  # the server answered another
    assert state.shown is None and shown == []
    assert state.offer_result("a.png", V1, prediction(1))
    assert state.shown.identity == V1 and state.shown.signature == "serving_default"
    assert state.shown.describe() == "toy v1 · serving_default · in-process /models/toy"


def test_switching_versions_clears_the_screen_until_the_new_result_arrives():
    state = ViewerState()
    models = recorder(state.model_changed)
    state.add_images(["a.png"])
    state.set_current("a.png")
    state.set_model(V1, meta(1))
    state.offer_result("a.png", V1, prediction(1))
    state.begin_selection("toy v2")
    assert state.shown is None and models[-1] == (V1, "toy v2")
    assert not state.offer_result("a.png", V1, prediction(1))  # v1's result stays off screen
    state.end_selection()  # cancelled: v1 is still the model, and may be shown again
    assert models[-1] == (V1, None)
    assert state.offer_result("a.png", V1, prediction(1))
    state.begin_selection("toy v2")
    state.set_model(V2, meta(2))
    assert state.shown is None and state.identity == V2
    assert state.offer_result("a.png", V2, prediction(2, value=2))


def test_an_edited_result_says_whose_edit_it_is_and_passes_the_same_gate():
    state = ViewerState()
    edited = recorder(state.labels_edited)
    state.add_images(["a.png"])
    state.set_current("a.png")
    state.set_model(V2, meta(2))
    assert not state.offer_result("a.png", V2, prediction(1), edited=True)  # v1's, refused
    state.offer_result("a.png", V2, prediction(2))
    state.edited_in_place()  # the model's own labels are never edited in place
    assert edited == []
    assert state.offer_result("a.png", V2, prediction(2), edited=True)
    assert state.shown.label == "edit of toy v2"
    assert state.shown.describe() == "edit of toy v2 · serving_default · in-process /models/toy"
    state.edited_in_place()
    assert edited == [(state.shown,)]


def test_changing_image_clears_the_result():
    state = ViewerState()
    state.add_images(["a.png", "b.png"])
    state.set_current("a.png")
    state.set_model(V1, meta(1))
    state.offer_result("a.png", V1, prediction(1))
    state.set_current("b.png")
    assert state.shown is None


def test_statuses_and_events():
    state = ViewerState()
    added = recorder(state.images_added)
    changed = recorder(state.status_changed)
    assert state.add_images(["a", "b", "a"]) == ["a", "b"]
    assert state.add_images(["a"]) == []
    state.set_status("b", Status.FAILED, "not an image")
    assert added == [(["a", "b"],)]
    assert changed == [("b", Status.FAILED, "not an image")]
    assert state.paths == ["a", "b"]


def test_a_users_colour_survives_a_reconnect_but_not_a_new_palette():
    state = ViewerState()
    classes = [ClassInfo(0, "bg", (0, 0, 0)), ClassInfo(1, "cat", (10, 20, 30))]
    state.set_model(V1, meta(1, classes))
    state.set_class_color(1, (255, 0, 255))
    state.set_model(V2, meta(2, classes))  # a reconnect or another version
    assert state.palette.color(1) == (255, 0, 255)
    assert state.palette.class_name(1) == "cat"
    state.choose_palette("cityscapes")
    assert state.palette.color(1) == (244, 35, 232)


def test_hidden_classes_live_in_the_state():
    state = ViewerState()
    hidden = recorder(state.hidden_changed)
    state.set_class_hidden(3, True)
    state.set_class_hidden(3, True)
    state.set_class_hidden(5, True)
    state.set_class_hidden(3, False)
    assert state.hidden == {5}
    assert [h for (h,) in hidden] == [{3}, {3, 5}, {5}]


def test_one_class_count_and_palette_rule():
    classes = [ClassInfo(0, "bg", (0, 0, 0)), ClassInfo(4, "thing", (1, 2, 3))]
    assert num_classes_of(meta(1, settings={"num_classes": 19}, channels=7)) == 19
    assert num_classes_of(meta(1, classes, channels=21)) == 5
    assert num_classes_of(meta(1, channels=19)) == 19  # from the logits output
    assert num_classes_of(meta(1)) is None
    assert palette_for(meta(1, channels=19)).name == "cityscapes"
    assert palette_for(meta(1)).name == "pascal"
    assert palette_for(meta(1, classes)).class_name(4) == "thing"


def test_colorize_rgba_hides_classes_and_refuses_bad_ids():
    labels = np.array([[0, 1], [2, 1]], np.uint16)
    palette = get_palette("pascal")
    rgba = colorize_rgba(labels, palette, frozenset({1}))
    np.testing.assert_array_equal(rgba[..., :3], colorize(labels, palette)[0])
    np.testing.assert_array_equal(rgba[..., 3], [[255, 0], [255, 0]])
    with pytest.raises(ValueError, match="negative class id"):
        colorize_rgba(np.array([[-1]], np.int32), palette)
    with pytest.raises(ValueError, match="at most 65535"):
        colorize_rgba(np.array([[70000]], np.int32), palette)


def test_the_state_needs_neither_qt_nor_tensorflow():
    import subprocess  # a fresh interpreter: other tests in this session have loaded Qt

    code = ("import sys, segviewer.core.viewer_state; "
            "sys.exit(int(any(m.split('.')[0] in ('PySide6', 'tensorflow') for m in sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_removed_images_leave_the_queue_and_the_screen():
    state = ViewerState()
    state.add_images(["a", "b", "c", "d"])
    state.queue.add(["a", "b", "c", "d"])
    assert state.queue.pop() == "a"
    state.set_model(V1, meta(1))
    state.set_current("c")
    assert state.offer_result("c", V1, prediction(1))
    state.remove_images(["b", "c", "zz"])
    assert state.paths == ["a", "d"] and state.current is None and state.shown is None
    assert "b" not in state.queue and "a" in state.queue  # the running one ends as it will
    state.queue.finish()
    assert state.queue.pop() == "d" and state.queue.progress == (1, 2)
