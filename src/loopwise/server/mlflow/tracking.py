"""MLflow's tracking API (``/api/2.0/mlflow/experiments/*``, ``runs/*``, ``metrics/*``) on
loopwise's tracking services: what an unchanged MLflow client calls for
``set_experiment``, ``start_run``, ``log_param(s)``, ``log_metric(s)``, ``set_tag(s)``,
``end_run``, ``search_runs`` and ``get_metric_history``.

Each handler takes the MLflow message (the JSON body of a POST, the query of a GET), checks
its fields with MLflow's error codes (:mod:`.protocol`), calls the same service the Python
API and ``/api/v1`` call, and answers MLflow's message (:mod:`.entities`). What an MLflow
client logs is an ordinary loopwise run: it is in ``lw.search_runs``, the web UI and the
lineage graph.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import Request
from sqlalchemy import func, select

from loopwise.errors import Conflict, NotFound
from loopwise.server.access import check_experiment, check_run, experiment_scope, store_of
from loopwise.server.mlflow import entities
from loopwise.server.mlflow.protocol import (
    MlflowApiError,
    endpoint,
    integer,
    invalid,
    items,
    number,
    run_id_of,
    text,
    unsupported,
)
from loopwise.server.mlflow.search import loopwise_filter_and_stages, loopwise_order
from loopwise.store.tables import experiments, runs
from loopwise.tracking import runs as run_service
from loopwise.tracking.log_batch import log_batch
from loopwise.tracking.search_pages import search_page

#: MLflow's limits on one log-batch (its client splits bigger batches).
MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS = 1000, 100, 100
#: The most runs one search page holds here (MLflow's client pages on with the token).
MAX_SEARCH_PAGE = 1000
_FINAL = {"FINISHED", "FAILED", "KILLED"}


def _store(request: Request) -> Any:
    return store_of(request)


def _writable_run(request: Request, run_id: str, *, active: bool = True) -> str:
    """``run_id`` as an existing run the caller may write to; one that is deleted is
    refused as MLflow refuses it (``active=False``: deleting and restoring take either)."""
    store = _store(request)
    row = entities.run_row(store, run_id)
    check_run(request, row.id)
    if active:
        entities.require_active_run(row)
    return row.id


# -- experiments -----------------------------------------------------------------------------


def _experiment_answer(request: Request, row: Any) -> dict[str, Any]:
    check_experiment(request, row.name)
    tags = entities.experiment_tag_lists(_store(request), [row.id])[row.id]
    return {"experiment": entities.experiment_message(row, tags=tags)}


def _writable_experiment(request: Request, message: dict[str, Any]) -> Any:
    """The experiments row of the message's ``experiment_id`` the caller may write to."""
    row = entities.require_experiment(_store(request), text(message, "experiment_id", limit=64))
    check_experiment(request, row.name)
    return row


def _view(message: dict[str, Any], field: str) -> str:
    """MLflow's ViewType (by name or number) as a loopwise lifecycle: "active", "deleted"
    or "all"."""
    views = {"ACTIVE_ONLY": "active", "DELETED_ONLY": "deleted", "ALL": "all"}
    numbers = {1: "active", 2: "deleted", 3: "all"}
    view = message.get(field)
    if view is None or view == "":
        return "active"
    if isinstance(view, str) and view.upper() in views:
        return views[view.upper()]
    if isinstance(view, str) and view.isdigit() and int(view) in numbers:
        return numbers[int(view)]
    if isinstance(view, int) and not isinstance(view, bool) and view in numbers:
        return numbers[view]
    raise invalid(f"Invalid {field} {str(view)[:40]!r}; use ACTIVE_ONLY, DELETED_ONLY or ALL.")


@endpoint("read", body=False)
def get_experiment_by_name(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    name = text(message, "experiment_name", limit=250)
    store = _store(request)
    with store.db.read() as conn:
        row = conn.execute(
            select(experiments).where(experiments.c.name == entities.loopwise_experiment_name(name))
        ).first()
    if row is None and name == entities.DEFAULT_NAME:
        row = entities.find_experiment(store, entities.DEFAULT_ID)
    if row is None:
        raise MlflowApiError(
            "RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{name}'", 404
        )
    return _experiment_answer(request, row)


@endpoint("read", body=False)
def get_experiment(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    experiment_id = text(message, "experiment_id", limit=64)
    return _experiment_answer(request, entities.require_experiment(_store(request), experiment_id))


@endpoint("write")
def create_experiment(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    name = text(message, "name", limit=250)
    location = text(message, "artifact_location", required=False)
    if location:
        raise unsupported("An experiment's own artifact_location")
    tags = _pairs(items(message, "tags", limit=100), "experiment tag", 8000)
    loopwise_name = entities.loopwise_experiment_name(name)
    run_service.check_experiment_name(loopwise_name)
    check_experiment(request, loopwise_name)
    store = _store(request)
    with store.db.read() as conn:
        taken = conn.execute(
            select(experiments.c.id).where(experiments.c.name == loopwise_name)
        ).first()
    if taken is not None:
        raise MlflowApiError(
            "RESOURCE_ALREADY_EXISTS", f"Experiment(name={name}) already exists.", 400
        )
    run_service.check_experiment_tags(store, name, tags)  # before anything is created
    created = run_service.get_or_create_experiment(store, loopwise_name)
    for key, value in tags.items():
        run_service.set_experiment_tag(store, created.id, key, value)
    return {"experiment_id": entities.wire_experiment_id(created.name, created.id)}


@endpoint("write")
def update_experiment(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    """``experiments/update``: MLflow's rename (``new_name``)."""
    row = _writable_experiment(request, message)
    new_name = text(message, "new_name", required=False, limit=250)
    if new_name is not None:
        loopwise_name = entities.loopwise_experiment_name(new_name)
        check_experiment(request, loopwise_name)
        try:
            run_service.rename_experiment(_store(request), row.id, loopwise_name)
        except Conflict:
            raise MlflowApiError(
                "RESOURCE_ALREADY_EXISTS", f"Experiment(name={new_name}) already exists.", 400
            ) from None
    return {}


@endpoint("write")
def delete_experiment(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    """``experiments/delete``: a soft delete (``experiments/restore`` undoes it)."""
    row = _writable_experiment(request, message)
    if row.name == run_service.DEFAULT_EXPERIMENT:
        raise invalid(
            f"Cannot delete the default experiment '{entities.DEFAULT_ID}'. This is a reserved "
            "experiment."
        )
    run_service.delete_experiment(_store(request), row.id)
    return {}


@endpoint("write")
def restore_experiment(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    row = _writable_experiment(request, message)
    run_service.restore_experiment(_store(request), row.id)
    return {}


def _active_experiment(request: Request, message: dict[str, Any]) -> Any:
    """:func:`_writable_experiment`, refused as MLflow refuses it when it is deleted."""
    row = _writable_experiment(request, message)
    if row.deleted_at is not None:
        raise invalid(
            f"The experiment {row.id} must be in the 'active' state. Current state is deleted."
        )
    return row


@endpoint("write")
def set_experiment_tag(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    row = _active_experiment(request, message)
    ((key, value),) = _pairs([message], "experiment tag", 8000).items()
    run_service.set_experiment_tag(_store(request), row.id, key, value)
    return {}


@endpoint("write")
def delete_experiment_tag(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    row = _active_experiment(request, message)
    run_service.delete_experiment_tag(_store(request), row.id, text(message, "key", limit=250))
    return {}


@endpoint("read")
def search_experiments(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    if text(message, "filter", required=False):
        raise unsupported("Filtering experiments")
    max_results = integer(message, "max_results", default=1000) or 1000
    if not 1 <= max_results <= 50_000:
        raise invalid("max_results must be between 1 and 50000.")
    offset = _offset(message)
    view = _view(message, "view_type")
    store = _store(request)
    with store.db.read() as conn:
        last_run = (
            select(runs.c.experiment_id, func.max(runs.c.start_time).label("last"))
            .group_by(runs.c.experiment_id)
            .subquery()
        )
        query = (
            select(experiments, last_run.c.last)
            .outerjoin(last_run, last_run.c.experiment_id == experiments.c.id)
            .order_by(experiments.c.created_at.desc(), experiments.c.id)
        )
        if view == "active":
            query = query.where(experiments.c.deleted_at.is_(None))
        elif view == "deleted":
            query = query.where(experiments.c.deleted_at.is_not(None))
        rows = conn.execute(query).all()
    scope = experiment_scope(request)
    if scope is not None:
        rows = [r for r in rows if scope.allows_experiment(r.name)]
    page = rows[offset : offset + max_results]
    token = _token(offset + max_results) if offset + max_results < len(rows) else None
    tags = entities.experiment_tag_lists(store, [r.id for r in page])
    answer: dict[str, Any] = {
        "experiments": [entities.experiment_message(r, r.last, tags[r.id]) for r in page]
    }
    if token:
        answer["next_page_token"] = token
    return answer


def _offset(message: dict[str, Any]) -> int:
    token = text(message, "page_token", required=False, limit=200)
    if token is None:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["o"]
    except (ValueError, KeyError, TypeError):
        raise invalid("Invalid page token; pass the next_page_token of the last answer.") from None
    if not isinstance(offset, int) or offset < 0:
        raise invalid("Invalid page token; pass the next_page_token of the last answer.")
    return offset


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


# -- runs ------------------------------------------------------------------------------------


@endpoint("write")
def create_run(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    store = _store(request)
    experiment_id = text(message, "experiment_id", required=False, limit=64) or "0"
    experiment = entities.require_experiment(store, experiment_id)
    check_experiment(request, experiment.name)
    tags = {}
    for tag in items(message, "tags", limit=MAX_BATCH_TAGS):
        tags[text(tag, "key", limit=250)] = text(tag, "value", required=False, limit=8000) or ""
    name = text(message, "run_name", required=False, limit=250) or tags.get(entities.RUN_NAME_TAG)
    parent = tags.pop("mlflow.parentRunId", None)
    if parent is not None:
        parent = _writable_run(request, parent)
    user = text(message, "user_id", required=False, limit=255)
    run_id = run_service.create_run(
        store,
        experiment.name,
        name=name or None,
        tags=tags,
        parent_run_id=parent,
        watched=False,
        user=user,
    )
    return {"run": entities.run_message(store, run_id)}


@endpoint("write")
def update_run(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    run_id = _writable_run(request, run_id_of(message))
    store = _store(request)
    status = text(message, "status", required=False, limit=16)
    name = text(message, "run_name", required=False)
    if name is not None and name != entities.run_row(store, run_id).name:
        run_service.rename_run(store, run_id, name)
    if status is not None:
        if status in _FINAL:
            run_service.end_run(store, run_id, status)
        elif status != "RUNNING":
            raise invalid(
                f"Invalid run status {status!r}; use RUNNING, FINISHED, FAILED or KILLED."
            )
    return {"run_info": entities.run_info(entities.run_row(store, run_id))}


@endpoint("read", body=False)
def get_run(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    run_id = run_id_of(message)
    row = entities.run_row(_store(request), run_id)
    check_run(request, row.id)
    return {"run": entities.run_messages(_store(request), [row])[0]}


def _metric_points(metrics: list[dict[str, Any]]) -> list[tuple[str, float, int, int]]:
    points = []
    for m in metrics:
        key = text(m, "key", limit=250)
        if "value" not in m:
            raise invalid(f"Missing value for required parameter 'value' of metric {key!r}.")
        value = number(m["value"], "value")
        stamp = integer(m, "timestamp")
        if stamp is None:
            raise invalid(f"Missing value for required parameter 'timestamp' of metric {key!r}.")
        if not 0 <= stamp <= 2**63 // 1000 - 1:
            raise invalid(f"Metric {key!r} has timestamp {stamp}, not a time in milliseconds.")
        step = integer(m, "step", default=0) or 0
        points.append((key, value, step, stamp * 1000))
    return points


def _pairs(entries: list[dict[str, Any]], what: str, limit: int) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in entries:
        key = text(entry, "key", limit=250)
        value = entry.get("value")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise invalid(f"The value of {what} {key!r} must be a string.")
        if len(value) > limit:
            raise invalid(f"The value of {what} {key!r} is longer than {limit:,} characters.")
        found[key] = value
    return found


@endpoint("write")
def log_batch_route(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    run_id = _writable_run(request, run_id_of(message))
    metrics = _metric_points(items(message, "metrics", limit=MAX_BATCH_METRICS))
    params = _pairs(items(message, "params", limit=MAX_BATCH_PARAMS), "param", 6000)
    tags = _pairs(items(message, "tags", limit=MAX_BATCH_TAGS), "tag", 8000)
    tags = _renamed(request, run_id, tags)
    log_batch(_store(request), run_id, params=params, tags=tags, metrics=metrics)
    return {}


@endpoint("write")
def log_metric(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    run_id = _writable_run(request, run_id_of(message))
    (point,) = _metric_points([message])
    log_batch(_store(request), run_id, metrics=[point])
    return {}


@endpoint("write")
def log_param(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    run_id = _writable_run(request, run_id_of(message))
    log_batch(_store(request), run_id, params=_pairs([message], "param", 6000))
    return {}


@endpoint("write")
def set_tag(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    run_id = _writable_run(request, run_id_of(message))
    tags = _renamed(request, run_id, _pairs([message], "tag", 8000))
    log_batch(_store(request), run_id, tags=tags)
    return {}


def _renamed(request: Request, run_id: str, tags: dict[str, str]) -> dict[str, str]:
    """The tags without ``mlflow.runName``, which renames the run (MLflow's
    ``set_tag("mlflow.runName", ...)``): the name is the run's, not a second copy."""
    name = tags.pop(entities.RUN_NAME_TAG, None)
    if name is not None:
        store = _store(request)
        if name != entities.run_row(store, run_id).name:
            run_service.rename_run(store, run_id, name)
    return tags


@endpoint("write")
def delete_tag(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    run_id = _writable_run(request, run_id_of(message))
    run_service.delete_tag(_store(request), run_id, text(message, "key", limit=250))
    return {}


@endpoint("write")
def delete_run(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    """``runs/delete``: a soft delete (out of searches; ``runs/get`` still answers it)."""
    run_service.delete_run(
        _store(request), _writable_run(request, run_id_of(message), active=False)
    )
    return {}


@endpoint("write")
def restore_run(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    run_service.restore_run(
        _store(request), _writable_run(request, run_id_of(message), active=False)
    )
    return {}


@endpoint("read")
def search_runs(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    store = _store(request)
    ids = message.get("experiment_ids") or []
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not ids:
        raise invalid("experiment_ids must be a non-empty list of experiment ids.")
    names = []
    for experiment_id in ids[:1000]:
        row = entities.find_experiment(store, experiment_id)
        if row is None:
            raise NotFound(f"No Experiment with id={experiment_id} exists")
        check_experiment(request, row.name)
        names.append(row.name)
    stages = {"active": {"active"}, "deleted": {"deleted"}, "all": {"active", "deleted"}}
    wanted = stages[_view(message, "run_view_type")]
    mlflow_filter, filtered = loopwise_filter_and_stages(
        text(message, "filter", required=False, limit=100_000)
    )
    if filtered is not None:
        wanted &= filtered
    if not wanted:
        return {"runs": []}
    lifecycle = "all" if len(wanted) == 2 else next(iter(wanted))
    max_results = integer(message, "max_results", default=1000) or 1000
    if not 1 <= max_results <= 50_000:
        raise invalid("max_results must be between 1 and 50000.")
    order = message.get("order_by") or []
    if isinstance(order, str):
        order = [order]
    if not isinstance(order, list) or not all(isinstance(o, str) for o in order):
        raise invalid("order_by must be a list of strings.")
    page = search_page(
        store,
        experiment=names,
        filter=mlflow_filter,
        order_by=loopwise_order(order),
        max_results=min(max_results, MAX_SEARCH_PAGE),
        page_token=text(message, "page_token", required=False, limit=65_536),
        ids_only=True,
        lifecycle=lifecycle,
    )
    answer: dict[str, Any] = {"runs": entities.page_messages(store, [r["id"] for r in page.runs])}
    if page.next_page_token:
        answer["next_page_token"] = page.next_page_token
    return answer


@endpoint("read", body=False)
def get_metric_history(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    run_id = run_id_of(message)
    key = text(message, "metric_key", limit=250)
    store = _store(request)
    row = entities.run_row(store, run_id)
    check_run(request, row.id)
    max_results = integer(message, "max_results", default=None)
    offset = _offset(message)
    try:
        steps, stamps, values = run_service.metric_arrays(store, row.id, key)
    except NotFound:
        return {"metrics": []}
    end = len(steps) if max_results is None else min(len(steps), offset + max(1, max_results))
    points = [
        {
            "key": key,
            "value": entities.double(float(values[i])),
            "timestamp": int(stamps[i]) // 1000,
            "step": int(steps[i]),
        }
        for i in range(offset, end)
    ]
    answer: dict[str, Any] = {"metrics": points}
    if end < len(steps):
        answer["next_page_token"] = _token(end)
    return answer


ROUTES = [
    ("GET", "experiments/get-by-name", get_experiment_by_name),
    ("GET", "experiments/get", get_experiment),
    ("POST", "experiments/create", create_experiment),
    ("POST", "experiments/search", search_experiments),
    ("POST", "experiments/update", update_experiment),
    ("POST", "experiments/delete", delete_experiment),
    ("POST", "experiments/restore", restore_experiment),
    ("POST", "experiments/set-experiment-tag", set_experiment_tag),
    ("POST", "experiments/delete-experiment-tag", delete_experiment_tag),
    ("POST", "runs/create", create_run),
    ("POST", "runs/update", update_run),
    ("GET", "runs/get", get_run),
    ("POST", "runs/log-batch", log_batch_route),
    ("POST", "runs/log-metric", log_metric),
    ("POST", "runs/log-parameter", log_param),
    ("POST", "runs/set-tag", set_tag),
    ("POST", "runs/delete-tag", delete_tag),
    ("POST", "runs/search", search_runs),
    ("POST", "runs/delete", delete_run),
    ("POST", "runs/restore", restore_run),
    ("GET", "metrics/get-history", get_metric_history),
]
