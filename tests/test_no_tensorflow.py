"""The remote path never imports TensorFlow: gRPC and REST predictions in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
from conftest import REPO

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from segviewer.core.serving.base import ModelRef
    from segviewer.core.serving.grpc_backend import GrpcBackend
    from segviewer.core.serving.rest_backend import RestBackend

    grpc_address, rest_url = sys.argv[1:3]
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    results = {}
    for backend in (GrpcBackend(grpc_address, ["tiny"]), RestBackend(rest_url, ["tiny"])):
        prediction = backend.predict(image, ModelRef("tiny", 1))
        meta = backend.metadata(ModelRef("tiny", 1))
        results[backend.description] = [prediction.labels.tolist(), len(meta.classes)]
        backend.close()
    tf_names = ("tensorflow", "tensorflow_serving")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in tf_names)
    print(json.dumps({"results": results, "loaded": loaded}))
    """
)


def test_grpc_and_rest_predict_without_importing_tensorflow(tf_serving) -> None:
    from segviewer.devserver.toy_models import tiny_labels

    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, tf_serving.grpc_address, tf_serving.rest_url],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["loaded"] == []
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    expected = tiny_labels(image).tolist()
    assert len(report["results"]) == 2
    for labels, num_classes in report["results"].values():
        assert labels == expected
        assert num_classes == 4
