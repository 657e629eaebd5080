"""Model and version dropdowns (toolbar) and the model info panel (signatures, dtypes, classes)."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QTextBrowser, QWidget

from segviewer.core.fingerprint import Fingerprint, from_metadata
from segviewer.core.serving.base import ModelMetadata, ModelVersion, TensorSpec


class ModelSelector(QWidget):
    """Emits the user's choice only; filling the combos programmatically emits nothing."""

    model_selected = Signal(str)
    version_selected = Signal(object)  # int, or None for "latest"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_combo = QComboBox()
        self.model_combo.setMinimumContentsLength(12)
        self.model_combo.setToolTip("Model")
        self.version_combo = QComboBox()
        self.version_combo.setMinimumContentsLength(14)
        self.version_combo.setToolTip("Model version (state as reported by the server)")
        self.model_combo.activated.connect(
            lambda i: self.model_selected.emit(self.model_combo.itemData(i)))
        self.version_combo.activated.connect(
            lambda i: self.version_selected.emit(self.version_combo.itemData(i)))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.addWidget(QLabel("Model"))
        layout.addWidget(self.model_combo)
        layout.addSpacing(6)
        layout.addWidget(QLabel("Version"))
        layout.addWidget(self.version_combo)
        self.set_models([], None)

    def set_models(self, models: list[str], current: str | None) -> None:
        self.model_combo.clear()
        for name in models:
            self.model_combo.addItem(name, name)
        if current is not None:
            self.model_combo.setCurrentIndex(self.model_combo.findData(current))
        self.model_combo.setEnabled(bool(models))
        if not models:
            self.set_versions([], None)

    def set_versions(self, versions: list[ModelVersion], current: int | None) -> None:
        self.version_combo.clear()
        model = self.version_combo.model()
        for v in sorted(versions, key=lambda v: v.version, reverse=True):
            labels = f" [{', '.join(v.labels)}]" if v.labels else ""
            state = "" if v.state == "AVAILABLE" else f" ({v.state.lower()})"
            self.version_combo.addItem(f"v{v.version}{labels}{state}", v.version)
            if v.state != "AVAILABLE" and isinstance(model, QStandardItemModel):
                row = self.version_combo.count() - 1
                model.item(row).setEnabled(False)
                model.item(row).setToolTip(v.error or f"not servable: {v.state}")
        if current is not None:
            self.version_combo.setCurrentIndex(self.version_combo.findData(current))
        self.version_combo.setEnabled(bool(versions))

    @property
    def current_version(self) -> int | None:
        return self.version_combo.currentData()


def _shape(spec: TensorSpec) -> str:
    """Compact, so a row fits a narrow dock: [1,?,?,3]."""
    if spec.shape is None:
        return "(any rank)"
    return "[" + ",".join("?" if d is None or d < 0 else str(d) for d in spec.shape) + "]"


def metadata_html(backend: str, meta: ModelMetadata,
                  fingerprint: Fingerprint | None = None) -> str:
    """The info panel's text: where the model runs, what it is (its fingerprint, as verdicts
    record it), its signatures and its classes."""
    version = "latest" if meta.version is None else f"v{meta.version}"
    fp = fingerprint or from_metadata(meta)
    weak = " — <i>signature only: this server exposes no content digest</i>" if fp.weak else ""
    parts = [f"<h3>{escape(meta.name)} {version}</h3>",
             f"<p><b>Backend:</b> {escape(backend)}</p>",
             f"<p><b>Fingerprint:</b> <code title='{escape(str(fp))}'>{escape(fp.kind)}:"
             f"{escape(fp.digest[:16])}</code>{weak}</p>"]
    for sig in meta.signatures.values():
        parts.append(f"<p><b>Signature</b> <code>{escape(sig.name)}</code><br>")
        for direction, specs in (("in", sig.inputs), ("out", sig.outputs)):
            for spec in specs.values():
                parts.append(f"&nbsp;{direction}&nbsp;<code>{escape(spec.name)}</code> "
                             f"{escape(spec.dtype)} {_shape(spec)}<br>")
        parts.append("</p>")
    if meta.settings:
        parts.append("<p><b>Export settings</b><br>")
        for key, value in sorted(meta.settings.items()):
            parts.append(f"&nbsp;{escape(str(key))}: {escape(str(value))}<br>")
        parts.append("</p>")
    if meta.classes:
        parts.append(f"<p><b>Classes</b> ({len(meta.classes)})</p><table cellspacing=2>")
        for info in meta.classes:
            r, g, b = info.color
            parts.append(f"<tr><td bgcolor='#{r:02x}{g:02x}{b:02x}'>&nbsp;&nbsp;&nbsp;</td>"
                         f"<td align=right>{info.id}</td><td>{escape(info.name)}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p><i>The model stores no class names; the legend uses a palette.</i></p>")
    return "".join(parts)


class ModelInfo(QTextBrowser):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.clear_info()

    def clear_info(self, message: str = "Not connected. Use File ▸ Connect… or --demo.") -> None:
        self.setHtml(f"<p><i>{escape(message)}</i></p>")

    def set_metadata(self, backend: str, meta: ModelMetadata,
                     fingerprint: Fingerprint | None = None) -> None:
        """`fingerprint`: when the caller computed it with the model's local folder (see
        core.fingerprint); else the one the metadata alone gives."""
        self.setHtml(metadata_html(backend, meta, fingerprint))
