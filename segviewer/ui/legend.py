"""The class legend: colour, id, name and pixel share of each class in the result shown.

A view of `ViewerState`: it draws the state's palette, hidden classes and shown result, and sends
the user's edits (a checkbox hides a class, a double-click on the swatch picks a colour) back to the
state. The line above the table names the model that made the labels, or says none are shown. The
legend lists the classes present in the result; with no result it lists the whole palette.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from segviewer.core.labels import PALETTE_NAMES, Palette
from segviewer.core.overlay import class_shares
from segviewer.core.viewer_state import FROM_MODEL, ModelIdentity, Shown, ViewerState

FROM_FILE = "file"
COLUMNS = ("", "ID", "Class", "Share")
SWATCH, ID, NAME, SHARE = range(4)


@dataclass(frozen=True)
class LegendRow:
    id: int
    name: str
    color: tuple[int, int, int]
    share: float | None  # percent of the image's pixels; None before a prediction


class _NumberItem(QTableWidgetItem):
    """Sorts by the number it shows, not by its text."""

    def __init__(self, value: float, text: str) -> None:
        super().__init__(text)
        self.setData(Qt.ItemDataRole.UserRole, value)
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return float(self.data(Qt.ItemDataRole.UserRole)) < float(
            other.data(Qt.ItemDataRole.UserRole))


def _percent(share: float | None) -> str:
    if share is None:
        return ""
    return "< 0.1 %" if 0 < share < 0.05 else f"{share:.1f} %"


def swatch_icon(color: tuple[int, int, int], size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*color))
    painter = QPainter(pixmap)
    painter.setPen(QColor(0, 0, 0, 120))
    painter.drawRect(0, 0, size - 1, size - 1)
    painter.end()
    return QIcon(pixmap)


class LegendWidget(QWidget):
    palette_requested = Signal(str)  # "model", a palette name, or a JSON file path

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.source_label = QLabel()  # which model made the labels shown
        self.source_label.setWordWrap(True)
        self.source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.palette_combo = QComboBox()
        self.palette_combo.setToolTip("Colour palette")
        self.palette_combo.addItem("From model", FROM_MODEL)
        for name in PALETTE_NAMES:
            self.palette_combo.addItem(name.capitalize() if name.islower() else name, name)
        self.palette_combo.addItem("Custom JSON file…", FROM_FILE)
        self.palette_combo.activated.connect(self._palette_chosen)
        self.sort_combo = QComboBox()
        self.sort_combo.addItem("By share", SHARE)
        self.sort_combo.addItem("By ID", ID)
        self.sort_combo.currentIndexChanged.connect(self._sort)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(SWATCH, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(ID, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(SHARE, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.itemChanged.connect(self._item_changed)
        self.table.cellDoubleClicked.connect(self._cell_double_clicked)

        top = QHBoxLayout()
        top.addWidget(self.palette_combo, 1)
        top.addWidget(self.sort_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.source_label)
        layout.addLayout(top)
        layout.addWidget(self.table)

        self._shares: dict[int, float] | None = None
        self._filling = False
        state.palette_changed.connect(self._palette_changed)
        state.shown_changed.connect(self._shown_changed)
        state.labels_edited.connect(self._shown_changed)
        state.hidden_changed.connect(lambda _hidden: self._fill())
        state.model_changed.connect(self._model_changed)
        state.current_changed.connect(lambda _path: self._describe())
        self._palette_changed(state.palette, state.palette_choice)
        self._shown_changed(state.shown)

    # -- state ---------------------------------------------------------------------------------
    @property
    def palette(self) -> Palette:
        return self.state.palette

    @property
    def hidden(self) -> frozenset[int]:
        return self.state.hidden

    def rows(self) -> list[LegendRow]:
        """The rows as shown (in display order), for export."""
        result = []
        for row in range(self.table.rowCount()):
            class_id = int(self.table.item(row, ID).data(Qt.ItemDataRole.UserRole))
            share = self.table.item(row, SHARE).data(Qt.ItemDataRole.UserRole)
            result.append(LegendRow(class_id, self.table.item(row, NAME).text(),
                                    self._color(class_id), None if share < 0 else float(share)))
        return result

    def set_class_visible(self, class_id: int, visible: bool) -> None:
        self.state.set_class_hidden(class_id, not visible)

    def set_class_color(self, class_id: int, rgb: tuple[int, int, int]) -> None:
        self.state.set_class_color(class_id, rgb)

    def _palette_changed(self, palette: Palette, choice: str) -> None:
        index = self.palette_combo.findData(choice)
        if index < 0:  # a custom file: show its name above the "Custom JSON file…" entry
            self.palette_combo.insertItem(self.palette_combo.count() - 1, palette.name, choice)
            index = self.palette_combo.count() - 2
        self.palette_combo.setCurrentIndex(index)
        self._fill()

    def _shown_changed(self, shown: Shown | None) -> None:
        self._shares = None if shown is None else class_shares(shown.prediction.labels)
        self._describe()
        self._fill()

    def _model_changed(self, _identity: ModelIdentity | None, _selecting: str | None) -> None:
        self._describe()

    def _describe(self) -> None:
        shown, state = self.state.shown, self.state
        if shown is not None:
            text = f"Labels from <b>{shown.describe()}</b>"
        elif state.selecting is not None:
            text = f"No labels shown: switching to {state.selecting}…"
        elif state.identity is not None and state.current is not None:
            text = f"No labels shown yet for {state.identity}"
        else:
            text = "No labels shown"
        self.source_label.setText(text)
        self.source_label.setToolTip(self.source_label.text().replace("<b>", "").replace(
            "</b>", ""))

    # -- table ---------------------------------------------------------------------------------
    def _color(self, class_id: int) -> tuple[int, int, int]:
        return tuple(int(c) for c in self.palette.color(class_id))

    def _fill(self) -> None:
        self._filling = True
        self.table.setSortingEnabled(False)
        self.table.setRowCount(0)
        palette, hidden = self.palette, self.state.hidden
        ids = sorted(self._shares) if self._shares is not None else range(len(palette.colors))
        self.table.setRowCount(len(ids))
        for row, class_id in enumerate(ids):
            swatch = QTableWidgetItem(swatch_icon(self._color(class_id)), "")
            swatch.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable
                            | Qt.ItemFlag.ItemIsSelectable)
            swatch.setCheckState(Qt.CheckState.Unchecked if class_id in hidden
                                 else Qt.CheckState.Checked)
            swatch.setToolTip("Uncheck to hide this class; double-click to change its colour")
            swatch.setData(Qt.ItemDataRole.UserRole, class_id)
            share = None if self._shares is None else self._shares[class_id]
            self.table.setItem(row, SWATCH, swatch)
            self.table.setItem(row, ID, _NumberItem(class_id, str(class_id)))
            self.table.setItem(row, NAME, QTableWidgetItem(palette.class_name(class_id)))
            self.table.setItem(row, SHARE, _NumberItem(
                -1.0 if share is None else share, _percent(share)))
        self._filling = False
        self._sort()

    def _sort(self) -> None:
        column = self.sort_combo.currentData()
        order = Qt.SortOrder.DescendingOrder if column == SHARE else Qt.SortOrder.AscendingOrder
        self.table.sortItems(column, order)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != SWATCH:
            return
        class_id = int(item.data(Qt.ItemDataRole.UserRole))
        self.state.set_class_hidden(class_id, item.checkState() != Qt.CheckState.Checked)

    def _cell_double_clicked(self, row: int, column: int) -> None:
        if column != SWATCH:
            return
        class_id = int(self.table.item(row, ID).data(Qt.ItemDataRole.UserRole))
        color = QColorDialog.getColor(QColor(*self._color(class_id)), self,
                                      f"Colour of {self.palette.class_name(class_id)}")
        if color.isValid():
            self.set_class_color(class_id, (color.red(), color.green(), color.blue()))

    def _palette_chosen(self, index: int) -> None:
        choice = self.palette_combo.itemData(index)
        if choice == FROM_FILE:
            path, _ = QFileDialog.getOpenFileName(self, "Open palette", "", "Palette (*.json)")
            if not path:
                self._palette_changed(self.palette, self.state.palette_choice)
                return
            choice = path
        self.palette_requested.emit(choice)


def legend_image(rows: list[LegendRow], title: str = "") -> QImage:
    """The legend drawn as a picture (swatch, id, name, share), for "Export legend as PNG"."""
    line, pad, width = 26, 14, 420
    height = pad * 2 + line * (len(rows) + (1 if title else 0))
    image = QImage(width, max(height, line + 2 * pad), QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    font = QFont()
    font.setPixelSize(14)
    painter.setFont(font)
    y = pad
    if title:
        bold = QFont(font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.drawText(QRect(pad, y, width - 2 * pad, line), Qt.AlignmentFlag.AlignVCenter, title)
        painter.setFont(font)
        y += line
    for row in rows:
        painter.fillRect(QRect(pad, y + 4, 18, 18), QColor(*row.color))
        painter.setPen(QColor(0, 0, 0, 140))
        painter.drawRect(QRect(pad, y + 4, 18, 18))
        painter.setPen(QColor("black"))
        centre = Qt.AlignmentFlag.AlignVCenter
        painter.drawText(QRect(pad + 28, y, 40, line), centre, str(row.id))
        painter.drawText(QRect(pad + 70, y, 230, line), centre, row.name)
        if row.share is not None:
            painter.drawText(QRect(width - pad - 90, y, 90, line),
                             centre | Qt.AlignmentFlag.AlignRight, f"{row.share:.2f} %")
        y += line
    painter.end()
    return image
