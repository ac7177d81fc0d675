"""The background writer: batching, retries, back-pressure and the flush thread."""

from __future__ import annotations

import time

import pytest

from loopwise.config import load_settings
from loopwise.errors import StoreUnavailable
from loopwise.store import Store
from loopwise.tracking import metric_store
from loopwise.tracking import runs as run_service
from loopwise.tracking.metric_store import read_history
from loopwise.tracking.writer import MetricWriter


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
