"""Choose what to compare: sources A and B, and optionally a ground-truth folder.

Each source is the window's current connection at some version, another server (chosen with
ConnectDialog), or a local SavedModel folder. The dialog only collects a `CompareChoice`; the
compare window opens the backends in a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from segviewer.core.review import DEFAULT_IGNORE_LABEL
from segviewer.core.serving.connection import ConnectionSpec
from segviewer.ui.dialogs.connect import ConnectDialog
from segviewer.ui.dialogs.fields import PathField, StatusLabel

NEWEST = "newest"
CURRENT, OTHER, FOLDER = range(3)  # the kinds of source, in the combo's order


@dataclass(frozen=True)
class SourceChoice:
    """One side. spec None: the window's current connection. model None: the first served;
    version None: the newest."""

    spec: ConnectionSpec | None = None
    model: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class CompareChoice:
    a: SourceChoice
    b: SourceChoice
    gt_dir: str = ""  # "" : no ground truth
    gt_colored: bool = False  # ground truth drawn in A's palette colours, not ids
    ignore_label: int = DEFAULT_IGNORE_LABEL


class SourceBox(QGroupBox):
    """One source: kind, then the connection or folder, model name and version."""

    def __init__(self, title: str, settings: QSettings, current: str | None, model: str | None,
                 versions: list[int], version: int | None, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self._settings = settings
        self._other: ConnectionSpec | None = None
        self.kind = QComboBox(self)
        self.kind.addItems([f"Current connection: {current}" if current else
                            "Current connection (none)", "Another server…",
                            "Local SavedModel folder"])
        self.kind.model().item(CURRENT).setEnabled(current is not None)

        self.pages = QStackedWidget(self)
        self.pages.addWidget(QLabel("The versions the window's model is served at.", self))
        other = QWidget(self)
        other_form = QFormLayout(other)
        other_form.setContentsMargins(0, 0, 0, 0)
        self.other_label = QLabel("no server chosen", other)
        self.other_button = QPushButton("Choose server…", other)
        self.other_button.clicked.connect(self.choose_server)
        other_form.addRow(self.other_button, self.other_label)
        self.pages.addWidget(other)
        self.folder = PathField(("dir",), "SavedModel folder",
                                placeholder="<models>/<name>/<version>/ or any level above")
        self.pages.addWidget(self.folder)
        self.kind.currentIndexChanged.connect(self.pages.setCurrentIndex)

        self.model = QLineEdit(model or "", self)
        self.model.setPlaceholderText("the first model served")
        self.version = QComboBox(self)
        self.version.setEditable(True)
        self.version.setToolTip(f"A version number, or '{NEWEST}'")
        self.version.addItems([NEWEST, *(str(v) for v in versions)])
        self.version.setCurrentText(str(version) if version is not None else NEWEST)

        form = QFormLayout(self)
        form.addRow("Source:", self.kind)
        form.addRow("", self.pages)
        form.addRow("Model:", self.model)
        form.addRow("Version:", self.version)
        self.kind.setCurrentIndex(CURRENT if current is not None else FOLDER)

    def choose_server(self) -> None:
        dialog = ConnectDialog(self, self._settings)
        if self._other is not None:
            dialog.set_connection(self._other)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.set_server(dialog.connection())

    def set_server(self, spec: ConnectionSpec) -> None:
        self._other = spec
        self.other_label.setText(spec.describe())
        self.kind.setCurrentIndex(OTHER)

    def choice(self) -> SourceChoice:
        """What the fields say; ValueError with a one-line message when something is missing."""
        title = self.title()
        text = self.version.currentText().strip().lower()
        version = None
        if text not in ("", NEWEST):
            if not text.isdigit() or int(text) < 1:
                raise ValueError(f"{title}: version '{text}' must be a number of 1 or more, "
                                 f"or '{NEWEST}'")
            version = int(text)
        model = self.model.text().strip() or None
        kind = self.kind.currentIndex()
        if kind == CURRENT:
            return SourceChoice(None, model, version)
        if kind == OTHER:
            if self._other is None:
                raise ValueError(f"{title}: choose a server (Choose server…)")
            return SourceChoice(self._other, model, version)
        folder = self.folder.text()
        if not folder or not Path(folder).is_dir():
            raise ValueError(f"{title}: choose an existing SavedModel folder (Browse…)")
        return SourceChoice(ConnectionSpec("local", folder), model, version)


class CompareSourcesDialog(QDialog):
    """`current`: the window's connection (description) or None; `versions`: its model's
    versions. A defaults to the oldest version, B to the newest."""

    def __init__(self, parent: QWidget | None, settings: QSettings, current: str | None = None,
                 model: str | None = None, versions: list[int] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare two models")
        self.setMinimumWidth(560)
        self._settings = settings
        versions = sorted(versions or [])
        self.box_a = SourceBox("Model A (reference)", settings, current, model, versions,
                               versions[0] if len(versions) > 1 else None, self)
        self.box_b = SourceBox("Model B (candidate)", settings, current, model, versions,
                               None, self)

        gt = QGroupBox("Ground truth (optional)", self)
        self.gt_dir = PathField(("dir",), "Ground-truth folder",
                                placeholder="label PNGs named like the images")
        self.gt_dir.setToolTip("Label PNGs matched to the images by file name (subfolders too)")
        self.gt_dir.setText(str(settings.value("compare/gt_dir", "")))
        self.gt_colored = QCheckBox("Colour-coded (turn colours into ids with model A's palette)",
                                    gt)
        self.gt_colored.setChecked(settings.value("compare/gt_colored", "false") == "true")
        self.ignore = QSpinBox(gt)
        self.ignore.setRange(0, 65535)
        self.ignore.setValue(int(settings.value("compare/ignore_label", DEFAULT_IGNORE_LABEL)))
        self.ignore.setToolTip("Ground-truth id left out of every score")
        form = QFormLayout(gt)
        form.addRow("Folder:", self.gt_dir)
        form.addRow("", self.gt_colored)
        form.addRow("Ignore label:", self.ignore)

        self.status = StatusLabel(self)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Compare")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (self.box_a, self.box_b, gt, self.status):
            layout.addWidget(widget)
        layout.addStretch(1)
        layout.addWidget(buttons)

    def choice(self) -> CompareChoice:
        """The comparison the fields describe; ValueError with a one-line message if incomplete."""
        a, b = self.box_a.choice(), self.box_b.choice()
        if a == b:
            raise ValueError("A and B are the same model version — pick another version or "
                             "source for B")
        gt = self.gt_dir.text()
        if gt and not Path(gt).is_dir():
            raise ValueError(f"ground-truth folder '{gt}' does not exist — choose a folder or "
                             "clear the field")
        return CompareChoice(a, b, gt, self.gt_colored.isChecked(), self.ignore.value())

    def accept(self) -> None:
        try:
            choice = self.choice()
        except ValueError as exc:
            self.status.show_error(str(exc))
            return
        s = self._settings
        s.setValue("compare/gt_dir", choice.gt_dir)
        s.setValue("compare/gt_colored", "true" if choice.gt_colored else "false")
        s.setValue("compare/ignore_label", choice.ignore_label)
        super().accept()
