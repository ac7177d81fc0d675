"""The drift, validation, data-quality and evaluation reports in a browser, each built from
realistic data with the problems it exists to show (drifted and new categories, anomalies,
leaks and outliers, weak slices)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from loopwise.data.drift.detect import detect_drift
from loopwise.data.quality.report import data_quality
from loopwise.data.schema_inference import infer_schema
from loopwise.data.validation import validate
from loopwise.evaluation.evaluate import evaluate

REGIONS = ("north-east", "north-west", "south", "central", "islands", "overseas-territories")


def applicants(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.lognormal(0.0, 0.4, n) * 50_000.0,
            "debt_ratio": rng.uniform(0, 1, n),
            "months_since_last_delinquency": rng.poisson(30, n),
            "region": rng.choice(REGIONS, n, p=[0.3, 0.25, 0.2, 0.15, 0.07, 0.03]),
            "student": rng.choice(["Yes", "No"], n, p=[0.3, 0.7]),
        }
    )
    risk = 3.0 * frame["debt_ratio"] - frame["income"] / 50_000.0 + rng.normal(0, 0.4, n)
    frame["default"] = (risk > 0.6).astype(int)
    return frame


def test_drift_report(check_page, tmp_path):
    reference = applicants(4000, 1)
    current = applicants(3000, 2)
    current["age"] = np.minimum(current["age"] + 15, 95)
    current["income"] = current["income"] * 1.5
    current.loc[current.index[:600], "region"] = "overseas-territories"
    report = detect_drift(reference, current)
    found = check_page(report.to_html(tmp_path / "drift.html"), "drift")
    assert found.charts == len(report.columns)
    assert not found.problems, found.report()


def test_validation_report(check_page, tmp_path):
    schema = infer_schema(applicants(4000, 1), target="default")
    batch = applicants(2000, 3)
    batch.loc[batch.index[:100], "income"] = None
    batch.loc[batch.index[100:150], "age"] = -1.0
    batch.loc[batch.index[150:400], "region"] = "Nord-Est"
    batch = pd.concat([batch, batch.iloc[:300]])
    report = validate(batch, schema)
    assert not report.ok
    found = check_page(report.to_html(tmp_path / "validation.html"), "validation")
    assert not found.problems, found.report()


def test_quality_report(check_page, tmp_path):
    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis code (copy of the label)"] = frame["target"]
    frame = pd.concat([frame, frame.iloc[:40]])
    report = data_quality(frame, "target")
    found = check_page(report.to_html(tmp_path / "quality.html"), "quality")
    assert found.charts >= 1
    assert not found.problems, found.report()


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_evaluation_report(check_page, tmp_path, task):
    data = applicants(3000, 4)
    features = ["age", "income", "debt_ratio", "months_since_last_delinquency"]
    if task == "classification":
        model = LogisticRegression(max_iter=2000).fit(data[features], data["default"])
        ev = evaluate(model, data[[*features, "region", "student", "default"]], "default",
                      slices=["region", "student"])  # fmt: skip
    else:
        ev = evaluate(None, data, "income", predictions=data["income"] * 0.9,
                      slices=["region"])  # fmt: skip
    found = check_page(ev.to_html(tmp_path / "evaluation.html"), f"evaluation-{task}")
    assert not found.problems, found.report()
