"""A/B analysis: compare an endpoint's variants on their live, labelled traffic.

:func:`compare_variants` reads the prediction log with its feedback (shadow calls and failed
requests left out of the metrics), groups the rows by variant, scores each variant and tests
every challenger against the control:

* rates (accuracy; precision and recall of the positive class of a binary task): a
  two-proportion z-test (pooled standard error for the p-value, unpooled for the interval of
  the difference); per-variant intervals are Wilson score intervals;
* F1 (binary): a normal test whose standard error comes from a bootstrap of each variant's
  confusion-matrix cells (a multinomial draw per resample: the same as resampling rows);
* regression errors: a Welch t-test on the per-row absolute errors (MAE) or squared errors
  (RMSE; the interval of the RMSE difference uses the delta method, se(RMSE) = se(MSE) /
  (2 RMSE)).

A challenger is ``better`` or ``worse`` only when both sides have at least ``min_labels``
labelled rows, the p-value is below ``alpha`` and the (1 - alpha) interval of the difference
excludes 0; otherwise it is ``undecided`` with, when an effect was observed, a rough number
of further labels needed: the sample that would give that observed effect 80% power at
``alpha`` with the current traffic split.

Variants are independent samples (each request goes to one variant), so the tests are
unpaired; the paired bootstrap of :mod:`loopwise.evaluation.bootstrap` is for two models
scored on the same rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from loopwise.errors import InvalidInput, NotFound
from loopwise.evaluation.metrics import HIGHER_IS_BETTER
from loopwise.monitoring.engine.checks import infer_task
from loopwise.predictions.log import read_predictions_frame
from loopwise.store import Store

__all__ = [
    "ABReport",
    "Comparison",
    "MetricValue",
    "VariantStats",
    "compare_variants",
    "compare_variants_frame",
]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1")
REGRESSION_METRICS = ("rmse", "mae")
#: Variant names taken as the control when present (before "the most traffic").
CONTROL_NAMES = ("champion", "control")
#: Power used for the "labels needed" estimate of an undecided comparison.
POWER = 0.8
BOOTSTRAP_DRAWS = 2000
TESTS = {
    "accuracy": "two-proportion z-test",
    "precision": "two-proportion z-test",
    "recall": "two-proportion z-test",
    "f1": "z-test, bootstrap standard error",
    "rmse": "Welch t-test on squared errors",
    "mae": "Welch t-test on absolute errors",
}


@dataclass(frozen=True)
class MetricValue:
    """A metric of one variant with its (1 - alpha) confidence interval (NaN: undefined)."""

    value: float
    low: float
    high: float
    n: int  # rows the metric is computed over (labelled rows; predicted/actual positives)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


@dataclass
class VariantStats:
    """One variant's traffic and, over its labelled rows, its metrics."""

    variant: str
    requests: int  # distinct request ids
    rows: int  # logged rows (not shadow), errors included
    share: float  # of the endpoint's rows
    errors: int
    labelled: int
    prediction_mean: float | None  # numeric predictions only
    metrics: dict[str, MetricValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "requests": self.requests,
            "rows": self.rows,
            "share": self.share,
            "errors": self.errors,
            "labelled": self.labelled,
            "prediction_mean": self.prediction_mean,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
        }


@dataclass
class Comparison:
    """A challenger against the control on one metric: difference = challenger - control."""

    challenger: str
    control: str
    metric: str
    difference: float
    low: float
    high: float
    p_value: float
    test: str
    verdict: str  # "better", "worse" or "undecided"
    reason: str
    labels_needed: int | None = None  # more labels (both variants) for a verdict, roughly

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ABReport:
    """:func:`compare_variants`' result."""

    endpoint: str
    start: datetime | None
    end: datetime | None
    task: str
    metric: str
    higher_is_better: bool
    control: str
    alpha: float
    min_labels: int
    variants: list[VariantStats]
    comparisons: list[Comparison]

    def variant(self, name: str) -> VariantStats:
        for v in self.variants:
            if v.variant == name:
                return v
        raise NotFound(f"variant {name!r} is not in this report ({self._names()}).")

    def comparison(self, challenger: str) -> Comparison:
        for c in self.comparisons:
            if c.challenger == challenger:
                return c
        raise NotFound(f"no comparison for challenger {challenger!r} ({self._names()}).")

    def _names(self) -> str:
        return "variants: " + ", ".join(v.variant for v in self.variants)

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "task": self.task,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "control": self.control,
            "alpha": self.alpha,
            "min_labels": self.min_labels,
            "variants": [v.to_dict() for v in self.variants],
            "comparisons": [c.to_dict() for c in self.comparisons],
        }

    def summary(self) -> str:
        level = f"{1 - self.alpha:.0%}"
        lines = [
            f"A/B analysis of endpoint {self.endpoint!r} ({self.task}, metric {self.metric}, "
            f"{'higher' if self.higher_is_better else 'lower'} is better, control "
            f"{self.control!r}, alpha {self.alpha:g})"
        ]
        for v in self.variants:
            m = v.metrics.get(self.metric)
            shown = "n/a" if m is None or math.isnan(m.value) else _interval(m.value, m.low, m.high)
            mean = "" if v.prediction_mean is None else f", prediction mean {v.prediction_mean:.4g}"
            lines.append(
                f"  {v.variant}: {v.share:.1%} of traffic ({v.rows:,} rows, {v.labelled:,} "
                f"labelled{mean}); {self.metric} {shown}"
            )
        for c in self.comparisons:
            diff = "n/a" if math.isnan(c.difference) else _interval(c.difference, c.low, c.high)
            p = "n/a" if math.isnan(c.p_value) else f"{c.p_value:.3g}"
            lines.append(
                f"  {c.challenger} vs {c.control}: {c.verdict.upper()} — difference {diff} "
                f"({level} CI), p = {p} ({c.test}); {c.reason}"
            )
        return "\n".join(lines)


def _interval(value: float, low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return f"{value:.4g}"
    return f"{value:.4g} [{low:.4g}, {high:.4g}]"


def compare_variants(
    store: Store,
    endpoint: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    control: str | None = None,
    metric: str | None = None,
    task: str | None = None,
    alpha: float = 0.05,
    min_labels: int = 30,
) -> ABReport:
    """Compare the variants of ``endpoint`` over [start, end) and give each challenger a verdict.

    ``control`` defaults to a variant named "champion" or "control", else the one with the
    most traffic. ``metric`` defaults to accuracy (classification) or RMSE (regression);
    ``task`` ("classification" or "regression") is inferred from the metric or the logged
    predictions. See the module docstring for the tests.
    """
    func = "compare_variants"
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
        raise InvalidInput(f"{func}: alpha must be a number in (0, 0.5), e.g. 0.05; got {alpha!r}.")
    if isinstance(min_labels, bool) or not isinstance(min_labels, int) or min_labels < 2:
        raise InvalidInput(f"{func}: min_labels must be an int >= 2; got {min_labels!r}.")
    frame = read_predictions_frame(
        store, endpoint, start, end, columns=["variant", "shadow", "prediction", "error"]
    )
    return compare_variants_frame(
        frame, endpoint, start=start, end=end, control=control, metric=metric, task=task,
        alpha=alpha, min_labels=min_labels,
    )  # fmt: skip


def compare_variants_frame(
    frame: pl.DataFrame,
    endpoint: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    control: str | None = None,
    metric: str | None = None,
    task: str | None = None,
    alpha: float = 0.05,
    min_labels: int = 30,
) -> ABReport:
    """:func:`compare_variants` over a prediction-log frame already read (request_id,
    variant, shadow, prediction, error and label columns); ``start``/``end`` only label it."""
    func = "compare_variants"
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
        raise InvalidInput(f"{func}: alpha must be a number in (0, 0.5), e.g. 0.05; got {alpha!r}.")
    if isinstance(min_labels, bool) or not isinstance(min_labels, int) or min_labels < 2:
        raise InvalidInput(f"{func}: min_labels must be an int >= 2; got {min_labels!r}.")
    task, metric = _task_and_metric(task, metric)
    live = frame.filter(~pl.col("shadow").fill_null(False) & pl.col("variant").is_not_null())
    where = _where(endpoint, start, end)
    if live.height == 0:
        raise NotFound(
            f"endpoint {endpoint!r} has no live (non-shadow) predictions {where}; widen "
            "--start/--end or log predictions first."
        )
    traffic = (
        live.group_by("variant")
        .agg(
            rows=pl.len(),
            requests=pl.col("request_id").n_unique(),
            errors=pl.col("error").is_not_null().sum(),
        )
        .sort(["rows", "variant"], descending=[True, False])
    )
    names: list[str] = traffic["variant"].to_list()
    if len(names) < 2:
        raise InvalidInput(
            f"endpoint {endpoint!r} has one variant ({names[0]!r}) {where}: an A/B analysis "
            "needs two or more; route traffic to a challenger (or widen the time range)."
        )
    if control is None:
        control = next((n for n in CONTROL_NAMES if n in names), names[0])
    elif control not in names:
        raise InvalidInput(
            f"control {control!r} is not a variant of endpoint {endpoint!r} {where} "
            f"(variants: {', '.join(names)}); pass one of them."
        )
    usable = live.filter(pl.col("error").is_null() & pl.col("prediction").is_not_null())
    labelled = usable.filter(pl.col("label").is_not_null())
    if task is None:
        task = infer_task(
            labelled["prediction"] if labelled.height else usable["prediction"], False
        )
        metric = metric or ("accuracy" if task == "classification" else "rmse")
    assert metric is not None
    z = float(stats.norm.ppf(1 - alpha / 2))
    positive = _positive(labelled, task, metric)
    total = live.height
    variants: list[VariantStats] = []
    per_row: dict[str, Any] = {}
    for row in traffic.iter_rows(named=True):
        name = row["variant"]
        mine = labelled.filter(pl.col("variant") == name)
        preds = usable.filter(pl.col("variant") == name)["prediction"]
        metrics, data = _score(task, mine, positive, z)
        per_row[name] = data
        variants.append(
            VariantStats(
                variant=name,
                requests=row["requests"],
                rows=row["rows"],
                share=row["rows"] / total,
                errors=row["errors"],
                labelled=mine.height,
                prediction_mean=_mean(preds),
                metrics=metrics,
            )
        )
    higher = metric in HIGHER_IS_BETTER
    by_name = {v.variant: v for v in variants}
    comparisons = [
        _compare(metric, by_name[name], by_name[control], per_row[name], per_row[control],
                 alpha=alpha, z=z, min_labels=min_labels, higher=higher)
        for name in names
        if name != control
    ]  # fmt: skip
    variants.sort(key=lambda v: (v.variant != control, v.variant))
    return ABReport(
        endpoint=endpoint,
        start=start,
        end=end,
        task=task,
        metric=metric,
        higher_is_better=higher,
        control=control,
        alpha=float(alpha),
        min_labels=min_labels,
        variants=variants,
        comparisons=comparisons,
    )


def _where(endpoint: str, start: datetime | None, end: datetime | None) -> str:
    if start is None and end is None:
        return "in its whole log"
    a = "the beginning" if start is None else start.isoformat()
    b = "now" if end is None else end.isoformat()
    return f"in [{a}, {b})"


def _task_and_metric(task: str | None, metric: str | None) -> tuple[str | None, str | None]:
    if task is not None and task not in ("classification", "regression"):
        raise InvalidInput(f"task must be 'classification' or 'regression'; got {task!r}.")
    if metric is None:
        if task is not None:
            metric = "accuracy" if task == "classification" else "rmse"
        return task, metric
    metric = metric.lower() if isinstance(metric, str) else metric
    implied = (
        "classification"
        if metric in CLASSIFICATION_METRICS
        else "regression"
        if metric in REGRESSION_METRICS
        else None
    )
    if implied is None:
        raise InvalidInput(
            f"metric {metric!r} is not supported for A/B analysis; use one of "
            f"{', '.join(CLASSIFICATION_METRICS + REGRESSION_METRICS)}."
        )
    if task is not None and task != implied:
        raise InvalidInput(f"metric {metric!r} is a {implied} metric, but task is {task!r}.")
    return implied, metric


def _positive(labelled: pl.DataFrame, task: str, metric: str) -> Any:
    """The positive label of a binary task (the last sorted label), None otherwise."""
    if task != "classification" or not labelled.height:
        return None
    values = pl.concat(
        [labelled["label"], labelled["prediction"].cast(labelled["label"].dtype, strict=False)]
    )
    labels = values.drop_nulls().unique().sort().to_list()
    if len(labels) <= 2:
        return labels[-1]
    if metric != "accuracy":
        raise InvalidInput(
            f"metric {metric!r} is computed for binary tasks; this endpoint has "
            f"{len(labels)} classes ({labels[:10]}); use accuracy."
        )
    return None


def _mean(predictions: pl.Series) -> float | None:
    if not predictions.len() or not (
        predictions.dtype.is_numeric() or predictions.dtype == pl.Boolean
    ):
        return None
    value = predictions.cast(pl.Float64).mean()
    return None if value is None else float(value)  # type: ignore[arg-type]


def _score(
    task: str, rows: pl.DataFrame, positive: Any, z: float
) -> tuple[dict[str, MetricValue], dict[str, Any]]:
    """A variant's metrics with intervals, and the per-row data its comparisons need."""
    if task == "regression":
        y = rows["label"].cast(pl.Float64, strict=False).to_numpy()
        pred = rows["prediction"].cast(pl.Float64, strict=False).to_numpy()
        ok = np.isfinite(y) & np.isfinite(pred)
        err = pred[ok] - y[ok]
        sq, ab = err * err, np.abs(err)
        n = int(err.size)
        mse, se_mse = _mean_se(sq)
        rmse = math.sqrt(mse) if n else math.nan
        se_rmse = se_mse / (2 * rmse) if n and rmse > 0 else math.nan
        mae, se_mae = _mean_se(ab)
        metrics = {
            "rmse": _normal(rmse, se_rmse, z, n),
            "mae": _normal(mae, se_mae, z, n),
        }
        return metrics, {"squared": sq, "absolute": ab, "n": n}
    label = rows["label"]
    pred = rows["prediction"].cast(label.dtype, strict=False)
    correct = (pred == label).fill_null(False).to_numpy()
    n = int(correct.size)
    metrics = {"accuracy": _wilson(int(correct.sum()), n, z)}
    data: dict[str, Any] = {"n": n, "accuracy": (int(correct.sum()), n)}
    if positive is not None:
        is_pos = (label == positive).fill_null(False).to_numpy()
        said_pos = (pred == positive).fill_null(False).to_numpy()
        tp = int((is_pos & said_pos).sum())
        fp = int((~is_pos & said_pos).sum())
        fn = int((is_pos & ~said_pos).sum())
        tn = n - tp - fp - fn
        data |= {"precision": (tp, tp + fp), "recall": (tp, tp + fn), "cells": (tp, fp, fn, tn)}
        metrics["precision"] = _wilson(tp, tp + fp, z)
        metrics["recall"] = _wilson(tp, tp + fn, z)
        f1, draws = _f1_bootstrap(tp, fp, fn, tn)
        data["f1_draws"] = draws
        se = float(np.nanstd(draws, ddof=1)) if draws.size > 1 else math.nan
        if draws.size and np.isfinite(draws).any():
            low, high = np.nanquantile(draws, [stats.norm.cdf(-z), stats.norm.cdf(z)])
        else:
            low = high = math.nan
        data["f1"] = (f1, se)
        metrics["f1"] = MetricValue(f1, float(low), float(high), n)
    return metrics, data


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    n = values.size
    if n == 0:
        return math.nan, math.nan
    mean = float(values.mean())
    return mean, (float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan)


def _normal(value: float, se: float, z: float, n: int) -> MetricValue:
    return MetricValue(value, value - z * se, value + z * se, n)


def _wilson(successes: int, n: int, z: float) -> MetricValue:
    if n == 0:
        return MetricValue(math.nan, math.nan, math.nan, 0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return MetricValue(p, max(0.0, centre - half), min(1.0, centre + half), n)


def _f1_bootstrap(tp: int, fp: int, fn: int, tn: int) -> tuple[float, np.ndarray]:
    n = tp + fp + fn + tn
    denominator = 2 * tp + fp + fn
    f1 = 2 * tp / denominator if denominator else math.nan
    if n == 0:
        return f1, np.empty(0)
    rng = np.random.default_rng(20240501 + n)  # reproducible reports
    cells = rng.multinomial(n, np.array([tp, fp, fn, tn]) / n, size=BOOTSTRAP_DRAWS)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = 2 * cells[:, 0] / (2 * cells[:, 0] + cells[:, 1] + cells[:, 2])
    return f1, draws


def _compare(
    metric: str,
    challenger: VariantStats,
    control: VariantStats,
    mine: dict[str, Any],
    theirs: dict[str, Any],
    *,
    alpha: float,
    z: float,
    min_labels: int,
    higher: bool,
) -> Comparison:
    a, b = challenger.metrics[metric], control.metrics[metric]
    diff = a.value - b.value
    p_value = se = math.nan
    if metric in ("accuracy", "precision", "recall"):
        (x1, n1), (x2, n2) = mine[metric], theirs[metric]
        if n1 and n2:
            p1, p2 = x1 / n1, x2 / n2
            se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
            pooled = (x1 + x2) / (n1 + n2)
            se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
            p_value = 2 * float(stats.norm.sf(abs(diff) / se0)) if se0 > 0 else 1.0
    elif metric == "f1":
        se = math.hypot(mine["f1"][1], theirs["f1"][1])
        if se > 0 and not math.isnan(diff):
            p_value = 2 * float(stats.norm.sf(abs(diff) / se))
        elif se == 0 and diff == 0:
            p_value = 1.0
    else:
        key = "squared" if metric == "rmse" else "absolute"
        x1, x2 = mine[key], theirs[key]
        if x1.size > 1 and x2.size > 1:
            v1, v2 = x1.var(ddof=1) / x1.size, x2.var(ddof=1) / x2.size
            if v1 + v2 > 0:
                t = (x1.mean() - x2.mean()) / math.sqrt(v1 + v2)
                df = (v1 + v2) ** 2 / (v1**2 / (x1.size - 1) + v2**2 / (x2.size - 1))
                p_value = 2 * float(stats.t.sf(abs(t), df))
            else:
                p_value = 1.0
        se = math.hypot(a.high - a.value, b.high - b.value) / z  # the per-variant se's
    low, high = diff - z * se, diff + z * se
    fewest = min(challenger.labelled, control.labelled)
    if fewest < min_labels:
        short = min(
            (v for v in (challenger, control) if v.labelled < min_labels),
            key=lambda v: v.labelled,
        )
        verdict = "undecided"
        reason = (
            f"too few labels: {short.variant!r} has {short.labelled} labelled rows, "
            f"min_labels is {min_labels}"
        )
        needed = _labels_needed(diff, se, z, challenger, control, min_labels)
    elif math.isnan(p_value) or math.isnan(low) or p_value >= alpha or low <= 0 <= high:
        verdict, reason = "undecided", "the interval of the difference contains 0"
        needed = _labels_needed(diff, se, z, challenger, control, min_labels)
    else:
        verdict = "better" if (diff > 0) == higher else "worse"
        reason = f"p < {alpha:g} and the interval excludes 0"
        needed = None
    if verdict == "undecided":
        if needed is None:
            reason += "; no effect observed yet to estimate the labels needed"
        else:
            reason += f"; roughly {needed:,} more labels (both variants) for a verdict"
    return Comparison(
        challenger=challenger.variant,
        control=control.variant,
        metric=metric,
        difference=diff,
        low=low,
        high=high,
        p_value=p_value,
        test=TESTS[metric],
        verdict=verdict,
        reason=reason,
        labels_needed=needed,
    )


def _labels_needed(
    diff: float,
    se: float,
    z: float,
    challenger: VariantStats,
    control: VariantStats,
    min_labels: int,
) -> int | None:
    """More labels (both variants, in the current proportion) for the observed difference to
    be detected with :data:`POWER` power: the standard error shrinks as 1/sqrt(labels)."""
    sides: Sequence[VariantStats] = (challenger, control)
    if math.isnan(diff) or math.isnan(se) or diff == 0 or se <= 0:
        return None
    factor = ((z + float(stats.norm.ppf(POWER))) * se / abs(diff)) ** 2
    target = [max(math.ceil(v.labelled * factor), min_labels) for v in sides]
    return max(0, sum(t - v.labelled for t, v in zip(target, sides, strict=True))) or None
