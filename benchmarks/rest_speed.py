"""One 1080p image over REST against gRPC, both against the same stand-in server in one run.

The model is the tiny exporter-style toy with the exporter's signatures: `serving_default`
(uint8 image -> int64 label map, what gRPC sends as raw tensors) and `encoded` (PNG bytes ->
label PNG, which REST uses when a model has it). Also shown: REST through `serving_default`
(JSON numbers, parsed with orjson), what REST costs on a model without `encoded`.
Printed: median milliseconds per predict (client and server together, the server in its own
process, as TF Serving would be) and the ratios to gRPC. Target: REST (encoded) within 2x gRPC.

    .venv/bin/python benchmarks/rest_speed.py [--repeat 7] [--size 1080x1920]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _standin import start_standin  # benchmarks/ is on sys.path when a benchmark runs
from _timing import median_ms  # benchmarks/ is on sys.path when a benchmark runs

from segviewer.core.images import load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--size", default="1080x1920", help="HxW of the test image")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))

    from segviewer.core.serving.base import ModelRef
    from segviewer.core.serving.grpc_backend import GrpcBackend
    from segviewer.core.serving.rest_backend import RestBackend
    from segviewer.devserver.toy_models import save_tiny, tiny_labels

    base = Path(tempfile.mkdtemp(prefix="rest_speed_"))
    save_tiny(base / "tiny" / "1", encoded=True)
    server, grpc_address, rest_url = start_standin(base)

    # A photo-like image (smooth, as camera images are), so PNG sizes are realistic.
    photo = load_image(Path(__file__).resolve().parents[1] / "resources" / "demo" / "images"
                       / "astronaut.png")
    rows = np.linspace(0, photo.shape[0] - 1, height).astype(int)
    cols = np.linspace(0, photo.shape[1] - 1, width).astype(int)
    image = np.ascontiguousarray(photo[rows][:, cols])
    ref = ModelRef("tiny")
    expected = tiny_labels(image)
    grpc = GrpcBackend(grpc_address, ["tiny"])
    rest = RestBackend(rest_url, ["tiny"])
    try:
        calls = {
            "gRPC (serving_default, raw tensors)": lambda: grpc.predict(image, ref),
            "REST (encoded, PNG bytes)": lambda: rest.predict(image, ref),
            "REST (serving_default, JSON numbers)": lambda: rest.predict(
                image, ref, signature="serving_default"),
        }
        for call in calls.values():
            np.testing.assert_array_equal(call().labels, expected)
        assert rest.predict(image, ref).signature == "encoded"
        timings = {name: median_ms(call, args.repeat) for name, call in calls.items()}
        base_ms = timings["gRPC (serving_default, raw tensors)"]
        print(f"one {height}x{width} image, median of {args.repeat}, same stand-in server:")
        for name, ms in timings.items():
            print(f"  {name:38}{ms:9.1f} ms  {ms / base_ms:5.2f}x gRPC")
        ratio = timings["REST (encoded, PNG bytes)"] / base_ms
        print(f"target (REST within 2x gRPC): {'met' if ratio <= 2 else 'NOT met'} "
              f"({ratio:.2f}x)")
    finally:
        grpc.close()
        rest.close()
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
