"""XGBoost models, scikit-learn API (``XGBClassifier``, ...) or ``Booster``, saved in
XGBoost's native JSON format (``save_model``), readable by any later XGBoost."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from loopwise.registry.flavors import installed_version

name = "xgboost"
FILE = "model.json"
META = "xgboost.json"


def matches(model: object) -> bool:
    xgb = sys.modules.get("xgboost")
    return xgb is not None and isinstance(model, xgb.XGBModel | xgb.Booster)


def save(model: Any, path: Path) -> None:
    model.save_model(path / FILE)
    (path / META).write_text(json.dumps({"class": type(model).__name__}))


def load(path: Path) -> object:
    import xgboost as xgb

    cls = json.loads((path / META).read_text())["class"]
    if cls == "Booster":
        return xgb.Booster(model_file=str(path / FILE))
    model = getattr(xgb, cls)()
    model.load_model(path / FILE)
    return model


def predict(loaded: Any, X: Any) -> np.ndarray:
    if type(loaded).__name__ == "Booster":
        return np.asarray(loaded.inplace_predict(X))
    return np.asarray(loaded.predict(X))


def has_predict_proba(loaded: object) -> bool:
    return hasattr(loaded, "predict_proba")


def predict_proba(loaded: Any, X: Any) -> np.ndarray | None:
    return np.asarray(loaded.predict_proba(X)) if has_predict_proba(loaded) else None


def feature_names(model: Any) -> list[str] | None:
    booster = model if type(model).__name__ == "Booster" else model.get_booster()
    return None if booster.feature_names is None else list(booster.feature_names)


def requirements() -> dict[str, str]:
    return {"xgboost": installed_version("xgboost")}
