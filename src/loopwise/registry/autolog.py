"""``lw.autolog()``: scikit-learn's ``fit`` inside a run logs params, metrics and the model.

Every estimator class scikit-learn exports gets its ``fit`` wrapped once. Inside an active
run, the outermost ``fit`` (a pipeline's inner fits are not logged again) records the
estimator's parameters, its training score (accuracy for classifiers, R² for regressors;
plus ROC-AUC for binary classifiers with ``predict_proba``), and the fitted model,
registered under ``registered_model_name`` when given or attached to the run otherwise.
Outside a run, ``fit`` behaves exactly as before.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

from loopwise.errors import ConfigurationError

log = logging.getLogger("loopwise.autolog")

_state = threading.local()
_patched: dict[type, Any] = {}
_settings: dict[str, Any] = {}


def autolog(
    *,
    log_models: bool = True,
    registered_model_name: str | None = None,
    disable: bool = False,
) -> None:
    """Turn scikit-learn autologging on (or off with ``disable=True``)."""
    try:
        from sklearn.utils import all_estimators
    except ImportError as e:
        raise ConfigurationError(
            "autolog needs scikit-learn: pip install 'loopwise[demo]' or scikit-learn."
        ) from e
    if disable:
        for cls, original in _patched.items():
            cls.fit = original
        _patched.clear()
        return
    _settings.update(log_models=log_models, registered_model_name=registered_model_name)
    for _, cls in all_estimators():
        original = cls.__dict__.get("fit")
        if original is None or cls in _patched:
            continue
        _patched[cls] = original
        cls.fit = _wrap(original)


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        from loopwise.tracking.fluent import active_run

        if getattr(_state, "depth", 0) or active_run() is None:
            return original(self, *args, **kwargs)
        _state.depth = 1
        try:
            result = original(self, *args, **kwargs)
        finally:
            _state.depth = 0
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        try:
            _record(self, X, y)
        except Exception as e:  # logging must never break training
            log.warning("autolog could not record %s: %s", type(self).__name__, e)
        return result

    return fit


def _record(estimator: Any, X: Any, y: Any) -> None:
    import loopwise as lw

    params = {
        key.replace("__", "."): value
        for key, value in estimator.get_params(deep=True).items()
        if isinstance(value, str | int | float | bool) or value is None
    }
    lw.log_params({"estimator": type(estimator).__name__, **_safe_keys(params)})
    metrics = _training_metrics(estimator, X, y)
    if metrics:
        lw.log_metrics(metrics)
    if _settings.get("log_models", True):
        name = _settings.get("registered_model_name")
        if name:
            lw.log_model(estimator, name=name, input_example=_head(X))
        else:
            import tempfile
            from pathlib import Path

            from loopwise.registry.packaging import save_package

            with tempfile.TemporaryDirectory() as tmp:
                save_package(estimator, Path(tmp) / "model", input_example=_head(X))
                lw.log_artifact(Path(tmp) / "model", "model")


def _safe_keys(params: dict[str, Any]) -> dict[str, Any]:
    """Param names as logged: estimator parameters are snake_case already."""
    return {key.replace(".", "/"): value for key, value in params.items()}


def _training_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    if y is None or not hasattr(estimator, "score"):
        return {}
    from sklearn.base import is_classifier, is_regressor

    metrics: dict[str, float] = {}
    if is_classifier(estimator):
        metrics["training_accuracy"] = float(estimator.score(X, y))
        if hasattr(estimator, "predict_proba") and len(getattr(estimator, "classes_", [])) == 2:
            from sklearn.metrics import roc_auc_score

            proba = estimator.predict_proba(X)[:, 1]
            metrics["training_roc_auc"] = float(roc_auc_score(y, proba))
    elif is_regressor(estimator):
        metrics["training_r2"] = float(estimator.score(X, y))
    return metrics


def _head(X: Any) -> Any:
    try:
        return X[:5]
    except Exception:
        return None
