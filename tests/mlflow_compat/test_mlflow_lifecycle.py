"""An unchanged MLflow client (``client_lifecycle.py``) deletes, restores and renames runs
and experiments and tags experiments through a real `loopwise server` on SQLite and
PostgreSQL; loopwise's own API then sees the same: the deleted run out of its searches
but readable, the new names, the experiment's tags, the deleted experiment out of its
listing."""

from __future__ import annotations

from pathlib import Path

from loopwise.config import load_settings
from loopwise.store import Store
from loopwise.tracking import runs as run_service
from loopwise.tracking.search import search_runs
from tests.mlflow_compat.conftest import run_client

INVALID = ["INVALID_PARAMETER_VALUE", 400]
MISSING = ["RESOURCE_DOES_NOT_EXIST", 404]


def test_an_mlflow_client_deletes_restores_and_renames(
    loopwise_server, store_url, mlflow_client, tmp_path: Path
):
    out = run_client("client_lifecycle.py", loopwise_server, tmp_path, mlflow_client)

    assert out["deleted_stage"] == "deleted"
    assert out["active"] == ["kept"]
    assert out["deleted_only"] == ["doomed"]
    assert out["all"] == ["doomed", "kept"]
    assert out["by_metric"] == ["kept"]
    assert out["stage_filter"] == ["doomed"]
    assert out["frame"] == ["kept"]
    assert out["write_deleted"] == INVALID
    assert out["metric_deleted"] == INVALID
    assert out["tag_deleted"] == INVALID
    assert out["restored_before"] == "deleted"
    assert out["restored_stage"] == "active"
    assert out["restored_active"] == ["doomed", "kept"]

    assert out["renamed"] == "kept-renamed"
    assert out["tag_renamed"] == ["kept-tagged", "kept-tagged"]
    assert out["final_name"] == "kept-final"
    assert out["named_search"] == ["kept-final"]
    assert out["long_name"] == INVALID
    assert out["missing_rename"] == MISSING
    assert out["missing_delete"] == MISSING

    assert out["experiment_tags"] == {"team": "risk", "stage": "prod"}
    assert out["by_name_tags"] == {"team": "risk", "stage": "prod"}
    assert out["renamed_experiment"] == "mlflow-lifecycle-renamed"
    assert out["rename_taken"] == ["RESOURCE_ALREADY_EXISTS", 400]
    assert out["experiment_stage"] == "deleted"
    assert "mlflow-lifecycle-renamed" not in out["listed"]
    assert "mlflow-lifecycle" in out["listed"]
    assert out["deleted_listed"] == ["mlflow-lifecycle-renamed"]
    assert out["all_listed"] == len(out["listed"]) + 1
    assert out["set_deleted"] is True
    assert out["run_in_deleted"] == INVALID
    assert out["default_delete"] == INVALID
    assert out["missing_experiment_delete"] == MISSING
    assert out["restored_experiment"] == "active"

    # The same through loopwise's own API.
    store = Store(
        settings=load_settings(store_url=store_url, artifacts_url=str(tmp_path / "artifacts"))
    )
    try:
        frame = search_runs(store, experiment="mlflow-lifecycle")
        assert frame["name"].tolist() == ["kept-final"]
        assert frame["tags.team"].tolist() == ["risk"]
        doomed = run_service.get_run(store, out["doomed_id"])
        assert doomed.deleted_at is not None
        assert doomed.params == {"kind": "lr"}  # nothing it logged was removed
        assert run_service.get_run(store, out["kept_id"]).deleted_at is None
        listed = {e.name: e for e in run_service.list_experiments(store)}
        assert listed["mlflow-lifecycle"].run_count == 1  # the deleted run is not counted
        assert "mlflow-lifecycle-renamed" not in listed
        other = run_service.get_experiment(store, out["other_id"])
        assert other.name == "mlflow-lifecycle-renamed"
        assert other.deleted_at is not None
        assert run_service.experiment_tags(store, out["other_id"]) == {
            "stage": "prod",
            "team": "risk",
        }
    finally:
        store.db.engine.dispose()
