"""Folder throughput of run_batch against the stand-in TF Serving, as a ratio of the server's own
saturation rate measured in the same run.

Baseline: the fastest possible client — every PredictRequest encoded beforehand, sent as raw bytes
from N threads over one channel, answers not even decoded. Measured: `run_batch` doing the whole
job (read and decode each file, encode, predict, decode, write the label PNG) with N workers.
Target: ratio >= 0.9, i.e. the client keeps the server busy. The server runs in its own process,
as TF Serving would.

The default model is the exported demo DeepLab (resources/demo/models/pascal): the server is the
bottleneck, as in production (measured: 1.006 on 2 shared cores). Without it, a near-free toy
model is used; then the ratio shows the client's own cost (reading the file, writing the label
PNG) against a server doing almost nothing, and on 2 cores it stays well below 0.9 (about 0.35).

    .venv/bin/python benchmarks/folder_throughput.py [--images 48] [--workers 4] [--rounds 2]
        [--model-base DIR --model NAME]   (default: the demo model if exported, else a toy model)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import grpc
from _standin import start_standin  # benchmarks/ is on sys.path when a benchmark runs

from segviewer.core.batch import BatchOptions, run_batch
from segviewer.core.images import find_images, load_image
from segviewer.core.serving import codec, protos
from segviewer.core.serving.base import ModelRef
from segviewer.core.serving.discovery import plan_prediction, prepare_input
from segviewer.core.serving.grpc_backend import GrpcBackend
from segviewer.paths import demo_dir, demo_models_dir


def save_regions_model(folder: Path) -> None:
    """A near-free stand-in for a segmentation network: 4 classes by red level. On photos this
    gives regions rather than noise, so label PNGs cost about what real ones do."""
    import tensorflow as tf

    class Regions(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def serve(self, images):
            return {"segmentation_map": tf.cast(images[..., 0] // 64, tf.int64)}

    module = Regions()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})


def saturation_rate(address: str, requests: list[bytes], workers: int) -> float:
    """Requests per second with pre-encoded requests from `workers` threads."""
    channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", -1),
                                                      ("grpc.max_send_message_length", -1)])
    call = channel.unary_unary(protos.PREDICT)
    next_index = iter(range(len(requests)))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            call(requests[index], timeout=600)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    channel.close()
    return len(requests) / seconds


def batch_rate(address: str, ref: ModelRef, inputs: list[Path], workers: int) -> float:
    backend = GrpcBackend(address, models=[ref.name], timeout=600)
    out = Path(tempfile.mkdtemp(prefix="segviewer-bench-out-"))
    try:
        summary = run_batch(backend, ref, inputs, out, BatchOptions(workers=workers))
        if summary.failed:
            raise SystemExit(f"run_batch failed: {summary.failures[0].reason}")
        return summary.ok / summary.seconds
    finally:
        backend.close()
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; best kept")
    parser.add_argument("--model-base", type=Path)
    parser.add_argument("--model")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="segviewer-bench-"))
    base, model = args.model_base, args.model
    if base is None and (demo_models_dir() / "pascal").is_dir():
        base, model = demo_models_dir(), "pascal"
    if base is None:
        base, model = work / "models", "regions"
        save_regions_model(base / "regions" / "1")
    folder = work / "images"
    folder.mkdir()
    demo_images = find_images([demo_dir() / "images"])
    for i in range(args.images):  # the demo photos, repeated under distinct names
        source = demo_images[i % len(demo_images)]
        shutil.copy(source, folder / f"{i:04d}_{source.name}")
    inputs = find_images([folder])

    server, address, _ = start_standin(base)
    try:
        ref = ModelRef(model)
        backend = GrpcBackend(address, models=[model], timeout=600)
        meta = backend.metadata(ref)
        plan = plan_prediction(meta)
        backend.close()
        head = protos.PredictRequest(
            model_spec=protos.ModelSpec(name=model, signature_name=plan.signature),
            output_filter=[plan.output.name]).SerializeToString()
        requests = [
            head + codec.encode_inputs({plan.input.name: prepare_input(load_image(p), plan)})
            for p in inputs
        ]
        saturation_rate(address, requests[: args.workers * 2], args.workers)  # warm-up
        best_server = best_batch = 0.0
        for _ in range(args.rounds):
            best_server = max(best_server, saturation_rate(address, requests, args.workers))
            best_batch = max(best_batch, batch_rate(address, ref, inputs, args.workers))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)

    print(f"model {model} (v{meta.version}), {len(inputs)} images, {args.workers} workers")
    print(f"server saturation (pre-encoded requests): {best_server:8.2f} img/s")
    print(f"run_batch folder throughput:              {best_batch:8.2f} img/s")
    ratio = best_batch / best_server
    print(f"ratio: {ratio:.3f} (target >= 0.9) {'OK' if ratio >= 0.9 else 'BELOW TARGET'}")


if __name__ == "__main__":
    main()
