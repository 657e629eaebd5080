"""The official TF Serving message classes, loaded without importing TensorFlow.

`import tensorflow_serving.apis.predict_pb2` runs `tensorflow/__init__.py` (seconds, gigabytes).
The generated `*_pb2.py` files only carry a serialized FileDescriptorProto each, so we read that
literal with `ast` (never executing the module), add the files in dependency order to a private
DescriptorPool and build the message classes from it. The wire format is that of the installed
tensorflow-serving-api, so nothing here can drift from the real protos.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from segviewer.core.serving.base import Signature, TensorSpec

_POOL = descriptor_pool.DescriptorPool()
_ADDED: set[str] = set()


def _module_file(module: str) -> Path:
    # find_spec on the top-level name locates the package without running its __init__.
    top, _, rest = module.partition(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{top} is not installed; install tensorflow-serving-api")
    return Path(next(iter(spec.submodule_search_locations)), *rest.split(".")).with_suffix(".py")


def _pb2_imports(tree: ast.Module) -> list[str]:
    """The *_pb2 modules a generated module imports (its proto dependencies), in order."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.endswith("_pb2"):
                found.append(node.module)
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.endswith("_pb2")]
    return found


def _serialized_descriptor(tree: ast.Module, source: Path) -> bytes:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "AddSerializedFile"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, bytes)
        ):
            return node.args[0].value
    raise ImportError(f"no serialized descriptor found in {source}")


def _add(module: str) -> None:
    """Add the proto file of generated module `module` (and its dependencies) to the pool."""
    if module in _ADDED:
        return
    _ADDED.add(module)
    if module.startswith("google.protobuf."):
        # protobuf's own well-known types: importing them is cheap and TensorFlow-free.
        data = importlib.import_module(module).DESCRIPTOR.serialized_pb
        _POOL.Add(descriptor_pb2.FileDescriptorProto.FromString(data))
        return
    source = _module_file(module)
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    for dependency in _pb2_imports(tree):
        _add(dependency)
    _POOL.Add(descriptor_pb2.FileDescriptorProto.FromString(_serialized_descriptor(tree, source)))


@cache
def message(full_name: str) -> type[Any]:
    """The message class for a full proto name, e.g. 'tensorflow.serving.PredictRequest'."""
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(full_name))


def enum_value(enum_full_name: str, value_name: str) -> int:
    return _POOL.FindEnumTypeByName(enum_full_name).values_by_name[value_name].number


for _module in ("predict_pb2", "get_model_metadata_pb2", "get_model_status_pb2"):
    _add(f"tensorflow_serving.apis.{_module}")

PredictRequest = message("tensorflow.serving.PredictRequest")
PredictResponse = message("tensorflow.serving.PredictResponse")
GetModelMetadataRequest = message("tensorflow.serving.GetModelMetadataRequest")
GetModelMetadataResponse = message("tensorflow.serving.GetModelMetadataResponse")
GetModelStatusRequest = message("tensorflow.serving.GetModelStatusRequest")
GetModelStatusResponse = message("tensorflow.serving.GetModelStatusResponse")
SignatureDefMap = message("tensorflow.serving.SignatureDefMap")
ModelSpec = message("tensorflow.serving.ModelSpec")
TensorProto = message("tensorflow.TensorProto")
TensorShapeProto = message("tensorflow.TensorShapeProto")
SignatureDef = message("tensorflow.SignatureDef")

# gRPC method paths, as in tensorflow_serving/apis/*_service.proto.
PREDICT = "/tensorflow.serving.PredictionService/Predict"
GET_MODEL_METADATA = "/tensorflow.serving.PredictionService/GetModelMetadata"
GET_MODEL_STATUS = "/tensorflow.serving.ModelService/GetModelStatus"


_DTYPE_NAMES = {"DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_HALF": "float16"}


def dtype_name(number: int) -> str:
    """DataType enum number -> the name TensorSpec uses: numpy's ("uint8"), or "string"."""
    name = _POOL.FindEnumTypeByName("tensorflow.DataType").values_by_number[number].name
    return _DTYPE_NAMES.get(name, name.removeprefix("DT_").lower())


def signatures(signature_def_map: Any) -> dict[str, Signature]:
    """A SignatureDefMap -> our Signature dataclasses, without TF Serving's internal entries
    (e.g. "__saved_model_init_op")."""
    found = {}
    for key, sig in sorted(signature_def_map.signature_def.items()):
        if key.startswith("__"):
            continue
        inputs, outputs = ({a: _tensor_spec(a, t) for a, t in sorted(m.items())}
                           for m in (sig.inputs, sig.outputs))
        found[key] = Signature(key, inputs, outputs, sig.method_name)
    return found


def _tensor_spec(alias: str, info: Any) -> TensorSpec:
    shape = info.tensor_shape
    dims = None if shape.unknown_rank else tuple(None if d.size < 0 else d.size for d in shape.dim)
    return TensorSpec(alias, dtype_name(info.dtype), dims)
