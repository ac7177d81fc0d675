"""Cutting the prediction log into windows, and windows into one batch per model version.

Time windows are aligned to the window size from the epoch, in UTC (``1h`` windows start
on the hour, ``1d`` at midnight UTC). A run covers every window that intersects
``[start, end)``, each read whole, and only windows already closed (ending at or before
now). Windows with no predictions still get a result (``rows = 0``): silence is news too.

Count windows hold ``n`` predictions each, cut from the rows of the range in log order
(time, then writing order); a window never splits one instant, so predictions logged at the
same microsecond that straddle its end all go in (it may hold more than ``n``), and so its
``[start, end)`` -- first row's time to just after the last's -- never overlaps the next.
The last, incomplete window of a range is left for a later run.

The log is read a chunk at a time (about a day, or one window when windows are longer) so
a long backfill runs in bounded memory; count windows carry the incomplete tail of a
chunk into the next. The feedback is read once per pass, before the first chunk, and
joined to each (:func:`~loopwise.predictions.log.read_feedback`): labels for a
day's predictions may arrive any time later, so a join per chunk would read all the later
feedback files once per chunk. Feedback logged during a pass is left for the next one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from loopwise.clock import to_datetime
from loopwise.monitoring.config import Monitor
from loopwise.predictions.log import (
    LatestFeedback,
    read_feedback,
    read_predictions_frame,
)
from loopwise.store import Store

US = 1_000_000
CHUNK_US = 86_400 * US  # a chunk reads about a day of the log (at least one window)
UNKNOWN_MODEL = ""


@dataclass(frozen=True)
class Span:
    """One window: ``[start_us, end_us)``."""

    start_us: int
    end_us: int

    @property
    def seconds(self) -> float:
        return (self.end_us - self.start_us) / US

    @property
    def start(self) -> datetime:
        moment = to_datetime(self.start_us)
        assert moment is not None
        return moment

    @property
    def end(self) -> datetime:
        moment = to_datetime(self.end_us)
        assert moment is not None
        return moment


@dataclass
class Batch:
    """The rows of one model version over the windows of a chunk.

    ``window[i]`` is row i's position in ``spans``; ``spans`` are the chunk's windows (a
    version may have no row in some of them).
    """

    frame: pl.DataFrame
    window: np.ndarray
    spans: list[Span]
    model: str
    model_version_id: str | None


@dataclass
class Chunk:
    """The windows of one read of the log: live rows and (if monitored) shadows' rows."""

    spans: list[Span]
    live: list[Batch]
    shadows: list[Batch]


def log_columns(monitor: Monitor) -> list[str] | None:
    """The log columns a monitor reads; None: all of them (features default to every input)."""
    if monitor.features is None:
        return None
    columns = [
        "model", "model_version_id", "shadow", "error", "latency_ms", "prediction",
        "probabilities", "variant",
    ]  # fmt: skip
    names = [*monitor.features, *slice_columns(monitor.slices)]
    columns.extend(f"input.{n}" for n in dict.fromkeys(names) if n != "variant")
    return list(dict.fromkeys(columns))


def slice_columns(specs: Sequence[object]) -> list[str]:
    """The columns slice specs read (a crossed spec reads two)."""
    names: list[str] = []
    for spec in specs:
        if isinstance(spec, str):
            names.append(spec)
        elif isinstance(spec, tuple):
            names.append(spec[0])
            if isinstance(spec[1], str):
                names.append(spec[1])
    return list(dict.fromkeys(names))


def needs_feedback(monitor: Monitor) -> bool:
    """Labels are read when performance or custom checks may use them."""
    return monitor.checks.performance_enabled or bool(monitor.checks.custom)


def chunks(
    store: Store, monitor: Monitor, start_us: int, end_us: int, now_us: int
) -> Iterator[Chunk]:
    """The closed windows intersecting [start, end), a chunk of the log at a time."""
    if monitor.window.is_count:
        yield from _count_chunks(store, monitor, start_us, min(end_us, now_us))
        return
    size = (monitor.window.seconds or 0) * US
    first = start_us // size * size
    last = min(-(-end_us // size) * size, now_us // size * size)
    step = max(1, CHUNK_US // size) * size
    labels = _feedback(store, monitor, first) if first < last else False
    for a in range(first, last, step):
        b = min(a + step, last)
        spans = [Span(s, s + size) for s in range(a, b, size)]
        frame = _read(store, monitor, a, b, labels)
        w = ((_micros(frame) - a) // size).astype(np.int64)
        yield _split(frame, w, spans, monitor.include_shadows)


def _count_chunks(store: Store, monitor: Monitor, start_us: int, end_us: int) -> Iterator[Chunk]:
    n = monitor.window.rows or 1
    carry = carry_shadows = None
    labels = _feedback(store, monitor, start_us) if start_us < end_us else False
    for a in range(start_us, end_us, CHUNK_US):
        b = min(a + CHUNK_US, end_us)
        frame = _read(store, monitor, a, b, labels)
        shadow = _shadow_mask(frame)
        live, shadows = frame.filter(~shadow), frame.filter(shadow)
        if carry is not None:
            live = pl.concat([carry, live], how="diagonal_relaxed")
            shadows = pl.concat([carry_shadows, shadows], how="diagonal_relaxed")
        ts = _micros(live)
        cuts = _count_cuts(ts, n)
        used = cuts[-1] if cuts else 0
        carry = live.slice(used)
        if not cuts:
            carry_shadows = shadows
            continue
        live = live.slice(0, used)
        bounds = [0, *cuts]
        spans = [Span(int(ts[i]), int(ts[j - 1]) + 1) for i, j in zip(bounds, cuts, strict=False)]
        w = np.repeat(np.arange(len(cuts)), np.diff(bounds))
        # a shadow row goes in the live window of its time; later ones wait for the next
        sts = _micros(shadows)
        carry_shadows = shadows.filter(pl.Series(sts >= spans[-1].end_us))
        shadow_batches: list[Batch] = []
        if monitor.include_shadows and shadows.height:
            starts = np.array([s.start_us for s in spans])
            ends = np.array([s.end_us for s in spans])
            sw = np.searchsorted(starts, sts, side="right") - 1
            inside = (sw >= 0) & (sts < ends[np.maximum(sw, 0)])
            shadow_batches = _by_model(shadows.filter(pl.Series(inside)), sw[inside], spans)
        yield Chunk(spans, _by_model(live, w, spans), shadow_batches)


def _count_cuts(ts: np.ndarray, n: int) -> list[int]:
    """End positions of the complete count windows over sorted times ``ts``."""
    cuts = []
    pos = 0
    while pos + n <= ts.size:
        last = ts[pos + n - 1]
        end = int(np.searchsorted(ts, last, side="right"))  # never split one instant
        cuts.append(end)
        pos = end
    return cuts


def _feedback(store: Store, monitor: Monitor, start_us: int) -> LatestFeedback | bool:
    """The feedback every chunk of a pass from ``start_us`` joins, read once; False when
    the monitor uses no labels."""
    if not needs_feedback(monitor):
        return False
    return read_feedback(store, monitor.endpoint, to_datetime(start_us))


def _read(
    store: Store, monitor: Monitor, a: int, b: int, labels: LatestFeedback | bool
) -> pl.DataFrame:
    start, end = to_datetime(a), to_datetime(b)
    return read_predictions_frame(
        store, monitor.endpoint, start, end, columns=log_columns(monitor), feedback=labels
    )


def _micros(frame: pl.DataFrame) -> np.ndarray:
    return frame["timestamp"].dt.epoch("us").to_numpy()


def _shadow_mask(frame: pl.DataFrame) -> pl.Series:
    if "shadow" not in frame.columns:
        return pl.Series("shadow", [False] * frame.height)
    return frame["shadow"].fill_null(False)


def _split(frame: pl.DataFrame, w: np.ndarray, spans: list[Span], shadows: bool) -> Chunk:
    shadow = _shadow_mask(frame)
    mask = shadow.to_numpy()
    live = _by_model(frame.filter(~shadow), w[~mask], spans)
    shadow_batches = _by_model(frame.filter(shadow), w[mask], spans) if shadows else []
    return Chunk(spans, live, shadow_batches)


def _by_model(frame: pl.DataFrame, w: np.ndarray, spans: list[Span]) -> list[Batch]:
    """One batch per model version ("name/version"; "" when the log names none)."""
    if frame.height == 0:
        return []
    model = frame["model"].fill_null(UNKNOWN_MODEL) if "model" in frame.columns else None
    if model is None or model.n_unique() == 1:
        name = UNKNOWN_MODEL if model is None else model[0]
        return [Batch(frame, w, spans, name, _version_id(frame))]
    out = []
    keyed = frame.with_columns(_model=model, _w=pl.Series(w))
    for part in keyed.partition_by("_model", maintain_order=True):
        name = part["_model"][0]
        window = part["_w"].to_numpy()
        part = part.drop("_model", "_w")
        out.append(Batch(part, window, spans, name, _version_id(part)))
    return out


def _version_id(frame: pl.DataFrame) -> str | None:
    if "model_version_id" not in frame.columns:
        return None
    ids = frame["model_version_id"].drop_nulls()
    return ids[0] if ids.len() else None


def empty_spans(spans: Sequence[Span], batches: Sequence[Batch]) -> list[int]:
    """Positions of the spans no batch has a row in."""
    seen = np.zeros(len(spans), dtype=bool)
    for batch in batches:
        seen[np.unique(batch.window)] = True
    return [int(i) for i in np.flatnonzero(~seen)]
