"""Training-data quality report: each problem is found, a clean frame is quiet."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from loopwise._version import __version__
from loopwise.data.quality.report import QualityReport, data_quality
from loopwise.errors import InvalidInput

N = 2000


def kinds(report: QualityReport, severity: str | None = None) -> dict[str, list]:
    """Finding kind -> list of column tuples, optionally for one severity."""
    out: dict[str, list] = {}
    for f in report.findings:
        if severity is None or f.severity == severity:
            out.setdefault(f.kind, []).append(f.columns)
    return out


@pytest.fixture
def crafted() -> pl.DataFrame:
    """Imbalanced label, outliers, a near-duplicate feature, a leak, conflicting duplicates."""
    rng = np.random.default_rng(7)
    y = (rng.random(N) < 0.05).astype(np.int64)
    a = rng.normal(size=N)
    b = rng.normal(size=N)
    b[rng.choice(N, size=20, replace=False)] = 1e6
    frame = pl.DataFrame(
        {
            "a": a,
            "a_twin": 3 * a + rng.normal(scale=0.1, size=N),
            "b": b,
            "leak": y + rng.normal(scale=0.01, size=N),
            "größe": rng.normal(size=N),
            "colour": rng.choice(["red", "green", "blue"], size=N),
            "y": y,
        }
    )
    flipped = frame.head(3).with_columns((1 - pl.col("y")).alias("y"))
    return pl.concat([frame, flipped])


def test_crafted_frame_has_every_finding(crafted: pl.DataFrame) -> None:
    report = data_quality(crafted, "y")
    found = kinds(report, "warning")
    assert report.task == "classification"
    assert found["class_imbalance"] == [("y",)]
    assert ("b",) in found["outliers"]
    assert found["correlated_features"] == [("a", "a_twin")]
    assert ("leak",) in found["leakage_candidate"]
    assert found["conflicting_duplicates"] == [("y",)]
    assert not kinds(report, "error")

    cb = report.class_balance
    assert cb is not None
    assert cb.labels == (0, 1)
    assert cb.minority == 1
    assert cb.minority_share < 0.1
    assert cb.imbalance_ratio == pytest.approx(cb.counts[0] / cb.counts[1])
    assert sum(cb.shares.values()) == pytest.approx(1.0)

    outliers = {o.column: o for o in report.outliers}
    assert outliers["b"].count == 20
    assert outliers["b"].examples[0]["value"] == 1e6
    assert crafted["b"][outliers["b"].examples[0]["row"]] == 1e6

    pair = report.correlated_pairs[0]
    assert pair.method == "pearson"
    assert pair.value > 0.99

    scores = {s.column: s for s in report.leakage_scores}
    assert scores["leak"].metric == "roc_auc"
    assert scores["leak"].score > 0.95
    assert scores["a"].score < 0.7

    dupes = next(f for f in report.findings if f.kind == "conflicting_duplicates")
    assert dupes.details["groups"] == 3
    assert dupes.details["rows"] == 6
    example = dupes.details["examples"][0]
    assert example["rows"] == 2
    assert sorted(x["value"] for x in example["labels"]) == [0, 1]
    assert set(example["features"]) == set(crafted.columns) - {"y"}


def test_every_finding_explains_itself(crafted: pl.DataFrame) -> None:
    report = data_quality(crafted, "y")
    for f in report.findings:
        assert f.severity in {"error", "warning", "info"}
        assert len(f.message) > 60
        json.dumps(f.details, allow_nan=False)
    severities = [f.severity for f in report.findings]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    text = report.summary()
    assert "class_imbalance" in text
    assert "2,003 rows" in text


def test_clean_frame_has_no_warnings() -> None:
    rng = np.random.default_rng(11)
    frame = pl.DataFrame(
        {
            **{f"x{i}": rng.normal(size=N) for i in range(5)},
            "count": rng.integers(0, 50, size=N),
            "colour": rng.choice(["red", "green", "blue"], size=N),
            "label": rng.choice(["yes", "no"], size=N),
        }
    )
    report = data_quality(frame, "label")
    assert [f for f in report.findings if f.severity != "info"] == []
    assert report.correlated_pairs == ()
    assert max(s.score for s in report.leakage_scores) < 0.6
    assert report.class_balance is not None
    assert report.class_balance.minority_share > 0.45


def test_string_copy_of_the_label_is_an_error() -> None:
    rng = np.random.default_rng(3)
    y = rng.choice(["churn", "stay"], size=N, p=[0.3, 0.7])
    frame = pl.DataFrame(
        {
            "x": rng.normal(size=N),
            "outcome_code": np.where(y == "churn", "C", "S"),
            "same": y,
            "y": y,
        }
    )
    report = data_quality(frame, "y")
    errors = {f.columns[0]: f for f in report.findings if f.kind == "target_copy"}
    assert set(errors) == {"outcome_code", "same"}
    assert errors["same"].details["identical"] is True
    assert errors["outcome_code"].details["identical"] is False
    assert all(f.severity == "error" for f in errors.values())
    # one finding per copy: not reported again as a leakage candidate
    assert "leakage_candidate" not in kinds(report)
    assert {s.column: s.score for s in report.leakage_scores}["same"] == pytest.approx(1.0)


def test_missingness_that_reveals_the_label_is_a_leak() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=N)
    refund = np.where(y == 1, rng.uniform(5, 50, size=N), np.nan)
    report = data_quality(pl.DataFrame({"refund": refund, "y": y}), "y")
    assert ("refund",) in kinds(report, "warning")["leakage_candidate"]


def test_an_id_column_is_not_a_leak() -> None:
    rng = np.random.default_rng(6)
    frame = pl.DataFrame({"id": [f"row-{i}" for i in range(N)], "y": rng.integers(0, 2, size=N)})
    report = data_quality(frame, "y")
    assert report.leakage_scores[0].score < 0.1
    assert "leakage_candidate" not in kinds(report)


def test_multiclass_numeric_leak_and_categorical_redundancy() -> None:
    rng = np.random.default_rng(8)
    y = rng.choice(["cat", "dog", "émeu"], size=N)
    code = np.select([y == "cat", y == "dog"], [0.0, 1.0], 2.0)
    country = rng.choice(["FR", "DE", "IT", "ES"], size=N)
    names = {"FR": "France", "DE": "Germany", "IT": "Italy", "ES": "Spain"}
    frame = pl.DataFrame(
        {
            "code": code + rng.normal(scale=0.01, size=N),
            "country": country,
            "country_name": [names[c] for c in country],
            "x": rng.normal(size=N),
            "animal": y,
        }
    )
    report = data_quality(frame, "animal")
    scores = {s.column: s for s in report.leakage_scores}
    assert scores["code"].metric == "majority_lift"
    assert scores["code"].score > 0.95
    assert scores["x"].score < 0.2
    assert ("code",) in kinds(report)["leakage_candidate"]
    pairs = {p.columns: p for p in report.correlated_pairs}
    assert pairs[("country", "country_name")].method == "cramers_v"
    assert pairs[("country", "country_name")].value > 0.99
    assert report.class_balance is not None
    assert len(report.class_balance.labels) == 3


def test_regression_target() -> None:
    rng = np.random.default_rng(9)
    y = rng.normal(size=N) * 10 + 100
    frame = pl.DataFrame(
        {
            "x": rng.normal(size=N),
            "y_times_two": 2 * y + rng.normal(scale=0.01, size=N),
            "y_copy": y,
            "region": rng.choice(["n", "s", "e", "w"], size=N),
            "price": y,
        }
    )
    report = data_quality(frame, "price")
    assert report.task == "regression"
    assert report.class_balance is None
    assert kinds(report, "error")["target_copy"] == [("y_copy", "price")]
    assert ("y_times_two",) in kinds(report, "warning")["leakage_candidate"]
    scores = {s.column: s for s in report.leakage_scores}
    assert scores["y_times_two"].metric == "spearman"
    assert scores["region"].metric == "category_r"
    assert scores["region"].score < 0.2
    assert scores["x"].score < 0.2


def test_task_inference_and_override() -> None:
    rng = np.random.default_rng(10)
    frame = pl.DataFrame({"x": rng.normal(size=200), "y": rng.integers(0, 3, size=200)})
    assert data_quality(frame, "y").task == "classification"
    assert data_quality(frame, "y", task="regression").task == "regression"
    wide = frame.with_columns(pl.Series("y", rng.integers(0, 1000, size=200)))
    assert data_quality(wide, "y").task == "regression"
    with pytest.raises(InvalidInput, match="'label' is String, not numeric"):
        data_quality(
            pl.DataFrame({"x": [1, 2, 3], "label": ["a", "b", "a"]}), "label", task="regression"
        )


def test_without_a_target() -> None:
    rng = np.random.default_rng(12)
    a = rng.normal(size=N)
    report = data_quality(pl.DataFrame({"a": a, "b": a + 1e-3 * rng.normal(size=N)}))
    assert report.target is None
    assert report.task is None
    assert report.leakage_scores == ()
    assert kinds(report)["correlated_features"] == [("a", "b")]


def test_sampling_is_reported() -> None:
    rng = np.random.default_rng(13)
    frame = pl.DataFrame({"x": rng.normal(size=N), "y": rng.integers(0, 2, size=N)})
    report = data_quality(frame, "y", sample_rows=500)
    assert report.sampled
    assert report.scored_rows == 500
    assert all(s.rows == 500 for s in report.leakage_scores)
    assert kinds(report, "info")["sampled"] == [()]
    assert "sample of 500 rows" in report.summary()
    assert not data_quality(frame, "y").sampled


def test_unlabelled_rows_are_left_out() -> None:
    y = [0, 1, None, 1] * 50
    frame = pl.DataFrame({"x": list(range(200)), "y": y})
    report = data_quality(frame, "y")
    assert report.rows == 200
    assert report.labelled_rows == 150
    assert kinds(report)["unlabelled_rows"] == [("y",)]


def test_pandas_with_unicode_names_mixed_objects_dates_and_nan() -> None:
    rng = np.random.default_rng(14)
    n = 300
    frame = pd.DataFrame(
        {
            "mixed": [1 if i % 3 else "x" for i in range(n)],
            "größe": rng.normal(size=n),
            "когда": pd.date_range("2020-01-01", periods=n, freq="h"),
            "nan_col": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "all_nan": np.full(n, np.nan),
            "标签": rng.choice(["ja", "nein"], size=n),
        }
    )
    report = data_quality(frame, "标签")
    assert report.features == ("mixed", "größe", "когда", "nan_col", "all_nan")
    assert {s.column for s in report.leakage_scores} == set(report.features)
    json.dumps(report.to_dict(), allow_nan=False)


def test_json_round_trip(crafted: pl.DataFrame) -> None:
    report = data_quality(crafted.with_columns(pl.lit(float("nan")).alias("blank")), "y")
    document = report.to_dict()
    assert document["format_version"] == 1
    assert document["loopwise_version"] == __version__
    text = json.dumps(document, allow_nan=False)
    again = QualityReport.from_dict(json.loads(text))
    assert again.to_dict() == document
    assert again.findings == report.findings
    assert again.class_balance == report.class_balance
    assert again.summary() == report.summary()


def test_newer_format_is_refused(crafted: pl.DataFrame) -> None:
    document = data_quality(crafted, "y").to_dict()
    document["format_version"] = 99
    with pytest.raises(InvalidInput, match="format_version 99"):
        QualityReport.from_dict(document)


def test_html_report_is_self_contained(crafted: pl.DataFrame, tmp_path: Path) -> None:
    report = data_quality(crafted, "y")
    path = report.to_html(tmp_path / "reports" / "quality.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<svg" in text
    assert set(re.findall(r"https?://[^\s\"'<>)]+", text)) == {"http://www.w3.org/2000/svg"}
    assert "<script" not in text
    for heading in (
        "Class balance",
        "Findings",
        "Leakage candidates",
        "Correlated feature pairs",
        "Outliers",
        "Conflicting duplicates",
    ):
        assert heading in text
    assert "größe" in text
    assert "a_twin" in text


def test_html_escapes_column_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(15)
    a = rng.normal(size=200)
    frame = pl.DataFrame({"<b>": a, "<i>": a, "y": rng.integers(0, 2, size=200)})
    text = data_quality(frame, "y").to_html(tmp_path / "q.html").read_text(encoding="utf-8")
    assert "<b>" not in text
    assert "&lt;b&gt;" in text


@pytest.mark.parametrize(
    ("frame", "target", "message"),
    [
        (pl.DataFrame({"x": [1, 2]}), "label", "'label' is not in the data; its columns are 'x'"),
        (pl.DataFrame({"x": [1, 2, 3], "y": [1, 1, 1]}), "y", "'y' has the same value"),
        (pl.DataFrame({"x": [1, 2], "y": [None, None]}), "y", "'y' has no values"),
        (pl.DataFrame({"x": [1.0, 2.0], "y": [float("nan")] * 2}), "y", "'y' has no values"),
        (pl.DataFrame(schema={"x": pl.Int64, "y": pl.Int64}), "y", "data is empty"),
        (pl.DataFrame(), None, "data is empty"),
    ],
)
def test_bad_input_is_a_clear_error(frame: pl.DataFrame, target: str | None, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        data_quality(frame, target)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"correlation_threshold": 1.5}, "'correlation_threshold' parameter of data_quality"),
        ({"leakage_threshold": 0}, "'leakage_threshold' parameter"),
        ({"outlier_z": -1}, "'outlier_z' parameter"),
        ({"task": "ranking"}, "'task' parameter"),
        ({"sample_rows": 10}, "'sample_rows' parameter"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        data_quality(pl.DataFrame({"x": [1, 2], "y": [0, 1]}), "y", **kwargs)


def test_not_a_frame_is_refused() -> None:
    with pytest.raises(InvalidInput, match="got list"):
        data_quality([1, 2, 3])


@pytest.mark.slow
def test_a_million_rows_in_seconds() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    columns = {f"f{i}": rng.normal(size=n) for i in range(15)}
    columns |= {f"i{i}": rng.integers(0, 1000, size=n) for i in range(2)}
    columns |= {f"s{i}": rng.choice(["a", "b", "c", "d"], size=n) for i in range(2)}
    columns["y"] = (rng.random(n) < 0.3).astype(np.int64)
    frame = pl.DataFrame(columns)
    start = time.perf_counter()
    report = data_quality(frame, "y")
    elapsed = time.perf_counter() - start
    assert report.sampled
    assert report.scored_rows == 200_000
    assert elapsed < 20, f"1M x 20 took {elapsed:.1f}s"
