"""``/api/v1`` routes for experiments and runs: the tracking services over HTTP.

Reads need the ``read`` permission, writes ``write`` (see :mod:`loopwise.server.access`).
Every answer is the record's ``to_dict()``: times as ISO 8601 in UTC, metric values that
JSON cannot carry (NaN, ±inf) as strings (:mod:`loopwise.server.numbers`). A run in a
path is its id, its unique name or a ``runs:/`` reference, as in the Python API.
Artifacts have their own module, :mod:`loopwise.server.routes.artifacts`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from loopwise.clock import now_us, parse_iso, to_us
from loopwise.server.access import check_experiment, check_run, experiment_scope, needs, store_of
from loopwise.server.downsample import MIN_POINTS, downsample
from loopwise.server.numbers import NonFinite, metrics_out, number_in, number_out
from loopwise.store import Store
from loopwise.tracking import log_batch as batch_service
from loopwise.tracking import runs as run_service
from loopwise.tracking.naming import MAX_KEY_LENGTH
from loopwise.tracking.runs import DEFAULT_EXPERIMENT, MAX_VALUE_LENGTH
from loopwise.tracking.search_pages import MAX_PAGE, MAX_TOKEN_CHARS, Columns, search_page

router = APIRouter(tags=["tracking"])


class ExperimentIn(BaseModel):
    """``POST /experiments``: the experiment called ``name``, created if missing."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=256)


@router.get("/experiments", dependencies=[Depends(needs("read"))])
def list_experiments(request: Request, store: Store = Depends(store_of)) -> dict[str, Any]:
    """Every experiment with its number of runs, oldest first (those in a scoped token's
    scope)."""
    found = run_service.list_experiments(store)
    if (scope := experiment_scope(request)) is not None:
        found = [e for e in found if scope.allows_experiment(e.name)]
    return {"experiments": [e.to_dict() for e in found]}


@router.post("/experiments", dependencies=[Depends(needs("write"))])
def create_experiment(
    body: ExperimentIn, request: Request, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """The experiment called ``name`` (created if it does not exist yet)."""
    check_experiment(request, body.name)
    return run_service.get_or_create_experiment(store, body.name).to_dict()


@router.get("/experiments/{name_or_id}", dependencies=[Depends(needs("read"))])
def get_experiment(
    name_or_id: str, request: Request, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """One experiment, by name or id (404 naming it when neither matches)."""
    found = run_service.get_experiment(store, name_or_id)
    check_experiment(request, found.name)
    return found.to_dict()


# -- runs ------------------------------------------------------------------------------------

#: Metric points one log-batch request may carry; a client sends more as several batches.
MAX_BATCH_POINTS = 10_000
#: Params (and tags) one request may carry.
MAX_BATCH_KEYS = 1_000
#: The largest ``max_points`` a history request may ask for.
MAX_HISTORY_POINTS = 1_000_000

Value = StrictStr | StrictInt | StrictFloat | StrictBool
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH)]


class RunIn(BaseModel):
    """``POST /runs``: a RUNNING run in ``experiment`` (created if missing)."""

    model_config = ConfigDict(extra="forbid")
    experiment: str = Field(default=DEFAULT_EXPERIMENT, min_length=1, max_length=MAX_KEY_LENGTH)
    name: str | None = Field(default=None, min_length=1, max_length=MAX_KEY_LENGTH)
    tags: dict[Key, Value] = Field(default_factory=dict, max_length=MAX_BATCH_KEYS)
    parent_run_id: str | None = Field(default=None, min_length=1, max_length=MAX_KEY_LENGTH)
    host: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The client's host name: the process that runs the run (default: the "
        "server's). With ``pid``, it decides when the run is LOST.",
    )
    pid: int | None = Field(default=None, ge=0, le=2**31 - 1, description="The client's pid.")


class HeartbeatIn(BaseModel):
    """``POST /runs/heartbeat``: the runs a client process is still executing."""

    model_config = ConfigDict(extra="forbid")
    run_ids: list[Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH)]] = Field(
        max_length=MAX_BATCH_KEYS
    )


class EnvironmentIn(BaseModel):
    """``PUT /runs/{run_id}/environment``: what the client captured (Python, packages,
    git commit, host ...), as ``lw.start_run`` records it locally."""

    model_config = ConfigDict(extra="forbid")
    environment: dict[str, Any] = Field(max_length=1000)


class RunUpdateIn(BaseModel):
    """``PATCH /runs/{run_id}``: end the run with a final status."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["FINISHED", "FAILED", "KILLED"]


class ColumnsIn(BaseModel):
    """Which params, metrics and tags each row of a search carries: a list of keys, or
    null (the default) for all of them; ``[]`` for none."""

    model_config = ConfigDict(extra="forbid")
    params: list[Key] | None = Field(default=None, max_length=MAX_BATCH_KEYS)
    metrics: list[Key] | None = Field(default=None, max_length=MAX_BATCH_KEYS)
    tags: list[Key] | None = Field(default=None, max_length=MAX_BATCH_KEYS)


class SearchIn(BaseModel):
    """``POST /runs/search``: the filter language and order of ``lw.search_runs``."""

    model_config = ConfigDict(extra="forbid")
    experiments: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, max_length=MAX_BATCH_KEYS
    )
    filter: str | None = Field(default=None, max_length=MAX_VALUE_LENGTH)
    order_by: list[Annotated[str, Field(max_length=MAX_KEY_LENGTH + 16)]] | None = Field(
        default=None, max_length=16
    )
    max_results: int = Field(default=100, ge=1, le=MAX_PAGE)
    page_token: str | None = Field(default=None, max_length=MAX_TOKEN_CHARS)
    columns: ColumnsIn = Field(default_factory=ColumnsIn)


class PointIn(BaseModel):
    """One metric point. ``value`` is a number, ``"NaN"``, ``"Infinity"``, ``"-Infinity"``,
    or null (NaN); ``step`` is 0 unless given (the server keeps no per-client step
    counter); ``timestamp`` ISO 8601 with a zone, the server's clock when left out."""

    model_config = ConfigDict(extra="forbid")
    key: Key
    value: StrictFloat | StrictInt | NonFinite | None
    step: StrictInt = 0
    timestamp: str | None = Field(default=None, max_length=64)


class BatchIn(BaseModel):
    """``POST /runs/{run_id}/log-batch``: params, tags and metric points of one run."""

    model_config = ConfigDict(extra="forbid")
    params: dict[Key, Value] = Field(default_factory=dict, max_length=MAX_BATCH_KEYS)
    tags: dict[Key, Value] = Field(default_factory=dict, max_length=MAX_BATCH_KEYS)
    metrics: list[PointIn] = Field(default_factory=list, max_length=MAX_BATCH_POINTS)


def _run_answer(store: Store, run_id: str) -> dict[str, Any]:
    data = run_service.get_run(store, run_id).to_dict()
    data["metrics"] = metrics_out(data["metrics"])
    return data


@router.post("/runs", dependencies=[Depends(needs("write"))])
def create_run(body: RunIn, request: Request, store: Store = Depends(store_of)) -> dict[str, Any]:
    """Start a RUNNING run; the answer is the run as ``GET /runs/{run_id}`` gives it."""
    check_experiment(request, body.experiment)
    parent = None
    if body.parent_run_id is not None:
        parent = run_service.resolve_run_id(store, body.parent_run_id)
    run_id = run_service.create_run(
        store,
        body.experiment,
        name=body.name,
        tags=body.tags,
        parent_run_id=parent,
        host=body.host,
        pid=body.pid,
    )
    return _run_answer(store, run_id)


@router.post("/runs/heartbeat", dependencies=[Depends(needs("write"))])
def heartbeat(body: HeartbeatIn, request: Request, store: Store = Depends(store_of)) -> dict:
    """Mark runs alive (a remote client sends this every ``heartbeat_interval``); a run
    marked LOST while its client was unreachable becomes RUNNING again. Unknown ids are a
    404, so a client learns its run is gone."""
    ids = [run_service.resolve_run_id(store, run) for run in body.run_ids]
    for run_id in ids:
        check_run(request, run_id)
    run_service.heartbeat(store, ids)
    return {"run_ids": ids}


@router.put("/runs/{run_id}/environment", dependencies=[Depends(needs("write", run="run_id"))])
def set_environment(
    run_id: str, body: EnvironmentIn, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """Record the environment the client captured for its run."""
    resolved = run_service.resolve_run_id(store, run_id)
    run_service.set_environment(store, resolved, body.environment)
    return {"run_id": resolved}


@router.post("/runs/search", dependencies=[Depends(needs("read"))])
def search_runs(body: SearchIn, request: Request, store: Store = Depends(store_of)) -> JSONResponse:
    """One page of runs matching ``filter`` in ``order_by`` order; pass the answer's
    ``next_page_token`` as ``page_token`` for the next page (null after the last).

    A scoped token searches the experiments in its scope; naming one outside it is a 403."""
    experiments = body.experiments
    if (scope := experiment_scope(request)) is not None:
        if experiments is None:
            experiments = [
                e.name
                for e in run_service.list_experiments(store)
                if scope.allows_experiment(e.name)
            ]
            if not experiments:
                return JSONResponse({"runs": [], "next_page_token": None})
        for named in experiments:  # a name in scope, or the name of an id in scope
            if not scope.allows_experiment(named):
                check_experiment(request, run_service.get_experiment(store, named).name)
    page = search_page(
        store,
        experiment=experiments,
        filter=body.filter,
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
        columns=Columns(body.columns.params, body.columns.metrics, body.columns.tags),
    )
    for row in page.runs:
        row["metrics"] = metrics_out(row["metrics"])
    # Already plain JSON values: answered as they are, without FastAPI's encoder walk.
    return JSONResponse({"runs": page.runs, "next_page_token": page.next_page_token})


@router.get("/runs/{run_id}", dependencies=[Depends(needs("read", run="run_id"))])
def get_run(run_id: str, store: Store = Depends(store_of)) -> dict[str, Any]:
    """One run (by id, unique name or ``runs:/`` reference) with its params, latest metric
    values, tags and environment."""
    return _run_answer(store, run_id)


@router.patch("/runs/{run_id}", dependencies=[Depends(needs("write", run="run_id"))])
def end_run(run_id: str, body: RunUpdateIn, store: Store = Depends(store_of)) -> dict[str, Any]:
    """End a run with a final status (FINISHED, FAILED or KILLED); its end time is now."""
    resolved = run_service.resolve_run_id(store, run_id)
    run_service.end_run(store, resolved, body.status)
    return _run_answer(store, resolved)


@router.get("/runs/{run_id}/params", dependencies=[Depends(needs("read", run="run_id"))])
def run_params(run_id: str, store: Store = Depends(store_of)) -> dict[str, Any]:
    """A run's params (key -> text)."""
    return {"params": run_service.get_run(store, run_id).params}


@router.get("/runs/{run_id}/metrics", dependencies=[Depends(needs("read", run="run_id"))])
def run_metrics(run_id: str, store: Store = Depends(store_of)) -> dict[str, Any]:
    """The latest value of each of a run's metrics (highest step, then latest time)."""
    return {"metrics": metrics_out(run_service.get_run(store, run_id).metrics)}


@router.get("/runs/{run_id}/tags", dependencies=[Depends(needs("read", run="run_id"))])
def run_tags(run_id: str, store: Store = Depends(store_of)) -> dict[str, Any]:
    """A run's tags (key -> text)."""
    return {"tags": run_service.get_run(store, run_id).tags}


@router.post("/runs/{run_id}/log-batch", dependencies=[Depends(needs("write", run="run_id"))])
def log_batch(run_id: str, body: BatchIn, store: Store = Depends(store_of)) -> dict[str, Any]:
    """Params, tags and up to 10,000 metric points in one transaction: all are written or
    none (a param logged before with another value is a 409 and writes nothing).

    Metric values NaN and ±inf are sent as ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
    (``null`` is taken as NaN); the API answers them with the same strings.
    """
    resolved = run_service.resolve_run_id(store, run_id)
    now = now_us()
    points = [
        (
            p.key,
            number_in(p.value),
            p.step,
            now
            if p.timestamp is None
            else to_us(parse_iso(p.timestamp, f"metrics[{i}].timestamp")),
        )
        for i, p in enumerate(body.metrics)
    ]
    written = batch_service.log_batch(
        store, resolved, params=body.params, tags=body.tags, metrics=points
    )
    return {
        "run_id": resolved,
        "params": len(body.params),
        "tags": len(body.tags),
        "metrics": written,
    }


@router.get(
    "/runs/{run_id}/metrics/{key:path}/history", dependencies=[Depends(needs("read", run="run_id"))]
)
def metric_history(
    run_id: str,
    key: str,
    max_points: int = Query(default=1000, ge=MIN_POINTS, le=MAX_HISTORY_POINTS),
    store: Store = Depends(store_of),
) -> JSONResponse:
    """A metric's points ordered by step: every point up to ``max_points``, beyond that
    per step bucket its min, max and last (and first NaN), so no peak is lost. Columns
    ``step``, ``timestamp`` (ISO 8601, UTC) and ``value`` (non-finite values as strings)."""
    resolved = run_service.resolve_run_id(store, run_id)
    steps, stamps, values = run_service.metric_arrays(store, resolved, key)
    keep = downsample(steps, values, max_points)
    kept_values = values[keep]
    finite = np.isfinite(kept_values)
    value_list: list[Any] = kept_values.tolist()
    if not finite.all():
        for i in np.flatnonzero(~finite).tolist():
            value_list[i] = number_out(value_list[i])
    iso = np.datetime_as_string(stamps[keep].astype("datetime64[us]"), unit="us")
    return JSONResponse(
        {
            "run_id": resolved,
            "key": key,
            "total_points": len(steps),
            "downsampled": len(keep) < len(steps),
            "step": steps[keep].tolist(),
            "timestamp": [f"{t}+00:00" for t in iso.tolist()],
            "value": value_list,
        }
    )
