"""Latency of an exported SavedModel's serving_default against the same network called directly.

Baseline: `DeepLab.predict` as a plain tf.function in this process (no SavedModel, no signature
wrapper). Measured: the exported model loaded back with tf.saved_model.load, called through its
`serving_default` signature. Both get the same uint8 image; a ratio near 1.0 means exporting costs
nothing at serving time. Sizes: 513x513 (one crop) and 1080x1920 (a full-HD frame).

    .venv/bin/python benchmarks/export_latency.py [--repeat 5] [--checkpoint CKPT]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from _timing import median_ms  # benchmarks/ is on sys.path when a benchmark runs

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--checkpoint", default=str(REPO / "tests/data/deeplab/mobilenet_v2"))
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    from exporter.checkpoint import read_shapes, read_weights
    from exporter.deeplab import DeepLab, NetworkConfig
    from exporter.export import ExportOptions, export_model

    with tempfile.TemporaryDirectory() as tmp:
        result = export_model(ExportOptions(args.checkpoint, tmp, "bench"))
        exported = tf.saved_model.load(str(result.path)).signatures["serving_default"]
        settings = result.settings
        config = NetworkConfig(
            variant=settings["variant"], num_classes=settings["num_classes"],
            crop_size=tuple(settings["crop_size"]), output_stride=settings["output_stride"],
            atrous_rates=tuple(settings["atrous_rates"]),
            decoder_output_stride=settings["decoder_output_stride"],
        )
        prefix = settings["checkpoint"]
        model = DeepLab(config, read_weights(prefix, list(read_shapes(prefix))))
        plain = tf.function(model.predict)
        rng = np.random.default_rng(0)
        print(f"{'image':>10}  {'plain ms':>9}  {'exported ms':>11}  ratio")
        for h, w in ((513, 513), (1080, 1920)):
            image = tf.constant(rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8))
            base = median_ms(lambda image=image: plain(image).numpy(), args.repeat)
            ours = median_ms(
                lambda image=image: exported(images=image)["segmentation_map"].numpy(), args.repeat
            )
            print(f"{h}x{w:<6}  {base:9.1f}  {ours:11.1f}  {ours / base:.2f}")


if __name__ == "__main__":
    main()
