"""Every metric, overall and per slice, equals scikit-learn's on the same rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from loopwise.evaluation.evaluate import Evaluation, evaluate

SLICES = ["region", ("age", [0, 30, 50, 120])]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(-5, 130, n).astype(float)
    age[rng.random(n) < 0.03] = np.nan
    region = rng.choice(["north", "south", "east", "west"], n).astype(object)
    region[rng.random(n) < 0.03] = None
    return pd.DataFrame({"region": region, "age": age, "x": rng.normal(size=n)})


def _masks(df: pd.DataFrame, ev: Evaluation) -> list[tuple[pd.Series, np.ndarray]]:
    """(slice row, boolean mask of its rows), computed independently of loopwise."""
    out = []
    for _, row in ev.slice_metrics.iterrows():
        column, value = row["slice_column"], row["slice_value"]
        x = df[column]
        if value == "(missing)":
            mask = x.isna().to_numpy()
        elif column == "region":
            mask = (x == value).to_numpy()
        elif value == "(out of range)":
            mask = (x.notna() & ((x < 0) | (x >= 120))).to_numpy()
        else:
            low, high = (float(v) for v in value.strip("[)").split(","))
            mask = ((x >= low) & (x < high)).to_numpy()
        assert mask.sum() == row["n"], (column, value)
        out.append((row, mask))
    assert sum(m.sum() for _, m in out) == 2 * len(df)  # every row in one slice per spec
    return out


def _close(actual: float, expected: float) -> None:
    if math.isnan(expected):
        assert math.isnan(actual)
    else:
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12)


def _binary_expected(y: np.ndarray, pred: np.ndarray, p: np.ndarray) -> dict[str, float]:
    both = len(np.unique(y)) == 2
    nan = dict(zero_division=np.nan)
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, pos_label=1, **nan),
        "recall": skm.recall_score(y, pred, pos_label=1, **nan),
        "f1": skm.f1_score(y, pred, pos_label=1, **nan),
        "roc_auc": skm.roc_auc_score(y, p) if both else math.nan,
        "pr_auc": skm.average_precision_score(y, p) if both else math.nan,
        "log_loss": skm.log_loss(y, p, labels=[0, 1]),
    }


@pytest.fixture
def binary() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    df = _frame(5000, seed=1)
    rng = np.random.default_rng(2)
    y = (df["x"] + rng.normal(size=len(df)) > 0).astype(int).to_numpy().copy()
    # scores on a coarse grid, so many ties, within and across classes
    p = np.round(1 / (1 + np.exp(-2 * df["x"].to_numpy())), 1)
    y[(df["region"] == "west").to_numpy()] = 1  # one slice holds a single class
    df["y"] = y
    return df, y, p


def test_binary_metrics_match_sklearn_overall_and_per_slice(binary):
    df, y, p = binary
    ev = evaluate(None, df, "y", slices=SLICES, probabilities=p)
    pred = (p >= 0.5).astype(int)
    expected = _binary_expected(y, pred, p)
    for name, value in expected.items():
        _close(ev.metrics[name], value)
    assert ev.metrics["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert ev.labels == [0, 1]
    assert ev.positive_label == 1
    for row, mask in _masks(df, ev):
        for name, value in _binary_expected(y[mask], pred[mask], p[mask]).items():
            _close(row[name], value)
    west = ev.slice_metrics.set_index("slice_value").loc["west"]
    assert math.isnan(west["roc_auc"])
    assert math.isnan(west["pr_auc"])


def test_binary_baseline_is_the_majority_class_with_priors(binary):
    df, y, p = binary
    ev = evaluate(None, df, "y", slices=SLICES, probabilities=p)
    prior = y.mean()
    majority = int(prior >= 0.5)
    constant = np.full(len(y), prior)
    expected = _binary_expected(y, np.full(len(y), majority), constant)
    for name, value in expected.items():
        _close(ev.baseline_metrics[name], value)
        _close(ev.lift[name], ev.metrics[name] - value)
    for (row, mask), (_, base) in zip(
        _masks(df, ev), ev.baseline_slice_metrics.iterrows(), strict=True
    ):
        assert (base["slice_column"], base["slice_value"]) == (
            row["slice_column"],
            row["slice_value"],
        )
        sub = _binary_expected(y[mask], np.full(mask.sum(), majority), constant[mask])
        for name, value in sub.items():
            _close(base[name], value)


def test_binary_with_predictions_only_has_no_probability_metrics(binary):
    df, y, p = binary
    pred = (p >= 0.3).astype(int)
    ev = evaluate(None, df, "y", slices=SLICES, predictions=pred)
    assert set(ev.metric_names) == {"accuracy", "precision", "recall", "f1"}
    assert set(ev.baseline_metrics) == {*ev.metric_names, "confusion_matrix"}
    _close(ev.metrics["f1"], skm.f1_score(y, pred))
    for row, mask in _masks(df, ev):
        _close(row["recall"], skm.recall_score(y[mask], pred[mask], zero_division=np.nan))


def _multiclass_expected(y: np.ndarray, pred: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    nan = dict(average="macro", zero_division=np.nan)
    aucs, aps = [], []
    for k in range(proba.shape[1]):
        hit = y == k
        if 0 < hit.sum() < len(y):
            aucs.append(skm.roc_auc_score(hit, proba[:, k]))
            aps.append(skm.average_precision_score(hit, proba[:, k]))
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, **nan),
        "recall": skm.recall_score(y, pred, **nan),
        "f1": skm.f1_score(y, pred, **nan),
        "roc_auc": float(np.mean(aucs)) if aucs else math.nan,
        "pr_auc": float(np.mean(aps)) if aps else math.nan,
        "log_loss": skm.log_loss(y, proba, labels=[0, 1, 2]),
    }


def test_multiclass_metrics_match_sklearn_overall_and_per_slice():
    df = _frame(6000, seed=3)
    rng = np.random.default_rng(4)
    proba = np.round(rng.dirichlet([1.0, 1.0, 1.0], size=len(df)), 2)
    proba /= proba.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in proba])
    y[(df["region"] == "east").to_numpy()] = 2  # a slice with one class
    y[(df["region"] == "north").to_numpy() & (y == 0)] = 1  # a slice missing class 0
    df["y"] = y
    ev = evaluate(None, df, "y", slices=SLICES, probabilities=proba)
    pred = proba.argmax(axis=1)
    expected = _multiclass_expected(y, pred, proba)
    for name, value in expected.items():
        _close(ev.metrics[name], value)
    # with all classes present, the one-vs-rest means are scikit-learn's multiclass scores
    _close(ev.metrics["roc_auc"], skm.roc_auc_score(y, proba, multi_class="ovr"))
    _close(ev.metrics["pr_auc"], skm.average_precision_score(y, proba, average="macro"))
    assert ev.metrics["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert ev.positive_label is None
    for row, mask in _masks(df, ev):
        for name, value in _multiclass_expected(y[mask], pred[mask], proba[mask]).items():
            _close(row[name], value)
    by_value = ev.slice_metrics.set_index("slice_value")
    assert math.isnan(by_value.loc["east", "roc_auc"])
    assert not math.isnan(by_value.loc["north", "roc_auc"])


def test_multiclass_string_labels_with_predictions():
    df = _frame(3000, seed=5)
    rng = np.random.default_rng(6)
    y = rng.choice(["cat", "dog", "emu", "fox"], len(df))
    pred = np.where(rng.random(len(df)) < 0.6, y, rng.choice(["cat", "dog", "emu"], len(df)))
    df["y"] = y
    ev = evaluate(None, df, "y", slices=SLICES, predictions=pred)
    assert ev.labels == ["cat", "dog", "emu", "fox"]
    nan = dict(average="macro", zero_division=np.nan)
    _close(ev.metrics["precision"], skm.precision_score(y, pred, **nan))
    for row, mask in _masks(df, ev):
        _close(row["f1"], skm.f1_score(y[mask], pred[mask], **nan))
        _close(row["recall"], skm.recall_score(y[mask], pred[mask], **nan))


def _regression_expected(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    nonzero = y != 0
    constant = np.ptp(y) == 0
    rmse = skm.root_mean_squared_error(y, pred)
    return {
        "rmse": rmse,
        "mae": skm.mean_absolute_error(y, pred),
        "r2": math.nan if constant else skm.r2_score(y, pred),
        "nrmse": math.nan if constant else rmse / np.ptp(y),
        "mape": (
            skm.mean_absolute_percentage_error(y[nonzero], pred[nonzero])
            if nonzero.any()
            else math.nan
        ),
    }


def test_regression_metrics_match_sklearn_overall_and_per_slice():
    df = _frame(5000, seed=7)
    rng = np.random.default_rng(8)
    y = np.round(3 * df["x"].to_numpy() + rng.normal(size=len(df)), 1)  # some zeros
    y[(df["region"] == "south").to_numpy()] = 4.0  # a constant slice
    assert (y == 0).any()
    pred = 3 * df["x"].to_numpy()
    df["y"] = y
    ev = evaluate(None, df, "y", task="regression", slices=SLICES, predictions=pred)
    for name, value in _regression_expected(y, pred).items():
        _close(ev.metrics[name], value)
    for row, mask in _masks(df, ev):
        for name, value in _regression_expected(y[mask], pred[mask]).items():
            _close(row[name], value)
    mean = np.full(len(y), y.mean())
    for name, value in _regression_expected(y, mean).items():
        _close(ev.baseline_metrics[name], value)
    for (_, base), (_, mask) in zip(
        ev.baseline_slice_metrics.iterrows(), _masks(df, ev), strict=True
    ):
        for name, value in _regression_expected(y[mask], mean[mask]).items():
            _close(base[name], value)
    south = ev.slice_metrics.set_index("slice_value").loc["south"]
    assert math.isnan(south["r2"])
    assert math.isnan(south["nrmse"])
