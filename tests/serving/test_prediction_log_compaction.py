"""Compaction of the prediction log: a writer's small parts merged into few files, with
readers that never see a row twice or miss one, whatever moment they read at."""

from __future__ import annotations

import json
import multiprocessing as mp
from datetime import UTC, datetime, timedelta

import pandas as pd
import polars as pl
import pytest

import loopwise.predictions.files as files
import loopwise.predictions.reading as reading
from loopwise.errors import InvalidInput, NotFound
from loopwise.predictions.compaction import compact_predictions, lease_name
from loopwise.predictions.files import FEEDBACK, PREDICTIONS, list_parts
from loopwise.predictions.log import (
    PredictionLog,
    log_feedback,
    log_predictions,
    read_predictions,
)
from loopwise.store.leases import give_back, take
from tests.helpers import LOG_T0 as T0
from tests.helpers import log_one, us
from tests.s3_server import s3_endpoint  # noqa: F401

SECOND = timedelta(seconds=1)


def parts(store, endpoint: str, kind: str = PREDICTIONS) -> list[str]:
    return list_parts(store.artifacts, kind, endpoint, None, None)


def flushes(plog: PredictionLog, start: datetime, n: int) -> list[str]:
    """``n`` flushes of one request each, a second apart from ``start``; their ids."""
    rids = []
    for i in range(n):
        rids.append(log_one(plog, start + i * SECOND))
        plog.flush()
        plog.compact()
    return rids


def test_parts_merge_every_batch_and_when_the_log_closes(store):
    plog = PredictionLog(store, "busy", recent_requests=0)
    plog.compactor.batch = 5
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # an open hour
    rids = flushes(plog, now, 12)
    assert len(parts(store, "busy")) == 4  # two merged files of 5, then 2 parts
    assert read_predictions(store, "busy")["request_id"].tolist() == rids
    plog.close()
    assert len(parts(store, "busy")) == 1
    assert read_predictions(store, "busy")["request_id"].tolist() == rids
    assert plog.compactor.files_merged == 5 + 5 + 4
    assert plog.knows_request(rids[3])  # found in the merged file


def test_a_closed_hour_is_merged_whole_with_its_feedback(store):
    plog = PredictionLog(store, "past", recent_requests=0)
    rids = []
    for i in range(3):
        rids.append(log_one(plog, T0 + i * SECOND))
        plog.log_feedback(rids[-1], i, timestamp_us=us(T0 + timedelta(minutes=1, seconds=i)))
        plog.flush()
    assert len(parts(store, "past")) == len(parts(store, "past", FEEDBACK)) == 3
    plog.compact()  # T0's hour ended long ago
    assert len(parts(store, "past")) == len(parts(store, "past", FEEDBACK)) == 1
    frame = read_predictions(store, "past")
    assert frame["request_id"].tolist() == rids
    assert frame["label"].tolist() == [0, 1, 2]


def test_readers_skip_the_parts_a_merged_file_replaces_after_a_crash(store, monkeypatch, caplog):
    plog = PredictionLog(store, "crashy", recent_requests=0)
    rids = [log_one(plog, T0)]
    plog.flush()
    rids.append(log_one(plog, T0 + 2 * SECOND))
    plog.flush()

    def crash(path):
        raise OSError("the process died here (test)")

    monkeypatch.setattr(store.artifacts, "delete", crash)
    plog.compact()  # the merged file is written, the parts are not deleted
    assert "could not delete" in caplog.text
    assert len(parts(store, "crashy")) == 3
    assert read_predictions(store, "crashy")["request_id"].tolist() == rids
    assert plog.knows_request(rids[1])


def test_a_reader_lists_again_when_parts_vanish_under_it(store, monkeypatch):
    plog = PredictionLog(store, "racy")
    rids = [log_one(plog, T0 + i * SECOND) for i in range(2)]
    plog.flush()
    rids.append(log_one(plog, T0 + 5 * SECOND))
    plog.flush()
    stale = parts(store, "racy")  # what a reader listed just before the merge
    plog.compact()
    real, calls = files.list_parts, []

    def listing(artifacts, kind, endpoint, start_us, end_us):
        calls.append(kind)
        if kind == PREDICTIONS and calls.count(PREDICTIONS) == 1:
            return stale
        return real(artifacts, kind, endpoint, start_us, end_us)

    monkeypatch.setattr(reading, "list_parts", listing)
    assert read_predictions(store, "racy")["request_id"].tolist() == rids
    assert calls.count(PREDICTIONS) == 2


def test_a_failed_merge_is_logged_and_changes_nothing(store, monkeypatch, caplog):
    plog = PredictionLog(store, "broken")
    rids = [log_one(plog, T0), log_one(plog, T0 + SECOND)]
    plog.flush()
    rids.append(log_one(plog, T0 + 2 * SECOND))
    plog.flush()

    def refuse(*args, **kwargs):
        raise OSError("disk full (test)")

    monkeypatch.setattr(files, "store_part", refuse)
    monkeypatch.setattr("loopwise.predictions.compaction.store_part", refuse)
    plog.compact()
    assert "merging part files failed: disk full (test)" in caplog.text
    assert len(parts(store, "broken")) == 2
    assert read_predictions(store, "broken")["request_id"].tolist() == rids
    caplog.clear()
    monkeypatch.undo()
    plog.compact()  # given up, not retried: never two merged files with the same rows
    assert caplog.text == ""
    assert len(parts(store, "broken")) == 2


def test_s3_store_merges_and_deletes(s3_endpoint, tmp_path):  # noqa: F811
    import uuid

    from loopwise.config import load_settings
    from loopwise.store import Store

    settings = load_settings(
        store_url=f"sqlite:///{tmp_path}/db.sqlite",
        artifacts_url=f"s3://{s3_endpoint['bucket']}/pl-{uuid.uuid4().hex}",
    )
    store = Store(settings=settings, storage_options=s3_endpoint["storage_options"])
    plog = PredictionLog(store, "on-s3", recent_requests=0)
    rids = []
    for i in range(3):
        rids.append(log_one(plog, T0 + i * SECOND))
        plog.flush()
    plog.close()
    assert len(parts(store, "on-s3")) == 1
    assert read_predictions(store, "on-s3")["request_id"].tolist() == rids
    assert plog.knows_request(rids[0])


# -- compact_predictions: every file of the closed hours, whoever wrote it ------------------


def log_calls(store, endpoint: str, hours: int, calls: int) -> None:
    """``calls`` log_predictions calls (two rows each, one labelled) in each of ``hours``
    hours from T0, as a batch job logging every few minutes would."""
    for h in range(hours):
        for i in range(calls):
            when = T0 + timedelta(hours=h, minutes=5 * i)
            frame = pl.DataFrame({"prediction": [0.1 * i, 0.2], "income": [float(h), 2.0]})
            logged = log_predictions(store, endpoint, frame, timestamp=when)
            feedback = pl.DataFrame(
                {
                    "request_id": [logged.request_id],
                    "label": [i % 2],
                    "timestamp": [when + timedelta(minutes=1)],
                }
            )
            log_feedback(store, endpoint, feedback)


def everything(store, endpoint: str):
    frame = read_predictions(store, endpoint)
    return frame.sort_values(["request_id", "row"]).reset_index(drop=True)


def test_compact_merges_each_closed_hour_into_one_file(store):
    log_calls(store, "batchy", hours=3, calls=4)
    before = everything(store, "batchy")
    assert len(parts(store, "batchy")) == len(parts(store, "batchy", FEEDBACK)) == 12
    result = compact_predictions(store, "batchy")
    assert result.to_dict() == {
        "endpoint": "batchy",
        "hours": 6,  # 3 hours of predictions, 3 of feedback
        "files_before": 24,
        "files_after": 6,
        "rows": 24 + 12,
        "open_hours": 0,
        "busy_hours": 0,
    }
    assert len(parts(store, "batchy")) == len(parts(store, "batchy", FEEDBACK)) == 3
    pd.testing.assert_frame_equal(everything(store, "batchy"), before)
    again = compact_predictions(store, "batchy")  # nothing left to do
    assert (again.hours, again.files_before, again.files_after) == (0, 0, 0)


def test_compact_leaves_open_and_unsettled_hours(store):
    now = datetime.now(UTC)
    for _ in range(2):
        log_predictions(store, "live", pl.DataFrame({"prediction": [1.0]}), timestamp=now)
    result = compact_predictions(store, "live", settle=timedelta(0))
    assert (result.hours, result.open_hours) == (0, 1)  # the hour has not ended
    assert len(parts(store, "live")) == 2
    last_hour = now - timedelta(hours=1)
    for _ in range(2):
        log_predictions(store, "live", pl.DataFrame({"prediction": [2.0]}), timestamp=last_hour)
    result = compact_predictions(store, "live", settle="2h")  # ended less than 2h ago
    assert (result.hours, result.open_hours) == (0, 2)
    result = compact_predictions(store, "live", settle=timedelta(0))
    assert (result.hours, result.open_hours) == (1, 1)


def test_compact_reads_only_the_hours_asked_for(store):
    log_calls(store, "ranged", hours=3, calls=2)
    second = T0 + timedelta(hours=1)
    result = compact_predictions(store, "ranged", second, second + timedelta(hours=1))
    assert result.hours == 2  # predictions and feedback of the second hour
    hours = [files.part_hour(p) for p in parts(store, "ranged")]
    assert sorted(hours) == [hours[0]] * 2 + [hours[0] + 1] + [hours[0] + 2] * 2


def test_compact_leaves_an_hour_another_process_is_merging(store):
    log_calls(store, "contended", hours=1, calls=3)
    hour = us(T0) // files.HOUR_US
    name = lease_name("contended", PREDICTIONS, hour)
    assert take(store, name, "another process", ttl_s=60)
    result = compact_predictions(store, "contended")
    assert (result.hours, result.busy_hours) == (1, 1)  # the feedback hour was free
    assert len(parts(store, "contended")) == 3
    give_back(store, name, "another process")
    assert compact_predictions(store, "contended").hours == 1
    assert len(parts(store, "contended")) == 1


def test_a_writer_does_not_merge_again_what_compact_merged(store):
    plog = PredictionLog(store, "shared", recent_requests=0)
    rids = []
    for i in range(3):  # a writer's parts of an hour long over, not merged by it yet
        rids.append(log_one(plog, T0 + i * SECOND))
        plog.flush()
    assert compact_predictions(store, "shared").hours == 1
    merged = parts(store, "shared")
    plog.compact()  # its parts are gone: merged by compact_predictions
    plog.close()
    assert parts(store, "shared") == merged
    assert read_predictions(store, "shared")["request_id"].tolist() == rids


def test_files_a_failed_delete_left_never_come_back(store, monkeypatch, caplog):
    plog = PredictionLog(store, "sticky", recent_requests=0)
    plog.compactor.batch = 2
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # an open hour
    real_delete = store.artifacts.delete

    def refuse(path):
        raise OSError("no delete permission (test)")

    monkeypatch.setattr(store.artifacts, "delete", refuse)
    rids = flushes(plog, now, 2)  # merged into one file; the two parts stay
    assert "could not delete" in caplog.text
    assert len(parts(store, "sticky")) == 3
    monkeypatch.setattr(store.artifacts, "delete", real_delete)
    rids += flushes(plog, now + 2 * SECOND, 1)
    plog.close()  # the hour whole: the merged file, the new part and the two it replaced
    assert len(parts(store, "sticky")) == 1
    assert read_predictions(store, "sticky")["request_id"].tolist() == rids


def test_compact_deletes_what_a_failed_delete_left(store, monkeypatch):
    plog = PredictionLog(store, "leftover", recent_requests=0)
    rids = [log_one(plog, T0)]
    plog.flush()
    rids.append(log_one(plog, T0 + SECOND))
    plog.flush()
    real_delete = store.artifacts.delete
    monkeypatch.setattr(store.artifacts, "delete", lambda path: 1 / 0)
    plog.compact()  # merged; its parts not deleted
    monkeypatch.setattr(store.artifacts, "delete", real_delete)
    assert len(parts(store, "leftover")) == 3
    result = compact_predictions(store, "leftover")
    assert (result.hours, result.files_before, result.files_after) == (0, 3, 1)
    assert len(parts(store, "leftover")) == 1
    assert read_predictions(store, "leftover")["request_id"].tolist() == rids


def _compact_in_process(args: tuple[str, str]) -> dict:
    from loopwise.config import load_settings
    from loopwise.store import Store

    store_url, artifacts = args
    store = Store(settings=load_settings(store_url=store_url, artifacts_url=artifacts))
    result = compact_predictions(store, "crowded")
    store.db.engine.dispose()
    return result.to_dict()


def test_processes_compacting_at_once_keep_every_row_once(store):
    log_calls(store, "crowded", hours=6, calls=4)
    before = everything(store, "crowded")
    ctx = mp.get_context("spawn")
    args = (store.settings.store_url, store.settings.artifacts_url)
    with ctx.Pool(3) as pool:
        results = pool.map(_compact_in_process, [args] * 3)
    assert sum(r["hours"] for r in results) == 12  # each hour merged by exactly one
    assert len(parts(store, "crowded")) == len(parts(store, "crowded", FEEDBACK)) == 6
    pd.testing.assert_frame_equal(everything(store, "crowded"), before)


def test_bad_compact_arguments_are_clear_errors(store):
    log_calls(store, "known", hours=1, calls=1)
    with pytest.raises(NotFound, match="endpoint 'unknown' has no prediction log"):
        compact_predictions(store, "unknown")
    with pytest.raises(InvalidInput, match="settle"):
        compact_predictions(store, "known", settle="soon")
    with pytest.raises(InvalidInput, match="settle"):
        compact_predictions(store, "known", settle=timedelta(minutes=-1))
    with pytest.raises(InvalidInput, match="timezone-aware"):
        compact_predictions(store, "known", datetime(2024, 5, 1))
    with pytest.raises(InvalidInput, match="at or after start"):
        compact_predictions(store, "known", T0, T0 - SECOND)
    with pytest.raises(InvalidInput, match="endpoint"):
        compact_predictions(store, "Not An Endpoint")


def test_cli_compact(lw, invoke):
    frame = pl.DataFrame({"prediction": [1.0]})
    for i in range(3):
        lw.log_predictions("cli-ep", frame, timestamp=T0 + i * SECOND)
    result = invoke("endpoints", "compact", "cli-ep", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files_before"] == 3
    result = invoke("endpoints", "compact", "cli-ep")
    assert result.exit_code == 0, result.output
    assert "Nothing to merge" in result.output
    lw.log_predictions("cli-ep", frame, timestamp=T0)
    result = invoke("endpoints", "compact", "cli-ep", "--start", "2024-05-01T09:00:00Z")
    assert result.exit_code == 0, result.output
    assert "Merged 1 hours of 'cli-ep': 2 files -> 1, 4 rows." in result.output
    result = invoke("endpoints", "compact", "cli-ep", "--settle", "soon")
    assert result.exit_code != 0
    assert "settle" in result.output
    assert "Traceback" not in result.output
