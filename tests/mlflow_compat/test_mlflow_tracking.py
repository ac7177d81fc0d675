"""An unchanged MLflow client (``client_tracking.py``, in MLflow's own environment) against
a real `loopwise server` process on SQLite and PostgreSQL: every tracking call answers as
MLflow's client expects, and what it logged is an ordinary loopwise run when read back
through loopwise's own API."""

from __future__ import annotations

from pathlib import Path

from loopwise.config import load_settings
from loopwise.store import Store
from loopwise.tracking import run_artifacts
from loopwise.tracking import runs as run_service
from loopwise.tracking.search import search_runs
from tests.mlflow_compat.conftest import run_client


def test_an_mlflow_client_logs_and_reads_runs(
    loopwise_server, store_url, mlflow_client, tmp_path: Path
):
    out = run_client("client_tracking.py", loopwise_server, tmp_path, mlflow_client)

    assert out["default_experiment"] == "Default"
    assert out["missing_experiment"] is True
    assert out["artifact_location"] == f"mlflow-artifacts:/{out['experiment_id']}"
    assert out["status"] == "FINISHED"
    assert out["params"] == {"C": "0.5", "depth": "3", "kind": "rf"}
    assert out["metrics"] == {"loss": 1 / 120, "acc": 0.9, "f1": 0.8, "weird": "nan"}
    assert out["tags"]["team"] == "risk"
    assert out["tags"]["stage"] == "dev"
    assert out["tags"]["mlflow.runName"] == "first"
    assert out["param_change"] == ["INVALID_PARAMETER_VALUE", 400]
    # mlflow.log_input: the datasets' metadata, one input per dataset and run
    assert [i[:2] for i in out["inputs"]] == [["holdout", "code"], ["loans", "s3"]]
    assert [i[2] for i in out["inputs"]] == [
        {"mlflow.data.context": "testing"},
        {"mlflow.data.context": "validation"},
    ]
    assert "mlflow_colspec" in out["input_schema"]
    assert out["artifact_uri"].startswith(f"mlflow-artifacts:/{out['experiment_id']}/")

    assert out["filtered"] == ["first"]
    assert out["by_acc"] == ["second", "child", "first"]
    assert out["named"] == ["second"]
    assert out["pages"] == [["first"], ["child"], ["second"]]
    assert "metrics.loss" in out["frame_columns"]
    assert "params.kind" in out["frame_columns"]
    assert out["history"] == [120, 0, 119, 1 / 120]
    assert out["artifacts"] == ["config.json", "dir", "notes.txt", "texts"]
    assert out["dir"] == [["dir/notes.txt", False], ["dir/sub", True]]
    assert out["downloaded"] == "hello from mlflow"
    assert sorted(out["downloaded_tree"]) == [
        "config.json",
        "dir/notes.txt",
        "dir/sub/deep.txt",
        "notes.txt",
        "texts/t.txt",
    ]
    assert out["missing_run"] == ["RESOURCE_DOES_NOT_EXIST", 404]
    assert out["bad_filter"] == ["INVALID_PARAMETER_VALUE", 400]
    assert out["duplicate_experiment"] == ["RESOURCE_ALREADY_EXISTS", 400]

    # The same data through loopwise's own API: one store, two faces.
    store = Store(
        settings=load_settings(store_url=store_url, artifacts_url=str(tmp_path / "artifacts"))
    )
    try:
        frame = search_runs(store, experiment="mlflow-compat", order_by="start_time")
        assert frame["name"].tolist() == ["first", "child", "second"]
        assert frame["params.C"].tolist()[0] == "0.5"
        assert frame["metrics.acc"].tolist() == [0.9, 0.7, 0.5]
        run = run_service.get_run(store, out["run_id"])
        assert run.status == "FINISHED"
        assert run.user  # the client's user, as MLflow sends it
        child = run_service.get_run(store, out["child_id"])
        assert child.parent_run_id == out["run_id"]
        assert len(run_service.metric_history(store, out["run_id"], "loss")) == 120
        paths = [a.path for a in run_artifacts.list_artifacts(store, out["run_id"])]
        assert paths == [
            "config.json",
            "dir/notes.txt",
            "dir/sub/deep.txt",
            "notes.txt",
            "texts/t.txt",
        ]
        assert run_artifacts.read_artifact(store, out["run_id"], "texts/t.txt") == b"some text"
    finally:
        store.db.engine.dispose()
