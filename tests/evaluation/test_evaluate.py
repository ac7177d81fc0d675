"""evaluate(): slicing, task inference, models and stored outputs, JSON, HTML, errors, speed."""

from __future__ import annotations

import json
import math
import re
import time

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression

from loopwise.errors import InvalidInput
from loopwise.evaluation.evaluate import Evaluation, evaluate
from loopwise.evaluation.metrics import LabelMismatch


def _data(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "region": rng.choice(["north", "south", "east"], n),
            "age": rng.integers(0, 100, n).astype(float),
            "y": (x1 + 0.5 * rng.normal(size=n) > 0).astype(int),
        }
    )


class Counting:
    """Wraps a fitted model; counts calls and checks what the model is given."""

    def __init__(self, model, features):
        self.model, self.features = model, features
        self.calls: list[str] = []
        if hasattr(model, "classes_"):
            self.classes_ = model.classes_

    def _x(self, x):
        assert isinstance(x, pd.DataFrame)
        assert "y" not in x.columns
        return x[self.features]

    def predict(self, x):
        self.calls.append("predict")
        return self.model.predict(self._x(x))

    def predict_proba(self, x):
        self.calls.append("predict_proba")
        return self.model.predict_proba(self._x(x))


class RegressorOnly:
    def __init__(self, model, features):
        self.inner = Counting(model, features)

    def predict(self, x):
        return self.inner.predict(x)


def _counts(ev: Evaluation, column: str) -> dict[str, int]:
    rows = ev.slice_metrics[ev.slice_metrics["slice_column"] == column]
    return dict(zip(rows["slice_value"], rows["n"], strict=True))


# --- slicing ---------------------------------------------------------------------------


def test_numeric_bins_with_out_of_range_and_missing():
    df = pd.DataFrame(
        {
            "age": [-1.0, 0.0, 29.9, 30.0, 49.0, 50.0, 119.0, 120.0, 500.0, np.nan, None],
            "y": [0, 1] * 5 + [1],
        }
    )
    ev = evaluate(None, df, "y", slices=[("age", [0, 30, 50, 120])], predictions=df["y"])
    assert _counts(ev, "age") == {
        "[0, 30)": 2,
        "[30, 50)": 2,
        "[50, 120)": 2,
        "(out of range)": 3,  # -1, 120 (bins are left-closed) and 500
        "(missing)": 2,
    }
    assert ev.slice_metrics["accuracy"].eq(1.0).all()


def test_bins_with_float_and_infinite_edges_and_an_empty_bin():
    df = pd.DataFrame({"v": [0.2, 0.7, 3.0, 100.0], "y": [0, 1, 0, 1]})
    ev = evaluate(
        None, df, "y", slices=[("v", [-np.inf, 0.5, 1.5, 2.5, np.inf])], predictions=df["y"]
    )
    assert _counts(ev, "v") == {"[-inf, 0.5)": 1, "[0.5, 1.5)": 1, "[2.5, inf)": 2}


def test_value_slices_put_nulls_and_nan_in_a_missing_slice():
    df = pl.DataFrame(
        {
            "city": ["a", None, "b", "a", None],
            "score": [1.0, float("nan"), None, 1.0, 2.0],
            "flag": [True, False, True, None, True],
            "y": [1, 0, 1, 0, 1],
        }
    )
    ev = evaluate(None, df, "y", slices=["city", "score", "flag"], predictions=[1, 0, 0, 0, 1])
    assert _counts(ev, "city") == {"a": 2, "b": 1, "(missing)": 2}
    assert _counts(ev, "score") == {"1.0": 2, "2.0": 1, "(missing)": 2}
    assert _counts(ev, "flag") == {"False": 1, "True": 3, "(missing)": 1}
    city = ev.slice_metrics.set_index("slice_value").loc["b"]
    assert city["accuracy"] == 0.0


def test_crossed_slices():
    df = _data()
    ev = evaluate(None, df, "y", slices=[("region", "y")], predictions=df["y"])
    counts = _counts(ev, "region & y")
    expected = df.groupby(["region", "y"]).size()
    assert counts == {f"{r} & {y}": n for (r, y), n in expected.items()}


# --- task inference, models and stored outputs ------------------------------------------


@pytest.mark.parametrize(
    ("target", "kwargs", "task"),
    [
        (["a", "b"] * 50, {}, "classification"),
        ([True, False] * 50, {}, "classification"),
        (list(range(4)) * 25, {}, "classification"),
        (list(range(100)), {}, "regression"),
        (list(np.linspace(0, 1, 100)), {}, "regression"),
        ([0.0, 1.0] * 50, {}, "classification"),
    ],
)
def test_task_is_inferred_from_the_target(target, kwargs, task):
    df = pd.DataFrame({"y": target})
    ev = evaluate(None, df, "y", predictions=df["y"], **kwargs)
    assert ev.task == task


def test_many_integer_classes_with_probabilities_are_classification():
    y = np.arange(100) % 30
    proba = np.eye(30)[y]
    ev = evaluate(None, pd.DataFrame({"y": y}), "y", probabilities=proba)
    assert ev.task == "classification"
    assert ev.metrics["accuracy"] == 1.0


def test_classifier_with_predict_proba_is_called_once():
    df = _data()
    features = ["x1", "x2"]
    model = Counting(LogisticRegression().fit(df[features], df["y"]), features)
    ev = evaluate(model, df, "y", slices=["region"], threshold=0.3)
    assert model.calls == ["predict_proba"]
    p = model.model.predict_proba(df[features])[:, 1]
    pred = (p >= 0.3).astype(int)
    assert ev.metrics["recall"] == pytest.approx(skm.recall_score(df["y"], pred))
    assert ev.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(df["y"], p))
    assert ev.threshold == 0.3


def test_classifier_without_predict_proba_uses_predict():
    df = _data()
    inner = LogisticRegression().fit(df[["x1", "x2"]], df["y"])
    model = RegressorOnly(inner, ["x1", "x2"])
    ev = evaluate(model, pl.from_pandas(df), "y", task="classification")
    assert model.inner.calls == ["predict"]
    assert "roc_auc" not in ev.metrics
    assert ev.metrics["accuracy"] == pytest.approx(inner.score(df[["x1", "x2"]], df["y"]))


def test_regressor_from_a_parquet_file(tmp_path):
    df = _data()
    df["y"] = 2 * df["x1"] + 0.1 * np.random.default_rng(1).normal(size=len(df))
    model = RegressorOnly(LinearRegression().fit(df[["x1", "x2"]], df["y"]), ["x1", "x2"])
    path = tmp_path / "eval.parquet"
    df.to_parquet(path)
    ev = evaluate(model, path, "y", slices=[("age", [0, 50, 100])])
    assert ev.task == "regression"
    assert model.inner.calls == ["predict"]
    assert ev.metrics["r2"] > 0.99
    assert ev.baseline_metrics["r2"] == pytest.approx(0.0, abs=1e-12)
    assert ev.lift["rmse"] < 0


def test_string_labels_with_positive_label_and_class_order_of_the_model():
    df = _data()
    df["y"] = np.where(df["y"] == 1, "yes", "no")
    p_yes = np.clip(0.5 + df["x1"] / 4, 0, 1)
    proba = np.column_stack([p_yes, 1 - p_yes])  # columns ordered [yes, no] by the model

    class Fixed:
        classes_ = np.array(["yes", "no"])

        def predict(self, x):
            raise AssertionError("predict_proba is enough")

        def predict_proba(self, x):
            return proba

    ev = evaluate(Fixed(), df, "y", positive_label="yes")
    assert ev.labels == ["no", "yes"]
    assert ev.positive_label == "yes"
    assert ev.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(df["y"] == "yes", p_yes))
    pred = np.where(p_yes >= 0.5, "yes", "no")
    assert ev.metrics["precision"] == pytest.approx(
        skm.precision_score(df["y"], pred, pos_label="yes")
    )
    flipped = evaluate(None, df, "y", probabilities=1 - p_yes, positive_label="no")
    assert flipped.metrics["roc_auc"] == pytest.approx(ev.metrics["roc_auc"])


def test_predictions_and_probabilities_passed_together():
    df = _data()
    p = np.clip(0.5 + df["x1"] / 3, 0, 1).to_numpy()
    pred = 1 - (p >= 0.5).astype(int)  # deliberately not the thresholded probabilities
    ev = evaluate(None, df, "y", predictions=pred, probabilities=np.column_stack([1 - p, p]))
    assert ev.metrics["accuracy"] == pytest.approx(skm.accuracy_score(df["y"], pred))
    assert ev.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(df["y"], p))


# --- outputs ----------------------------------------------------------------------------


def _evaluation() -> tuple[pd.DataFrame, Evaluation]:
    df = _data(600)
    df.loc[df.index[:40], "region"] = "tiny"
    df.loc[df.index[:40], "y"] = 1  # a one-class slice: ROC-AUC undefined
    p = np.clip(0.5 + df["x1"].to_numpy() / 3, 0, 1)
    p[:40] = 0.2  # and badly predicted: flagged
    ev = evaluate(None, df, "y", slices=["region", ("age", [0, 50, 100])], probabilities=p)
    return df, ev


def test_json_round_trip_turns_nan_into_none():
    _, ev = _evaluation()
    document = ev.to_dict()
    text = json.dumps(document, allow_nan=False)
    assert document["format_version"] == 1
    assert document["loopwise_version"]
    tiny = next(r for r in document["slice_metrics"] if r["slice_value"] == "tiny")
    assert tiny["roc_auc"] is None
    again = Evaluation.from_dict(json.loads(text))
    assert again.to_dict() == document
    assert math.isnan(again.slice_metrics.set_index("slice_value").loc["tiny", "roc_auc"])
    pd.testing.assert_frame_equal(again.slice_metrics, ev.slice_metrics)
    pd.testing.assert_frame_equal(again.baseline_slice_metrics, ev.baseline_slice_metrics)
    with pytest.raises(InvalidInput, match="format_version"):
        Evaluation.from_dict({**document, "format_version": 99})


def test_summary_lists_metrics_and_flagged_slices():
    _, ev = _evaluation()
    text = ev.summary()
    assert "binary classification of 'y'" in text
    assert "roc_auc" in text
    assert "region=tiny" in text
    flagged = ev.flagged_slices()
    assert {"tiny"} <= set(flagged["slice_value"])
    assert (flagged["gap"] > 0.05).all()


def test_html_report_is_self_contained(tmp_path):
    _, ev = _evaluation()
    path = ev.to_html(tmp_path / "report" / "evaluation.html")
    text = path.read_text(encoding="utf-8")
    assert "<svg" in text
    assert "Confusion matrix" in text
    for column in ("region", "age"):
        assert f"Slices by <code>{column}</code>" in text
    assert "(n=40)" in text  # row count per slice
    assert "badge error" in text  # the flagged slice
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}


def test_regression_html_and_no_slices(tmp_path):
    df = _data()
    ev = evaluate(None, df, "x1", predictions=df["x1"] * 0.9)
    assert ev.task == "regression"
    assert list(ev.slice_metrics.columns[:3]) == ["slice_column", "slice_value", "n"]
    assert ev.slice_metrics.empty
    text = ev.to_html(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "nrmse" in text
    assert Evaluation.from_dict(json.loads(json.dumps(ev.to_dict()))).to_dict() == ev.to_dict()


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "label"}, r"target column 'label' is not in the data"),
        ({"slices": ["city"]}, r"slice column 'city' is not in the data"),
        ({"slices": [("age", [0, 50, 30])]}, r"strictly increasing"),
        ({"slices": [("region", [0, 1])]}, r"'region' has type String.*numeric"),
        ({"slices": [("age", ["a", "b"])]}, r"must be numbers"),
        ({"slices": [42]}, r"slice 42 is not understood"),
        ({"slices": ["region", "region"]}, r"more than once"),
        ({"probabilities": np.full((10, 2), 0.5)}, r"shape \(10, 2\) but the data has 400 rows"),
        ({"probabilities": np.full((400, 3), 0.3)}, r"3 columns but there are 2 classes"),
        ({"probabilities": np.full(400, 1.5)}, r"\[0, 1\].*decision_function"),
        ({"predictions": [0, 1]}, r"2 values but the data has 400 rows"),
        ({"predictions": ["a"] * 400}, r"not labels like those of target 'y'"),
        ({"positive_label": 7}, r"positive_label=7 applies to binary"),
        ({"positive_label": "yes"}, r"positive_label='yes' is not a label like.*\{0, 1\}"),
        ({"threshold": 2.0}, r"threshold must be a probability"),
        ({"task": "ranking"}, r"task must be 'classification', 'regression' or None"),
    ],
)
def test_bad_input_names_the_problem(kwargs, message):
    df = _data()
    kwargs.setdefault("predictions", None if "probabilities" in kwargs else df["y"])
    with pytest.raises(InvalidInput, match=message):
        evaluate(None, df, **kwargs)


def test_a_model_trained_on_0_1_is_refused_against_a_yes_no_target():
    df = _data()
    yes_no = np.where(df["y"] == 1, "Yes", "No")
    features = ["x1", "x2"]
    on_numbers = LogisticRegression().fit(df[features], df["y"])
    with pytest.raises(LabelMismatch) as found:
        evaluate(on_numbers, df.assign(y=yes_no), "y")
    text = str(found.value)
    assert "classes_ {0, 1} and the labels of target 'y' {'No', 'Yes'} share no value" in text
    assert "{'No': 0, 'Yes': 1}" in text  # how to fix it
    assert (found.value.model_labels, found.value.target_labels) == ([0, 1], ["No", "Yes"])
    with pytest.raises(LabelMismatch, match=r"predictions \{0, 1\}.*\{'No', 'Yes'\}"):
        evaluate(None, df.assign(y=yes_no), "y", predictions=on_numbers.predict(df[features]))
    on_text = LogisticRegression().fit(df[features], yes_no)  # the other way round
    with pytest.raises(LabelMismatch, match=r"\{'No', 'Yes'\} \(String\).*\{0, 1\} \(Int64\)"):
        evaluate(on_text, df, "y")


@pytest.mark.parametrize(
    ("target", "predictions"),
    [
        (lambda y: y.astype(str), lambda p: p),  # "0"/"1" and 0/1: the same labels
        (lambda y: y, lambda p: p.astype(str)),
        (lambda y: y.astype(bool), lambda p: p),
        (lambda y: y, lambda p: p.astype(bool)),
        (lambda y: y.astype(float), lambda p: p),
    ],
)
def test_labels_written_another_way_are_the_same_labels(target, predictions):
    df = _data()
    pred = (df["x1"] > 0).astype(int).to_numpy()
    ev = evaluate(None, df.assign(y=target(df["y"].to_numpy())), "y", predictions=predictions(pred))
    assert len(ev.labels) == 2
    assert ev.metrics["accuracy"] == pytest.approx(skm.accuracy_score(df["y"], pred))


def test_labels_sharing_no_value_are_refused_but_a_true_zero_is_scored():
    df = _data()
    pred = (df["x1"] > 0).astype(int).to_numpy()
    as_floats = df.assign(y=np.where(df["y"] == 1, "1.0", "0.0"))
    with pytest.raises(LabelMismatch, match=r"predictions \{0, 1\}.*\{'0.0', '1.0'\}"):
        evaluate(None, as_floats, "y", predictions=pred)
    cased = df.assign(y=np.where(df["y"] == 1, "Yes", "No"))
    with pytest.raises(LabelMismatch, match=r"\{'no', 'yes'\}.*\{'No', 'Yes'\}"):
        evaluate(None, cased, "y", predictions=np.where(pred == 1, "yes", "no"))
    many = df.assign(y=np.arange(len(df)) % 15)
    with pytest.raises(LabelMismatch) as found:
        evaluate(None, many, "y", predictions=np.arange(len(df)) % 15 + 100)
    assert "{100, 101, 102, 103, 104, 105, 106, 107, 108, 109, ... and more}" in str(found.value)
    assert "e.g." not in str(found.value)  # no mapping guessed past ten labels
    # one label each side, of the same kind: every row wrong is a real score, not a mismatch
    ones = df.assign(y=1)
    ev = evaluate(None, ones, "y", predictions=np.zeros(len(df), dtype=int))
    assert ev.metrics["accuracy"] == 0.0
    # partial overlap (a class the model never predicts here) is scored
    ev = evaluate(None, df, "y", predictions=pred * 2)
    assert ev.labels == [0, 1, 2]


def test_continuous_target_as_classification_is_refused():
    df = _data()
    with pytest.raises(InvalidInput, match=r"'x1' looks continuous.*task='regression'"):
        evaluate(None, df, "x1", task="classification", predictions=df["x1"])


def test_other_errors():
    df = _data()
    with pytest.raises(InvalidInput, match="no rows"):
        evaluate(None, df.iloc[:0], "y", predictions=[])
    with pytest.raises(InvalidInput, match=r"model of type str has no .predict"):
        evaluate("model", df, "y")
    with pytest.raises(InvalidInput, match="nothing to evaluate"):
        evaluate(None, df, "y")
    with pytest.raises(InvalidInput, match="not both"):
        evaluate(LogisticRegression(), df, "y", predictions=df["y"])
    with pytest.raises(InvalidInput, match="missing values"):
        evaluate(None, df.assign(y=df["y"].where(df["x1"] > 0)), "y", predictions=df["y"])
    with pytest.raises(InvalidInput, match="numeric target"):
        evaluate(None, df, "region", task="regression", predictions=np.zeros(len(df)))
    with pytest.raises(InvalidInput, match="probabilities= apply to classification"):
        evaluate(None, df, "x1", probabilities=np.full(len(df), 0.5))
    with pytest.raises(InvalidInput, match="one value per row, but 'region' has 3 classes"):
        evaluate(None, df, "region", probabilities=np.full(len(df), 0.5))


# --- speed ------------------------------------------------------------------------------


@pytest.mark.slow
def test_one_million_rows_fifty_slices_beat_a_loop_over_sklearn():
    n = 1_000_000
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "region": rng.choice([f"r{i}" for i in range(10)], n),
            "segment": rng.integers(0, 20, n),
            "age": rng.uniform(0, 100, n),
            "y": (x + rng.normal(size=n) > 0).astype(int),
        }
    )
    p = 1 / (1 + np.exp(-x))
    slices = ["region", "segment", ("age", np.linspace(0, 100, 21))]  # 10 + 20 + 20 slices

    start = time.perf_counter()
    ev = evaluate(None, df, "y", slices=slices, probabilities=p)
    ours = time.perf_counter() - start
    assert len(ev.slice_metrics) == 50

    start = time.perf_counter()
    y = df["y"].to_numpy()
    pred = (p >= 0.5).astype(int)
    age_bin = pd.cut(df["age"], np.linspace(0, 100, 21), right=False)
    naive = {"overall": _sklearn_metrics(y, pred, p)}
    for name, key in (("region", df["region"]), ("segment", df["segment"]), ("age", age_bin)):
        for value, index in key.groupby(key, observed=True).indices.items():
            naive[(name, value)] = _sklearn_metrics(y[index], pred[index], p[index])
    loop = time.perf_counter() - start
    assert len(naive) == 51
    assert ev.metrics["roc_auc"] == pytest.approx(naive["overall"]["roc_auc"])

    print(
        f"\n1,000,000 rows, 50 slices: loopwise evaluate {ours:.3f} s (model and baseline), "
        f"loop over sklearn metrics {loop:.3f} s (model only), ratio {loop / ours:.1f}x"
    )
    assert loop / ours >= 5


def _sklearn_metrics(y, pred, p):
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=np.nan),
        "recall": skm.recall_score(y, pred, zero_division=np.nan),
        "f1": skm.f1_score(y, pred, zero_division=np.nan),
        "roc_auc": skm.roc_auc_score(y, p),
        "pr_auc": skm.average_precision_score(y, p),
        "log_loss": skm.log_loss(y, p, labels=[0, 1]),
        "confusion_matrix": skm.confusion_matrix(y, pred, labels=[0, 1]),
    }
