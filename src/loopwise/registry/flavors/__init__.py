"""Flavors: how each kind of model is saved, loaded and asked for predictions.

A flavor is a module with the members of :class:`Flavor`. :data:`FLAVORS` maps a flavor's
name to its module, imported only when needed; a flavor module imports its library
(torch, xgboost, ...) inside its functions, and its ``matches`` looks only at libraries
already imported, so detecting a flavor never imports a heavy library.

``predict`` and ``predict_proba`` receive the canonical input of
:func:`~loopwise.registry.signature.check_input`: a float64 array for numeric models, a
pandas DataFrame when there are string or datetime columns, an array for tensors.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any, Protocol

from loopwise.errors import InvalidInput

FLAVORS = {
    "sklearn": "loopwise.registry.flavors.sklearn",
    "xgboost": "loopwise.registry.flavors.xgboost",
    "lightgbm": "loopwise.registry.flavors.lightgbm",
    "pytorch": "loopwise.registry.flavors.pytorch",
    "onnx": "loopwise.registry.flavors.onnx",
    "pyfunc": "loopwise.registry.flavors.pyfunc",
    "mlflow": "loopwise.registry.flavors.mlflow",
}
#: The order ``detect_flavor`` tries: XGBoost and LightGBM models are also scikit-learn
#: estimators, and anything with a ``predict`` method is a pyfunc (``mlflow`` matches no
#: object: its packages come from MLflow clients).
DETECTION_ORDER = ("xgboost", "lightgbm", "sklearn", "pytorch", "onnx", "mlflow", "pyfunc")


class Flavor(Protocol):
    """The members every flavor module has."""

    name: str

    def matches(self, model: object) -> bool:
        """True when this flavor can save ``model`` (without importing anything heavy)."""

    def save(self, model: object, path: Path) -> None:
        """Write ``model`` into the empty folder ``path``."""

    def load(self, path: Path) -> object:
        """Read back what ``save`` wrote; raises ImportError when the library is missing."""

    def predict(self, loaded: object, X: Any) -> Any:
        """Predictions of the loaded model as a NumPy array."""

    def has_predict_proba(self, loaded: object) -> bool:
        """True when ``predict_proba`` gives class probabilities for this model."""

    def predict_proba(self, loaded: object, X: Any) -> Any:
        """Class probabilities as a NumPy array, or None when the model has none."""

    def feature_names(self, model: object) -> list[str] | None:
        """The input columns in the order the model expects them, when it records them."""

    def requirements(self) -> dict[str, str]:
        """Distribution name -> installed version, for what ``load`` needs."""


def get_flavor(name: str) -> Flavor:
    """The flavor module called ``name``."""
    if name not in FLAVORS:
        raise InvalidInput(f"unknown flavor {name!r}; supported flavors: {', '.join(FLAVORS)}.")
    return import_module(FLAVORS[name])  # type: ignore[return-value]


def detect_flavor(model: object) -> Flavor:
    """The first flavor in :data:`DETECTION_ORDER` whose ``matches`` accepts ``model``."""
    for name in DETECTION_ORDER:
        flavor = get_flavor(name)
        if flavor.matches(model):
            return flavor
    raise InvalidInput(
        f"cannot package a {type(model).__module__}.{type(model).__qualname__}: no flavor "
        f"matches it. Supported flavors: {', '.join(FLAVORS)} (pyfunc takes any object with "
        "a predict method); pass flavor='...' to choose one."
    )


def installed_version(distribution: str) -> str:
    """The installed version of ``distribution`` (``"unknown"`` when metadata is absent)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"
