"""Experiments and runs in the metadata store: create, end, params, tags, read.

Plain functions over a :class:`~loopwise.store.Store`; the module-level API, the CLI and
the server all call these. Metric points do not come through here on the hot path: they
go through :mod:`loopwise.tracking.writer`.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select, update

from loopwise.clock import now_us, to_datetime
from loopwise.errors import Conflict, InvalidInput, NotFound, ParamConflict
from loopwise.identity import current_user
from loopwise.ids import new_id
from loopwise.refs import run_id_of
from loopwise.store import Store
from loopwise.store.tables import experiment_tags as experiment_tag_table
from loopwise.store.tables import experiments, metric_series, run_params, run_tags, runs
from loopwise.store.upsert import insert_on_conflict
from loopwise.tracking.naming import MAX_KEY_LENGTH, generate_run_name, naming_rule
from loopwise.tracking.records import Experiment, Run, RunStatus

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_EXPERIMENT = "default"
MAX_VALUE_LENGTH = 8000
HOST = socket.gethostname()


# -- experiments -----------------------------------------------------------------------------


def _experiment_from_row(row: Any, run_count: int | None = None) -> Experiment:
    return Experiment(
        id=row.id,
        name=row.name,
        created_at=to_datetime(row.created_at),
        description=row.description,
        run_count=run_count,
        deleted_at=to_datetime(row.deleted_at),
    )


def check_experiment_name(name: str) -> None:
    """InvalidInput unless ``name`` can name an experiment (the rule the store and a
    remote client both apply, with one wording)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"Experiment name must be a non-empty string, got {name!r}.")
    if len(name) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"Experiment name '{name[:40]}...' is {len(name)} characters long; "
            f"the limit is {MAX_KEY_LENGTH}."
        )


def get_or_create_experiment(store: Store, name: str) -> Experiment:
    """The experiment called ``name``, created if it does not exist yet."""
    check_experiment_name(name)
    with store.db.read() as conn:
        row = conn.execute(select(experiments).where(experiments.c.name == name)).first()
    if row is not None:
        return _experiment_from_row(row)
    with store.db.write() as conn:
        insert_on_conflict(
            conn,
            experiments,
            [{"id": new_id(), "name": name, "created_at": now_us(), "description": None}],
            keys=["name"],
        )
        row = conn.execute(select(experiments).where(experiments.c.name == name)).one()
    return _experiment_from_row(row)


def get_experiment(store: Store, name_or_id: str) -> Experiment:
    """An experiment by name or id; :class:`NotFound` names both when neither matches."""
    with store.db.read() as conn:
        return _experiment_from_row(_experiment_row(conn, store, name_or_id))


def list_experiments(store: Store) -> list[Experiment]:
    """Every experiment not deleted with its number of runs not deleted, oldest first."""
    counts = (
        select(runs.c.experiment_id, func.count().label("n"))
        .where(runs.c.deleted_at.is_(None))
        .group_by(runs.c.experiment_id)
        .subquery()
    )
    query = (
        select(experiments, func.coalesce(counts.c.n, 0).label("n"))
        .outerjoin(counts, counts.c.experiment_id == experiments.c.id)
        .where(experiments.c.deleted_at.is_(None))
        .order_by(experiments.c.id)
    )
    with store.db.read() as conn:
        return [_experiment_from_row(row, row.n) for row in conn.execute(query)]


def _experiment_row(conn: Connection, store: Store, name_or_id: str) -> Any:
    """The experiments row named or numbered ``name_or_id`` (NotFound naming it)."""
    row = None
    if isinstance(name_or_id, str):
        row = conn.execute(
            select(experiments).where(
                (experiments.c.name == name_or_id) | (experiments.c.id == name_or_id)
            )
        ).first()
    if row is None:
        raise NotFound(
            f"Experiment {str(name_or_id)[:100]!r} does not exist in {store.db.safe_url}. "
            "List experiments with `loopwise experiments list`."
        )
    return row


def rename_experiment(store: Store, experiment: str, new_name: str) -> Experiment:
    """Give an experiment (by name or id) a new name; its id and runs stay.

    The default experiment keeps its name: it is found by that name (MLflow's experiment
    ``0`` too), so renaming it would silently start a new one. A name another experiment
    has is a :class:`Conflict` (names are unique, deleted experiments' too)."""
    check_experiment_name(new_name)
    with store.db.write() as conn:
        row = _experiment_row(conn, store, experiment)
        if row.name == new_name:
            return _experiment_from_row(row)
        if DEFAULT_EXPERIMENT in (row.name, new_name):
            raise InvalidInput(
                f"The experiment '{DEFAULT_EXPERIMENT}' cannot be renamed, nor another renamed "
                f"to it: runs without an experiment go there by that name."
            )
        taken = conn.execute(select(experiments.c.id).where(experiments.c.name == new_name)).first()
        if taken is not None:
            raise Conflict(
                f"An experiment named {new_name!r} already exists (id {taken.id}); choose "
                "another name."
            )
        conn.execute(update(experiments).where(experiments.c.id == row.id).values(name=new_name))
        row = conn.execute(select(experiments).where(experiments.c.id == row.id)).one()
    return _experiment_from_row(row)


def delete_experiment(store: Store, experiment: str) -> None:
    """Soft-delete an experiment (by name or id): it leaves listings, keeps its runs and its
    name, and :func:`restore_experiment` brings it back. Deleting it again changes nothing.
    The default experiment cannot be deleted (runs without an experiment go there)."""
    with store.db.write() as conn:
        row = _experiment_row(conn, store, experiment)
        if row.name == DEFAULT_EXPERIMENT:
            raise InvalidInput(
                f"The experiment '{DEFAULT_EXPERIMENT}' cannot be deleted: runs without an "
                "experiment go there."
            )
        if row.deleted_at is None:
            conn.execute(
                update(experiments).where(experiments.c.id == row.id).values(deleted_at=now_us())
            )


def restore_experiment(store: Store, experiment: str) -> None:
    """Undo :func:`delete_experiment` (restoring an experiment not deleted changes nothing)."""
    with store.db.write() as conn:
        row = _experiment_row(conn, store, experiment)
        conn.execute(update(experiments).where(experiments.c.id == row.id).values(deleted_at=None))


def check_experiment_tags(store: Store, experiment: str, tags: Mapping[str, Any]) -> dict[str, str]:
    """Experiment tags checked (keys under the run tag key rule, values text of at most
    :data:`MAX_VALUE_LENGTH` characters, like run tags) and turned into their stored text:
    a caller creating an experiment with tags checks them before creating it."""
    rule = naming_rule(store.settings.key_rule)
    owner = f"experiment {str(experiment)[:100]}"
    texts = {}
    for key, value in tags.items():
        rule.check(key, kind="Tag key", owner=owner)
        texts[key] = value_text(value, what=f"Tag '{key}' of {owner}")
    return texts


def set_experiment_tag(store: Store, experiment: str, key: str, value: Any) -> None:
    """Set one tag of an experiment (by name or id); a new value replaces the old one.
    Experiments carry tags as MLflow's do (a team, a project, a note)."""
    ((key, text),) = check_experiment_tags(store, experiment, {key: value}).items()
    with store.db.write() as conn:
        row = _experiment_row(conn, store, experiment)
        insert_on_conflict(
            conn,
            experiment_tag_table,
            [{"experiment_id": row.id, "key": key, "value": text}],
            keys=["experiment_id", "key"],
            update=["value"],
        )


def delete_experiment_tag(store: Store, experiment: str, key: str) -> None:
    """Remove tag ``key`` of an experiment (by name or id); NotFound when it has none."""
    t = experiment_tag_table.c
    with store.db.write() as conn:
        row = _experiment_row(conn, store, experiment)
        gone = conn.execute(
            experiment_tag_table.delete().where(t.experiment_id == row.id, t.key == key)
        ).rowcount
    if not gone:
        raise NotFound(f"No tag with key {key!r} on experiment {row.name!r}.")


def experiment_tags(store: Store, experiment: str) -> dict[str, str]:
    """The tags of an experiment (by name or id), by key."""
    with store.db.read() as conn:
        row = _experiment_row(conn, store, experiment)
        t = experiment_tag_table.c
        return dict(
            conn.execute(
                select(t.key, t.value).where(t.experiment_id == row.id).order_by(t.key)
            ).all()
        )


# -- values ----------------------------------------------------------------------------------


def value_text(value: Any, *, what: str) -> str:
    """The stored text of a param or tag value (params and tags are strings, like MLflow's)."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        text = str(value)
    elif isinstance(value, float):
        text = repr(float(value))  # NumPy's float64 is a float whose repr names its type
    elif isinstance(value, int):
        text = str(value)
    elif hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return value_text(value.item(), what=what)
    elif isinstance(value, list | tuple | dict):
        try:
            text = json.dumps(value, default=str)
        except (TypeError, ValueError):
            text = str(value)
    else:
        text = str(value)
    if len(text) > MAX_VALUE_LENGTH:
        raise InvalidInput(
            f"{what} is {len(text)} characters long; the limit is {MAX_VALUE_LENGTH}. "
            "Log long values as an artifact instead (lw.log_text or lw.log_dict)."
        )
    return text


def check_keys(store: Store, keys: Iterable[str], *, kind: str, run_id: str) -> None:
    """Check keys against the configured naming rule (fast for keys seen before)."""
    rule = naming_rule(store.settings.key_rule)
    for key in keys:
        rule.check(key, kind=kind, owner=f"run {run_id}")


# -- runs ------------------------------------------------------------------------------------


def check_run_name(name: str) -> None:
    """InvalidInput unless ``name`` can name a run (a non-empty string of at most
    :data:`MAX_KEY_LENGTH` characters: names are shown in tables and looked up)."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_KEY_LENGTH:
        shown = repr(name)
        if isinstance(name, str) and len(name) > 40:
            shown = f"{name[:40]!r}... ({len(name):,} characters)"
        raise InvalidInput(
            f"Run name must be a non-empty string of at most {MAX_KEY_LENGTH} characters, "
            f"got {shown}."
        )


def create_run(
    store: Store,
    experiment: str = DEFAULT_EXPERIMENT,
    *,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    parent_run_id: str | None = None,
    host: str | None = None,
    pid: int | None = None,
    watched: bool = True,
    user: str | None = None,
) -> str:
    """Insert a RUNNING run and return its id.

    ``host`` and ``pid`` name the process that executes the run (this one unless given: a
    server creating a run for a remote client records the client's), which is what
    :func:`mark_lost_runs` checks. ``watched=False`` records no process: the run stays
    RUNNING until it is ended (an MLflow client's run: it sends no heartbeat). ``user``
    names who runs it (default: the caller, see :func:`loopwise.identity.current_user`)."""
    exp = get_or_create_experiment(store, experiment)
    if exp.deleted_at is not None:
        raise InvalidInput(
            f"Experiment '{exp.name}' is deleted; restore it (restore_experiment) before "
            "starting runs in it, or use another experiment."
        )
    run_id = new_id()
    if name is None:
        name = generate_run_name()
    else:
        check_run_name(name)
    first_tags = tag_rows(store, run_id, tags or {})
    now = now_us()
    with store.db.write() as conn:
        if parent_run_id is not None:
            require_run(conn, store, parent_run_id)
        conn.execute(
            runs.insert().values(
                id=run_id,
                experiment_id=exp.id,
                name=name,
                status=RunStatus.RUNNING.value,
                parent_run_id=parent_run_id,
                start_time=now,
                heartbeat_at=now,
                host=HOST if host is None else host,
                pid=None if not watched else os.getpid() if pid is None else pid,
                username=current_user() if user is None else user,
            )
        )
        if first_tags:
            conn.execute(run_tags.insert(), first_tags)
    return run_id


def end_run(store: Store, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> None:
    """Set a run's final status and end time."""
    final = RunStatus.final(status)
    with store.db.write() as conn:
        require_run(conn, store, run_id)
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(status=final.value, end_time=now_us(), heartbeat_at=now_us())
        )


#: The tag in which MLflow clients keep a run's name (kept equal to it on a rename).
RUN_NAME_TAG = "mlflow.runName"


def rename_run(store: Store, run_id: str, name: str) -> None:
    """Give run ``run_id`` (an id, a unique name or a ``runs:/`` reference) a new name,
    under the rule of :func:`create_run` (names need not be unique; ids are). A stored
    ``mlflow.runName`` tag (an MLflow client's run, an imported one) follows, so no reader
    sees the old name there."""
    check_run_name(name)
    run_id = resolve_run_id(store, run_id)
    with store.db.write() as conn:
        require_run(conn, store, run_id)
        conn.execute(update(runs).where(runs.c.id == run_id).values(name=name))
        conn.execute(
            update(run_tags)
            .where(run_tags.c.run_id == run_id, run_tags.c.key == RUN_NAME_TAG)
            .values(value=name)
        )


def _set_deleted(store: Store, run_id: str, deleted: bool) -> None:
    run_id = resolve_run_id(store, run_id)
    with store.db.write() as conn:
        require_run(conn, store, run_id)
        query = update(runs).where(runs.c.id == run_id)
        if deleted:  # deleting again keeps the first time
            query = query.where(runs.c.deleted_at.is_(None)).values(deleted_at=now_us())
        else:
            query = query.values(deleted_at=None)
        conn.execute(query)


def delete_run(store: Store, run_id: str) -> None:
    """Soft-delete a run (an id, a unique name or a ``runs:/`` reference): searches and
    listings leave it out, :func:`get_run` still reads it (with ``deleted_at``), and
    :func:`restore_run` brings it back. Nothing it logged is removed: a model version
    trained by it keeps its lineage. Its child runs are not deleted with it."""
    _set_deleted(store, run_id, True)


def restore_run(store: Store, run_id: str) -> None:
    """Undo :func:`delete_run` (restoring a run that is not deleted changes nothing)."""
    _set_deleted(store, run_id, False)


def heartbeat(store: Store, run_ids: Iterable[str]) -> None:
    """Mark runs alive; a run wrongly reported LOST (e.g. after a sleep) becomes RUNNING."""
    ids = list(run_ids)
    if not ids:
        return
    with store.db.write() as conn:
        conn.execute(
            update(runs)
            .where(runs.c.id.in_(ids))
            .where(runs.c.status.in_([RunStatus.RUNNING.value, RunStatus.LOST.value]))
            .values(heartbeat_at=now_us(), status=RunStatus.RUNNING.value, end_time=None)
        )


def set_environment(store: Store, run_id: str, environment: Mapping[str, Any]) -> None:
    """Store the captured environment of a run."""
    with store.db.write() as conn:
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(environment=json.dumps(environment, default=str))
        )


def require_run(conn: Connection, store: Store, run_id: str) -> None:
    """:class:`NotFound` unless run ``run_id`` exists (in the caller's transaction)."""
    if (
        not isinstance(run_id, str)
        or conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None
    ):
        raise NotFound(
            f"Run '{run_id}' does not exist in {store.db.safe_url}. "
            "Find run ids with `loopwise runs list`."
        )


# -- params and tags -------------------------------------------------------------------------


def log_params(store: Store, run_id: str, params: Mapping[str, Any]) -> None:
    """Log params; logging a key again with the same value is fine, another value is not."""
    if not isinstance(params, Mapping):
        raise InvalidInput(
            f"Params of run {run_id} must be a dict of key -> value, got {type(params).__name__}."
        )
    if not params:
        return
    wanted = param_texts(store, run_id, params)
    with store.db.write() as conn:
        require_run(conn, store, run_id)
        write_params(conn, run_id, wanted)


def param_texts(store: Store, run_id: str, params: Mapping[str, Any]) -> dict[str, str]:
    """Params checked (keys against the naming rule) and turned into their stored text."""
    check_keys(store, params, kind="Param key", run_id=run_id)
    return {
        key: value_text(value, what=f"Param '{key}' of run {run_id}")
        for key, value in params.items()
    }


def write_params(conn: Connection, run_id: str, wanted: Mapping[str, str]) -> None:
    """Insert params (from :func:`param_texts`) in the caller's transaction;
    :class:`ParamConflict` when a key is already logged with another value."""
    if not wanted:
        return
    insert_on_conflict(
        conn,
        run_params,
        [{"run_id": run_id, "key": k, "value": v} for k, v in wanted.items()],
        keys=["run_id", "key"],
    )
    stored = dict(
        conn.execute(
            select(run_params.c.key, run_params.c.value)
            .where(run_params.c.run_id == run_id)
            .where(run_params.c.key.in_(list(wanted)))
        ).all()
    )
    for key, value in wanted.items():
        if stored.get(key) != value:
            raise ParamConflict(
                f"Param '{key}' of run {run_id} is already logged as {stored.get(key)!r}; "
                f"cannot change it to {value!r}. Params are immutable: start a new run for "
                "a new value, or log the changing value as a metric or tag."
            )


def write_tags(conn: Connection, rows: list[dict[str, str]]) -> None:
    """Upsert tag rows (from :func:`tag_rows`) in the caller's transaction."""
    if rows:
        insert_on_conflict(conn, run_tags, rows, keys=["run_id", "key"], update=["value"])


def tag_rows(store: Store, run_id: str, tags: Mapping[str, Any]) -> list[dict[str, str]]:
    """Tags checked (keys against the naming rule) as rows of ``run_tags``."""
    if not isinstance(tags, Mapping):
        raise InvalidInput(
            f"Tags of run {run_id} must be a dict of key -> value, got {type(tags).__name__}."
        )
    check_keys(store, tags, kind="Tag key", run_id=run_id)
    return [
        {"run_id": run_id, "key": k, "value": value_text(v, what=f"Tag '{k}' of run {run_id}")}
        for k, v in tags.items()
    ]


def set_tags(store: Store, run_id: str, tags: Mapping[str, Any]) -> None:
    """Set tags (tags are mutable: a new value replaces the old one)."""
    rows = tag_rows(store, run_id, tags)
    if not rows:
        return
    with store.db.write() as conn:
        require_run(conn, store, run_id)
        write_tags(conn, rows)


def delete_tag(store: Store, run_id: str, key: str) -> None:
    """Remove a tag; :class:`NotFound` if the run has no such tag."""
    with store.db.write() as conn:
        result = conn.execute(
            run_tags.delete().where(run_tags.c.run_id == run_id).where(run_tags.c.key == key)
        )
        if result.rowcount == 0:
            raise NotFound(f"Run '{run_id}' has no tag '{key}'.")


# -- liveness --------------------------------------------------------------------------------


def _process_gone(pid: int | None, start_us: int) -> bool:
    """True when ``pid`` on this host is not the process that started the run."""
    if pid is None:
        return False
    import psutil

    try:
        created = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return True
    except psutil.AccessDenied:
        return False
    return created * 1_000_000 > start_us + 1_000_000  # the pid was reused


def reap_lost_runs(store: Store) -> int:
    """Mark RUNNING runs whose process is gone as LOST; return how many were marked.

    A run is lost when its process is gone from this host, or when its heartbeat is older
    than ``heartbeat_timeout`` and it ran on another host (whose processes we cannot see).
    """
    timeout_us = int(store.settings.heartbeat_timeout * 1_000_000)
    now = now_us()
    with store.db.read() as conn:
        candidates = conn.execute(
            select(runs.c.id, runs.c.host, runs.c.pid, runs.c.start_time, runs.c.heartbeat_at)
            .where(runs.c.status == RunStatus.RUNNING.value)
            .where((runs.c.host == HOST) | (runs.c.heartbeat_at < now - timeout_us))
        ).all()
    lost = []
    for row in candidates:
        stale = (row.heartbeat_at or row.start_time) < now - timeout_us
        if row.host == HOST:
            if row.pid == os.getpid():
                continue  # this very process: alive by definition
            if _process_gone(row.pid, row.start_time):
                lost.append(row.id)
        elif stale:
            lost.append(row.id)
    if lost:
        with store.db.write() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(lost))
                .where(runs.c.status == RunStatus.RUNNING.value)
                .values(status=RunStatus.LOST.value, end_time=runs.c.heartbeat_at)
            )
    return len(lost)


# -- reading ---------------------------------------------------------------------------------


def _metric_value(value: float | None) -> float:
    return math.nan if value is None else value


_CANDIDATES_SHOWN = 10  # an ambiguous name lists at most this many runs


def resolve_run_id(store: Store, run: str) -> str:
    """The id of the run that ``run`` names: a run id, a unique run name, or ``runs:/`` either.

    People see run names (``calm-tiger-826``) everywhere, so every command that takes a run
    takes its name too. Ids come first: a name is looked up only when no run has ``run`` as
    its id. A name that several runs share is refused with their ids, never guessed.
    """
    if not isinstance(run, str) or not run.strip():
        raise InvalidInput(
            f"A run must be given by its id or its name (a non-empty string). Got {run!r} instead."
        )
    text = run_id_of(run)
    with store.db.read() as conn:
        if conn.execute(select(runs.c.id).where(runs.c.id == text)).first() is not None:
            return text
        named = conn.execute(
            select(runs.c.id, experiments.c.name.label("experiment"), runs.c.start_time)
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .where(runs.c.name == text)
            .order_by(runs.c.id)
        ).all()
    if len(named) == 1:
        return str(named[0].id)
    if not named:
        raise NotFound(
            f"Run '{text}' does not exist in {store.db.safe_url}: no run has that id or name. "
            "Find runs with `loopwise runs list`."
        )
    shown = [
        f"{r.id} (experiment {r.experiment}, started {to_datetime(r.start_time):%Y-%m-%d %H:%M}"
        " UTC)"
        for r in named[:_CANDIDATES_SHOWN]
    ]
    more = len(named) - len(shown)
    raise InvalidInput(
        f"Run name '{text}' is ambiguous: {len(named)} runs have it: {'; '.join(shown)}"
        + (f"; and {more} more" if more else "")
        + ". Give the run id instead."
    )


def get_run(store: Store, run_id: str) -> Run:
    """A run with its params, latest metrics, tags and environment.

    ``run_id`` is a run id, a unique run name or a ``runs:/`` reference to either
    (see :func:`resolve_run_id`).
    """
    reap_lost_runs(store)
    run_id = resolve_run_id(store, run_id)
    with store.db.read() as conn:
        row = conn.execute(
            select(runs, experiments.c.name.label("experiment_name"))
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .where(runs.c.id == run_id)
        ).first()
        if row is None:  # deleted since it was resolved
            raise NotFound(
                f"Run '{run_id}' does not exist in {store.db.safe_url}. "
                "Find run ids with `loopwise runs list`."
            )
        params = dict(
            conn.execute(
                select(run_params.c.key, run_params.c.value).where(run_params.c.run_id == run_id)
            ).all()
        )
        tags = dict(
            conn.execute(
                select(run_tags.c.key, run_tags.c.value).where(run_tags.c.run_id == run_id)
            ).all()
        )
        metrics = {
            key: _metric_value(value)
            for key, value in conn.execute(
                select(metric_series.c.key, metric_series.c.last_value)
                .where(metric_series.c.run_id == run_id)
                .order_by(metric_series.c.key)
            )
        }
    return run_from_row(row, params=params, metrics=metrics, tags=tags)


def metric_history(store: Store, run: str, key: str) -> pd.DataFrame:
    """Every point of metric ``key`` of ``run`` (an id, a unique name or a ``runs:/``
    reference), ordered by step: columns ``step``, ``timestamp`` (UTC), ``value``."""
    from loopwise.tracking.metric_store import read_history  # NumPy and pandas: on demand

    run_id = resolve_run_id(store, run)
    with store.db.read() as conn:
        frame = read_history(conn, run_id, key)
        if frame is not None:
            return frame
    raise _no_metric(store, run_id, key)


def metric_arrays(store: Store, run: str, key: str) -> tuple[Any, Any, Any]:
    """Every point of metric ``key`` of ``run`` as NumPy arrays ordered by step: steps
    (int64), timestamps (int64 µs since the epoch, UTC) and values (float64). The server
    downsamples these without building a DataFrame."""
    from loopwise.tracking.metric_store import read_arrays

    run_id = resolve_run_id(store, run)
    with store.db.read() as conn:
        columns = read_arrays(conn, run_id, key)
    if columns is None:
        raise _no_metric(store, run_id, key)
    return columns


def _no_metric(store: Store, run_id: str, key: str) -> NotFound:
    with store.db.read() as conn:
        known = [
            str(k)
            for (k,) in conn.execute(
                select(metric_series.c.key)
                .where(metric_series.c.run_id == run_id)
                .order_by(metric_series.c.key)
            )
        ]
    return NotFound(
        f"Run {run_id} has no metric '{key}'. Its metrics: {', '.join(known) or 'none'}."
    )


def run_from_row(
    row: Any,
    *,
    params: dict[str, str],
    metrics: dict[str, float],
    tags: dict[str, str],
) -> Run:
    """Build a :class:`Run` from a ``runs`` row joined with the experiment name."""
    return Run(
        id=row.id,
        name=row.name,
        experiment_id=row.experiment_id,
        experiment=row.experiment_name,
        status=RunStatus(row.status),
        start_time=to_datetime(row.start_time),
        end_time=to_datetime(row.end_time),
        parent_run_id=row.parent_run_id,
        params=params,
        metrics=metrics,
        tags=tags,
        environment=json.loads(row.environment) if row.environment else None,
        host=row.host,
        pid=row.pid,
        user=row.username,
        heartbeat_at=to_datetime(row.heartbeat_at),
        deleted_at=to_datetime(row.deleted_at),
    )
