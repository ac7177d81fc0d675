"""Monitor results as time series: ``monitor_windows`` (one row per window and model version)
and ``monitor_values`` (its figures, one row per slice and metric).

Writing is idempotent: :func:`save_window` replaces every stored result of the same monitor
and window start (all model versions) in one transaction, so re-running a range gives the
same rows, and a window re-evaluated after a late swap or late feedback leaves nothing stale.

A window's ``problems`` (what kept some of its figures from being computed) are stored
with it, as a JSON list in ``monitor_windows.problems``.

Baselines (the reference-level figures alerts compare against, one per monitor and model
version, overall and per slice) are stored in the same tables under the monitor name
``<name>.baseline`` (no monitor name contains a dot) with ``window_start = window_end =
0``, so no reader of a monitor's windows ever meets one.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, select

from loopwise.clock import now_us, to_datetime, to_us
from loopwise.errors import InvalidInput
from loopwise.ids import new_id
from loopwise.monitoring.config import BASELINE_SUFFIX
from loopwise.monitoring.results import OVERALL, WindowResult
from loopwise.store import Store
from loopwise.store.tables import monitor_values, monitor_windows

if TYPE_CHECKING:
    import pandas as pd

BASELINE_US = 0  # window_start and window_end of a stored baseline
_FIGURE_COLUMNS = (
    "window_start", "window_end", "model", "model_version_id", "rows", "labelled", "slice",
    "metric", "value",
)  # fmt: skip


def monitor_name(monitor: Any) -> str:
    """The stored name of a Monitor (or a name given as text)."""
    name = getattr(monitor, "name", monitor)
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"a monitor is a loopwise.Monitor or its name; got {monitor!r}.")
    return name


def save_window(store: Store, results: Sequence[WindowResult]) -> None:
    """Store the results of one window (one per model version), replacing what was stored
    for the same monitor and window start, in one transaction."""
    if not results:
        return
    keys = {(r.monitor, r.start) for r in results}
    if len(keys) != 1:
        raise ValueError(f"save_window takes the results of one window; got {sorted(keys)}")
    monitor, start = keys.pop()
    _replace(store, monitor, to_us(start), results)


def save_baseline(store: Store, result: WindowResult) -> None:
    """Store the baseline figures of one model version of ``result.monitor`` (its start
    and end are ignored)."""
    name = result.monitor + BASELINE_SUFFIX
    _replace(store, name, BASELINE_US, [replace(result, monitor=name)], model=result.model)


def _replace(
    store: Store,
    monitor: str,
    start_us: int,
    results: Sequence[WindowResult],
    *,
    model: str | None = None,
) -> None:
    computed = now_us()
    windows, values = [], []
    for r in results:
        window_id = new_id()
        baseline = start_us == BASELINE_US
        windows.append(
            {
                "id": window_id,
                "monitor": r.monitor,
                "endpoint": r.endpoint,
                "window_start": start_us,
                "window_end": BASELINE_US if baseline else to_us(r.end),
                "model": r.model,
                "model_version_id": r.model_version_id,
                "rows": r.rows,
                "labelled": r.labelled,
                "computed_at": computed,
                "problems": json.dumps(list(r.problems)) if r.problems else None,
            }
        )
        values.extend(
            {"window_id": window_id, "slice": s, "metric": m, "value": _float(v)}
            for (s, m), v in r.values.items()
        )
    where = and_(monitor_windows.c.monitor == monitor, monitor_windows.c.window_start == start_us)
    if model is not None:
        where = and_(where, monitor_windows.c.model == model)
    with store.db.write() as conn:
        old = select(monitor_windows.c.id).where(where).scalar_subquery()
        conn.execute(delete(monitor_values).where(monitor_values.c.window_id.in_(old)))
        conn.execute(delete(monitor_windows).where(where))
        conn.execute(monitor_windows.insert(), windows)
        if values:
            conn.execute(monitor_values.insert(), values)


def _float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def window_results(
    store: Store,
    monitor: Any,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    model: str | None = None,
) -> list[WindowResult]:
    """Stored results of ``monitor`` (a Monitor or its name) whose window starts in
    [start, end), oldest first, then by model; ``model`` ("name/version") keeps one."""
    name = monitor_name(monitor)
    where = _window_filter(name, start, end, model)
    with store.db.read() as conn:
        windows = conn.execute(
            select(monitor_windows)
            .where(where)
            .order_by(monitor_windows.c.window_start, monitor_windows.c.model)
        ).all()
        rows = conn.execute(
            select(
                monitor_values.c.window_id,
                monitor_values.c.slice,
                monitor_values.c.metric,
                monitor_values.c.value,
            )
            .join(monitor_windows, monitor_windows.c.id == monitor_values.c.window_id)
            .where(where)
        ).all()
    return _results(windows, rows)


def baseline(store: Store, monitor: Any, model: str) -> WindowResult | None:
    """The stored baseline of one model version ("name/version"), or None.

    Its figures use the window metric names: ``perf.<metric>`` (training-time performance),
    ``prediction.mean`` / ``.std`` / ``.positive_rate`` on the reference data, overall and
    per slice; ``rows`` and ``labelled`` are the reference's. ``start`` and ``end`` are the
    epoch.
    """
    name = monitor_name(monitor)
    where = and_(
        monitor_windows.c.monitor == name + BASELINE_SUFFIX,
        monitor_windows.c.model == model,
    )
    with store.db.read() as conn:
        windows = conn.execute(select(monitor_windows).where(where)).all()
        rows = conn.execute(
            select(
                monitor_values.c.window_id,
                monitor_values.c.slice,
                monitor_values.c.metric,
                monitor_values.c.value,
            )
            .join(monitor_windows, monitor_windows.c.id == monitor_values.c.window_id)
            .where(where)
        ).all()
    found = _results(windows, rows)
    return replace(found[0], monitor=name) if found else None


def baselines(store: Store, monitor: Any, *, slices: bool = False) -> dict[str, dict[Any, float]]:
    """Every stored baseline of a monitor: ``{"name/version": {metric: value}}`` over the
    whole reference (slice ``""``), None values left out -- what alert rules compare with.

    With ``slices``, each slice's baseline is there too, keyed ``(slice, metric)``: per-slice
    alert rules compare a slice with its own baseline.
    """
    name = monitor_name(monitor) + BASELINE_SUFFIX
    v = monitor_values.c
    query = (
        select(monitor_windows.c.model, v.slice, v.metric, v.value)
        .join(monitor_windows, monitor_windows.c.id == v.window_id)
        .where(monitor_windows.c.monitor == name, v.value.is_not(None))
    )
    if not slices:
        query = query.where(v.slice == OVERALL)
    with store.db.read() as conn:
        rows = conn.execute(query).all()
    out: dict[str, dict[Any, float]] = {}
    for model, slice_, metric, value in rows:
        key = metric if slice_ == OVERALL else (slice_, metric)
        out.setdefault(model, {})[key] = float(value)
    return out


def last_windows(store: Store, monitor: Any, n: int = 1) -> list[tuple[int, int]]:
    """(start, end) in microseconds of the ``n`` latest stored windows, latest first."""
    name = monitor_name(monitor)
    with store.db.read() as conn:
        found = conn.execute(
            select(monitor_windows.c.window_start, monitor_windows.c.window_end)
            .where(monitor_windows.c.monitor == name)
            .group_by(monitor_windows.c.window_start, monitor_windows.c.window_end)
            .order_by(monitor_windows.c.window_start.desc())
            .limit(n)
        ).all()
    return [(int(a), int(b)) for a, b in found]


def stored_monitors(store: Store) -> list[dict[str, Any]]:
    """Every monitor with stored windows, by name: its endpoint, number of windows, the
    first window's start and the last one's end (UTC datetimes). Baselines are left out."""
    w = monitor_windows.c
    query = (
        select(
            w.monitor,
            w.endpoint,
            func.count(func.distinct(w.window_start)),
            func.min(w.window_start),
            func.max(w.window_end),
        )
        .where(w.window_start != BASELINE_US)
        .group_by(w.monitor, w.endpoint)
        .order_by(w.monitor, w.endpoint)
    )
    with store.db.read() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "name": name,
            "endpoint": endpoint,
            "windows": int(count),
            "first_window_start": to_datetime(int(first)),
            "last_window_end": to_datetime(int(last)),
        }
        for name, endpoint, count, first, last in rows
        if BASELINE_SUFFIX not in name
    ]


def stored_counts(
    store: Store, monitor: str, start_us: int, end_us: int
) -> dict[tuple[int, str], tuple[int, int]]:
    """(rows, labelled) of the stored results per (window start, model) in [start, end)."""
    with store.db.read() as conn:
        found = conn.execute(
            select(
                monitor_windows.c.window_start,
                monitor_windows.c.model,
                monitor_windows.c.rows,
                monitor_windows.c.labelled,
            ).where(
                monitor_windows.c.monitor == monitor,
                monitor_windows.c.window_start >= start_us,
                monitor_windows.c.window_start < end_us,
            )
        ).all()
    return {(int(s), m): (int(r), int(lab)) for s, m, r, lab in found}


def figures(
    store: Store,
    monitor: Any,
    metric: str | Iterable[str] | None = None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    slice: str | None = None,
) -> pd.DataFrame:
    """The stored figures as a long time series (pandas), one row per window, model
    version, slice and metric, sorted by time.

    ``metric`` keeps one metric, a list of them, or a glob such as ``"drift.*"``; ``slice``
    keeps one slice (``""`` is the whole window). Columns: window_start, window_end (UTC
    datetimes), model, model_version_id, rows, labelled, slice, metric, value (NaN when it
    could not be computed).
    """
    import pandas as pd

    name = monitor_name(monitor)
    where = _window_filter(name, start, end, None)
    query = (
        select(
            monitor_windows.c.window_start,
            monitor_windows.c.window_end,
            monitor_windows.c.model,
            monitor_windows.c.model_version_id,
            monitor_windows.c.rows,
            monitor_windows.c.labelled,
            monitor_values.c.slice,
            monitor_values.c.metric,
            monitor_values.c.value,
        )
        .join(monitor_windows, monitor_windows.c.id == monitor_values.c.window_id)
        .where(where)
    )
    if slice is not None:
        query = query.where(monitor_values.c.slice == slice)
    patterns = [metric] if isinstance(metric, str) else None if metric is None else list(metric)
    exact = [p for p in patterns or () if not any(ch in p for ch in "*?[")]
    globs = [p for p in patterns or () if p not in exact]
    if patterns is not None and not globs:
        query = query.where(monitor_values.c.metric.in_(exact))
    query = query.order_by(
        monitor_windows.c.window_start,
        monitor_windows.c.model,
        monitor_values.c.slice,
        monitor_values.c.metric,
    )
    with store.db.read() as conn:
        rows = conn.execute(query).all()
    if globs:
        rows = [
            r
            for r in rows
            if r.metric in exact or any(fnmatch.fnmatchcase(r.metric, g) for g in globs)
        ]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(_FIGURE_COLUMNS))
    for column in ("window_start", "window_end"):
        frame[column] = pd.to_datetime(frame[column].astype("int64"), unit="us", utc=True)
    frame = frame.astype({"rows": "int64", "labelled": "int64", "value": "float64"})
    return frame


def _window_filter(
    name: str, start: datetime | None, end: datetime | None, model: str | None
) -> Any:
    where: Any = monitor_windows.c.monitor == name
    if start is not None:
        where = and_(where, monitor_windows.c.window_start >= to_us(start, what="start"))
    if end is not None:
        where = and_(where, monitor_windows.c.window_start < to_us(end, what="end"))
    if model is not None:
        where = and_(where, monitor_windows.c.model == model)
    return where


def _results(windows: Sequence[Any], rows: Sequence[Any]) -> list[WindowResult]:
    values: dict[str, dict[tuple[str, str], float | None]] = {w.id: {} for w in windows}
    for window_id, slice_, metric, value in rows:
        values[window_id][(slice_, metric)] = value
    out = []
    for w in windows:
        start, end = to_datetime(w.window_start), to_datetime(w.window_end)
        assert start is not None
        assert end is not None
        out.append(
            WindowResult(
                monitor=w.monitor,
                endpoint=w.endpoint,
                start=start,
                end=end,
                model=w.model,
                model_version_id=w.model_version_id,
                rows=w.rows,
                labelled=w.labelled,
                values=dict(sorted(values[w.id].items(), key=_overall_first)),
                problems=tuple(json.loads(w.problems)) if w.problems else (),
            )
        )
    return out


def _overall_first(item: tuple[tuple[str, str], Any]) -> tuple[bool, str, str]:
    (slice_, metric), _ = item
    return (slice_ != OVERALL, slice_, metric)
