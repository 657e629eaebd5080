"""One row of the image list: thumbnail, file name (elided in the middle) and status line."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from segviewer.core.viewer_state import Status
from segviewer.ui.file_model import PATH_ROLE, STATUS_ROLE
from segviewer.ui.thumbnails import ThumbnailCache

THUMB = 56  # logical pixels; thumbnails are made at twice that, sharp on HiDPI
PAD = 3

_STATUS_COLORS = {Status.FAILED: QColor(200, 40, 40), Status.DONE: None,
                  Status.PENDING: QColor(130, 130, 130), Status.RUNNING: QColor(40, 110, 200)}


class RowDelegate(QStyledItemDelegate):
    """Thumbnail, name and status line; asks the thumbnail cache only for the rows it paints."""

    def __init__(self, thumbnails: ThumbnailCache, status_line, parent=None) -> None:
        super().__init__(parent)
        self._thumbnails = thumbnails
        self._status_line = status_line  # index -> the text under the name

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:
        return QSize(200, max(THUMB, 2 * option.fontMetrics.height()) + 2 * PAD)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget else None
        if style is not None:  # selection and hover background, as the style draws them
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        rect = option.rect
        path = index.data(PATH_ROLE)
        box = QRect(rect.left() + PAD, rect.top() + PAD, THUMB, THUMB)
        image = self._thumbnails.get(path)
        if image is not None:
            painter.drawImage(box, image)
        else:
            painter.fillRect(box.adjusted(4, 4, -4, -4), QColor(200, 200, 204)
                             if not self._thumbnails.failed(path) else QColor(230, 200, 200))
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        left = box.right() + 2 * PAD
        width = max(0, rect.right() - left - PAD)
        metrics = option.fontMetrics
        line = metrics.height()
        top = rect.top() + (rect.height() - 2 * line) // 2
        painter.save()
        painter.setPen(opt.palette.color(text_role))
        name = metrics.elidedText(index.data(), Qt.TextElideMode.ElideMiddle, width)
        painter.drawText(QRect(left, top, width, line), Qt.AlignmentFlag.AlignVCenter, name)
        status = index.data(STATUS_ROLE)
        color = _STATUS_COLORS[status]
        if color is not None and not selected:
            painter.setPen(color)
        text = metrics.elidedText(self._status_line(index), Qt.TextElideMode.ElideRight, width)
        painter.drawText(QRect(left, top + line, width, line), Qt.AlignmentFlag.AlignVCenter, text)
        painter.restore()
