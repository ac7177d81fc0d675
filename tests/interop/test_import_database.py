"""``loopwise import mlflow --from sqlite:///...``: an MLflow tracking database with local
artifact folders, written by MLflow itself, imported on both metadata backends."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete

from loopwise.interop.mlflow_import import RUN_ID_TAG, STATE_TAG, import_mlflow
from loopwise.interop.mlflow_source import open_source
from loopwise.registry import models as registry
from loopwise.store.tables import artifacts, run_params, run_tags
from loopwise.tracking import run_artifacts
from loopwise.tracking.runs import get_run, metric_history
from loopwise.tracking.search import search_runs
from tests.interop.conftest import Source, clone_source, log_mlflow
from tests.interop.readback import MODEL, check_initial, imported_ids
from tests.interop.readback import refused as _refused


def _row(output: str, kind: str) -> tuple[int, int, int]:
    """The (new, updated, unchanged) counts of ``kind`` in the summary table."""
    found = re.search(rf"^\s*{kind}\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)", output, re.MULTILINE)
    assert found, output
    return tuple(int(n.replace(",", "")) for n in found.groups())  # type: ignore[return-value]


def test_import_then_reimport_copies_only_what_is_new(
    invoke, store, shared_source: Source, tmp_path: Path
) -> None:
    source = clone_source(shared_source, tmp_path / "mlflow")
    first = invoke("import", "mlflow", "--from", source.url)
    assert first.exit_code == 0, first.output
    assert _row(first.output, "runs") == (5, 0, 0)
    assert _row(first.output, "versions") == (2, 0, 0)
    assert "1 runs" in first.output  # the deleted run is said to be left out
    ids = check_initial(store, source.logged)

    second = invoke("import", "mlflow", "--from", source.url)
    assert second.exit_code == 0, second.output
    assert "Nothing new to copy" in second.output
    assert _row(second.output, "runs") == (0, 0, 5)
    assert _row(second.output, "metric points") == (0, 0, 0)
    assert len(registry.list_versions(store, MODEL)) == 2

    logged = log_mlflow(source.folder, source.url, "more")
    registry.update_model(store, MODEL, tags={"owner": "set-in-loopwise"})
    third = invoke("import", "mlflow", "--from", source.url)
    assert third.exit_code == 0, third.output
    assert _row(third.output, "runs") == (1, 1, 4)
    assert _row(third.output, "metric points")[0] == 4  # 3 on the running run, 1 new run
    assert _row(third.output, "artifacts")[0] == 1
    assert _row(third.output, "aliases") == (0, 1, 0)
    assert _row(third.output, "versions") == (0, 0, 2)
    running = get_run(store, ids[logged["running"]])
    assert running.status == "KILLED"
    assert running.end_time is not None
    assert running.tags["phase"] == "done"
    acc = metric_history(store, running.id, "acc")
    assert acc["step"].tolist() == [0, 1, 2, 3, 4, 5]
    assert run_artifacts.read_artifact(store, running.id, "late.txt") == b"late"
    assert logged["newcomer"] in imported_ids(store)
    champion = registry.get_model_version(store, f"models:/{MODEL}@champion")
    assert champion.tags["mlflow.import.version"] == "2"
    # the model's new tag came along; loopwise's own tags on it are kept
    assert _row(third.output, "models") == (0, 1, 0)
    assert registry.get_model(store, MODEL).tags == {
        "team": "risk",
        "stage": "production",
        "owner": "set-in-loopwise",
    }
    assert len(search_runs(store)) == 6


def test_a_crashed_import_is_completed_not_copied_twice(store, shared_source: Source) -> None:
    """A run whose import stopped before its state tag (here: its state, a param and a
    file removed, as if the process died) is completed by the next import."""
    source = open_source(shared_source.url)
    try:
        import_mlflow(store, source)
        ids = imported_ids(store)
        baseline = ids[shared_source.logged["baseline"]]
        with store.db.write() as conn:
            conn.execute(
                delete(run_tags).where(run_tags.c.run_id == baseline, run_tags.c.key == STATE_TAG)
            )
            conn.execute(
                delete(run_params).where(run_params.c.run_id == baseline, run_params.c.key == "C")
            )
            conn.execute(
                delete(artifacts).where(
                    artifacts.c.entity_id == baseline, artifacts.c.path == "notes/readme.txt"
                )
            )
        summary = import_mlflow(store, source)
    finally:
        source.close()
    assert vars(summary.counts["runs"]) == {"new": 0, "updated": 1, "skipped": 4}
    assert summary.counts["metric points"].new == 0  # none copied twice
    assert imported_ids(store) == ids
    run = get_run(store, baseline)
    assert run.params["C"] == "1.0"
    assert STATE_TAG in run.tags
    assert RUN_ID_TAG in run.tags
    assert run_artifacts.read_artifact(store, baseline, "notes/readme.txt") == b"hello from mlflow"
    assert len(metric_history(store, baseline, "loss")) == 5


def test_only_the_experiments_asked_for(invoke, store, shared_source: Source) -> None:
    done = invoke("import", "mlflow", "--from", shared_source.url, "--experiment", "churn")
    assert done.exit_code == 0, done.output
    names = {get_run(store, i).name for i in imported_ids(store).values()}
    assert names == {"still-running"}
    assert registry.get_model(store, MODEL) is None  # its versions come from other runs


def test_metric_points_keep_steps_timestamps_and_non_finite_values(
    store, shared_source: Source
) -> None:
    source = open_source(shared_source.url)
    try:
        summary = import_mlflow(store, source)
    finally:
        source.close()
    assert summary.counts["metric points"].new == 13
    baseline = imported_ids(store)[shared_source.logged["baseline"]]
    odd = metric_history(store, baseline, "odd")
    assert np.isnan(odd["value"][0])
    assert np.isposinf(odd["value"][1])


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("revision", "words"),
    [("451aebb31d03", ["older", "mlflow db upgrade"]), ("fedcba987654", ["does not know"])],
)
def test_an_mlflow_schema_too_old_or_too_new(
    invoke, shared_source: Source, tmp_path: Path, revision: str, words: list[str]
) -> None:
    copy = tmp_path / "mlflow.db"
    shutil.copy(shared_source.db, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    output = _refused(invoke("import", "mlflow", "--from", f"sqlite:///{copy}"), *words)
    assert "dc11669786a5" in output  # the newest revision it reads


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_unknown_experiment(invoke, shared_source: Source) -> None:
    _refused(
        invoke("import", "mlflow", "--from", shared_source.url, "-e", "nope"), "'nope'", "fraud"
    )
