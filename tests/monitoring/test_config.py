"""Monitor declarations: keyword arguments, dicts and YAML give the same checked monitor;
malformed documents are refused at load with the key path and a hint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from loopwise.clock import parse_moment
from loopwise.errors import InvalidInput
from loopwise.monitoring.config import Monitor, Window, as_monitor

FULL = {
    "name": "credit-risk-hourly",
    "endpoint": "credit-risk",
    "window": "15m",
    "reference": "datasets:/loans/3",
    "target": "defaulted",
    "task": "classification",
    "positive_label": 1,
    "slices": ["region", {"column": "age", "bins": [0, 30, 50, 120]}, ["region", "segment"]],
    "features": ["income", "debt", "age"],
    "checks": {
        "schema": False,
        "feature_drift": {"method": "psi", "threshold": 0.25},
        "prediction_drift": True,
        "performance": ["precision", "recall"],
        "operational": True,
        "custom": {"high_scores": "(col('prediction') > 0.9).mean()"},
    },
    "min_rows": 50,
    "include_shadows": True,
    "alerts": [{"name": "drift", "metric": "drift.share", "above": 0.3}],
    "webhooks": [{"url": "https://hooks.example.com/x"}],
}


def test_defaults_from_an_endpoint_name():
    m = Monitor("credit-risk")
    assert m.name == "credit-risk"
    assert m.window == Window(seconds=3600)
    assert m.reference is None
    assert m.slices == ()
    assert m.features is None
    assert m.checks.schema
    assert m.checks.feature_drift.enabled
    assert m.checks.operational
    assert m.checks.performance is None
    assert m.checks.performance_enabled
    assert m.min_rows == 100
    assert m.include_shadows is False
    assert m.shadow_name == "credit-risk.shadow"


def test_dict_round_trip_keeps_every_field_and_the_raw_alert_sections():
    m = Monitor.from_dict(FULL)
    assert m.window == Window(seconds=900)
    assert m.slices == ("region", ("age", (0, 30, 50, 120)), ("region", "segment"))
    assert m.checks.feature_drift.method == "psi"
    assert m.checks.feature_drift.threshold == 0.25
    assert m.checks.performance == ("precision", "recall")
    document = m.to_dict()
    assert document["format_version"] == 1
    assert "loopwise_version" in document
    assert document["alerts"] == FULL["alerts"]
    assert document["webhooks"] == FULL["webhooks"]
    assert Monitor.from_dict(document).to_dict() == document
    for key, value in FULL.items():
        assert document[key] == value, key


def test_yaml_round_trip(tmp_path):
    path = Monitor.from_dict(FULL).save(tmp_path / "monitor.yaml")
    loaded = Monitor.load(path)
    assert loaded.to_dict() == Monitor.from_dict(FULL).to_dict()
    assert as_monitor(str(path)).name == "credit-risk-hourly"


def test_keyword_arguments_match_the_dict_form():
    kwargs = {k: v for k, v in FULL.items() if k != "endpoint"}
    assert Monitor("credit-risk", **kwargs).to_dict() == Monitor.from_dict(FULL).to_dict()


def test_python_only_values_are_kept_but_not_written_to_yaml():
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    m = Monitor("ep", reference=frame, checks={"custom": {"n": len}}, window=timedelta(hours=2))
    assert m.reference is frame
    assert m.checks.custom["n"] is len
    assert m.to_dict()["window"] == "2h"
    with pytest.raises(InvalidInput, match=r"DataFrame reference.*datasets:/"):
        m.to_yaml()
    with pytest.raises(InvalidInput, match="custom check 'n' is a Python function"):
        Monitor("ep", checks={"custom": {"n": len}}).to_yaml()


def test_count_windows_and_durations():
    assert Monitor("ep", window=10_000).window == Window(rows=10_000)
    assert str(Monitor("ep", window=10_000).window) == "10,000 predictions"
    assert Monitor("ep", window="1d").window.seconds == 86_400
    assert Monitor("ep", window="2w").window.to_value() == "2w"
    assert Monitor("ep", window="90m").window.to_value() == "90m"
    assert Monitor("ep", window="120m").window.to_value() == "2h"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"endpoint": "ep", "windw": "1h"}, "windw: unknown key 'windw' — did you mean 'window'?"),
        ({"endpoint": "ep", "window": "1 hour"}, "window: must be a duration such as 30s"),
        ({"endpoint": "ep", "window": 0}, "window: a number of predictions must be at least 1"),
        ({"endpoint": "ep", "window": True}, "window: must be a duration"),
        ({"window": "1h"}, "endpoint: is required"),
        ({"endpoint": "Credit Risk"}, "endpoint: must be lower-case letters"),
        ({"endpoint": "ep", "name": "a.b"}, "name: must be lower-case letters"),
        ({"endpoint": "ep", "reference": "loans/3"}, "reference: must be a datasets:/ URI"),
        ({"endpoint": "ep", "reference": ["datasets:/a/1", 3]}, r"reference\[1\]: must be"),
        ({"endpoint": "ep", "task": "ranking"}, "task: must be 'classification' or 'regression'"),
        ({"endpoint": "ep", "slices": [{"column": "age"}]}, r"slices\[0\]: needs column and bins"),
        (
            {"endpoint": "ep", "slices": [["age", [30, 10]]]},
            r"slices\[0\]\[1\]: bin edges must be at least two numbers in strictly increasing",
        ),
        ({"endpoint": "ep", "slices": [3]}, r"slices\[0\]: is not a slice spec"),
        ({"endpoint": "ep", "slices": ["region", "region"]}, "'region' is given more than once"),
        ({"endpoint": "ep", "features": []}, "features: must be a non-empty list"),
        ({"endpoint": "ep", "features": ["a", "input.a"]}, "features: 'a' is listed twice"),
        (
            {"endpoint": "ep", "checks": {"drift": True}},
            "checks.drift: unknown key 'drift' — did you mean",
        ),
        ({"endpoint": "ep", "checks": {"schema": "yes"}}, "checks.schema: must be true or false"),
        (
            {"endpoint": "ep", "checks": {"feature_drift": {"method": "pis"}}},
            "checks.feature_drift.method: unknown test 'pis' — did you mean 'psi'?",
        ),
        (
            {"endpoint": "ep", "checks": {"feature_drift": {"threshold": 0.2}}},
            "checks.feature_drift.threshold: needs a method",
        ),
        (
            {"endpoint": "ep", "checks": {"feature_drift": {"method": "ks", "threshold": 5}}},
            r"threshold: for ks must be a p-value in \(0, 1\)",
        ),
        (
            {"endpoint": "ep", "checks": {"prediction_drift": {"methd": "psi"}}},
            "checks.prediction_drift.methd: unknown key 'methd' — did you mean 'method'?",
        ),
        (
            {"endpoint": "ep", "checks": {"performance": ["recal"]}},
            r"checks.performance\[0\]: unknown metric 'recal' — did you mean 'recall'\?",
        ),
        (
            {"endpoint": "ep", "task": "regression", "checks": {"performance": ["f1"]}},
            r"checks.performance\[0\]: 'f1' is not a regression metric",
        ),
        (
            {"endpoint": "ep", "checks": {"custom": {"bad": "__import__('os')"}}},
            "checks.custom.bad:",
        ),
        ({"endpoint": "ep", "checks": {"custom": {"x": 3}}}, "checks.custom.x: must be a Polars"),
        ({"endpoint": "ep", "min_rows": 0}, "min_rows: must be a whole number of at least 1"),
        ({"endpoint": "ep", "include_shadows": "no"}, "include_shadows: must be true or false"),
        ({"endpoint": "ep", "format_version": 99}, "format_version: is 99; this loopwise"),
    ],
)
def test_malformed_configs_are_rejected_with_the_key_path(document, message):
    with pytest.raises(InvalidInput, match=message):
        Monitor.from_dict(document)


def test_a_bad_file_names_itself(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("endpoint: ep\nchecks:\n  feature_drift: {method: pis}\n")
    with pytest.raises(InvalidInput, match=r"monitor config '.*m.yaml': checks.feature_drift"):
        Monitor.load(path)
    path.write_text("endpoint: [unclosed\n")
    with pytest.raises(InvalidInput, match="is not valid YAML"):
        Monitor.load(path)
    with pytest.raises(InvalidInput, match="does not exist"):
        Monitor.load(tmp_path / "missing.yaml")
    with pytest.raises(InvalidInput, match="must be a mapping"):
        Monitor.from_dict(["endpoint", "ep"])  # type: ignore[arg-type]


def test_parse_moment():
    now = datetime(2024, 5, 10, 12, tzinfo=UTC)
    assert parse_moment("-3d", now) == now - timedelta(days=3)
    assert parse_moment("-90m", now) == now - timedelta(minutes=90)
    assert parse_moment("now", now) == now
    assert parse_moment("2024-05-01T00:00:00Z", now) == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_moment("2024-05-01T02:00:00+02:00", now) == datetime(2024, 5, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="has no time zone"):
        parse_moment("2024-05-01T00:00:00", now, "--start")
    with pytest.raises(InvalidInput, match="--end must be an ISO 8601 time"):
        parse_moment("yesterday", now, "--end")
    with pytest.raises(InvalidInput, match="has no time zone"):
        parse_moment(datetime(2024, 5, 1), now)
