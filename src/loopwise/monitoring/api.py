"""The module-level monitoring API: ``lw.run_monitor``, ``lw.monitor_results``,
``lw.monitor_figures``, ``lw.monitor_report``, ``lw.list_alerts``,
``lw.wait_for_actions`` (and ``watch_monitor``), bound to the default store
(see :mod:`loopwise.context`).

The service functions taking a Store are in :mod:`loopwise.monitoring.engine.runner`,
:mod:`loopwise.monitoring.storage`, :mod:`loopwise.monitoring.report` and
:mod:`loopwise.monitoring.alerting.alerts`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopwise import context
from loopwise.clock import parse_moment
from loopwise.monitoring import storage
from loopwise.monitoring.config import as_monitor
from loopwise.monitoring.engine import runner as engine
from loopwise.monitoring.results import WindowResult
from loopwise.param_errors import renamed

if TYPE_CHECKING:
    import pandas as pd

    from loopwise.monitoring.ab import ABReport
    from loopwise.monitoring.alerting.alerts import Alert
    from loopwise.monitoring.report import MonitorReport

__all__ = [
    "compare_variants",
    "list_alerts",
    "monitor_figures",
    "monitor_report",
    "monitor_results",
    "run_monitor",
    "wait_for_actions",
    "watch_monitor",
]


def run_monitor(
    monitor: Any,
    start: datetime | str,
    end: datetime | str | None = None,
    *,
    progress: engine.Progress | None = None,
) -> list[WindowResult]:
    """Evaluate and store every closed window of ``monitor`` intersecting [start, end).

    ``monitor`` is a :class:`loopwise.Monitor`, a config mapping, a YAML path or an
    endpoint name (monitored with the defaults). ``start`` and ``end`` are timezone-aware
    datetimes, ISO 8601 times with a zone, or relative (``"-3d"``); ``end`` defaults to now.
    Returns one :class:`loopwise.WindowResult` per window and model version, oldest first;
    re-running a range replaces the stored windows. See ``docs/monitoring.md``.
    """
    now = datetime.now(UTC)
    return engine.run_monitor(
        context.local_store(),
        as_monitor(monitor),
        parse_moment(start, now, "start"),
        None if end is None else parse_moment(end, now, "end"),
        progress=progress,
    )


def compare_variants(
    endpoint: str,
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    control: str | None = None,
    metric: str | None = None,
    task: str | None = None,
    alpha: float = 0.05,
    min_labels: int = 30,
) -> ABReport:
    """Compare the live metrics of an endpoint's variants with a significance test: for
    each challenger, "better", "worse" or "undecided" against the control (an
    :class:`~loopwise.monitoring.ab.ABReport`; options as in
    :func:`loopwise.monitoring.ab.compare_variants`; ``start``/``end`` also as ISO 8601
    text or relative, like :func:`run_monitor`'s)."""
    from loopwise.monitoring import ab

    now = datetime.now(UTC)
    return ab.compare_variants(
        context.local_store(),
        endpoint,
        start=start if not isinstance(start, str) else parse_moment(start, now, "start"),
        end=end if not isinstance(end, str) else parse_moment(end, now, "end"),
        control=control,
        metric=metric,
        task=task,
        alpha=alpha,
        min_labels=min_labels,
    )


def list_alerts(
    *,
    endpoint: str | None = None,
    monitor: str | None = None,
    state: str | None = None,
    rule: str | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    limit: int | None = None,
    since: datetime | str | None = None,
) -> list[Alert]:
    """Alerts as :class:`loopwise.Alert` objects, oldest first (the newest ``limit``), like
    every ``lw.list_*``; ``[a.to_dict() for a in ...]`` gives plain data for a DataFrame.

    ``start`` / ``end`` (timezone-aware datetimes, ISO 8601 with a zone, or relative such as
    ``"-3d"``) keep the alerts active in [start, end): not resolved before ``start``, fired
    by windows that began before ``end``. ``since`` is the former name of ``start``
    (deprecated: it warns).
    """
    from loopwise.monitoring.alerting import alerts as alerting

    start = renamed("list_alerts", "start", start, "since", since)
    now = datetime.now(UTC)
    return alerting.list_alerts(
        context.local_store(),
        endpoint=endpoint,
        monitor=monitor,
        state=state,
        rule=rule,
        start=None if start is None else parse_moment(start, now, "start"),
        end=None if end is None else parse_moment(end, now, "end"),
        limit=limit,
    )


def wait_for_actions(timeout: float | None = None) -> bool:
    """Wait for the alert actions (a retraining command, ...) started in this process, at
    most ``timeout`` seconds; True when all have finished. The process waits for them before
    it exits anyway: call this to read their results (``alert.action``) first."""
    from loopwise.monitoring.alerting import alerts as alerting

    return alerting.wait_for_actions(timeout)


def monitor_report(
    monitor: Any,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
) -> MonitorReport:
    """The report of ``monitor`` (a Monitor, its name or its YAML file) over its stored
    windows starting in [start, end) (default: all), with the alerts active then: a
    :class:`loopwise.MonitorReport` with ``summary()``, ``to_dict()`` and ``to_html(path)``.

    It reads what :func:`run_monitor` stored and evaluates nothing; a monitor with no stored
    window in the range is a :class:`loopwise.NotFound` that says to run it first.
    """
    from loopwise.monitoring import report

    now = datetime.now(UTC)
    return report.monitor_report(
        context.local_store(),
        _name(monitor),
        start=None if start is None else parse_moment(start, now, "start"),
        end=None if end is None else parse_moment(end, now, "end"),
    )


def watch_monitor(
    monitor: Any,
    *,
    interval: float = 60.0,
    refresh: int = 1,
    start: datetime | str | None = None,
    since: datetime | str | None = None,
    **kwargs: Any,
) -> None:
    """Evaluate windows of ``monitor`` as they close, until interrupted; see
    :func:`loopwise.monitoring.engine.runner.watch_monitor` for the options. ``start``
    (where to begin when nothing is stored yet) takes what :func:`run_monitor` takes;
    ``since`` is its former name (deprecated: it warns)."""
    start = renamed("watch_monitor", "start", start, "since", since)
    engine.watch_monitor(
        context.local_store(),
        as_monitor(monitor),
        interval=interval,
        refresh=refresh,
        start=None if start is None else parse_moment(start, datetime.now(UTC), "start"),
        **kwargs,
    )


def monitor_results(
    monitor: Any,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    model: str | None = None,
) -> list[WindowResult]:
    """The stored results of ``monitor`` (a Monitor or its name) whose window starts in
    [start, end), oldest first; ``model`` ("name/version") keeps one model version."""
    now = datetime.now(UTC)
    return storage.window_results(
        context.local_store(),
        _name(monitor),
        None if start is None else parse_moment(start, now, "start"),
        None if end is None else parse_moment(end, now, "end"),
        model=model,
    )


def monitor_figures(
    monitor: Any,
    metric: str | Iterable[str] | None = None,
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    slice: str | None = None,
) -> pd.DataFrame:
    """The stored figures of ``monitor`` as a long pandas time series: one row per window,
    model version, slice and metric (``metric``: a name, a list, or a glob such as
    ``"drift.*"``; ``slice``: one slice, ``""`` the whole window)."""
    now = datetime.now(UTC)
    return storage.figures(
        context.local_store(),
        _name(monitor),
        metric,
        start=None if start is None else parse_moment(start, now, "start"),
        end=None if end is None else parse_moment(end, now, "end"),
        slice=slice,
    )


def _name(monitor: Any) -> str:
    if isinstance(monitor, str) and not monitor.lower().endswith((".yaml", ".yml", ".json")):
        return monitor
    return as_monitor(monitor).name
