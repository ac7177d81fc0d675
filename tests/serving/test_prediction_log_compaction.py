"""Compaction of the prediction log: a writer's small parts merged into few files, with
readers that never see a row twice or miss one, whatever moment they read at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import loopwise.serving.prediction_log_files as files
import loopwise.serving.prediction_log_reading as reading
from loopwise.serving.prediction_log import PredictionLog, read_predictions
from loopwise.serving.prediction_log_files import FEEDBACK, PREDICTIONS, list_parts
from tests.s3_server import s3_endpoint  # noqa: F401
from tests.serving.test_prediction_log import T0, log_one, us

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
    monkeypatch.setattr("loopwise.serving.prediction_log_compaction.store_part", refuse)
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
