"""Small real SavedModels (tf.Module) for the stand-in server's tests and the client benchmark.

Each covers one way others export segmentation models; the label rule is cheap and known, so a
client's answer can be checked pixel by pixel: `tiny_labels`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from segviewer.core.quiet_tensorflow import import_tensorflow

NUM_CLASSES = 4
CLASSES = [
    {"id": i, "name": f"class{i}", "color": [50 * i, 255 - 50 * i, 9]} for i in range(NUM_CLASSES)
]


def tiny_labels(image: np.ndarray, shift: int = 0) -> np.ndarray:
    """The label every toy model gives a pixel: (R + G + B + shift) % 4."""
    return (image.astype(np.int64).sum(axis=-1) + shift) % NUM_CLASSES


def save_tiny(folder: Path, shift: int = 0, encoded: bool = False) -> Path:
    """Exporter-style: serving_default uint8 `images` [1,H,W,3] -> int64 `segmentation_map`
    [1,H,W] and float32 `probabilities` [1,H,W,4]; plus `segviewer_metadata`; with `encoded`,
    also the exporter's `encoded` (PNG/JPEG `image_bytes` -> label PNG
    `segmentation_png_bytes`)."""
    tf = import_tensorflow()
    metadata = json.dumps({"classes": CLASSES, "num_classes": NUM_CLASSES, "shift": shift})

    class Tiny(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def serve(self, images):
            labels = (tf.reduce_sum(tf.cast(images, tf.int64), axis=-1) + shift) % NUM_CLASSES
            return {
                "segmentation_map": labels,
                "probabilities": tf.one_hot(labels, NUM_CLASSES, dtype=tf.float32),
            }

        @tf.function(input_signature=[])
        def metadata(self):
            return {"metadata_json": tf.constant(metadata)}

        @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="image_bytes")])
        def encoded(self, image_bytes):
            image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
            labels = self.serve(image[tf.newaxis])["segmentation_map"][0]
            return {"segmentation_png_bytes": tf.io.encode_png(
                tf.cast(labels, tf.uint8)[..., tf.newaxis])}

    module = Tiny()
    signatures = {"serving_default": module.serve, "segviewer_metadata": module.metadata}
    if encoded:
        signatures["encoded"] = module.encoded
    tf.saved_model.save(module, str(folder), signatures=signatures)
    return folder


def save_logits(folder: Path) -> Path:
    """Only float logits [1,H,W,4] from uint8 `input_image`: the client takes the argmax."""
    tf = import_tensorflow()

    class Logits(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def serve(self, input_image):
            labels = tf.reduce_sum(tf.cast(input_image, tf.int64), axis=-1) % NUM_CLASSES
            return {"logits": tf.one_hot(labels, NUM_CLASSES, on_value=4.0, off_value=-4.0)}

    module = Logits()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def save_hwc(folder: Path) -> Path:
    """Unbatched float32 `x` [H,W,3] (values 0..255) -> int32 `classes` [H,W]."""
    tf = import_tensorflow()

    class Hwc(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])
        def serve(self, x):
            return {"classes": tf.cast(tf.reduce_sum(x, axis=-1), tf.int32) % NUM_CLASSES}

    module = Hwc()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def save_encoded(folder: Path) -> Path:
    """PNG/JPEG bytes `image_bytes` [] -> PNG label map `segmentation_png` []."""
    tf = import_tensorflow()

    class Encoded(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def serve(self, image_bytes):
            image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
            labels = tf.reduce_sum(tf.cast(image, tf.int32), axis=-1) % NUM_CLASSES
            return {"segmentation_png": tf.io.encode_png(tf.cast(labels, tf.uint8)[..., None])}

    module = Encoded()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def save_identity(folder: Path) -> Path:
    """The cheapest label map: uint8 `images` [1,H,W,3] -> int64 `segmentation_map` = red % 21.
    For measuring client overhead with as little model time as possible."""
    tf = import_tensorflow()

    class Identity(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def serve(self, images):
            return {"segmentation_map": tf.cast(images[..., 0] % 21, tf.int64)}

    module = Identity()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def build_model_base(base: Path) -> Path:
    """<base>/tiny/{1,2} (v2 shifts labels by one), logits/1, hwc/1, encoded/1."""
    save_tiny(base / "tiny" / "1", shift=0)
    save_tiny(base / "tiny" / "2", shift=1)
    save_logits(base / "logits" / "1")
    save_hwc(base / "hwc" / "1")
    save_encoded(base / "encoded" / "1")
    return base
