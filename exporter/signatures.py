"""The SavedModel's serving signatures and the class/settings metadata stored with it.

Signatures (method tensorflow/serving/predict):
  serving_default      images uint8 [1,H,W,3] -> segmentation_map int64 [1,H,W]
  probabilities        images uint8 [1,H,W,3] -> probabilities float32 [1,H,W,C], segmentation_map
                       (softmax; with several scales/flips, the mean of their softmaxes -- the
                       research graph's argmax input, not its second softmax of that mean)
  encoded              image_bytes string [] (PNG/JPEG) -> segmentation_png string [] (label PNG,
                       8-bit for up to 256 classes, else 16-bit)
  segviewer_metadata   (no inputs) -> metadata_json string [] (base.METADATA_*; same JSON as the
                       asset assets/segviewer_metadata.json)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exporter import ExportError
from segviewer.core.labels import PaletteError, default_palette_for, load_palette_json
from segviewer.core.serving.base import METADATA_OUTPUT, METADATA_SIGNATURE

if TYPE_CHECKING:
    import tensorflow as tf

    from exporter.deeplab import DeepLab

METADATA_ASSET = "segviewer_metadata.json"
INPUT = "images"
OUTPUT = "segmentation_map"


def class_list(num_classes: int, labels: str | Path | None) -> list[dict[str, Any]]:
    """Names and colours of ids 0..num_classes-1: from a palette JSON, else by class count."""
    if labels is None:
        palette = default_palette_for(num_classes)
    else:
        try:
            palette = load_palette_json(labels)
        except PaletteError as exc:
            raise ExportError(f"--labels: {exc}") from None
        if len(palette) > num_classes:
            raise ExportError(
                f"labels file '{labels}' has class id {len(palette) - 1} but the model has "
                f"{num_classes} classes (ids 0-{num_classes - 1}); fix the file"
            )
    return [
        {"id": i, "name": palette.class_name(i), "color": list(palette.color(i))}
        for i in range(num_classes)
    ]


def metadata_json(classes: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    return json.dumps({"classes": classes, "settings": settings}, separators=(",", ":"))


def build_module(model: DeepLab, metadata: str, asset_dir: Path) -> tuple[tf.Module, dict]:
    """A module holding the weights, the metadata asset and one tf.function per signature."""
    import tensorflow as tf

    asset_path = asset_dir / METADATA_ASSET
    asset_path.write_text(metadata, encoding="utf-8")
    module = tf.Module()
    module.weights = model.variables
    module.metadata_asset = tf.saved_model.Asset(str(asset_path))
    num_classes = model.config.num_classes
    label_dtype = tf.uint8 if num_classes <= 256 else tf.uint16
    image_spec = tf.TensorSpec([1, None, None, 3], tf.uint8, name=INPUT)

    @tf.function(input_signature=[image_spec])
    def serving_default(images):
        return {OUTPUT: model.predict(images)}

    @tf.function(input_signature=[image_spec])
    def probabilities(images):
        labels, probs = model.predict(images, probabilities=True)
        return {"probabilities": probs, OUTPUT: labels}

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="image_bytes")])
    def encoded(image_bytes):
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        labels = model.predict(tf.expand_dims(image, 0))[0]
        png = tf.io.encode_png(tf.cast(labels, label_dtype)[..., tf.newaxis])
        # TF Serving's REST API base64-encodes only binary outputs whose name ends in "_bytes".
        return {"segmentation_png_bytes": png}

    @tf.function(input_signature=[])
    def segviewer_metadata():
        return {METADATA_OUTPUT: tf.constant(metadata)}

    functions = {
        "serving_default": serving_default,
        "probabilities": probabilities,
        "encoded": encoded,
        METADATA_SIGNATURE: segviewer_metadata,
    }
    signatures = {name: f.get_concrete_function() for name, f in functions.items()}
    return module, signatures


def describe(signatures: dict[str, Any]) -> str:
    """A `saved_model_cli show --all`-style listing of loaded signatures."""
    lines = []
    for name in sorted(signatures):
        function = signatures[name]
        lines.append(f"signature_def['{name}']:")
        lines.append("  The given SavedModel SignatureDef contains the following input(s):")
        for key, spec in sorted(function.structured_input_signature[1].items()):
            lines.append(f"    inputs['{key}'] {_tensor(spec)}")
        lines.append("  The given SavedModel SignatureDef contains the following output(s):")
        for key, spec in sorted(function.structured_outputs.items()):
            lines.append(f"    outputs['{key}'] {_tensor(spec)}")
        lines.append("  Method name is: tensorflow/serving/predict")
    return "\n".join(lines)


def _tensor(spec: Any) -> str:
    shape = "()" if spec.shape.rank == 0 else str(tuple(-1 if d is None else d for d in spec.shape))
    return f"dtype: DT_{spec.dtype.name.upper()} shape: {shape}"
