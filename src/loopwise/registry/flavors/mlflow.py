"""Models an MLflow client logged (``mlflow.<flavor>.log_model``) and registered through
``loopwise server``: the package's ``model/`` folder is MLflow's model folder as the client
wrote it (``MLmodel`` and the flavor's files).

Why not always ``mlflow.pyfunc.load_model``: loopwise serves and gates these versions like
any other, and MLflow is not a loopwise dependency. A scikit-learn model (MLflow's
``sklearn`` flavor, written with skops, cloudpickle or pickle) is read directly, with the
same predict and predict_proba as loopwise's own sklearn flavor; any other MLflow flavor
is loaded through MLflow's pyfunc, which must then be installed (ImportError naming it
otherwise).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from loopwise.errors import InvalidInput

name = "mlflow"
MLMODEL = "MLmodel"


def matches(model: object) -> bool:
    return False  # made from an MLflow client's upload, never from a Python object


def save(model: object, path: Path) -> None:
    raise InvalidInput(
        "the mlflow flavor holds models MLflow clients log through `loopwise server`; log a "
        "Python model with lw.log_model (its flavor is detected)."
    )


def mlmodel(path: Path) -> dict[str, Any]:
    """The model folder's ``MLmodel`` document."""
    import yaml

    document = yaml.safe_load((path / MLMODEL).read_text())
    if not isinstance(document, dict) or not isinstance(document.get("flavors"), dict):
        raise InvalidInput(f"{path / MLMODEL} is not an MLflow model description (no flavors).")
    return document


def _load_sklearn(path: Path, spec: dict[str, Any]) -> object:
    file = path / str(spec.get("pickled_model", "model.pkl"))
    form = spec.get("serialization_format", "cloudpickle")
    if form == "skops":
        import skops.io

        return skops.io.load(file, trusted=skops.io.get_untrusted_types(file=file))
    if form == "cloudpickle":
        import cloudpickle

        with open(file, "rb") as f:
            return cloudpickle.load(f)
    with open(file, "rb") as f:
        return pickle.load(f)


def load(path: Path) -> object:
    flavors = mlmodel(path)["flavors"]
    if "sklearn" in flavors:
        import sklearn  # noqa: F401  (a clear ImportError when scikit-learn is missing)

        return _load_sklearn(path, flavors["sklearn"])
    import mlflow.pyfunc  # any other flavor: MLflow's own loader

    return mlflow.pyfunc.load_model(str(path))


def predict(loaded: Any, X: Any) -> Any:
    return np.asarray(loaded.predict(X))


def has_predict_proba(loaded: object) -> bool:
    return callable(getattr(loaded, "predict_proba", None))


def predict_proba(loaded: Any, X: Any) -> Any:
    return np.asarray(loaded.predict_proba(X)) if has_predict_proba(loaded) else None


def feature_names(model: object) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def requirements() -> dict[str, str]:
    return {}
