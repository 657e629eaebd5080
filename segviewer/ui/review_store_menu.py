"""Which review store and which reviewer: the settings that name them, and the review queue's
Store ▾ menu that changes them, imports old verdict files and exports verdicts.

Edit mode reads the same settings, so a "fixed" verdict is recorded in the store and under the
name the review queue uses.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMenu, QToolButton, QWidget

from segviewer.core.review import LEGACY_VERDICTS_FILE, ReviewError, ReviewSession, SessionVerdicts
from segviewer.core.review_store import ReviewStore, default_reviewer

STORE_SETTING = "review/store"  # "" or unset: the default store in the user's data folder
REVIEWER_SETTING = "review/reviewer"


def open_store(settings: QSettings) -> ReviewStore:
    """The store the settings name (default: the user's data folder). Raises ReviewError."""
    return ReviewStore(str(settings.value(STORE_SETTING, "") or "") or None)


def reviewer_name(settings: QSettings) -> str:
    """The reviewer the settings name (default: the user's login name)."""
    return str(settings.value(REVIEWER_SETTING, "") or "").strip() or default_reviewer()


def open_verdicts(session: ReviewSession, settings: QSettings) -> SessionVerdicts:
    """The session's verdicts in the store and as the reviewer the settings name. Raises
    ReviewError."""
    return SessionVerdicts(open_store(settings), session, reviewer_name(settings))


class StoreMenu:
    """The review panel's Store ▾ button and what its menu does (a mixin of `ReviewPanel`:
    it uses the panel's `settings`, `store`, `error` and `_refill`)."""

    settings: QSettings
    store: SessionVerdicts | None

    def _store_button(self: QWidget) -> QToolButton:
        button = QToolButton(self)
        button.setText("Store ▾")
        button.setToolTip("Where verdicts are kept, who you are, import and export")
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(button)
        self.act_store = menu.addAction("Use Review Store File…", self.choose_store)
        self.act_default_store = menu.addAction("Use the Default Store",
                                                lambda: self.use_store(""))
        self.act_reviewer = menu.addAction("Reviewer Name…", self.choose_reviewer)
        menu.addSeparator()
        self.act_import = menu.addAction(f"Import {LEGACY_VERDICTS_FILE}…", self.import_dialog)
        self.act_export = menu.addAction("Export Verdicts (CSV/JSON)…", self.export_dialog)
        menu.aboutToShow.connect(self._enable)
        button.setMenu(menu)
        return button

    def _reopen(self, store: ReviewStore | None, reviewer: str | None) -> None:
        """The session's verdicts again, in another store or as another reviewer."""
        if self.store is None:
            return
        try:
            self.store = SessionVerdicts(store or self.store.store, self.store.session,
                                         reviewer or self.store.reviewer)
        except ReviewError as exc:
            self.error.emit(str(exc))
            return
        self._refill()

    def use_store(self, path: str) -> None:
        """Keep verdicts in `path` ("": the default store) from now on."""
        try:
            store = ReviewStore(path or None)
        except ReviewError as exc:
            self.error.emit(str(exc))
            return
        self.settings.setValue(STORE_SETTING, path)
        self._reopen(store, None)

    def choose_store(self) -> None:
        start = str(self.store.path) if self.store is not None else str(Path.home())
        path, _ = QFileDialog.getSaveFileName(
            self, "Keep verdicts in (an existing store, or a new one)", start,
            "Review store (*.sqlite3 *.sqlite *.db);;All files (*)",
            options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.use_store(path)

    def choose_reviewer(self) -> None:
        current = self.store.reviewer if self.store is not None else ""
        name, ok = QInputDialog.getText(self, "Reviewer", "Your name, recorded with each "
                                        "verdict:", text=current)
        if ok and name.strip():
            self.set_reviewer(name.strip())

    def set_reviewer(self, name: str) -> None:
        self.settings.setValue(REVIEWER_SETTING, name)
        self._reopen(None, name)

    def import_dialog(self) -> None:
        if self.store is None:
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Import verdicts", str(self.store.session.folder),
            f"Old SegViewer verdicts ({LEGACY_VERDICTS_FILE} *.json)")
        if path:
            self.import_legacy(Path(path))

    def import_legacy(self, path: Path) -> int:
        """Import an old verdict file for this session's images, as this reviewer."""
        if self.store is None:
            return 0
        try:
            count = self.store.import_legacy(path)
        except ReviewError as exc:
            self.error.emit(str(exc))
            return 0
        self._refill()
        return count

    def export_dialog(self) -> None:
        if self.store is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export verdicts",
                                              str(Path.home() / "verdicts.csv"),
                                              "CSV (*.csv);;JSON (*.json)")
        if path:
            try:
                self.store.export(Path(path))
            except ReviewError as exc:
                self.error.emit(str(exc))
