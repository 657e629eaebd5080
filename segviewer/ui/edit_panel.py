"""The edit dock: tool buttons, brush size, the class to paint (searchable by name), the eraser's
id, the ground-truth folder, the save button and a status line. Only widgets: `Editing` wires
them."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from segviewer.core.editing import DEFAULT_IGNORE_LABEL
from segviewer.core.labels import Palette
from segviewer.ui.edit_mode import Tool
from segviewer.ui.legend import swatch_icon


class EditPanel(QWidget):
    """Tools, brush size, class, eraser id, ground-truth folder and the save button."""

    class_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tool_buttons: dict[Tool, QToolButton] = {}
        tools = QHBoxLayout()
        tools.setSpacing(2)
        for tool in Tool:
            button = QToolButton(self)
            button.setCheckable(True)
            button.setAutoExclusive(True)
            tools.addWidget(button)
            self.tool_buttons[tool] = button
        self.brush_size = QSpinBox(self)
        self.brush_size.setRange(1, 500)
        self.brush_size.setValue(12)
        self.brush_size.setSuffix(" px")
        self.brush_size.setToolTip("Brush and eraser diameter in image pixels")
        self.class_box = QComboBox(self)
        self.class_box.setEditable(True)
        self.class_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.class_box.setToolTip("The class to paint: pick it here (type to search by name), "
                                  "click it in the legend, right-click the image, or press 1-9")
        completer = self.class_box.completer()
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.class_box.activated.connect(
            lambda i: self.class_chosen.emit(int(self.class_box.itemData(i))))
        self.quick = QLabel(self)
        self.quick.setWordWrap(True)
        self.ignore_id = QSpinBox(self)
        self.ignore_id.setRange(0, 65535)
        self.ignore_id.setValue(DEFAULT_IGNORE_LABEL)
        self.ignore_id.setToolTip("The id the eraser paints (unlabelled / ignored in scoring)")
        self.gt_dir = QLabel("(none)", self)
        self.gt_dir.setWordWrap(True)
        self.gt_dir.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.choose_gt = QPushButton("Ground-Truth Folder…", self)
        self.save = QPushButton("Save as Ground Truth", self)
        self.status = QLabel(self)
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Brush", self.brush_size)
        form.addRow("Class", self.class_box)
        form.addRow("Eraser id", self.ignore_id)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(tools)
        layout.addLayout(form)
        layout.addWidget(self.quick)
        layout.addWidget(QLabel("Ground truth goes to:", self))
        layout.addWidget(self.gt_dir)
        layout.addWidget(self.choose_gt)
        layout.addWidget(self.save)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def set_classes(self, palette: Palette, ids: list[int], current: int) -> None:
        self.class_box.blockSignals(True)
        self.class_box.clear()
        for class_id in ids:
            self.class_box.addItem(swatch_icon(palette.color(class_id)),
                                   f"{class_id} {palette.class_name(class_id)}", class_id)
        self.class_box.blockSignals(False)
        self.show_class(current)

    def show_class(self, class_id: int) -> None:
        index = self.class_box.findData(class_id)
        if index >= 0:
            self.class_box.setCurrentIndex(index)
