"""Which of the main window's actions make sense now: one that needs images, a model or a result
is disabled until it has them, and its tooltip says what is missing. Also the hint an image opened
without a model gives ("connect a model to segment")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QAction

from segviewer.ui.main_layout import action_name

if TYPE_CHECKING:
    from segviewer.ui.main_window import MainWindow

NO_IMAGES = "open images first (File ▸ Open Images… or drop them here)"
NO_MODEL = "connect a model first (File ▸ Connect…)"
NO_RESULT = "wait for the model to segment this image"
NO_CURRENT = "choose an image first"
CONNECT_HINT = "connect a model to segment (File ▸ Connect…, Ctrl+K)"


def _needs(w: MainWindow) -> dict[QAction, tuple[str, ...]]:
    """What each action needs, as the reasons it cannot run yet, in the order they are told."""
    images, current = bool(w.state.statuses), w.state.current is not None
    model, result = w.state.identity is not None, w.state.shown is not None
    missing_result = (() if result else (NO_IMAGES,) if not images else
                      (NO_MODEL,) if not model else (NO_CURRENT,) if not current else (NO_RESULT,))
    return {
        w.act_export_overlay: missing_result,
        w.act_export_labels: missing_result,
        w.act_export_legend_png: () if model else (NO_MODEL,),
        w.act_export_legend_csv: () if model else (NO_MODEL,),
        w.act_batch: () if model else (NO_MODEL,),
        w.act_compare: () if images else (NO_IMAGES,),
        w.act_rerun: () if current else (NO_IMAGES,) if not images else (NO_CURRENT,),
        **{act: () if images else (NO_IMAGES,)
           for act in (w.act_next, w.act_prev, w.act_first, w.act_last)},
        # Edit mode stays switchable off even when its result has gone.
        w.editing.act_edit: () if result or w.editing.act_edit.isChecked() else missing_result,
    }


def follow_state(w: MainWindow) -> None:
    """Keep the actions and hints up to date with the window's state, from now on."""
    def update(*_args) -> None:
        update_actions(w)
        update_hints(w)

    state = w.state
    for event in (state.images_added, state.status_changed, state.current_changed,
                  state.model_changed, state.shown_changed):
        event.connect(update)
    w.file_list.paths_removed.connect(update)
    w.editing.act_edit.toggled.connect(update)
    update()


def update_actions(w: MainWindow) -> None:
    """Enable what can run; a disabled action's tooltip names what is missing."""
    for act, missing in _needs(w).items():
        act.setEnabled(not missing)
        name = action_name(act)
        keys = act.shortcut().toString()
        tip = f"{name} ({keys})" if keys else name
        act.setToolTip(f"{tip} — {missing[0]}" if missing else tip)


def update_hints(w: MainWindow) -> None:
    """Images waiting for a model say so in the list."""
    w.file_list.set_pending_note("connect a model to segment" if connect_hint(w) else "")


def connect_hint(w: MainWindow) -> str:
    """The summary's hint while images wait for a model, else ""."""
    if w.state.statuses and w.state.identity is None and w.state.selecting is None:
        return CONNECT_HINT
    return ""
