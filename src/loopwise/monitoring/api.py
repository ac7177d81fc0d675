"""The module-level monitoring API: ``lw.run_monitor``, ``lw.monitor_results``,
``lw.monitor_figures`` (and ``watch_monitor``), bound to the default store
(see :mod:`loopwise.context`).

The service functions taking a Store are in :mod:`loopwise.monitoring.engine` and
:mod:`loopwise.monitoring.storage`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopwise import context
from loopwise.monitoring import engine, storage
from loopwise.monitoring.config import as_monitor, parse_moment
from loopwise.monitoring.results import WindowResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "compare_variants",
    "list_alerts",
    "monitor_figures",
    "monitor_results",
    "run_monitor",
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
        context.get_store(),
        as_monitor(monitor),
        parse_moment(start, now, "start"),
        None if end is None else parse_moment(end, now, "end"),
        progress=progress,
    )


def compare_variants(endpoint: str, **options: Any) -> Any:
    """Compare the live metrics of an endpoint's variants with a significance test: for
    each challenger, "better", "worse" or "undecided" against the control (an
    :class:`~loopwise.monitoring.ab.ABReport`; options as in
    :func:`loopwise.monitoring.ab.compare_variants`)."""
    from loopwise.monitoring import ab

    for key in ("start", "end"):
        if isinstance(options.get(key), str):
            options[key] = parse_moment(options[key], datetime.now(UTC), key)
    return ab.compare_variants(context.get_store(), endpoint, **options)


def list_alerts(
    *,
    endpoint: str | None = None,
    monitor: str | None = None,
    state: str | None = None,
    rule: str | None = None,
    since: datetime | str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Alerts as a DataFrame, oldest first: state (firing, resolved), rule, slice, metric,
    value, threshold, message, window, model, fired and resolved times, deliveries and the
    action's result. ``since`` keeps alerts active at or after that moment."""
    from loopwise.monitoring import alerting

    moment = None if since is None else parse_moment(since, datetime.now(UTC), "since")
    found = alerting.list_alerts(
        context.get_store(),
        endpoint=endpoint,
        monitor=monitor,
        state=state,
        rule=rule,
        since=moment,
        limit=limit,
    )
    return alerting.alerts_frame(found)


def watch_monitor(monitor: Any, *, interval: float = 60.0, refresh: int = 1, **kwargs: Any) -> None:
    """Evaluate windows of ``monitor`` as they close, until interrupted; see
    :func:`loopwise.monitoring.engine.watch_monitor` for the options."""
    engine.watch_monitor(
        context.get_store(), as_monitor(monitor), interval=interval, refresh=refresh, **kwargs
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
        context.get_store(),
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
        context.get_store(),
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
