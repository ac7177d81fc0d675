"""The background writer: metric points off the caller's thread, and run heartbeats.

``log_metric`` appends a point to an in-memory buffer and returns. The buffer is a queue
of segments: points go into the open segment, which is sealed once it holds
``SEGMENT_POINTS`` points (by ``add``) or is a quarter of ``flush_interval`` old (by a
daemon thread). The thread writes sealed segments oldest first, **one transaction per
segment**. Why segments, and not the whole buffer in one transaction as before:

- The loss window. A SIGKILL loses what is not committed: the open segment and the
  sealed ones still waiting. With the whole buffer in one transaction, a tight loop's
  flush grew with the buffer, and everything logged during a long flush waited for the
  next one: on PostgreSQL that lost more than ``flush_interval`` of points. A segment is
  small enough to be written in a fraction of the interval, so the newest committed
  point is at most ``flush_interval`` old (docs/performance.md has the figures).
- Order. Segments are committed in the order they were sealed, so what a crash keeps of
  each series is an unbroken prefix, and the store is never half-written (a segment is
  one transaction). After a failed write the segment stays at the front and is retried
  first.

``flush()`` (also called at run end and at interpreter exit) seals the open segment and
writes every segment synchronously. When ``buffer_max_points`` points would be waiting,
the caller writes them itself (back-pressure instead of unbounded memory).

The same thread writes a heartbeat for the runs this process has open, so a run whose
process died is reported LOST instead of RUNNING forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from loopwise.errors import LoopwiseError, StoreUnavailable
from loopwise.store import Store
from loopwise.tracking import runs as run_service
from loopwise.tracking.metric_store import (
    BatchKey,
    BatchRow,
    Point,
    SeriesKey,
    series_arrays,
    write_points,
)

log = logging.getLogger("loopwise.tracking")

SEGMENT_POINTS = 50_000  # points per transaction at most
SEAL_AGE = 0.25  # the open segment is sealed at this fraction of flush_interval


@dataclass(frozen=True)
class _Segment:
    """Points logged between two seals: written in one transaction."""

    singles: dict[SeriesKey, list[Point]]
    batches: dict[BatchKey, list[BatchRow]]
    count: int


class MetricWriter:
    """Buffers metric points for one store and writes them from a daemon thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # The open segment's age at most; the rest of flush_interval is for writing it.
        self._seal_age = store.settings.flush_interval * SEAL_AGE
        self._max_points = store.settings.buffer_max_points
        self._batch = min(SEGMENT_POINTS, self._max_points)
        self._heartbeat_interval = store.settings.heartbeat_interval
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        # The open segment (what ``add`` appends to) ...
        self._singles: dict[SeriesKey, list[Point]] = {}
        self._batches: dict[BatchKey, list[BatchRow]] = {}
        self._count = 0
        self._opened_at = time.monotonic()
        # ... and the sealed ones, oldest first, each removed once committed.
        self._sealed: deque[_Segment] = deque()
        self._sealed_points = 0
        self._series_ids: dict[SeriesKey, int] = {}
        self._live_runs: set[str] = set()
        self._last_heartbeat = time.monotonic()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.last_error: BaseException | None = None
        self.flushed_points = 0
        self.transactions = 0

    # -- hot path -------------------------------------------------------------------------

    def add(self, run_id: str, key: str, step: int, timestamp: int, value: float) -> None:
        """Buffer one point, without I/O. Every ``SEGMENT_POINTS`` points it seals the segment
        and wakes the thread; only when ``buffer_max_points`` would be waiting (the database
        is slow or down) does it write them itself (back-pressure)."""
        with self._lock:
            points = self._singles.get((run_id, key))
            if points is None:
                points = self._singles[(run_id, key)] = []
            points.append((step, timestamp, value))
            self._count += 1
            count = self._count
        if count >= self._batch:
            self._after_add()

    def add_many(
        self, run_id: str, keys: tuple[str, ...], values: tuple[float, ...], step: int, ts: int
    ) -> None:
        """Buffer one point for each of ``keys``, sharing a step and a timestamp."""
        with self._lock:
            rows = self._batches.get((run_id, keys))
            if rows is None:
                rows = self._batches[(run_id, keys)] = []
            rows.append((step, ts, values))
            self._count += len(keys)
            count = self._count
        if count >= self._batch:
            self._after_add()

    def _after_add(self) -> None:
        self.start()
        with self._lock:
            if self._count >= self._batch:
                self._seal()
            # Writing now keeps the waiting points under buffer_max_points even after the
            # next segment fills.
            full = self._sealed_points > self._max_points - self._batch
        if full:
            self.flush()  # back-pressure: the caller waits for the database
        else:
            self._wake.set()

    def _seal(self) -> None:
        """Close the open segment and queue it (the caller holds ``_lock``)."""
        self._opened_at = time.monotonic()
        if not self._count:
            return
        self._sealed.append(_Segment(self._singles, self._batches, self._count))
        self._sealed_points += self._count
        self._singles, self._batches, self._count = {}, {}, 0

    # -- flushing -------------------------------------------------------------------------

    @property
    def pending_points(self) -> int:
        return self._sealed_points + self._count

    def flush(self) -> None:
        """Write every buffered point now; raise :class:`StoreUnavailable` if that fails."""
        with self._flush_lock:
            with self._lock:
                self._seal()
                waiting = len(self._sealed)
            self._write_sealed(waiting)

    def _write_sealed(self, limit: int | None = None) -> None:
        """Commit sealed segments oldest first, one transaction each: ``limit`` of them, or
        until none is left (then also those sealed meanwhile).

        A segment leaves the queue only once committed: after a failure it is still at the
        front, so the retry writes the same points first and the order of logging holds.
        The caller holds ``_flush_lock`` (only its holder removes segments).
        """
        written = 0
        while limit is None or written < limit:
            with self._lock:
                if not self._sealed:
                    return
                segment = self._sealed[0]
            try:
                series = series_arrays(segment.singles, segment.batches)
                with self.store.db.write() as conn:
                    ids = write_points(conn, series, self._series_ids)
            except Exception as e:
                self.last_error = e
                if isinstance(e, LoopwiseError):
                    raise
                raise StoreUnavailable(
                    f"Could not write {self.pending_points} metric points to "
                    f"{self.store.db.safe_url}: {e}. They are kept in memory and retried; "
                    "check the database."
                ) from e
            with self._lock:
                self._sealed.popleft()
                self._sealed_points -= segment.count
            self._series_ids.update(ids)
            self.flushed_points += segment.count
            self.transactions += 1
            self.last_error = None
            written += 1

    # -- runs this process keeps alive ----------------------------------------------------

    def track_run(self, run_id: str) -> None:
        self._live_runs.add(run_id)
        self.start()

    def untrack_run(self, run_id: str) -> None:
        self._live_runs.discard(run_id)

    def heartbeat_now(self) -> None:
        self._last_heartbeat = time.monotonic()
        live = list(self._live_runs)
        if live:
            run_service.heartbeat(self.store, live)

    # -- thread ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the daemon thread if it is not running."""
        if self._thread is not None or self._stopped:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._loop, name="loopwise-writer", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stopped:
            wait = self._seal_age - (time.monotonic() - self._opened_at)
            if self.last_error is not None:  # the database fails: retry once an interval
                wait = self._seal_age / SEAL_AGE
            self._wake.wait(max(0.0, min(wait, self._heartbeat_interval)))
            self._wake.clear()
            self._guard(self._background_flush)
            if time.monotonic() - self._last_heartbeat >= self._heartbeat_interval:
                self._guard(self.heartbeat_now)

    def _background_flush(self) -> None:
        """Seal the open segment once it is ``_seal_age`` old, then write what is sealed."""
        with self._flush_lock:
            with self._lock:
                if time.monotonic() - self._opened_at >= self._seal_age:
                    self._seal()
            self._write_sealed()

    def _guard(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as e:  # keep the thread alive; the points stay buffered
            log.warning("loopwise background write failed (will retry): %s", e)

    def close(self) -> None:
        """Flush and stop the thread (at interpreter exit or when reconfiguring)."""
        self._stopped = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.flush()
