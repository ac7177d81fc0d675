"""Metric kernels that score every slice of a dataset in one vectorised pass.

Why: scoring slices with scikit-learn means one call per slice and per metric, and fifty
slices of a million rows take seconds. Here each metric is written once over *group codes*
(one integer per row naming its slice): confusion-cell counts come from ``np.bincount``
over (group, class); ROC-AUC and average precision from one sort by (group, score), read as
runs of tied scores (the Mann–Whitney U statistic with ties counted half, and the step-wise
precision–recall sum); regression errors from weighted ``bincount`` sums. The overall value
is the same kernel with a single group, so overall and per-slice numbers share one
definition.

Each value equals scikit-learn's on the same rows (the tests check it), with one rule for
what is undefined: NaN, never an exception and never a silent 0. That covers precision with
no predicted positives and recall with no actual ones (scikit-learn's ``zero_division=nan``;
macro averages skip such classes), ROC-AUC and PR-AUC of a slice holding a single class,
R² of a constant target, normalised RMSE of a zero range, and MAPE without a non-zero target.
:func:`encode_classification` brings labels, predictions and probabilities to those codes.

Labels of another kind than the target's are refused, never scored as wrong: a model trained
on 0/1 and evaluated against a Yes/No target would otherwise score every row as an error
(accuracy 0, a 4x4 confusion matrix) without a word. Values that are the same label written
another way are one label -- the number 1 and the text "1", 1 and 1.0, True and 1 -- but
labels of the model (its ``classes_``, else its predictions) that share no value with the
target's raise :class:`LabelMismatch`, naming both sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from loopwise.errors import InvalidInput

LABEL_METRICS = ("accuracy", "precision", "recall", "f1")
PROBABILITY_METRICS = ("roc_auc", "pr_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2", "nrmse", "mape")

#: Metrics where larger is better; the others (losses and errors) are better when smaller.
HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "r2"})
#: Metrics on a unitless, roughly 0–1 scale, where a fixed gap (0.05) means the same thing for
#: every dataset. RMSE and MAE (in target units) and log-loss (unbounded) are not among them.
UNITLESS = HIGHER_IS_BETTER | {"nrmse", "mape"}

_MAX_CELLS = 1 << 22  # per-group confusion matrices up to this many cells (32 MB)
_EPS = np.finfo(np.float64).eps  # log-loss clips probabilities to [eps, 1 - eps], as sklearn


class LabelMismatch(InvalidInput):
    """The model's labels and the target's are of different kinds or share no value.

    ``model_labels`` and ``target_labels`` are the two sets (sorted lists, at most
    :data:`SHOWN_LABELS` + 1 values each); callers that must not stop on it (monitoring)
    read them to report the problem in their own words.
    """

    def __init__(self, message: str, model_labels: list[Any], target_labels: list[Any]) -> None:
        super().__init__(message)
        self.model_labels = model_labels
        self.target_labels = target_labels


#: Labels named in a :class:`LabelMismatch` message before "... and more".
SHOWN_LABELS = 10


@dataclass
class Encoded:
    """Classification inputs as class codes: positions ``0..K-1`` in the label order.

    ``proba`` holds one column per class (same order) or is None; ``positive`` is the code
    of the positive class for a binary task and None for a multiclass one.
    ``constant_scores`` marks a baseline whose probabilities are the same on every row.
    Work that does not depend on the slices (sorting by score, the log-loss of each row)
    is done once and cached, then shared by the overall score and every slice column.
    """

    y: np.ndarray
    pred: np.ndarray
    proba: np.ndarray | None
    n_classes: int
    positive: int | None
    constant_scores: bool = False
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def ranked(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows sorted by the score of class ``k``: (order, sorted scores, is-class-k)."""
        if k not in self._cache:
            assert self.proba is not None
            score = np.ascontiguousarray(self.proba[:, k])
            order = np.argsort(score)
            self._cache[k] = (order, score[order], (self.y == k)[order])
        return self._cache[k]

    def cells(self) -> np.ndarray:
        """Each row's confusion-matrix cell: true class × K + predicted class."""
        if "cells" not in self._cache:
            self._cache["cells"] = self.y * self.n_classes + self.pred
        return self._cache["cells"]

    def row_loss(self) -> np.ndarray:
        """Each row's log-loss: −log of the probability given to its true class."""
        if "loss" not in self._cache:
            assert self.proba is not None
            p_true = np.take_along_axis(self.proba, self.y[:, None], axis=1)[:, 0]
            self._cache["loss"] = -np.log(np.clip(p_true, _EPS, 1 - _EPS))
        return self._cache["loss"]

    def score_columns(self) -> list[int]:
        """The classes scored one-vs-rest: the positive one if binary, else all of them."""
        if self.positive is not None:
            return [self.positive]
        return list(range(self.n_classes))


def classification_by_group(enc: Encoded, groups: np.ndarray, n_groups: int) -> dict:
    """Every classification metric per group: arrays of length ``n_groups``.

    Binary tasks score the positive class; multiclass tasks average over classes (macro)
    the precision, recall, F1, ROC-AUC (one-vs-rest) and PR-AUC of each class.
    """
    k = enc.n_classes
    n = np.bincount(groups, minlength=n_groups)
    if n_groups * k * k <= _MAX_CELLS:  # one bincount: a confusion matrix per group
        cells = np.bincount(groups * (k * k) + enc.cells(), minlength=n_groups * k * k)
        per_group = cells.reshape(n_groups, k, k)
        true_sum, pred_sum = per_group.sum(axis=2), per_group.sum(axis=1)
        tp = np.diagonal(per_group, axis1=1, axis2=2)
    else:  # many classes: count true, predicted and correct cells separately
        true_cells = groups * k + enc.y
        size = n_groups * k
        true_sum = np.bincount(true_cells, minlength=size).reshape(n_groups, k)
        pred_sum = np.bincount(groups * k + enc.pred, minlength=size).reshape(n_groups, k)
        tp = np.bincount(true_cells[enc.y == enc.pred], minlength=size).reshape(n_groups, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {"n": n, "accuracy": tp.sum(axis=1) / n}
        per_class = {
            "precision": tp / pred_sum,
            "recall": tp / true_sum,
            "f1": 2 * tp / (true_sum + pred_sum),
        }
    for name, values in per_class.items():
        out[name] = values[:, enc.positive] if enc.positive is not None else _nanmean(values)
    if enc.proba is not None:
        small = groups.astype(np.uint16) if 1 < n_groups < 2**16 else groups
        aucs, aps = [], []
        for c in enc.score_columns():
            if enc.constant_scores:
                auc, ap = _constant_ranking(true_sum[:, c], n)
            else:
                auc, ap = _ranking_by_group(enc, c, small, n_groups)
            aucs.append(auc)
            aps.append(ap)
        out["roc_auc"] = _nanmean(np.column_stack(aucs))
        out["pr_auc"] = _nanmean(np.column_stack(aps))
        with np.errstate(divide="ignore", invalid="ignore"):
            out["log_loss"] = np.bincount(groups, weights=enc.row_loss(), minlength=n_groups) / n
    return out


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class): rows are true classes, columns predictions."""
    cells = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes)
    return cells.reshape(n_classes, n_classes)


def _constant_ranking(n_pos: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores equal on every row: one tied run, so ROC-AUC is 1/2 and PR-AUC the prevalence."""
    defined = (n_pos > 0) & (n_pos < n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(defined, 0.5, np.nan), np.where(defined, n_pos / n, np.nan)


def _ranking_by_group(
    enc: Encoded, k: int, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """ROC-AUC and average precision of class ``k`` against the rest, per group.

    Rows are sorted by (group, score): the score order is computed once, then a stable
    radix sort on the small group codes groups it. Each run of equal scores within a group
    is one threshold. For a run with ``p`` positives and ``q`` negatives, after ``P``
    positives and ``Q`` negatives of lower score in the same group:

    * ROC-AUC = Σ p·(Q + q/2) / (n_pos·n_neg) — the Mann–Whitney U, ties counted half;
    * average precision = Σ (p / n_pos) · precision at that threshold, where the rows
      predicted positive are those scoring at least the run's score:
      (n_pos − P) / (n_pos − P + n_neg − Q). This is scikit-learn's step-wise sum.
    """
    order, score, positive = enc.ranked(k)
    n = len(score)
    if n_groups > 1:
        by_score = groups[order]
        regroup = np.argsort(by_score, kind="stable")  # radix sort for uint16 codes
        score, positive = score[regroup], positive[regroup]
        counts = np.bincount(by_score, minlength=n_groups)
    else:
        counts = np.array([n])
    group_start = np.cumsum(counts) - counts
    cum_pos = np.zeros(n + 1, dtype=np.int64)  # positives before each position
    np.cumsum(positive, out=cum_pos[1:])
    boundary = np.empty(n, dtype=bool)
    boundary[0] = True
    np.not_equal(score[1:], score[:-1], out=boundary[1:])
    boundary[group_start[counts > 0]] = True
    starts = np.flatnonzero(boundary)
    run_pos = np.diff(cum_pos[np.append(starts, n)])
    run_neg = np.diff(np.append(starts, n)) - run_pos
    n_pos = cum_pos[group_start + counts] - cum_pos[group_start]
    n_neg = counts - n_pos
    scoring = run_pos > 0  # only runs holding positives add to either sum
    starts, run_pos, run_neg = starts[scoring], run_pos[scoring], run_neg[scoring]
    run_group = np.repeat(np.arange(n_groups), counts)[starts]
    pos_before = cum_pos[starts] - cum_pos[group_start][run_group]
    neg_before = starts - group_start[run_group] - pos_before
    u = np.bincount(run_group, weights=run_pos * (neg_before + 0.5 * run_neg), minlength=n_groups)
    tp = n_pos[run_group] - pos_before
    fp = n_neg[run_group] - neg_before
    ap = np.bincount(run_group, weights=run_pos * tp / (tp + fp), minlength=n_groups)
    defined = (n_pos > 0) & (n_neg > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (
            np.where(defined, u / (n_pos * n_neg), np.nan),
            np.where(defined, ap / n_pos, np.nan),
        )


def regression_by_group(y: np.ndarray, pred: np.ndarray, groups: np.ndarray, n_groups: int) -> dict:
    """RMSE, MAE, R², normalised RMSE and MAPE per group: arrays of length ``n_groups``.

    Normalised RMSE is RMSE / (max − min) of the target in the same rows. MAPE is the mean
    of |error| / |target| over the rows whose target is not zero (rows with a zero target
    are left out instead of dividing by zero; scikit-learn divides by machine epsilon).
    """
    n = np.bincount(groups, minlength=n_groups)
    err = pred - y
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(groups, weights=y, minlength=n_groups) / n
        sse = np.bincount(groups, weights=err * err, minlength=n_groups)
        sst = np.bincount(groups, weights=(y - mean[groups]) ** 2, minlength=n_groups)
        sae = np.bincount(groups, weights=np.abs(err), minlength=n_groups)
        nonzero = y != 0
        ape = np.bincount(
            groups[nonzero], weights=np.abs(err[nonzero] / y[nonzero]), minlength=n_groups
        )
        n_nonzero = np.bincount(groups[nonzero], minlength=n_groups)
        low, high = _min_max_by_group(y, groups, n_groups, n)
        rmse = np.sqrt(sse / n)
        return {
            "n": n,
            "rmse": rmse,
            "mae": sae / n,
            "r2": np.where(sst > 0, 1 - sse / sst, np.nan),
            "nrmse": np.where(high > low, rmse / (high - low), np.nan),
            "mape": np.where(n_nonzero > 0, ape / n_nonzero, np.nan),
        }


def _min_max_by_group(
    y: np.ndarray, groups: np.ndarray, n_groups: int, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    low = np.full(n_groups, np.nan)
    high = np.full(n_groups, np.nan)
    if n_groups == 1:
        low[0], high[0] = y.min(), y.max()
        return low, high
    small = groups.astype(np.uint16) if n_groups < 2**16 else groups
    ordered = y[np.argsort(small, kind="stable")]
    present = n > 0
    starts = (np.cumsum(n) - n)[present]
    low[present] = np.minimum.reduceat(ordered, starts)
    high[present] = np.maximum.reduceat(ordered, starts)
    return low, high


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Row means that skip NaN (undefined classes); NaN where a row has no value at all."""
    if values.shape[1] == 1:
        return values[:, 0]
    known = ~np.isnan(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(known, values, 0.0).sum(axis=1) / known.sum(axis=1)


def encode_classification(
    y: pl.Series,
    target: str,
    predictions: Any,
    probabilities: Any,
    classes: Any,
    positive_label: Any,
    threshold: float,
) -> tuple[Encoded, list[Any]]:
    """Bring labels, predictions and probabilities to class codes; return them and the labels.

    The label order is the sorted union of the target, the predictions and the model's
    ``classes_`` (the order of probability columns when given; else the label order). With
    two labels or fewer the task is binary and the positive label defaults to the last one
    (1 of 0/1, True of False). Missing predictions are derived from the probabilities.
    Raises :class:`LabelMismatch` when the model's labels (``classes``, else the
    predictions) cannot be the target's (see the module doc).
    """
    n = y.len()
    proba = None if probabilities is None else _probabilities(probabilities, n)
    parts = [y]
    model_side: tuple[pl.Series, pl.Series, str] | None = None  # (given, as target, what)
    if predictions is not None:
        given = _label_series(predictions, "predictions", n)
        parts.append(_like_target(given, y, target, "predictions"))
        model_side = (given, parts[-1], "predictions")
    column_labels = None
    if classes is not None:
        given = _label_series(classes, "the model's classes_", None)
        column_labels = _like_target(given, y, target, "the model's classes_")
        parts.append(column_labels)
        model_side = (given, column_labels, "the model's classes_")
    if model_side is not None:
        _check_overlap(y, target, *model_side, known_classes=classes is not None)
    if positive_label is not None:
        given = _label_series([positive_label], "positive_label", 1)
        try:
            parts.append(_like_target(given, y, target, "positive_label"))
        except LabelMismatch as e:
            raise InvalidInput(
                f"positive_label={positive_label!r} is not a label like those of target "
                f"{target!r} {label_set(e.target_labels)} ({y.dtype}); pass one of them."
            ) from None
    label_series = pl.concat(parts).unique().sort()
    labels = label_series.to_list()
    k = len(labels)
    if positive_label is not None and k > 2:
        raise InvalidInput(
            f"positive_label={positive_label!r} applies to binary targets, but {target!r} "
            f"has {k} classes ({labels[:10]}); leave positive_label unset for multiclass."
        )
    positive = None
    if k <= 2:
        chosen = labels[-1] if positive_label is None else parts[-1][0]
        positive = labels.index(chosen)
    codes = pl.Series(range(k))

    def encode(series: pl.Series) -> np.ndarray:
        return series.replace_strict(label_series, codes, return_dtype=pl.Int64).to_numpy()

    full = None
    if proba is not None:
        full = _proba_columns(proba, labels, column_labels, positive, target)
    if predictions is not None:
        pred = encode(parts[1])
    elif positive is not None and k == 2:
        assert full is not None
        pred = np.where(full[:, positive] >= threshold, positive, 1 - positive)
    else:
        assert full is not None
        pred = np.argmax(full, axis=1)
    enc = Encoded(encode(y), pred.astype(np.int64), full, k, positive)
    return enc, labels


def _label_series(values: Any, what: str, n: int | None) -> pl.Series:
    """Labels as one Polars column: one per row (``n``), none missing."""
    if isinstance(values, pl.Series):
        series = values
    else:
        array = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        try:
            series = pl.Series(what, array)
        except Exception as e:
            raise InvalidInput(f"{what} cannot be read as one column of labels: {e}") from e
    if n is not None and series.len() != n:
        raise InvalidInput(
            f"{what} has {series.len()} values but the data has {n} rows; pass one per row."
        )
    if series.null_count():
        raise InvalidInput(f"{what} has {series.null_count()} missing values; fill them first.")
    return series


def _like_target(series: pl.Series, y: pl.Series, target: str, what: str) -> pl.Series:
    """``series`` cast to the target's type, when every value survives the round trip: the
    number 1 and the text "1" are one label, the text "Yes" is no number."""
    if series.dtype == y.dtype:
        return series
    try:
        cast = series.cast(y.dtype, strict=True)
        exact = not series.dtype.is_numeric() or bool((cast.cast(series.dtype) == series).all())
    except pl.exceptions.PolarsError:
        exact = False
    if not exact:
        mine, theirs = _distinct(series), _distinct(y)
        raise LabelMismatch(
            f"{what} {label_set(mine)} ({series.dtype}) are not labels like those of target "
            f"{target!r} {label_set(theirs)} ({y.dtype}). {_fix(mine, theirs)}",
            mine,
            theirs,
        )
    return cast


def _check_overlap(
    y: pl.Series,
    target: str,
    given: pl.Series,
    as_target: pl.Series,
    what: str,
    *,
    known_classes: bool,
) -> None:
    """Refuse model labels that share no value with the target's.

    A model that knows its classes can never be right when none is the target's. Without
    them (predictions only), a small sample may hold a single label on each side that
    differ (every row wrong, a true 0); so the same-kind labels are refused only when both
    sides hold two or more labels and none in common (Yes/No against yes/no).
    """
    if not disjoint(as_target, y, same_kind=given.dtype == y.dtype, known=known_classes):
        return
    mine, theirs = _distinct(given), _distinct(y)
    raise LabelMismatch(
        f"{what} {label_set(mine)} and the labels of target {target!r} {label_set(theirs)} "
        f"share no value, so every row would be scored wrong. {_fix(mine, theirs)}",
        mine,
        theirs,
    )


def disjoint(labels: pl.Series, other: pl.Series, *, same_kind: bool, known: bool) -> bool:
    """Whether ``labels`` (cast to ``other``'s type) cannot be labels of ``other``: they
    share no value and, for labels of the same kind not ``known`` to be the model's whole
    set, both sides hold two values or more (see :func:`_check_overlap`)."""
    mine = labels.unique().to_frame("v")
    theirs = other.unique().to_frame("v")
    if mine.join(theirs, on="v", how="semi").height:
        return False
    return known or not same_kind or min(mine.height, theirs.height) >= 2


def _distinct(series: pl.Series) -> list[Any]:
    """Up to ``SHOWN_LABELS + 1`` sorted distinct values (one more tells there are more)."""
    return series.unique().sort().head(SHOWN_LABELS + 1).to_list()


def label_set(values: list[Any]) -> str:
    """``{'No', 'Yes'}``; ``{0, 1, ... and more}`` past :data:`SHOWN_LABELS` values."""
    shown = ", ".join(repr(v) for v in values[:SHOWN_LABELS])
    return "{" + shown + (", ... and more" if len(values) > SHOWN_LABELS else "") + "}"


def _fix(model_labels: list[Any], target_labels: list[Any]) -> str:
    """How to fix a mismatch: map the target to the model's labels."""
    hint = mapping_hint(model_labels, target_labels)
    return (
        f"Map the target to the labels the model was trained on{hint}, or evaluate a model "
        "trained on labels like the target's."
    )


def mapping_hint(model_labels: list[Any], target_labels: list[Any]) -> str:
    """`` (e.g. {'No': 0, 'Yes': 1}, if that is what the model learned)`` when both sorted
    sets have the same size (ten at most); else ``""``."""
    if not len(model_labels) == len(target_labels) <= SHOWN_LABELS:
        return ""
    pairs = ", ".join(f"{t!r}: {m!r}" for t, m in zip(target_labels, model_labels, strict=True))
    return f" (e.g. {{{pairs}}}, if that is what the model learned)"


def _probabilities(probabilities: Any, n: int) -> np.ndarray:
    try:
        proba = np.asarray(probabilities, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"probabilities must be numbers: {e}") from e
    if proba.ndim == 2 and proba.shape[1] == 1:
        proba = proba[:, 0]
    if proba.ndim not in (1, 2) or proba.shape[0] != n:
        raise InvalidInput(
            f"probabilities have shape {proba.shape} but the data has {n} rows; pass shape "
            f"({n},) with the positive-class probability (binary) or ({n}, n_classes)."
        )
    if not np.isfinite(proba).all():
        raise InvalidInput("probabilities contain NaN or infinite values; fix the model output.")
    if proba.min() < 0 or proba.max() > 1:
        raise InvalidInput(
            f"probabilities must lie in [0, 1]; got values from {proba.min():.4g} to "
            f"{proba.max():.4g}. Pass predict_proba output, not decision_function scores."
        )
    return proba


def _proba_columns(
    proba: np.ndarray,
    labels: list[Any],
    column_labels: pl.Series | None,
    positive: int | None,
    target: str,
) -> np.ndarray:
    """Probabilities as one column per label, in label order."""
    k = len(labels)
    n = proba.shape[0]
    if proba.ndim == 1:
        if positive is None:
            raise InvalidInput(
                f"probabilities have one value per row, but {target!r} has {k} classes; pass "
                f"shape ({n}, {k}) with columns in the order {labels[:10]}."
            )
        full = np.empty((n, k))
        full[:, positive] = proba
        if k == 2:
            full[:, 1 - positive] = 1.0 - proba
        return full
    columns = labels if column_labels is None else column_labels.to_list()
    if proba.shape[1] != len(columns):
        raise InvalidInput(
            f"probabilities have {proba.shape[1]} columns but there are {len(columns)} classes "
            f"({columns[:10]}); pass one column per class in that order, or evaluate with a "
            "model whose classes_ names the columns."
        )
    if columns == labels:
        return proba
    full = np.zeros((n, k))
    for j, label in enumerate(columns):
        full[:, labels.index(label)] = proba[:, j]
    return full
