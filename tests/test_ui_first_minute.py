"""What a new user meets in the main window's first minute: actions disabled (with the reason as
tooltip) until they make sense, the hint to connect a model, errors that clear once they no longer
hold, one name per action, and the last session restored when asked for."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PySide6.QtGui import QAction
from ui_helpers import WAIT_MS, connect_toy, make_window, wait_idle

from segviewer.ui import settings as keys
from segviewer.ui.main_actions import CONNECT_HINT, NO_IMAGES, NO_MODEL
from segviewer.ui.main_layout import action_name
from segviewer.ui.main_window import MainWindow


@pytest.fixture
def images(tmp_path) -> Path:
    """Two images the toy model segments."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name, red in (("a_stripes.png", 10), ("b_photo.png", 200)):
        iio.imwrite(folder / name, np.full((40, 60, 3), (red, 90, 160), np.uint8))
    return folder


def needing(win: MainWindow) -> list[QAction]:
    return [win.act_export_overlay, win.act_export_labels, win.act_export_legend_png,
            win.act_batch, win.act_compare, win.act_rerun, win.act_next, win.act_prev,
            win.editing.act_edit]


def test_actions_wait_for_images_and_a_model_and_say_what_is_missing(qtbot, toy_base, images):
    win = make_window(qtbot)
    for act in needing(win):
        assert not act.isEnabled(), act.text()
    assert NO_IMAGES in win.act_next.toolTip() and NO_IMAGES in win.act_export_overlay.toolTip()
    assert NO_MODEL in win.act_batch.toolTip()
    assert win.act_open.isEnabled() and win.act_connect.isEnabled()

    win.open_paths([images])
    qtbot.waitUntil(lambda: win.image is not None, timeout=WAIT_MS)
    wait_idle(win, qtbot)
    for act in (win.act_next, win.act_prev, win.act_compare, win.act_rerun):
        assert act.isEnabled(), act.text()
    assert not win.act_export_overlay.isEnabled()
    assert NO_MODEL in win.act_export_overlay.toolTip()
    assert CONNECT_HINT in win.summary_label.text()
    assert "connect a model to segment" in win.file_list.detail.text()  # the list says it too
    assert "connect a model to segment" in win.statusBar().currentMessage()

    connect_toy(win, qtbot, toy_base)
    qtbot.waitUntil(lambda: win.prediction is not None, timeout=WAIT_MS)
    for act in needing(win):
        assert act.isEnabled(), act.text()
    assert " — " not in win.act_export_overlay.toolTip()  # nothing missing any more
    assert CONNECT_HINT not in win.summary_label.text()
    assert "connect a model" not in win.file_list.detail.text()


def test_an_error_clears_once_the_next_result_is_shown(qtbot, toy_base, images):
    win = make_window(qtbot)
    connect_toy(win, qtbot, toy_base)
    win.open_paths([images / "a_stripes.png", images / "b_photo.png"])
    qtbot.waitUntil(lambda: win.prediction is not None, timeout=WAIT_MS)
    wait_idle(win, qtbot)
    win.show_error("something went wrong earlier")
    assert win.statusBar().currentMessage().startswith("⚠")
    win.act_next.trigger()
    qtbot.waitUntil(lambda: win.prediction is not None
                    and Path(win.current_path).name == "b_photo.png", timeout=WAIT_MS)
    assert not win.statusBar().currentMessage().startswith("⚠")


def test_one_name_and_one_key_per_action(qtbot):
    win = make_window(qtbot)
    toolbar = win.findChild(type(win.addToolBar("probe")), "toolbar_main")
    for act in toolbar.actions():
        if act.isSeparator() or not act.text():
            continue
        assert act.iconText() == action_name(act), act.text()
        assert act.toolTip().startswith(action_name(act)), act.toolTip()
    named = [a for a in win.actions() if a.text()]
    names = [action_name(a) for a in named]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    keys = [k.toString() for a in named for k in a.shortcuts()]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


def test_the_last_session_comes_back_only_when_asked(qtbot, toy_base, images):
    first = make_window(qtbot)
    assert not first.act_restore_session.isChecked()  # off by default
    first.act_restore_session.trigger()
    assert first.prefs.get(keys.RESTORE_SESSION)
    connect_toy(first, qtbot, toy_base)
    first.open_paths([images / "a_stripes.png", images / "b_photo.png"])
    qtbot.waitUntil(lambda: first.prediction is not None, timeout=WAIT_MS)
    first.act_next.trigger()
    qtbot.waitUntil(lambda: Path(first.current_path or "").name == "b_photo.png")
    wait_idle(first, qtbot)
    spec = first.connection
    assert spec is not None and spec.target == str(toy_base / "toy")
    first.close()

    second = make_window(qtbot)
    assert second.act_restore_session.isChecked()
    assert second.restore_session()
    qtbot.waitUntil(lambda: Path(second.current_path or "").name == "b_photo.png",
                    timeout=WAIT_MS)
    qtbot.waitUntil(lambda: second.prediction is not None, timeout=WAIT_MS)
    assert second.connection == spec
    assert [Path(p).name for p in second.file_list.paths()] == ["a_stripes.png", "b_photo.png"]
    wait_idle(second, qtbot)
    second.act_restore_session.trigger()  # off: the session is forgotten at close
    second.close()

    third = make_window(qtbot)
    assert not third.restore_session()
    assert third.current_path is None and third.connection is None
