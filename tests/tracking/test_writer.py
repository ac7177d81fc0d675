"""The background writer: batching, retries, back-pressure and the flush thread."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import text

from loopwise.config import load_settings
from loopwise.errors import StoreUnavailable
from loopwise.store import Store
from loopwise.tracking import metric_store
from loopwise.tracking import runs as run_service
from loopwise.tracking.metric_store import read_history
from loopwise.tracking.writer import SEGMENT_POINTS, MetricWriter


def _history(store, run_id, key):
    with store.db.read() as conn:
        return read_history(conn, run_id, key)


def test_singles_and_batches_of_one_series_merge(store):
    run_id = run_service.create_run(store, "w")
    writer = MetricWriter(store)
    writer.add(run_id, "loss", 0, 10, 1.0)
    writer.add_many(run_id, ("loss", "acc"), (2.0, 0.5), 1, 20)
    writer.add(run_id, "loss", 2, 30, 3.0)
    writer.flush()
    history = _history(store, run_id, "loss")
    assert history["step"].tolist() == [0, 1, 2]
    assert history["value"].tolist() == [1.0, 2.0, 3.0]
    assert _history(store, run_id, "acc")["value"].tolist() == [0.5]
    assert writer.flushed_points == 4
    assert writer.pending_points == 0


def test_failed_flush_keeps_points_and_retries(store, monkeypatch):
    run_id = run_service.create_run(store, "w")
    writer = MetricWriter(store)
    real = metric_store.write_points
    calls = {"n": 0}

    def flaky(conn, series, known):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("database went away")
        return real(conn, series, known)

    monkeypatch.setattr("loopwise.tracking.writer.write_points", flaky)
    for step in range(100):
        writer.add(run_id, "m", step, step, float(step))
    with pytest.raises(StoreUnavailable, match="Could not write 100 metric points"):
        writer.flush()
    assert writer.pending_points == 100
    writer.add(run_id, "m", 100, 100, 100.0)  # logged while the store was down
    writer.flush()
    assert _history(store, run_id, "m")["value"].tolist() == [float(s) for s in range(101)]


def test_back_pressure_bounds_the_buffer(store_url, tmp_path):
    store = Store(
        settings=load_settings(
            store_url=store_url, artifacts_url=str(tmp_path), buffer_max_points=1000
        )
    )
    run_id = run_service.create_run(store, "w")
    writer = MetricWriter(store)
    highest = 0
    for step in range(5000):
        writer.add(run_id, "m", step, step, 1.0)
        highest = max(highest, writer.pending_points)
    assert highest < 1000
    writer.close()
    assert len(_history(store, run_id, "m")) == 5000
    store.db.engine.dispose()


def test_background_thread_flushes_within_the_interval(store_url, tmp_path):
    store = Store(
        settings=load_settings(store_url=store_url, artifacts_url=str(tmp_path), flush_interval=0.2)
    )
    run_id = run_service.create_run(store, "w")
    writer = MetricWriter(store)
    writer.start()
    writer.add(run_id, "m", 0, 0, 1.0)
    deadline = time.monotonic() + 5
    while writer.flushed_points < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _history(store, run_id, "m")["value"].tolist() == [1.0]
    writer.close()
    store.db.engine.dispose()


def test_history_of_many_chunks_is_sorted(store, monkeypatch):
    monkeypatch.setattr(metric_store, "CHUNK_POINTS", 100)
    run_id = run_service.create_run(store, "w")
    writer = MetricWriter(store)
    for step in reversed(range(1000)):
        writer.add(run_id, "m", step, 1000 - step, float(step))
    writer.flush()
    history = _history(store, run_id, "m")
    assert history["step"].tolist() == list(range(1000))
    with store.db.read() as conn:
        from sqlalchemy import func, select

        from loopwise.store.tables import metric_chunks

        assert conn.execute(select(func.count()).select_from(metric_chunks)).scalar() == 10


def _recording(monkeypatch, fail_on: int | None = None) -> list[dict]:
    """Record the steps of each series in every transaction the writer starts; raise a
    connection error in transaction number ``fail_on`` (counting from 1)."""
    real = metric_store.write_points
    writes: list[dict] = []

    def record(conn, series, known):
        writes.append({skey: columns[0].copy() for skey, columns in series.items()})
        if len(writes) == fail_on:
            raise ConnectionError("database went away")
        return real(conn, series, known)

    monkeypatch.setattr("loopwise.tracking.writer.write_points", record)
    return writes


def _writer_without_thread(store, monkeypatch) -> MetricWriter:
    """A writer whose flushes all happen in ``flush()``, so transactions can be counted."""
    writer = MetricWriter(store)
    monkeypatch.setattr(writer, "start", lambda: None)
    return writer


def test_a_large_buffer_is_written_in_bounded_transactions_in_order(store, monkeypatch):
    writes = _recording(monkeypatch)
    run_id = run_service.create_run(store, "w")
    writer = _writer_without_thread(store, monkeypatch)
    n = 2 * SEGMENT_POINTS + 10
    for step in range(n):
        writer.add(run_id, "m", step, step, float(step))
    writer.flush()
    # Three transactions of at most SEGMENT_POINTS, oldest points first: a kill between
    # two commits keeps an unbroken prefix of the series.
    assert [len(w[(run_id, "m")]) for w in writes] == [SEGMENT_POINTS, SEGMENT_POINTS, 10]
    assert np.concatenate([w[(run_id, "m")] for w in writes]).tolist() == list(range(n))
    assert writer.transactions == 3
    assert _history(store, run_id, "m")["step"].tolist() == list(range(n))


def test_a_failed_transaction_keeps_what_was_committed_and_retries_the_rest(store, monkeypatch):
    writes = _recording(monkeypatch, fail_on=2)
    run_id = run_service.create_run(store, "w")
    writer = _writer_without_thread(store, monkeypatch)
    rows = SEGMENT_POINTS + 10  # of two keys: two full segments, then 20 points
    for step in range(rows):
        writer.add_many(run_id, ("a", "b"), (float(step), -float(step)), step, step)
    with pytest.raises(StoreUnavailable, match=f"Could not write {SEGMENT_POINTS + 20} "):
        writer.flush()
    # The first segment is in, as an unbroken prefix; the rest waits, in order.
    committed = SEGMENT_POINTS // 2
    assert _history(store, run_id, "a")["step"].tolist() == list(range(committed))
    assert _history(store, run_id, "b")["step"].tolist() == list(range(committed))
    assert writer.pending_points == SEGMENT_POINTS + 20
    writer.add(run_id, "a", rows, rows, float(rows))  # logged while the store was down
    writer.flush()
    assert _history(store, run_id, "a")["value"].tolist() == [float(s) for s in range(rows + 1)]
    assert _history(store, run_id, "b")["step"].tolist() == list(range(rows))
    # committed, failed, then the failed one again, the 20 points and the new point
    assert [sum(map(len, w.values())) for w in writes] == [SEGMENT_POINTS] * 3 + [20, 1]


def test_postgresql_chunks_are_compressed_with_lz4_when_the_server_has_it(pg_url, tmp_path):
    store = Store(settings=load_settings(store_url=pg_url, artifacts_url=str(tmp_path)))
    run_id = run_service.create_run(store, "w")
    with store.db.read() as conn:
        lz4 = conn.execute(
            text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                "WHERE name = 'default_toast_compression'"
            )
        ).scalar()
        before = conn.exec_driver_sql("SHOW default_toast_compression").scalar()
    steps = np.arange(20_000)
    series = {(run_id, "m"): (steps, steps, np.zeros(20_000))}
    with store.db.engine.connect() as conn:
        with conn.begin():
            metric_store.write_points(conn, series, {})
        # SET LOCAL: the pooled connection goes back with the server's own default.
        assert conn.exec_driver_sql("SHOW default_toast_compression").scalar() == before
    if lz4 is not None:  # PostgreSQL 14+ reports each value's compression
        with store.db.read() as conn:
            methods = conn.execute(
                text(
                    "SELECT pg_column_compression(steps), pg_column_compression(timestamps), "
                    "pg_column_compression(point_values) FROM metric_chunks"
                )
            ).all()
        assert methods == [("lz4",) * 3] if lz4 else [("pglz",) * 3]
    assert _history(store, run_id, "m")["step"].tolist() == list(range(20_000))
    store.db.engine.dispose()


def test_while_the_database_fails_the_thread_retries_once_an_interval(tmp_path, monkeypatch):
    store = Store(
        settings=load_settings(
            store_url=f"sqlite:///{tmp_path}/lw.db", artifacts_url=str(tmp_path / "a")
        )
    )
    run_id = run_service.create_run(store, "w")
    attempts = []

    def database_down(conn, series, known):
        attempts.append(time.monotonic())
        raise ConnectionError("database went away")

    monkeypatch.setattr("loopwise.tracking.writer.write_points", database_down)
    writer = MetricWriter(store)
    writer.start()
    writer.add(run_id, "m", 0, 0, 1.0)
    time.sleep(1.2)
    # Sealed after a quarter of flush_interval (1 s), then retried a second later: not
    # every quarter of a second, which would log four warnings a second.
    assert 1 <= len(attempts) <= 2
    assert writer.pending_points == 1
    monkeypatch.undo()
    writer.close()
    assert _history(store, run_id, "m")["value"].tolist() == [1.0]
    store.db.engine.dispose()
