"""``/api/v1`` routes for pipelines: the pipelines a store has runs of, a pipeline's runs
(paged, newest first), one pipeline run with its steps, and a pipeline's schedules with
their latest ticks. All reads (``read``): pipelines run where the store is
(``lw.run_pipeline``, ``loopwise scheduler``), never through the server.

Why these reads are written here rather than taken from
:mod:`loopwise.pipelines.records`:

- a pipeline run is a tracking run in an experiment, so a token scoped to experiments
  sees only the runs (and counts, and last runs) of its experiments; the records'
  functions know nothing of scopes, and filtering their answers afterwards would cost a
  query per run;
- :func:`~loopwise.pipelines.records.get_pipeline_run` decodes parameters that did not
  fit JSON by unpickling an artifact of the run, and a server must not unpickle what a
  caller could have uploaded: here such parameters are answered as ``params: null`` with
  the artifact's path in ``params_artifact``;
- a page of runs is a keyset page over ``(created_at, run_id)`` in SQL, so a long history
  costs one page, not the whole list.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import and_, func, or_, select, tuple_

from loopwise.clock import now, to_datetime
from loopwise.errors import Forbidden, InvalidInput, NotFound
from loopwise.pipelines.records import step_from_row
from loopwise.pipelines.schedules import Schedule, list_schedules, list_ticks
from loopwise.server.access import experiment_scope, needs, store_of, token_of
from loopwise.server.listing import MaxResults, PageToken, decode_token, encode_token, finite
from loopwise.store import Store
from loopwise.store.tables import experiments, pipeline_runs, pipeline_steps, pipelines, runs
from loopwise.tracking import runs as run_service

router = APIRouter(tags=["pipelines"])

#: The longest pipeline name the store holds (its ``KEY`` column).
MAX_NAME = 250
#: The most ticks one schedule answers with.
MAX_TICKS = 100

PipelineName = Annotated[str, Path(max_length=1000, description="The pipeline's name.")]
RunRef = Annotated[
    str,
    Path(max_length=1000, description="The pipeline run: its id, unique name or runs:/ ref."),
]
Ticks = Annotated[
    int, Query(ge=0, le=MAX_TICKS, description="How many latest ticks per schedule (0 to 100).")
]

_RUN_COLUMNS = (
    pipeline_runs,
    pipelines.c.name.label("pipeline"),
    runs.c.status,
    runs.c.start_time,
    runs.c.end_time,
    runs.c.experiment_id,
    experiments.c.name.label("experiment"),
)
_RUNS_JOINED = (
    pipeline_runs.join(pipelines, pipelines.c.id == pipeline_runs.c.pipeline_id)
    .join(runs, runs.c.id == pipeline_runs.c.run_id)
    .join(experiments, experiments.c.id == runs.c.experiment_id)
)


# -- scope --------------------------------------------------------------------------------------


def allowed_experiments(request: Request, store: Store) -> set[str] | None:
    """The ids of the experiments a scoped token reaches; None when the caller's token is
    not limited to experiments (every run is visible)."""
    scope = experiment_scope(request)
    if scope is None:
        return None
    return {e.id for e in run_service.list_experiments(store) if scope.allows_experiment(e.name)}


def _pipeline_id(store: Store, name: str) -> str:
    """The id of pipeline ``name``; a 404 naming the known pipelines otherwise."""
    found = None
    if len(name) <= MAX_NAME and "\x00" not in name:
        with store.db.read() as conn:
            found = conn.execute(select(pipelines.c.id).where(pipelines.c.name == name)).scalar()
    if found is None:
        with store.db.read() as conn:
            names = conn.execute(
                select(pipelines.c.name).order_by(pipelines.c.name).limit(20)
            ).scalars()
            known = ", ".join(repr(n) for n in names) or "none yet"
        raise NotFound(
            f"No pipeline named {name[:200]!r} (known: {known}); list them with "
            "GET /api/v1/pipelines. A pipeline is known once it has run (lw.run_pipeline)."
        )
    return found


def _reachable(request: Request, store: Store, name: str, pipeline_id: str) -> set[str] | None:
    """The experiments the caller reaches (None: all); 403 for a scoped token that reaches
    none of the pipeline's runs (a pipeline without runs: its default experiment, its
    own name)."""
    allowed = allowed_experiments(request, store)
    if allowed is None:
        return None
    token = token_of(request)
    assert token is not None
    with store.db.read() as conn:
        theirs = set(
            conn.execute(
                select(runs.c.experiment_id)
                .join(pipeline_runs, pipeline_runs.c.run_id == runs.c.id)
                .where(pipeline_runs.c.pipeline_id == pipeline_id)
                .distinct()
            ).scalars()
        )
    if theirs & allowed or (not theirs and token.allows_experiment(name)):
        return allowed
    patterns = ", ".join(repr(p) for p in token.experiments or ()) or "none"
    raise Forbidden(
        f"The API token {token.name!r} is limited to experiments matching {patterns}; no run "
        f"of pipeline {name[:200]!r} is in them. Use a token whose --experiments patterns "
        "match the pipeline's experiment."
    )


# -- answers ------------------------------------------------------------------------------------


def _params(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The run's parameters as stored, and the artifact holding them when they are a pickle
    (not unpickled here: see the module's docstring)."""
    params = json.loads(text)
    if isinstance(params, dict) and set(params) == {"$pickle"}:
        return None, str(params["$pickle"])
    return params, None


def run_summary(row: Any, step_counts: dict[str, int] | None = None) -> dict[str, Any]:
    """A pipeline run as a list shows it (the record's fields, without the steps)."""
    start, end = to_datetime(row.start_time), to_datetime(row.end_time)
    params, artifact = _params(row.params)
    answer: dict[str, Any] = {
        "id": row.run_id,
        "pipeline": row.pipeline,
        "entrypoint": row.entrypoint,
        "experiment": row.experiment,
        "experiment_id": row.experiment_id,
        "status": row.status,
        "params": finite(params),
        "params_artifact": artifact,
        "executor": row.executor,
        "trigger": row.trigger,
        "resumed_from": row.resumed_from,
        "start_time": start.isoformat() if start else None,
        "end_time": end.isoformat() if end else None,
        "duration_s": (row.end_time - row.start_time) / 1e6 if row.end_time else None,
    }
    if step_counts is not None:
        answer["step_counts"] = step_counts
    return answer


def _step_counts(store: Store, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per pipeline run: its steps by status, and how many came from the cache."""
    found: dict[str, dict[str, int]] = {
        r: {"SUCCEEDED": 0, "FAILED": 0, "SKIPPED": 0, "RUNNING": 0, "cached": 0} for r in run_ids
    }
    if not run_ids:
        return found
    s = pipeline_steps.c
    with store.db.read() as conn:
        rows = conn.execute(
            select(s.pipeline_run_id, s.status, func.count(), func.count(s.cached_from))
            .where(s.pipeline_run_id.in_(list(run_ids)))
            .group_by(s.pipeline_run_id, s.status)
        ).all()
    for run_id, status, count, cached in rows:
        found[run_id][status] = found[run_id].get(status, 0) + count
        found[run_id]["cached"] += cached
    return found


def schedule_answer(schedule: Schedule, ticks: list[Any] | None = None) -> dict[str, Any]:
    """A schedule with its trigger for people and its next tick (cron schedules)."""
    answer = schedule.to_dict()
    answer["description"] = schedule.describe()
    following = schedule.next_tick(now()) if schedule.enabled else None
    answer["next_tick"] = following.isoformat() if following else None
    if ticks is not None:
        answer["ticks"] = [t.to_dict() for t in ticks]
    return answer


# -- reads --------------------------------------------------------------------------------------


def pipelines_overview(store: Store, allowed: set[str] | None) -> list[dict[str, Any]]:
    """Every pipeline the caller may see, by name: runs (in reach), the last run and its
    status, the schedules. Three queries and the schedules', whatever the number of
    pipelines."""
    r = pipeline_runs.c
    with store.db.read() as conn:
        known = conn.execute(select(pipelines).order_by(pipelines.c.name)).all()
        stats = conn.execute(
            select(r.pipeline_id, runs.c.experiment_id, func.count(), func.max(r.created_at))
            .join(runs, runs.c.id == r.run_id)
            .group_by(r.pipeline_id, runs.c.experiment_id)
        ).all()
        counts: dict[str, int] = {}
        latest: dict[str, int] = {}
        having: dict[str, set[str]] = {}
        for pipeline_id, experiment_id, count, last in stats:
            having.setdefault(pipeline_id, set()).add(experiment_id)
            if allowed is not None and experiment_id not in allowed:
                continue
            counts[pipeline_id] = counts.get(pipeline_id, 0) + count
            latest[pipeline_id] = max(latest.get(pipeline_id, last), last)
        last_runs: dict[str, Any] = {}
        if latest:
            query = (
                select(*_RUN_COLUMNS)
                .select_from(_RUNS_JOINED)
                .where(tuple_(r.pipeline_id, r.created_at).in_(list(latest.items())))
            )
            if allowed is not None:
                query = query.where(runs.c.experiment_id.in_(allowed))
            for row in conn.execute(query).all():
                kept = last_runs.get(row.pipeline_id)
                if kept is None or row.run_id > kept.run_id:
                    last_runs[row.pipeline_id] = row
    schedules: dict[str, list[dict[str, Any]]] = {}
    for schedule in list_schedules(store):
        schedules.setdefault(schedule.pipeline, []).append(schedule_answer(schedule))
    answer = []
    for p in known:
        if allowed is not None and p.id not in counts and having.get(p.id):
            continue  # runs, none in reach
        last = last_runs.get(p.id)
        answer.append(
            {
                "name": p.name,
                "entrypoint": p.entrypoint,
                "runs": counts.get(p.id, 0),
                "last_run": run_summary(last) if last is not None else None,
                "last_status": last.status if last is not None else None,
                "schedules": schedules.get(p.name, []),
            }
        )
    return answer


def _scoped_out(request: Request, answer: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Without runs in reach, a scoped token sees a pipeline only when its name (its
    default experiment) is in scope."""
    token = token_of(request)
    if token is None or token.experiments is None:
        return answer
    return [p for p in answer if p["runs"] or token.allows_experiment(p["name"])]


def _page_key(token: str, listing: str) -> tuple[int, str]:
    values = decode_token(token, listing)
    if (
        values is None
        or len(values) != 2
        or type(values[0]) is not int
        or type(values[1]) is not str
    ):
        raise InvalidInput(
            f"page_token {token[:80]!r} was not given by this listing; pass the "
            "next_page_token of the previous answer unchanged, or leave page_token out for "
            "the first page."
        )
    return values[0], values[1]


def runs_page(
    store: Store,
    pipeline_id: str,
    listing: str,
    *,
    allowed: set[str] | None,
    max_results: int,
    page_token: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of a pipeline's runs, newest first, and the token of the next page."""
    r = pipeline_runs.c
    query = (
        select(*_RUN_COLUMNS)
        .select_from(_RUNS_JOINED)
        .where(r.pipeline_id == pipeline_id)
        .order_by(r.created_at.desc(), r.run_id.desc())
        .limit(max_results + 1)
    )
    if page_token is not None:
        created, run_id = _page_key(page_token, listing)
        query = query.where(
            or_(r.created_at < created, and_(r.created_at == created, r.run_id < run_id))
        )
    if allowed is not None:
        query = query.where(runs.c.experiment_id.in_(allowed))
    with store.db.read() as conn:
        rows = conn.execute(query).all()
    rows, more = rows[:max_results], len(rows) > max_results
    counts = _step_counts(store, [row.run_id for row in rows])
    token = encode_token(listing, [rows[-1].created_at, rows[-1].run_id]) if more else None
    return [run_summary(row, counts[row.run_id]) for row in rows], token


def pipeline_run(store: Store, run_id: str) -> dict[str, Any]:
    """One pipeline run with its steps in graph order (as the runner recorded them)."""
    with store.db.read() as conn:
        row = conn.execute(
            select(*_RUN_COLUMNS).select_from(_RUNS_JOINED).where(pipeline_runs.c.run_id == run_id)
        ).first()
        if row is None:
            raise NotFound(
                f"Run {run_id} is not a pipeline run (lw.run_pipeline starts one); its tracking "
                "record is GET /api/v1/runs/{run}."
            )
        steps = conn.execute(
            select(pipeline_steps)
            .where(pipeline_steps.c.pipeline_run_id == run_id)
            .order_by(pipeline_steps.c.started_at.is_(None), pipeline_steps.c.started_at)
        ).all()
    answer = run_summary(row)
    answer["steps"] = []
    for step in steps:
        data = step_from_row(step).to_dict()
        data["started_at"] = _iso(step.started_at)
        data["ended_at"] = _iso(step.ended_at)
        answer["steps"].append(data)
    return answer


def _iso(us: int | None) -> str | None:
    moment = to_datetime(us)
    return moment.isoformat() if moment else None


# -- routes -------------------------------------------------------------------------------------


@router.get("/pipelines", dependencies=[Depends(needs("read"))])
def list_pipelines(request: Request, store: Store = Depends(store_of)) -> dict[str, Any]:
    """Every pipeline the store has runs of, by name: its entrypoint, number of runs, last
    run and its status, and schedules (a scoped token: only runs of its experiments)."""
    allowed = allowed_experiments(request, store)
    return {"pipelines": _scoped_out(request, pipelines_overview(store, allowed))}


@router.get("/pipelines/{name}/runs", dependencies=[Depends(needs("read"))])
def list_pipeline_runs(
    name: PipelineName,
    request: Request,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """A pipeline's runs, newest first, a page at a time: each with its status, params,
    trigger, resumed_from and its steps counted by status (``step_counts``)."""
    pipeline_id = _pipeline_id(store, name)
    allowed = _reachable(request, store, name, pipeline_id)
    found, token = runs_page(
        store,
        pipeline_id,
        f"pipeline-runs:{pipeline_id}",
        allowed=allowed,
        max_results=max_results,
        page_token=page_token,
    )
    return {"pipeline": name, "runs": found, "next_page_token": token}


@router.get("/pipeline-runs/{run_id:path}", dependencies=[Depends(needs("read", run="run_id"))])
def get_pipeline_run(run_id: RunRef, store: Store = Depends(store_of)) -> dict[str, Any]:
    """One pipeline run (by id, unique name or ``runs:/`` reference) with its steps in
    graph order: status, cached and ``cached_from``, duration, attempts, inputs, output
    kind and reference, the traceback of a failed step; and the run's trigger and
    ``resumed_from``."""
    return pipeline_run(store, run_service.resolve_run_id(store, run_id))


@router.get("/pipelines/{name}/schedules", dependencies=[Depends(needs("read"))])
def pipeline_schedules(
    name: PipelineName,
    request: Request,
    ticks: Ticks = 10,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """A pipeline's schedules, oldest first, each with its next tick and its ``ticks``
    latest ticks (newest first: state, trigger, the run it started, error)."""
    pipeline_id = _pipeline_id(store, name)
    _reachable(request, store, name, pipeline_id)
    found = list_schedules(store, name)
    return {
        "pipeline": name,
        "schedules": [
            schedule_answer(s, list_ticks(store, s.id, limit=ticks) if ticks else []) for s in found
        ],
    }
