"""The prediction log's module-level API (``lw.log_predictions``, ``lw.log_feedback``,
``lw.read_predictions``, ``lw.compact_predictions``) on SQLite, PostgreSQL and through a
server (the remote client): the same frames, records and errors each way.

Each read is compared with the service's own read of the store underneath, so a remote
answer that lost a type, a list or a time zone on the way fails here."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import polars as pl
import pytest

from loopwise import context
from loopwise.errors import InvalidInput, NotFound
from loopwise.predictions import log as service
from tests.helpers import LOG_T0

pytestmark = pytest.mark.remote_conformance

T0 = LOG_T0
HOUR = timedelta(hours=1)


class _Version:
    """A version registered elsewhere: a label and an id of its own."""

    name, version, id = "scorer", 7, "mv-elsewhere-7"


def _local_read(endpoint: str, start=None, end=None) -> pd.DataFrame:
    return service.read_predictions(context.get_store(), endpoint, start, end)


@pytest.mark.parametrize("kind", ["pandas", "polars"])
def test_frames_are_logged_and_read_back_as_the_store_holds_them(lw, kind):
    data = {
        "request_id": ["a", "a", "b"],
        "timestamp": [T0, T0, T0 + HOUR],
        "income": [1.0, 2.5, float("nan")],
        "city": ["x", "日本", None],
        "count": [1, 2, 3],
        "prediction": [0, 1, 1],
        "probabilities": [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]],
    }
    frame = pd.DataFrame(data) if kind == "pandas" else pl.DataFrame(data)
    logged = lw.log_predictions("batch", frame, model=_Version())
    assert logged.rows == 3
    assert len(logged.files) == 2  # one file per hour
    assert logged.request_id is None
    read = lw.read_predictions("batch")
    pd.testing.assert_frame_equal(read, _local_read("batch"))
    assert read["model"].unique().tolist() == ["scorer/7"]
    assert read["model_version_id"].unique().tolist() == ["mv-elsewhere-7"]
    assert list(read["probabilities"].iloc[2]) == [0.3, 0.7]
    assert str(read["timestamp"].dtype).endswith("UTC]")
    one_hour = lw.read_predictions("batch", T0, T0 + HOUR)
    assert one_hour["request_id"].tolist() == ["a", "a"]


def test_a_batch_without_ids_gets_one_and_its_feedback_joins(lw):
    frame = pd.DataFrame({"x": [1, 2, 3], "prediction": [0.1, 0.2, 0.3]})
    logged = lw.log_predictions("scored", frame, model="m/1", timestamp=T0)
    assert logged.rows == 3
    labels = pd.DataFrame(
        {"request_id": [logged.request_id] * 2, "row": [2, 0], "label": [0.25, 0.5]}
    )
    assert lw.log_feedback("scored", labels).rows == 2
    read = lw.read_predictions("scored")
    pd.testing.assert_frame_equal(read, _local_read("scored"))
    assert read["request_id"].tolist() == [logged.request_id] * 3
    assert read["timestamp"].tolist() == [pd.Timestamp(T0)] * 3
    assert read["label"].tolist()[0] == 0.5
    assert pd.isna(read["label"].tolist()[1])
    assert read["label"].tolist()[2] == 0.25


def test_text_and_boolean_labels_and_the_latest_label_wins(lw):
    for endpoint, first, last in (("texts", "spam", "ham"), ("flags", True, False)):
        logged = lw.log_predictions(endpoint, pd.DataFrame({"prediction": [1]}), timestamp=T0)
        for label in (first, last):
            lw.log_feedback(
                endpoint, pd.DataFrame({"request_id": [logged.request_id], "label": [label]})
            )
        read = lw.read_predictions(endpoint)
        pd.testing.assert_frame_equal(read, _local_read(endpoint))
        assert read["label"].tolist() == [last]


def test_compaction_merges_closed_hours_and_the_log_reads_the_same(lw):
    for hour in range(3):
        for part in range(2):  # two files per hour
            frame = pd.DataFrame({"x": [float(part)], "prediction": [hour]})
            lw.log_predictions("merged", frame, timestamp=T0 + hour * HOUR)
    before = lw.read_predictions("merged")
    result = lw.compact_predictions("merged", settle=timedelta(0))
    local_view = service.read_predictions(context.get_store(), "merged")
    assert result.hours == 3
    assert (result.files_before, result.files_after, result.rows) == (6, 3, 6)
    assert result.endpoint == "merged"
    pd.testing.assert_frame_equal(
        lw.read_predictions("merged")
        .sort_values("prediction", kind="stable")
        .reset_index(drop=True),
        before.sort_values("prediction", kind="stable").reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(lw.read_predictions("merged"), local_view)
    again = lw.compact_predictions("merged", settle=timedelta(0))
    assert again.hours == 0


def test_mistakes_are_the_same_errors_each_way(lw):
    frame = pd.DataFrame({"x": [1.0], "prediction": [1]})
    with pytest.raises(InvalidInput, match="no 'prediction' column"):
        lw.log_predictions("bad", pd.DataFrame({"x": [1.0]}))
    with pytest.raises(InvalidInput, match="end"):
        lw.read_predictions("bad", T0 + HOUR, T0)
    with pytest.raises(InvalidInput, match="endpoint"):
        lw.log_predictions("no/slashes", frame)
    with pytest.raises(InvalidInput, match="model"):
        lw.log_predictions("bad", frame, model=3.5)
    with pytest.raises(InvalidInput, match="timezone"):
        lw.log_predictions("bad", frame, timestamp=T0.replace(tzinfo=None))
    with pytest.raises(InvalidInput, match="request_id"):
        lw.log_feedback("bad", pd.DataFrame({"label": [1]}))
    with pytest.raises(NotFound, match="no prediction log"):  # nothing above was written
        lw.read_predictions("bad")


def test_a_registered_model_must_name_one_of_its_versions(lw):
    from sklearn.linear_model import LogisticRegression

    from tests.helpers import training_data

    X, y = training_data()
    version = lw.log_model(LogisticRegression().fit(X, y), "risk", input_example=X[:3])
    frame = X[:2].assign(prediction=[0, 1])
    lw.log_predictions("risk-batch", frame, model="risk/1")
    lw.log_predictions("risk-batch", frame, model=version)
    read = lw.read_predictions("risk-batch")
    assert read["model_version_id"].unique().tolist() == [version.id]
    with pytest.raises(NotFound, match="risk"):
        lw.log_predictions("risk-batch", frame, model="risk/9")
