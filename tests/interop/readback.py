"""What the tests read back after an import of ``mlflow_log.py``'s initial phase, through
loopwise's own API (the store's services): the same checks for every kind of source."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from sqlalchemy import select

from loopwise.interop.mlflow_import import RUN_ID_TAG, VERSION_TAG
from loopwise.registry import models as registry
from loopwise.registry.loading import load_model
from loopwise.store import Store
from loopwise.store.tables import mlflow_run_inputs
from loopwise.tracking import run_artifacts
from loopwise.tracking.runs import get_run, metric_history
from loopwise.tracking.search import search_runs

MODEL = "fraud-model"


def imported_ids(store: Store) -> dict[str, str]:
    """MLflow run id -> loopwise run id, read from the imported runs' tags."""
    found = search_runs(store, max_results=None)
    return {get_run(store, run_id).tags[RUN_ID_TAG]: run_id for run_id in found["run_id"]}


def check_initial(store: Store, logged: dict[str, Any]) -> dict[str, str]:
    """Everything the initial phase logged is in ``store``; MLflow id -> loopwise id."""
    ids = imported_ids(store)
    names = {get_run(store, i).name for i in ids.values()}
    assert names == {"baseline", "stronger", "broken", "still-running", "in-default"}
    assert logged["deleted"] not in ids
    assert logged["ghost"] not in ids

    baseline = get_run(store, ids[logged["baseline"]])
    assert baseline.experiment == "fraud"
    assert baseline.status == "FINISHED"
    assert baseline.end_time >= baseline.start_time
    assert baseline.params == {"C": "1.0", "penalty": "l2"}
    assert baseline.tags["team"] == "risk"
    assert baseline.tags["mlflow.runName"] == "baseline"
    loss = metric_history(store, baseline.id, "loss")
    assert loss["step"].tolist() == [0, 1, 2, 3, 4]
    assert np.allclose(loss["value"], [1 / (s + 1) for s in range(5)])
    odd = metric_history(store, baseline.id, "odd")
    assert odd["step"].tolist() == [0, 1, 2]
    assert math.isnan(odd["value"][0])
    assert odd["value"][1] == math.inf
    assert odd["value"][2] == 0.5
    assert run_artifacts.read_artifact(store, baseline.id, "notes/readme.txt") == (
        b"hello from mlflow"
    )
    nested = run_artifacts.read_artifact(store, baseline.id, "config/nested/params.json")
    assert json.loads(nested) == {"depth": 3}

    assert get_run(store, ids[_by_name(store, ids, "broken")]).status == "FAILED"
    running = get_run(store, ids[logged["running"]])
    assert running.status == "RUNNING"
    assert running.end_time is None
    assert running.experiment == "churn"
    assert running.params == {"epochs": "10"}
    acc = metric_history(store, running.id, "acc")
    assert acc["step"].tolist() == [0, 1, 2]
    assert [t.value // 1000 for t in acc["timestamp"]] == [
        1_700_000_000_000_000 + s * 1000 for s in range(3)
    ]
    assert get_run(store, ids[_by_name(store, ids, "in-default")]).experiment == "default"

    assert registry.get_model(store, MODEL).tags["team"] == "risk"
    # the dataset MLflow logged as an input of "stronger" came along, as MLflow answers it
    with store.db.read() as conn:
        (inputs,) = conn.execute(
            select(mlflow_run_inputs.c.body, mlflow_run_inputs.c.tags).where(
                mlflow_run_inputs.c.run_id == ids[logged["stronger"]]
            )
        ).all()
    assert json.loads(inputs.body)["name"] == "train"
    assert json.loads(inputs.body)["source_type"] == "s3"
    assert json.loads(inputs.tags) == [{"key": "mlflow.data.context", "value": "training"}]
    versions = registry.list_versions(store, MODEL)
    assert [v.tags[VERSION_TAG] for v in versions] == ["1", "2"]
    assert {v.flavor for v in versions} == {"mlflow"}
    assert versions[0].run_id == ids[logged["baseline"]]  # lineage to the imported run
    assert versions[1].run_id == ids[logged["stronger"]]
    champion = registry.get_model_version(store, f"models:/{MODEL}@champion")
    assert champion.tags[VERSION_TAG] == "1"
    model = load_model(store, f"models:/{MODEL}@champion")
    X = np.array(logged["X"])
    assert model.predict(X).tolist() == logged["predictions"]
    return ids


def _by_name(store: Store, ids: dict[str, str], name: str) -> str:
    (found,) = [m for m, i in ids.items() if get_run(store, i).name == name]
    return found


def refused(done: Any, *words: str) -> str:
    """The output of a CLI call refused with one ``Error:`` line holding ``words``."""
    assert done.exit_code == 1, done.output
    assert "Traceback" not in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert len(lines) == 1, done.output  # one line (the progress bar, if any, is gone)
    assert lines[0].startswith("Error: "), done.output
    for word in words:
        assert word in done.output, done.output
    return done.output
