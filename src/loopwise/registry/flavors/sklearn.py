"""scikit-learn estimators and pipelines, pickled (protocol 5).

A model fitted on a DataFrame records its column names (``feature_names_in_``); such a
model gets a DataFrame with those names, any other model a plain array, so scikit-learn
never warns about feature names at predict time.

Why there is an array path for models fitted on a DataFrame: building that DataFrame and
scikit-learn's validation of it cost about 1 ms per call, as much as a small forest's
whole predict. A plain estimator (not a pipeline, column transformer or other
meta-estimator) uses its column names only to check them, and the array the signature
check builds is already in fit order; such a model predicts on arrays through a shallow
copy without ``feature_names_in_`` (made once, cached beside the model), with the same
results. Anything that may select columns by name keeps the DataFrame path.
"""

from __future__ import annotations

import copy
import pickle
import sys
import weakref
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


#: Estimators whose column names are only checked, never used to pick columns: the array
#: path is safe for them. Pipelines, column transformers and meta-estimators are not here.
_PLAIN_MODULES = (
    "sklearn.linear_model.", "sklearn.tree.", "sklearn.svm.", "sklearn.neighbors.",
    "sklearn.naive_bayes.", "sklearn.discriminant_analysis.", "sklearn.neural_network.",
    "sklearn.ensemble._forest", "sklearn.ensemble._gb", "sklearn.ensemble._hist_gradient",
)  # fmt: skip
_NAMELESS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _array_model(model: Any) -> Any:
    """``model`` itself, or a copy without column names that predicts on arrays (doc)."""
    if getattr(model, "feature_names_in_", None) is None:
        return model
    try:
        return _NAMELESS[model]
    except (KeyError, TypeError):
        pass
    nameless = model
    if type(model).__module__.startswith(_PLAIN_MODULES):
        nameless = copy.copy(model)
        del nameless.feature_names_in_
    try:
        _NAMELESS[model] = nameless
    except TypeError:  # not weak-referenceable: no cache, no copy
        return model
    return nameless


def _target(model: Any, X: Any) -> tuple[Any, Any]:
    if isinstance(X, np.ndarray):
        fast = _array_model(model)
        if fast is not model:
            return fast, X
    return model, adapt(model, X)


def predict(loaded: Any, X: Any) -> np.ndarray:
    model, data = _target(loaded, X)
    return np.asarray(model.predict(data))


def has_predict_proba(loaded: object) -> bool:
    return hasattr(loaded, "predict_proba")


def predict_proba(loaded: Any, X: Any) -> np.ndarray | None:
    if not has_predict_proba(loaded):
        return None
    model, data = _target(loaded, X)
    return np.asarray(model.predict_proba(data))


def feature_names(model: object) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def requirements() -> dict[str, str]:
    return {"scikit-learn": installed_version("scikit-learn")}
