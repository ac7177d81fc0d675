"""The built-in continuous-training pipeline: from a dataset with its schema to a
promoted version, and stopped by validation before anything is trained."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopwise.pipelines.ct import continuous_training


def loans(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.lognormal(0.0, 0.4, n) * 50.0,
            "debt_ratio": rng.uniform(0, 1, n),
            "region": rng.choice(["north", "south"], n),
        }
    )
    risk = 3.0 * frame["debt_ratio"] - frame["income"] / 50.0 + rng.normal(0, 0.3, n)
    frame["defaulted"] = (risk > 0.5).astype(int)
    return frame


PARAMS = {
    "target": "defaulted",
    "model": "credit-risk",
    "features": ["age", "income", "debt_ratio"],
    "slices": ["region"],
    "policy": {
        "thresholds": {"accuracy": 0.8},
        "vs_current": {"metric": "accuracy", "max_drop": 0.02},
    },
}


def test_a_dataset_is_validated_trained_evaluated_and_promoted(lw):
    training = loans(2000, seed=1)
    schema = lw.infer_schema(training, target="defaulted")
    version = lw.log_dataset(training, name="loans", schema=schema)
    run = lw.run_pipeline(continuous_training, params={"source": version.uri, **PARAMS})
    assert run.status.value == "FINISHED", [s.error for s in run.steps if s.error]
    assert [s.name for s in run.steps][:4] == ["ingest", "validate", "split", "split-2"]
    out = run.output()
    assert out["metrics"]["accuracy"] > 0.85
    assert out["promotion"]["passed"] is True
    champion = lw.get_model_version("models:/credit-risk@champion")
    assert champion.version == out["promotion"]["version"] == 1
    assert champion.run_id == run.step("train").run_id
    lineage = lw.model_lineage(champion.uri)
    assert lineage.run.parent_run_id == run.id
    # a prediction of the champion traces back to the pipeline run and the step
    held_out = training.head(3)
    lw.log_predictions(
        "credit-risk",
        held_out[PARAMS["features"]].assign(request_id=["r1", "r2", "r3"], prediction=[0, 1, 0]),
        model=champion,
    )
    trace = lw.trace_prediction("credit-risk", "r2")
    assert trace.lineage.parent_run.id == run.id
    assert trace.lineage.pipeline_step == "train"
    assert (
        trace.to_dict()["lineage"]["parent_run"]["tags"]["loopwise.pipeline"]
        == "continuous-training"
    )
    # the held-out evaluation is stored with the version, per slice
    stored = lw.get_run(run.step("evaluate").run_id)
    assert stored.metrics["accuracy"] == out["metrics"]["accuracy"]

    # new data (the latest version of the dataset): a new version, gated against the champion
    lw.log_dataset(loans(2000, seed=2), name="loans", schema=schema)
    again = lw.run_pipeline(
        continuous_training,
        params={**PARAMS, "source": "datasets:/loans", "schema": "datasets:/loans/1"},
    )
    assert again.status.value == "FINISHED"
    assert not again.step("train").cached  # new rows, new model
    promotion = again.output()["promotion"]
    assert promotion["version"] == 2
    assert promotion["passed"] is (
        lw.get_model_version("models:/credit-risk@champion").version == 2
    )


def test_invalid_data_stops_the_pipeline_before_training(lw):
    training = loans(500, seed=1)
    schema = lw.infer_schema(training, target="defaulted")
    lw.log_dataset(training, name="loans", schema=schema)
    broken = loans(500, seed=3)
    broken["age"] = -5.0  # out of the schema's range
    bad = lw.log_dataset(broken, name="loans-bad")
    run = lw.run_pipeline(
        continuous_training, params={**PARAMS, "source": bad.uri, "schema": "datasets:/loans/1"}
    )
    assert run.status.value == "FAILED"
    status = {s.name: s.status for s in run.steps}
    assert status["validate"] == "FAILED"
    assert status["train"] == status["promote"] == "SKIPPED"
    assert "age" in run.step("validate").error
    with pytest.raises(lw.NotFound):
        lw.get_model_version("models:/credit-risk@champion")


def test_a_source_without_schema_is_refused(lw):
    with pytest.raises(lw.InvalidInput, match="schema is required"):
        lw.run_pipeline(continuous_training, params={**PARAMS, "source": "endpoints:/credit-risk"})


def test_an_endpoints_labelled_traffic_of_the_last_window_is_the_training_data(lw):
    from datetime import UTC, datetime, timedelta

    training = loans(400, seed=1)
    schema = lw.infer_schema(training, target="defaulted")
    lw.log_dataset(training, name="loans", schema=schema)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for hour in range(4):  # 100 labelled requests an hour, the last hour's unlabelled
        batch = loans(100, seed=10 + hour)
        ids = [f"h{hour}-{i}" for i in range(100)]
        lw.log_predictions(
            "scoring",
            batch[PARAMS["features"] + ["region"]].assign(
                request_id=ids, prediction=0, timestamp=start + timedelta(hours=hour)
            ),
        )
        if hour < 3:
            lw.log_feedback(
                "scoring", pd.DataFrame({"request_id": ids, "label": batch["defaulted"]})
            )
    run = lw.run_pipeline(
        continuous_training,
        params={
            **PARAMS,
            "source": "endpoints:/scoring",
            "window": "90m",
            "schema": "datasets:/loans/1",
            "model": "scoring",
        },
    )
    assert run.status.value == "FINISHED", [s.error for s in run.steps if s.error]
    rows = lw.load_dataset(run.step("ingest").outputs["ref"])
    assert len(rows) == 200  # hours 1 and 2: labelled and within 90 minutes of the latest
    assert set(rows.columns) == {"age", "income", "debt_ratio", "region", "defaulted"}
