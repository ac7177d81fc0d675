"""Adaptive micro-batching: requests that arrive together share one model call.

Why: most of the time of a one-row prediction is fixed cost (Python and library overhead,
a forest walking its trees once per call), so eight one-row calls cost nearly eight times
one eight-row call. Under concurrency, the :class:`Batcher` takes every request waiting in
its queue (up to ``max_requests`` of them) and answers them with one ``predict``: throughput grows
with load. It never waits for a batch to fill: a request that arrives alone is predicted at
once, so latency at concurrency 1 is one thread hand-off above a direct call.

Each request's input is checked against the signature on its own (a bad request fails
alone, with its own message); the checked inputs of one model are stacked and predicted
together. If the batched call raises, the requests are retried one by one, so an input the
model rejects fails only its own request.

Background work of the serving process that is pure computation (the prediction log
turning its buffer into Parquet bytes) can run on the same thread *between* two batches
(:meth:`Batcher.run_between`) instead of on a thread of its own. Why: the model and that
work both need the interpreter lock, and two threads taking turns with it stretch each
other out (a 1 ms encode took 6-15 ms and slowed three or four predictions by up to a
millisecond each); queued behind the current batch, it delays at most the next one.
Such work must have no side effects (it may run on its caller instead).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from loopwise.serving.live_model import Snapshot

logger = logging.getLogger(__name__)

T = TypeVar("T")
TASK_TIMEOUT = 30.0  # seconds a task waits for the worker before it runs on its caller


@dataclass
class _Job:
    snap: Snapshot
    inputs: Any
    proba: bool
    future: asyncio.Future[dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    prepared: Any = None
    rows: int = 0


@dataclass
class _Task:
    """Work queued by :meth:`Batcher.run_between`: ``fn`` and the future of its result."""

    fn: Callable[[], Any]
    future: Future[Any]


class Batcher:
    """One worker thread answering queued prediction requests in batches."""

    def __init__(self, *, max_requests: int = 64, name: str = "endpoint") -> None:
        self.max_requests = max_requests
        self.batches = 0
        self.batched_requests = 0
        self._queue: queue.SimpleQueue[_Job | _Task | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name=f"loopwise-batcher {name}", daemon=True
        )
        self._started = False
        self._closed = False
        self._lock = threading.Lock()

    def start(self) -> Batcher:
        with self._lock:
            if not self._started:
                self._started = True
                self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Answer what is queued (and run its tasks), then end the worker thread."""
        with self._lock:
            self._closed = True
            running = self._started and self._thread.is_alive()
            if running:
                self._queue.put(None)
        if running:
            self._thread.join(timeout)

    def run_between(self, fn: Callable[[], T]) -> T:
        """``fn()`` run on the worker thread between two batches (see the module doc).

        For pure computation only (no I/O, no locks the request path takes): it runs after
        the batch in progress and before the requests queued after it. Runs on the calling
        thread instead when the worker is not running (or is the caller), or has not
        started it within ``TASK_TIMEOUT`` seconds (a model call that hangs).
        """
        if threading.current_thread() is self._thread:
            return fn()
        with self._lock:
            queued = self._started and not self._closed and self._thread.is_alive()
            if queued:
                task = _Task(fn, Future())
                self._queue.put(task)
        if not queued:
            return fn()
        try:
            return task.future.result(TASK_TIMEOUT)
        except FutureTimeout:
            if not task.future.cancel():  # the worker has started it: its result is near
                return task.future.result()
            logger.warning("the batcher did not run a task within %ss", TASK_TIMEOUT)
            return fn()

    async def predict(self, snap: Snapshot, inputs: Any, proba: bool) -> dict[str, Any]:
        """The answer body (``predictions``, ``probabilities``, ``model``) for one request."""
        if not self._started:
            self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._queue.put(_Job(snap, inputs, proba, future, loop))
        return await future

    # -- the worker ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if isinstance(job, _Task):
                _run_task(job)
                continue
            jobs, task, stop = [job], None, False
            while len(jobs) < self.max_requests:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                if isinstance(more, _Task):  # after this batch, before the next requests
                    task = more
                    break
                jobs.append(more)
            try:
                self._answer(jobs)
            except Exception:  # never let the worker die; every future gets an answer
                logger.exception("the batcher failed")
                for j in jobs:
                    _settle(j, error=RuntimeError("the prediction batcher failed"))
            if task is not None:
                _run_task(task)
            if stop:
                return

    def _answer(self, jobs: list[_Job]) -> None:
        ready: list[_Job] = []
        for job in jobs:
            try:
                job.prepared = job.snap.model.prepare(job.inputs)
                job.rows = len(job.prepared)
            except Exception as e:  # a bad request fails alone
                _settle(job, error=e)
                continue
            ready.append(job)
        groups: dict[tuple[int, bool], list[_Job]] = {}
        for job in ready:
            groups.setdefault((id(job.snap), job.proba), []).append(job)
        for group in groups.values():
            self.batches += 1
            self.batched_requests += len(group)
            if len(group) == 1:
                _settle(group[0], body=_body(group[0]))
                continue
            try:
                bodies = _batched_bodies(group)
            except Exception:  # isolate the request the model rejects
                for job in group:
                    _settle(job, body=_body(job))
                continue
            for job, body in zip(group, bodies, strict=True):
                _settle(job, body=body)


def _run_task(task: _Task) -> None:
    if not task.future.set_running_or_notify_cancel():  # its caller ran it already
        return
    try:
        result = task.fn()
    except BaseException as e:  # the caller gets the error
        task.future.set_exception(e)
    else:
        task.future.set_result(result)


def _body(job: _Job) -> dict[str, Any] | BaseException:
    try:
        model = job.snap.model
        body: dict[str, Any] = {"predictions": model.predict_prepared(job.prepared).tolist()}
        if job.proba:
            body["probabilities"] = model.predict_proba_prepared(job.prepared).tolist()
    except Exception as e:
        return e
    body["model"] = job.snap.label
    return body


def _batched_bodies(group: list[_Job]) -> list[dict[str, Any]]:
    model = group[0].snap.model
    stacked = _stack([j.prepared for j in group])
    predictions = np.asarray(model.predict_prepared(stacked))
    probabilities = None
    if group[0].proba:
        probabilities = np.asarray(model.predict_proba_prepared(stacked))
    if len(predictions) != len(stacked):
        raise ValueError("the model answered a different number of rows than it was given")
    bodies, start = [], 0
    for job in group:
        end = start + job.rows
        body: dict[str, Any] = {"predictions": predictions[start:end].tolist()}
        if probabilities is not None:
            body["probabilities"] = probabilities[start:end].tolist()
        body["model"] = job.snap.label
        bodies.append(body)
        start = end
    return bodies


def _stack(parts: list[Any]) -> Any:
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    import pandas as pd

    return pd.concat(parts, ignore_index=True)


def _settle(
    job: _Job, *, body: dict[str, Any] | BaseException | None = None, error: Any = None
) -> None:
    outcome = error if error is not None else body
    if isinstance(outcome, BaseException):
        job.loop.call_soon_threadsafe(_set_exception, job.future, outcome)
    else:
        job.loop.call_soon_threadsafe(_set_result, job.future, outcome)


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
