"""Distribution expectations of a numeric column: learned from a reference, checked per batch.

A range catches impossible values, not a unit change: balance x 1.5 or income / 1000 stays
inside any range loose enough to pass ordinary samples. So a schema also records a few
quantiles of each numeric column (:data:`QUANTILES`, with the number of reference values
they come from), and validation checks that a batch puts about the same share of its
values below each one: for the reference quantile ``q`` at ``p``, the share of batch
values below ``q`` must not exceed ``p`` by more than a tolerance, and the share at or
below ``q`` must not fall short of ``p`` by more than it (two shares, so columns with
ties, such as 0/1 or small counts, are judged fairly). The test needs no assumption on
the shape of the distribution, only counts, so heavy tails do not make it flaky.

The tolerance is a Bernstein bound on a share estimated from ``m`` batch values and ``n``
reference values (``1/m + 1/n`` of them, so a small reference or a small batch is given
more room), at the false-alarm probability ``alpha`` per check
(``Thresholds.distribution_alpha``), plus ``1/n`` for the interpolation of the reference
quantile. A batch from the same distribution passes; a column scaled by 1.5 moves the
median's share by about a quarter, far outside the tolerance from a few hundred values.

Counting is vectorised: per column, one comparison and count per quantile over the
column's values in NumPy (a few microseconds each, where a Polars expression costs tens
in a ``select`` this small), ties at a quantile counted only where the share came out
too low, and the batch's own quantiles computed only for a column found shifted, for the
message. Batches above :data:`SAMPLE_ROWS` rows are checked on a sample of that size:
:data:`SAMPLE_BLOCKS` blocks of consecutive rows spread evenly over the batch (taken
from the column in place, so nothing the size of the batch is copied), which bounds the
cost whatever the batch size and still resolves shares to about a percent, far finer
than a unit change moves them; the tolerance is computed for the sample's size.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from loopwise.errors import InvalidInput

#: The quantiles a schema records for each numeric column.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Fewer reference values than this and a column gets no distribution expectations.
MIN_VALUES = 20
#: Batches with more rows are checked on a sample of this many rows...
SAMPLE_ROWS = 16_384
#: ...made of this many blocks of consecutive rows, evenly spaced.
SAMPLE_BLOCKS = 64
_KEYS = ("values", "quantiles")


def learn(values: int, quantiles: dict[str, float] | None) -> dict[str, Any] | None:
    """The ``distribution`` entry of a column from its profile: the :data:`QUANTILES` of
    ``values`` non-missing reference values (to 6 significant digits), or None when there
    are too few values or the profile has no quantiles."""
    if values < MIN_VALUES or not quantiles:
        return None
    found = {}
    for p in QUANTILES:
        value = quantiles.get(str(p))
        if value is None or not math.isfinite(float(value)):
            return None
        found[_key(p)] = float(f"{float(value):.6g}")
    return {"values": int(values), "quantiles": found}


def normalized(where: str, data: Any) -> dict[str, Any]:
    """``data`` checked as a ``distribution`` entry and written canonically; raise
    InvalidInput naming what is wrong."""
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{where}: distribution must be a mapping with 'values' and 'quantiles'; "
            f"got {type(data).__name__}."
        )
    for key in data:
        if key not in _KEYS:
            raise InvalidInput(
                f"{where}: distribution has an unknown key {key!r}; known keys: {', '.join(_KEYS)}."
            )
    values = data.get("values")
    if isinstance(values, bool) or not isinstance(values, int) or values < 1:
        raise InvalidInput(
            f"{where}: distribution values (the number of reference values the quantiles "
            f"come from) must be a positive integer; got {values!r}."
        )
    raw = data.get("quantiles")
    if not isinstance(raw, dict) or not raw:
        raise InvalidInput(
            f"{where}: distribution quantiles must be a non-empty mapping such as "
            "{'0.5': 12.0}; remove the distribution entry to switch the check off."
        )
    pairs = []
    for key, value in raw.items():
        try:
            p = float(key)
        except (TypeError, ValueError):
            p = math.nan
        if not 0 < p < 1:
            raise InvalidInput(
                f"{where}: distribution quantile {key!r} must be a share in (0, 1) "
                "such as '0.5' (the median)."
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"{where}: distribution quantile {key!r} must be a number.")
        if not math.isfinite(value):
            raise InvalidInput(f"{where}: distribution quantile {key!r} must be finite.")
        pairs.append((p, float(value)))
    pairs.sort()
    if any(b[1] < a[1] for a, b in itertools.pairwise(pairs)):
        raise InvalidInput(
            f"{where}: distribution quantiles must not decrease as the share grows; "
            f"got {dict(raw)}."
        )
    return {"values": values, "quantiles": {_key(p): v for p, v in pairs}}


def tolerance(p: float, batch: int, reference: int, alpha: float) -> float:
    """How far a share of ``batch`` values below a quantile ``p`` of ``reference`` values
    may stray from ``p`` by chance alone, with probability at most ``alpha`` (one side)."""
    if alpha <= 0:
        return math.inf
    effective = 1.0 / (1.0 / batch + 1.0 / reference)
    log = math.log(1.0 / alpha)
    spread = log / 3 + math.sqrt((log / 3) ** 2 + 2 * log * effective * p * (1 - p))
    return spread / effective + 1.0 / reference


@dataclass
class Column:
    """A numeric column to check, and the schema's expectations of it."""

    name: str
    values: int  # reference values
    quantiles: list[tuple[float, float]]  # (share, reference quantile)


@dataclass
class Shift:
    """One reference quantile whose share moved beyond the tolerance in a batch."""

    p: float
    reference: float
    share: float  # of batch values below (too many) or at or below (too few) it
    tolerance: float
    batch: float | None = None  # the batch's own quantile at p, for the message


@dataclass
class Found:
    """A shifted column: the values compared, the quantiles that moved (most moved
    first) and the batch's median."""

    column: Column
    values: int
    shifts: list[Shift]
    median: float | None


def check(frame: pl.DataFrame, columns: list[Column], alpha: float) -> tuple[list[Found], int]:
    """The shifted columns of ``frame`` and the rows compared (a sample of
    :data:`SAMPLE_ROWS` rows when ``frame`` is longer)."""
    if not columns or frame.height == 0 or alpha <= 0:
        return [], frame.height
    found = []
    for c in columns:
        values = _values(frame.get_column(c.name))
        floats = values.dtype.kind == "f"
        m = int(np.count_nonzero(~np.isnan(values))) if floats else values.size
        shifts = []
        for p, q in c.quantiles if m else []:
            t = tolerance(p, m, c.values, alpha)
            below = int(np.count_nonzero(values < q)) / m
            if below > p + t:
                shifts.append(Shift(p, q, below, t))
            elif below < p - t:  # too few below q: unless the values tie at q
                at_or_below = int(np.count_nonzero(values <= q)) / m
                if at_or_below < p - t:
                    shifts.append(Shift(p, q, at_or_below, t))
        if shifts:
            quantile = np.nanquantile if floats else np.quantile
            for shift in shifts:
                shift.batch = float(quantile(values, shift.p))
            shifts.sort(key=lambda s: -abs(s.share - s.p) / s.tolerance)
            found.append(Found(c, m, shifts, float(quantile(values, 0.5))))
    return found, min(frame.height, SAMPLE_ROWS)


def _values(series: pl.Series) -> np.ndarray:
    """The column (or its sample) in NumPy: nulls as NaN. A column without nulls is read
    in place and its sample is a strided view of it (no copy); one with nulls is sliced
    into the blocks first, so only the sample is copied."""
    if isinstance(series.dtype, pl.Decimal):
        series = series.cast(pl.Float64)
    if series.len() <= SAMPLE_ROWS:
        return series.to_numpy()
    step, size = series.len() // SAMPLE_BLOCKS, SAMPLE_ROWS // SAMPLE_BLOCKS
    if series.null_count() == 0:  # a view: the first ``size`` values of each ``step``
        whole = series.to_numpy()
        return whole[: SAMPLE_BLOCKS * step].reshape(SAMPLE_BLOCKS, step)[:, :size]
    return pl.concat([series.slice(i * step, size) for i in range(SAMPLE_BLOCKS)]).to_numpy()


def message(found: Found, rows: int, of: int) -> str:
    """What moved, by how much, and what to do."""
    column, top = found.column, found.shifts[0]
    side = "below" if top.share > top.p else "at or below"
    sample = f" (an even sample of {rows:,} of the {of:,} rows)" if rows < of else ""
    text = (
        f"Column {column.name!r} does not follow its distribution in the schema: "
        f"{len(found.shifts)} of its {len(column.quantiles)} reference quantiles moved. "
        f"{top.share:.1%} of {found.values:,} values{sample} are {side} "
        f"{_num(top.reference)}, the reference's {_ordinal(top.p)} quantile, where "
        f"{top.p:.0%} (± {top.tolerance:.1%}) were expected"
    )
    if top.batch is not None:
        text += f"; this batch's {_ordinal(top.p)} quantile is {_num(top.batch)}"
    text += "."
    reference_median = dict(column.quantiles).get(0.5)
    median = found.median
    if median is not None and reference_median and median * reference_median > 0:
        text += (
            f" Its median is {_num(median)} against {_num(reference_median)} in the "
            f"reference (x{_num(median / reference_median, 3)})."
        )
    return text + (
        " Look for a unit change or a different source upstream; if the new distribution "
        "is right, infer the schema again or edit the column's distribution."
    )


def examples(found: Found) -> list[dict[str, Any]]:
    """The moved quantiles (most moved first): the reference's value and the batch's."""
    return [
        {"quantile": s.p, "reference": s.reference, "batch": _round(s.batch)} for s in found.shifts
    ]


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")


def _key(p: float) -> str:
    return f"{p:g}"


def _ordinal(p: float) -> str:
    if p == 0.5:
        return "median (50%)"
    return f"{p:.0%}"


def _num(value: float, digits: int = 6) -> str:
    return f"{value:,.{digits}g}" if abs(value) < 1e6 else f"{value:.{digits}g}"
