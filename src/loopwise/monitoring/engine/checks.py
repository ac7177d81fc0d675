"""Figure kernels: every function computes one figure for all cells at once.

A *cell* is one window × one slice value (or one window, for the whole window); each row of
a batch carries its cell code, and a kernel returns one value per cell (NaN when undefined),
from ``np.bincount`` sums or one Polars group-by -- never a Python loop over rows. The
classification and regression metrics are :mod:`loopwise.evaluation.metrics`' kernels with
the cell codes as groups, so live performance and ``lw.evaluate`` share one definition.

How predictions are read (:class:`Outputs`): the task is the monitor's, else the stored
evaluation's, else inferred like ``lw.evaluate`` does (text, booleans, integers with at most
20 values or logged probabilities: classification). For a binary task the positive label
is the monitor's, else the evaluation's, else the larger of the two labels (1 of 0/1, True
of False). Probabilities are taken to be in sorted label order (scikit-learn's
``classes_``); the *score* is the positive class's probability, and ``prediction.mean`` /
``.std`` are the score's when probabilities are logged, else the prediction's (0/1 for a
binary label).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from loopwise.errors import InvalidInput

MAX_CLASSES = 20  # an integer prediction with at most this many values is a class label
DEFAULT_METRICS = {
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc"),
    "regression": ("rmse", "mae", "r2"),
}
LATENCY_QUANTILES = {"latency_p50_ms": 0.5, "latency_p95_ms": 0.95, "latency_p99_ms": 0.99}


def count(cells: np.ndarray, n: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Rows per cell (where ``mask``)."""
    return np.bincount(cells if mask is None else cells[mask], minlength=n).astype(np.float64)


def total(values: np.ndarray, cells: np.ndarray, n: int, mask: np.ndarray) -> np.ndarray:
    """Sum of ``values`` per cell over the rows in ``mask``."""
    return np.bincount(cells[mask], weights=values[mask], minlength=n)


def mean_std(
    values: np.ndarray, cells: np.ndarray, n: int, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation per cell (two passes, no cancellation)."""
    c, v = cells[mask], values[mask]
    k = np.bincount(c, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(c, weights=v, minlength=n) / k
        d = v - mean[c]
        std = np.sqrt(np.bincount(c, weights=d * d, minlength=n) / k)
    return mean, std


def quantiles(
    values: np.ndarray, cells: np.ndarray, n: int, mask: np.ndarray, wanted: dict[str, float]
) -> dict[str, np.ndarray]:
    """Linear-interpolated quantiles per cell (NumPy's default definition), one group-by."""
    out = {name: np.full(n, np.nan) for name in wanted}
    if not mask.any():
        return out
    frame = pl.DataFrame({"c": cells[mask], "v": values[mask]})
    found = frame.group_by("c").agg(
        pl.col("v").quantile(q, interpolation="linear").alias(name) for name, q in wanted.items()
    )
    index = found["c"].to_numpy()
    for name in wanted:
        out[name][index] = found[name].to_numpy()
    return out


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


# -- outputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputSpec:
    """How a version's predictions are read (fixed once per version: see the module doc)."""

    task: str
    labels: tuple[Any, ...] = ()  # classification: the known labels, sorted
    positive: Any = None  # binary classification only


@dataclass
class Outputs:
    """A side's predictions as numbers: ``value`` (numeric prediction), ``score`` (positive
    probability) and ``positive`` (1.0 / 0.0), NaN where missing; None when undefined."""

    value: np.ndarray | None
    score: np.ndarray | None
    positive: np.ndarray | None


def infer_task(predictions: pl.Series, has_probabilities: bool) -> str:
    """Classification or regression from the predictions, as lw.evaluate infers it."""
    values = predictions.drop_nulls()
    if has_probabilities or not values.dtype.is_numeric():
        return "classification"
    if values.dtype.is_float():
        values = values.filter(values.is_finite())
        if not bool((values == values.round()).all()):
            return "regression"
    return "classification" if values.n_unique() <= MAX_CLASSES else "regression"


def output_spec(task: str, label_sources: Sequence[pl.Series | None], positive: Any) -> OutputSpec:
    """The spec of a version: its labels (sorted union of ``label_sources``) and positive.

    A source whose labels cannot be those of the first (the predictions) is left out --
    Yes/No feedback for a model answering 0/1 (see ``evaluation.metrics.disjoint``) -- so
    the spec stays the model's and the figures of its outputs (``positive_rate``) are kept.
    """
    if task == "regression":
        return OutputSpec(task)
    parts = [s.drop_nulls() for s in label_sources if s is not None and s.len()]
    parts = parts[:1] + [p for p in parts[1:] if not _foreign(p, parts[0])]
    labels: list[Any] = []
    if parts:
        try:
            union = pl.concat([p.cast(parts[0].dtype, strict=False) for p in parts])
            labels = union.drop_nulls().unique().sort().to_list()
        except pl.exceptions.PolarsError:
            labels = sorted({v for p in parts for v in p.cast(pl.String).unique().to_list()})
    if positive is None and 0 < len(labels) <= 2:
        positive = labels[-1]
    return OutputSpec(task, tuple(labels), positive)


def _foreign(part: pl.Series, first: pl.Series) -> bool:
    from loopwise.evaluation.metrics import disjoint

    if not first.len():
        return False
    try:
        cast = part.cast(first.dtype, strict=False).drop_nulls()
    except pl.exceptions.PolarsError:
        return True
    return disjoint(cast, first, same_kind=part.dtype == first.dtype, known=False)


def read_outputs(
    spec: OutputSpec,
    predictions: pl.Series,
    probabilities: np.ndarray | None,
    classes: Sequence[Any] | None = None,
) -> Outputs:
    """Numbers from predictions (and a probability matrix whose columns are ``classes``,
    default the spec's labels)."""
    value = predictions.cast(pl.Float64, strict=False).to_numpy() if _numeric(predictions) else None
    if spec.task == "regression":
        return Outputs(value, None, None)
    positive = None
    if spec.positive is not None:
        cast = predictions.cast(pl.Series([spec.positive]).dtype, strict=False)
        flags = (cast == spec.positive).cast(pl.Float64)
        positive = np.where(predictions.is_null().to_numpy(), np.nan, flags.to_numpy())
    score = None
    columns = list(spec.labels) if classes is None else list(classes)
    if (
        probabilities is not None
        and spec.positive is not None
        and probabilities.shape[1] == len(columns)
        and spec.positive in columns
    ):
        score = np.asarray(probabilities[:, columns.index(spec.positive)], dtype=np.float64)
    return Outputs(value, score, positive)


def _numeric(series: pl.Series) -> bool:
    return series.dtype.is_numeric() or series.dtype == pl.Boolean


def probability_matrix(values: pl.Series) -> np.ndarray | None:
    """The ``probabilities`` list column as a matrix (NaN rows where null); None when the
    lists differ in length or there are none."""
    if values.dtype.base_type() not in (pl.List, pl.Array) or values.null_count() == values.len():
        return None
    lengths = values.list.len().drop_nulls().unique()
    if lengths.len() != 1:
        return None
    return values.cast(pl.List(pl.Float64)).list.to_array(int(lengths[0])).to_numpy()


# -- performance --------------------------------------------------------------------------------


class Performance:
    """Live performance of one batch's labelled rows, encoded once for every grouping.

    Raises :class:`~loopwise.evaluation.metrics.LabelMismatch` when the labels are not the
    predictions' kind of labels (the engine then stores the window without ``perf.*``).
    """

    def __init__(
        self,
        spec: OutputSpec,
        labels: pl.Series,
        predictions: pl.Series,
        probabilities: np.ndarray | None,
        metrics: Sequence[str],
    ) -> None:
        from loopwise.evaluation.metrics import encode_classification

        self.spec = spec
        self.metrics = tuple(metrics)
        self.encoded: Any = None
        self.y = self.pred = None
        if spec.task == "regression":
            self.y = labels.cast(pl.Float64, strict=False).to_numpy()
            self.pred = predictions.cast(pl.Float64, strict=False).to_numpy()
            return
        # labels the version's spec has not seen (a new class in feedback) change the class
        # count: then the logged probability columns cannot be matched to classes
        known = list(spec.labels)
        seen = {
            *labels.drop_nulls().unique().to_list(),
            *predictions.drop_nulls().unique().to_list(),
        }
        extra = [v for v in seen if v not in known]
        proba = probabilities
        if proba is not None and (
            extra or np.isnan(proba).any() or proba.shape[1] != len(known) or len(known) < 2
        ):
            proba = None
        positive = spec.positive if len(known) + len(extra) <= 2 else None
        self.encoded, _ = encode_classification(
            labels.rename("label"),
            "label",
            predictions,
            proba,
            list(spec.labels) if proba is not None else None,
            positive,
            0.5,
        )

    def by_cell(self, cells: np.ndarray, n: int) -> dict[str, np.ndarray]:
        """``perf.<metric>`` per cell (NaN where undefined)."""
        from loopwise.evaluation.metrics import classification_by_group, regression_by_group

        if self.encoded is not None:
            found = classification_by_group(self.encoded, cells, n)
        else:
            assert self.y is not None
            assert self.pred is not None
            found = regression_by_group(self.y, self.pred, cells, n)
        return {
            f"perf.{m}": np.asarray(found[m], dtype=np.float64) for m in self.metrics if m in found
        }


def feedback_problem(mismatch: Any, model: str) -> str:
    """The problem stored with windows whose feedback labels are not the model's labels (a
    :class:`~loopwise.evaluation.metrics.LabelMismatch` from :class:`Performance`)."""
    from loopwise.evaluation.metrics import label_set, mapping_hint

    mine, theirs = mismatch.model_labels, mismatch.target_labels
    return (
        f"feedback labels {label_set(theirs)} are not the labels {model or 'the model'} "
        f"predicts {label_set(mine)} (they share no value), so live performance (perf.*) is "
        f"not computed. Log feedback in the model's labels{mapping_hint(mine, theirs)}."
    )


def reference_problem(mismatch: Any, model: str, target: str | None) -> str:
    """The problem stored with a baseline (and the windows of its version) whose reference
    target is not labelled like the model's outputs on the reference."""
    from loopwise.evaluation.metrics import label_set, mapping_hint

    mine, theirs = mismatch.model_labels, mismatch.target_labels
    return (
        f"the reference's target {target!r} {label_set(theirs)} is not labelled like the "
        f"outputs of {model or 'the model'} on it {label_set(mine)} (they share no value), so "
        "there is no training baseline of perf.* (alert rules against the baseline skip it). "
        f"Map the reference's target to the model's labels{mapping_hint(mine, theirs)}."
    )


def default_metrics(spec: OutputSpec, has_scores: bool) -> tuple[str, ...]:
    metrics = DEFAULT_METRICS[spec.task]
    return metrics if has_scores or spec.task == "regression" else metrics[:-1]


# -- custom checks ------------------------------------------------------------------------------


def custom_expression(
    frame: pl.DataFrame, cells: np.ndarray, n: int, name: str, text: str
) -> np.ndarray:
    """A Polars expression evaluated per cell in one group-by; it must give one number."""
    from loopwise.data.schema import compile_expression

    expr = compile_expression(text, what=f"custom check {name!r}")
    out = np.full(n, np.nan)
    try:
        found = frame.with_columns(_cell=pl.Series(cells)).group_by("_cell").agg(expr.alias("v"))
    except pl.exceptions.PolarsError as e:
        raise InvalidInput(f"custom check {name!r} ({text!r}) failed on a window: {e}") from e
    values = found["v"]
    if values.dtype.base_type() in (pl.List, pl.Array):
        raise InvalidInput(
            f"custom check {name!r} ({text!r}) must reduce a window to one number, e.g. "
            "\"(col('prediction') > 0.9).mean()\"; it gives a column."
        )
    out[found["_cell"].to_numpy()] = values.cast(pl.Float64, strict=False).to_numpy()
    return out


def custom_function(
    frame: pl.DataFrame, cells: np.ndarray, n: int, name: str, func: Callable[[Any], Any]
) -> np.ndarray:
    """A Python check called once per cell with the cell's rows (a Polars DataFrame)."""
    out = np.full(n, np.nan)
    keyed = frame.with_columns(_cell=pl.Series(cells))
    for part in keyed.partition_by("_cell", maintain_order=False):
        cell = int(part["_cell"][0])
        try:
            value = func(part.drop("_cell"))
        except Exception as e:
            raise InvalidInput(f"custom check {name!r} raised {type(e).__name__}: {e}") from e
        if value is not None:
            try:
                out[cell] = float(value)
            except (TypeError, ValueError) as e:
                raise InvalidInput(
                    f"custom check {name!r} must return a number or None; got {value!r}."
                ) from e
    return out
