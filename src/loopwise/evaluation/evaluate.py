"""Evaluate a model on labelled data: overall, per slice, and against a trivial baseline.

Why: an overall score hides the segments where a model fails, and a score without a
baseline hides whether the model learned anything. :func:`evaluate` predicts once on the
whole data, turns each slice spec into group codes (:mod:`.slicing`) and scores every slice
of a spec in one vectorised pass (:mod:`.metrics`). The baseline — the majority class with
the class priors as probabilities, or the target mean for regression, both taken from the
evaluated data — is scored by the same kernels, overall and per slice. The
:class:`Evaluation` returned is plain data: JSON through ``to_dict``/``from_dict``, text
through ``summary``, one self-contained HTML file through ``to_html``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from loopwise._version import __version__
from loopwise.data.frames import DataLike, to_polars
from loopwise.errors import InvalidInput
from loopwise.evaluation.metrics import (
    HIGHER_IS_BETTER,
    UNITLESS,
    Encoded,
    classification_by_group,
    confusion_matrix,
    encode_classification,
    regression_by_group,
)
from loopwise.evaluation.slicing import SliceGroups, build_slices

FORMAT_VERSION = 1
TASKS = ("classification", "regression")
#: An integer target with at most this many distinct values is inferred to be class labels.
MAX_INFERRED_CLASSES = 20
SLICE_KEYS = ("slice_column", "slice_value", "n")


@dataclass(eq=False)
class Evaluation:
    """Metrics of one model on one dataset: overall, per slice, and for a trivial baseline.

    ``metrics`` maps metric name to value (classification also holds ``confusion_matrix``,
    rows true and columns predicted, both in ``labels`` order). ``slice_metrics`` has the
    columns ``slice_column, slice_value, n`` and one column per metric. Undefined values
    are NaN (None in :meth:`to_dict`).
    """

    task: str
    target: str
    n: int
    metrics: dict[str, Any]
    slice_metrics: pd.DataFrame
    baseline_metrics: dict[str, Any]
    baseline_slice_metrics: pd.DataFrame
    labels: list[Any] | None = None
    positive_label: Any = None
    threshold: float | None = None

    @property
    def metric_names(self) -> list[str]:
        """The scalar metrics, in report order."""
        return [m for m in self.metrics if m != "confusion_matrix"]

    @property
    def lift(self) -> dict[str, float]:
        """Model minus baseline for each metric (negative for a loss means an improvement)."""
        return {m: self.metrics[m] - self.baseline_metrics[m] for m in self.metric_names}

    def flagged_slices(self, tolerance: float = 0.05) -> pd.DataFrame:
        """Slices worse than the overall value by more than ``tolerance``.

        Only unitless metrics are checked (accuracy, precision, recall, F1, ROC-AUC, PR-AUC,
        R² below the overall value; normalised RMSE and MAPE above it): a fixed gap means
        nothing for RMSE or MAE in target units, or for an unbounded log-loss.
        """
        rows = []
        for metric in self.metric_names:
            if metric not in UNITLESS or metric not in self.slice_metrics:
                continue
            overall = self.metrics[metric]
            values = self.slice_metrics[metric]
            gap = overall - values if metric in HIGHER_IS_BETTER else values - overall
            hit = self.slice_metrics[gap > tolerance]
            for (_, row), worse in zip(hit.iterrows(), gap[gap > tolerance], strict=True):
                rows.append((*(row[k] for k in SLICE_KEYS), metric, row[metric], overall, worse))
        columns = [*SLICE_KEYS, "metric", "value", "overall", "gap"]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.sort_values("gap", ascending=False, ignore_index=True)

    def summary(self) -> str:
        """A few lines of text: the metrics against the baseline, then the flagged slices."""
        kind = self.task
        if self.labels is not None:
            kind = f"{'binary' if len(self.labels) <= 2 else 'multiclass'} {kind}"
        head = f"Evaluation: {kind} of {self.target!r} on {self.n:,} rows"
        if self.labels is not None and len(self.labels) <= 2:
            head += f" (positive label {self.positive_label!r}, threshold {self.threshold})"
        lines = [head, f"{'metric':<10} {'model':>9} {'baseline':>9} {'lift':>9}"]
        for m in self.metric_names:
            values = (self.metrics[m], self.baseline_metrics[m], self.lift[m])
            cells = " ".join(_text(v, sign=i == 2) for i, v in enumerate(values))
            lines.append(f"{m:<10} {cells}")
        flagged = self.flagged_slices()
        if len(flagged):
            lines.append(f"{len(flagged)} slice metric(s) worse than overall by > 0.05:")
            lines.extend(
                f"  {r.slice_column}={r.slice_value} (n={r.n:,}): {r.metric} {r.value:.4f} "
                f"vs {r.overall:.4f}"
                for r in flagged.itertuples()
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe document (``json.dumps(..., allow_nan=False)`` works; NaN is None)."""
        return {
            "format_version": FORMAT_VERSION,
            "loopwise_version": __version__,
            "task": self.task,
            "target": self.target,
            "n": self.n,
            "labels": None if self.labels is None else [_json_value(v) for v in self.labels],
            "positive_label": _json_value(self.positive_label),
            "threshold": self.threshold,
            "metrics": _json_metrics(self.metrics),
            "baseline_metrics": _json_metrics(self.baseline_metrics),
            "lift": _json_metrics(self.lift),
            "slice_metrics": _json_records(self.slice_metrics),
            "baseline_slice_metrics": _json_records(self.baseline_slice_metrics),
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Evaluation:
        """Rebuild an Evaluation from :meth:`to_dict` output (e.g. read back from JSON)."""
        version = document.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise InvalidInput(
                f"evaluation document has format_version {version!r}; this loopwise "
                f"({__version__}) reads format_version <= {FORMAT_VERSION}. Upgrade loopwise."
            )
        return cls(
            task=document["task"],
            target=document["target"],
            n=int(document["n"]),
            metrics=_from_json_metrics(document["metrics"]),
            slice_metrics=_from_json_records(document["slice_metrics"], document["metrics"]),
            baseline_metrics=_from_json_metrics(document["baseline_metrics"]),
            baseline_slice_metrics=_from_json_records(
                document["baseline_slice_metrics"], document["metrics"]
            ),
            labels=document.get("labels"),
            positive_label=document.get("positive_label"),
            threshold=document.get("threshold"),
        )

    def to_html(self, path: str | Path) -> Path:
        """Write the report as one self-contained HTML file; return its path."""
        from loopwise.evaluation.evaluation_html import render_html
        from loopwise.reports.page import write_page

        write_page(path, render_html(self))
        return Path(path)


def evaluate(
    model: Any,
    data: DataLike,
    target: str = "y",
    task: str | None = None,
    slices: Sequence[Any] | str | None = None,
    *,
    predictions: Any = None,
    probabilities: Any = None,
    positive_label: Any = None,
    threshold: float = 0.5,
) -> Evaluation:
    """Score ``model`` on ``data`` overall, per slice and against a trivial baseline.

    ``model`` has ``.predict(X)`` (and, for classification, optionally ``.predict_proba(X)``,
    which is then used alone: a binary class is positive when its probability reaches
    ``threshold``, a multiclass prediction is the most probable class). ``X`` is ``data``
    without the target, as a pandas DataFrame. Pass ``model=None`` with ``predictions``
    and/or ``probabilities`` (binary: one positive-class probability per row, or one column
    per class) to evaluate stored outputs. ``task=None`` infers it: text, boolean and
    integer targets with few values (or with probabilities) are classification.
    """
    frame = to_polars(data, what="data")
    if frame.height == 0:
        raise InvalidInput("data has no rows; evaluate needs at least one labelled row.")
    y = _target(frame, target)
    groups = build_slices(frame, slices)
    if not 0.0 <= threshold <= 1.0:
        raise InvalidInput(f"threshold must be a probability in [0, 1]; got {threshold!r}.")
    if model is not None and (predictions is not None or probabilities is not None):
        raise InvalidInput(
            "pass either a model or predictions=/probabilities=, not both; "
            "use model=None to evaluate stored predictions."
        )
    if model is None and predictions is None and probabilities is None:
        raise InvalidInput(
            "nothing to evaluate: pass a fitted model with .predict(X), or model=None with "
            "predictions= (and/or probabilities=)."
        )
    if model is not None and not callable(getattr(model, "predict", None)):
        raise InvalidInput(
            f"model of type {type(model).__name__} has no .predict(X) method; pass a fitted "
            "model, or model=None with predictions=."
        )
    has_proba = probabilities is not None or callable(getattr(model, "predict_proba", None))
    task = _resolve_task(task, y, target, has_proba)
    if task == "regression":
        if probabilities is not None:
            raise InvalidInput(
                "probabilities= apply to classification, but the task is regression; pass "
                "predictions= with the predicted values (or task='classification')."
            )
        if model is not None:
            predictions = model.predict(_model_features(model, data, frame, target))
        return _regression(y, target, predictions, groups)
    classes = None
    if model is not None:
        features = _model_features(model, data, frame, target)
        if has_proba:
            probabilities = model.predict_proba(features)
            classes = getattr(model, "classes_", None)
        else:
            predictions = model.predict(features)
    enc, labels = encode_classification(
        y, target, predictions, probabilities, classes, positive_label, threshold
    )
    return _classification(enc, labels, target, groups, threshold)


def _target(frame: pl.DataFrame, target: str) -> pl.Series:
    if target not in frame.columns:
        shown = ", ".join(repr(c) for c in frame.columns[:20])
        raise InvalidInput(
            f"target column {target!r} is not in the data (columns: {shown}); pass "
            "target='<name of the label column>' or add the labels to the data."
        )
    y = frame.get_column(target)
    missing = y.null_count() + (int(y.is_nan().sum()) if y.dtype.is_float() else 0)
    if missing:
        raise InvalidInput(
            f"target column {target!r} has {missing} missing values; drop or label those "
            "rows before evaluating."
        )
    return y


def _resolve_task(task: str | None, y: pl.Series, target: str, has_proba: bool) -> str:
    if task is not None and task not in TASKS:
        raise InvalidInput(
            f"task must be 'classification', 'regression' or None (inferred); got {task!r}."
        )
    numeric = y.dtype.is_numeric()
    if task == "regression" and not numeric:
        raise InvalidInput(
            f"task='regression' needs a numeric target, but {target!r} has type {y.dtype}; "
            "use task='classification' or convert the target to numbers."
        )
    if task == "regression" or not numeric:
        return task or "classification"
    continuous = y.dtype.is_float() and not bool((y == y.round()).all())
    distinct = y.n_unique()
    if task == "classification":
        if continuous and distinct > MAX_INFERRED_CLASSES:
            raise InvalidInput(
                f"task='classification', but target {target!r} looks continuous: {distinct:,} "
                f"distinct non-integer values (e.g. {y.head(3).to_list()}). Use "
                "task='regression', or bin the target into class labels first."
            )
        return task
    if continuous:
        return "regression"
    return "classification" if has_proba or distinct <= MAX_INFERRED_CLASSES else "regression"


def _features(data: DataLike, frame: pl.DataFrame, target: str) -> pd.DataFrame:
    """The model's input: every column but the target, as pandas (the user's own if given)."""
    if isinstance(data, pd.DataFrame):
        return data.drop(columns=[target])
    return frame.drop(target).to_pandas()


def _model_features(model: Any, data: DataLike, frame: pl.DataFrame, target: str) -> pd.DataFrame:
    """The feature frame; only the model's own columns when it recorded them at fit time
    (scikit-learn's ``feature_names_in_``), so slice and id columns can ride along."""
    features = _features(data, frame, target)
    names = getattr(model, "feature_names_in_", None)
    if names is not None and all(name in features.columns for name in names):
        return features[list(names)]
    return features


def _regression(
    y: pl.Series, target: str, predictions: Any, groups: list[SliceGroups]
) -> Evaluation:
    truth = y.cast(pl.Float64).to_numpy()
    pred = _numeric_predictions(predictions, len(truth))
    baseline = np.full_like(truth, truth.mean())
    model = _score(lambda g, k: regression_by_group(truth, pred, g, k), len(truth), groups)
    base = _score(lambda g, k: regression_by_group(truth, baseline, g, k), len(truth), groups)
    return Evaluation("regression", target, len(truth), *model, *base)


def _numeric_predictions(predictions: Any, n: int) -> np.ndarray:
    try:
        pred = np.asarray(predictions, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"regression predictions must be numbers: {e}") from e
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.shape != (n,):
        raise InvalidInput(
            f"predictions have shape {pred.shape} but the data has {n} rows; pass one "
            "prediction per row."
        )
    if not np.isfinite(pred).all():
        raise InvalidInput("predictions contain NaN or infinite values; fix the model output.")
    return pred


def _classification(
    enc: Encoded, labels: list[Any], target: str, groups: list[SliceGroups], threshold: float
) -> Evaluation:
    n, k = len(enc.y), enc.n_classes
    counts = np.bincount(enc.y, minlength=k)
    majority = np.full(n, int(np.argmax(counts)), dtype=enc.y.dtype)
    priors = None if enc.proba is None else np.broadcast_to(counts / n, (n, k))
    baseline = Encoded(enc.y, majority, priors, k, enc.positive, constant_scores=True)
    model = _score(lambda g, m: classification_by_group(enc, g, m), n, groups)
    base = _score(lambda g, m: classification_by_group(baseline, g, m), n, groups)
    model[0]["confusion_matrix"] = confusion_matrix(enc.y, enc.pred, k).tolist()
    base[0]["confusion_matrix"] = confusion_matrix(enc.y, majority, k).tolist()
    binary = enc.positive is not None
    return Evaluation(
        "classification", target, n, *model, *base,
        labels=labels,
        positive_label=labels[enc.positive] if binary else None,
        threshold=threshold if binary else None,
    )  # fmt: skip


def _score(
    kernel: Callable[[np.ndarray, int], dict[str, np.ndarray]], n: int, groups: list[SliceGroups]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Overall metrics (the kernel with one group) and the slice table (once per slice spec)."""
    whole = kernel(np.zeros(n, dtype=np.intp), 1)
    overall = {name: float(v[0]) for name, v in whole.items() if name != "n"}
    parts = []
    for spec in groups:
        values = kernel(spec.codes, len(spec.labels))
        keep = values["n"] > 0
        part = {
            "slice_column": spec.column,
            "slice_value": np.asarray(spec.labels, dtype=object)[keep],
            **{name: v[keep] for name, v in values.items()},
        }
        parts.append(pd.DataFrame(part))
    if not parts:
        return overall, _from_json_records([], overall)
    frame = pd.concat(parts, ignore_index=True)
    frame["n"] = frame["n"].astype("int64")
    return overall, frame


def _text(value: float, *, sign: bool = False) -> str:
    if math.isnan(value):
        return f"{'NaN':>9}"
    return f"{value:>+9.4f}" if sign else f"{value:>9.4f}"


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def _json_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v if k == "confusion_matrix" else _json_value(v) for k, v in metrics.items()}


def _json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = list(frame.columns)
    return [
        {c: _json_value(v) for c, v in zip(columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


def _from_json_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if k == "confusion_matrix" else (math.nan if v is None else float(v))
        for k, v in metrics.items()
    }


def _from_json_records(records: list[dict[str, Any]], metrics: dict[str, Any]) -> pd.DataFrame:
    names = [m for m in metrics if m != "confusion_matrix"]
    frame = pd.DataFrame(records, columns=[*SLICE_KEYS, *names])
    frame["n"] = frame["n"].astype("int64")
    for name in names:
        frame[name] = frame[name].astype("float64")
    return frame
