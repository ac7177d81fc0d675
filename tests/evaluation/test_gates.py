"""Gates: each check of a promotion policy passing and failing, with messages that say why."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn import metrics as skm

from loopwise.errors import InvalidInput
from loopwise.evaluation.evaluate import evaluate
from loopwise.evaluation.gates import (
    GateResult,
    evaluate_for_policy,
    resampled_metric,
    run_gates,
    summarize,
)
from loopwise.evaluation.metrics import encode_classification
from loopwise.evaluation.policy import Policy


class Scorer:
    """A binary classifier whose positive-class probability is ``score(x)`` (a function)."""

    classes_ = np.array([0, 1])

    def __init__(self, score, *, delay=0.0):
        self.score, self.delay, self.calls = score, delay, 0

    def predict_proba(self, x):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        p = np.clip(np.asarray(self.score(x), dtype=float), 0, 1)
        return np.column_stack([1 - p, p])

    def predict(self, x):
        return (self.predict_proba(x)[:, 1] >= 0.5).astype(int)


class Regressor:
    def __init__(self, fn):
        self.fn = fn

    def predict(self, x):
        return np.asarray(self.fn(x), dtype=float)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


GOOD = Scorer(lambda x: _sigmoid(3 * x["x"]))
NOISY = Scorer(lambda x: _sigmoid(3 * x["x"] + 4 * x["noise"]))


def _data(n=2000, seed=0):
    """x decides the label except in the south, where labels are coin flips."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    region = rng.choice(["north", "east", "south"], n)
    y = (x > 0).astype(int)
    south = region == "south"
    y[south] = rng.integers(0, 2, south.sum())
    return pd.DataFrame({"x": x, "noise": rng.normal(size=n), "region": region, "y": y})


def _gates(policy, model=GOOD, data=None, **kwargs):
    data = _data() if data is None else data
    policy = Policy.from_dict(policy)
    ev = evaluate_for_policy(model, data, "y", policy)
    return run_gates(policy, candidate=model, candidate_eval=ev, data=data, target="y", **kwargs)


def _only(checks, name):
    found = [c for c in checks if c.name == name]
    assert len(found) == 1, [c.name for c in checks]
    return found[0]


# --- thresholds -------------------------------------------------------------------------


def test_thresholds_pass_and_fail_with_the_shortfall():
    checks = _gates({"thresholds": {"roc_auc": 0.6, "recall": 0.99}})
    auc, recall = checks
    assert (auc.name, auc.passed, auc.limit) == ("threshold:roc_auc", True, 0.6)
    assert "meets the floor 0.6" in auc.message
    assert not recall.passed
    short = 0.99 - recall.value
    assert recall.message == (f"recall is {recall.value:.4g}, below the floor 0.99 by {short:.4g}")
    assert summarize(checks) == (False, [recall.message])


def test_error_metric_thresholds_are_maxima():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=500)})
    df["y"] = 2 * df["x"] + rng.normal(size=500)
    model = Regressor(lambda x: 2 * x["x"])
    checks = _gates({"task": "regression", "thresholds": {"rmse": 2.0, "mae": 0.1}}, model, df)
    rmse, mae = checks
    assert rmse.passed
    assert "within the maximum 2" in rmse.message
    assert not mae.passed
    assert f"mae is {mae.value:.4g}, above the maximum 0.1 by {mae.value - 0.1:.4g}" == mae.message


def test_a_threshold_on_a_metric_the_model_cannot_give_fails_clearly():
    class LabelsOnly:
        def predict(self, x):
            return (x["x"] > 0).astype(int)

    (check,) = _gates({"thresholds": {"roc_auc": 0.7}}, LabelsOnly())
    assert not check.passed
    assert "roc_auc was not computed" in check.message
    assert "needs predict_proba" in check.message


def test_policy_task_must_match_the_evaluation():
    policy = Policy.from_dict({"task": "regression"})
    df = _data(200)
    ev = evaluate(GOOD, df, "y")
    with pytest.raises(InvalidInput, match="policy is for task 'regression'"):
        run_gates(policy, candidate=GOOD, candidate_eval=ev, data=df, target="y")


# --- vs_current -------------------------------------------------------------------------


@pytest.mark.parametrize("bootstrap", [None, 200])
def test_a_clearly_worse_candidate_fails_and_an_equal_one_passes(bootstrap):
    rule = {"metric": "roc_auc", "max_drop": 0.01, "bootstrap": bootstrap}
    worse = _only(_gates({"vs_current": rule}, NOISY, current=GOOD), "vs_current:roc_auc")
    assert not worse.passed
    assert worse.value < -0.1
    assert "worse by" in worse.message
    assert "beyond the allowed drop 0.01 by" in worse.message
    same = _only(_gates({"vs_current": rule}, GOOD, current=GOOD), "vs_current:roc_auc")
    assert same.passed
    assert same.value == 0
    assert "no change" in same.message
    if bootstrap:
        assert worse.details["ci_high"] < -0.1
        assert same.details["ci_low"] == same.details["ci_high"] == 0
        assert "95% CI of the improvement" in worse.message
        assert "200 paired bootstrap resamples" in worse.message


def test_no_current_holder_passes():
    (check,) = _gates({"vs_current": {"metric": "roc_auc", "bootstrap": 500}})
    assert check.passed
    assert check.message == "no current holder; nothing to compare"


def test_lower_is_better_metrics_compare_as_improvements():
    rule = {"metric": "log_loss", "max_drop": 0.0, "bootstrap": 300}
    better = _only(_gates({"vs_current": rule}, GOOD, current=NOISY), "vs_current:log_loss")
    assert better.passed
    assert better.value > 0  # current − candidate: lower loss is an improvement
    assert better.details["ci_low"] > 0
    worse = _only(_gates({"vs_current": rule}, NOISY, current=GOOD), "vs_current:log_loss")
    assert not worse.passed
    assert worse.details["direction"] == "lower is better"


def test_a_small_drop_within_the_allowance_passes_only_without_a_wide_interval():
    df = _data(400)
    slightly = Scorer(lambda x: _sigmoid(3 * x["x"] + 0.3 * x["noise"]))
    point = {"metric": "roc_auc", "max_drop": 0.05}
    (check,) = _gates({"vs_current": point}, slightly, df, current=GOOD)
    assert check.passed
    assert -0.05 < check.value < 0
    strict = {"metric": "roc_auc", "max_drop": -check.value + 1e-6, "bootstrap": 1000}
    (check,) = _gates({"vs_current": strict}, slightly, df, current=GOOD)
    assert not check.passed  # the point drop fits, the interval's lower end does not
    assert check.details["ci_low"] < check.value < check.details["ci_high"]


def test_the_bootstrap_is_seeded():
    rule = {"metric": "accuracy", "bootstrap": 100}
    kwargs = {"current": GOOD, "data": _data(300)}
    a = _gates({"vs_current": rule}, NOISY, **kwargs)[0].details
    b = _gates({"vs_current": rule}, NOISY, **kwargs)[0].details
    c = _gates({"vs_current": {**rule, "seed": 1}}, NOISY, **kwargs)[0].details
    assert (a["ci_low"], a["ci_high"]) == (b["ci_low"], b["ci_high"])
    assert (a["ci_low"], a["ci_high"]) != (c["ci_low"], c["ci_high"])


def test_a_current_holder_without_the_metric_fails_the_comparison():
    class LabelsOnly:
        def predict(self, x):
            return (x["x"] > 0).astype(int)

    (check,) = _gates({"vs_current": {"metric": "roc_auc"}}, GOOD, current=LabelsOnly())
    assert not check.passed
    assert check.message == (
        "roc_auc is undefined or not computed for the current model; cannot compare"
    )


def test_policies_may_be_plain_dicts():
    df = _data(300)
    policy = {"thresholds": {"accuracy": 0.5}, "slices": {"columns": ["region"]}}
    ev = evaluate_for_policy(GOOD, df, "y", policy)
    assert set(ev.slice_metrics["slice_column"]) == {"region"}
    (check,) = run_gates(policy, candidate=GOOD, candidate_eval=ev, data=df, target="y")
    assert check.passed


def test_bootstrap_needs_the_current_model_not_only_its_evaluation():
    df = _data(300)
    policy = Policy.from_dict({"vs_current": {"metric": "roc_auc", "bootstrap": 100}})
    kwargs = {"candidate": GOOD, "candidate_eval": evaluate(GOOD, df, "y"), "data": df}
    with pytest.raises(InvalidInput, match="needs the current model itself"):
        run_gates(policy, **kwargs, target="y", current_eval=evaluate(NOISY, df, "y"))


def test_regression_vs_current_with_bootstrap():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"x": rng.normal(size=1000)})
    df["y"] = 3 * df["x"] + 100 + rng.normal(size=1000)
    exact = Regressor(lambda x: 3 * x["x"] + 100)
    off = Regressor(lambda x: 3 * x["x"] + 101)
    for metric in ("rmse", "r2"):
        rule = {"task": "regression", "vs_current": {"metric": metric, "bootstrap": 200}}
        assert not _gates(rule, off, df, current=exact)[0].passed
        assert _gates(rule, exact, df, current=off)[0].passed


# The bootstrap kernel scores a resample through counts; it must equal scikit-learn on the
# resampled rows themselves (with tied scores, and for multiclass macro averages).
CLASSIFICATION = ["accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss"]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("metric", CLASSIFICATION)
def test_resampled_classification_metrics_equal_sklearn(metric, n_classes):
    rng = np.random.default_rng(3)
    n = 400
    y = rng.integers(0, n_classes, n)
    p = np.round(rng.random((n, n_classes)), 1) + 0.01  # many tied scores
    p /= p.sum(axis=1, keepdims=True)
    given = p[:, 1] if n_classes == 2 else p
    enc, _ = encode_classification(pl.Series("y", y), "y", None, given, None, None, 0.5)
    draws = rng.integers(0, n, (4, n))
    got = resampled_metric(metric, enc, draws)
    for value, rows in zip(got, draws, strict=True):
        expected = _sklearn(metric, y[rows], p[rows], enc.pred[rows], n_classes)
        assert value == pytest.approx(expected, abs=1e-12)


def _sklearn(metric, y, p, pred, n_classes):
    average = "binary" if n_classes == 2 else "macro"
    if metric in ("precision", "recall", "f1"):
        return getattr(skm, f"{metric}_score")(y, pred, average=average)
    if metric == "accuracy":
        return skm.accuracy_score(y, pred)
    if metric == "roc_auc":
        return skm.roc_auc_score(y, p[:, 1] if n_classes == 2 else p, multi_class="ovr")
    if metric == "pr_auc":
        scored = [1] if n_classes == 2 else range(n_classes)
        return np.mean([skm.average_precision_score(y == c, p[:, c]) for c in scored])
    return skm.log_loss(y, p, labels=list(range(n_classes)))


@pytest.mark.parametrize("metric", ["rmse", "mae", "r2", "nrmse", "mape"])
def test_resampled_regression_metrics_equal_sklearn(metric):
    rng = np.random.default_rng(4)
    n = 300
    y = rng.normal(size=n) * 10 + 1e6
    y[:3] = 0
    pred = y + rng.normal(size=n)
    draws = rng.integers(0, n, (4, n))
    got = resampled_metric(metric, (y, pred), draws)
    for value, rows in zip(got, draws, strict=True):
        yy, pp = y[rows], pred[rows]
        rmse = math.sqrt(skm.mean_squared_error(yy, pp))
        nonzero = yy != 0
        expected = {
            "rmse": rmse,
            "mae": skm.mean_absolute_error(yy, pp),
            "r2": skm.r2_score(yy, pp),
            "nrmse": rmse / (yy.max() - yy.min()),
            "mape": np.mean(np.abs((pp - yy)[nonzero] / yy[nonzero])),
        }[metric]
        assert value == pytest.approx(expected, rel=1e-9)


# --- slices -----------------------------------------------------------------------------


def test_a_bad_slice_fails_its_floor_and_is_named_with_the_shortfall():
    policy = {"slices": {"columns": ["region"], "min": {"recall": 0.8}}}
    checks = _gates(policy)
    assert [c.slice for c in checks] == ["region=east", "region=north", "region=south"]
    east, north, south = checks
    assert east.passed
    assert north.passed
    assert not south.passed
    assert south.name == "slice_min:recall"
    assert south.value < 0.8
    n = south.details["n"]
    assert south.message == (
        f"recall on slice region=south is {south.value:.4g}, below the floor 0.8 by "
        f"{0.8 - south.value:.4g} (n={n})"
    )
    assert summarize(checks) == (False, [south.message])


def test_the_gap_between_slices_is_bounded():
    checks = _gates({"slices": {"columns": ["region"], "max_gap": {"roc_auc": 0.2}}})
    (gap,) = checks
    assert gap.name == "slice_gap:roc_auc"
    assert not gap.passed
    assert gap.slice == "region=south"
    assert gap.details["column"] == "region"
    assert "roc_auc gap across slices of region is" in gap.message
    assert "worst region=south" in gap.message
    assert f"above the maximum 0.2 by {gap.value - 0.2:.4g}" in gap.message
    (wide,) = _gates({"slices": {"columns": ["region"], "max_gap": {"roc_auc": 0.9}}})
    assert wide.passed


def test_small_slices_are_reported_not_gated():
    df = _data(1500)
    west = pd.DataFrame({"x": [1.0] * 10, "noise": 0.0, "region": "west", "y": 0})
    df = pd.concat([df[df["region"] != "south"], west], ignore_index=True)
    rules = {"min": {"accuracy": 0.9}, "max_gap": {"accuracy": 0.05}, "min_rows": 30}
    checks = _gates({"slices": {"columns": ["region"], **rules}}, data=df)
    small = next(c for c in checks if c.slice == "region=west")
    assert small.passed
    assert small.value == 0.0
    assert small.details == {"n": 10, "gated": False}
    assert "on too few rows (10 < min_rows 30): reported, not gated" in small.message
    gap = _only(checks, "slice_gap:accuracy")
    assert gap.passed  # west's 0.0 would be a gap of 1.0, but it is not gated
    assert summarize(checks)[0]


def test_without_columns_every_slice_of_the_evaluation_is_gated():
    df = _data(600)
    policy = Policy.from_dict({"slices": {"min": {"recall": 0.8}}})
    ev = evaluate(GOOD, df, "y", slices=["region", ("x", [-10, 0, 10])])
    checks = run_gates(policy, candidate=GOOD, candidate_eval=ev, data=df, target="y")
    assert {c.slice for c in checks} == {
        "region=east", "region=north", "region=south", "x=[-10, 0)", "x=[0, 10)"
    }  # fmt: skip


def test_a_slice_where_the_metric_is_undefined_is_reported_not_gated():
    df = _data(600)
    df.loc[df["region"] == "east", "y"] = 0  # no positives: recall is undefined there
    (east, *_) = _gates({"slices": {"columns": ["region"], "min": {"recall": 0.8}}}, data=df)
    assert east.slice == "region=east"
    assert east.passed
    assert math.isnan(east.value)
    assert east.message == "recall on slice region=east is undefined: reported, not gated"
    assert east.to_dict()["value"] is None


def test_slices_missing_from_the_evaluation_are_an_error():
    df = _data(300)
    policy = Policy.from_dict({"slices": {"columns": ["region"], "min": {"recall": 0.5}}})
    ev = evaluate(GOOD, df, "y")  # evaluated without slices
    with pytest.raises(InvalidInput, match="no slices of 'region'"):
        run_gates(policy, candidate=GOOD, candidate_eval=ev, data=df, target="y")


# --- smoke tests ------------------------------------------------------------------------


def test_smoke_tests_expect_and_bounds():
    tests = [
        {"input": {"region": "north", "noise": 0.0, "x": 2.0}, "expect": 1},
        {"input": {"x": -2.0, "noise": 0.0, "region": "south"}, "expect": 1},
        {"input": {"x": 0.0, "noise": 0, "region": "east"}, "expect_between": [0.4, 0.6],
         "output": "proba"},
        {"input": {"x": 3.0, "noise": 0, "region": "east"}, "expect_between": [0, 0.5],
         "output": "proba"},
        {"input": {"x": 0.0, "noise": 0, "region": "east"}, "expect": 0.50001,
         "output": "proba", "tolerance": 0.001},
    ]  # fmt: skip
    checks = _gates({"smoke_tests": tests})
    assert [c.name for c in checks] == [f"smoke_test:{i}" for i in range(1, 6)]
    assert [c.passed for c in checks] == [True, False, True, False, True]
    assert checks[1].message == (
        "smoke test 2 (x=-2.0, noise=0.0, region=south): predict gave 0, but expected 1"
    )
    assert checks[2].value == 0.5
    assert checks[3].message.endswith("proba gave 0.9999, outside [0, 0.5]")


def test_a_smoke_test_whose_model_raises_fails_with_the_error():
    class Picky:
        def predict(self, x):
            if "income" not in x:
                raise KeyError("income")
            return np.zeros(len(x))

    data = pd.DataFrame({"income": [1.0] * 50, "y": [0] * 25 + [1] * 25})
    policy = {"task": "regression", "smoke_tests": [{"name": "no income", "input": {"a": 1},
                                                     "expect": 0}]}  # fmt: skip
    (check,) = _gates(policy, Picky(), data)
    assert not check.passed
    assert check.message == "smoke test 1 'no income' (a=1): predict raised KeyError: 'income'"


def test_smoke_test_inputs_follow_the_column_order_of_the_data():
    from sklearn.linear_model import LogisticRegression

    df = _data(300)[["x", "noise", "y"]]
    fitted = LogisticRegression().fit(df[["x", "noise"]], df["y"])  # checks feature order
    tests = [{"input": {"noise": 0.0, "x": 3.0}, "expect": 1}]
    assert _gates({"smoke_tests": tests}, fitted, df)[0].passed


# --- latency and size -------------------------------------------------------------------


def test_a_slow_model_fails_a_tight_latency_budget():
    slow = Scorer(lambda x: _sigmoid(x["x"]), delay=0.003)
    (check,) = _gates({"latency_p95_ms": 1}, slow, _data(200))
    assert not check.passed
    assert check.name == "latency_p95"
    assert check.value >= 3
    assert check.details["calls"] == 50
    assert slow.calls >= 55 + 1  # 5 warm-ups and 50 timed calls, after evaluating
    assert check.message.startswith("p95 latency of predict on one row is ")
    assert "above the budget 1 ms by" in check.message


def test_latency_uses_the_input_example_when_the_model_has_one():
    seen = []

    class WithExample(Scorer):
        input_example = pd.DataFrame({"x": [0.5, 1.5], "noise": 0.0, "region": "north"})

        def predict(self, x):
            seen.append(len(x))
            return super().predict(x)

    (check,) = _gates({"latency_p95_ms": 1000}, WithExample(lambda x: _sigmoid(x["x"])))
    assert check.passed
    assert "within the budget 1000 ms" in check.message
    assert seen == [1] * 55


def test_model_size_budget():
    (small,) = _gates({"max_size_mb": 1}, size_bytes=500_000)
    assert small.passed
    assert small.value == pytest.approx(500_000 / 2**20)
    (big,) = _gates({"max_size_mb": 1}, size_bytes=3 * 2**20)
    assert not big.passed
    assert big.message == "model size is 3 MB, above the budget 1 MB by 2 MB"
    (unknown,) = _gates({"max_size_mb": 1})
    assert not unknown.passed
    assert "pass size_bytes=" in unknown.message


def test_a_packaged_model_gives_its_size_example_and_predictions(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from loopwise.registry.packaging import load_package, save_package

    df = _data(300)[["x", "noise", "y"]]
    fitted = LogisticRegression().fit(df[["x", "noise"]], df["y"])
    save_package(fitted, tmp_path / "pkg", input_example=df[["x", "noise"]].head(3))
    loaded = load_package(tmp_path / "pkg")
    policy = {
        "thresholds": {"roc_auc": 0.7},
        "smoke_tests": [{"input": {"x": 2.0, "noise": 0.0}, "expect": 1}],
        "latency_p95_ms": 1000,
        "max_size_mb": 10,
    }
    checks = _gates(policy, loaded, df)
    assert [c.passed for c in checks] == [True, True, True, True]
    size = sum(f.size for f in loaded.manifest.files)
    assert checks[-1].details == {"size_bytes": size}


# --- the whole policy -------------------------------------------------------------------


def test_the_issue_policy_runs_every_check_in_order_and_serialises():
    df = _data()
    policy = {
        "task": "classification",
        "thresholds": {"roc_auc": 0.75, "recall": 0.6},
        "vs_current": {"metric": "roc_auc", "max_drop": 0.01, "bootstrap": 200},
        "slices": {"columns": ["region"], "min": {"recall": 0.4}, "max_gap": {"recall": 0.6}},
        "smoke_tests": [{"input": {"x": 2.0, "noise": 0.0, "region": "north"}, "expect": 1}],
        "latency_p95_ms": 1000,
        "max_size_mb": 200,
    }
    checks = _gates(policy, GOOD, df, current=NOISY, size_bytes=10_000)
    assert [c.name for c in checks] == [
        "threshold:roc_auc", "threshold:recall", "vs_current:roc_auc",
        "slice_min:recall", "slice_min:recall", "slice_min:recall", "slice_gap:recall",
        "smoke_test:1", "latency_p95", "model_size",
    ]  # fmt: skip
    passed, reasons = summarize(checks)
    assert passed, reasons
    for check in checks:
        document = json.loads(json.dumps(check.to_dict(), allow_nan=False))
        assert set(document) == {"name", "passed", "value", "limit", "slice", "message", "details"}


def test_check_to_dict_turns_nan_and_numpy_into_json():
    check = GateResult(
        "x", True, np.float64("nan"), np.int64(3), "m", details={"a": (np.bool_(1),)}
    )
    assert check.to_dict()["value"] is None
    assert check.to_dict()["limit"] == 3
    assert check.to_dict()["details"] == {"a": [True]}


# --- speed ------------------------------------------------------------------------------


@pytest.mark.slow
def test_paired_bootstrap_of_roc_auc_on_100k_rows_beats_a_loop_over_sklearn():
    from loopwise.evaluation.bootstrap import paired_bootstrap
    from loopwise.evaluation.policy import VsCurrent

    n, rng = 100_000, np.random.default_rng(0)
    x, noise = rng.normal(size=n), rng.normal(size=n)
    y = (x + rng.normal(size=n) > 0).astype(int)
    encoded = [
        encode_classification(pl.Series("y", y), "y", None, _sigmoid(s), None, None, 0.5)[0]
        for s in (x, x + noise)
    ]
    start = time.perf_counter()
    diffs = paired_bootstrap("roc_auc", *encoded, VsCurrent("roc_auc", bootstrap=1000))
    ours = time.perf_counter() - start
    assert diffs.shape == (1000,)

    start = time.perf_counter()
    for _ in range(50):
        rows = rng.integers(0, n, n)
        skm.roc_auc_score(y[rows], encoded[0].proba[rows, 1])
        skm.roc_auc_score(y[rows], encoded[1].proba[rows, 1])
    loop = (time.perf_counter() - start) * 1000 / 50
    print(
        f"\npaired bootstrap, ROC-AUC, 100,000 rows x 1,000 resamples: loopwise {ours:.2f} s, "
        f"loop over sklearn {loop:.1f} s (extrapolated from 50), ratio {loop / ours:.1f}x"
    )
    assert loop / ours >= 5


def test_a_value_a_hair_below_its_floor_is_shown_apart_from_it():
    from loopwise.evaluation.gates import _against, _f, digits_apart

    value, floor = 0.99999921, 0.99999999
    passed, tail = _against(value, floor, upper=False, kind="floor")
    assert not passed
    shown = _f(value, digits_apart(value, floor))
    assert shown != "1"
    assert f"is {shown}, below the floor 0.99999999" == f"is {shown}{tail.split(' by ')[0]}"
    assert digits_apart(0.5, 0.6) == 4  # the usual four digits when they differ there
