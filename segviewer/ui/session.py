"""The last session (connection, opened files and folders, the image shown), saved on close and
reopened on start when the user asks for it (File ▸ Restore Last Session on Start, off by default).
A start with paths or a model on the command line opens those instead (app.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from segviewer.core.serving.connection import ConnectionSpec
from segviewer.ui import settings as keys

if TYPE_CHECKING:
    from segviewer.ui.main_window import MainWindow


def save_session(w: MainWindow) -> None:
    """Remember this session if the user wants it restored; forget any older one otherwise."""
    on = w.prefs.get(keys.RESTORE_SESSION)
    spec = w.connection if on else None
    w.prefs.set(keys.SESSION_CONNECTION, json.dumps(spec.to_json()) if spec else "")
    w.prefs.set(keys.SESSION_INPUTS, list(w.opened_inputs) if on else [])
    w.prefs.set(keys.SESSION_CURRENT, (w.state.current or "") if on else "")


def restore_session(w: MainWindow) -> bool:
    """Reopen the saved session (if wanted); inputs that have gone since are skipped. False if
    there was nothing to restore."""
    if not w.prefs.get(keys.RESTORE_SESSION):
        return False
    restored = False
    text = w.prefs.get(keys.SESSION_CONNECTION)
    if text:
        try:
            w.connect_to(ConnectionSpec.from_json(json.loads(text)))
            restored = True
        except (ValueError, KeyError, TypeError):
            w.show_error("The last session's connection could not be read — connect again "
                         "(File ▸ Connect…)")
    inputs = [p for p in w.prefs.get(keys.SESSION_INPUTS) if Path(p).exists()]
    if inputs:
        current = w.prefs.get(keys.SESSION_CURRENT)
        walker = w.open_paths(inputs)
        if current:  # back to the image shown once the walk has listed it
            walker.finished.connect(
                lambda _count: current in w.state.statuses and w.file_list.select_path(current))
        restored = True
    return restored
