"""Params, tags and metric points of one run written together, in one transaction.

The REST API's batch logging lands here: a remote client flushes what it buffered as one
request, and the request is all-or-nothing. A param that conflicts with its logged value,
an unknown run or a bad key leaves the store as it was, so the client can retry the same
batch. Metric points skip the background writer (the request already is the batch) and
go straight to :func:`loopwise.tracking.metric_store.write_points`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loopwise.errors import InvalidInput
from loopwise.store import Store
from loopwise.tracking.runs import (
    check_keys,
    param_texts,
    require_run,
    tag_rows,
    write_params,
    write_tags,
)

#: One metric point: key, value, step, timestamp (µs since the epoch, UTC).
MetricPoint = tuple[str, float, int, int]


def log_batch(
    store: Store,
    run_id: str,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    metrics: Sequence[MetricPoint] = (),
) -> int:
    """Write ``params``, ``tags`` and metric points of run ``run_id`` in one transaction;
    return the number of points written. NaN and ±inf values are stored as they are."""
    wanted = param_texts(store, run_id, params or {})
    rows = tag_rows(store, run_id, tags or {})
    series = series_of(store, run_id, metrics)
    with store.db.write() as conn:
        require_run(conn, store, run_id)
        write_params(conn, run_id, wanted)
        write_tags(conn, rows)
        if series:
            from loopwise.tracking.metric_store import write_points  # NumPy: on demand

            write_points(conn, series, {})
    return len(metrics)


def series_of(store: Store, run_id: str, metrics: Sequence[MetricPoint]) -> dict[Any, Any]:
    """The points grouped per series as the (steps, timestamps, values) arrays of
    :mod:`loopwise.tracking.metric_store` (checked: numbers, keys by the naming rule), for
    :func:`~loopwise.tracking.metric_store.write_points` in the caller's transaction."""
    if not metrics:
        return {}
    import numpy as np

    by_key: dict[str, list[tuple[int, int, float]]] = {}
    for key, value, step, ts in metrics:
        if not isinstance(value, float | int) or isinstance(value, bool):
            raise InvalidInput(
                f"Metric '{key}' of run {run_id} must be a number, got {value!r} instead."
            )
        by_key.setdefault(key, []).append((step, ts, float(value)))
    check_keys(store, by_key, kind="Metric key", run_id=run_id)
    out = {}
    for key, points in by_key.items():
        table = np.array(points, dtype=[("step", "<i8"), ("ts", "<i8"), ("value", "<f8")])
        out[(run_id, key)] = (table["step"], table["ts"], table["value"])
    return out
