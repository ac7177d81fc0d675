"""Pipeline schedules: when a pipeline runs without anyone asking.

A schedule names a registered pipeline (by name: the scheduler loads it from its recorded
entrypoint, so it runs the code as it is when the tick comes) and one trigger:

- ``cron``: a 5-field cron expression (``0 3 * * *``) read in the schedule's time zone
  (UTC by default; a named zone follows its daylight-saving changes the way Debian's cron
  does, through :mod:`cronsim`);
- ``new_data``: each version of a dataset logged after the schedule was made starts one
  run, with ``datasets:/<name>/<version>`` as the parameter ``input_param``.

These functions only record schedules; :mod:`.scheduler` acts on them. Why the checks
happen here, when the schedule is made: a typo in a cron field or a parameter name found
at 03:00 by a scheduler's log is found too late.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from loopwise.clock import EPOCH, now_us, to_datetime
from loopwise.errors import InvalidInput, NotFound
from loopwise.identity import current_user
from loopwise.ids import new_id
from loopwise.param_errors import suggestion
from loopwise.store import Store
from loopwise.store.tables import dataset_versions, datasets, pipeline_schedules, pipeline_ticks

CRON, NEW_DATA = "cron", "new_data"
KINDS = (CRON, NEW_DATA)
#: The tick states: a claimed tick is ``running`` once its run started, then ``succeeded``
#: or ``failed`` (the pipeline run's outcome), ``error`` (the run could not start) or
#: ``interrupted`` (the scheduler stopped it while shutting down); ``missed`` ticks passed
#: while no scheduler ran and were not run (only the latest due one is).
CLAIMED, RUNNING, SUCCEEDED, FAILED, ERROR, INTERRUPTED, MISSED = (
    "claimed",
    "running",
    "succeeded",
    "failed",
    "error",
    "interrupted",
    "missed",
)
EXECUTORS = ("inprocess", "processes", "ray")
DEFAULT_INPUT_PARAM = "data"

CRON_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELD_RANGES = {
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31 (or L)",
    "month": "1-12 or JAN-DEC",
    "day-of-week": "0-7 or SUN-SAT",
}
_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_SECOND = timedelta(seconds=1)


# -- cron -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cron:
    """A checked cron expression in a time zone; every moment it answers is UTC."""

    expr: str
    timezone: str = "UTC"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def _iter(self, start: datetime, *, reverse: bool) -> Iterator[datetime]:
        from cronsim import CronSim

        local = start.astimezone(self.zone).replace(microsecond=0)
        if self.timezone == "UTC":
            local = local.replace(tzinfo=UTC)  # cronsim skips its DST handling for UTC
        try:
            for moment in CronSim(_ALIASES.get(self.expr, self.expr), local, reverse=reverse):
                yield moment.astimezone(UTC)
        except StopIteration:  # (no match within 50 years)
            return

    def latest(self, now: datetime) -> datetime | None:
        """The latest time of the expression at or before ``now`` (None: none in 50 years)."""
        # cronsim's reverse iteration starts strictly before its start, so start 1 s later
        start = now.replace(microsecond=0) + _SECOND
        return next(self._iter(start, reverse=True), None)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first time of the expression strictly after ``moment``."""
        return next(self._iter(moment, reverse=False), None)

    def before(self, moment: datetime, after: datetime, limit: int) -> list[datetime]:
        """Up to ``limit`` times strictly between ``after`` and ``moment``, latest first
        (walked backwards, so a long downtime costs ``limit`` steps, not one per tick)."""
        found: list[datetime] = []
        for earlier in self._iter(moment, reverse=True):
            if earlier <= after or len(found) >= limit:
                break
            found.append(earlier)
        return found


def parse_cron(expr: str, timezone: str = "UTC") -> Cron:
    """``expr`` checked as a 5-field cron expression (or ``@daily`` & co.) in ``timezone``;
    InvalidInput naming the field that is wrong."""
    zone_name = check_timezone(timezone)
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidInput(f"A cron expression must be text such as '0 3 * * *'; got {expr!r}.")
    expr = " ".join(expr.split())
    text = _ALIASES.get(expr.lower(), expr)
    if text.startswith("@"):
        raise InvalidInput(
            f"Cron expression {expr!r}: unknown shortcut{suggestion(expr, list(_ALIASES))}"
        )
    parts = text.split()
    if len(parts) != 5:
        raise InvalidInput(
            f"Cron expression {expr!r} has {len(parts)} field(s); write 5: "
            f"{' '.join(CRON_FIELDS)} (e.g. '0 3 * * *' for 03:00 every day)."
        )
    from cronsim import CronSim, CronSimError

    try:
        CronSim(text, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as e:
        if str(e) == "Bad day-of-month" and _parses([*parts[:3], "*", parts[4]]):
            raise InvalidInput(
                f"Cron expression {expr!r} never matches: day-of-month {parts[2]!r} does not "
                f"occur in month {parts[3]!r}."
            ) from None
        for i, name in enumerate(CRON_FIELDS):
            if str(e) == f"Bad {name}":
                raise InvalidInput(
                    f"Cron expression {expr!r}: the {name} field {parts[i]!r} is not valid; "
                    f"it takes {_FIELD_RANGES[name]}, '*', lists (1,15), ranges (1-5) and "
                    "steps (*/10)."
                ) from None
        raise InvalidInput(f"Cron expression {expr!r} is not valid: {e}.") from None
    cron = Cron(expr.lower() if expr.lower() in _ALIASES else text, zone_name)
    if cron.next_after(EPOCH + timedelta(days=365 * 30)) is None:
        raise InvalidInput(f"Cron expression {expr!r} never matches a date.")
    return cron


def _parses(parts: list[str]) -> bool:
    """Whether cronsim takes the expression of ``parts``."""
    from cronsim import CronSim, CronSimError

    try:
        CronSim(" ".join(parts), EPOCH)
    except CronSimError:
        return False
    return True


def check_timezone(name: str) -> str:
    """An IANA time zone name (``UTC``, ``Europe/Paris``); InvalidInput otherwise."""
    if not isinstance(name, str) or not name:
        raise InvalidInput(
            f"A time zone must be a name such as 'UTC' or 'Europe/Paris'; got {name!r}."
        )
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"Unknown time zone {name!r}; use an IANA name such as 'UTC', 'Europe/Paris' or "
            "'America/New_York'."
        ) from None
    return name


# -- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A stored schedule. ``last_tick`` is how far it has been handled: the latest cron time
    claimed or recorded missed (microseconds, UTC), or the latest dataset version seen."""

    id: str
    pipeline: str
    kind: str
    spec: str
    params: dict[str, Any]
    input_param: str | None
    timezone: str
    executor: str
    enabled: bool
    created_at: datetime
    created_by: str | None
    last_tick: int | None

    @property
    def cron(self) -> Cron:
        """The cron expression of a ``cron`` schedule."""
        if self.kind != CRON:
            raise InvalidInput(f"Schedule {self.id} runs on new data, not on a cron expression.")
        return Cron(self.spec, self.timezone)

    def describe(self) -> str:
        """The trigger for people: ``cron 0 3 * * * (UTC)``, ``new data datasets:/loans``."""
        if self.kind == CRON:
            return f"cron {self.spec} ({self.timezone})"
        return f"new data datasets:/{self.spec} (as {self.input_param})"

    def next_tick(self, now: datetime) -> datetime | None:
        """When a cron schedule fires next after ``now`` (None for new-data schedules)."""
        return self.cron.next_after(now) if self.kind == CRON else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "kind": self.kind,
            "spec": self.spec,
            "params": self.params,
            "input_param": self.input_param,
            "timezone": self.timezone,
            "executor": self.executor,
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "last_tick": self.last_tick,
        }


@dataclass(frozen=True)
class Tick:
    """One tick of a schedule a scheduler handled: ``key`` is the cron time (µs, UTC) or the
    dataset version number; ``trigger`` the text recorded on the pipeline run."""

    schedule_id: str
    key: int
    state: str
    trigger: str
    run_id: str | None
    claimed_by: str | None
    claimed_at: datetime
    finished_at: datetime | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedule_id": self.schedule_id,
            "key": self.key,
            "state": self.state,
            "trigger": self.trigger,
            "run_id": self.run_id,
            "claimed_by": self.claimed_by,
            "claimed_at": self.claimed_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "error": self.error,
        }


def schedule_from_row(row: Any) -> Schedule:
    created = to_datetime(row.created_at)
    assert created is not None
    return Schedule(
        id=row.id,
        pipeline=row.pipeline,
        kind=row.kind,
        spec=row.spec,
        params=json.loads(row.params),
        input_param=row.input_param,
        timezone=row.timezone,
        executor=row.executor,
        enabled=bool(row.enabled),
        created_at=created,
        created_by=row.created_by,
        last_tick=row.last_tick,
    )


def tick_from_row(row: Any) -> Tick:
    claimed = to_datetime(row.claimed_at)
    assert claimed is not None
    return Tick(
        schedule_id=row.schedule_id,
        key=row.tick_key,
        state=row.state,
        trigger=row.trigger,
        run_id=row.run_id,
        claimed_by=row.claimed_by,
        claimed_at=claimed,
        finished_at=to_datetime(row.finished_at),
        error=row.error,
    )


# -- services ---------------------------------------------------------------------------------


def create_schedule(
    store: Store,
    pipeline: str,
    *,
    cron: str | None = None,
    on_new_data: str | None = None,
    input_param: str | None = None,
    params: Mapping[str, Any] | None = None,
    timezone: str = "UTC",
    executor: str = "inprocess",
) -> Schedule:
    """Schedule runs of ``pipeline`` (a registered name, or an entrypoint
    ``module:function`` / ``file.py:function``, registered here) with ``params``: on the
    cron expression ``cron``, or on each new version of the dataset ``on_new_data``
    (``datasets:/loans`` or ``loans``), passed as the parameter ``input_param`` (default
    ``data``). The pipeline is loaded to check the parameters against its signature."""
    from loopwise.pipelines import records
    from loopwise.pipelines.definition import load_pipeline

    if (cron is None) == (on_new_data is None):
        raise InvalidInput(
            "Give exactly one trigger: a cron expression (cron='0 3 * * *') or a dataset "
            "whose new versions start runs (on_new_data='datasets:/loans')."
        )
    if params is not None and not isinstance(params, Mapping):
        raise InvalidInput(
            f"params must be a mapping of parameter names to values; got {params!r}."
        )
    values = dict(params or {})
    try:
        json.dumps(values, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"A schedule's params must be JSON values ({e}).") from None
    executor = _check_executor(executor)
    if ":" in pipeline:  # an entrypoint (a pipeline name has no ':')
        found = load_pipeline(pipeline)
        records.register_pipeline(store, found.name, found.entrypoint)
        name = found.name
    else:
        name = pipeline
        found = load_pipeline(records.entrypoint_of(store, name))
    if cron is not None:
        parsed = parse_cron(cron, timezone)
        kind, spec, input_param, last = CRON, parsed.expr, None, None
        found.parameters(values)  # InvalidInput naming the pipeline's parameters
    else:
        assert on_new_data is not None
        spec, last = _dataset_to_follow(store, on_new_data)
        kind, timezone = NEW_DATA, check_timezone(timezone)
        input_param = input_param or DEFAULT_INPUT_PARAM
        if input_param in values:
            raise InvalidInput(
                f"Parameter {input_param!r} receives the new dataset version; do not also give "
                "it in params."
            )
        if input_param not in found.signature.parameters:
            known = ", ".join(found.signature.parameters) or "none"
            raise InvalidInput(
                f"Pipeline {name!r} has no parameter {input_param!r} to receive the new "
                f"version of dataset {spec!r}; its parameters: {known}. Name one with "
                "input_param (--as on the command line)."
            )
        found.parameters(values | {input_param: f"datasets:/{spec}/{last + 1}"})
    row = {
        "id": new_id(),
        "pipeline": name,
        "kind": kind,
        "spec": spec,
        "params": json.dumps(values, sort_keys=True),
        "input_param": input_param,
        "timezone": timezone,
        "executor": executor,
        "enabled": True,
        "created_at": now_us(),
        "created_by": current_user(),
        "last_tick": last,
    }
    with store.db.write() as conn:
        conn.execute(pipeline_schedules.insert().values(row))
    return get_schedule(store, row["id"])


def _check_executor(executor: str) -> str:
    if not isinstance(executor, str) or not (
        executor in EXECUTORS or executor.startswith("ray://")
    ):
        raise InvalidInput(
            f"Unknown executor {executor!r}; use inprocess, processes, ray or ray://host:10001."
        )
    return executor


def _dataset_to_follow(store: Store, ref: str) -> tuple[str, int]:
    """The dataset named by ``ref`` and its latest version number now (the versions a
    schedule follows are the later ones)."""
    name = ref
    if isinstance(ref, str) and ref.startswith("datasets:/"):
        name = ref[len("datasets:/") :]
        if "/" in name or "@" in name:
            raise InvalidInput(
                f"--on-new-data takes a dataset (datasets:/loans), not one version; got {ref!r}."
            )
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"A dataset to follow is datasets:/<name>; got {ref!r}.")
    with store.db.read() as conn:
        latest = conn.execute(
            select(func.max(dataset_versions.c.version))
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .where(datasets.c.name == name)
        ).scalar()
        if latest is None:
            known = conn.execute(select(datasets.c.name).order_by(datasets.c.name)).scalars().all()
    if latest is None:
        hint = suggestion(name, known) if known else " (there are no datasets yet)."
        raise NotFound(
            f"No dataset named {name!r}{hint} A schedule follows an existing dataset: log "
            "its first version (lw.log_dataset), then schedule."
        )
    return name, int(latest)


def _latest_version(conn: Any, name: str) -> int:
    latest = conn.execute(
        select(func.max(dataset_versions.c.version))
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(datasets.c.name == name)
    ).scalar()
    return int(latest or 0)


def get_schedule(store: Store, schedule_id: str) -> Schedule:
    """The schedule ``schedule_id``; NotFound saying how to list them."""
    with store.db.read() as conn:
        row = conn.execute(
            select(pipeline_schedules).where(pipeline_schedules.c.id == schedule_id)
        ).first()
    if row is None:
        raise NotFound(
            f"No pipeline schedule {schedule_id!r}; list them with `loopwise pipelines schedules`."
        )
    return schedule_from_row(row)


def list_schedules(
    store: Store, pipeline: str | None = None, *, enabled_only: bool = False
) -> list[Schedule]:
    """The schedules (of ``pipeline``), oldest first."""
    query = select(pipeline_schedules).order_by(pipeline_schedules.c.id)
    if pipeline is not None:
        query = query.where(pipeline_schedules.c.pipeline == pipeline)
    if enabled_only:
        query = query.where(pipeline_schedules.c.enabled.is_(True))
    with store.db.read() as conn:
        return [schedule_from_row(row) for row in conn.execute(query)]


def delete_schedule(store: Store, schedule_id: str) -> Schedule:
    """Remove a schedule and its tick records (the pipeline runs it started stay, their
    trigger naming it). A scheduler that claims after this finds nothing to claim."""
    found = get_schedule(store, schedule_id)
    with store.db.write() as conn:
        conn.execute(delete(pipeline_ticks).where(pipeline_ticks.c.schedule_id == schedule_id))
        conn.execute(delete(pipeline_schedules).where(pipeline_schedules.c.id == schedule_id))
    return found


def set_enabled(store: Store, schedule_id: str, enabled: bool) -> Schedule:
    """Pause (False) or resume (True) a schedule. Ticks that pass while it is paused are not
    run: on resuming, a cron schedule runs from its next tick on, a new-data schedule from
    the next version on."""
    get_schedule(store, schedule_id)
    values: dict[str, Any] = {"enabled": bool(enabled)}
    with store.db.write() as conn:
        row = conn.execute(
            select(pipeline_schedules).where(pipeline_schedules.c.id == schedule_id)
        ).one()
        if enabled and not row.enabled and row.kind == CRON:
            values["last_tick"] = max(row.last_tick or 0, now_us())
        elif enabled and not row.enabled:
            values["last_tick"] = max(row.last_tick or 0, _latest_version(conn, row.spec))
        conn.execute(
            update(pipeline_schedules).where(pipeline_schedules.c.id == schedule_id).values(values)
        )
    return get_schedule(store, schedule_id)


def list_ticks(store: Store, schedule_id: str | None = None, *, limit: int = 100) -> list[Tick]:
    """The latest ticks (of ``schedule_id``), newest first."""
    query = select(pipeline_ticks).order_by(
        pipeline_ticks.c.claimed_at.desc(), pipeline_ticks.c.tick_key.desc()
    )
    if schedule_id is not None:
        query = query.where(pipeline_ticks.c.schedule_id == schedule_id)
    with store.db.read() as conn:
        return [tick_from_row(row) for row in conn.execute(query.limit(limit))]


def get_tick(store: Store, schedule_id: str, key: int) -> Tick:
    """Tick ``key`` of schedule ``schedule_id``."""
    t = pipeline_ticks.c
    with store.db.read() as conn:
        row = conn.execute(
            select(pipeline_ticks).where(t.schedule_id == schedule_id, t.tick_key == key)
        ).first()
    if row is None:
        raise NotFound(f"Schedule {schedule_id} has no tick {key}.")
    return tick_from_row(row)


def cron_trigger(schedule_id: str, moment: datetime) -> str:
    """The trigger text of a cron tick: ``cron:<schedule id>@<ISO time, UTC>``."""
    return f"cron:{schedule_id}@{moment.astimezone(UTC).isoformat()}"


def new_data_trigger(dataset: str, version: int) -> str:
    """The trigger text of a new-data tick: ``new_data:datasets:/<name>/<version>``."""
    return f"new_data:datasets:/{dataset}/{version}"


__all__ = [
    "CRON",
    "KINDS",
    "NEW_DATA",
    "Cron",
    "Schedule",
    "Tick",
    "create_schedule",
    "cron_trigger",
    "delete_schedule",
    "get_schedule",
    "get_tick",
    "list_schedules",
    "list_ticks",
    "new_data_trigger",
    "parse_cron",
    "set_enabled",
]
