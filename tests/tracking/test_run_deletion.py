"""Soft deletion and renaming of runs and experiments, and experiment tags, as loopwise's
services do them (MLflow's routes call these): a deleted run leaves every search --
the general one, the keyset pages and the walk by a metric -- and listing, stays
readable and restorable, and keeps what it logged."""

from __future__ import annotations

import pytest

from loopwise.errors import Conflict, InvalidInput, NotFound
from loopwise.tracking import runs as run_service
from loopwise.tracking.log_batch import log_batch
from loopwise.tracking.search import search_run_ids, search_runs
from loopwise.tracking.search_pages import search_page


def _run(store, experiment: str, name: str, acc: float) -> str:
    run_id = run_service.create_run(store, experiment, name=name, watched=False)
    log_batch(store, run_id, params={"kind": name}, metrics=[("acc", acc, 0, 1_000_000)])
    return run_id


def test_a_deleted_run_leaves_searches_and_listings_and_comes_back(store):
    kept = _run(store, "e", "kept", 0.9)
    doomed = _run(store, "e", "doomed", 0.95)  # first by acc, were it not deleted
    run_service.delete_run(store, doomed)
    run_service.delete_run(store, doomed)  # again: nothing changes
    assert search_run_ids(store, "e") == [kept]
    # the walk by a metric (a page of one: it finds it) and the general search agree
    assert search_run_ids(store, "e", order_by="metrics.acc DESC", max_results=1) == [kept]
    assert search_run_ids(store, "e", order_by="metrics.acc DESC") == [kept]
    assert search_runs(store, "e")["name"].tolist() == ["kept"]
    page = search_page(store, experiment="e", order_by="metrics.acc DESC", max_results=1)
    assert ([r["id"] for r in page.runs], page.next_page_token) == ([kept], None)
    assert [r["id"] for r in search_page(store, experiment="e", lifecycle="deleted").runs] == [
        doomed
    ]
    assert {r["id"] for r in search_page(store, experiment="e", lifecycle="all").runs} == {
        kept,
        doomed,
    }
    with pytest.raises(InvalidInput, match="lifecycle"):
        search_page(store, experiment="e", lifecycle="gone")
    (listed,) = [e for e in run_service.list_experiments(store) if e.name == "e"]
    assert listed.run_count == 1
    run = run_service.get_run(store, doomed)  # still readable, with what it logged
    assert run.deleted_at is not None
    assert run.params == {"kind": "doomed"}
    assert run.to_dict()["deleted_at"] is not None
    run_service.restore_run(store, doomed)
    assert run_service.get_run(store, doomed).deleted_at is None
    assert sorted(search_run_ids(store, "e")) == sorted([kept, doomed])
    with pytest.raises(NotFound):
        run_service.delete_run(store, "0" * 26)
    with pytest.raises(NotFound):
        run_service.restore_run(store, "z" * 26)


def test_renaming_a_run_follows_the_run_name_rule(store):
    run_id = _run(store, "e", "old", 0.1)
    run_service.set_tags(store, run_id, {"mlflow.runName": "old"})
    run_service.rename_run(store, run_id, "new")
    run = run_service.get_run(store, "new")  # found by its new name
    assert run.id == run_id
    assert run.tags["mlflow.runName"] == "new"  # an MLflow client reads the same name
    for bad in ("", "   ", "x" * 10_000, None, 3):
        with pytest.raises(InvalidInput, match="Run name"):
            run_service.rename_run(store, run_id, bad)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        run_service.rename_run(store, "0" * 26, "x")
    assert run_service.get_run(store, run_id).name == "new"


def test_experiments_are_tagged_renamed_deleted_and_restored(store):
    run_id = _run(store, "first", "r", 0.3)
    experiment = run_service.get_experiment(store, "first")
    run_service.set_experiment_tag(store, "first", "team", "risk")
    run_service.set_experiment_tag(store, experiment.id, "team", "fraud")  # replaced
    run_service.set_experiment_tag(store, "first", "stage", 1)
    assert run_service.experiment_tags(store, "first") == {"stage": "1", "team": "fraud"}
    with pytest.raises(InvalidInput):
        run_service.set_experiment_tag(store, "first", "t", "x" * 10_000)
    with pytest.raises(NotFound):
        run_service.set_experiment_tag(store, "nope", "t", "x")

    renamed = run_service.rename_experiment(store, "first", "second")
    assert (renamed.id, renamed.name) == (experiment.id, "second")
    assert run_service.get_run(store, run_id).experiment == "second"
    assert run_service.experiment_tags(store, "second") == {"stage": "1", "team": "fraud"}
    run_service.get_or_create_experiment(store, "third")
    with pytest.raises(Conflict):
        run_service.rename_experiment(store, "second", "third")
    with pytest.raises(InvalidInput):
        run_service.rename_experiment(store, "second", "x" * 10_000)
    run_service.get_or_create_experiment(store, run_service.DEFAULT_EXPERIMENT)
    with pytest.raises(InvalidInput, match="cannot be renamed"):
        run_service.rename_experiment(store, run_service.DEFAULT_EXPERIMENT, "other")

    run_service.delete_experiment(store, "second")
    assert "second" not in [e.name for e in run_service.list_experiments(store)]
    assert run_service.get_experiment(store, "second").deleted_at is not None
    assert search_run_ids(store, "second") == [run_id]  # its runs are not deleted
    with pytest.raises(InvalidInput, match="deleted"):
        run_service.create_run(store, "second")
    with pytest.raises(InvalidInput, match="cannot be deleted"):
        run_service.delete_experiment(store, run_service.DEFAULT_EXPERIMENT)
    run_service.restore_experiment(store, experiment.id)
    assert "second" in [e.name for e in run_service.list_experiments(store)]
    with pytest.raises(NotFound):
        run_service.delete_experiment(store, "9" * 40)
