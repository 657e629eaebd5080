"""The review queue: the compared images worst first, a verdict per image and an optional note.

The panel shows and edits core's `SessionVerdicts` (the review store as one reviewer sees it),
which saves every change at once, so closing the window at any point loses nothing; every
reviewer's verdict on an image is shown. The store file and the reviewer's name are chosen here
(remembered in the settings; `review_store_menu`); old `.segviewer-review.json` files are imported
and verdicts exported from here too. Ordering is core's `sort_results`.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from segviewer.core.review import (
    LEGACY_VERDICTS_FILE,
    ImageResult,
    ReviewError,
    ReviewSession,
    SessionVerdicts,
    SortKey,
    Verdict,
    sort_results,
)
from segviewer.core.review_store import MARKS, consensus
from segviewer.ui.legend import swatch_icon
from segviewer.ui.review_store_menu import StoreMenu, open_verdicts

KEY_ROLE = Qt.ItemDataRole.UserRole
SORT_LABELS = {
    SortKey.AGREEMENT: "Lowest agreement first",
    SortKey.MIOU_DROP: "Largest mIoU drop (A → B) first",
    SortKey.MIOU_A: "Lowest mIoU of A first",
    SortKey.MIOU_B: "Lowest mIoU of B first",
}
VERDICT_LABELS = {Verdict.PASS: "Pass", Verdict.FAIL: "Fail", Verdict.NEEDS_LOOK: "Needs look",
                  Verdict.FIXED: "Fixed"}
VERDICT_COLORS = {Verdict.PASS: (46, 125, 50), Verdict.FAIL: (198, 40, 40),
                  Verdict.NEEDS_LOOK: (239, 160, 0), Verdict.FIXED: (21, 101, 192)}
_UNSEEN = (190, 190, 190)


def _pct(value: float | None, scale: float = 100.0, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value * scale:+.1f}" if signed else f"{value * scale:.1f} %"


class ReviewPanel(StoreMenu, QWidget):
    current_changed = Signal(str)  # the selected image's key
    verdict_changed = Signal(str)  # key whose verdict was set, changed or cleared
    error = Signal(str)  # a verdict that could not be saved

    def __init__(self, parent: QWidget | None = None,
                 settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or QSettings()
        self.sort = QComboBox(self)
        for key, label in SORT_LABELS.items():
            self.sort.addItem(label, key.value)
        self.sort.setToolTip("Order of the queue, worst first")
        self.sort.currentIndexChanged.connect(lambda _: self._refill())

        self.queue = QListWidget(self)
        self.queue.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.queue.setAlternatingRowColors(True)
        self.queue.setSpacing(1)
        # Three lines per row, long ones cut (the tooltip has it all): rows of one height lay
        # out at once, thousands of them included.
        self.queue.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.queue.setUniformItemSizes(True)
        self.queue.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.queue.currentItemChanged.connect(self._current_changed)

        self.buttons: dict[Verdict, QPushButton] = {}
        row = QGridLayout()
        for number, verdict in enumerate(MARKS, start=1):  # "fixed": by saving ground truth
            button = QPushButton(f"{VERDICT_LABELS[verdict]}  ({number})", self)
            button.setIcon(swatch_icon(VERDICT_COLORS[verdict]))
            button.setToolTip(f"Mark the image '{verdict.value}' (key {number})")
            button.clicked.connect(lambda _=False, v=verdict: self.set_verdict(v))
            self.buttons[verdict] = button
            row.addWidget(button, (number - 1) // 2, (number - 1) % 2)
        self.clear_button = QPushButton("Clear", self)
        self.clear_button.setToolTip("Forget this image's verdict")
        self.clear_button.clicked.connect(lambda: self.set_verdict(None))
        row.addWidget(self.clear_button, 1, 1)

        self.note = QLineEdit(self)
        self.note.setPlaceholderText("Note (optional), saved with the verdict")
        self.note.setClearButtonEnabled(True)
        self.note.editingFinished.connect(self._note_edited)
        self.counts = QLabel(self)
        self.counts.setWordWrap(True)

        self.store_button = self._store_button()

        grid = QGridLayout()
        grid.addWidget(QLabel("Order:"), 0, 0)
        grid.addWidget(self.sort, 0, 1)
        grid.addWidget(self.store_button, 0, 2)
        grid.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(grid)
        layout.addWidget(self.queue, 1)
        layout.addLayout(row)
        layout.addWidget(self.note)
        layout.addWidget(self.counts)

        self.results: list[ImageResult] = []
        self.store: SessionVerdicts | None = None
        self._filling = False
        # Results stream in one by one (thousands from prediction folders): the queue is
        # rebuilt at most every few refill-times, not once per result.
        self._refill_timer = QTimer(self)
        self._refill_timer.setSingleShot(True)
        self._refill_timer.timeout.connect(self._refill)
        self._refill_seconds = 0.0
        self._icons: dict[tuple[int, int, int], QIcon] = {}
        self._emitted: str | None = None  # the key current_changed last announced
        self._legacy: Path | None = None  # an old verdict file in the image folder
        self._enable()

    # -- content -------------------------------------------------------------------------------
    @property
    def sort_key(self) -> SortKey:
        return SortKey(self.sort.currentData())

    def set_sort_key(self, key: SortKey) -> None:
        self.sort.setCurrentIndex(self.sort.findData(SortKey(key).value))

    def set_results(self, results: list[ImageResult]) -> None:
        """All the compared images at once; failed ones are left out."""
        self.results = [r for r in results if r.ok]
        self._refill()

    def add_result(self, result: ImageResult) -> None:
        """One more compared image, as results stream in: the queue follows within a moment."""
        if not result.ok:
            return
        self.results.append(result)
        if not self.queue.count():
            self._refill()
        elif not self._refill_timer.isActive():
            self._refill_timer.start(max(1000, round(20_000 * self._refill_seconds)))

    def open_session(self, session: ReviewSession) -> None:
        """Show and edit `session`'s verdicts (see `open_verdicts`); errors go to `error`."""
        try:
            self.set_store(open_verdicts(session, self.settings))
        except ReviewError as exc:
            self.error.emit(str(exc))

    def set_store(self, store: SessionVerdicts | None) -> None:
        self.store = store
        legacy = store.session.folder / LEGACY_VERDICTS_FILE if store is not None else None
        self._legacy = legacy if legacy is not None and legacy.is_file() else None
        self._refill()

    def keys(self) -> list[str]:
        """The queue's image keys, top to bottom."""
        return [self.queue.item(i).data(KEY_ROLE) for i in range(self.queue.count())]

    @property
    def current_key(self) -> str | None:
        item = self.queue.currentItem()
        return None if item is None else item.data(KEY_ROLE)

    def select(self, key: str) -> None:
        for i in range(self.queue.count()):
            if self.queue.item(i).data(KEY_ROLE) == key:
                self.queue.setCurrentRow(i)
                return

    def step(self, delta: int) -> None:
        if self.queue.count():
            self.queue.setCurrentRow(min(self.queue.count() - 1,
                                         max(0, self.queue.currentRow() + delta)))

    def _refill(self) -> None:
        self._refill_timer.stop()
        started = time.perf_counter()
        keep = self.current_key
        self._filling = True
        self.queue.clear()
        for result in sort_results(self.results, self.sort_key):
            item = QListWidgetItem()
            item.setData(KEY_ROLE, result.key)
            self.queue.addItem(item)
            self._decorate(item, result)
        self._filling = False
        if self.queue.count():
            self.select(keep) if keep in self.keys() else self.queue.setCurrentRow(0)
        self._enable()
        self._refill_seconds = time.perf_counter() - started

    def verdict_text(self, key: str) -> str:
        """Every reviewer's verdict on the image as the queue shows it ("you" for this one)."""
        entries = self.store.all(key) if self.store is not None else []
        if not entries:
            return "not reviewed"
        mine = self.store.reviewer if self.store is not None else ""
        return "; ".join(
            f"{'you' if e.reviewer == mine else e.reviewer}: {VERDICT_LABELS[e.verdict]}"
            + (f" — {e.note}" if e.note else "") for e in entries)

    def _decorate(self, item: QListWidgetItem, result: ImageResult) -> None:
        entries = self.store.all(result.key) if self.store is not None else []
        agreed = consensus(entries)
        numbers = f"agree {_pct(result.agreement, 1.0)}"
        if result.miou_a is not None:
            numbers += f" · ΔmIoU {_pct(result.miou_delta, signed=True)}"
        item.setText(f"{result.key}\n{numbers}\n{self.verdict_text(result.key)}")
        item.setIcon(self._icon(VERDICT_COLORS[agreed] if agreed else _UNSEEN))
        item.setForeground(QBrush(QColor(*VERDICT_COLORS[agreed])) if agreed else QBrush())
        tip = f"{result.path}\nagreement of A and B: {_pct(result.agreement, 1.0)}"
        if result.miou_a is not None:
            tip += f"\nmIoU A {_pct(result.miou_a)}, B {_pct(result.miou_b)}"
        item.setToolTip(f"{tip}\n{self.verdict_text(result.key)}")

    def _icon(self, color: tuple[int, int, int]) -> QIcon:
        if color not in self._icons:  # one per colour: thousands of rows share four
            self._icons[color] = swatch_icon(color, 12)
        return self._icons[color]

    def _current_changed(self, current: QListWidgetItem | None, _previous) -> None:
        if current is None or self._filling:
            return
        key = current.data(KEY_ROLE)
        entry = self.store.get(key) if self.store is not None else None
        self.note.setText(entry.note if entry else "")
        self._enable()
        if key != self._emitted:  # not the same image re-selected as the queue was rebuilt
            self._emitted = key
            self.current_changed.emit(key)

    def _enable(self) -> None:
        can = self.store is not None and self.current_key is not None
        for button in (*self.buttons.values(), self.clear_button):
            button.setEnabled(can)
        self.note.setEnabled(can)
        for action in (self.act_import, self.act_export):
            action.setEnabled(self.store is not None)
        if self.store is None:
            self.counts.setText(f"{len(self.results)} images compared; verdicts once the "
                                "comparison is done" if self.results else "")
            return
        counts = self.store.counts()
        left = sum(1 for r in self.results if self.store.get(r.key) is None)
        parts = [f"{VERDICT_LABELS[v].lower()} {counts[v]}" for v in Verdict]
        others = [r for r in self.store.reviewers if r != self.store.reviewer]
        also = f" (also: {', '.join(others)})" if others else ""
        old = (f" An older SegViewer left verdicts in {self._legacy.name}: Store ▾ › Import."
               if self._legacy is not None else "")
        self.counts.setText(" · ".join(parts) + f" · {left} left for you — reviewing as "
                            f"{self.store.reviewer}{also}, saved to {self.store.path}.{old}")

    # -- verdicts ------------------------------------------------------------------------------
    def verdict(self, key: str) -> Verdict | None:
        """This reviewer's verdict on the image."""
        entry = self.store.get(key) if self.store is not None else None
        return entry.verdict if entry else None

    def set_verdict(self, verdict: Verdict | None, provenance: str = "") -> None:
        """Record `verdict` (None: clear it) with the note for the current image, and save."""
        key = self.current_key
        if self.store is None or key is None:
            return
        try:
            self.store.set(key, verdict, self.note.text().strip() if verdict else "", provenance)
        except ReviewError as exc:
            self.error.emit(str(exc))
            return
        if verdict is None:
            self.note.clear()
        item = self.queue.currentItem()
        self._decorate(item, next(r for r in self.results if r.key == key))
        self._enable()
        self.verdict_changed.emit(key)

    def _note_edited(self) -> None:
        """A changed note updates a verdict already given (a note alone waits for one)."""
        key = self.current_key
        entry = self.store.get(key) if self.store is not None and key else None
        if entry is not None and entry.note != self.note.text().strip():
            self.set_verdict(entry.verdict, entry.provenance)  # a fix keeps its provenance
