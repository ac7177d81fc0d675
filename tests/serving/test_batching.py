"""Micro-batching: concurrent requests share model calls, and each gets its own answer."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import ClassVar

import numpy as np
import pytest

from loopwise.errors import InvalidInput
from loopwise.serving.batching import Batcher
from loopwise.serving.live_model import Snapshot
from tests.helpers import register_credit_risk, training_data


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


class Gated:
    """A model that answers once ``release`` is set: a batch that stays in progress."""

    release = threading.Event()
    order: ClassVar[list[str]] = []

    def predict(self, X):
        Gated.release.wait(5)
        Gated.order.append("batch")
        return np.asarray(X, dtype=float)[:, 0]


def test_run_between_runs_on_the_worker_between_batches(lw):
    """A task runs on the batcher's thread, after the batch in progress and before the
    requests queued after it; its error reaches the caller; stopped, it runs inline."""
    register_credit_risk(lw)
    X = training_data()[0]
    lw.log_model(Gated(), "gated", input_example=X[:5])
    Gated.release.set()  # (logging the model predicted on its input example)
    Gated.release.clear()
    Gated.order.clear()
    version = lw.get_model_version("models:/gated/1")
    gated = Snapshot(lw.load_model(version.uri), version, datetime.now(UTC))
    batcher = Batcher().start()
    ran_on: list[threading.Thread] = []

    def task() -> str:
        Gated.order.append("task")
        ran_on.append(threading.current_thread())
        return "done"

    async def scenario() -> list:
        first = asyncio.ensure_future(batcher.predict(gated, X[:1].to_dict("records"), False))
        await asyncio.sleep(0.1)  # the worker is inside the first batch now
        with ThreadPoolExecutor(1) as pool:
            result = pool.submit(batcher.run_between, task)
            await asyncio.sleep(0.1)  # the task is queued behind the batch in progress
            second = asyncio.ensure_future(batcher.predict(gated, X[1:2].to_dict("records"), False))
            await asyncio.sleep(0.1)
            Gated.release.set()
            answers = await asyncio.gather(first, second)
            assert result.result(5) == "done"
        return answers

    answers = asyncio.run(scenario())
    assert [a["predictions"] for a in answers] == [[X.iloc[0, 0]], [X.iloc[1, 0]]]
    assert Gated.order == ["batch", "task", "batch"]
    assert ran_on == [batcher._thread]
    with pytest.raises(ZeroDivisionError):
        batcher.run_between(lambda: 1 / 0)
    batcher.stop()
    caller = threading.current_thread()
    assert batcher.run_between(threading.current_thread) is caller  # stopped: inline
    assert Batcher().run_between(threading.current_thread) is caller  # never started


def test_run_between_falls_back_to_its_caller_when_the_worker_is_stuck(lw, monkeypatch):
    import loopwise.serving.batching as batching

    register_credit_risk(lw)
    X = training_data()[0]
    lw.log_model(Gated(), "gated", input_example=X[:5])
    Gated.release.clear()
    version = lw.get_model_version("models:/gated/1")
    gated = Snapshot(lw.load_model(version.uri), version, datetime.now(UTC))
    monkeypatch.setattr(batching, "TASK_TIMEOUT", 0.2)
    batcher = Batcher().start()
    ran_on: list[threading.Thread] = []

    async def scenario() -> None:
        stuck = asyncio.ensure_future(batcher.predict(gated, X[:1].to_dict("records"), False))
        await asyncio.sleep(0.1)  # the worker waits inside the model
        with ThreadPoolExecutor(1) as pool:
            result = pool.submit(
                batcher.run_between, lambda: ran_on.append(threading.current_thread())
            )
            result.result(5)
            caller = pool.submit(threading.current_thread).result()
        Gated.release.set()
        await stuck
        assert ran_on == [caller]  # ran once, on its caller; the worker skipped it

    asyncio.run(scenario())
    batcher.stop()
    assert len(ran_on) == 1
