"""The compare window's actions, menus and toolbar (the slots are the window's methods)."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QSlider, QToolBar

from segviewer.ui.help import ShortcutsDialog, shortcut_rows

if TYPE_CHECKING:
    from segviewer.ui.compare_window import CompareWindow

SWIPE_STEP = 5  # percent of the width per [ or ] key


class CompareMode(Enum):
    SIDE = "side"  # A | B
    FLIP = "flip"  # one canvas, Space switches A and B
    SWIPE = "swipe"  # one canvas: A left of a divider, B right of it
    DIFF = "diff"  # pixels where A and B differ


def build_actions(w: CompareWindow) -> None:
    def a(text: str, slot, shortcuts=(), checkable: bool = False) -> QAction:
        action = QAction(text, w)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        w.addAction(action)
        return action

    w.mode_group = QActionGroup(w)
    w.act_mode = {}
    for mode, text, key in ((CompareMode.SIDE, "&Side by Side", "S"),
                            (CompareMode.FLIP, "&Flip A/B", "F"),
                            (CompareMode.SWIPE, "S&wipe A|B", "W"),
                            (CompareMode.DIFF, "&Disagreement", "D")):
        act = a(text, lambda _=False, m=mode: w.set_mode(m), [key], checkable=True)
        w.mode_group.addAction(act)
        w.act_mode[mode] = act
    w.act_mode[w.mode].setChecked(True)
    w.act_flip = a("Show &Other Model", w.flip, ["Space"])
    w.act_swipe_left = a("Swipe Divider Left", lambda: w.step_swipe(-SWIPE_STEP), ["["])
    w.act_swipe_right = a("Swipe Divider Right", lambda: w.step_swipe(SWIPE_STEP), ["]"])
    w.act_fit = a("&Fit to Window", w.canvas_a.fit, ["Ctrl+0"])
    w.act_next = a("&Next in Queue", lambda: w.review.step(1), ["N", "PgDown"])
    w.act_prev = a("&Previous in Queue", lambda: w.review.step(-1), ["P", "PgUp"])
    w.act_verdicts = [
        a(f"Mark {w.review.buttons[v].text().split('  ')[0]}",
          lambda _=False, v=v: w.review.set_verdict(v), [str(n)])
        for n, v in enumerate(w.review.buttons, start=1)]
    w.act_report = a("Write &Report…", w.report_dialog, ["Ctrl+R"])
    w.act_report.setEnabled(False)
    w.act_cancel = a("Cancel", w.cancel_work, ["Esc"])
    w.act_close = a("&Close", w.close, [QKeySequence.StandardKey.Close])
    w.act_shortcuts = a("&Keyboard Shortcuts", lambda: ShortcutsDialog(
        w, shortcut_rows(w.actions())).exec(), [QKeySequence.StandardKey.HelpContents])

    file = w.menuBar().addMenu("&File")
    file.addActions([w.act_report, w.act_close])
    view = w.menuBar().addMenu("&View")
    view.addActions([*w.act_mode.values(), w.act_flip, w.act_fit])
    view.addSeparator()
    for dock in (w.review_dock, w.classes_dock, w.confusion_dock):
        view.addAction(dock.toggleViewAction())
    review = w.menuBar().addMenu("&Review")
    review.addActions([w.act_next, w.act_prev, *w.act_verdicts])
    w.menuBar().addMenu("&Help").addAction(w.act_shortcuts)

    tools = w.addToolBar("Compare")
    tools.setObjectName("compare_toolbar")
    tools.setIconSize(QSize(18, 18))
    tools.addActions(list(w.act_mode.values()))
    tools.addAction(w.act_flip)
    tools.addSeparator()
    w.opacity = _slider(tools, "Opacity", 50, "Label opacity in both panes")
    w.opacity.valueChanged.connect(
        lambda v: [c.set_opacity(v / 100) for c in (w.canvas_a, w.canvas_b)])
    w.swipe = _slider(tools, "Swipe", 50, "Where the swipe divider is ( [ and ] )")
    w.swipe.valueChanged.connect(lambda _: w.mode is CompareMode.SWIPE and w._draw())
    tools.addSeparator()
    w.scope = QComboBox(w)
    w.scope.addItem("This image", "image")
    w.scope.addItem("All images", "all")
    w.scope.setToolTip("What the class table, numbers and confusion matrices cover")
    w.scope.currentIndexChanged.connect(lambda _: w._update_numbers())
    tools.addWidget(QLabel(" Numbers for ", w))
    tools.addWidget(w.scope)
    tools.addSeparator()
    tools.addActions([w.act_prev, w.act_next])
    tools.addSeparator()
    tools.addAction(w.act_report)


def _slider(tools: QToolBar, name: str, value: int, tip: str) -> QSlider:
    """A 0-100 % slider between its name and its value, as the main window's opacity."""
    slider = QSlider(Qt.Orientation.Horizontal, tools)
    slider.setRange(0, 100)
    slider.setFixedWidth(110)
    slider.setToolTip(tip)
    shown = QLabel(tools)
    shown.setMinimumWidth(40)
    slider.valueChanged.connect(lambda v: shown.setText(f"{v} %"))
    slider.setValue(value)
    shown.setText(f"{value} %")
    tools.addWidget(QLabel(f" {name} ", tools))
    tools.addWidget(slider)
    tools.addWidget(shown)
    return slider
