"""A monitor backfill reads each feedback file once, on SQLite and PostgreSQL, and gets the
figures a join per chunk gives: late labels that arrive after later days' predictions,
relabels, per-row and per-request labels, ties between writes, and labels timestamped
too early for their chunk's read."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from loopwise.errors import InvalidInput, NotFound
from loopwise.monitoring.config import Monitor
from loopwise.monitoring.engine.runner import MonitorRunner, run_monitor
from loopwise.predictions import files, reading
from loopwise.predictions.log import (
    log_feedback,
    log_predictions,
    read_feedback,
    read_predictions_frame,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
DAYS = 3
NOW = T0 + 10 * DAY
EP = "ep"


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _stamps(us: np.ndarray) -> pl.Series:
    return pl.Series(us.astype(np.int64)).cast(pl.Datetime("us", "UTC"))


def _feedback(store, ids, labels, us, rows=None) -> None:
    frame = {"request_id": list(ids), "label": list(labels), "timestamp": _stamps(np.asarray(us))}
    if rows is not None:
        frame["row"] = pl.Series(list(rows), dtype=pl.Int32)
    log_feedback(store, EP, pl.DataFrame(frame))


def build(store) -> tuple[dict[str, set[str]], dict[str, int]]:
    """Three days of predictions (40 one-row and 2 three-row requests an hour) and their
    feedback, written in many calls (each writes a file per hour); returns the request ids
    of each kind of feedback, and the final label of the relabelled ones."""
    rng = np.random.default_rng(7)
    ids, rows, us, x = [], [], [], []
    for hour in range(DAYS * 24):
        start = _us(T0 + hour * HOUR)
        for i, second in enumerate(np.sort(rng.uniform(0, 3600, 40))):
            ids.append(f"h{hour:02d}-{i:02d}")
            rows.append(0)
            us.append(start + int(second * 1e6))
            x.append(rng.normal())
        for k in range(2):
            moment = start + int(rng.uniform(0, 3600) * 1e6)
            for row in range(3):
                ids.append(f"h{hour:02d}-m{k}")
                rows.append(row)
                us.append(moment)
                x.append(rng.normal())
    order = np.argsort(us, kind="stable")
    preds = pl.DataFrame(
        {
            "request_id": np.array(ids)[order],
            "row": pl.Series(np.array(rows)[order], dtype=pl.Int32),
            "timestamp": _stamps(np.array(us)[order]),
            "x": np.array(x)[order],
        }
    ).with_columns(prediction=(pl.col("x") > 0).cast(pl.Int64))
    log_predictions(store, EP, preds, model="m/1")

    truth = dict(zip(preds["request_id"], preds["prediction"], strict=False))
    when = dict(zip(preds["request_id"], preds["timestamp"].dt.epoch("us"), strict=False))
    single = [r for r in dict.fromkeys(preds["request_id"]) if "-m" not in r]
    day = {r: int(r[1:3]) // 24 for r in truth}
    flip = rng.random(len(single)) < 0.15
    label = {r: int(truth[r]) ^ int(f) for r, f in zip(single, flip, strict=True)}
    kinds: dict[str, set[str]] = {}

    # on time: half of the one-row requests, within 20 hours
    on_time = [r for r in single if rng.random() < 0.5]
    kinds["on_time"] = set(on_time)
    _feedback(
        store,
        on_time,
        [label[r] for r in on_time],
        [when[r] + int(rng.uniform(0, 20 * 3600e6)) for r in on_time],
    )
    # late: day-0 requests labelled on day 2, after day 1's predictions were logged
    late = [r for r in single if day[r] == 0 and r not in kinds["on_time"] and rng.random() < 0.5]
    kinds["late"] = set(late)
    _feedback(
        store,
        late,
        [label[r] for r in late],
        [_us(T0 + 2 * DAY) + int(rng.uniform(0, 12 * 3600e6)) for r in late],
    )
    # relabelled on day 2: the latest label wins
    relabel = [r for r in on_time if day[r] == 0][:30]
    kinds["relabel"] = set(relabel)
    _feedback(store, relabel, [1 - label[r] for r in relabel], [_us(T0 + 2 * DAY + 13 * HOUR)] * 30)
    # three-row requests: a label for the request (after 1 h); then one for row 1 (after
    # 2 h: row 1 takes it), or before it one for row 2 (after 0.5 h: row 2 takes the
    # request's, the later)
    multi = sorted({r for r in truth if "-m" in r and day[r] < 2})
    _feedback(store, multi, [1] * len(multi), [when[r] + int(3600e6) for r in multi])
    row_last = [r for r in multi if r.endswith("m0")]
    request_last = [r for r in multi if r.endswith("m1")]
    kinds["row_last"], kinds["request_last"] = set(row_last), set(request_last)
    n = len(row_last)
    _feedback(store, row_last, [0] * n, [when[r] + int(7200e6) for r in row_last], [1] * n)
    n = len(request_last)
    _feedback(store, request_last, [0] * n, [when[r] + int(1800e6) for r in request_last], [2] * n)
    # a tie: two writes with one timestamp (the later write wins)
    unlabelled = [r for r in single if r not in kinds["on_time"]]
    tie = [r for r in unlabelled if day[r] == 1][:20]
    kinds["tie"] = set(tie)
    stamp = [_us(T0 + DAY + 20 * HOUR)] * len(tie)
    _feedback(store, tie, [0] * len(tie), stamp)
    _feedback(store, tie, [1] * len(tie), stamp)
    # day-1 requests labelled with a day-0 time: a read of day 1 (feedback from an hour
    # before it) never sees them
    early = [r for r in unlabelled if day[r] == 1 and r not in kinds["tie"]][:15]
    kinds["early"] = set(early)
    _feedback(store, early, [label[r] for r in early], [_us(T0 + 3 * HOUR)] * len(early))
    return kinds, {r: 1 - label[r] for r in relabel}


def monitor(**kwargs) -> Monitor:
    rng = np.random.default_rng(3)
    x = rng.normal(size=500)
    y = (x > 0.1).astype(np.int64)
    reference = pl.DataFrame({"x": x, "prediction": (x > 0).astype(np.int64), "y": y})
    return Monitor(EP, reference=reference, target="y", min_rows=20, **kwargs)


def _feedback_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count every read of a feedback part file (through the one reader all reads use)."""
    reads: Counter[str] = Counter()
    read_part = reading._read_part

    def counting(artifacts, path, columns):
        if path.startswith(f"{files.FEEDBACK}/"):
            reads[path] += 1
        return read_part(artifacts, path, columns)

    monkeypatch.setattr(reading, "_read_part", counting)
    return reads


def _figures(results) -> list[tuple]:
    def plain(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    return [
        (
            r.monitor,
            r.start,
            r.model,
            r.rows,
            r.labelled,
            {k: plain(v) for k, v in r.values.items()},
        )
        for r in results
    ]


@pytest.mark.parametrize("window", ["6h", 500])
def test_a_backfill_reads_each_feedback_file_once(store, monkeypatch, window):
    build(store)
    feedback_files = files.list_parts(store.artifacts, files.FEEDBACK, EP, None, None)
    assert len(feedback_files) > 3 * DAYS  # labels spread over many hours and calls
    reads = _feedback_reads(monkeypatch)
    results = run_monitor(store, monitor(window=window), T0, T0 + DAYS * DAY, now=NOW)
    assert sum(r.rows for r in results) > 2 * 960  # the pass read more than two chunks
    assert reads == Counter(feedback_files)  # every file once (a chunk each: 2-3 times)


def test_reads_with_one_feedback_read_equal_reads_joining_their_own(store):
    kinds, relabelled = build(store)
    labels = read_feedback(store, EP, T0)
    chunks = []
    for d in range(DAYS):
        a, b = T0 + d * DAY, T0 + (d + 1) * DAY
        shared = read_predictions_frame(store, EP, a, b, columns=["x"], feedback=labels)
        assert_frame_equal(shared, read_predictions_frame(store, EP, a, b, columns=["x"]))
        chunks.append(shared)
    frame = pl.concat(chunks)
    label = {
        (r, row): value for r, row, value in frame.select("request_id", "row", "label").iter_rows()
    }
    unbounded = read_predictions_frame(store, EP, T0, T0 + DAY, feedback=read_feedback(store, EP))
    assert_frame_equal(unbounded, read_predictions_frame(store, EP, T0, T0 + DAY))
    for r in kinds["late"]:
        assert label[(r, 0)] is not None  # labelled on day 2
    for r, value in relabelled.items():
        assert label[(r, 0)] == value  # the latest label, on day 2
    for r in kinds["early"]:
        assert label[(r, 0)] is None  # timestamped before its day's read of the feedback
    for r in kinds["tie"]:
        assert label[(r, 0)] == 1
    for r in kinds["row_last"]:
        assert [label[(r, row)] for row in range(3)] == [1, 0, 1]
    for r in kinds["request_last"]:
        assert [label[(r, row)] for row in range(3)] == [1, 1, 1]


def test_a_backfill_gives_the_figures_of_a_join_per_chunk(store):
    kinds, _ = build(store)
    m = monitor(window="6h")
    one_pass = run_monitor(store, m, T0, T0 + DAYS * DAY, now=NOW)
    days = [(T0 + d * DAY, T0 + (d + 1) * DAY) for d in range(DAYS)]
    per_day = [r for a, b in days for r in run_monitor(store, m, a, b, now=NOW)]
    assert _figures(one_pass) == _figures(per_day)
    by_day = Counter()
    for r in one_pass:
        by_day[(r.start - T0) // DAY] += r.labelled
        assert r.value("perf.accuracy") is not None
    on_time = Counter(int(r[1:3]) // 24 for r in kinds["on_time"])
    multi_rows = 3 * 2 * 24  # three-row requests of a day, every row labelled
    assert by_day[0] == on_time[0] + len(kinds["late"]) + multi_rows
    assert by_day[1] == on_time[1] + len(kinds["tie"]) + multi_rows  # not the early ones
    assert by_day[2] == on_time[2]


def test_late_feedback_still_changes_the_windows_it_labels(store):
    kinds, _ = build(store)
    m = monitor(window="6h")
    first = run_monitor(store, m, T0, T0 + DAYS * DAY, now=NOW)
    runner = MonitorRunner(store, m)
    unchanged = runner.run(T0, T0 + DAYS * DAY, now=NOW, changed_only=True, alert=False)
    assert unchanged == []
    # labels for the first six hours' unlabelled requests arrive on day 4
    ids = [
        f"h{h:02d}-{i:02d}"
        for h in range(6)
        for i in range(40)
        if f"h{h:02d}-{i:02d}" not in kinds["on_time"] | kinds["late"]
    ]
    _feedback(store, ids, [1] * len(ids), [_us(T0 + 4 * DAY)] * len(ids))
    changed = runner.run(T0, T0 + DAYS * DAY, now=NOW, changed_only=True, alert=False)
    assert [r.start for r in changed] == [T0]
    assert changed[0].labelled == first[0].labelled + len(ids)
    assert changed[0].labelled == changed[0].rows


def test_a_feedback_read_must_cover_the_read_it_is_joined_to(store):
    build(store)
    labels = read_feedback(store, EP, T0 + HOUR)
    assert "labels=" in repr(labels)
    read_predictions_frame(store, EP, T0 + HOUR, T0 + 2 * HOUR, feedback=labels)
    with pytest.raises(InvalidInput, match="'feedback' parameter of read_predictions"):
        read_predictions_frame(store, EP, T0, T0 + HOUR, feedback=labels)
    with pytest.raises(InvalidInput, match="'feedback' parameter"):
        read_predictions_frame(store, EP, None, T0 + HOUR, feedback=labels)
    log_predictions(store, "other", pl.DataFrame({"prediction": [1]}), timestamp=T0 + 2 * HOUR)
    with pytest.raises(InvalidInput, match="read_feedback\\(store, 'other', start\\)"):
        read_predictions_frame(store, "other", T0 + 2 * HOUR, feedback=labels)
    with pytest.raises(InvalidInput, match="True, False or a read_feedback"):
        read_predictions_frame(store, EP, T0, feedback="yes")  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="'nope'"):
        read_feedback(store, "nope", T0)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        read_feedback(store, EP, datetime(2024, 5, 1))
