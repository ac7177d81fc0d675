"""Generic Python models: any object with a ``predict`` method (``predict_proba`` too if
it has one), pickled with cloudpickle when it is installed, else with pickle.

The object's class is pickled by reference, so it must be importable (its module on the
path) wherever the package is loaded; only with cloudpickle are classes defined in
``__main__`` (a notebook or script) stored by value. ``predict`` receives the canonical
input: a float64 array for numeric signatures, else a pandas DataFrame (an object with
scikit-learn's ``feature_names_in_`` gets a DataFrame with those names).
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from loopwise.registry.flavors import installed_version
from loopwise.registry.flavors.sklearn import adapt

name = "pyfunc"
FILE = "model.pkl"


def matches(model: object) -> bool:
    return callable(getattr(model, "predict", None))


def _has_cloudpickle() -> bool:
    return importlib.util.find_spec("cloudpickle") is not None


def save(model: object, path: Path) -> None:
    if _has_cloudpickle():
        import cloudpickle

        data = cloudpickle.dumps(model, protocol=5)
    else:
        data = pickle.dumps(model, protocol=5)
    (path / FILE).write_bytes(data)


def load(path: Path) -> object:
    with open(path / FILE, "rb") as f:
        return pickle.load(f)


def predict(loaded: Any, X: Any) -> np.ndarray:
    return np.asarray(loaded.predict(adapt(loaded, X)))


def has_predict_proba(loaded: object) -> bool:
    return callable(getattr(loaded, "predict_proba", None))


def predict_proba(loaded: Any, X: Any) -> np.ndarray | None:
    if not has_predict_proba(loaded):
        return None
    return np.asarray(loaded.predict_proba(adapt(loaded, X)))


def feature_names(model: object) -> None:
    return None


def requirements() -> dict[str, str]:
    return {"cloudpickle": installed_version("cloudpickle")} if _has_cloudpickle() else {}
