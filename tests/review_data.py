"""Two real SavedModel versions whose differences are known pixel by pixel, the images and ground
truth they are reviewed on, and label PNGs as segviewer-predict writes them: shared by the review,
report, store and compare-window tests (the `review_models` fixture is in conftest.py).

Model "seg" v1 (A): class = R // 64. v2 (B): class 3 where G >= 128, else R // 64.
Images: left 4x10 (A and B differ on 2 pixels), right 5x8 (differ on 10), same 2x5 (agree).
Ground truth: A's output with known edits for left, all class 1 for right, none for same.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from segviewer.core import provenance
from segviewer.core.images import encode_png
from segviewer.core.labels import Palette
from segviewer.core.serving.base import ModelRef

DEMO_MODELS = Path(__file__).resolve().parent.parent / "resources" / "demo" / "models" / "pascal"

CLASSES = [
    {"id": 0, "name": "background", "color": [0, 0, 0]},
    {"id": 1, "name": "road", "color": [128, 64, 128]},
    {"id": 2, "name": "tree", "color": [0, 128, 0]},
    {"id": 3, "name": "sky", "color": [70, 130, 180]},
]
PALETTE = Palette("seg", np.array([c["color"] for c in CLASSES]), [c["name"] for c in CLASSES])
A, B = ModelRef("seg", version=1), ModelRef("seg", version=2)


def rule_a(image: np.ndarray) -> np.ndarray:
    return image[..., 0].astype(np.int64) // 64


def rule_b(image: np.ndarray) -> np.ndarray:
    return np.where(image[..., 1] >= 128, 3, rule_a(image))


def metadata_json(version: int) -> str:
    """As our exporter writes it, with a content digest: these models have no variables, so
    their rule stands for the weights."""
    digest = hashlib.sha256(f"rule of seg v{version}".encode()).hexdigest()
    return json.dumps({"classes": CLASSES, "num_classes": 4, "weights_sha256": digest})


def build_review_models(base: Path) -> Path:
    """<base>/seg/1 and /2: uint8 images [1,H,W,3] -> int64 segmentation_map [1,H,W], with the
    exporter's metadata signature (4 named classes)."""
    import tensorflow as tf

    class Seg(tf.Module):
        def __init__(self, version: int) -> None:
            super().__init__()
            self.version = version

        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def serve(self, images):
            labels = tf.cast(images[..., 0], tf.int64) // 64
            if self.version == 2:
                labels = tf.where(images[..., 1] >= 128, tf.constant(3, tf.int64), labels)
            return {"segmentation_map": labels}

        @tf.function(input_signature=[])
        def metadata(self):
            return {"metadata_json": tf.constant(metadata_json(self.version))}

    for version in (1, 2):
        module = Seg(version)
        tf.saved_model.save(module, str(base / "seg" / str(version)),
                            signatures={"serving_default": module.serve,
                                        "segviewer_metadata": module.metadata})
    return base


def review_images() -> dict[str, np.ndarray]:
    left = np.zeros((4, 10, 3), np.uint8)
    left[:, 5:, 0] = 200  # A: class 0 | class 3
    left[0, :2, 1] = 255  # B: class 3 on 2 pixels where A says 0
    right = np.zeros((5, 8, 3), np.uint8)
    right[..., 0] = 100  # A: class 1 everywhere
    right[:2, :5, 1] = 255  # B: class 3 on 10 pixels
    same = np.zeros((2, 5, 3), np.uint8)
    same[..., 0] = 150  # class 2, both
    return {"left": left, "right": right, "same": same}


def write_review_set(folder: Path) -> tuple[Path, Path]:
    """(images folder, ground-truth folder); left's and right's ground truth as gray PNGs."""
    images, gt = folder / "images", folder / "gt"
    images.mkdir(parents=True)
    gt.mkdir()
    arrays = review_images()
    for name, array in arrays.items():
        Image.fromarray(array).save(images / f"{name}.png")
    left_gt = rule_a(arrays["left"]).astype(np.uint8)
    left_gt[3, 9] = 2  # A (and B) wrong on one pixel
    left_gt[3, 0] = 255  # ignored
    Image.fromarray(left_gt).save(gt / "left.png")
    Image.fromarray(np.ones((5, 8), np.uint8)).save(gt / "right.png")
    return images, gt


def save_prediction(path: Path, labels: np.ndarray, model: str, version: int | None,
                    fingerprint: str | None, source: str = "gRPC farm:8500") -> None:
    """A label PNG as segviewer-predict writes it: ids, plus the `segviewer` text chunk."""
    made = provenance.Provenance(model, version, "serving_default", source, fingerprint)
    path.write_bytes(provenance.write(encode_png(labels.astype(np.uint8)), made))


def write_predictions(folder: Path, arrays: dict[str, np.ndarray], rule, version: int,
                      fingerprint: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        save_prediction(folder / f"{name}.png", rule(array), "seg", version, fingerprint)
    return folder


