"""Policy: reading, writing and checking promotion policies (every error names its key)."""

from __future__ import annotations

import re

import pytest
import yaml

from loopwise.errors import InvalidInput
from loopwise.evaluation.policy import (
    FORMAT_VERSION,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    METRICS,
    Policy,
    SliceRules,
    SmokeTest,
    VsCurrent,
    higher_is_better,
)

ISSUE_POLICY = """
task: classification
thresholds: {roc_auc: 0.75, recall: 0.6}
vs_current: {metric: roc_auc, max_drop: 0.01, bootstrap: 1000, confidence: 0.95}
slices:
  columns: [region]
  min: {recall: 0.55}
  max_gap: {recall: 0.15}
  min_rows: 30
smoke_tests:
  - {input: {age: 35, income: 52000, region: north}, expect: 1}
  - {input: {age: 70, income: 9000, region: south}, expect_between: [0, 1]}
latency_p95_ms: 20
max_size_mb: 200
"""


def test_the_policy_of_the_issue_reads_into_typed_sections(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(ISSUE_POLICY)
    policy = Policy.load(path)
    assert policy.task == "classification"
    assert policy.thresholds == {"roc_auc": 0.75, "recall": 0.6}
    assert policy.vs_current == VsCurrent("roc_auc", 0.01, 1000, 0.95, seed=0)
    assert policy.slices == SliceRules(("region",), {"recall": 0.55}, {"recall": 0.15}, 30)
    assert policy.smoke_tests == (
        SmokeTest({"age": 35, "income": 52000, "region": "north"}, expect=1),
        SmokeTest({"age": 70, "income": 9000, "region": "south"}, expect_between=(0.0, 1.0)),
    )
    assert (policy.latency_p95_ms, policy.max_size_mb) == (20.0, 200.0)


def test_round_trip_through_dict_and_yaml_file(tmp_path):
    policy = Policy.from_dict(yaml.safe_load(ISSUE_POLICY))
    document = policy.to_dict()
    assert document["format_version"] == FORMAT_VERSION
    assert "loopwise_version" in document
    assert Policy.from_dict(document) == policy
    path = policy.save(tmp_path / "sub" / "gate.yaml")
    assert Policy.load(path) == policy
    assert not list(path.parent.glob(".*tmp*"))  # written atomically, nothing left over


def test_round_trip_keeps_the_less_common_forms(tmp_path):
    policy = Policy.from_dict(
        {
            "task": "regression",
            "thresholds": {"rmse": 12.5, "r2": -0.5},
            "vs_current": {"metric": "mae", "seed": 7},
            "slices": {"columns": ["store", ["age", [0, 30, 60]], ["store", "segment"]]},
            "smoke_tests": [
                {"name": "zero", "input": {"x": 0}, "expect": 3.0, "tolerance": 0.5},
                {"input": {"x": 1}, "expect_between": [0, 1], "output": "proba"},
            ],
        }
    )
    assert policy.slices.columns == ("store", ("age", (0.0, 30.0, 60.0)), ("store", "segment"))
    assert policy.vs_current == VsCurrent("mae", 0.0, None, 0.95, 7)
    assert Policy.load(policy.save(tmp_path / "p.yaml")) == policy


def test_empty_policy_and_empty_file_gate_nothing(tmp_path):
    assert Policy.from_dict({}) == Policy()
    (tmp_path / "empty.yaml").write_text("")
    assert Policy.load(tmp_path / "empty.yaml") == Policy()
    assert set(Policy().to_dict()) == {"format_version", "loopwise_version"}


def test_metric_directions_come_from_the_metric_kernels():
    assert set(METRICS) == HIGHER_IS_BETTER | LOWER_IS_BETTER
    assert {"rmse", "mae", "nrmse", "mape", "log_loss"} == LOWER_IS_BETTER
    assert higher_is_better("roc_auc")
    assert not higher_is_better("rmse")


def test_bootstrap_zero_means_point_comparison():
    policy = Policy.from_dict({"vs_current": {"metric": "f1", "bootstrap": 0}})
    assert policy.vs_current.bootstrap is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"slices": {"min": {"recal": 0.55}}},
            "slices.min.recal: unknown metric 'recal' — did you mean 'recall'?",
        ),
        ({"tresholds": {}}, "tresholds: unknown key 'tresholds' — did you mean 'thresholds'?"),
        ({"owner": "me"}, "owner: unknown key 'owner' — expected one of: format_version"),
        ({"thresholds": {"roc_auc": "high"}}, "thresholds.roc_auc: must be a number; got 'high'"),
        ({"thresholds": {"roc_auc": True}}, "thresholds.roc_auc: must be a number"),
        ({"thresholds": {"roc_auc": 1.5}}, "thresholds.roc_auc: roc_auc takes values in [0, 1]"),
        ({"thresholds": {"rmse": -1}}, "thresholds.rmse: rmse takes values in [0, inf]"),
        ({"thresholds": [0.7]}, "thresholds: must be a mapping (key: value); got list"),
        (
            {"task": "classification", "thresholds": {"rmse": 3}},
            "thresholds.rmse: metric 'rmse' does not apply to task 'classification'",
        ),
        ({"task": "ranking"}, "task: must be 'classification' or 'regression'; got 'ranking'"),
        ({"latency_p95_ms": -5}, "latency_p95_ms: must be a finite number > 0 (a budget); got -5"),
        ({"latency_p95_ms": "20ms"}, "latency_p95_ms: must be a number; got '20ms'"),
        ({"max_size_mb": 0}, "max_size_mb: must be a finite number > 0 (a budget); got 0"),
        ({"vs_current": {"max_drop": 0.01}}, "vs_current.metric: is required"),
        ({"vs_current": {"metric": "auc"}}, "vs_current.metric: unknown metric 'auc'"),
        ({"vs_current": {"metric": "f1", "max_drop": -0.1}}, "vs_current.max_drop: must be a"),
        ({"vs_current": {"metric": "f1", "bootstrap": 10}}, "vs_current.bootstrap: must be an"),
        ({"vs_current": {"metric": "f1", "bootstrap": 10**6}}, "in [100, 100000]"),
        ({"vs_current": {"metric": "f1", "bootstrap": 500.5}}, "vs_current.bootstrap: must"),
        ({"vs_current": {"metric": "f1", "bootstrap": True}}, "vs_current.bootstrap: must"),
        ({"vs_current": {"metric": "f1", "confidence": 95}}, "vs_current.confidence: must be in"),
        ({"vs_current": {"metric": "f1", "seed": -1}}, "vs_current.seed: must be an integer >= 0"),
        ({"vs_current": {"metric": "f1", "seeds": 1}}, "vs_current.seeds: unknown key 'seeds'"),
        ({"slices": {"columns": [3]}}, "slices.columns[0]: must be a column name"),
        ({"slices": {"min_rows": 0}}, "slices.min_rows: must be an integer >= 1; got 0"),
        ({"slices": {"max_gap": {"recall": -0.1}}}, "slices.max_gap.recall: must be a finite"),
        ({"slices": {"floor": {}}}, "slices.floor: unknown key 'floor'"),
        ({"smoke_tests": {"input": {}}}, "smoke_tests: must be a list of tests; got dict"),
        ({"smoke_tests": [{"expect": 1}]}, "smoke_tests[0].input: must be a mapping"),
        ({"smoke_tests": [{"input": {}, "expect": 1}]}, "smoke_tests[0].input: must hold"),
        ({"smoke_tests": [{"input": {"a": 1}}]}, "smoke_tests[0]: give exactly one of"),
        (
            {"smoke_tests": [{"input": {"a": 1}, "expect": 1, "expect_between": [0, 1]}]},
            "smoke_tests[0]: give exactly one of",
        ),
        (
            {"smoke_tests": [{"input": {"a": 1}, "expect_between": [1, 0]}]},
            "smoke_tests[0].expect_between: low 1 is above high 0; swap them",
        ),
        (
            {"smoke_tests": [{"input": {"a": 1}, "expect_between": [0]}]},
            "smoke_tests[0].expect_between: must be [low, high]",
        ),
        (
            {"smoke_tests": [{"input": {"a": 1}, "expect": 1, "output": "probability"}]},
            "smoke_tests[0].output: unknown output 'probability' — did you mean 'proba'?",
        ),
        ({"format_version": 99}, "format_version: is 99; this loopwise"),
    ],
)
def test_bad_policies_fail_at_load_naming_the_key(document, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        Policy.from_dict(document)


def test_a_policy_that_is_not_a_mapping_is_refused():
    with pytest.raises(InvalidInput, match=r"policy: must be a mapping"):
        Policy.from_dict(["thresholds"])  # type: ignore[arg-type]


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(InvalidInput, match=r"does not exist"):
        Policy.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("thresholds: {roc_auc: [")
    with pytest.raises(InvalidInput, match=r"bad.yaml' is not valid YAML"):
        Policy.load(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("slices:\n  min: {recal: 0.5}\n")
    with pytest.raises(InvalidInput, match=r"typo.yaml': slices.min.recal: unknown metric"):
        Policy.load(typo)
