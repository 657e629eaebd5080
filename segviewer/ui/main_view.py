"""The main window's view controls: palette choice, opacity, view mode, class outlines,
probabilities and the hover readout. Choices go to `ViewerState`; the canvas draws what it says."""

from __future__ import annotations

from segviewer.core.labels import PaletteError
from segviewer.core.viewer_state import ViewMode


class ViewMixin:
    def set_palette_choice(self, choice: str) -> None:
        """"model" (the model's own classes), a built-in palette name, or a JSON file path."""
        try:
            self.state.choose_palette(choice)
        except (PaletteError, OSError) as exc:
            self.show_error(str(exc))
            self.state.palette_changed.emit(self.state.palette, self.state.palette_choice)

    def _opacity_slid(self, value: int) -> None:
        if self.state.mode is ViewMode.IMAGE:  # moving the slider means "show me the labels"
            self.set_mode(ViewMode.OVERLAY)
        self.state.set_opacity(value / 100)
        self._opacity_changed(self.state.opacity)

    def _opacity_changed(self, opacity: float) -> None:
        self.opacity_label.setText(f"{round(opacity * 100)} %")
        self.canvas.set_opacity(opacity)

    def step_opacity(self, delta: int) -> None:
        self.opacity_slider.setValue(self.opacity_slider.value() + delta)

    def set_mode(self, mode: ViewMode) -> None:
        self.state.set_mode(mode)

    def _mode_changed(self, mode: ViewMode) -> None:
        self.act_mode[mode].setChecked(True)
        self.canvas.set_mode(mode)

    def cycle_mode(self) -> None:
        modes = list(ViewMode)
        self.set_mode(modes[(modes.index(self.state.mode) + 1) % len(modes)])

    def boundaries_toggled(self, _checked: bool = False) -> None:
        self.canvas.set_show_boundaries(self.act_boundaries.isChecked())
        self._update_boundaries()

    def probabilities_toggled(self, _checked: bool = False) -> None:
        self.predictor.set_probabilities(self.act_probabilities.isChecked())
        self._show_current()

    def _hovered(self, x: int, y: int) -> None:
        if x < 0 or self.image is None:
            self.hover_label.setText("")
            return
        text = f"x {x}, y {y}"
        if self.prediction is not None:
            class_id = int(self.prediction.labels[y, x])
            text += f"  ·  {class_id} {self.state.palette.class_name(class_id)}"
            probs = self.prediction.probabilities
            if probs is not None and class_id < probs.shape[-1]:
                text += f"  ({probs[y, x, class_id] * 100:.1f} %)"
        self.hover_label.setText(text)
