"""ONNX models (an ``onnx.ModelProto``), saved as ``model.onnx`` and run with onnxruntime.

Inputs are mapped from the signature: a model with one input gets the whole canonical
input, cast to that input's element type; a model with one input per column (as
skl2onnx makes for mixed-type pipelines) gets each column by name, shaped ``(n, 1)``.
The first output is the prediction; a second output named like ``probabilities`` is
``predict_proba`` (a ZipMap list of dicts is turned into an array).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from loopwise.errors import InvalidInput
from loopwise.registry.flavors import installed_version

name = "onnx"
FILE = "model.onnx"
_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": object,
}


def matches(model: object) -> bool:
    onnx = sys.modules.get("onnx")
    return onnx is not None and isinstance(model, onnx.ModelProto)


def save(model: Any, path: Path) -> None:
    (path / FILE).write_bytes(model.SerializeToString())


def load(path: Path) -> object:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path / FILE), providers=["CPUExecutionProvider"])


def _feeds(session: Any, X: Any) -> dict[str, np.ndarray]:
    inputs = session.get_inputs()
    if len(inputs) == 1:
        values = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
        return {inputs[0].name: _cast(values, inputs[0])}
    if isinstance(X, np.ndarray):  # numeric canonical input: columns in signature order
        if X.ndim != 2 or X.shape[1] != len(inputs):
            raise InvalidInput(f"the ONNX model takes {len(inputs)} inputs; got {X.shape}.")
        return {i.name: _cast(X[:, [k]], i) for k, i in enumerate(inputs)}
    missing = [i.name for i in inputs if i.name not in X.columns]
    if missing:
        raise InvalidInput(f"the ONNX model needs inputs {missing}, absent from the signature.")
    return {i.name: _cast(X[i.name].to_numpy().reshape(-1, 1), i) for i in inputs}


def _cast(values: np.ndarray, node: Any) -> np.ndarray:
    dtype = _DTYPES.get(node.type)
    if dtype is None:
        raise InvalidInput(f"ONNX input {node.name!r} has type {node.type}, not supported.")
    return values.astype(dtype)


def _run(loaded: Any, X: Any) -> list[Any]:
    return loaded.run(None, _feeds(loaded, X))


def predict(loaded: Any, X: Any) -> np.ndarray:
    return np.asarray(_run(loaded, X)[0])


def has_predict_proba(loaded: Any) -> bool:
    """True when a second output holds probabilities (a session or a ModelProto)."""
    outputs = loaded.get_outputs() if hasattr(loaded, "get_outputs") else loaded.graph.output
    return len(outputs) > 1 and "prob" in outputs[1].name.lower()


def predict_proba(loaded: Any, X: Any) -> np.ndarray | None:
    if not has_predict_proba(loaded):
        return None
    probs = _run(loaded, X)[1]
    if isinstance(probs, list):  # ZipMap: one {label: probability} dict per row
        return np.array([[row[k] for k in sorted(row)] for row in probs])
    return np.asarray(probs)


def feature_names(model: Any) -> list[str] | None:
    names = [i.name for i in model.graph.input]
    return names if len(names) > 1 else None


def requirements() -> dict[str, str]:
    return {"onnxruntime": installed_version("onnxruntime")}
