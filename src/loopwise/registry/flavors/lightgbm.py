"""LightGBM models, scikit-learn API (``LGBMClassifier``, ...) or ``Booster``, saved in
LightGBM's native text format.

Only the booster is stored (``model.txt``), with the class labels of a classifier beside
it (``lightgbm.json``). Loading gives a :class:`LightGBMModel`: the booster, the labels,
and predictions computed the way ``LGBMClassifier`` computes them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loopwise.registry.flavors import installed_version

name = "lightgbm"
FILE = "model.txt"
META = "lightgbm.json"


@dataclass
class LightGBMModel:
    """A loaded LightGBM package: ``booster`` and, for a classifier, its ``classes``."""

    booster: Any
    kind: str
    classes: np.ndarray | None = None

    def predict_proba(self, X: Any) -> np.ndarray:
        scores = np.asarray(self.booster.predict(X))
        return np.column_stack([1.0 - scores, scores]) if scores.ndim == 1 else scores

    def predict(self, X: Any) -> np.ndarray:
        if self.classes is None:
            return np.asarray(self.booster.predict(X))
        return self.classes[np.argmax(self.predict_proba(X), axis=1)]


def matches(model: object) -> bool:
    lgb = sys.modules.get("lightgbm")
    return lgb is not None and isinstance(model, lgb.LGBMModel | lgb.Booster)


def _booster(model: Any) -> Any:
    return model if type(model).__name__ == "Booster" else model.booster_


def save(model: Any, path: Path) -> None:
    _booster(model).save_model(str(path / FILE))
    meta: dict[str, Any] = {"class": type(model).__name__}
    classes = getattr(model, "classes_", None)
    if classes is not None:
        meta["classes"] = np.asarray(classes).tolist()
        meta["classes_dtype"] = np.asarray(classes).dtype.str
    (path / META).write_text(json.dumps(meta))


def load(path: Path) -> LightGBMModel:
    import lightgbm as lgb

    meta = json.loads((path / META).read_text())
    booster = lgb.Booster(model_file=str(path / FILE))
    classes = meta.get("classes")
    if classes is not None:
        classes = np.asarray(classes, dtype=np.dtype(meta["classes_dtype"]))
    return LightGBMModel(booster, meta["class"], classes)


def predict(loaded: LightGBMModel, X: Any) -> np.ndarray:
    return loaded.predict(X)


def has_predict_proba(loaded: object) -> bool:
    """True for classifiers, loaded (``classes``) or not yet saved (``classes_``)."""
    return getattr(loaded, "classes", getattr(loaded, "classes_", None)) is not None


def predict_proba(loaded: LightGBMModel, X: Any) -> np.ndarray | None:
    return loaded.predict_proba(X) if has_predict_proba(loaded) else None


def feature_names(model: Any) -> list[str] | None:
    names = list(_booster(model).feature_name())
    return None if names == [f"Column_{i}" for i in range(len(names))] else names


def requirements() -> dict[str, str]:
    return {"lightgbm": installed_version("lightgbm")}
