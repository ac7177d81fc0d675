"""The prediction log: every request, response and feedback label of an endpoint, as Parquet.

:class:`PredictionLog` is the writer a serving process keeps for its endpoint. On the request
path, ``log_request`` / ``log_error`` / ``log_feedback`` only append a tuple to a buffer under
a lock; a daemon thread turns the buffer into Arrow tables and writes one Parquet part file
per UTC hour every ``flush_interval`` seconds (sooner when many rows wait). In a serving
endpoint the conversion to Parquet bytes runs between two model calls instead (``encode_on``;
see :mod:`loopwise.serving.batching`) and only the writes stay on that thread. The layout and
the column types are in :mod:`loopwise.predictions.files`, reading them back in
:mod:`loopwise.predictions.reading`.

Loss window: a process killed without ``close()`` loses what was logged since the last
successful flush -- at most ``flush_interval`` seconds plus the flush in flight, or, while
the store is failing, the rows kept for retry. ``close()`` (or interpreter exit) writes
everything. A failed write keeps its rows and is retried at the next interval.

Back-pressure: the request path never waits for the store. More than ``max_buffer_rows``
rows waiting (the store is down or too slow) drops the *oldest* rows, counted in
``rows_dropped``: monitoring and alerting need the most recent traffic, and feedback arrives
for recent requests, so when the store comes back the log holds the latest stretch whole.

Service functions for batch scoring and external systems, and for reading back:
:func:`log_predictions`, :func:`log_feedback`, :func:`read_predictions` (pandas, joined with
feedback), :func:`read_predictions_frame` (Polars, optional column selection, for
monitoring), :func:`read_feedback` (the feedback read once, for several reads of the log)
and :func:`prediction_endpoints`. ``loopwise.predictions.api`` binds
them to the default store as ``lw.log_predictions`` and so on.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from loopwise.clock import now_us
from loopwise.data.frames import to_polars
from loopwise.errors import InvalidInput, LoopwiseError, NotFound, StoreUnavailable
from loopwise.ids import id_time_ms
from loopwise.param_errors import bad_param, closest
from loopwise.predictions.compaction import Compactor
from loopwise.predictions.files import (
    FEEDBACK,
    HOUR_US,
    MAX_US,
    MIN_US,
    PREDICTIONS,
    check_endpoint,
    check_time,
    encode_part,
    ensure_endpoint,
    feedback_from_frame,
    feedback_table,
    is_loopwise_id,
    list_endpoints,
    model_fields,
    part_hour,
    partition_dir,
    prediction_table,
    predictions_from_frame,
    require_endpoint,
    store_part,
    write_frame,
)
from loopwise.predictions.reading import (
    LatestFeedback,
    feedback_since,
    read_log,
    read_part,
    relisting,
)
from loopwise.store import ArtifactStore, Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LatestFeedback",
    "LoggedRows",
    "PredictionLog",
    "log_feedback",
    "log_predictions",
    "prediction_endpoints",
    "read_feedback",
    "read_predictions",
    "read_predictions_frame",
]

log = logging.getLogger("loopwise.serving")

#: A flush starts early once this many rows wait (or half of ``max_buffer_rows``).
FLUSH_ROWS = 50_000
_open_logs: weakref.WeakSet[PredictionLog] = weakref.WeakSet()


def _flush_open_logs() -> None:
    for plog in list(_open_logs):
        try:
            plog.close()
        except Exception as e:  # at exit there is no one left to raise to
            log.error("prediction log of %r lost rows at exit: %s", plog.endpoint, e)


def _forget_in_child() -> None:
    # A forked worker inherits the buffers (the parent writes them), not the thread, and
    # maybe a lock held mid-flush: start afresh so no row is written twice.
    for plog in list(_open_logs):
        plog._reset_after_fork()


atexit.register(_flush_open_logs)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


class PredictionLog:
    """Buffered, off-the-request-path writer of one endpoint's predictions and feedback.

    One per serving process: a forked worker starts with an empty buffer and no thread,
    so call ``start()`` in it. ``start()`` starts the flusher thread; until then rows are
    written only by ``flush()``, ``close()`` or at interpreter exit. ``close()`` flushes
    and stops the thread.
    Counters for Prometheus: ``rows_written``, ``rows_dropped``, ``flush_failures``,
    ``pending_rows``; ``last_error`` is the last failed flush's error (None once one works).
    """

    def __init__(
        self,
        store: Store,
        endpoint: str,
        *,
        flush_interval: float = 1.0,
        max_buffer_rows: int = 200_000,
        recent_requests: int = 100_000,
    ) -> None:
        func = "PredictionLog"
        self.endpoint = check_endpoint(endpoint, func)
        if not isinstance(store, Store):
            raise bad_param(func, "store", "a loopwise.Store", store)
        if isinstance(flush_interval, bool) or not (
            isinstance(flush_interval, int | float) and 0 < flush_interval < float("inf")
        ):
            raise bad_param(func, "flush_interval", "a number of seconds > 0", flush_interval)
        limits = (("max_buffer_rows", max_buffer_rows, 1), ("recent_requests", recent_requests, 0))
        for name, value, low in limits:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise bad_param(func, name, f"an int >= {low}", value)
        self.store = store
        self.flush_interval = float(flush_interval)
        self.max_buffer_rows = max_buffer_rows
        self._flush_rows = max(1, min(FLUSH_ROWS, max_buffer_rows // 2))
        self._recent_max = recent_requests
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._requests: deque[tuple[Any, ...]] = deque()
        self._feedback: deque[tuple[Any, ...]] = deque()
        self._buffered = 0
        self._in_flight = 0
        self._recent: dict[str, int] = {}  # request id -> its rows
        self._recent_order: deque[str] = deque()
        self._thread: threading.Thread | None = None
        self._marked = False
        self._index: RequestIndex | None = None
        self._dropped_reported = 0
        self.rows_written = 0
        self.rows_dropped = 0
        self.flush_failures = 0
        self.last_error: BaseException | None = None
        # Where the buffer becomes Parquet bytes (pure computation): on the flushing thread,
        # or, in a serving endpoint, between two batches of its model (Batcher.run_between)
        self.encode_on: Callable[[Callable[[], Any]], Any] | None = None
        self.compactor = Compactor(store, self.endpoint)  # merges this log's parts
        _open_logs.add(self)

    def __repr__(self) -> str:
        return f"PredictionLog({self.endpoint!r}, pending_rows={self.pending_rows})"

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._wake = threading.Event()
        stopped, self._stop = self._stop.is_set(), threading.Event()
        if stopped:
            self._stop.set()
        self._requests, self._feedback = deque(), deque()
        self._buffered = self._in_flight = 0
        self._thread = None
        self.compactor = Compactor(self.store, self.endpoint)  # the parent's own

    # -- request path -----------------------------------------------------------------------

    def log_request(
        self,
        *,
        request_id: str,
        timestamp_us: int,
        variant: str,
        model: str,
        model_version_id: str | None,
        inputs: list[dict] | dict[str, list],
        outputs: list,
        probabilities: list[list[float]] | None,
        latency_ms: float,
        shadow: bool = False,
    ) -> None:
        """Buffer one answered request: a row per input row (``row`` 0..N-1).

        ``inputs`` is what the client sent (records or columns), ``outputs`` one prediction
        per row, ``probabilities`` one list per row or None; normalised at flush time.
        """
        try:
            rows = len(outputs) or 1
        except TypeError:
            rows = -1
        if (
            type(request_id) is not str
            or type(timestamp_us) is not int
            or not MIN_US <= timestamp_us < MAX_US
            or not isinstance(inputs, list | dict)
            or rows < 0
        ):
            raise _bad_call("log_request", request_id, timestamp_us, inputs=inputs, outputs=outputs)
        entry = (
            timestamp_us, rows, request_id, variant, model, model_version_id, shadow,
            latency_ms, None, inputs, outputs, probabilities,
        )  # fmt: skip
        # _add inlined: this is the request path (a method call is a tenth of its cost).
        with self._lock:
            self._requests.append(entry)
            self._buffered += rows
            if request_id not in self._recent:
                self._remember(request_id, rows)
            if self._buffered > self.max_buffer_rows:
                self._drop_oldest()
            full = self._buffered >= self._flush_rows
        if full and not self._wake.is_set():
            self._wake.set()

    def log_error(
        self,
        *,
        request_id: str,
        timestamp_us: int,
        variant: str | None,
        model: str | None,
        error_type: str,
        latency_ms: float,
        shadow: bool = False,
    ) -> None:
        """Buffer a failed request (or a failed shadow call): one row with ``error`` set."""
        if (
            type(request_id) is not str
            or type(timestamp_us) is not int
            or not MIN_US <= timestamp_us < MAX_US
            or type(error_type) is not str
        ):
            raise _bad_call("log_error", request_id, timestamp_us, error_type=error_type)
        entry = (
            timestamp_us, 1, request_id, variant, model, None, shadow, latency_ms, error_type,
            None, (), None,
        )  # fmt: skip
        self._add(self._requests_of, entry, 1, request_id)

    def log_feedback(
        self,
        request_id: str,
        label: Any,
        *,
        row: int | None = None,
        timestamp_us: int | None = None,
    ) -> None:
        """Buffer a ground-truth label for a request (``row`` None: every row of it).

        Whether the request is known is the caller's check (:meth:`knows_request`).
        """
        if timestamp_us is None:
            timestamp_us = time.time_ns() // 1000
        if (
            type(request_id) is not str
            or type(timestamp_us) is not int
            or not MIN_US <= timestamp_us < MAX_US
            or label is None
            or not (row is None or (type(row) is int and 0 <= row < 2**31))
        ):
            raise _bad_call("log_feedback", request_id, timestamp_us, label=label, row=row)
        self._add(self._feedback_of, (timestamp_us, request_id, row, label), 1, None)

    def _requests_of(self) -> deque[tuple[Any, ...]]:
        return self._requests

    def _feedback_of(self) -> deque[tuple[Any, ...]]:
        return self._feedback

    def _add(
        self,
        buffer: Callable[[], deque[tuple[Any, ...]]],
        entry: tuple[Any, ...],
        rows: int,
        rid: str | None,
    ) -> None:
        """Append ``entry`` to the buffer ``buffer()`` names (looked up under the lock: a
        flush swaps the buffers), remember its request id, keep the buffer bounded."""
        with self._lock:
            buffer().append(entry)
            self._buffered += rows
            if rid is not None and rid not in self._recent:
                self._remember(rid, rows)
            if self._buffered > self.max_buffer_rows:
                self._drop_oldest()
            full = self._buffered >= self._flush_rows
        if full and not self._wake.is_set():
            self._wake.set()

    def _remember(self, request_id: str, rows: int) -> None:
        """Add to the bounded map of recent request ids and their rows; holds ``_lock``."""
        if self._recent_max:
            self._recent[request_id] = rows
            self._recent_order.append(request_id)
            if len(self._recent_order) > self._recent_max:
                self._recent.pop(self._recent_order.popleft(), None)

    def _drop_oldest(self) -> None:
        """Drop the oldest requests (then feedback) until the buffer fits; holds ``_lock``."""
        while self._buffered > self.max_buffer_rows and (self._requests or self._feedback):
            if self._requests:
                rows = self._requests.popleft()[1]
            else:
                self._feedback.popleft()
                rows = 1
            self._buffered -= rows
            self.rows_dropped += rows

    # -- look-ups ---------------------------------------------------------------------------

    @property
    def pending_rows(self) -> int:
        """Rows not yet written: waiting in the buffer or in the flush in flight."""
        return self._buffered + self._in_flight

    def knows_request(self, request_id: str) -> bool:
        """Whether ``request_id`` was logged for this endpoint.

        True at once for the last ``recent_requests`` ids logged by this process; otherwise
        the prediction files of the hour the id was made in (and the nearest neighbouring
        hour) are searched -- never the whole log. Ids not made by loopwise (``new_id``)
        carry no time, so only this process's recent ones are found.
        """
        if not isinstance(request_id, str):
            raise bad_param("knows_request", "request_id", "a request id (str)", request_id)
        return self.request_rows(request_id) is not None

    def request_rows(self, request_id: str) -> int | None:
        """How many rows the logged request ``request_id`` had (None: not logged here).

        Found as :meth:`knows_request` finds it. A failed request counts one row. An id
        whose time lies outside the years the log can hold (2000-9999) was never logged.
        """
        if not isinstance(request_id, str):
            raise bad_param("request_rows", "request_id", "a request id (str)", request_id)
        rows = self._recent.get(request_id)
        if rows is not None:
            return rows
        if not is_loopwise_id(request_id):
            return None
        time_ms = id_time_ms(request_id)
        if not MIN_US <= time_ms * 1000 < MAX_US:
            return None
        with self._index_lock:
            if self._index is None:
                self._index = RequestIndex(self.store.artifacts, self.endpoint)
            return self._index.rows(request_id, time_ms)

    # -- flushing -------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything buffered now (thread-safe); :class:`StoreUnavailable` if the
        store fails, with the rows kept for the next try."""
        with self._flush_lock:
            with self._lock:
                requests, self._requests = self._requests, deque()
                feedback, self._feedback = self._feedback, deque()
                self._in_flight, self._buffered = self._buffered, 0
                if not requests and not feedback:
                    self._in_flight = 0
                    return
            try:
                kept_requests, kept_feedback, written, error = self._write(requests, feedback)
            except BaseException:  # interrupted: put everything back
                with self._lock:
                    self._in_flight = 0
                    self._requests.extendleft(reversed(requests))
                    self._feedback.extendleft(reversed(feedback))
                    self._buffered += sum(e[1] for e in requests) + len(feedback)
                raise
            with self._lock:
                self._in_flight = 0
                self.rows_written += written
                if kept_requests or kept_feedback:
                    self._requests.extendleft(reversed(kept_requests))
                    self._feedback.extendleft(reversed(kept_feedback))
                    self._buffered += sum(e[1] for e in kept_requests) + len(kept_feedback)
                    self._drop_oldest()
                if error is not None:
                    self.flush_failures += 1
            if error is None:
                self.last_error = None
                return
            self.last_error = error
            kept = sum(e[1] for e in kept_requests) + len(kept_feedback)
            if isinstance(error, LoopwiseError) and not isinstance(error, StoreUnavailable):
                raise error
            raise StoreUnavailable(
                f"could not write {kept} prediction-log rows of endpoint {self.endpoint!r} "
                f"to artifact store {self.store.artifacts.url}: {error}. They are kept in memory "
                f"(up to max_buffer_rows={self.max_buffer_rows}, oldest dropped first) and "
                "retried every flush_interval; check the artifact store."
            ) from error

    def _write(
        self, requests: deque[tuple[Any, ...]], feedback: deque[tuple[Any, ...]]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int, Exception | None]:
        """Write one part per (kind, hour); return what was not written, rows written, error.

        After the first failed write the rest are not tried (the store is likely down).
        Rows that cannot become a table at all are dropped (logged), never retried forever.
        """
        artifacts = self.store.artifacts
        groups: list[tuple[str, int, list[tuple[Any, ...]]]] = []
        for kind, entries in ((PREDICTIONS, requests), (FEEDBACK, feedback)):
            by_hour: dict[int, list[tuple[Any, ...]]] = {}
            for e in entries:
                by_hour.setdefault(e[0] // HOUR_US, []).append(e)
            groups.extend((kind, hour, by_hour[hour]) for hour in sorted(by_hour))
        kept: dict[str, list[tuple[Any, ...]]] = {PREDICTIONS: [], FEEDBACK: []}
        written = 0
        error: Exception | None = None
        for kind, hour, entries in groups:
            if error is not None:
                kept[kind].extend(entries)
                continue
            data, rows, failure = self._encode(kind, entries)
            if failure is not None:
                log.error(
                    "dropping %d %s rows of %r that do not convert",
                    rows,
                    kind,
                    self.endpoint,
                    exc_info=failure,
                )
                with self._lock:
                    self.rows_dropped += rows
                continue
            try:
                if not self._marked:
                    ensure_endpoint(artifacts, self.endpoint)
                    self._marked = True
                table, encoded = data
                path = store_part(artifacts, kind, self.endpoint, hour, encoded)
                self.compactor.wrote(kind, hour, path, table)
            except Exception as e:
                error = e
                kept[kind].extend(entries)
            else:
                written += rows
        return kept[PREDICTIONS], kept[FEEDBACK], written, error

    def _encode(
        self, kind: str, entries: list[tuple[Any, ...]]
    ) -> tuple[tuple[pa.Table, bytes] | None, int, Exception | None]:
        """The table and part-file bytes of one (kind, hour) group of buffered entries, its
        row count, and the error when the entries do not convert.

        Two steps of ``encode_on`` (the table, then its Parquet bytes; ~0.5 ms and ~0.3 ms
        for 400 one-row requests), so that between model calls neither holds the next
        request up for long. Neither has side effects (see ``Batcher.run_between``).
        """
        run = self.encode_on or _call
        try:
            if kind == PREDICTIONS:
                table = run(lambda: prediction_table(self.endpoint, entries))
            else:
                table = run(lambda: feedback_table(entries))
            return (table, run(lambda: encode_part(kind, table))), table.num_rows, None
        except Exception as error:
            rows = sum(e[1] for e in entries) if kind == PREDICTIONS else len(entries)
            return None, rows, error

    # -- thread ---------------------------------------------------------------------------

    def start(self) -> PredictionLog:
        """Start the daemon flusher thread (idempotent; a closed log does not restart)."""
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name=f"loopwise-predictions-{self.endpoint}", daemon=True
                )
                self._thread.start()
        return self

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            if failing:  # no tight retry loop while the store is down, however full
                self._stop.wait(self.flush_interval)
            else:
                self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.flush()
            except Exception as e:
                (log.debug if failing else log.warning)(
                    "prediction log of %r: write failed, will retry: %s", self.endpoint, e
                )
                failing = True
            else:
                if failing:
                    log.warning("prediction log of %r: writes work again", self.endpoint)
                failing = False
                self.compact()
            if self.rows_dropped > self._dropped_reported:
                log.warning(
                    "prediction log of %r dropped %d rows (buffer over max_buffer_rows=%d)",
                    self.endpoint,
                    self.rows_dropped - self._dropped_reported,
                    self.max_buffer_rows,
                )
                self._dropped_reported = self.rows_dropped

    def close(self) -> None:
        """Stop the thread and write everything buffered (nothing is lost on a clean exit).

        Raises :class:`StoreUnavailable` if the final write fails; the rows stay buffered
        and a later ``flush()`` or ``close()`` tries again.
        """
        with self._lock:
            thread = self._thread
            self._stop.set()
            self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)
        self.flush()
        self.compact(final=True)

    def compact(self, *, final: bool = False) -> None:
        """Merge this log's small part files that are due (all of them with ``final``); see
        :mod:`loopwise.predictions.compaction`. A failure is logged, never
        raised: the parts stay as they are, and readers read them as before."""
        with self._flush_lock:
            try:
                self.compactor.run(now_us(), final=final)
            except Exception as e:
                log.warning("prediction log of %r: merging part files failed: %s", self.endpoint, e)

    def __enter__(self) -> PredictionLog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class RequestIndex:
    """Finds a request id in the prediction files of the hour it was made in.

    The id's time (a loopwise id starts with its creation time) names the hour; the
    neighbouring hour nearest to it is searched too, for a timestamp taken a moment before
    or after the id. Per part file, the smallest and largest request id are kept once it
    has been read, so a later look-up reads only the few files whose range holds the id.
    """

    def __init__(self, artifacts: ArtifactStore, endpoint: str, max_hours: int = 24) -> None:
        self._artifacts = artifacts
        self._endpoint = endpoint
        self._max_hours = max_hours
        self._ranges: dict[int, dict[str, tuple[str, str] | None]] = {}

    def contains(self, request_id: str, time_ms: int) -> bool:
        return self.rows(request_id, time_ms) is not None

    def rows(self, request_id: str, time_ms: int) -> int | None:
        """The rows logged for ``request_id`` (made at ``time_ms``); None: not found."""
        hour, offset = divmod(time_ms * 1000, HOUR_US)
        neighbour = hour - 1 if offset < HOUR_US // 2 else hour + 1
        for h in (hour, neighbour):
            rows = self._in_hour(h, request_id)
            if rows is not None:
                return rows
        return None

    def _in_hour(self, hour: int, request_id: str) -> int | None:
        prefix = partition_dir(PREDICTIONS, self._endpoint, hour)
        ranges = self._ranges.pop(hour, {})
        self._ranges[hour] = ranges  # most recently used last
        while len(self._ranges) > self._max_hours:
            del self._ranges[next(iter(self._ranges))]
        # listed again when a part is merged away under us
        return relisting(lambda: self._search(prefix, ranges, request_id))

    def _search(self, prefix: str, ranges: dict[str, Any], request_id: str) -> int | None:
        for path in self._artifacts.list(prefix):
            if part_hour(path) is None:
                continue
            if path in ranges:
                bounds = ranges[path]
                if bounds is None or not bounds[0] <= request_id <= bounds[1]:
                    continue
            table = read_part(self._artifacts, path, ["request_id", "row"])
            ids = table.column("request_id")
            low, high = pc.min_max(ids).values()
            ranges[path] = None if low.as_py() is None else (low.as_py(), high.as_py())
            mine = pc.equal(ids, request_id)
            if pc.any(mine).as_py():
                last_row = pc.max(pc.filter(table.column("row"), mine)).as_py()
                return 1 if last_row is None else last_row + 1
        return None


def _bad_call(method: str, request_id: Any, timestamp_us: Any, **values: Any) -> InvalidInput:
    """The clear error for a log_* call that breaks the rules (off the fast path)."""
    func = f"PredictionLog.{method}"
    if not isinstance(request_id, str):
        return bad_param(func, "request_id", "a request id (str)", request_id)
    if isinstance(timestamp_us, bool) or not isinstance(timestamp_us, int):
        return bad_param(func, "timestamp_us", "an int", timestamp_us)
    if not MIN_US <= timestamp_us < MAX_US:
        return bad_param(
            func,
            "timestamp_us",
            "microseconds since the epoch (UTC), such as time.time_ns() // 1000, between "
            "2000-01-01 and 9999-12-31 (not seconds, milliseconds or nanoseconds)",
            timestamp_us,
        )
    if "inputs" in values and not isinstance(values["inputs"], list | dict):
        return bad_param(
            func,
            "inputs",
            "a list of records or a dict of columns, as the client sent them",
            values["inputs"],
        )
    if "outputs" in values:
        return bad_param(func, "outputs", "a list of predictions", values["outputs"])
    if "error_type" in values:
        return bad_param(func, "error_type", "a str", values["error_type"])
    if values.get("label", 0) is None:
        return bad_param(func, "label", "a value (not None)", None)
    return bad_param(func, "row", "None (every row) or an int in [0, 2**31)", values.get("row"))


# -- service functions ------------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedRows:
    """What a ``log_predictions`` / ``log_feedback`` call wrote.

    ``request_id`` is the id shared by the rows when the frame had no ``request_id``
    column (rows are then numbered 0..n-1): use it with ``row`` to log feedback.
    """

    rows: int
    files: tuple[str, ...]
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data: what the REST API answers for a logged frame."""
        return {"rows": self.rows, "files": list(self.files), "request_id": self.request_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoggedRows:
        """The record :meth:`to_dict` wrote (what the remote client reads back)."""
        return cls(int(data["rows"]), tuple(data.get("files") or ()), data.get("request_id"))


def log_predictions(
    store: Store,
    endpoint: str,
    frame: Any,
    *,
    model: Any = None,
    variant: str = "batch",
    timestamp: datetime | None = None,
    model_version_id: str | None = None,
) -> LoggedRows:
    """Log a frame of predictions (batch scoring, external systems), written now.

    ``frame`` (pandas, Polars or Arrow) has a ``prediction`` column and the feature columns
    (stored as ``input.<name>``; columns already named so keep their name), optionally
    ``request_id``, ``row``, ``timestamp`` (timezone-aware), ``probabilities`` and
    ``latency_ms``. ``model`` is ``"name/version"`` or a ModelVersion; a registered model
    must name one of its versions (NotFound otherwise), a name registered nowhere here is a
    model served elsewhere. ``timestamp`` applies to every row when the frame has no such
    column (default: now). One file per hour. ``model_version_id`` is the id of the
    version ``model`` names when ``model`` is given as its label (a server receives the
    label and the id of the ModelVersion a remote client was given).
    """
    func = "log_predictions"
    check_endpoint(endpoint, func)
    if not isinstance(variant, str) or not variant:
        raise bad_param(func, "variant", "a non-empty str", variant)
    label, version_id = model_fields(model, func)
    if model_version_id is not None:
        if label is None or version_id is not None:
            raise bad_param(
                func, "model_version_id", "given only with model as 'name/version'", model
            )
        version_id = model_version_id
    if label is not None and version_id is None:
        version_id = _registered_version_id(store, label, func)
    given_us = check_time(timestamp, "timestamp", func)
    table, batch_id = predictions_from_frame(
        to_polars(frame, what=f"the frame given to {func}"),
        endpoint,
        variant=variant,
        model=label,
        model_version_id=version_id,
        timestamp_us=given_us,
    )
    files = write_frame(store.artifacts, PREDICTIONS, endpoint, table)
    return LoggedRows(table.height, files, batch_id)


_MODEL_LABEL = re.compile(r"(?P<name>[^/\s]+)/(?P<version>[1-9][0-9]{0,9})")


def _registered_version_id(store: Store, label: str, func: str) -> str | None:
    """The id of model version ``label`` ("name/version"), checked against the registry.

    A model registered here must name one of its versions (a wrong number is an error, not
    a new series in the log). A name not registered here is taken as a model served
    elsewhere (no id), unless it is one typo away from a registered name.
    """
    from loopwise.registry.models import get_model_version, list_models

    match = _MODEL_LABEL.fullmatch(label)
    if match is None:
        raise bad_param(
            func, "model", "'name/version' (such as 'credit-risk/3'), a ModelVersion or None", label
        )
    name = match["name"]
    try:  # one query when the version is registered (the usual case)
        return get_model_version(store, f"models:/{name}/{match['version']}").id
    except NotFound:
        names = [m.name for m in list_models(store)]
        if name in names:
            raise  # the model is registered, the version is not
    close = closest(name, names)
    if close:
        raise NotFound(
            f"{func}: model {name!r} is not registered — did you mean {close!r}? Name a "
            "registered model's version, or a name no registered model is close to for a "
            "model served elsewhere."
        )
    return None


def log_feedback(store: Store, endpoint: str, frame: Any) -> LoggedRows:
    """Log ground-truth labels: ``request_id`` and ``label`` columns, optionally ``row``
    (null: every row of the request) and ``timestamp`` (timezone-aware; default now)."""
    check_endpoint(endpoint, "log_feedback")
    table = feedback_from_frame(to_polars(frame, what="the frame given to log_feedback"))
    return LoggedRows(table.height, write_frame(store.artifacts, FEEDBACK, endpoint, table))


def read_predictions(
    store: Store, endpoint: str, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Predictions with a timestamp in [start, end), with their feedback, as pandas.

    ``start`` and ``end`` are timezone-aware datetimes (None: unbounded); naive ones are
    refused. Each row gets ``label`` and ``feedback_timestamp`` from the latest feedback
    for its request (for its row, or for all rows of the request). Sorted by time.
    """
    return read_predictions_frame(store, endpoint, start, end).to_pandas()


def read_predictions_frame(
    store: Store,
    endpoint: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    columns: Sequence[str] | None = None,
    feedback: bool | LatestFeedback = True,
) -> pl.DataFrame:
    """:func:`read_predictions` as Polars, reading only ``columns`` (plus request_id, row and
    timestamp) when given, and without the feedback join when ``feedback`` is False.

    Only the hour partitions overlapping [start, end) are listed and read; feedback is read
    from one hour before ``start`` on (labels are logged after their predictions). Several
    reads of one range (a chunk at a time) pass ``feedback=read_feedback(store, endpoint,
    start)`` instead, so that the feedback files are read once for all of them; the result
    is the same, but for feedback logged in between (see :func:`read_feedback`).
    """
    func = "read_predictions"
    check_endpoint(endpoint, func)
    start_us = check_time(start, "start", func)
    end_us = check_time(end, "end", func)
    if start_us is not None and end_us is not None and end_us < start_us:
        raise bad_param(func, "end", f"at or after start ({start})", end)
    if columns is not None and (
        isinstance(columns, str) or not all(isinstance(c, str) for c in columns)
    ):
        raise bad_param(func, "columns", "a list of column names or None", columns)
    if isinstance(feedback, LatestFeedback):
        if feedback.endpoint != endpoint or not feedback.covers(feedback_since(start_us)):
            raise bad_param(
                func,
                "feedback",
                f"True, False or read_feedback(store, {endpoint!r}, start) with a start at "
                f"or before this read's start ({start})",
                feedback,
            )
    elif not isinstance(feedback, bool):
        raise bad_param(func, "feedback", "True, False or a read_feedback(...)", feedback)
    return read_log(store.artifacts, endpoint, start_us, end_us, columns, feedback=feedback)


def read_feedback(store: Store, endpoint: str, start: datetime | None = None) -> LatestFeedback:
    """The feedback that :func:`read_predictions_frame` joins to predictions from ``start``
    on, read once, for several reads of the log (``feedback=`` of each).

    Why: a day's labels may arrive any time later, so each read joins the feedback from
    an hour before its start to the end of the log; a backfill reading 30 days a day at a
    time read the last days' feedback files up to 30 times. Held: the latest label per
    (request, row) from an hour before ``start`` on (see :class:`LatestFeedback`).
    Feedback logged after this call is not in it.
    """
    func = "read_feedback"
    check_endpoint(endpoint, func)
    start_us = check_time(start, "start", func)
    require_endpoint(store.artifacts, endpoint)
    return LatestFeedback.read(store.artifacts, endpoint, feedback_since(start_us))


def prediction_endpoints(store: Store) -> list[str]:
    """The endpoints that have a prediction log (or feedback) in ``store``, sorted."""
    return list_endpoints(store.artifacts)


def _call(fn: Callable[[], Any]) -> Any:
    return fn()
