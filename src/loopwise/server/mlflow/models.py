"""MLflow 3's logged models on loopwise: what ``mlflow.<flavor>.log_model`` calls.

An MLflow client creates the logged model (``POST logged-models``), links it to its run
(``POST runs/outputs``), uploads the model's folder to the model's own artifact location
(``mlflow-artifacts:/<experiment>/models/<id>/artifacts``, served by :mod:`.artifacts`)
and marks it ready (``PATCH logged-models/<id>``). The record lives in
``mlflow_logged_models`` and its files are rows of ``artifacts`` (entity ``mlflow_model``),
so :mod:`.registry` can turn a ready one into a loopwise model version.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import Request
from sqlalchemy import select, update

from loopwise.clock import now_us
from loopwise.errors import NotFound
from loopwise.server.access import check_experiment, check_run, store_of
from loopwise.server.mlflow import entities
from loopwise.server.mlflow.protocol import endpoint, invalid, items, run_id_of, text
from loopwise.store import Store
from loopwise.store.locks import lock_rows
from loopwise.store.tables import artifacts, experiments, mlflow_logged_models

ENTITY = "mlflow_model"
STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")


def model_row(store: Store, model_id: str) -> Any:
    """The logged model ``model_id`` with its experiment's name; MLflow's 404."""
    with store.db.read() as conn:
        row = conn.execute(
            select(mlflow_logged_models, experiments.c.name.label("experiment_name"))
            .join(experiments, experiments.c.id == mlflow_logged_models.c.experiment_id)
            .where(mlflow_logged_models.c.id == model_id)
        ).first()
    if row is None:
        raise NotFound(f"Logged model with ID '{model_id[:100]}' not found.")
    return row


def artifact_uri(row: Any) -> str:
    wire = entities.wire_experiment_id(row.experiment_name, row.experiment_id)
    return f"mlflow-artifacts:/{wire}/models/{row.id}/artifacts"


def model_message(row: Any) -> dict[str, Any]:
    """A logged model as MLflow's ``LoggedModel`` (info and data)."""
    wire = entities.wire_experiment_id(row.experiment_name, row.experiment_id)
    return {
        "info": {
            "model_id": row.id,
            "experiment_id": wire,
            "name": row.name,
            "creation_timestamp_ms": entities.ms(row.created_at),
            "last_updated_timestamp_ms": entities.ms(row.updated_at),
            "artifact_uri": artifact_uri(row),
            "status": row.status,
            "model_type": row.model_type or "",
            "source_run_id": row.source_run_id or "",
            "tags": json.loads(row.tags),
        },
        "data": {"params": json.loads(row.params), "metrics": []},
    }


def _pairs(entries: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for entry in entries:
        key = text(entry, "key", limit=250)
        value = entry.get("value", "")
        if not isinstance(value, str) or len(value) > 8000:
            raise invalid(f"The value of {key!r} must be text of at most 8,000 characters.")
        out.append({"key": key, "value": value})
    return out


def _merge(held: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    merged = {p["key"]: p["value"] for p in held}
    merged.update({p["key"]: p["value"] for p in new})
    return [{"key": k, "value": v} for k, v in sorted(merged.items())]


@endpoint("write")
def create_logged_model(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    store = store_of(request)
    experiment = entities.require_experiment(store, text(message, "experiment_id", limit=64))
    check_experiment(request, experiment.name)
    run_id = text(message, "source_run_id", required=False, limit=64)
    if run_id is not None:
        run_id = entities.run_row(store, run_id).id
        check_run(request, run_id)
    now = now_us()
    # MLflow's shape ("m-" and hex), 26 characters: a file's owner id in ``artifacts``.
    model_id = f"m-{uuid.uuid4().hex[:24]}"
    with store.db.write() as conn:
        conn.execute(
            mlflow_logged_models.insert().values(
                id=model_id,
                experiment_id=experiment.id,
                name=text(message, "name", required=False, limit=250) or "model",
                source_run_id=run_id,
                status="LOGGED_MODEL_PENDING",
                model_type=text(message, "model_type", required=False, limit=250),
                params=json.dumps(_merge([], _pairs(items(message, "params", limit=1000)))),
                tags=json.dumps(_merge([], _pairs(items(message, "tags", limit=1000)))),
                created_at=now,
                updated_at=now,
            )
        )
    return {"model": model_message(model_row(store, model_id))}


def _model_for(request: Request, model_id: str, permission_run: bool = True) -> Any:
    row = model_row(store_of(request), model_id)
    check_experiment(request, row.experiment_name)
    return row


@endpoint("read", body=False)
def get_logged_model(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    return {"model": model_message(_model_for(request, request.path_params["model_id"]))}


@endpoint("write")
def finalize_logged_model(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    row = _model_for(request, request.path_params["model_id"])
    status = text(message, "status", limit=64)
    if status not in STATUSES:
        raise invalid(f"Invalid logged model status {status!r}; use one of {', '.join(STATUSES)}.")
    store = store_of(request)
    with store.db.write() as conn:
        conn.execute(
            update(mlflow_logged_models)
            .where(mlflow_logged_models.c.id == row.id)
            .values(status=status, updated_at=now_us())
        )
    return {"model": model_message(model_row(store, row.id))}


def _retag(store: Store, model_id: str, change: Callable[[dict[str, str]], None]) -> None:
    """Apply ``change`` to a logged model's tags (a dict by key) with its row locked, so
    two writers' tags are both kept."""
    t = mlflow_logged_models.c
    with store.db.write() as conn:
        held = conn.execute(lock_rows(conn, select(t.tags).where(t.id == model_id))).scalar()
        tags = {p["key"]: p["value"] for p in json.loads(held or "[]")}
        change(tags)
        conn.execute(
            update(mlflow_logged_models)
            .where(t.id == model_id)
            .values(
                tags=json.dumps([{"key": k, "value": v} for k, v in sorted(tags.items())]),
                updated_at=now_us(),
            )
        )


@endpoint("write")
def set_logged_model_tags(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    row = _model_for(request, request.path_params["model_id"])
    new = {p["key"]: p["value"] for p in _pairs(items(message, "tags", limit=1000))}
    _retag(store_of(request), row.id, lambda tags: tags.update(new))
    return {}


@endpoint("write")
def delete_logged_model_tag(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    row = _model_for(request, request.path_params["model_id"])
    key = request.path_params["tag_key"]
    if key not in {p["key"] for p in json.loads(row.tags)}:
        raise NotFound(f"No tag with key {key[:250]!r} on logged model {row.id}.")
    _retag(store_of(request), row.id, lambda tags: tags.pop(key, None))
    return {}


@endpoint("read")
def search_logged_models(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    """Logged models of the experiments, optionally ``name = '<name>'`` (the one filter
    MLflow's own client sends); other filters are NOT_IMPLEMENTED."""
    store = store_of(request)
    ids = message.get("experiment_ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not ids:
        raise invalid("experiment_ids must be a non-empty list of experiment ids.")
    loopwise_ids = []
    for experiment_id in ids[:1000]:
        found = entities.require_experiment(store, experiment_id)
        check_experiment(request, found.name)
        loopwise_ids.append(found.id)
    query = (
        select(mlflow_logged_models, experiments.c.name.label("experiment_name"))
        .join(experiments, experiments.c.id == mlflow_logged_models.c.experiment_id)
        .where(mlflow_logged_models.c.experiment_id.in_(loopwise_ids))
        .order_by(mlflow_logged_models.c.created_at.desc(), mlflow_logged_models.c.id)
    )
    wanted = text(message, "filter", required=False, limit=1000)
    if wanted:
        name = _name_filter(wanted)
        query = query.where(mlflow_logged_models.c.name == name)
    with store.db.read() as conn:
        rows = conn.execute(query.limit(1000)).all()
    return {"models": [model_message(r) for r in rows]}


def _name_filter(expression: str) -> str:
    import re

    from loopwise.server.mlflow.protocol import unsupported

    match = re.fullmatch(r"\s*(?:attributes\.)?name\s*=\s*'((?:[^']|'')*)'\s*", expression)
    if match is None:
        raise unsupported(f"Searching logged models by {expression[:100]!r}")
    return match.group(1).replace("''", "'")


@endpoint("write")
def log_outputs(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    """``POST runs/outputs``: the run produced these logged models. Checked (the run and
    each model exist); the link is the model's ``source_run_id``."""
    store = store_of(request)
    run = entities.run_row(store, run_id_of(message))
    check_run(request, run.id)
    entities.require_active_run(run)
    for output in items(message, "models", limit=1000):
        model_row(store, text(output, "model_id", limit=64))
    return {}


HISTORY_TAG = "mlflow.log-model.history"
_HISTORY_FIELDS = ("artifact_path", "run_id", "utc_time_created", "model_uuid", "flavors")


@endpoint("write")
def log_model(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    """``POST runs/log-model`` (MLflow 2's ``log_model``, after it uploaded the model's
    folder to the run): recorded, as MLflow does, in the run's tag
    ``mlflow.log-model.history`` -- each entry's folder, time, id and flavor names (the
    signature stays in the folder's MLmodel), the newest entries that fit a tag."""
    from loopwise.tracking import runs as run_service
    from loopwise.tracking.runs import MAX_VALUE_LENGTH

    store = store_of(request)
    run = entities.run_row(store, run_id_of(message))
    check_run(request, run.id)
    entities.require_active_run(run)
    run_id = run.id
    raw = text(message, "model_json", limit=1_000_000)
    try:
        model = json.loads(raw)
    except ValueError:
        raise invalid("model_json is not JSON: send the MLmodel document as JSON.") from None
    if not isinstance(model, dict) or not isinstance(model.get("artifact_path", ""), str):
        raise invalid("model_json must be a JSON object (the MLmodel document).")
    entry = {k: model[k] for k in _HISTORY_FIELDS if k in model}
    if isinstance(entry.get("flavors"), dict):
        entry["flavors"] = sorted(entry["flavors"])
    held = run_service.get_run(store, run_id).tags.get(HISTORY_TAG)
    history = json.loads(held) if held else []
    history.append(entry)
    while history and len(json.dumps(history)) > MAX_VALUE_LENGTH:
        history.pop(0)
    if history:
        run_service.set_tags(store, run_id, {HISTORY_TAG: json.dumps(history)})
    return {}


def files_of(store: Store, model_id: str) -> list[Any]:
    """The artifacts rows of a logged model, by path."""
    with store.db.read() as conn:
        return conn.execute(
            select(artifacts)
            .where(artifacts.c.entity_type == ENTITY, artifacts.c.entity_id == model_id)
            .order_by(artifacts.c.path)
        ).all()


ROUTES = [
    ("POST", "logged-models", create_logged_model),
    ("GET", "logged-models/{model_id}", get_logged_model),
    ("PATCH", "logged-models/{model_id}", finalize_logged_model),
    ("PATCH", "logged-models/{model_id}/tags", set_logged_model_tags),
    ("DELETE", "logged-models/{model_id}/tags/{tag_key:path}", delete_logged_model_tag),
    ("POST", "logged-models/search", search_logged_models),
    ("POST", "runs/outputs", log_outputs),
    ("POST", "runs/log-model", log_model),
]
