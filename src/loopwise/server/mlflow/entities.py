"""loopwise's experiments and runs as MLflow's wire messages, and MLflow's ids as loopwise's.

One store, two faces: an MLflow experiment is a loopwise experiment and an MLflow run a
loopwise run, with the same ids -- except MLflow's default experiment, whose id is "0" and
whose name is "Default", which is loopwise's ``default`` experiment. Times go out in
milliseconds (loopwise keeps microseconds); a non-finite metric goes out as MLflow's client
spells it (``"NaN"``, ``"Infinity"``); a run's artifacts are handed out as an
``mlflow-artifacts:/<experiment>/<run>/artifacts`` URI, which the client resolves against
the server (:mod:`.artifacts`). A loopwise run that was ``LOST`` (its process died) is
``FAILED`` to MLflow, which has no such state. A deleted run or experiment (loopwise's
soft delete, ``deleted_at``) is MLflow's ``lifecycle_stage`` ``"deleted"``.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from loopwise.errors import NotFound
from loopwise.server.mlflow.protocol import invalid
from loopwise.store import Store
from loopwise.store.raw_reads import rows_by_ids
from loopwise.store.tables import (
    experiment_tags,
    experiments,
    metric_series,
    mlflow_run_inputs,
    run_params,
    run_tags,
    runs,
)
from loopwise.tracking.runs import DEFAULT_EXPERIMENT

DEFAULT_ID = "0"
DEFAULT_NAME = "Default"
RUN_NAME_TAG = "mlflow.runName"
PARENT_TAG = "mlflow.parentRunId"
_STATUS = {"LOST": "FAILED"}


def ms(us: int | None) -> int | None:
    """Microseconds as milliseconds (MLflow's unit)."""
    return None if us is None else us // 1000


def double(value: float | None) -> float | str:
    """A metric value as MLflow's JSON carries it (NULL is how loopwise stores NaN)."""
    if value is None or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def wire_experiment_id(loopwise_name: str, loopwise_id: str) -> str:
    return DEFAULT_ID if loopwise_name == DEFAULT_EXPERIMENT else loopwise_id


def loopwise_experiment_name(mlflow_name: str) -> str:
    """The loopwise experiment an MLflow experiment name means."""
    return DEFAULT_EXPERIMENT if mlflow_name == DEFAULT_NAME else mlflow_name


def find_experiment(store: Store, experiment_id: str) -> Any | None:
    """The experiments row of MLflow id ``experiment_id`` (None if there is none; "0" is
    created on first use, as MLflow's default experiment always exists)."""
    if experiment_id == DEFAULT_ID:
        from loopwise.tracking.runs import get_or_create_experiment

        get_or_create_experiment(store, DEFAULT_EXPERIMENT)
        where = experiments.c.name == DEFAULT_EXPERIMENT
    else:
        where = experiments.c.id == experiment_id
    with store.db.read() as conn:
        return conn.execute(select(experiments).where(where)).first()


def require_experiment(store: Store, experiment_id: str) -> Any:
    row = find_experiment(store, experiment_id)
    if row is None:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    return row


NOTE_TAG = "mlflow.note.content"


def lifecycle(row: Any) -> str:
    """MLflow's ``lifecycle_stage`` of a runs or experiments row."""
    return "deleted" if row.deleted_at is not None else "active"


def require_active_run(row: Any) -> None:
    """MLflow's refusal of a write to a deleted run (its words, its code)."""
    if row.deleted_at is not None:
        raise invalid(f"The run {row.id} must be in the 'active' state. Current state is deleted.")


def experiment_tag_lists(store: Store, ids: list[str]) -> dict[str, list[dict[str, str]]]:
    """The tags of experiments ``ids`` as MLflow's lists, in one query per 500 ids."""
    found: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
    t = experiment_tags.c
    with store.db.read() as conn:
        for start in range(0, len(ids), 500):
            for experiment_id, key, value in conn.execute(
                select(t.experiment_id, t.key, t.value)
                .where(t.experiment_id.in_(ids[start : start + 500]))
                .order_by(t.experiment_id, t.key)
            ):
                found[experiment_id].append({"key": key, "value": value})
    return found


def experiment_message(
    row: Any, last_update_us: int | None = None, tags: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """An experiments row as MLflow's ``Experiment``; ``tags`` from
    :func:`experiment_tag_lists` (the description is the note tag unless one is set)."""
    wire_id = wire_experiment_id(row.name, row.id)
    name = DEFAULT_NAME if row.name == DEFAULT_EXPERIMENT else row.name
    tags = list(tags or [])
    if row.description and NOTE_TAG not in {t["key"] for t in tags}:
        tags.append({"key": NOTE_TAG, "value": row.description})
    return {
        "experiment_id": wire_id,
        "name": name,
        "artifact_location": f"mlflow-artifacts:/{wire_id}",
        "lifecycle_stage": lifecycle(row),
        "creation_time": ms(row.created_at),
        "last_update_time": ms(last_update_us if last_update_us is not None else row.created_at),
        "tags": tags,
    }


def artifact_uri(experiment_wire_id: str, run_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_wire_id}/{run_id}/artifacts"


def run_row(store: Store, run_id: str) -> Any:
    """The runs row (with its experiment's name) of exactly ``run_id``; MLflow's 404."""
    with store.db.read() as conn:
        row = conn.execute(
            select(runs, experiments.c.name.label("experiment_name"))
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .where(runs.c.id == run_id)
        ).first()
    if row is None:
        raise NotFound(f"Run '{run_id}' not found")
    return row


def run_info(row: Any) -> dict[str, Any]:
    """A runs row as MLflow's ``RunInfo``."""
    wire_id = wire_experiment_id(row.experiment_name, row.experiment_id)
    return {
        "run_id": row.id,
        "run_uuid": row.id,
        "run_name": row.name,
        "experiment_id": wire_id,
        "user_id": row.username or "",
        "status": _STATUS.get(row.status, row.status),
        "start_time": ms(row.start_time),
        "end_time": ms(row.end_time),
        "artifact_uri": artifact_uri(wire_id, row.id),
        "lifecycle_stage": lifecycle(row),
    }


#: The three reads of :func:`run_messages` (table and column names only; see
#: :func:`loopwise.store.raw_reads.rows_by_ids`).
_METRICS_SQL = (
    f"SELECT run_id, key, last_value, last_step, last_timestamp FROM {metric_series.name} "
    "WHERE run_id {ids} ORDER BY run_id, key"
)
_PARAMS_SQL = (
    f"SELECT run_id, key, value FROM {run_params.name} WHERE run_id {{ids}} ORDER BY run_id, key"
)
_TAGS_SQL = (
    f"SELECT run_id, key, value FROM {run_tags.name} WHERE run_id {{ids}} ORDER BY run_id, key"
)


class RunRow(NamedTuple):
    """The fields of a run :func:`run_info` and :func:`run_messages` read."""

    id: str
    name: str
    experiment_id: str
    experiment_name: str
    username: str | None
    status: str
    start_time: int | None
    end_time: int | None
    deleted_at: int | None
    parent_run_id: str | None


_RUNS_SQL = (
    "SELECT r.id, r.name, r.experiment_id, e.name, r.username, r.status, r.start_time, "
    f"r.end_time, r.deleted_at, r.parent_run_id FROM {runs.name} r "
    f"JOIN {experiments.name} e ON e.id = r.experiment_id WHERE r.id {{ids}}"
)


def page_messages(store: Store, ids: list[str]) -> list[dict[str, Any]]:
    """MLflow's ``Run`` messages of runs ``ids`` in that order (a search's page), read in
    one transaction through the driver: the runs, then their params, tags and metrics."""
    with store.db.read() as conn:
        rows = {r[0]: RunRow(*r) for r in rows_by_ids(conn, _RUNS_SQL, ids)}
        return _messages(conn, [rows[i] for i in ids if i in rows])


_INPUTS_SQL = (
    f"SELECT run_id, kind, body, tags FROM {mlflow_run_inputs.name} "
    "WHERE run_id {ids} ORDER BY run_id, id"
)


def _inputs(conn: Connection, ids: list[str]) -> dict[str, dict[str, list[Any]]]:
    """MLflow's ``RunInputs`` of the runs that have any: the datasets (with their input
    tags) and the logged models an MLflow client logged as their inputs."""
    found: dict[str, dict[str, list[Any]]] = {}
    for run_id, kind, body, tags in rows_by_ids(conn, _INPUTS_SQL, ids):
        held = found.setdefault(run_id, {"dataset_inputs": []})
        if kind == "model":
            held.setdefault("model_inputs", []).append(json.loads(body))
        else:
            held["dataset_inputs"].append({"tags": json.loads(tags), "dataset": json.loads(body)})
    return found


def run_messages(store: Store, rows: list[Any]) -> list[dict[str, Any]]:
    """Runs rows as MLflow's ``Run`` messages (info, data, inputs), in the rows' order,
    with three queries for all of them."""
    with store.db.read() as conn:
        return _messages(conn, rows)


def _messages(conn: Connection, rows: list[Any]) -> list[dict[str, Any]]:
    """The messages of ``rows``, their params, tags and latest metrics read through the
    driver (a search's page is a few thousand of these short rows:
    :mod:`loopwise.store.raw_reads`)."""
    ids = [r.id for r in rows]
    metrics: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    params: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    tags: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for run_id, key, value, step, stamp in rows_by_ids(conn, _METRICS_SQL, ids):
        metrics[run_id].append(
            {
                "key": key,
                "value": double(value),
                "timestamp": None if stamp is None else stamp // 1000,
                "step": step or 0,
            }
        )
    for run_id, key, value in rows_by_ids(conn, _PARAMS_SQL, ids):
        params[run_id].append({"key": key, "value": value})
    for run_id, key, value in rows_by_ids(conn, _TAGS_SQL, ids):
        if key != RUN_NAME_TAG:  # the run's name is the truth, never a stale copy
            tags[run_id].append({"key": key, "value": value})
    inputs = _inputs(conn, ids)
    messages = []
    for row in rows:
        own = tags[row.id]
        has_parent = any(t["key"] == PARENT_TAG for t in own)
        own.append({"key": RUN_NAME_TAG, "value": row.name})
        if row.parent_run_id and not has_parent:
            own.append({"key": PARENT_TAG, "value": row.parent_run_id})
        messages.append(
            {
                "info": run_info(row),
                "data": {"metrics": metrics[row.id], "params": params[row.id], "tags": own},
                "inputs": inputs.get(row.id) or {"dataset_inputs": []},
            }
        )
    return messages


def run_message(store: Store, run_id: str) -> dict[str, Any]:
    return run_messages(store, [run_row(store, run_id)])[0]


__all__ = [
    "DEFAULT_ID",
    "DEFAULT_NAME",
    "artifact_uri",
    "double",
    "experiment_message",
    "experiment_tag_lists",
    "find_experiment",
    "lifecycle",
    "loopwise_experiment_name",
    "ms",
    "page_messages",
    "require_active_run",
    "require_experiment",
    "run_info",
    "run_message",
    "run_messages",
    "run_row",
    "wire_experiment_id",
]
