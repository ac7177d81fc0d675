"""Alert rules whose action runs a pipeline, on SQLite and PostgreSQL: the firing starts
the registered pipeline (a child process, on the alert's store) with the rule's
parameters, the alert's record names the pipeline run, and the run names the alert.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loopwise.errors import InvalidInput
from loopwise.monitoring.alerting.alerts import evaluate_alerts, get_alert, wait_for_actions
from loopwise.monitoring.alerting.delivery import PipelineAction
from loopwise.monitoring.alerting.rules import parse_rules
from loopwise.monitoring.results import OVERALL, WindowResult
from loopwise.pipelines import records

T0 = datetime(2026, 12, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)

FLOW = """
import loopwise as lw


@lw.step(cache=False)
def retrain(reason: str, threshold: float) -> dict:
    return {"reason": reason, "threshold": threshold}


@lw.pipeline(name="churn-train")
def churn(reason: str = "manual", threshold: float = 0.5):
    return retrain(reason, threshold)
"""


def window(i: int, f1: float) -> WindowResult:
    return WindowResult(
        monitor="churn-mon",
        endpoint="churn",
        start=T0 + i * HOUR,
        end=T0 + (i + 1) * HOUR,
        model="churn/1",
        model_version_id=None,
        rows=1000,
        labelled=500,
        values={(OVERALL, "perf.f1"): f1},
    )


def rule(action: dict) -> dict:
    return {"name": "retrain", "metric": "perf.f1", "below": 0.7, "action": action}


@pytest.fixture
def churn_train(store, tmp_path: Path) -> str:
    """The pipeline ``churn-train`` registered in ``store`` (as a first run would)."""
    path = tmp_path / "flow.py"
    path.write_text(FLOW)
    records.register_pipeline(store, "churn-train", f"{path}:churn")
    return "churn-train"


def test_a_firing_rule_runs_its_pipeline_with_the_rules_params(store, churn_train):
    action = {
        "pipeline": churn_train,
        "params": {"reason": "alert {rule} at {value:.2f}", "threshold": 0.7},
        "timeout": 120,
        "cooldown": "6h",
    }
    (event,) = evaluate_alerts(store, "churn-mon", "churn", [rule(action)], [window(0, 0.5)], {})
    assert event.kind == "fired"
    assert event.alert.action["status"] == "queued"
    assert event.alert.action["summary"] == (
        'pipeline churn-train reason="alert {rule} at {value:.2f}" threshold=0.7'
    )
    record = event.wait(180)
    assert record["status"] == "succeeded", record
    assert record["exit_code"] == 0
    assert record["pipeline"] == "churn-train"
    assert record["params"] == {"reason": "alert retrain at 0.50", "threshold": 0.7}
    assert record["trigger"] == f"alert:retrain@{event.alert.id}"
    assert record["run_status"] == "FINISHED"
    assert get_alert(store, event.alert.id).action == record  # stored as returned

    run = records.get_pipeline_run(store, record["run_id"])
    assert run.pipeline == "churn-train"
    assert run.trigger == f"alert:retrain@{event.alert.id}"
    assert run.output() == {"reason": "alert retrain at 0.50", "threshold": 0.7}

    # the cooldown holds for pipeline actions as for commands
    evaluate_alerts(store, "churn-mon", "churn", [rule(action)], [window(1, 0.9)], {})
    (again,) = evaluate_alerts(store, "churn-mon", "churn", [rule(action)], [window(2, 0.4)], {})
    assert again.alert.action["status"] == "skipped"
    assert again.alert.action["cause"] == "cooldown"
    assert wait_for_actions(30)
    assert len(records.list_pipeline_runs(store, "churn-train")) == 1


def test_a_pipeline_that_fails_to_start_is_a_failed_action(store):
    action = {"pipeline": "not-registered", "timeout": 120}
    (event,) = evaluate_alerts(store, "churn-mon", "churn", [rule(action)], [window(0, 0.1)], {})
    record = event.wait(180)
    assert record["status"] == "failed"
    assert record["exit_code"] == 1
    assert "Error: No pipeline named 'not-registered'" in record["stderr"]
    assert record["run_id"] is None


def test_pipeline_actions_are_checked_when_the_rule_is_read():
    (parsed,) = parse_rules([rule({"pipeline": "churn-train", "params": {"C": 0.5}})])
    assert isinstance(parsed.action, PipelineAction)
    assert parsed.action.to_dict() == {
        "pipeline": "churn-train",
        "timeout": 3600.0,
        "params": {"C": 0.5},
    }
    cases = [
        ({"pipeline": "churn train"}, r"alerts\[0\]\.action\.pipeline: must be the name of"),
        ({"pipeline": "x", "params": [1]}, r"action\.params: must map parameter names"),
        ({"pipeline": "x", "params": {"a": "{rul}"}}, r"unknown placeholder \{rul\}"),
        ({"pipeline": "x", "timeout": 0}, r"action\.timeout: must be seconds > 0"),
        ({"pipeline": "x", "paramz": {}}, r"unknown key 'paramz' — did you mean 'params'\?"),
        ({"pipeline": "x", "command": ["x"]}, r"name exactly one action kind"),
    ]
    for action, message in cases:
        with pytest.raises(InvalidInput, match=message):
            parse_rules([rule(action)])


def test_without_an_alert_store_the_child_uses_its_own_settings(monkeypatch, tmp_path):
    """Outside the monitor's action threads there is no alert store: the environment's
    settings decide (here: a store with no such pipeline, so the action fails cleanly)."""
    monkeypatch.setenv("LOOPWISE_STORE_URL", f"sqlite:///{tmp_path}/other.db")
    monkeypatch.setenv("LOOPWISE_ARTIFACTS_URL", str(tmp_path / "other"))
    action = PipelineAction.from_dict({"pipeline": "churn-train", "timeout": 60}, "action")
    record = action.run({"rule": "r", "id": "a1"})
    assert record["status"] == "failed"
    assert "No pipeline named 'churn-train'" in record["stderr"]
    assert record["command"][:4] == ["-m", "loopwise", "pipelines", "run"]
    assert sys.executable not in record["command"]
