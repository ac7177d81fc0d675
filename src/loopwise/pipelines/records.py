"""Pipeline runs and step runs as stored, and the writes that record them.

A pipeline run is a tracking run; each step that ran (or came from the cache) is a child
run. A step's whole record is written in one transaction when it starts and one when it
ends (a cached or skipped step: one), so a 100-step pipeline costs about 200 small
writes, and a crash leaves every finished step recorded for ``resume``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, select, update

from loopwise.clock import now_us, to_datetime
from loopwise.errors import InvalidInput, NotFound
from loopwise.identity import current_user
from loopwise.ids import new_id
from loopwise.store import Store
from loopwise.store.tables import pipeline_runs, pipeline_steps, pipelines, run_tags, runs
from loopwise.store.upsert import insert_on_conflict
from loopwise.tracking.records import RunStatus
from loopwise.tracking.runs import HOST, param_texts, write_params

if TYPE_CHECKING:
    from loopwise.pipelines.outputs import StoredOutput

RUNNING, SUCCEEDED, FAILED, SKIPPED = "RUNNING", "SUCCEEDED", "FAILED", "SKIPPED"
PIPELINE_TAG = "loopwise.pipeline"
STEP_TAG = "loopwise.step"
CACHED_TAG = "loopwise.cached_from"
ERROR_TAG = "loopwise.error"


@dataclass(frozen=True)
class StepRun:
    """One step of a pipeline run: ``name`` (its key in the graph), ``status`` (SUCCEEDED,
    FAILED, SKIPPED, RUNNING), ``cached`` (its output came from ``cached_from``, an earlier
    step run), ``run_id`` (its child tracking run; None when skipped), ``inputs`` (argument
    -> the steps whose outputs it took), ``outputs`` (kind and reference of what it
    stored), ``error`` (the traceback of its last attempt)."""

    name: str
    step: str
    status: str
    cached: bool
    duration_s: float | None
    run_id: str | None
    inputs: dict[str, list[str]]
    outputs: dict[str, str]
    attempts: int = 0
    cache_key: str | None = None
    cached_from: str | None = None
    error: str | None = None
    fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "step": self.step,
            "status": self.status,
            "cached": self.cached,
            "duration_s": self.duration_s,
            "run_id": self.run_id,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "attempts": self.attempts,
            "cache_key": self.cache_key,
            "cached_from": self.cached_from,
            "error": self.error,
        }

    def __repr__(self) -> str:
        cached = ", cached" if self.cached else ""
        duration = "" if self.duration_s is None else f", {self.duration_s:.3f}s"
        return f"StepRun({self.name!r}, {self.status}{cached}{duration})"


@dataclass
class PipelineRun:
    """A run of a pipeline: its tracking run ``id``, ``status`` (a tracking run status),
    parameters, steps in graph order, and how it started (``executor``, ``trigger``,
    ``resumed_from``). ``output()`` is the pipeline's return value."""

    id: str
    pipeline: str
    entrypoint: str
    status: RunStatus
    params: dict[str, Any]
    steps: list[StepRun]
    executor: str
    start_time: datetime
    end_time: datetime | None
    trigger: str | None = None
    resumed_from: str | None = None
    output_spec: Any = None
    _store: Store | None = field(default=None, repr=False, compare=False)
    _values: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def uri(self) -> str:
        return f"runs:/{self.id}"

    @property
    def duration_s(self) -> float | None:
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()

    def step(self, name: str) -> StepRun:
        """The step run called ``name``."""
        for found in self.steps:
            if found.name == name:
                return found
        known = ", ".join(s.name for s in self.steps)
        raise NotFound(f"Pipeline run {self.id} has no step {name!r}; its steps: {known}.")

    def value(self, name: str) -> Any:
        """The output of step ``name`` (loaded from the store unless this process made it)."""
        if name in self._values:
            return self._values[name]
        found = self.step(name)
        if found.status != SUCCEEDED or not found.outputs:
            raise NotFound(
                f"Step {name!r} of pipeline run {self.id} has no output ({found.status})."
            )
        if self._store is None:
            raise InvalidInput("This pipeline run is not bound to a store.")
        from loopwise.pipelines.outputs import load_output

        value = load_output(self._store, found.outputs["kind"], found.outputs["ref"])
        self._values[name] = value
        return value

    def output(self) -> Any:
        """The pipeline's return value, with each step's output in place of its node."""
        if self.status is not RunStatus.FINISHED:
            raise InvalidInput(
                f"Pipeline run {self.id} is {self.status.value}: it has no output. "
                f"Failed steps: {', '.join(s.name for s in self.steps if s.status == FAILED)}."
            )
        return decode_output(self.output_spec, self.value)

    def to_dict(self) -> dict[str, Any]:
        from loopwise.pipelines.fingerprint import is_json_exact

        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "entrypoint": self.entrypoint,
            "status": self.status.value,
            "params": {k: v if is_json_exact(v) else repr(v) for k, v in self.params.items()},
            "executor": self.executor,
            "trigger": self.trigger,
            "resumed_from": self.resumed_from,
            "start_time": self.start_time.isoformat(),
            "end_time": self.end_time.isoformat() if self.end_time else None,
            "duration_s": self.duration_s,
            "steps": [s.to_dict() for s in self.steps],
        }

    def __repr__(self) -> str:
        cached = sum(1 for s in self.steps if s.cached)
        return (
            f"PipelineRun({self.pipeline!r}, {self.id}, {self.status.value}, "
            f"steps={len(self.steps)}, cached={cached})"
        )


def encode_output(value: Any) -> Any:
    """The pipeline's return value as JSON: nodes become ``{"$node": key}``."""
    from loopwise.pipelines.definition import Node

    if isinstance(value, Node):
        return {"$node": value.key}
    if isinstance(value, tuple | list):
        return {"$" + type(value).__name__: [encode_output(v) for v in value]}
    if isinstance(value, dict):
        return {"$dict": [[k, encode_output(v)] for k, v in value.items()]}
    if value is None or type(value) in (bool, int, float, str):
        return value
    raise InvalidInput(
        f"A pipeline returns its steps' outputs (or lists, tuples and dicts of them), not a "
        f"{type(value).__name__}."
    )


def decode_output(spec: Any, value_of: Any) -> Any:
    if isinstance(spec, dict):
        if "$node" in spec:
            return value_of(spec["$node"])
        if "$tuple" in spec:
            return tuple(decode_output(v, value_of) for v in spec["$tuple"])
        if "$list" in spec:
            return [decode_output(v, value_of) for v in spec["$list"]]
        if "$dict" in spec:
            return {k: decode_output(v, value_of) for k, v in spec["$dict"]}
    return spec


# -- writes -----------------------------------------------------------------------------------


def register_pipeline(store: Store, name: str, entrypoint: str) -> str:
    """Record (or update) where pipeline ``name`` is loaded from; its id."""
    now = now_us()
    with store.db.write() as conn:
        insert_on_conflict(
            conn,
            pipelines,
            [
                {
                    "id": new_id(),
                    "name": name,
                    "entrypoint": entrypoint,
                    "created_at": now,
                    "updated_at": now,
                }
            ],
            keys=["name"],
            update=["entrypoint", "updated_at"],
        )
        return conn.execute(select(pipelines.c.id).where(pipelines.c.name == name)).scalar_one()


def insert_pipeline_run(
    conn: Connection,
    *,
    run_id: str,
    pipeline_id: str,
    entrypoint: str,
    params: str,
    output: str | None,
    executor: str,
    trigger: str | None,
    resumed_from: str | None,
) -> None:
    conn.execute(
        pipeline_runs.insert().values(
            run_id=run_id,
            pipeline_id=pipeline_id,
            entrypoint=entrypoint,
            params=params,
            output=output,
            executor=executor,
            trigger=trigger,
            resumed_from=resumed_from,
            created_at=now_us(),
        )
    )


def _write_step_run(
    conn: Connection,
    store: Store,
    start: StepStart,
    run_id: str,
    *,
    status: RunStatus,
    begin: int,
    end: int | None,
    tags: dict[str, str] | None = None,
) -> None:
    """A step's child run with its tags and params, in the caller's transaction."""
    conn.execute(
        runs.insert(),
        {
            "id": run_id,
            "experiment_id": start.experiment_id,
            "name": start.key,
            "status": status.value,
            "parent_run_id": start.pipeline_run_id,
            "start_time": begin,
            "end_time": end,
            "heartbeat_at": end or begin,
            "host": HOST,
            "pid": os.getpid() if end is None else None,
            "username": current_user(),
            "environment": None,
        },
    )
    conn.execute(run_tags.insert(), _tags(run_id, start, tags))
    write_params(conn, run_id, param_texts(store, run_id, start.params))


@dataclass(frozen=True)
class StepStart:
    """What is known of a step when it starts (or is taken from the cache)."""

    pipeline_run_id: str
    experiment_id: str
    key: str
    step: str
    code_hash: str
    cache_key: str | None
    inputs: dict[str, list[str]]
    params: dict[str, Any]


def _step_row(start: StepStart, **values: Any) -> dict[str, Any]:
    """A full row of ``pipeline_steps`` (every column given, so the INSERT statement is the
    same each time and compiled once)."""
    return {
        "pipeline_run_id": start.pipeline_run_id,
        "key": start.key,
        "step": start.step,
        "run_id": None,
        "status": RUNNING,
        "code_hash": start.code_hash,
        "cache_key": start.cache_key,
        "cached_from": None,
        "attempts": 0,
        "inputs": json.dumps(start.inputs),
        "output_kind": None,
        "output_ref": None,
        "fingerprint": None,
        "error": None,
        "started_at": None,
        "ended_at": None,
        **values,
    }


def _tags(
    run_id: str, start: StepStart, extra: dict[str, str] | None = None
) -> list[dict[str, str]]:
    tags = {PIPELINE_TAG: start.pipeline_run_id, STEP_TAG: start.key, **(extra or {})}
    return [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]


def start_step(store: Store, start: StepStart, run_id: str, started_at: int) -> None:
    """Record a step as RUNNING: its child run ``run_id``, params and row.

    The runner calls this only for a step still running a moment after it started (or
    one about to store a dataset or a model, which must name an existing run): a fast
    step's whole record is written once, when it ends (:func:`finish_step`)."""
    with store.db.write() as conn:
        _write_step_run(
            conn, store, start, run_id, status=RunStatus.RUNNING, begin=started_at, end=None
        )
        conn.execute(
            pipeline_steps.insert(),
            _step_row(start, run_id=run_id, status=RUNNING, started_at=started_at),
        )


_END_RUN = (
    update(runs)
    .where(runs.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"), end_time=bindparam("b_end"), heartbeat_at=bindparam("b_end")
    )
)
_END_STEP = (
    update(pipeline_steps)
    .where(pipeline_steps.c.pipeline_run_id == bindparam("b_run"))
    .where(pipeline_steps.c.key == bindparam("b_key"))
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        output_kind=bindparam("b_kind"),
        output_ref=bindparam("b_ref"),
        fingerprint=bindparam("b_fingerprint"),
        error=bindparam("b_error"),
        ended_at=bindparam("b_end"),
    )
)


def finish_step(
    store: Store,
    start: StepStart,
    run_id: str,
    *,
    started_at: int,
    recorded: bool,
    output: StoredOutput | None,
    attempts: int,
    error: str | None = None,
) -> None:
    """Record a step's end: SUCCEEDED with its output, or FAILED with ``error``; in one
    transaction with its whole record when its start was not ``recorded``."""
    now = now_us()
    ok = error is None
    status = RunStatus.FINISHED if ok else RunStatus.FAILED
    with store.db.write() as conn:
        if recorded:
            conn.execute(_END_RUN, {"b_id": run_id, "b_status": status.value, "b_end": now})
        else:
            _write_step_run(conn, store, start, run_id, status=status, begin=started_at, end=now)
        if not ok:
            last = error.strip().splitlines()[-1] if error.strip() else "failed"
            insert_on_conflict(
                conn,
                run_tags,
                [{"run_id": run_id, "key": ERROR_TAG, "value": last[:8000]}],
                keys=["run_id", "key"],
                update=["value"],
            )
        values = {
            "status": SUCCEEDED if ok else FAILED,
            "attempts": attempts,
            "output_kind": output.kind if output else None,
            "output_ref": output.ref if output else None,
            "fingerprint": output.fingerprint if output else None,
            "error": error,
            "ended_at": now,
        }
        if recorded:
            conn.execute(
                _END_STEP,
                {"b_run": start.pipeline_run_id, "b_key": start.key}
                | {f"b_{k}": v for k, v in _bind_names(values).items()},
            )
        else:
            conn.execute(
                pipeline_steps.insert(),
                _step_row(start, run_id=run_id, started_at=started_at, **values),
            )


def _bind_names(values: dict[str, Any]) -> dict[str, Any]:
    """The row's values under the bind names of :data:`_END_STEP`."""
    names = {"output_kind": "kind", "output_ref": "ref", "ended_at": "end"}
    return {names.get(k, k): v for k, v in values.items()}


#: Writes a caller gathers, to make later in one transaction of its own.
Later = list[Callable[[Connection], None]]


def record_cached(store: Store, start: StepStart, earlier: StepRun, later: Later) -> str:
    """Record a step taken from the cache: a finished child run pointing at ``earlier``.
    The writes go to ``later``: the runner makes those of one pass in one transaction (a
    cached chain is then a few transactions, not one per step)."""
    run_id = new_id()
    now = now_us()

    def write(conn: Connection) -> None:
        _write_step_run(
            conn,
            store,
            start,
            run_id,
            status=RunStatus.FINISHED,
            begin=now,
            end=now,
            tags={CACHED_TAG: earlier.run_id or ""},
        )
        conn.execute(
            pipeline_steps.insert(),
            _step_row(
                start,
                run_id=run_id,
                status=SUCCEEDED,
                cached_from=earlier.run_id,
                output_kind=earlier.outputs.get("kind"),
                output_ref=earlier.outputs.get("ref"),
                fingerprint=earlier.fingerprint,
                started_at=now,
                ended_at=now,
            ),
        )

    later.append(write)
    return run_id


def record_skipped(store: Store, start: StepStart, because: str) -> None:
    """Record a step that did not run because ``because`` (a step it needs) failed."""
    with store.db.write() as conn:
        conn.execute(
            pipeline_steps.insert(),
            _step_row(start, run_id=None, status=SKIPPED, error=f"skipped: {because} failed"),
        )


# -- reads ------------------------------------------------------------------------------------


def step_from_row(row: Any) -> StepRun:
    duration = None
    if row.started_at is not None and row.ended_at is not None:
        duration = (row.ended_at - row.started_at) / 1e6
    outputs = {"kind": row.output_kind, "ref": row.output_ref} if row.output_kind else {}
    return StepRun(
        name=row.key,
        step=row.step,
        status=row.status,
        cached=row.cached_from is not None,
        duration_s=duration,
        run_id=row.run_id,
        inputs=json.loads(row.inputs),
        outputs=outputs,
        attempts=row.attempts,
        cache_key=row.cache_key,
        cached_from=row.cached_from,
        error=row.error,
        fingerprint=row.fingerprint,
    )


def cached_step(conn: Connection, cache_key: str) -> StepRun | None:
    """The latest successful step run with ``cache_key`` that ran (not itself a cache hit),
    or None."""
    row = conn.execute(_CACHED_STEP, {"b_key": cache_key}).first()
    return step_from_row(row) if row is not None else None


#: built once (SQLAlchemy then finds it compiled in its cache), not on every lookup
_CACHED_STEP = (
    select(pipeline_steps)
    .where(pipeline_steps.c.cache_key == bindparam("b_key"))
    .where(pipeline_steps.c.status == SUCCEEDED)
    .where(pipeline_steps.c.cached_from.is_(None))
    .order_by(pipeline_steps.c.ended_at.desc())
    .limit(1)
)


def steps_of(conn: Connection, pipeline_run_id: str) -> list[StepRun]:
    rows = conn.execute(
        select(pipeline_steps)
        .where(pipeline_steps.c.pipeline_run_id == pipeline_run_id)
        .order_by(pipeline_steps.c.started_at.is_(None), pipeline_steps.c.started_at)
    ).all()
    return [step_from_row(row) for row in rows]


def _runs_query() -> Any:
    """Pipeline runs with their pipeline's name and their tracking run's status and times."""
    return (
        select(pipeline_runs, pipelines.c.name, runs.c.status, runs.c.start_time, runs.c.end_time)
        .join(pipelines, pipelines.c.id == pipeline_runs.c.pipeline_id)
        .join(runs, runs.c.id == pipeline_runs.c.run_id)
    )


def get_pipeline_run(store: Store, run_id: str) -> PipelineRun:
    """The pipeline run ``run_id`` (a ``runs:/`` reference works too)."""
    from loopwise.tracking.runs import resolve_run_id

    run_id = resolve_run_id(store, run_id)
    with store.db.read() as conn:
        row = conn.execute(_runs_query().where(pipeline_runs.c.run_id == run_id)).first()
        if row is None:
            raise NotFound(f"Run {run_id} is not a pipeline run (lw.run_pipeline starts one).")
        steps = steps_of(conn, run_id)
    return _pipeline_run(store, row, steps)


def _pipeline_run(store: Store, row: Any, steps: list[StepRun]) -> PipelineRun:
    return PipelineRun(
        id=row.run_id,
        pipeline=row.name,
        entrypoint=row.entrypoint,
        status=RunStatus(row.status),
        params=decode_params(store, row.run_id, row.params),
        steps=steps,
        executor=row.executor,
        start_time=to_datetime(row.start_time),
        end_time=to_datetime(row.end_time) if row.end_time is not None else None,
        trigger=row.trigger,
        resumed_from=row.resumed_from,
        output_spec=json.loads(row.output) if row.output else None,
        _store=store,
    )


def list_pipeline_runs(
    store: Store, pipeline: str | None = None, *, limit: int = 100
) -> list[PipelineRun]:
    """The latest pipeline runs (of ``pipeline`` only, when given), newest first; their
    steps are not read (``steps`` is empty): :func:`get_pipeline_run` has them."""
    query = _runs_query().order_by(pipeline_runs.c.created_at.desc()).limit(limit)
    if pipeline is not None:
        query = query.where(pipelines.c.name == pipeline)
    with store.db.read() as conn:
        rows = conn.execute(query).all()
    return [_pipeline_run(store, row, []) for row in rows]


@dataclass(frozen=True)
class PipelineInfo:
    """A known pipeline: its name, where it is loaded from, and its runs."""

    name: str
    entrypoint: str
    runs: int
    last_run_id: str | None
    last_status: str | None


def list_pipelines(store: Store) -> list[PipelineInfo]:
    """Every pipeline this store has runs of, by name."""
    from sqlalchemy import func

    with store.db.read() as conn:
        known = conn.execute(select(pipelines).order_by(pipelines.c.name)).all()
        counts = dict(
            conn.execute(
                select(pipeline_runs.c.pipeline_id, func.count()).group_by(
                    pipeline_runs.c.pipeline_id
                )
            ).all()
        )
        latest = {}
        for pipeline in known:
            row = conn.execute(
                select(pipeline_runs.c.run_id, runs.c.status)
                .join(runs, runs.c.id == pipeline_runs.c.run_id)
                .where(pipeline_runs.c.pipeline_id == pipeline.id)
                .order_by(pipeline_runs.c.created_at.desc())
                .limit(1)
            ).first()
            latest[pipeline.id] = row
    return [
        PipelineInfo(
            p.name,
            p.entrypoint,
            counts.get(p.id, 0),
            latest[p.id].run_id if latest[p.id] else None,
            latest[p.id].status if latest[p.id] else None,
        )
        for p in known
    ]


def entrypoint_of(store: Store, name: str) -> str:
    """Where pipeline ``name`` is loaded from; NotFound naming the known ones."""
    with store.db.read() as conn:
        found = conn.execute(
            select(pipelines.c.entrypoint).where(pipelines.c.name == name)
        ).scalar()
        if found is None:
            names = (
                conn.execute(select(pipelines.c.name).order_by(pipelines.c.name)).scalars().all()
            )
    if found is None:
        known = ", ".join(names) or "none yet"
        raise NotFound(
            f"No pipeline named {name!r} (known: {known}). Run it once by its entrypoint "
            "(module:function or file.py:function) to register it."
        )
    return found


# -- parameters -------------------------------------------------------------------------------

PARAMS_ARTIFACT = "pipeline/params.pkl"


def encode_params(store: Store, run_id: str, params: dict[str, Any]) -> str:
    """The run's parameters as stored: JSON when they are JSON, else a pickle artifact of
    the run (``{"$pickle": path}``), so ``resume`` gets them back exactly."""
    from loopwise.pipelines.fingerprint import canonical_json, is_json_exact

    if is_json_exact(params):
        return canonical_json(params)
    import pickle

    from loopwise.tracking.run_artifacts import log_bytes

    try:
        data = pickle.dumps(params, protocol=5)
    except Exception as exc:
        raise InvalidInput(f"The pipeline's parameters cannot be stored ({exc}).") from exc
    return json.dumps({"$pickle": log_bytes(store, run_id, data, PARAMS_ARTIFACT)})


def decode_params(store: Store, run_id: str, text: str) -> dict[str, Any]:
    params = json.loads(text)
    if isinstance(params, dict) and set(params) == {"$pickle"}:
        import pickle

        from loopwise.tracking.run_artifacts import read_artifact

        return pickle.loads(read_artifact(store, run_id, params["$pickle"]))
    return params
