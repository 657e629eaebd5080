"""Small widgets the dialogs share: a path field with pickers and an inline status line."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

OK_COLOR = "#1b7a1b"
ERROR_COLOR = "#c62828"


class PathField(QWidget):
    """A path line edit with one picker button per kind ("file", "dir" or "save").

    `changed(path)` fires after a pick or when the user finishes typing, not on every keystroke,
    so that listeners can start work (e.g. inspecting a checkpoint) once per path.
    """

    changed = Signal(str)

    def __init__(
        self,
        kinds: tuple[str, ...] = ("file",),
        caption: str = "Choose",
        file_filter: str = "",
        placeholder: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._caption, self._filter = caption, file_filter
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText(placeholder)
        self.edit.setClearButtonEnabled(True)
        self.edit.editingFinished.connect(self._typed)
        self._last = ""
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        labels = {"file": "File…", "dir": "Folder…", "save": "Browse…"}
        for kind in kinds:
            text = "Browse…" if len(kinds) == 1 else labels[kind]
            button = QPushButton(text, self)
            button.clicked.connect(lambda _=False, k=kind: self._pick(k))
            layout.addWidget(button)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, path: str) -> None:
        """Set the path and announce it, as a pick does."""
        self.edit.setText(path)
        self._typed()

    def _typed(self) -> None:
        if self.text() != self._last:
            self._last = self.text()
            self.changed.emit(self._last)

    def _pick(self, kind: str) -> None:
        start = self.text()
        if kind == "dir":
            path = QFileDialog.getExistingDirectory(self, self._caption, start)
        elif kind == "save":
            path, _ = QFileDialog.getSaveFileName(self, self._caption, start, self._filter)
        else:
            path, _ = QFileDialog.getOpenFileName(self, self._caption, start, self._filter)
        if path:
            self.setText(path)


class StatusLabel(QLabel):
    """One inline, selectable message: green for success, red for errors, plain for progress."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.kind = ""
        self.setVisible(False)

    def show_ok(self, text: str) -> None:
        self._show(text, "ok", OK_COLOR)

    def show_error(self, text: str) -> None:
        self._show(text, "error", ERROR_COLOR)

    def show_info(self, text: str) -> None:
        self._show(text, "info", "")

    def clear_status(self) -> None:
        self.kind = ""
        self.clear()
        self.setVisible(False)

    def _show(self, text: str, kind: str, color: str) -> None:
        self.kind = kind
        self.setStyleSheet(f"color: {color};" if color else "")
        self.setText(text)
        self.setVisible(True)
