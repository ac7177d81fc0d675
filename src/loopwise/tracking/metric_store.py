"""Metric points in the database: packed chunks per series, and their latest values.

A flush turns the buffered points of each series (run, key) into one or a few chunk rows
of packed little-endian arrays (int64 steps, int64 timestamps in microseconds, float64
values), and moves the series' latest point forward. All of it happens in the caller's
transaction, so a crash leaves either the whole flush or none of it.

On PostgreSQL the server compresses the chunks' arrays itself (TOAST), with pglz unless
told otherwise, and pglz was most of a flush's time (docs/performance.md). Each write
transaction asks for lz4 instead (``SET LOCAL``: that transaction only), much faster at
about the same size, where the server has it (PostgreSQL 14 and later, built with lz4);
other servers keep pglz. Chunks read back alike whichever compressed them, so this needs
no migration, and chunks written before stay as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from loopwise.store.compression import prefer_lz4
from loopwise.store.raw_writes import execute_many
from loopwise.store.tables import metric_chunks, metric_series
from loopwise.store.upsert import insert_on_conflict

CHUNK_POINTS = 65_536
SeriesKey = tuple[str, str]  # run id, metric key
BatchKey = tuple[str, tuple[str, ...]]  # run id, metric keys of one log_metrics call
Point = tuple[int, int, float]  # step, timestamp (µs), value
BatchRow = tuple[int, int, tuple[float, ...]]  # step, timestamp (µs), one value per key
Columns = tuple[np.ndarray, np.ndarray, np.ndarray]  # steps, timestamps, values


def series_ids(
    conn: Connection, keys: Sequence[SeriesKey], known: Mapping[SeriesKey, int]
) -> dict[SeriesKey, int]:
    """Ids of the series ``keys`` (run_id, key), creating the missing ones.

    The existing ones are looked up first and only the rest inserted: a run's series are
    created by its first points, and every later batch (a client's log_batch, a flush of
    the background writer) finds them all, with one select and no insert."""
    ids = {k: known[k] for k in keys if k in known}
    missing = [k for k in keys if k not in ids]
    if missing:
        ids.update(_existing_ids(conn, missing))
    new = [k for k in missing if k not in ids]
    if not new:
        return ids
    insert_on_conflict(
        conn,
        metric_series,
        [{"run_id": run_id, "key": key, "count": 0} for run_id, key in new],
        keys=["run_id", "key"],
    )
    ids.update(_existing_ids(conn, new))
    return ids


def _existing_ids(conn: Connection, keys: Sequence[SeriesKey]) -> dict[SeriesKey, int]:
    """The ids of those series of ``keys`` that exist."""
    # one query for up to 400 runs at a time, not one per run (a pipeline's end writes a
    # metric or two for each of its step runs): the rows of these runs with these keys, a
    # superset of the pairs when the runs have different keys, filtered here
    wanted = set(keys)
    run_ids = sorted({run_id for run_id, _ in keys})
    keys_of_runs = sorted({key for _, key in keys})
    found: dict[SeriesKey, int] = {}
    for start in range(0, len(run_ids), 400):
        rows = conn.execute(
            select(metric_series.c.id, metric_series.c.run_id, metric_series.c.key)
            .where(metric_series.c.run_id.in_(run_ids[start : start + 400]))
            .where(metric_series.c.key.in_(keys_of_runs))
        )
        for sid, run_id, key in rows:
            if (run_id, key) in wanted:
                found[(run_id, key)] = sid
    return found


def _structured(rows: list[tuple[Any, ...]], width: int | None) -> np.ndarray:
    fields: list[tuple[Any, ...]] = [("step", "<i8"), ("ts", "<i8")]
    fields.append(("value", "<f8") if width is None else ("value", "<f8", (width,)))
    return np.array(rows, dtype=fields)


def series_arrays(
    singles: Mapping[SeriesKey, list[Point]],
    batches: Mapping[BatchKey, list[BatchRow]],
) -> dict[SeriesKey, Columns]:
    """Turn buffered points into (steps, timestamps, values) arrays per series.

    ``singles`` come from ``log_metric`` (one point per entry); ``batches`` from
    ``log_metrics`` (one row of several keys per entry), converted column-wise in C.
    """
    out: dict[SeriesKey, Columns] = {}

    def put(skey: SeriesKey, steps: np.ndarray, stamps: np.ndarray, values: np.ndarray) -> None:
        if skey in out:
            old = out[skey]
            out[skey] = (
                np.concatenate([old[0], steps]),
                np.concatenate([old[1], stamps]),
                np.concatenate([old[2], values]),
            )
        else:
            out[skey] = (steps, stamps, values)

    for skey, points in singles.items():
        table = _structured(points, None)
        put(skey, table["step"], table["ts"], table["value"])
    for (run_id, keys), rows in batches.items():
        table = _structured(rows, len(keys))
        matrix = table["value"]
        for j, key in enumerate(keys):
            put((run_id, key), table["step"], table["ts"], np.ascontiguousarray(matrix[:, j]))
    return out


#: A series' newest point so far is older than (``step``, ``ts``), or there is none yet.
_NEWER = "(last_step IS NULL OR last_step < :step OR (last_step = :step AND last_timestamp <= :ts))"
#: One update per series: its count grows by ``n``, and its latest point moves to (``step``,
#: ``ts``, ``value``) when that point is newer (every SET reads the row as it was, so
#: ``_NEWER`` is one test of the old row).
_LATEST_SQL = (
    f'UPDATE {metric_series.name} SET "count" = "count" + :n, '
    f"last_step = CASE WHEN {_NEWER} THEN :step ELSE last_step END, "
    f"last_timestamp = CASE WHEN {_NEWER} THEN :ts ELSE last_timestamp END, "
    f"last_value = CASE WHEN {_NEWER} THEN :value ELSE last_value END "
    "WHERE id = :sid"
)
_CHUNK_SQL = (
    f'INSERT INTO {metric_chunks.name} (series_id, "count", first_step, last_step, steps, '
    "timestamps, point_values) VALUES (:series_id, :count, :first_step, :last_step, :steps, "
    ":timestamps, :point_values)"
)


def write_points(
    conn: Connection,
    series: Mapping[SeriesKey, Columns],
    known_ids: Mapping[SeriesKey, int],
) -> dict[SeriesKey, int]:
    """Write points per series; return the series ids used (for the caller's cache)."""
    prefer_lz4(conn)
    ids = series_ids(conn, list(series), known_ids)
    chunk_rows = []
    latest_rows = []
    for skey, (steps, stamps, values) in series.items():
        sid = ids[skey]
        n = len(steps)
        for start in range(0, n, CHUNK_POINTS):
            s = steps[start : start + CHUNK_POINTS]
            chunk_rows.append(
                {
                    "series_id": sid,
                    "count": len(s),
                    "first_step": int(s.min()),
                    "last_step": int(s.max()),
                    "steps": s.astype("<i8", copy=False).tobytes(),
                    "timestamps": stamps[start : start + CHUNK_POINTS]
                    .astype("<i8", copy=False)
                    .tobytes(),
                    "point_values": values[start : start + CHUNK_POINTS]
                    .astype("<f8", copy=False)
                    .tobytes(),
                }
            )
        last = int(np.lexsort((stamps, steps))[-1])
        value = float(values[last])
        latest_rows.append(
            {
                "sid": sid,
                "step": int(steps[last]),
                "ts": int(stamps[last]),
                # NaN is stored as NULL so both databases sort and compare it alike.
                "value": None if math.isnan(value) else value,
                "n": n,
            }
        )
    # through the driver: SQLAlchemy's per-row parameter work cost more than the writes
    execute_many(conn, _CHUNK_SQL, chunk_rows)
    execute_many(conn, _LATEST_SQL, latest_rows)
    return ids


def read_history(conn: Connection, run_id: str, key: str) -> pd.DataFrame | None:
    """All points of one series ordered by step then time, or None if it does not exist."""
    columns = read_arrays(conn, run_id, key)
    if columns is None:
        return None
    steps, stamps, values = columns
    return pd.DataFrame(
        {
            "step": steps,
            "timestamp": pd.to_datetime(stamps, unit="us", utc=True),
            "value": values,
        }
    )


def read_arrays(conn: Connection, run_id: str, key: str) -> Columns | None:
    """All points of one series as (steps, timestamps µs, values) arrays ordered by step
    then time, or None if the series does not exist."""
    sid = conn.execute(
        select(metric_series.c.id)
        .where(metric_series.c.run_id == run_id)
        .where(metric_series.c.key == key)
    ).scalar()
    if sid is None:
        return None
    rows = conn.execute(
        select(metric_chunks.c.steps, metric_chunks.c.timestamps, metric_chunks.c.point_values)
        .where(metric_chunks.c.series_id == sid)
        .order_by(metric_chunks.c.id)
    ).all()
    if rows:
        steps = np.concatenate([np.frombuffer(r[0], dtype="<i8") for r in rows])
        stamps = np.concatenate([np.frombuffer(r[1], dtype="<i8") for r in rows])
        values = np.concatenate([np.frombuffer(r[2], dtype="<f8") for r in rows])
    else:
        steps = stamps = np.empty(0, dtype="<i8")
        values = np.empty(0, dtype="<f8")
    if len(steps) > 1 and _needs_sort(steps, stamps, several_chunks=len(rows) > 1):
        order = np.lexsort((stamps, steps))
        steps, stamps, values = steps[order], stamps[order], values[order]
    return (
        steps.astype(np.int64, copy=False),
        stamps.astype(np.int64, copy=False),
        values.astype(np.float64, copy=False),
    )


def _needs_sort(steps: np.ndarray, stamps: np.ndarray, *, several_chunks: bool) -> bool:
    """False when the points already are in (step, time) order, so the stable sort would
    change nothing (the usual case: a series logged step after step); within one chunk
    only the steps count, as the chunk keeps the order its points were logged in."""
    step_diff = np.diff(steps)
    if np.any(step_diff < 0):
        return True
    return several_chunks and bool(np.any((step_diff == 0) & (np.diff(stamps) < 0)))
