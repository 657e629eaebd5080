"""Toy SavedModels with the exporter's signature set (serving_default, probabilities, encoded,
segviewer_metadata) whose labels are known from the pixels: for the in-process backend and the
viewer tests (the session-scoped `toy_base` fixture is in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

NUM_CLASSES = 4
CLASSES = [{"id": i, "name": f"class{i}", "color": [60 * i, 255 - 60 * i, 7]}
           for i in range(NUM_CLASSES)]


def toy_labels(image: np.ndarray, shift: int) -> np.ndarray:
    """What the toy model answers: red channel quartile, shifted per version."""
    return (image[..., 0].astype(np.int64) // 64 + shift) % NUM_CLASSES


def save_toy_model(folder: Path, shift: int) -> Path:
    """A SavedModel with the exporter's signatures: serving_default, probabilities, encoded and
    segviewer_metadata. Labels follow `toy_labels`."""
    import tensorflow as tf

    metadata = json.dumps({"classes": CLASSES, "num_classes": NUM_CLASSES, "shift": shift})

    def labels(images):  # uint8 [1,H,W,3] -> int64 [1,H,W]
        return (tf.cast(images[..., 0], tf.int64) // 64 + shift) % NUM_CLASSES

    class Toy(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def serve(self, images):
            return {"segmentation_map": labels(images)}

        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def probabilities(self, images):
            seg = labels(images)
            return {"segmentation_map": seg,
                    "probabilities": tf.one_hot(seg, NUM_CLASSES, dtype=tf.float32)}

        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def encoded(self, image_bytes):
            image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
            seg = tf.cast(labels(image[tf.newaxis])[0], tf.uint8)
            return {"segmentation_png": tf.io.encode_png(seg[..., tf.newaxis])}

        @tf.function(input_signature=[])
        def metadata(self):
            return {"metadata_json": tf.constant(metadata)}

    toy = Toy()
    tf.saved_model.save(toy, str(folder), signatures={
        "serving_default": toy.serve, "probabilities": toy.probabilities,
        "encoded": toy.encoded, "segviewer_metadata": toy.metadata})
    return folder
