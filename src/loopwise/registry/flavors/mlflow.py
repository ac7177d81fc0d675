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


#: MLflow's column types -> loopwise's (``binary`` and others have no loopwise check).
_TYPES = {
    "double": "float",
    "float": "float",
    "long": "integer",
    "integer": "integer",
    "boolean": "boolean",
    "string": "string",
    "datetime": "datetime",
}


def _columns(text: Any, default_name: str) -> list[dict[str, Any]] | None:
    """MLflow's column or tensor specs (JSON text in MLmodel) as loopwise column specs;
    None when one of them has no loopwise equivalent."""
    import json

    if not isinstance(text, str):
        return None
    try:
        specs = json.loads(text)
    except ValueError:
        return None
    if not isinstance(specs, list):
        return None
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            return None
        if spec.get("type") == "tensor":
            shape = (spec.get("tensor-spec") or {}).get("shape")
            if len(specs) != 1 or not isinstance(shape, list):
                return None
            out.append({"name": spec.get("name") or default_name, "type": "tensor", "shape": shape})
            continue
        kind = _TYPES.get(str(spec.get("type")))
        name = spec.get("name") or (default_name if len(specs) == 1 else f"{default_name}{i}")
        if kind is None or not isinstance(name, str):
            return None
        out.append({"name": name, "type": kind})
    return out


def signature(path: Path) -> dict[str, Any] | None:
    """The model folder's MLflow signature as a loopwise signature document (inputs checked
    on every request, like any loopwise version's), or None when it has none or when a
    column has no loopwise type (inputs then go to the model as they come)."""
    found = mlmodel(path).get("signature")
    if not isinstance(found, dict):
        return None
    inputs = _columns(found.get("inputs"), "input")
    if not inputs:
        return None
    outputs = _columns(found.get("outputs"), "prediction") or []
    return {"inputs": inputs, "outputs": outputs}


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


def _adapt(loaded: Any, X: Any) -> Any:
    """``X`` as a scikit-learn model was fitted (its column names), as loopwise's sklearn
    flavor gives it; anything else as it comes."""
    if getattr(loaded, "feature_names_in_", None) is None:
        return X
    from loopwise.registry.flavors import sklearn

    return sklearn.adapt(loaded, X)


def predict(loaded: Any, X: Any) -> Any:
    return np.asarray(loaded.predict(_adapt(loaded, X)))


def has_predict_proba(loaded: object) -> bool:
    return callable(getattr(loaded, "predict_proba", None))


def predict_proba(loaded: Any, X: Any) -> Any:
    if not has_predict_proba(loaded):
        return None
    return np.asarray(loaded.predict_proba(_adapt(loaded, X)))


def feature_names(model: object) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def requirements() -> dict[str, str]:
    return {}
