"""segviewer-serve: run the test/dev stand-in for TF Serving on a folder of SavedModels."""

from __future__ import annotations

import argparse
import sys
import threading

from segviewer.devserver.server import start

DESCRIPTION = """\
A stand-in for TF Serving for tests and development. It is NOT TF Serving: it loads the
SavedModels under --model-base (<base>/<model>/<version>/) with TensorFlow in this process and
answers TF Serving's gRPC and REST APIs with the same formats and errors. Deploy real TF Serving."""


def _labels(items: list[str]) -> dict[str, dict[str, int]]:
    labels: dict[str, dict[str, int]] = {}
    for item in items:
        try:
            model, rest = item.split("/", 1)
            label, version = rest.split("=", 1)
            labels.setdefault(model, {})[label] = int(version)
        except ValueError:
            message = f"segviewer-serve: bad --label '{item}' — use MODEL/LABEL=VERSION"
            raise SystemExit(message) from None
    return labels


def _versions(items: list[str]) -> dict[str, list[int]]:
    versions: dict[str, list[int]] = {}
    for item in items:
        try:
            model, number = item.split("=", 1)
            versions.setdefault(model, []).append(int(number))
        except ValueError:
            message = f"segviewer-serve: bad --serve-version '{item}' — use MODEL=N"
            raise SystemExit(message) from None
    return versions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segviewer-serve", description=DESCRIPTION)
    parser.add_argument("--model-base", required=True, help="folder of <model>/<version>/")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8500,
                        help="gRPC port (default 8500; 0: any free)")
    parser.add_argument("--rest-port", type=int, default=8501,
                        help="REST port (default 8501; 0: any free)")
    parser.add_argument("--serve-version", action="append", default=[], metavar="MODEL=N",
                        help="serve this version (repeatable; default: the latest of each model)")
    parser.add_argument("--label", action="append", default=[], metavar="MODEL/LABEL=N",
                        help="version label, e.g. pascal/stable=1 (repeatable)")
    parser.add_argument("--enable-serialization-as-tensor-content", action="store_true",
                        help="answer in tensor_content instead of typed fields")
    parser.add_argument("--token", help="require 'authorization: Bearer TOKEN'")
    parser.add_argument("--tls-cert", help="PEM certificate (with --tls-key): TLS and HTTPS")
    parser.add_argument("--tls-key", help="PEM private key")
    parser.add_argument("--tls-client-ca", help="gRPC: require client certificates from this CA")
    parser.add_argument("--latency-ms", type=float, default=0.0, metavar="MS",
                        help="add this much time to every predict (benchmarks)")
    parser.add_argument("--max-concurrent", type=int, default=0, metavar="N",
                        help="run at most N predicts at once, queueing the others (benchmarks; "
                        "default: no cap)")
    args = parser.parse_args(argv)
    if args.latency_ms < 0 or args.max_concurrent < 0:
        parser.error("--latency-ms and --max-concurrent must be 0 or more")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key")
    try:
        server = start(
            args.model_base, host=args.host, port=args.port, rest_port=args.rest_port,
            versions=_versions(args.serve_version) or None, labels=_labels(args.label),
            tensor_content=args.enable_serialization_as_tensor_content, token=args.token,
            cert_files=(args.tls_cert, args.tls_key) if args.tls_cert else None,
            client_ca_file=args.tls_client_ca, latency=args.latency_ms / 1000,
            max_concurrent=args.max_concurrent,
        )
    except (OSError, ValueError) as exc:
        print(f"segviewer-serve: {exc}", file=sys.stderr)
        return 2
    served = server.repository.servables
    models = ", ".join(f"{name} v{','.join(map(str, sorted(v)))}" for name, v in served.items())
    print(f"segviewer-serve (stand-in, not TF Serving): gRPC {server.grpc_address}, "
          f"REST {server.rest_url}; models: {models or 'none'}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
