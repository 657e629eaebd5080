"""packaging/k8s/: the manifests parse and reference each other consistently, and the Job's
command line is one segviewer-predict really accepts (parsed by its own parser)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from segviewer.core.cli import build_parser

K8S = Path(__file__).resolve().parent.parent / "packaging" / "k8s"


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict]:
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], path
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def only(manifests, kind: str) -> dict:
    (doc,) = [d for (k, _), d in manifests.items() if k == kind]
    return doc


def claims(pod_spec: dict) -> set[str]:
    return {v["persistentVolumeClaim"]["claimName"] for v in pod_spec.get("volumes", [])
            if "persistentVolumeClaim" in v}


def test_tf_serving_deployment_and_service_agree(manifests):
    deployment, service = only(manifests, "Deployment"), only(manifests, "Service")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = pod["spec"]["containers"]
    image, _, tag = container["image"].partition(":")
    assert image == "tensorflow/serving" and re.fullmatch(r"\d+\.\d+\.\d+", tag)  # pinned
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    flags = dict(a.removeprefix("--").split("=", 1) for a in container["args"])
    assert ports == {"grpc": int(flags["port"]), "http": int(flags["rest_api_port"])}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == f"/v1/models/{flags['model_name']}"  # TF Serving's status URL
    assert probe["port"] == "http"
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["models"]
    assert flags["model_base_path"] == f"{mount}/{flags['model_name']}"
    assert claims(pod["spec"]) <= {n for k, n in manifests if k == "PersistentVolumeClaim"}


def test_the_indexed_job_runs_one_shard_per_completion_against_the_service(manifests):
    job, service = only(manifests, "Job"), only(manifests, "Service")
    deployment = only(manifests, "Deployment")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["parallelism"] <= spec["completions"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:2] == ["sh", "-c"]
    script = container["command"][2]
    assert "$JOB_COMPLETION_INDEX/" in script
    words = shlex.split(script.replace("$JOB_COMPLETION_INDEX", "0"))
    assert words[:2] == ["exec", "segviewer-predict"]
    args = build_parser().parse_args(words[2:])  # flags segviewer-predict really has
    assert args.shard.index == 0 and args.shard.count == spec["completions"]
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert args.server == f"{service['metadata']['name']}:{ports['grpc']}"
    serving_flags = dict(a.removeprefix("--").split("=", 1)
                         for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"])
    assert args.model == serving_flags["model_name"]
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    for path in (args.inputs[0], str(args.out), str(args.summary)):
        assert any(path.startswith(m + "/") for m in mounts), path
    (wait,) = pod["initContainers"]
    assert (f"http://{service['metadata']['name']}:{ports['http']}/v1/models/{args.model}"
            in " ".join(wait["command"]))
    assert claims(pod) <= {n for k, n in manifests if k == "PersistentVolumeClaim"}
