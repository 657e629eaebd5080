"""Edit mode on a canvas: mouse events become core edit calls, and only the changed box is
repainted.

`CanvasEditor` watches an `ImageCanvas` while it is active: the left button paints with the current
tool (brush, eraser, flood fill, polygon or lasso, pick), the right button picks the class under the
cursor, the middle button drags the view, the wheel still zooms. A round outline in the class colour
previews the brush under the cursor; a polygon in progress is drawn with a line to the cursor. Each
whole edit (a stroke from press to release, a fill, a polygon) is one `QUndoCommand` on the
session's `QUndoStack`, whose undo and redo call the core session's. All pixels are core's
(`segviewer.core.editing`); this module holds no edit logic of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QMouseEvent, QPainterPath, QPen, QUndoCommand
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem, QGraphicsView

from segviewer.core.editing import DEFAULT_IGNORE_LABEL, Change, EditSession, Rect, Stroke
from segviewer.core.labels import Palette
from segviewer.core.overlay import overlay_lut
from segviewer.ui.canvas import ImageCanvas

LASSO_START_PX = 4  # a press that moves this far (screen pixels) draws a lasso, not a vertex


class Tool(Enum):
    BRUSH = "brush"
    ERASER = "eraser"
    FILL = "fill"
    POLYGON = "polygon"
    PICK = "pick"


TOOL_NAMES = {Tool.BRUSH: "Brush", Tool.ERASER: "Eraser", Tool.FILL: "Fill",
              Tool.POLYGON: "Polygon / Lasso", Tool.PICK: "Pick Class"}


def rgba_lut(palette: Palette, hidden: frozenset[int], dtype: np.dtype) -> np.ndarray:
    """RGBA for every id the dtype holds; hidden classes fully transparent (the colouring of
    `labels.colorize_rgba`, through `overlay.overlay_lut`)."""
    size = 256 if np.dtype(dtype).itemsize == 1 else 65536
    return overlay_lut(palette.lut(size), hidden)


class EditCommand(QUndoCommand):
    """One whole edit. It is already applied when pushed, so the first redo does nothing."""

    def __init__(self, editor: CanvasEditor, session: EditSession, change: Change,
                 text: str) -> None:
        super().__init__(f"{text} ({change.pixels} px)")
        self._editor = editor
        self._session = session
        self._applied = True

    def redo(self) -> None:
        if self._applied:
            return
        self._applied = True
        self._editor.repaint(self._session, self._session.redo())

    def undo(self) -> None:
        self._applied = False
        self._editor.repaint(self._session, self._session.undo())


class CanvasEditor(QObject):
    """Turns mouse events on `canvas` into edits of the attached session."""

    painted = Signal(object, object)  # Rect, its new RGBA: after every repaint of a box
    committed = Signal()  # a whole edit done, undone or redone (update shares, boundaries)
    picked = Signal(int)  # the class under the cursor (pick tool or right button)

    def __init__(self, canvas: ImageCanvas, lut: Callable[[np.dtype], np.ndarray]) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self._lut = lut
        self.session: EditSession | None = None
        self.stack = None  # QUndoStack of the attached session
        self.tool = Tool.BRUSH
        self.value = 0
        self.brush_size = 12  # diameter in image pixels
        self.ignore_label = DEFAULT_IGNORE_LABEL
        self.active = False
        self._stroke: Stroke | None = None
        self._polygon: list[tuple[float, float]] = []
        self._press_at: QPointF | None = None
        self._lasso = False
        self._pan_from: QPointF | None = None  # middle-button drag: the left button paints
        self._drag_mode = canvas.dragMode()

        self._brush = QGraphicsEllipseItem()
        self._outline = QGraphicsPathItem()
        for item in (self._brush, self._outline):
            item.setZValue(10)
            item.setVisible(False)
            canvas.scene().addItem(item)

    # -- state ---------------------------------------------------------------------------------
    def attach(self, session: EditSession | None, stack=None) -> None:
        self._cancel_shape()
        self.session = session
        self.stack = stack

    def set_active(self, active: bool) -> None:
        if active == self.active:
            return
        self.active = active
        viewport = self.canvas.viewport()
        if active:
            self._drag_mode = self.canvas.dragMode()
            self.canvas.setDragMode(QGraphicsView.DragMode.NoDrag)
            viewport.installEventFilter(self)
            self.canvas.installEventFilter(self)
        else:
            viewport.removeEventFilter(self)
            self.canvas.removeEventFilter(self)
            self.canvas.setDragMode(self._drag_mode)
            self._cancel_shape()
            self._brush.setVisible(False)
        self._update_cursor()

    def set_tool(self, tool: Tool) -> None:
        self._cancel_shape()
        self.tool = tool
        self._update_cursor()

    def set_value(self, class_id: int) -> None:
        self.value = int(class_id)
        self._style_preview()

    def set_brush_size(self, size: int) -> None:
        self.brush_size = max(1, int(size))

    def _paint_value(self) -> int:
        return self.ignore_label if self.tool is Tool.ERASER else self.value

    # -- painting ------------------------------------------------------------------------------
    def repaint(self, session: EditSession, change: Change | Rect | None) -> None:
        """Recolour the box of `change` from the session's labels (when it is the one shown)."""
        if change is None:
            return
        rect = change.rect if isinstance(change, Change) else change
        if session is self.session and not rect.empty:
            lut = np.ascontiguousarray(self._lut(session.labels.dtype))
            # One 32-bit gather per pixel instead of four byte gathers.
            rgba = np.take(lut.view(np.uint32)[:, 0], session.labels[rect.slices]) \
                .view(np.uint8).reshape(rect.height, rect.width, 4)
            self.canvas.paint_labels(rect.x0, rect.y0, rgba)
            self.painted.emit(rect, rgba)
        if isinstance(change, Change):
            self.committed.emit()

    def _push(self, change: Change | None, text: str, painted: bool = False) -> None:
        """Show a whole edit (unless a stroke already painted it) and put it on the stack."""
        if change is None or self.session is None:
            return
        if not painted:
            self.repaint(self.session, change.rect)
        if self.stack is not None:
            self.stack.push(EditCommand(self, self.session, change, text))
        self.committed.emit()

    # -- events --------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is self.canvas:  # keys (the view has focus, not its viewport)
            if kind in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) \
                    and self._stroke is not None:
                event.accept()  # no shortcut (undo above all) in the middle of a stroke
                return True
            if kind == QEvent.Type.ShortcutOverride and self._polygon and event.key() in (
                    Qt.Key.Key_Escape, Qt.Key.Key_Return, Qt.Key.Key_Enter):
                event.accept()  # ours while a polygon is open, not the window's Esc
                return True
            if kind == QEvent.Type.KeyPress and self._polygon:
                return self._key(event)
            return False
        if kind == QEvent.Type.MouseButtonPress:
            return self._press(event)
        if kind == QEvent.Type.MouseMove:
            self._move(event)
            return False  # the canvas still reports the hovered pixel
        if kind == QEvent.Type.MouseButtonRelease:
            return self._release(event)
        if kind == QEvent.Type.MouseButtonDblClick:
            if self.tool is Tool.POLYGON and len(self._polygon) >= 3:
                self._close_polygon()
            return True
        if kind == QEvent.Type.Leave:
            self._brush.setVisible(False)
        return False

    def _image_point(self, event: QMouseEvent) -> tuple[float, float]:
        scene = self.canvas.mapToScene(event.position().toPoint())
        return float(scene.x()), float(scene.y())

    def _inside(self, point: tuple[float, float]) -> tuple[int, int] | None:
        if self.session is None:
            return None
        x, y = int(np.floor(point[0])), int(np.floor(point[1]))
        height, width = self.session.labels.shape
        return (x, y) if 0 <= x < width and 0 <= y < height else None

    def _press(self, event: QMouseEvent) -> bool:
        if self.session is None:
            return False
        point = self._image_point(event)
        pixel = self._inside(point)
        if event.button() == Qt.MouseButton.RightButton:
            if pixel is not None:
                self._pick(pixel)
            return True
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = event.position()
            return True
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        self.canvas.setFocus()
        if self.tool in (Tool.BRUSH, Tool.ERASER):
            self._stroke = self.session.begin_stroke(point, self.brush_size / 2,
                                                     self._paint_value())
            self.repaint(self.session, self._stroke.rect)
        elif self.tool is Tool.FILL and pixel is not None:
            self._push(self.session.fill(*pixel, self.value), "Fill")
        elif self.tool is Tool.PICK and pixel is not None:
            self._pick(pixel)
        elif self.tool is Tool.POLYGON:
            self._press_at = event.position()
            self._lasso = False
            self._polygon.append(point)
            self._draw_outline(point)
        return True

    def _move(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            for bar, step in ((self.canvas.horizontalScrollBar(), delta.x()),
                              (self.canvas.verticalScrollBar(), delta.y())):
                bar.setValue(bar.value() - round(step))
        point = self._image_point(event)
        self._show_brush(point)
        if self._stroke is not None:
            self.repaint(self.session, self._stroke.extend(point))
        elif self.tool is Tool.POLYGON and self._polygon:
            if self._press_at is not None and not self._lasso and (
                    event.position() - self._press_at).manhattanLength() >= LASSO_START_PX:
                self._lasso = True
            if self._lasso:
                self._polygon.append(point)
            self._draw_outline(point)

    def _release(self, event: QMouseEvent) -> bool:
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = None
            return True
        if event.button() != Qt.MouseButton.LeftButton:
            return event.button() == Qt.MouseButton.RightButton
        if self._stroke is not None:
            stroke, self._stroke = self._stroke, None
            change = self.session.record(stroke.finish())
            self._push(change, "Erase" if self.tool is Tool.ERASER else "Brush stroke",
                       painted=True)
        elif self.tool is Tool.POLYGON:
            self._press_at = None
            if self._lasso:
                self._close_polygon("Lasso")
        return True

    def _key(self, event: QKeyEvent) -> bool:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._close_polygon()
            return True
        if event.key() == Qt.Key.Key_Escape:
            self._cancel_shape()
            return True
        return False

    def _pick(self, pixel: tuple[int, int]) -> None:
        self.set_value(self.session.pick(*pixel))
        self.picked.emit(self.value)

    def _close_polygon(self, text: str = "Polygon") -> None:
        points, self._polygon = self._polygon, []
        self._lasso = False
        self._outline.setVisible(False)
        if len(points) >= 3 and self.session is not None:
            self._push(self.session.polygon(points, self.value), text)

    def _cancel_shape(self) -> None:
        if self._stroke is not None and self.session is not None:
            stroke, self._stroke = self._stroke, None
            self._push(self.session.record(stroke.finish()), "Brush stroke",  # stays undoable
                       painted=True)
        self._polygon = []
        self._lasso = False
        self._press_at = None
        self._outline.setVisible(False)

    # -- preview -------------------------------------------------------------------------------
    def _class_color(self) -> QColor:
        if self.session is None:
            return QColor("white")
        value = self._paint_value()
        dtype = np.uint16 if value > 255 else self.session.labels.dtype  # ids a paint widens to
        r, g, b, _ = self._lut(dtype)[value]
        return QColor(int(r), int(g), int(b))

    def _style_preview(self) -> None:
        color = self._class_color()
        pen = QPen(color, 2)
        pen.setCosmetic(True)  # two screen pixels at any zoom
        self._brush.setPen(pen)
        fill = QColor(color)
        fill.setAlpha(70)
        self._brush.setBrush(QBrush(fill))
        self._outline.setPen(pen)

    def _show_brush(self, point: tuple[float, float]) -> None:
        show = self.active and self.tool in (Tool.BRUSH, Tool.ERASER) and self.session is not None
        self._brush.setVisible(show)
        if show:
            self._style_preview()
            r = max(self.brush_size / 2, 0.5)
            self._brush.setRect(QRectF(point[0] - r, point[1] - r, 2 * r, 2 * r))

    def _draw_outline(self, cursor: tuple[float, float]) -> None:
        path = QPainterPath()
        path.moveTo(*self._polygon[0])
        for point in self._polygon[1:]:
            path.lineTo(*point)
        path.lineTo(*cursor)
        self._style_preview()
        self._outline.setPath(path)
        self._outline.setVisible(True)

    def _update_cursor(self) -> None:
        viewport = self.canvas.viewport()
        if self.active and self.tool in (Tool.FILL, Tool.PICK, Tool.POLYGON):
            viewport.setCursor(Qt.CursorShape.CrossCursor)
        elif self.active:
            viewport.setCursor(Qt.CursorShape.ArrowCursor)
        else:
            viewport.unsetCursor()
