"""scikit-learn estimators and pipelines, pickled (protocol 5).

A model fitted on a DataFrame records its column names (``feature_names_in_``); such a
model gets a DataFrame with those names, any other model a plain array, so scikit-learn
never warns about feature names at predict time.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

from loopwise.registry.flavors import installed_version

name = "sklearn"
FILE = "model.pkl"


def matches(model: object) -> bool:
    base = sys.modules.get("sklearn.base")
    return base is not None and isinstance(model, base.BaseEstimator)


def save(model: object, path: Path) -> None:
    with open(path / FILE, "wb") as f:
        pickle.dump(model, f, protocol=5)


def load(path: Path) -> object:
    import sklearn  # noqa: F401  (a clear ImportError when scikit-learn is missing)

    with open(path / FILE, "rb") as f:
        return pickle.load(f)


def adapt(model: Any, X: Any) -> Any:
    """``X`` as the model was fitted: a DataFrame with its column names, or an array."""
    names = getattr(model, "feature_names_in_", None)
    if isinstance(X, np.ndarray):
        if names is None:
            return X
        import pandas as pd

        return pd.DataFrame(X, columns=list(names))
    if names is None and hasattr(X, "to_numpy"):
        return X.to_numpy()
    return X


def predict(loaded: Any, X: Any) -> np.ndarray:
    return np.asarray(loaded.predict(adapt(loaded, X)))


def has_predict_proba(loaded: object) -> bool:
    return hasattr(loaded, "predict_proba")


def predict_proba(loaded: Any, X: Any) -> np.ndarray | None:
    if not has_predict_proba(loaded):
        return None
    return np.asarray(loaded.predict_proba(adapt(loaded, X)))


def feature_names(model: object) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def requirements() -> dict[str, str]:
    return {"scikit-learn": installed_version("scikit-learn")}
