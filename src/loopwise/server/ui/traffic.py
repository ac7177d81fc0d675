"""An endpoint's traffic and latency per time bucket, for the endpoint page's charts.

Why a module of its own: the page lists at most a few hundred predictions, but its charts
summarise every request of the range (up to :data:`MAX_RANGE`), so they read the log
once per chart, only the columns they need (no feedback join), and answer a fixed number
of buckets (at most :data:`MAX_BUCKETS`, a width from :data:`WIDTHS_S`) whatever the
traffic. A request counts once: its first row (``row`` 0), as the monitors count it; its
latency is that row's, and p50/p95 use the monitors' definition
(:func:`loopwise.monitoring.engine.checks.quantiles`), so a chart and a monitor's
``latency_p95_ms`` of the same window agree.

Each answer is ``{"step": [bucket starts, seconds since the epoch], "bucket_s": width,
"series": [{"label", "values"}]}``, drawn by ``static/ui.js``; ``series`` is empty when
the range holds no request (or, for latency, no recorded latency), and the page says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from loopwise.clock import exact_us
from loopwise.errors import InvalidInput
from loopwise.monitoring.engine.checks import LATENCY_QUANTILES, quantiles
from loopwise.predictions.log import read_predictions_frame
from loopwise.store import Store

#: The longest range a chart summarises.
MAX_RANGE = timedelta(days=31)
#: The most buckets of a chart.
MAX_BUCKETS = 200
#: Bucket widths in seconds, the narrowest that keeps a range within MAX_BUCKETS wins.
WIDTHS_S = (1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
#: Series of a traffic chart: the busiest variants; the others are summed into one line.
MAX_SERIES = 10
_LATENCY = {"p50": LATENCY_QUANTILES["latency_p50_ms"], "p95": LATENCY_QUANTILES["latency_p95_ms"]}


def check_range(start: datetime, end: datetime) -> None:
    """Refuse a range a chart cannot summarise: empty, reversed, or longer than MAX_RANGE."""
    if end <= start:
        raise InvalidInput(
            f"end {end.isoformat()} is not after start {start.isoformat()}; the range is "
            "[start, end): give an end later than its start."
        )
    if end - start > MAX_RANGE:
        raise InvalidInput(
            f"The charts cover at most {MAX_RANGE.days} days; got {end - start} from "
            f"{start.isoformat()} to {end.isoformat()}. Narrow the range."
        )


def bucket_seconds(start: datetime, end: datetime) -> int:
    """The narrowest width of WIDTHS_S that cuts [start, end) into at most MAX_BUCKETS."""
    span = (end - start).total_seconds()
    return next((w for w in WIDTHS_S if span / w <= MAX_BUCKETS), WIDTHS_S[-1])


def traffic(store: Store, endpoint: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Requests per bucket and variant (shadow calls apart, failed requests as ``errors``)."""
    frame, steps, width = _first_rows(store, endpoint, start, end, ["variant", "shadow", "error"])
    if frame.height == 0:
        return _answer(steps, width, [])
    variant = pl.col("variant").cast(pl.String).fill_null("(none)")
    label = (
        pl.when(pl.col("shadow").fill_null(False)).then(variant + " (shadow)").otherwise(variant)
    )
    labelled = frame.select("bucket", label.alias("label"), pl.col("error").is_not_null())
    totals = labelled.group_by("label").len().sort(["len", "label"], descending=[True, False])
    kept = totals["label"].head(MAX_SERIES).to_list()
    series = [
        _counts(labelled.filter(pl.col("label") == name)["bucket"], len(steps), name)
        for name in sorted(kept)
    ]
    if totals.height > MAX_SERIES:
        rest = labelled.filter(~pl.col("label").is_in(kept))["bucket"]
        series.append(_counts(rest, len(steps), f"{totals.height - MAX_SERIES} other variants"))
    failed = labelled.filter(pl.col("error"))["bucket"]
    if len(failed):
        series.append(_counts(failed, len(steps), "errors"))
    return _answer(steps, width, series)


def latency(store: Store, endpoint: str, start: datetime, end: datetime) -> dict[str, Any]:
    """p50 and p95 of the live requests' latency per bucket (no line without latencies)."""
    frame, steps, width = _first_rows(store, endpoint, start, end, ["shadow", "latency_ms"])
    live = frame.filter(~pl.col("shadow").fill_null(False))
    values = live["latency_ms"].cast(pl.Float64, strict=False).to_numpy()
    known = np.isfinite(values)
    if not known.any():
        return _answer(steps, width, [])
    cells = live["bucket"].to_numpy()
    found = quantiles(values, cells, len(steps), known, _LATENCY)
    series = [
        {"label": f"{name} ms", "values": [None if np.isnan(v) else float(v) for v in found[name]]}
        for name in _LATENCY
    ]
    return _answer(steps, width, series)


def _first_rows(
    store: Store, endpoint: str, start: datetime, end: datetime, columns: list[str]
) -> tuple[pl.DataFrame, list[float], int]:
    """Each request's first row in [start, end) with its ``bucket`` index, the buckets'
    starts in seconds, and their width."""
    check_range(start, end)
    width = bucket_seconds(start, end)
    first_us, width_us = exact_us(start), width * 1_000_000
    count = -(-(exact_us(end) - first_us) // width_us)
    steps = [(first_us + i * width_us) / 1e6 for i in range(count)]
    frame = read_predictions_frame(store, endpoint, start, end, columns=columns, feedback=False)
    bucket = (pl.col("timestamp").dt.epoch("us") - first_us) // width_us
    frame = frame.filter(pl.col("row") == 0).with_columns(bucket=bucket.cast(pl.Int64))
    return frame, steps, width


def _counts(buckets: pl.Series, count: int, label: str) -> dict[str, Any]:
    values = np.bincount(buckets.to_numpy(), minlength=count)[:count]
    return {"label": label, "values": values.tolist()}


def _answer(steps: list[float], width: int, series: list[dict[str, Any]]) -> dict[str, Any]:
    return {"step": steps, "bucket_s": width, "series": series}
