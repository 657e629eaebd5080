"""Every setting the viewer windows keep, declared once: its key, type and default.

QSettings hands back strings from INI files (and "true"/"false" for booleans); `Settings.get`
converts to the declared type and falls back to the default when a stored value cannot be read.
Dialogs keep their own keys (they are theirs to declare).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings


@dataclass(frozen=True)
class Setting:
    key: str
    type: type
    default: Any


OPACITY = Setting("view/opacity", int, 50)  # percent
PALETTE = Setting("view/palette", str, "model")
BOUNDARIES = Setting("view/boundaries", bool, False)
LAST_FOLDER = Setting("files/last_folder", str, str(Path.home()))
RECENT = Setting("files/recent", list, [])
WINDOW_GEOMETRY = Setting("window/geometry", bytes, None)
WINDOW_STATE = Setting("window/state", bytes, None)
COMPARE_GEOMETRY = Setting("compare/geometry", bytes, None)
COMPARE_STATE = Setting("compare/state", bytes, None)
COMPARE_MODE = Setting("compare/mode", str, "side")
COMPARE_SORT = Setting("compare/sort", str, "")
COMPARE_REPORT_DIR = Setting("compare/report_dir", str, "")
RESTORE_SESSION = Setting("session/restore", bool, False)  # reopen the last session on start
SESSION_CONNECTION = Setting("session/connection", str, "")  # ConnectionSpec.to_json, as JSON
SESSION_INPUTS = Setting("session/inputs", list, [])  # the files and folders opened
SESSION_CURRENT = Setting("session/current", str, "")  # the image shown
# The largest image the viewer opens (20000x20000; 1.2 GB decoded): opening one is deliberate,
# so up to this Pillow's decompression-bomb guard does not apply.
MAX_PIXELS = Setting("images/max_pixels", int, 400_000_000)
CACHE_MB = Setting("cache/memory_mb", int, 1024)  # results and decoded images kept, in MB
EDIT_GT_DIR = Setting("edit/gt_dir", str, "")  # where corrected labels are saved as ground truth


class Settings:
    """Typed access to a QSettings (tests point QSettings at a temporary folder)."""

    def __init__(self, qsettings: QSettings) -> None:
        self.qsettings = qsettings

    def get(self, setting: Setting) -> Any:
        value = self.qsettings.value(setting.key)
        if value is None:
            return setting.default
        try:
            if setting.type is bool:
                return value is True or str(value).lower() == "true"
            if setting.type is list:
                return [value] if isinstance(value, str) else [str(v) for v in value]
            if setting.type is bytes:
                return value if isinstance(value, QByteArray | bytes) else setting.default
            return setting.type(value)
        except (TypeError, ValueError):
            return setting.default

    def set(self, setting: Setting, value: Any) -> None:
        if setting.type is bool:
            value = "true" if value else "false"
        self.qsettings.setValue(setting.key, value)
