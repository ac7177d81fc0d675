"""The module-level tracking API: ``lw.start_run``, ``lw.log_metric`` and friends.

A process has a stack of active runs (a run started inside another is its child). Each
call logs to the innermost one. Metric points go to the background writer of the
default store; params, tags and artifacts are written at once, since they are few and
must fail loudly (a conflicting param is an error the caller needs to see).

With a ``tracking_url`` configured, the same functions go through that server instead
(:mod:`loopwise.client`): an active run then holds the remote client (``run.remote``),
and its writer sends metric points in batches over HTTP. ``log_metric`` is the same code
either way, so the local path pays nothing for the switch.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from loopwise import context
from loopwise.clock import to_us
from loopwise.errors import InvalidInput, NoActiveRun
from loopwise.refs import run_id_of
from loopwise.store import Store
from loopwise.tracking import run_artifacts, search
from loopwise.tracking import runs as run_service
from loopwise.tracking.environment import capture_environment
from loopwise.tracking.naming import naming_rule
from loopwise.tracking.records import Experiment, Run, RunStatus
from loopwise.tracking.writer import MetricWriter

if TYPE_CHECKING:  # the client imports httpx, which only a remote setup needs
    from loopwise.client.tracking import RemoteTracking

log = logging.getLogger("loopwise.tracking")

_MAX_STEP = 2**63 - 1
_state_lock = threading.RLock()
_writers: dict[int, MetricWriter] = {}
_stack: list[ActiveRun] = []
_env_pool: ThreadPoolExecutor | None = None


def writer_for(store: Store) -> MetricWriter:
    """The background writer of ``store`` in this process."""
    writer = _writers.get(id(store))
    if writer is None or writer.store is not store:
        with _state_lock:
            writer = _writers.get(id(store))
            if writer is None or writer.store is not store:
                writer = _writers[id(store)] = MetricWriter(store)
    return writer


def _env_executor() -> ThreadPoolExecutor:
    global _env_pool
    if _env_pool is None:
        with _state_lock:
            if _env_pool is None:
                _env_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopwise-env")
    return _env_pool


def _metric_value(key: str, value: Any, run_id: str) -> float:
    """Coerce a metric value to float, or say clearly why it is not a number."""
    if isinstance(value, int | float) or (
        hasattr(value, "dtype") and getattr(value, "ndim", None) == 0 and value.dtype.kind in "biuf"
    ):
        return float(value)
    raise InvalidInput(
        f"Metric '{key}' of run {run_id} must be a number, got {type(value).__name__} "
        f"{value!r:.60}. Log text with lw.set_tag or lw.log_text instead."
    )


def _step_value(key: str, step: Any, run_id: str) -> int:
    if isinstance(step, bool) or not (
        isinstance(step, int) or (hasattr(step, "dtype") and step.dtype.kind in "iu")
    ):
        raise InvalidInput(
            f"Step of metric '{key}' in run {run_id} must be an integer, got "
            f"{type(step).__name__} {step!r:.40}."
        )
    step = int(step)
    if not -_MAX_STEP <= step <= _MAX_STEP:
        raise InvalidInput(f"Step {step} of metric '{key}' in run {run_id} does not fit 64 bits.")
    return step


def _not_a_mapping(function: str, value: Any) -> InvalidInput:
    return InvalidInput(
        f"{function} takes a dict of key -> value, got {type(value).__name__}. "
        f'For example lw.{function}({{"lr": 0.1}}).'
    )


class ActiveRun:
    """A run this process is executing. Use it as a context manager:

    ``with lw.start_run(experiment="churn") as run: ...`` ends the run as FINISHED, as
    FAILED if the block raises, and as KILLED on KeyboardInterrupt.
    """

    def __init__(
        self,
        store: Store | None,
        run_id: str,
        *,
        resumed: bool = False,
        remote: RemoteTracking | None = None,
    ) -> None:
        self.store = store
        self.remote = remote
        self.id = run_id
        if remote is not None:
            self._writer: Any = remote.writer
            self._rule = naming_rule(remote.settings.key_rule)
        else:
            assert store is not None
            self._writer = writer_for(store)
            self._rule = naming_rule(store.settings.key_rule)
        self._checked: set[str] = set()
        self._next_step: dict[str, int] = {}
        self._env: Future[None] | None = None
        self._ended = False
        self._resumed = resumed

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id}>"

    @property
    def uri(self) -> str:
        return f"runs:/{self.id}"

    @property
    def info(self) -> Run:
        """The run as stored now (flushes buffered points first)."""
        if self.remote is not None:
            return self.remote.get_run(self.id)
        self._writer.flush()
        return run_service.get_run(self._store(), self.id)

    def _store(self) -> Store:
        assert self.store is not None, "a remote run has no local store"
        return self.store

    # -- logging --------------------------------------------------------------------------

    def _check_key(self, key: str) -> None:
        self._rule.check(key, kind="Metric key", owner=f"run {self.id}")
        self._checked.add(key)

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: Any = None
    ) -> None:
        if key not in self._checked:
            self._check_key(key)
        if type(value) is not float:
            value = _metric_value(key, value, self.id)
        if step is None:
            step = self._next_step.get(key, 0)
        elif type(step) is not int or not -_MAX_STEP <= step <= _MAX_STEP:
            step = _step_value(key, step, self.id)
        self._next_step[key] = step + 1
        ts = time.time_ns() // 1000 if timestamp is None else to_us(timestamp)
        self._writer.add(self.id, key, step, ts, value)

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: Any = None
    ) -> None:
        if not isinstance(metrics, Mapping):
            raise _not_a_mapping("log_metrics", metrics)
        keys = tuple(metrics)
        if not keys:
            return
        values = tuple(metrics.values())
        checked = self._checked
        for key in keys:
            if key not in checked:
                self._check_key(key)
        for value in values:
            if type(value) is not float:
                values = tuple(_metric_value(k, v, self.id) for k, v in metrics.items())
                break
        nxt = self._next_step
        if step is None:
            step = max(nxt.get(key, 0) for key in keys)
        elif type(step) is not int or not -_MAX_STEP <= step <= _MAX_STEP:
            step = _step_value(keys[0], step, self.id)
        following = step + 1
        for key in keys:
            nxt[key] = following
        ts = time.time_ns() // 1000 if timestamp is None else to_us(timestamp)
        self._writer.add_many(self.id, keys, values, step, ts)

    # -- lifecycle ------------------------------------------------------------------------

    def _capture_environment(self) -> None:
        try:
            if self.remote is not None:
                self.remote.set_environment(self.id, capture_environment())
            else:
                run_service.set_environment(self._store(), self.id, capture_environment())
        except Exception as e:  # never let a capture problem break a run
            log.warning("could not record the environment of run %s: %s", self.id, e)

    def _begin(self) -> None:
        self._writer.track_run(self.id)
        settings = self.remote.settings if self.remote is not None else self._store().settings
        if settings.capture_environment and not self._resumed:
            self._env = _env_executor().submit(self._capture_environment)

    def wait_for_environment(self, timeout: float = 30.0) -> None:
        if self._env is not None:
            self._env.result(timeout=timeout)

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Flush this run's points and set its final status (idempotent)."""
        status = RunStatus.final(status)
        if self._ended:
            return
        self._ended = True
        with _state_lock:
            if self in _stack:
                _stack.remove(self)
        self._writer.untrack_run(self.id)
        try:
            self.wait_for_environment()
        finally:
            if self.remote is not None:
                self.remote.end_run(self.id, status)
            else:
                self._writer.flush()
                run_service.end_run(self._store(), self.id, status)

    # -- params, tags and artifacts: at once, to the store or through the server -----------

    def log_params(self, params: Mapping[str, Any]) -> None:
        if self.remote is not None:
            self.remote.log_params(self.id, params)
        else:
            run_service.log_params(self._store(), self.id, params)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if self.remote is not None:
            self.remote.set_tags(self.id, tags)
        else:
            run_service.set_tags(self._store(), self.id, tags)

    def log_artifact(self, local_path: str | os.PathLike[str], artifact_path: str | None) -> None:
        if self.remote is not None:
            self.remote.log_artifact(self.id, local_path, artifact_path)
        else:
            run_artifacts.log_artifact(self._store(), self.id, local_path, artifact_path)

    def log_bytes(self, data: bytes, artifact_file: str) -> None:
        if self.remote is not None:
            self.remote.log_bytes(self.id, data, artifact_file)
        else:
            run_artifacts.log_bytes(self._store(), self.id, data, artifact_file)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        elif issubclass(exc_type, SystemExit):
            code = getattr(exc, "code", 0)
            status = RunStatus.FINISHED if code in (0, None) else RunStatus.FAILED
        else:
            status = RunStatus.FAILED
        self.end(status)


# -- module-level API ------------------------------------------------------------------------


def active_run() -> ActiveRun | None:
    """The innermost active run of this process, or None."""
    return _stack[-1] if _stack else None


def _current() -> ActiveRun:
    if not _stack:
        raise NoActiveRun(
            "No active run. Start one first: `with lw.start_run(experiment=...):` "
            "and log inside the block."
        )
    return _stack[-1]


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    run_id: str | None = None,
    parent_run_id: str | None = None,
) -> ActiveRun:
    """Start a run (a child of the active run, if any) and make it the active run.

    ``run_id`` resumes an existing run instead of creating one. ``experiment`` defaults to
    the parent's experiment, then to ``LOOPWISE_EXPERIMENT``, then to ``"default"``.
    """
    remote = context.remote_tracking()
    if remote is not None:
        return _start_remote_run(remote, experiment, name, tags, run_id, parent_run_id)
    store = context.get_store()
    parent = _stack[-1] if _stack else None
    if run_id is not None:
        run = run_service.get_run(store, run_id_of(run_id))
        run_service.heartbeat(store, [run.id])
        if tags:
            run_service.set_tags(store, run.id, tags)
        active = ActiveRun(store, run.id, resumed=True)
    else:
        if parent_run_id is None and parent is not None:
            parent_run_id = parent.id
        if experiment is None:
            if parent is not None:
                experiment = run_service.get_run(store, parent.id).experiment
            else:
                experiment = os.environ.get("LOOPWISE_EXPERIMENT") or run_service.DEFAULT_EXPERIMENT
        new_id = run_service.create_run(
            store, experiment, name=name, tags=tags, parent_run_id=parent_run_id
        )
        active = ActiveRun(store, new_id)
    with _state_lock:
        _stack.append(active)
    active._begin()
    return active


def _start_remote_run(
    remote: RemoteTracking,
    experiment: str | None,
    name: str | None,
    tags: Mapping[str, Any] | None,
    run_id: str | None,
    parent_run_id: str | None,
) -> ActiveRun:
    """``start_run`` through the server: the same defaults, one request."""
    parent = _stack[-1] if _stack else None
    if run_id is not None:
        run = remote.get_run(run_id_of(run_id))
        remote.heartbeat([run.id])
        if tags:
            remote.set_tags(run.id, tags)
        active = ActiveRun(None, run.id, resumed=True, remote=remote)
    else:
        if parent_run_id is None and parent is not None:
            parent_run_id = parent.id
        if experiment is None:
            if parent is not None:
                experiment = remote.get_run(parent.id).experiment
            else:
                experiment = os.environ.get("LOOPWISE_EXPERIMENT") or run_service.DEFAULT_EXPERIMENT
        run = remote.create_run(experiment, name=name, tags=tags, parent_run_id=parent_run_id)
        active = ActiveRun(None, run.id, remote=remote)
    with _state_lock:
        _stack.append(active)
    active._begin()
    return active


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the innermost active run (no-op when none is active)."""
    if _stack:
        _stack[-1].end(status)


def log_metric(key: str, value: float, step: int | None = None, *, timestamp: Any = None) -> None:
    """Log one metric point to the active run without waiting on the database.

    ``step`` defaults to one past the last step logged for ``key`` in this run (0 first).
    NaN and ±inf are stored and read back as they are.
    """
    (_stack[-1] if _stack else _current()).log_metric(key, value, step, timestamp)


def log_metrics(
    metrics: Mapping[str, float], step: int | None = None, *, timestamp: Any = None
) -> None:
    """Log several metrics at one step to the active run."""
    (_stack[-1] if _stack else _current()).log_metrics(metrics, step, timestamp)


def log_param(key: str, value: Any) -> None:
    """Log a parameter of the active run; params are immutable once logged."""
    _current().log_params({key: value})


def log_params(params: Mapping[str, Any]) -> None:
    """Log several parameters of the active run."""
    run = _current()
    if not isinstance(params, Mapping):
        raise _not_a_mapping("log_params", params)
    run.log_params(params)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run (tags can change)."""
    _current().set_tags({key: value})


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags on the active run."""
    run = _current()
    if not isinstance(tags, Mapping):
        raise _not_a_mapping("set_tags", tags)
    run.set_tags(tags)


def flush() -> None:
    """Write every buffered metric point of this process and wait for pending captures."""
    for run in list(_stack):
        run.wait_for_environment()
    for writer in list(_writers.values()):
        writer.flush()
    remote = context.remote_tracking()
    if remote is not None:
        remote.writer.flush()


def _flushed_store() -> Store:
    """The default store, after this process's buffered points (and any flush in flight)
    are written, so reads see what this process logged."""
    store = context.get_store()
    writer = _writers.get(id(store))
    if writer is not None:
        writer.flush()
    return store


def get_run(run_id: str) -> Run:
    """A run with status, start and end, params, latest metrics, tags and environment."""
    remote = context.remote_tracking()
    if remote is not None:
        return remote.get_run(run_id_of(run_id))
    store = _flushed_store()
    return run_service.get_run(store, run_id_of(run_id))


def get_metric_history(run_id: str, key: str) -> pd.DataFrame:
    """Every point of metric ``key`` in run ``run_id`` (an id, a unique run name or a
    ``runs:/`` reference): columns step, timestamp, value."""
    remote = context.remote_tracking()
    if remote is not None:
        return remote.metric_history(run_id_of(run_id), key)
    return run_service.metric_history(_flushed_store(), run_id, key)


# -- process lifecycle -----------------------------------------------------------------------


def _on_store_switch(old: Store) -> None:
    if any(run.store is old for run in _stack):
        from loopwise.errors import Conflict

        raise Conflict(
            f"Cannot reconfigure while run {_stack[-1].id} is active on {old.db.safe_url}. "
            "End the run first (leave its `with` block or call lw.end_run())."
        )
    writer = _writers.pop(id(old), None)
    if writer is not None:
        writer.close()


def _on_remote_switch(old: RemoteTracking) -> None:
    if any(run.remote is old for run in _stack):
        from loopwise.errors import Conflict

        raise Conflict(
            f"Cannot reconfigure while run {_stack[-1].id} is active on {old.url}. "
            "End the run first (leave its `with` block or call lw.end_run())."
        )


def _at_exit() -> None:
    """End runs left open and flush every buffer before the interpreter goes away."""
    failed = getattr(sys, "last_value", None) is not None
    for run in reversed(list(_stack)):
        try:
            run.end(RunStatus.FAILED if failed else RunStatus.FINISHED)
        except Exception as e:
            log.warning("could not end run %s at exit: %s", run.id, e)
    for writer in list(_writers.values()):
        try:
            writer.close()
        except Exception as e:
            log.warning("could not flush metric points at exit: %s", e)
    try:
        context.close_remote()
    except Exception as e:
        log.warning("could not send metric points to the server at exit: %s", e)
    if _env_pool is not None:
        _env_pool.shutdown(wait=False, cancel_futures=True)


def _after_fork_in_child() -> None:
    global _env_pool
    # The parent's buffers, threads and runs are not the child's to finish.
    _writers.clear()
    _stack.clear()
    _env_pool = None


context.on_store_switch(_on_store_switch)
context.on_remote_switch(_on_remote_switch)
atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- artifacts -------------------------------------------------------------------------------


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Attach a file or folder to the active run (stored once by content)."""
    _current().log_artifact(local_path, artifact_path)


def log_dict(data: Mapping[str, Any] | list[Any], artifact_file: str) -> None:
    """Attach a dictionary as JSON (or YAML for .yaml/.yml names) to the active run."""
    _current().log_bytes(run_artifacts.dict_bytes(data, artifact_file), artifact_file)


def log_text(text: str, artifact_file: str) -> None:
    """Attach text as a UTF-8 file to the active run."""
    run = _current()
    if not isinstance(text, str):
        raise InvalidInput(
            f"log_text needs a str for {artifact_file!r}, got {type(text).__name__}."
        )
    run.log_bytes(text.encode("utf-8"), artifact_file)


def list_artifacts(run_id: str, path: str = "") -> list[run_artifacts.ArtifactInfo]:
    """Files attached to a run (an id or a unique name; optionally under folder ``path``)."""
    remote = context.remote_tracking()
    if remote is not None:
        return remote.list_artifacts(run_id_of(run_id), path)
    store = context.get_store()
    return run_artifacts.list_artifacts(store, run_service.resolve_run_id(store, run_id), path)


def download_artifacts(run_id: str, path: str = "", dst: str | os.PathLike[str] = ".") -> Path:
    """Copy a run's artifact (file, folder or all) into ``dst``; return the local path.
    ``run_id`` may be a unique run name too."""
    remote = context.remote_tracking()
    if remote is not None:
        return remote.download_artifacts(run_id_of(run_id), path, dst)
    store = context.get_store()
    run_id = run_service.resolve_run_id(store, run_id)
    return run_artifacts.download_artifacts(store, run_id, path, dst)


# -- queries ---------------------------------------------------------------------------------


def search_runs(
    experiment: str | list[str] | None = None,
    filter: str | None = None,
    order_by: str | list[str] | None = None,
    max_results: int | None = 1000,
) -> pd.DataFrame:
    """Runs matching ``filter`` as a DataFrame, ordered by ``order_by``.

    ``filter`` reads like ``"metrics.auc > 0.8 and params.model = 'rf' and tags.team =
    'risk'"`` (``or``, ``not``, parentheses, ``in``, ``like``, ``is null`` work too);
    ``order_by`` items like ``"metrics.auc DESC"``. Columns: run_id, name, experiment,
    status, start_time, end_time, parent_run_id, then ``params.*``, ``metrics.*``, ``tags.*``.
    """
    remote = context.remote_tracking()
    if remote is not None:
        return remote.search_runs(experiment, filter, order_by, max_results)
    store = _flushed_store()
    return search.search_runs(store, experiment, filter, order_by, max_results)


def list_experiments() -> list[Experiment]:
    """Every experiment with its number of runs."""
    remote = context.remote_tracking()
    if remote is not None:
        return remote.list_experiments()
    return run_service.list_experiments(context.get_store())
