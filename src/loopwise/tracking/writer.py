"""The background writer: metric points off the caller's thread, and run heartbeats.

``log_metric`` appends a point to an in-memory buffer and returns; a daemon thread writes
the buffer in one transaction at least every ``flush_interval`` seconds, or sooner when
``FLUSH_BATCH`` points are waiting. ``flush()`` (also called at run end and at interpreter
exit) writes synchronously. If more than ``buffer_max_points`` points are waiting, the
caller flushes itself (back-pressure instead of unbounded memory).

Loss window: a process killed with SIGKILL loses the points logged since the last flush,
at most ``flush_interval`` seconds of them; the store itself is never half-written
because each flush is one transaction.

The same thread writes a heartbeat for the runs this process has open, so a run whose
process died is reported LOST instead of RUNNING forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

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

FLUSH_BATCH = 200_000


class MetricWriter:
    """Buffers metric points for one store and writes them from a daemon thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._interval = store.settings.flush_interval
        self._max_points = store.settings.buffer_max_points
        self._batch = min(FLUSH_BATCH, self._max_points)
        self._heartbeat_interval = store.settings.heartbeat_interval
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._singles: dict[SeriesKey, list[Point]] = {}
        self._batches: dict[BatchKey, list[BatchRow]] = {}
        self._count = 0
        self._series_ids: dict[SeriesKey, int] = {}
        self._live_runs: set[str] = set()
        self._last_heartbeat = time.monotonic()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.last_error: BaseException | None = None
        self.flushed_points = 0

    # -- hot path -------------------------------------------------------------------------

    def add(self, run_id: str, key: str, step: int, timestamp: int, value: float) -> None:
        """Buffer one point. Never touches the database unless the buffer is full."""
        with self._lock:
            points = self._singles.get((run_id, key))
            if points is None:
                points = self._singles[(run_id, key)] = []
            points.append((step, timestamp, value))
            self._count += 1
            count = self._count
        if count >= self._batch:
            self._after_add(count)

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
            self._after_add(count)

    def _after_add(self, count: int) -> None:
        self.start()
        if count >= self._max_points:
            self.flush()  # back-pressure: the caller waits for the disk
        else:
            self._wake.set()

    # -- flushing -------------------------------------------------------------------------

    @property
    def pending_points(self) -> int:
        return self._count

    def flush(self) -> None:
        """Write every buffered point now; raise :class:`StoreUnavailable` if that fails."""
        with self._flush_lock:
            with self._lock:
                singles, self._singles = self._singles, {}
                batches, self._batches = self._batches, {}
                count, self._count = self._count, 0
            if not count:
                return
            try:
                series = series_arrays(singles, batches)
                with self.store.db.write() as conn:
                    ids = write_points(conn, series, self._series_ids)
            except Exception as e:
                self._restore(singles, batches, count)
                self.last_error = e
                if isinstance(e, LoopwiseError):
                    raise
                raise StoreUnavailable(
                    f"Could not write {count} metric points to {self.store.db.safe_url}: {e}. "
                    "They are kept in memory and retried; check the database."
                ) from e
            except BaseException:
                self._restore(singles, batches, count)
                raise
            self._series_ids.update(ids)
            self.flushed_points += count
            self.last_error = None

    def _restore(
        self,
        singles: dict[SeriesKey, list[Point]],
        batches: dict[BatchKey, list[BatchRow]],
        count: int,
    ) -> None:
        """Put points back in front of anything logged meanwhile, keeping their order."""
        with self._lock:
            for skey, points in self._singles.items():
                singles.setdefault(skey, []).extend(points)
            for bkey, rows in self._batches.items():
                batches.setdefault(bkey, []).extend(rows)
            self._singles, self._batches = singles, batches
            self._count += count

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
            self._wake.wait(min(self._interval, self._heartbeat_interval))
            self._wake.clear()
            self._guard(self.flush)
            if time.monotonic() - self._last_heartbeat >= self._heartbeat_interval:
                self._guard(self.heartbeat_now)

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
