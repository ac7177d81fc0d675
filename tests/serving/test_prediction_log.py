"""The prediction log: buffered writes, partitions, read-back with feedback, and its errors.

Every test that touches a store runs on SQLite and PostgreSQL (the ``store`` fixture) with
a real artifact folder; one runs on S3 (moto). Nothing is mocked but the failures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopwise.config import load_settings
from loopwise.errors import InvalidInput, LoopwiseError, NotFound, StoreUnavailable
from loopwise.ids import id_time_ms, new_id
from loopwise.predictions.log import (
    LoggedRows,
    PredictionLog,
    log_feedback,
    log_predictions,
    prediction_endpoints,
    read_predictions,
    read_predictions_frame,
)
from loopwise.store import Store
from tests.helpers import LOG_T0, log_one, rid_at, us
from tests.s3_server import s3_endpoint  # noqa: F401

T0 = LOG_T0
SECOND = timedelta(seconds=1)


class FailingWrites:
    """Make ``store.artifacts.write_bytes`` fail (like an unreachable store) while on."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch, after: int = 0) -> None:
        self.real = store.artifacts.write_bytes
        self.on = True
        self.after = after  # writes that succeed before the failures start
        monkeypatch.setattr(store.artifacts, "write_bytes", self)

    def __call__(self, path: str, data: bytes):
        if self.on and (path.endswith(".parquet") or self.after == 0):
            if self.after > 0:
                self.after -= 1
            else:
                raise StoreUnavailable("artifact store is unreachable (test)")
        return self.real(path, data)


# -- writing --------------------------------------------------------------------------------


def test_request_rows_columns_and_types(store):
    with PredictionLog(store, "credit-risk") as plog:
        rid = log_one(
            plog,
            inputs=[{"income": 1, "city": "paris"}, {"income": 2.5, "city": "rome", "vip": True}],
            outputs=[0, 1],
            probabilities=[[0.9, 0.1], [0.2, 0.8]],
        )
        columns = {"income": [3, 4], "city": ["a", "b"]}
        cols = log_one(plog, T0 + SECOND, inputs=columns, outputs=[1, 0])
        one = log_one(plog, T0 + 2 * SECOND, inputs={"income": 5, "city": "x"}, outputs=[1])
        err = rid_at(T0 + timedelta(seconds=3))
        plog.log_error(
            request_id=err,
            timestamp_us=us(T0 + timedelta(seconds=3)),
            variant=None,
            model=None,
            error_type="invalid_input",
            latency_ms=0.4,
        )
    assert plog.rows_written == 6
    assert plog.pending_rows == 0
    df = read_predictions(store, "credit-risk")
    assert list(df.columns) == [
        "request_id", "row", "timestamp", "endpoint", "variant", "model", "model_version_id",
        "shadow", "latency_ms", "prediction", "probabilities", "error",
        "input.income", "input.city", "input.vip", "label", "feedback_timestamp",
    ]  # fmt: skip
    assert df["request_id"].tolist() == [rid, rid, cols, cols, one, err]
    assert df["row"].tolist() == [0, 1, 0, 1, 0, 0]
    assert str(df["timestamp"].dtype) == "datetime64[us, UTC]"
    assert df["timestamp"].iloc[0] == pd.Timestamp(T0)
    assert set(df["endpoint"]) == {"credit-risk"}
    assert df["model"].iloc[0] == "credit-risk/1"
    assert df["model_version_id"].iloc[0] == "mv1"
    assert df["input.income"].iloc[:5].tolist() == [1.0, 2.5, 3.0, 4.0, 5.0]
    assert pd.isna(df["input.income"].iloc[5])
    assert df["input.city"].tolist()[:5] == ["paris", "rome", "a", "b", "x"]
    assert list(df["probabilities"].iloc[1]) == [0.2, 0.8]
    assert df["probabilities"].iloc[2] is None
    assert df["error"].iloc[5] == "invalid_input"
    assert pd.isna(df["prediction"].iloc[5])
    assert df["error"].iloc[:5].isna().all()
    assert not df["shadow"].any()


def test_mixed_types_in_one_flush_are_kept_as_text(store):
    with PredictionLog(store, "mixed") as plog:
        log_one(plog, T0, inputs=[{"x": 1, "y": [1, 2]}], outputs=["yes"])
        log_one(plog, T0 + SECOND, inputs=[{"x": "a", "y": {"k": 1}}], outputs=[3])
        log_one(plog, T0 + 2 * SECOND, inputs=[{"x": 2**70, "y": None}], outputs=[None])
    df = read_predictions(store, "mixed")
    assert df["input.x"].tolist() == ["1", "a", str(2**70)]
    assert df["input.y"].tolist()[:2] == ["[1, 2]", '{"k": 1}']
    assert pd.isna(df["input.y"].iloc[2])
    assert df["prediction"].tolist()[:2] == ["yes", "3"]
    assert pd.isna(df["prediction"].iloc[2])
    assert plog.rows_written == 3
    assert plog.rows_dropped == 0


def test_nothing_lost_on_close_with_concurrent_writers(store):
    plog = PredictionLog(store, "busy", flush_interval=0.01).start()
    per_thread, threads = 300, 6
    expected: set[tuple[str, int]] = set()
    lock = threading.Lock()

    def writer(k: int) -> None:
        for i in range(per_thread):
            rows = 1 + (i + k) % 3
            rid = log_one(
                plog,
                T0 + timedelta(milliseconds=i),
                inputs=[{"f": i, "k": k}] * rows,
                outputs=[i] * rows,
            )
            with lock:
                expected.update((rid, r) for r in range(rows))

    def flusher() -> None:  # flush() from another thread, racing the background one
        for _ in range(20):
            plog.flush()

    workers = [threading.Thread(target=writer, args=(k,)) for k in range(threads)]
    workers.append(threading.Thread(target=flusher))
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    plog.close()
    df = read_predictions_frame(store, "busy", feedback=False)
    got = list(zip(df["request_id"], df["row"], strict=True))
    assert len(got) == len(expected) == plog.rows_written
    assert set(got) == expected
    assert plog.pending_rows == 0
    assert plog.rows_dropped == 0
    assert plog.flush_failures == 0


def test_exit_without_close_flushes(tmp_path):
    code = textwrap.dedent(
        f"""
        from loopwise.store import Store
        from loopwise.predictions.log import PredictionLog
        store = Store("sqlite:///{tmp_path}/db.sqlite", "{tmp_path}/artifacts")
        plog = PredictionLog(store, "exit-test", flush_interval=3600)
        for i in range(50):
            plog.log_request(request_id=f"r{{i}}", timestamp_us=1_714_557_600_000_000 + i,
                             variant="a", model="m/1", model_version_id=None,
                             inputs=[{{"x": i}}], outputs=[i], probabilities=None,
                             latency_ms=1.0)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    store = Store(f"sqlite:///{tmp_path}/db.sqlite", f"{tmp_path}/artifacts")
    assert len(read_predictions(store, "exit-test")) == 50


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_does_not_write_its_parents_rows(store):
    plog = PredictionLog(store, "forked")
    parent = [log_one(plog, T0 + i * SECOND) for i in range(3)]
    pid = os.fork()
    if pid == 0:  # the worker: starts empty, logs its own row
        code = 1
        try:
            if plog.pending_rows == 0:
                log_one(plog, T0 + 10 * SECOND, rid="child-row")
                plog.close()
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    plog.close()
    df = read_predictions(store, "forked")
    assert df["request_id"].tolist() == [*parent, "child-row"]


def test_failed_flush_keeps_rows_then_writes_them_once(store, monkeypatch):
    plog = PredictionLog(store, "flaky")  # not started: flushes are explicit here
    failing = FailingWrites(store, monkeypatch)
    rids = [log_one(plog, T0 + timedelta(seconds=i)) for i in range(10)]
    plog.log_feedback(rids[0], 1, timestamp_us=us(T0 + timedelta(minutes=1)))
    with pytest.raises(StoreUnavailable, match=r"11 prediction-log rows of endpoint 'flaky'"):
        plog.flush()
    assert plog.flush_failures == 1
    assert plog.pending_rows == 11
    assert plog.rows_written == 0
    assert isinstance(plog.last_error, StoreUnavailable)
    with pytest.raises(StoreUnavailable):
        plog.flush()
    assert plog.flush_failures == 2
    assert plog.pending_rows == 11
    failing.on = False
    plog.flush()
    assert plog.pending_rows == 0
    assert plog.rows_written == 11
    assert plog.last_error is None
    df = read_predictions(store, "flaky")
    assert df["request_id"].tolist() == rids
    assert df["label"].tolist()[0] == 1


def test_rows_that_do_not_convert_are_dropped_and_counted_not_retried(store, monkeypatch, caplog):
    import loopwise.predictions.log as module

    plog = PredictionLog(store, "odd")
    real = module.prediction_table

    def refuse(endpoint, entries):
        raise TypeError("cannot convert (test)")

    monkeypatch.setattr(module, "prediction_table", refuse)
    log_one(plog, T0)
    log_one(plog, T0 + timedelta(hours=1))
    plog.flush()  # both hours refused: dropped, logged, not an error of the flush
    assert plog.rows_dropped == 2
    assert plog.pending_rows == 0
    assert "dropping 1 predictions rows of 'odd' that do not convert" in caplog.text
    monkeypatch.setattr(module, "prediction_table", real)
    kept = log_one(plog, T0 + SECOND)
    plog.flush()
    assert read_predictions(store, "odd")["request_id"].tolist() == [kept]
    assert plog.rows_written == 1


def test_encoding_runs_where_encode_on_says(store):
    """A serving endpoint encodes its log between model calls: ``encode_on`` gets the
    work (the bytes of every part), the flushing thread writes them."""
    plog = PredictionLog(store, "hooked")
    calls: list[threading.Thread] = []

    def encode_on(fn):
        calls.append(threading.current_thread())
        return fn()

    plog.encode_on = encode_on
    rids = [log_one(plog, T0 + timedelta(minutes=40 * i)) for i in range(3)]  # two hours
    plog.flush()
    plog.flush()  # nothing buffered: nothing to encode
    assert calls == [threading.current_thread()] * 4  # (table, bytes) of each hour
    assert plog.rows_written == 3
    assert read_predictions(store, "hooked")["request_id"].tolist() == rids


def test_partly_failed_flush_retries_only_the_unwritten_hours(store, monkeypatch):
    plog = PredictionLog(store, "partial")  # not started: flushes are explicit here
    early = [log_one(plog, T0 + timedelta(minutes=m)) for m in (1, 2)]
    late = [log_one(plog, T0 + timedelta(hours=1, minutes=m)) for m in (1, 2, 3)]
    failing = FailingWrites(store, monkeypatch, after=1)  # the first hour's file is written
    with pytest.raises(StoreUnavailable, match="3 prediction-log rows"):
        plog.flush()
    assert plog.rows_written == 2
    assert plog.pending_rows == 3
    failing.on = False
    plog.flush()
    df = read_predictions(store, "partial")
    assert df["request_id"].tolist() == early + late  # each once


def test_full_buffer_drops_the_oldest_rows(store, monkeypatch):
    plog = PredictionLog(store, "bounded", max_buffer_rows=100)  # not started
    failing = FailingWrites(store, monkeypatch)
    rids = [log_one(plog, T0 + timedelta(milliseconds=i)) for i in range(150)]
    assert plog.pending_rows == 100
    assert plog.rows_dropped == 50
    with pytest.raises(StoreUnavailable):
        plog.flush()
    more = [log_one(plog, T0 + timedelta(seconds=1, milliseconds=i)) for i in range(10)]
    assert plog.pending_rows == 100
    assert plog.rows_dropped == 60
    failing.on = False
    plog.flush()
    df = read_predictions(store, "bounded")
    assert df["request_id"].tolist() == (rids + more)[-100:]
    assert plog.rows_written == 100
    assert plog.rows_dropped == 60


def test_background_thread_retries_after_a_failure(store, monkeypatch):
    failing = FailingWrites(store, monkeypatch)
    plog = PredictionLog(store, "retry", flush_interval=0.05).start()
    rid = log_one(plog)
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while plog.flush_failures < 2 and datetime.now(UTC) < deadline:
        threading.Event().wait(0.02)
    assert plog.flush_failures >= 2
    assert plog.pending_rows == 1
    failing.on = False
    while plog.pending_rows and datetime.now(UTC) < deadline:
        threading.Event().wait(0.02)
    plog.close()
    assert read_predictions(store, "retry")["request_id"].tolist() == [rid]


# -- layout -----------------------------------------------------------------------------------


def test_rows_are_partitioned_by_their_hour_across_a_boundary(store):
    before = datetime(2024, 5, 1, 23, 59, 59, 900_000, tzinfo=UTC)
    after = datetime(2024, 5, 2, 0, 0, 0, 100_000, tzinfo=UTC)
    with PredictionLog(store, "edge") as plog:
        a = log_one(plog, before)
        b = log_one(plog, after)
        plog.log_feedback(a, 0, timestamp_us=us(after))
    files = store.artifacts.list("predictions/edge")
    assert [f.rsplit("/", 1)[0] for f in files] == [
        "predictions/edge/date=2024-05-01/hour=23",
        "predictions/edge/date=2024-05-02/hour=00",
    ]
    assert all(f.rsplit("/", 1)[1].startswith("part-") for f in files)
    assert [f.rsplit("/", 1)[0] for f in store.artifacts.list("feedback/edge")] == [
        "feedback/edge/date=2024-05-02/hour=00"
    ]
    assert prediction_endpoints(store) == ["edge"]
    day2 = datetime(2024, 5, 2, tzinfo=UTC)
    assert read_predictions(store, "edge", start=day2)["request_id"].tolist() == [b]
    assert read_predictions(store, "edge", end=day2)["request_id"].tolist() == [a]


def test_two_writers_never_collide(store):
    logs = [PredictionLog(store, "shared") for _ in range(2)]
    for plog in logs:
        log_one(plog)
        plog.close()
    assert len(store.artifacts.list("predictions/shared")) == 2
    assert len(read_predictions(store, "shared")) == 2


def test_read_range_reads_only_overlapping_partitions(store, monkeypatch):
    with PredictionLog(store, "ranged") as plog:
        rids = {h: log_one(plog, T0 + timedelta(hours=h, minutes=30)) for h in range(6)}
    read: list[str] = []
    real = store.artifacts.read_bytes

    def spy(path: str) -> bytes:
        read.append(path)
        return real(path)

    monkeypatch.setattr(store.artifacts, "read_bytes", spy)
    start, end = T0 + timedelta(hours=1, minutes=45), T0 + timedelta(hours=3, minutes=31)
    df = read_predictions(store, "ranged", start, end)
    assert df["request_id"].tolist() == [rids[2], rids[3]]
    hours = sorted({p.split("/")[3] for p in read if p.startswith("predictions/")})
    assert hours == ["hour=11", "hour=12", "hour=13"]
    # a range given in another time zone means the same instants
    paris = timezone(timedelta(hours=2))
    df = read_predictions(store, "ranged", start.astimezone(paris), end.astimezone(paris))
    assert df["request_id"].tolist() == [rids[2], rids[3]]
    assert read_predictions(store, "ranged", end, end).empty  # [t, t) is empty
    assert len(read_predictions(store, "ranged", start=T0 + timedelta(hours=4))) == 2
    # a long range is listed by day
    week = timedelta(days=5)
    assert len(read_predictions(store, "ranged", T0 - week, T0 + week)) == 6


def test_schema_evolution_across_files(store):
    for i, inputs in enumerate(([{"a": 1, "b": "x"}], [{"a": 2.5, "c": True}], [{"a": 3}])):
        with PredictionLog(store, "evolving") as plog:  # one file each
            log_one(plog, T0 + i * SECOND, inputs=inputs)
    df = read_predictions(store, "evolving")
    assert df["input.a"].tolist() == [1.0, 2.5, 3.0]
    assert df["input.b"].tolist()[0] == "x"
    assert df["input.b"].isna().tolist()[1:] == [True] * 2
    assert df["input.c"].tolist() == [None, True, None]
    with PredictionLog(store, "evolving") as plog:
        log_one(plog, T0 + 3 * SECOND, inputs=[{"a": "text"}], outputs=["label"])
    df = read_predictions(store, "evolving")
    assert df["input.a"].tolist() == ["1", "2.5", "3", "text"]
    assert df["prediction"].tolist() == ["1", "1", "1", "label"]


def test_shadow_rows_and_column_selection(store):
    with PredictionLog(store, "shadowed") as plog:
        rid = log_one(plog, inputs=[{"a": 1, "b": 2}])
        log_one(plog, rid=rid, variant="challenger", model="credit-risk/2", shadow=True)
        plog.log_error(
            request_id=rid, timestamp_us=us(T0), variant="candidate", model="credit-risk/3",
            error_type="ValueError", latency_ms=0.1, shadow=True,
        )  # fmt: skip
    df = read_predictions(store, "shadowed")
    assert df["variant"].tolist() == ["a", "challenger", "candidate"]
    assert df["shadow"].tolist() == [False, True, True]
    assert df["error"].tolist()[2] == "ValueError"
    frame = read_predictions_frame(store, "shadowed", columns=["input.a", "nope"], feedback=False)
    assert frame.columns == ["request_id", "row", "timestamp", "input.a", "nope"]
    assert frame["nope"].null_count() == 3


def test_files_from_a_newer_loopwise_are_refused(store):
    with PredictionLog(store, "future") as plog:
        log_one(plog)
    (path,) = store.artifacts.list("predictions/future")
    table = pq.read_table(pa.BufferReader(store.artifacts.read_bytes(path)))
    table = table.replace_schema_metadata({"loopwise": '{"format_version": 99}'})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    store.artifacts.write_bytes(path, sink.getvalue().to_pybytes())
    with pytest.raises(InvalidInput, match=r"format_version 99; .* Upgrade loopwise"):
        read_predictions(store, "future")


# -- feedback ---------------------------------------------------------------------------------


def test_feedback_join_latest_label_wins(store):
    with PredictionLog(store, "fb") as plog:
        a = log_one(plog, inputs=[{"x": 1}] * 3, outputs=[0, 0, 0])
        b = log_one(plog, inputs=[{"x": 2}] * 2, outputs=[1, 1])
        c = log_one(plog)
        plog.log_feedback(a, 1, timestamp_us=us(T0 + timedelta(minutes=1)))
        plog.log_feedback(a, 0, row=1, timestamp_us=us(T0 + timedelta(minutes=2)))
        plog.log_feedback(b, 0, row=0, timestamp_us=us(T0 + timedelta(minutes=3)))
        plog.log_feedback(b, 1, timestamp_us=us(T0 + timedelta(minutes=1)))
    # later, from a labelling system: request a gets a new label for every row
    later = T0 + timedelta(hours=5)
    labels = pd.DataFrame({"request_id": [a], "label": [2], "timestamp": [later]})
    assert log_feedback(store, "fb", labels).rows == 1
    df = read_predictions(store, "fb", T0, T0 + timedelta(hours=1))
    labels = {(r, k): v for r, k, v in zip(df["request_id"], df["row"], df["label"], strict=True)}
    assert labels[(a, 0)] == labels[(a, 1)] == labels[(a, 2)] == 2
    assert labels[(b, 0)] == 0
    assert labels[(b, 1)] == 1
    assert pd.isna(labels[(c, 0)])
    got = df.set_index(["request_id", "row"])["feedback_timestamp"]
    assert got[(a, 1)] == pd.Timestamp(later)
    assert got[(b, 0)] == pd.Timestamp(T0 + timedelta(minutes=3))
    assert pd.isna(got[(c, 0)])


def test_feedback_only_endpoint_and_frames_of_labels(store):
    frame = pl.DataFrame(
        {"request_id": ["r1", "r1", "r2"], "label": ["cat", "dog", "cat"], "row": [0, 1, None]}
    )
    result = log_feedback(store, "labels-only", frame)
    assert result.rows == 3
    assert len(result.files) == 1
    assert result.request_id is None
    assert read_predictions(store, "labels-only").empty


# -- knows_request ------------------------------------------------------------------------


def test_knows_request_in_memory_and_on_disk(store):
    plog = PredictionLog(store, "known", recent_requests=2)
    ids = [log_one(plog, T0 + timedelta(minutes=m)) for m in range(4)]
    assert plog.knows_request(ids[3])  # in memory, not written yet
    plog.close()
    assert plog.knows_request(ids[0])  # fell out of the recent set: found on disk
    fresh = PredictionLog(store, "known")
    assert all(fresh.knows_request(i) for i in ids)
    assert fresh.knows_request(ids[1])  # again, from the file's id range
    assert not fresh.knows_request(rid_at(T0 + timedelta(minutes=5)))
    assert not fresh.knows_request(rid_at(T0 + timedelta(days=3)))
    assert not fresh.knows_request("not-a-loopwise-id")
    assert not PredictionLog(store, "other-endpoint").knows_request(ids[0])


def test_knows_request_looks_in_the_neighbouring_hour(store, monkeypatch):
    made = datetime(2024, 5, 1, 11, 0, 0, 200_000, tzinfo=UTC)  # id made just after 11:00
    stamped = made - timedelta(milliseconds=300)  # the row is stamped just before
    with PredictionLog(store, "near") as plog:
        rid = log_one(plog, stamped, rid=rid_at(made))
    assert id_time_ms(rid) == us(made) // 1000
    listed: list[str] = []
    real = store.artifacts.list

    def spy(prefix: str = "") -> list[str]:
        listed.append(prefix)
        return real(prefix)

    monkeypatch.setattr(store.artifacts, "list", spy)
    assert PredictionLog(store, "near").knows_request(rid)
    assert listed == [
        "predictions/near/date=2024-05-01/hour=11",
        "predictions/near/date=2024-05-01/hour=10",
    ]


# -- batch logging ------------------------------------------------------------------------


class FakeVersion:
    name, version, id = "credit-risk", 3, "mv-3"


@pytest.mark.parametrize("kind", ["pandas", "polars"])
def test_log_predictions_from_a_frame(store, kind):
    data = {
        "request_id": ["a", "a", "b"],
        "timestamp": [T0, T0, T0 + timedelta(hours=1)],
        "income": [1.0, 2.0, 3.0],
        "city": ["x", "y", None],
        "prediction": [0, 1, 1],
        "probabilities": [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]],
    }
    frame = pd.DataFrame(data) if kind == "pandas" else pl.DataFrame(data)
    result = log_predictions(store, "batch-ep", frame, model=FakeVersion())
    assert result.rows == 3
    assert len(result.files) == 2
    assert result.request_id is None
    df = read_predictions(store, "batch-ep")
    assert df["request_id"].tolist() == ["a", "a", "b"]
    assert df["row"].tolist() == [0, 1, 0]
    assert set(df["variant"]) == {"batch"}
    assert set(df["model"]) == {"credit-risk/3"}
    assert set(df["model_version_id"]) == {"mv-3"}
    assert df["input.income"].tolist() == [1.0, 2.0, 3.0]
    assert df["input.city"].tolist()[:2] == ["x", "y"]
    assert list(df["probabilities"].iloc[2]) == [0.3, 0.7]
    assert df["latency_ms"].isna().all()
    assert not df["shadow"].any()
    # the same frame read back can be logged again (input.* columns keep their names)
    again = read_predictions_frame(store, "batch-ep", feedback=False).drop(
        "endpoint", "variant", "model", "model_version_id", "shadow", "error"
    )
    log_predictions(store, "batch-ep-2", again, variant="replay")
    assert read_predictions(store, "batch-ep-2").filter(like="input.").columns.tolist() == [
        "input.income",
        "input.city",
    ]


def test_log_predictions_without_ids_shares_one_batch_id(store):
    frame = pd.DataFrame({"x": [1, 2, 3], "prediction": [0.1, 0.2, 0.3]})
    result = log_predictions(store, "scored", frame, model="m/1", timestamp=T0)
    assert isinstance(result, LoggedRows)
    assert result.rows == 3
    labels = pd.DataFrame({"request_id": [result.request_id], "row": [2], "label": [0.25]})
    log_feedback(store, "scored", labels)
    df = read_predictions(store, "scored")
    assert df["request_id"].tolist() == [result.request_id] * 3
    assert df["row"].tolist() == [0, 1, 2]
    assert df["timestamp"].tolist() == [pd.Timestamp(T0)] * 3
    assert df["label"].iloc[2] == 0.25
    assert df["label"].iloc[:2].isna().all()
    assert log_predictions(store, "scored", frame.iloc[:0]).rows == 0


def test_module_level_api(lw):
    frame = pd.DataFrame({"x": [1.0], "prediction": [1]})
    logged = lw.log_predictions("module-api", frame, timestamp=T0)
    lw.log_feedback("module-api", pd.DataFrame({"request_id": [logged.request_id], "label": [1]}))
    df = lw.read_predictions("module-api", T0, T0 + timedelta(hours=1))
    assert df["label"].tolist() == [1]


def test_s3_store(s3_endpoint, tmp_path):  # noqa: F811
    settings = load_settings(
        store_url=f"sqlite:///{tmp_path}/db.sqlite",
        artifacts_url=f"s3://{s3_endpoint['bucket']}/pl-{uuid.uuid4().hex}",
    )
    store = Store(settings=settings, storage_options=s3_endpoint["storage_options"])
    with PredictionLog(store, "on-s3") as plog:
        rid = log_one(plog, inputs=[{"x": 1}, {"x": 2}], outputs=[0, 1])
        plog.log_feedback(rid, 1, row=1)
    assert PredictionLog(store, "on-s3").knows_request(rid)
    df = read_predictions(store, "on-s3", T0, T0 + timedelta(hours=1))
    assert df["row"].tolist() == [0, 1]
    assert df["label"].tolist()[1] == 1
    assert prediction_endpoints(store) == ["on-s3"]


# -- bad input --------------------------------------------------------------------------------


def test_bad_construction(store):
    for kwargs, name in [
        ({"endpoint": "Credit Risk"}, "endpoint"),
        ({"endpoint": "../x"}, "endpoint"),
        ({"endpoint": "_endpoints"}, "endpoint"),
        ({"endpoint": "x" * 64}, "endpoint"),
        ({"flush_interval": 0}, "flush_interval"),
        ({"flush_interval": True}, "flush_interval"),
        ({"max_buffer_rows": 0}, "max_buffer_rows"),
        ({"recent_requests": -1}, "recent_requests"),
    ]:
        args = {"endpoint": "ok"} | kwargs
        with pytest.raises(InvalidInput, match=f"The '{name}' parameter of PredictionLog"):
            PredictionLog(store, **args)
    with pytest.raises(InvalidInput, match="'store' parameter"):
        PredictionLog("sqlite:///x.db", "ok")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"request_id": 5}, "'request_id' parameter of PredictionLog.log_request"),
        ({"timestamp_us": 1.5}, "'timestamp_us' parameter .* must be an int"),
        ({"timestamp_us": 1_714_557_600_000}, "not seconds, milliseconds or nanoseconds"),
        ({"timestamp_us": 1_714_557_600_000_000_000}, "microseconds since the epoch"),
        ({"inputs": "x=1"}, "'inputs' parameter .* records or a dict of columns"),
        ({"outputs": 5}, "'outputs' parameter .* a list of predictions"),
    ],
)
def test_bad_log_request(store, change, message):
    plog = PredictionLog(store, "bad")
    with pytest.raises(InvalidInput, match=message):
        log_one(plog, **change)
    assert plog.pending_rows == 0


def test_bad_log_error_feedback_and_lookup(store):
    plog = PredictionLog(store, "bad")
    with pytest.raises(InvalidInput, match=r"'error_type' parameter of PredictionLog.log_error"):
        plog.log_error(
            request_id="r", timestamp_us=us(T0), variant=None, model=None, error_type=None,
            latency_ms=1.0,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match=r"'label' parameter .* \(not None\)"):
        plog.log_feedback("r", None)
    with pytest.raises(InvalidInput, match=r"'row' parameter .* None \(every row\)"):
        plog.log_feedback("r", 1, row=-1)
    with pytest.raises(InvalidInput, match="'timestamp_us'"):
        plog.log_feedback("r", 1, timestamp_us=5)
    with pytest.raises(InvalidInput, match="'request_id' parameter of knows_request"):
        plog.knows_request(5)  # type: ignore[arg-type]
    assert plog.pending_rows == 0


def test_bad_read_predictions(store):
    with PredictionLog(store, "exists") as plog:
        log_one(plog)
    with pytest.raises(NotFound, match=r"endpoint 'nope' .*endpoints with a log: 'exists'"):
        read_predictions(store, "nope")
    with pytest.raises(InvalidInput, match="'endpoint' parameter of read_predictions"):
        read_predictions(store, "Not/Valid")
    with pytest.raises(InvalidInput, match=r"'start' parameter .* timezone-aware"):
        read_predictions(store, "exists", datetime(2024, 5, 1))
    with pytest.raises(InvalidInput, match=r"'end' parameter .* timezone-aware datetime or None"):
        read_predictions(store, "exists", T0, "2024-05-02")
    with pytest.raises(InvalidInput, match=r"'end' parameter .* at or after start"):
        read_predictions(store, "exists", T0, T0 - timedelta(hours=1))
    with pytest.raises(InvalidInput, match="'columns' parameter"):
        read_predictions_frame(store, "exists", columns="input.x")
    assert isinstance(NotFound("x"), LoopwiseError)


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (pd.DataFrame({"x": [1]}), {}, "has no 'prediction' column .* named 'prediction'"),
        (pd.DataFrame({"prediction": [1], "variant": ["a"]}), {}, r"column\(s\) \['variant'\]"),
        (pd.DataFrame({"prediction": [1]}), {"variant": ""}, "'variant' parameter"),
        (pd.DataFrame({"prediction": [1]}), {"model": 3}, "'model' parameter"),
        (pd.DataFrame({"prediction": [1]}), {"timestamp": datetime(2024, 1, 1)}, "timezone-aware"),
        (pd.DataFrame({"prediction": [1], "timestamp": [datetime(2024, 1, 1)]}), {}, "tz_localize"),
        (pd.DataFrame({"prediction": [1], "timestamp": [T0]}), {"timestamp": T0}, "give one"),
        (pd.DataFrame({"prediction": [1], "request_id": [None]}), {}, "missing request_id"),
        (pd.DataFrame({"prediction": [1], "row": [-1]}), {}, r"row must hold ints"),
        (pd.DataFrame({"prediction": [1], "probabilities": ["x"]}), {}, "lists of floats"),
        ({"prediction": [1]}, {}, "must be a pandas or Polars DataFrame"),
    ],
)
def test_bad_log_predictions(store, frame, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        log_predictions(store, "bad", frame, **kwargs)
    assert store.artifacts.list("predictions/bad") == []


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"label": [1]}), "has no 'request_id' column .* optionally row"),
        (pd.DataFrame({"request_id": ["a"]}), "has no 'label' column"),
        (
            pd.DataFrame({"request_id": ["a"], "label": [1], "x": [1]}),
            r"unexpected column\(s\) \['x'\]",
        ),
        (pd.DataFrame({"request_id": ["a", "b"], "label": [1, None]}), "1 missing label"),
        (pd.DataFrame({"request_id": ["a"], "label": [1], "row": [0.5]}), "row must hold ints"),
    ],
)
def test_bad_log_feedback(store, frame, message):
    with pytest.raises(InvalidInput, match=message):
        log_feedback(store, "bad", frame)
    with pytest.raises(InvalidInput, match="'endpoint' parameter of log_feedback"):
        log_feedback(store, "BAD", frame)


def test_log_request_cost_is_printed(store, capsys):
    """Not a timed test: prints the per-call cost of log_request for the record."""
    import time

    plog = PredictionLog(store, "cost", max_buffer_rows=1_000_000)  # no flusher competing
    inputs = [{f"f{i}": float(i) for i in range(10)}]
    ids = [new_id() for _ in range(20_000)]
    start = time.perf_counter()
    for rid in ids:
        plog.log_request(
            request_id=rid, timestamp_us=us(T0), variant="a", model="m/1",
            model_version_id=None, inputs=inputs, outputs=[1], probabilities=None,
            latency_ms=1.0,
        )  # fmt: skip
    per_call = (time.perf_counter() - start) / len(ids) * 1e6
    start = time.perf_counter()
    plog.close()
    rate = len(ids) / (time.perf_counter() - start)
    with capsys.disabled():
        print(f"\nlog_request: {per_call:.2f} us per call; flush: {rate:,.0f} rows/s")
    assert plog.rows_written == len(ids)
