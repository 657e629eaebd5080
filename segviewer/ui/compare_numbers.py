"""The compare window's numbers: the per-class table and the summary line above it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from segviewer.core.compare import Scores
from segviewer.ui.legend import swatch_icon

CLASS_COLUMNS = ("Class", "A %", "B %", "Δ %", "IoU A", "IoU B", "Δ IoU")


def pct(value: float | None, scale: float = 100.0, signed: bool = False,
        digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value * scale:+.{digits}f}" if signed else f"{value * scale:.{digits}f}"


def summary_html(what: str, agreement: float | None, scores_a: Scores | None,
                 scores_b: Scores | None) -> str:
    text = f"<b>{what}</b> &nbsp; agreement <b>{pct(agreement, 1.0)} %</b>"
    if scores_a is not None and scores_b is not None:
        delta = scores_b.mean_iou - scores_a.mean_iou
        text += (f" &nbsp;·&nbsp; pixel accuracy A {pct(scores_a.pixel_accuracy)} % · "
                 f"B {pct(scores_b.pixel_accuracy)} % &nbsp;·&nbsp; mIoU A "
                 f"{pct(scores_a.mean_iou)} % · B {pct(scores_b.mean_iou)} % "
                 f"(<b>{pct(delta, signed=True)}</b>)")
    return text


class ClassTable(QTableWidget):
    """One row per class: shares in A and B, their difference, IoU against ground truth."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(CLASS_COLUMNS), parent)
        self.setHorizontalHeaderLabels(CLASS_COLUMNS)
        self.verticalHeader().hide()
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().setDefaultSectionSize(22)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.setMinimumWidth(390)  # every column: a dock otherwise starts at its title's width

    def fill(self, rows) -> None:
        rows = sorted(rows, key=lambda r: -max(r.share_a, r.share_b))
        self.setRowCount(len(rows))
        for i, row in enumerate(rows):
            name = QTableWidgetItem(swatch_icon(row.color), f"{row.id} {row.name}")
            name.setData(Qt.ItemDataRole.UserRole, row.id)
            self.setItem(i, 0, name)
            cells = (pct(row.share_a, 1.0), pct(row.share_b, 1.0),
                     pct(row.share_delta, 1.0, signed=True), pct(row.iou_a),
                     pct(row.iou_b), pct(row.iou_delta, signed=True))
            for column, text in enumerate(cells, start=1):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(i, column, item)

    def texts(self) -> dict[int, list[str]]:
        """{class id: the texts of its row's number columns} (what the table shows)."""
        table = {}
        for i in range(self.rowCount()):
            class_id = self.item(i, 0).data(Qt.ItemDataRole.UserRole)
            table[class_id] = [self.item(i, c).text() for c in range(1, self.columnCount())]
        return table
