"""Client overhead per 1080p image: our TensorFlow-free gRPC client vs. the seed-style client.

Seed style: tf.make_tensor_proto + the official tensorflow_serving stub + tf.make_ndarray (what the
TF Serving examples do). Ours: GrpcBackend's codec on raw bytes. Both talk to the stand-in server
(in this process) serving an identity-like model (int64 label map = red % 21), which answers in
typed `int64_val` fields as TF Serving does by default.

Printed: client-side encode and decode per image (model and network excluded: measured on the
same request/response bytes), end-to-end per image, and the ratios seed / ours.
Targets: ours encode+decode <= 5 ms, and >= 15x faster than seed style.

    .venv/bin/python benchmarks/client_overhead.py [--repeat 15] [--size 1080x1920]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _timing import median_ms  # benchmarks/ is on sys.path when a benchmark runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--size", default="1080x1920", help="HxW of the test image")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))

    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from segviewer.core.serving import codec, protos
    from segviewer.core.serving.base import ModelRef
    from segviewer.core.serving.grpc_backend import GrpcBackend
    from segviewer.devserver.server import start
    from segviewer.devserver.toy_models import save_identity

    base = Path(tempfile.mkdtemp(prefix="client_overhead_"))
    save_identity(base / "identity" / "1")
    server = start(base)
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    batch = image[np.newaxis]
    output = "segmentation_map"

    # --- seed style ---
    def seed_encode() -> bytes:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "identity"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(batch))
        return request.SerializeToString()  # what the stub does before sending

    options = [("grpc.max_receive_message_length", 1 << 28),
               ("grpc.max_send_message_length", 1 << 28)]
    channel = grpc.insecure_channel(server.grpc_address, options=options)
    raw_predict = channel.unary_unary(protos.PREDICT)  # bytes in, bytes out
    response_bytes = raw_predict(seed_encode())

    def seed_decode() -> np.ndarray:
        response = predict_pb2.PredictResponse.FromString(response_bytes)
        return tf.make_ndarray(response.outputs[output])

    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def seed_end_to_end() -> np.ndarray:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "identity"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(batch))
        return tf.make_ndarray(stub.Predict(request, timeout=60).outputs[output])

    # --- ours ---
    def our_encode() -> bytes:
        head = protos.PredictRequest(output_filter=[output])
        head.model_spec.name = "identity"
        return head.SerializeToString() + codec.encode_inputs({"images": batch})

    def our_decode() -> np.ndarray:
        return codec.decode_predict_response(response_bytes)[0][output]

    backend = GrpcBackend(server.grpc_address, ["identity"])

    def our_end_to_end() -> np.ndarray:
        return backend.predict(image, ModelRef("identity")).labels

    np.testing.assert_array_equal(seed_decode(), our_decode())
    np.testing.assert_array_equal(our_end_to_end(), seed_end_to_end()[0])

    rows = [
        ("encode", median_ms(seed_encode, args.repeat), median_ms(our_encode, args.repeat)),
        ("decode", median_ms(seed_decode, args.repeat), median_ms(our_decode, args.repeat)),
    ]
    rows.append(("encode+decode", rows[0][1] + rows[1][1], rows[0][2] + rows[1][2]))
    rows.append(("end-to-end", median_ms(seed_end_to_end, args.repeat),
                 median_ms(our_end_to_end, args.repeat)))
    print(f"client overhead per {height}x{width} image ({len(response_bytes) / 1e6:.1f} MB "
          f"typed int64_val answer), median of {args.repeat}:")
    print(f"{'':16}{'seed ms':>10}{'ours ms':>10}{'seed/ours':>11}")
    for name, seed, ours in rows:
        print(f"{name:16}{seed:10.1f}{ours:10.1f}{seed / ours:10.1f}x")
    client = rows[2]
    verdict = "met" if client[2] <= 5.0 and client[1] / client[2] >= 15 else "NOT met"
    print(f"target (ours <= 5 ms, >= 15x seed): {verdict}")
    backend.close()
    channel.close()
    server.stop()


if __name__ == "__main__":
    main()
