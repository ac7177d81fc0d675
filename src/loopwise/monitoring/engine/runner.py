"""Running a monitor: the prediction log, window by window, into stored figures.

:func:`run_monitor` evaluates every closed window intersecting ``[start, end)`` (a
backfill) and :func:`watch_monitor` keeps doing so as windows close. Each pass reads the
log a chunk at a time (:mod:`.windows`) with only the columns the monitor needs, leaves
shadows' answers out (or evaluates them as the monitor ``<name>.shadow`` with
``include_shadows``), splits every window by the model version that answered -- a window
spanning a swap gives one :class:`~.results.WindowResult` per version -- and computes its
figures overall and per slice in vectorised passes (:mod:`.batch`). The reference of
each version is resolved, binned and baselined once (:mod:`.profile`).

Every window is stored in one transaction that replaces what was stored for it
(:func:`.storage.save_window`): a re-run gives the same rows. The baseline of each model
version seen is stored again with every run (:func:`.storage.baseline`).

A figure that cannot be computed does not stop the run: feedback labels that are not the
model's (0/1 predictions, Yes/No feedback) leave the windows without ``perf.*`` and with a
problem saying so (:attr:`.results.WindowResult.problems`, stored and logged once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from loopwise.clock import EPOCH, now_us, to_datetime, to_us
from loopwise.errors import InvalidInput
from loopwise.monitoring import storage
from loopwise.monitoring.config import Monitor, as_monitor
from loopwise.monitoring.engine.batch import BatchFigures
from loopwise.monitoring.engine.profile import Profiles, baseline_values
from loopwise.monitoring.engine.reference import References
from loopwise.monitoring.engine.windows import CHUNK_US, US, Batch, Chunk, Span, chunks, empty_spans
from loopwise.monitoring.results import OVERALL, WindowResult
from loopwise.predictions.compaction import compact_log
from loopwise.predictions.files import HOUR_US
from loopwise.store import Store

log = logging.getLogger("loopwise.monitoring")

COMPACT_HOURS = 6  # watch: hours of the log compacted once an hour (those settled of them)

#: ``progress(windows_done, windows_total)``; the total is None for count windows.
Progress = Callable[[int, int | None], None]


class MonitorRunner:
    """Evaluates windows of one monitor; keeps its references and profiles between runs."""

    def __init__(self, store: Store, monitor: Any) -> None:
        self.store = store
        self.monitor: Monitor = as_monitor(monitor)
        self.events: list[Any] = []
        self.references = References(store, self.monitor)
        self.profiles = Profiles(self.references, self.monitor)
        self._logged: set[str] = set()

    def run(
        self,
        start: datetime,
        end: datetime | None = None,
        *,
        progress: Progress | None = None,
        now: datetime | None = None,
        changed_only: bool = False,
        alert: bool = True,
    ) -> list[WindowResult]:
        """Evaluate and store the closed windows intersecting [start, end); return them.

        With ``alert`` (the default) the monitor's alert rules then run over the live
        windows: alerts fire or resolve, are delivered, and start their actions; the
        events are in ``self.events``.

        ``now`` (default: the clock) decides which windows are closed. ``changed_only``
        skips (neither stores nor returns) windows whose rows and labelled counts per model
        version equal the stored ones.
        """
        current = now_us() if now is None else to_us(now, what="now")
        start_us = to_us(_aware(start, "start"), what="start")
        end_us = current if end is None else to_us(_aware(end, "end"), what="end")
        if end_us <= start_us:
            raise InvalidInput(f"end ({to_datetime(end_us)}) must be after start ({start}).")
        total = self._window_count(start_us, end_us, current)
        done = 0
        results: list[WindowResult] = []
        if progress is not None:
            progress(0, total)
        for chunk in chunks(self.store, self.monitor, start_us, end_us, current):
            stored = None
            if changed_only and chunk.spans:
                stored = {
                    name: storage.stored_counts(
                        self.store, name, chunk.spans[0].start_us, chunk.spans[-1].end_us
                    )
                    for name in (self.monitor.name, self.monitor.shadow_name)
                }
            for _, by_monitor in sorted(self._evaluate(chunk).items()):
                for name, items in by_monitor.items():
                    if stored is not None and _unchanged(items, stored[name]):
                        continue
                    storage.save_window(self.store, items)
                    results.extend(items)
                done += 1
                if progress is not None:
                    progress(done, total)
        self.events = self._alert(results) if alert else []
        return results

    def _alert(self, results: list[WindowResult]) -> list[Any]:
        """Turn the live windows' figures into alerts (stored, delivered, acted on)."""
        m = self.monitor
        live = [r for r in results if r.monitor == m.name]
        if not live:
            return []
        from loopwise.monitoring.alerting.alerts import evaluate_alerts

        # (without rules too: alerts of rules taken out of the config get resolved)
        return evaluate_alerts(
            self.store,
            m.name,
            m.endpoint,
            m.alert_rules,
            live,
            storage.baselines(self.store, m, slices=True) if m.alert_rules else {},
            webhooks=m.webhook_targets,
        )

    def _window_count(self, start_us: int, end_us: int, current: int) -> int | None:
        if self.monitor.window.is_count:
            return None
        size = (self.monitor.window.seconds or 1) * US
        first = start_us // size * size
        last = min(-(-end_us // size) * size, current // size * size)
        return max(0, (last - first) // size)

    def _evaluate(self, chunk: Chunk) -> dict[int, dict[str, list[WindowResult]]]:
        out: dict[int, dict[str, list[WindowResult]]] = {}
        m = self.monitor
        for name, batches in ((m.name, chunk.live), (m.shadow_name, chunk.shadows)):
            for batch in batches:
                for index, result in self._batch(batch, name):
                    out.setdefault(index, {}).setdefault(name, []).append(result)
        if not m.window.is_count:
            for index in empty_spans(chunk.spans, chunk.live):
                out.setdefault(index, {})[m.name] = [self._empty(chunk.spans[index])]
        return out

    def _batch(self, batch: Batch, name: str) -> list[tuple[int, WindowResult]]:
        profile, new = self.profiles.get(batch)
        version_id = batch.model_version_id
        if version_id is None:
            version_id = getattr(self.references.version(batch.model), "id", None)
        if new and profile.reference is not None:
            rows, labelled, values = baseline_values(profile)
            storage.save_baseline(
                self.store,
                WindowResult(
                    self.monitor.name, self.monitor.endpoint, EPOCH, EPOCH, batch.model,
                    version_id, rows, labelled, values, tuple(profile.problems),
                ),
            )  # fmt: skip
        out = []
        figures = BatchFigures(batch, profile, self.monitor)
        for index, (rows, labelled, values) in figures.values().items():
            span = batch.spans[index]
            problems = (*profile.problems, *(figures.problems if labelled else ()))
            out.append((index, WindowResult(
                name, self.monitor.endpoint, span.start, span.end, batch.model, version_id,
                rows, labelled, values, problems,
            )))  # fmt: skip
        self._log_problems(name, [*profile.problems, *figures.problems])
        return out

    def _log_problems(self, name: str, problems: list[str]) -> None:
        """Each problem once per runner, as a warning (the windows store it too)."""
        for problem in problems:
            if problem not in self._logged:
                self._logged.add(problem)
                log.warning("monitor %r: %s", name, problem)

    def _empty(self, span: Span) -> WindowResult:
        values: dict[tuple[str, str], float | None] = {
            (OVERALL, "rows"): 0.0,
            (OVERALL, "labelled"): 0.0,
        }
        if self.monitor.checks.operational:
            values[(OVERALL, "throughput_rps")] = 0.0
        return WindowResult(
            self.monitor.name, self.monitor.endpoint, span.start, span.end, "", None, 0, 0, values
        )


def _unchanged(items: list[WindowResult], stored: dict[tuple[int, str], tuple[int, int]]) -> bool:
    if not items:
        return True
    start = to_us(items[0].start)
    previous = {model: counts for (s, model), counts in stored.items() if s == start}
    return previous == {r.model: (r.rows, r.labelled) for r in items}


def _aware(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidInput(f"{name} must be a timezone-aware datetime; got {value!r}.")
    return value


def run_monitor(
    store: Store,
    monitor: Any,
    start: datetime,
    end: datetime | None = None,
    *,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> list[WindowResult]:
    """Evaluate and store every closed window of ``monitor`` intersecting [start, end).

    ``monitor`` is a :class:`~.config.Monitor`, a config mapping, a YAML path or an endpoint
    name; ``start``/``end`` are timezone-aware (``end`` default: now). Returns the results,
    oldest window first (one per model version live in it).
    """
    return MonitorRunner(store, monitor).run(start, end, progress=progress, now=now)


def watch_monitor(
    store: Store,
    monitor: Any,
    *,
    interval: float = 60.0,
    refresh: int = 1,
    start: datetime | None = None,
    on_results: Callable[[list[WindowResult]], None] | None = None,
    stop: threading.Event | None = None,
    max_ticks: int | None = None,
    clock: Callable[[], datetime] | None = None,
    compact: bool = True,
) -> None:
    """Evaluate windows as they close, every ``interval`` seconds, until ``stop`` is set
    (or ``max_ticks`` passes, or Ctrl-C).

    With ``compact``, once an hour the endpoint's log of the last hours is compacted
    (:func:`~loopwise.predictions.compaction.compact_log`: the files of
    ``log_predictions`` calls and of writers that died become one per hour), so a log fed
    by a batch job stays quick to read without a job of its own.

    Each tick evaluates the windows closed since the latest stored one and re-evaluates the
    ``refresh`` latest stored windows, storing (and passing to ``on_results``) only the
    windows that are new or whose counts changed -- late feedback raises ``labelled``. With
    nothing stored yet it starts at ``start``, else with the last closed window (count
    windows: the last day).
    """
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise InvalidInput(f"interval must be a number of seconds > 0; got {interval!r}.")
    if isinstance(refresh, bool) or not isinstance(refresh, int) or refresh < 0:
        raise InvalidInput(f"refresh must be a whole number of windows >= 0; got {refresh!r}.")
    runner = MonitorRunner(store, monitor)
    stop = stop or threading.Event()
    clock = clock or (lambda: datetime.now(UTC))
    ticks, compacted = 0, None
    while True:
        started = time.monotonic()
        now = clock()
        if compact and compacted != to_us(now) // HOUR_US:
            compacted = to_us(now) // HOUR_US
            _compact_recent(store, runner.monitor.endpoint, now)
        begin = _tick_start(store, runner.monitor, now, refresh, start)
        if begin < now:
            found = runner.run(begin, now, now=now, changed_only=True)
            if found and on_results is not None:
                on_results(found)
        ticks += 1
        if max_ticks is not None and ticks >= max_ticks:
            return
        if stop.wait(max(0.0, interval - (time.monotonic() - started))):
            return


def _compact_recent(store: Store, endpoint: str, now: datetime) -> None:
    """Compact the log's last ``COMPACT_HOURS`` hours; a failure is logged, the watch goes
    on (readers read the files as they are)."""
    end_us = to_us(now)
    try:
        start_us = end_us - COMPACT_HOURS * HOUR_US
        compact_log(store, endpoint, start_us=start_us, end_us=end_us, now=end_us)
    except Exception as e:
        log.warning("monitor watch: compacting the log of %r failed: %s", endpoint, e)


def _tick_start(
    store: Store, monitor: Monitor, now: datetime, refresh: int, start: datetime | None
) -> datetime:
    latest = storage.last_windows(store, monitor.name, max(refresh, 1))
    if latest:  # latest first: re-evaluate the oldest of the `refresh` latest
        start_us = latest[-1][0] if refresh else latest[0][1]
    elif start is not None:
        start_us = to_us(start, what="start")
    elif monitor.window.is_count:
        start_us = to_us(now) - CHUNK_US
    else:
        size = (monitor.window.seconds or 1) * US
        start_us = to_us(now) // size * size - size
    moment = to_datetime(start_us)
    assert moment is not None
    return moment
