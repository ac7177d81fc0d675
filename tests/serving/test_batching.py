"""Micro-batching: concurrent requests share model calls, and each gets its own answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest

from loopwise.errors import InvalidInput
from loopwise.serving.batching import Batcher
from loopwise.serving.live_model import Snapshot
from tests.serving.test_app import register_credit_risk, training_data


class Counting:
    """A model that counts its calls and refuses NaN, like many estimators do."""

    calls = 0

    def predict(self, X):
        Counting.calls += 1
        X = np.asarray(X, dtype=float)
        if np.isnan(X).any():
            raise ValueError("Input contains NaN")
        return X[:, 0] * 10


@pytest.fixture
def snap(lw):
    register_credit_risk(lw)
    X = training_data()[0]
    lw.log_model(Counting(), "counting", input_example=X[:5])
    version = lw.get_model_version("models:/counting/1")
    return Snapshot(lw.load_model(version.uri), version, datetime.now(UTC)), X


async def gather(batcher, snap, inputs_list, proba=False):
    return await asyncio.gather(
        *(batcher.predict(snap, inputs, proba) for inputs in inputs_list),
        return_exceptions=True,
    )


def test_concurrent_requests_share_calls_and_get_their_own_rows(snap):
    snapshot, X = snap
    batcher = Batcher(max_requests=64)
    inputs = [X[i : i + 1 + i % 3].to_dict("records") for i in range(40)]
    Counting.calls = 0
    answers = asyncio.run(gather(batcher, snapshot, inputs))
    batcher.stop()
    for rows, answer in zip(inputs, answers, strict=True):
        assert answer["predictions"] == pytest.approx([r["income"] * 10 for r in rows])
        assert answer["model"] == "counting/1"
    assert Counting.calls < 40  # batched: fewer calls than requests
    assert batcher.batched_requests == 40


def test_a_bad_request_fails_alone_and_a_rejected_value_is_isolated(snap):
    snapshot, X = snap
    batcher = Batcher()
    good = X[:2].to_dict("records")
    nan = [dict(good[0], income=float("nan"))]
    inputs = [good, [{"income": 1.0}], nan, good]
    answers = asyncio.run(gather(batcher, snapshot, inputs))
    batcher.stop()
    assert answers[0]["predictions"] == answers[3]["predictions"]
    assert isinstance(answers[1], InvalidInput)
    assert "missing columns" in str(answers[1])
    assert isinstance(answers[2], ValueError)


def test_probabilities_are_split_per_request(lw):
    register_credit_risk(lw)
    X = training_data()[0]
    version = lw.get_model_version("models:/credit-risk/1")
    model = lw.load_model(version.uri)
    snapshot = Snapshot(model, version, datetime.now(UTC))
    batcher = Batcher()
    inputs = [X[i : i + 2].to_dict("records") for i in range(0, 20, 2)]
    answers = asyncio.run(gather(batcher, snapshot, inputs, proba=True))
    batcher.stop()
    for rows, answer in zip(inputs, answers, strict=True):
        np.testing.assert_allclose(answer["probabilities"], model.predict_proba(rows))
        assert answer["predictions"] == model.predict(rows).tolist()
