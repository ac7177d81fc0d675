"""``lw.autolog()``: scikit-learn's ``fit`` inside a run logs params, metrics and the model.

Every ``fit`` scikit-learn's estimators use gets wrapped once, on the class that defines
it (``RandomForestClassifier`` inherits its ``fit`` from ``BaseForest``, the searches
theirs from ``BaseSearchCV``). Outside a run, ``fit`` behaves exactly as before.

Which fits are recorded. Inside an active run, the outermost ``fit`` is recorded, once.
Fits made while it runs (a pipeline's steps, a search's candidates and folds, its refit)
belong to it and record nothing, whichever thread makes them: joblib's threading backend
fits candidates on worker threads, and the run is the process's, not the thread's. Fits
made by scikit-learn's cross-validation helpers (``cross_val_score``, ``cross_validate``,
``cross_val_predict``, ``learning_curve``, ``validation_curve``,
``permutation_test_score``) record nothing either: they fit throwaway clones, one per
fold, and recording them registered one model per fold. They are recognised by a frame of
``sklearn.model_selection._validation`` on the call stack, which also holds in forked
worker processes.

What a search records (``GridSearchCV``, ``RandomizedSearchCV``, ``HalvingGridSearchCV``,
``HalvingRandomSearchCV``): one run. Params are the best candidate's (the searched ones
at their best values) plus ``search``, ``search_candidates``, ``search_folds``,
``search_scoring`` and ``search_refit``; metrics are ``best_cv_score`` and ``cv_<column>``
for each ``mean_*``/``std_*`` column of ``cv_results_`` at the best candidate, plus the
training metrics of the refit best estimator; ``cv_results_`` (one row per candidate) is
attached as ``cv_results.csv``; the model is the refit best estimator, and there is none
when ``refit=False``. Candidates do not become child runs: a grid of a few hundred
candidates would bury the run list, and the table holds the same figures in one file.

Where it goes. A recorded fit writes through the service functions to the active run it
found (:mod:`loopwise.tracking.fluent` is the one facade this module uses) and to the store
that run lives in, so params, metrics, ``cv_results.csv`` and the model land beside the run
(the root ``loopwise`` package is not used: a service does not call the public API).

Param keys keep scikit-learn's spelling (``clf__C``), which the default key rule takes;
under a rule that refuses it (``snake_case``) nested names are joined by ``/``
(``clf/C``), and keys the rule refuses either way are skipped with one warning. Values
that are not numbers, booleans, text or None (estimators, lists, kernels) are logged as
their repr on one line, cut at :data:`MAX_REPR`.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import sys
import threading
from typing import TYPE_CHECKING, Any

from loopwise.errors import ConfigurationError, InvalidInput
from loopwise.tracking.naming import naming_rule

if TYPE_CHECKING:  # imported when a fit is recorded: lw.autolog stays cheap to reach
    from loopwise.tracking.fluent import ActiveRun

log = logging.getLogger("loopwise.autolog")

MAX_REPR = 250  # characters of a non-scalar param value's repr that are logged

# Fits whose call stack passes through these modules are cross-validation clones.
_CV_MODULES = frozenset({"sklearn.model_selection._validation"})

_lock = threading.Lock()
_recording = 0  # recorded fits in progress in this process (0 or 1)
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
        for owner, original in _patched.items():
            owner.fit = original
        _patched.clear()
        return
    _settings.update(log_models=log_models, registered_model_name=registered_model_name)
    for cls in [cls for _, cls in all_estimators()] + _halving_searches():
        owner = next((k for k in cls.__mro__ if "fit" in k.__dict__), None)
        if owner is None or owner in _patched:
            continue
        _patched[owner] = owner.__dict__["fit"]
        owner.fit = _wrap(owner.__dict__["fit"])


def _halving_searches() -> list[type]:
    """The halving searches, which ``all_estimators`` lists only once they are enabled."""
    try:
        from sklearn.model_selection._search_successive_halving import (
            HalvingGridSearchCV,
            HalvingRandomSearchCV,
        )
    except ImportError:
        return []
    return [HalvingGridSearchCV, HalvingRandomSearchCV]


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        global _recording
        from loopwise.tracking.fluent import active_run

        if _recording or active_run() is None or _called_by_cross_validation():
            return original(self, *args, **kwargs)
        with _lock:
            outermost = _recording == 0
            if outermost:
                _recording += 1
        if not outermost:  # another thread started a recorded fit meanwhile
            return original(self, *args, **kwargs)
        try:
            result = original(self, *args, **kwargs)
        finally:
            with _lock:
                _recording -= 1
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        run = active_run()
        if run is None:  # the fit ended the run
            return result
        try:
            _record(run, self, X, y)
        except Exception as e:  # logging must never break training
            log.warning("autolog could not record %s: %s", type(self).__name__, e)
        return result

    return fit


def _called_by_cross_validation() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__") in _CV_MODULES:
            return True
        frame = frame.f_back
    return False


# -- what is recorded ---------------------------------------------------------------------


def _record(run: ActiveRun, estimator: Any, X: Any, y: Any) -> None:
    """Log what the fit of ``estimator`` learned to ``run``, in the store the run lives in."""
    from loopwise.tracking import run_artifacts
    from loopwise.tracking import runs as run_service

    if _is_search(estimator):
        model = getattr(estimator, "best_estimator_", None)
        params, metrics = _search_record(estimator)
    else:
        model = estimator
        params, metrics = {**_params_of(estimator), "estimator": type(estimator).__name__}, {}
    if model is not None:
        metrics.update(_training_metrics(model, X, y))
    rule = naming_rule(run.store.settings.key_rule)
    run_service.log_params(run.store, run.id, _allowed(params, rule, "params", nested="/"))
    if metrics:
        run.log_metrics(_allowed(metrics, rule, "metrics"))
    if _is_search(estimator):
        table = _results_table(estimator.cv_results_).to_csv(index=False)
        run_artifacts.log_bytes(run.store, run.id, table.encode("utf-8"), "cv_results.csv")
    if model is not None and _settings.get("log_models", True):
        _log_model(run, model, X)


def _is_search(estimator: Any) -> bool:
    """A fitted hyper-parameter search: ``cv_results_`` is a dict with one params per candidate."""
    results = getattr(estimator, "cv_results_", None)
    return isinstance(results, dict) and "params" in results


def _search_record(search: Any) -> tuple[dict[str, Any], dict[str, float]]:
    """Params and metrics of a search: its best candidate, and how it was found."""
    results = search.cv_results_
    best = getattr(search, "best_estimator_", None)
    best_params = getattr(search, "best_params_", None)
    if best is None:
        from sklearn.base import clone

        best = clone(search.estimator)
        if best_params is not None:
            best.set_params(**best_params)
    skip: set[str] = set()
    if best_params is None:  # no best candidate (several scorers, refit=False)
        skip = set().union(*(candidate.keys() for candidate in results["params"]))
    params = {
        **_params_of(best, skip=skip),
        "estimator": type(best).__name__,
        "search": type(search).__name__,
        "search_candidates": len(results["params"]),
        "search_folds": getattr(search, "n_splits_", None),
        "search_scoring": _value(getattr(search, "scoring", None)),
        "search_refit": _value(getattr(search, "refit", None)),
    }
    metrics: dict[str, float] = {}
    best_score = getattr(search, "best_score_", None)
    if _is_number(best_score):
        metrics["best_cv_score"] = float(best_score)
    index = getattr(search, "best_index_", None)
    if index is not None:
        for column, values in results.items():
            if column.startswith(("mean_", "std_")) and _is_number(values[int(index)]):
                metrics[f"cv_{column}"] = float(values[int(index)])
    return params, metrics


def _params_of(estimator: Any, *, skip: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """``get_params(deep=True)`` with loggable values, minus ``skip`` and their sub-params."""
    prefixes = tuple(f"{name}__" for name in skip)
    return {
        key: _value(value)
        for key, value in estimator.get_params(deep=True).items()
        if key not in skip and not key.startswith(prefixes)
    }


def _value(value: Any) -> Any:
    """A param value as logged: scalars as they are, anything else as a one-line repr."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # NumPy scalars
        return value.item()
    if value is None or isinstance(value, str | bool | int | float):
        return value
    text = _one_line(value)
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def _is_number(value: Any) -> bool:
    try:
        return value is not None and not isinstance(value, bool) and math.isfinite(value)
    except TypeError:
        return False


def _results_table(results: dict[str, Any]) -> Any:
    """``cv_results_`` as a DataFrame, one row per candidate, objects as one-line reprs."""
    import pandas as pd

    table = pd.DataFrame({key: values for key, values in results.items() if key != "params"})
    for column in table.select_dtypes(include="object").columns:
        table[column] = table[column].map(
            lambda v: v if v is None or isinstance(v, str | int | float) else _one_line(v)
        )
    return table


def _one_line(value: Any) -> str:
    """``repr(value)`` on one line, without the memory addresses of functions."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", " ".join(repr(value).split()))


# -- keys ---------------------------------------------------------------------------------


def _allowed(
    values: dict[str, Any], rule: Any, what: str, *, nested: str | None = None
) -> dict[str, Any]:
    """``values`` under keys the key rule takes: as spelt, else with ``__`` -> ``nested``."""
    if rule is None:
        return values
    kept: dict[str, Any] = {}
    refused: list[str] = []
    for key, value in values.items():
        spellings = [key] if nested is None else [key, key.replace("__", nested)]
        for spelling in spellings:
            try:
                rule.check(spelling, kind="Key")
            except InvalidInput:
                continue
            kept[spelling] = value
            break
        else:
            refused.append(key)
    if refused:
        log.warning(
            "autolog skipped %d %s whose keys the naming rule %r refuses: %s",
            len(refused),
            what,
            rule.name,
            ", ".join(refused[:10]) + (", ..." if len(refused) > 10 else ""),
        )
    return kept


# -- metrics and the model ----------------------------------------------------------------


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


def _log_model(run: ActiveRun, model: Any, X: Any) -> None:
    """Register ``model`` under the configured name (linked to ``run``), or attach it to
    the run."""
    name = _settings.get("registered_model_name")
    if name:
        from loopwise.registry.saving import log_model

        log_model(run.store, model, name, run_id=run.id, input_example=_head(X))
        return
    import tempfile
    from pathlib import Path

    from loopwise.registry.packaging import save_package
    from loopwise.tracking.run_artifacts import log_artifact

    with tempfile.TemporaryDirectory() as tmp:
        save_package(model, Path(tmp) / "model", input_example=_head(X))
        log_artifact(run.store, run.id, Path(tmp) / "model", "model")


def _head(X: Any) -> Any:
    try:
        return X[:5]
    except Exception:
        return None
