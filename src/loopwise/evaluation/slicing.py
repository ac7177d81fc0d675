"""Turn slice specifications into one integer group code per row.

Why: every per-slice metric in :mod:`.metrics` is a group-by over integer codes, so each
slice spec is turned into codes once, here, in columnar passes (Polars and NumPy, no Python
loop over rows). A spec is a column name (one slice per distinct value), ``(column,
bin_edges)`` (numeric bins, left-closed: ``[0, 30)``, ``[30, 50)``, ...) or ``(column_a,
column_b)`` (one slice per pair of values). Missing values (null or NaN) form a
``"(missing)"`` slice and values outside the bin edges (including the last edge itself) an
``"(out of range)"`` slice, so every row lands in exactly one slice of each spec.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from loopwise.errors import InvalidInput

MISSING = "(missing)"
OUT_OF_RANGE = "(out of range)"

_FORMS = (
    "a column name ('region'), a column with increasing bin edges (('age', [0, 30, 50, 120])) "
    "or two column names to cross (('region', 'segment'))"
)


@dataclass(frozen=True)
class SliceGroups:
    """One slice spec resolved: its display name, a code per row and a label per code.

    Codes run over ``0..len(labels) - 1``; a code may have no rows (an empty bin), and
    callers drop those slices.
    """

    column: str
    codes: np.ndarray
    labels: tuple[str, ...]


def build_slices(frame: pl.DataFrame, slices: Any) -> list[SliceGroups]:
    """Resolve every slice spec in ``slices`` against ``frame`` (checked before predicting)."""
    if slices is None:
        return []
    if isinstance(slices, str):
        slices = [slices]
    result = [_one(frame, spec) for spec in slices]
    names = [g.column for g in result]
    dupes = sorted({name for name in names if names.count(name) > 1})
    if dupes:
        raise InvalidInput(
            f"slice {dupes[0]!r} is given more than once in slices={list(slices)!r}; "
            "keep one spec per column."
        )
    return result


def _one(frame: pl.DataFrame, spec: Any) -> SliceGroups:
    if isinstance(spec, str):
        return _by_value(frame, spec)
    if isinstance(spec, tuple | list) and len(spec) == 2 and isinstance(spec[0], str):
        other = spec[1]
        if isinstance(other, str):
            return _crossed(frame, spec[0], other)
        if isinstance(other, Sequence | np.ndarray):
            return _binned(frame, spec[0], other)
    raise InvalidInput(f"slice {spec!r} is not understood; give {_FORMS}.")


def _column(frame: pl.DataFrame, name: str) -> pl.Series:
    if name not in frame.columns:
        shown = ", ".join(repr(c) for c in frame.columns[:20])
        more = " ..." if len(frame.columns) > 20 else ""
        raise InvalidInput(
            f"slice column {name!r} is not in the data (columns: {shown}{more}); "
            "fix the name in slices= or add the column to the data."
        )
    return frame.get_column(name)


def _by_value(frame: pl.DataFrame, name: str) -> SliceGroups:
    column = _column(frame, name)
    if column.dtype.is_float():
        column = column.fill_nan(None)
    try:
        values = column.drop_nulls().unique().sort()
    except pl.exceptions.PolarsError as e:
        raise InvalidInput(
            f"slice column {name!r} has type {column.dtype}, whose values cannot be grouped; "
            "slice by a text, number, boolean or date column."
        ) from e
    codes = column.replace_strict(
        values, pl.Series(range(len(values))), default=len(values), return_dtype=pl.Int64
    )
    labels = (*(_label(v) for v in values.to_list()), MISSING)
    return SliceGroups(name, codes.to_numpy().astype(np.intp, copy=False), labels)


def _binned(frame: pl.DataFrame, name: str, bin_edges: Sequence[Any]) -> SliceGroups:
    column = _column(frame, name)
    try:
        edges = np.asarray(bin_edges, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidInput(
            f"bin edges for slice column {name!r} must be numbers; got {list(bin_edges)!r}."
        ) from e
    if edges.ndim != 1 or len(edges) < 2 or np.isnan(edges).any() or (np.diff(edges) <= 0).any():
        raise InvalidInput(
            f"bin edges for slice column {name!r} must be at least two numbers in strictly "
            f"increasing order; got {list(bin_edges)!r}. Sort them and drop duplicates."
        )
    if not column.dtype.is_numeric():
        raise InvalidInput(
            f"slice column {name!r} has type {column.dtype}, but bin edges need a numeric "
            f"column; pass {name!r} alone to slice by its values."
        )
    x = column.cast(pl.Float64).to_numpy()  # nulls become NaN
    n_bins = len(edges) - 1
    index = np.searchsorted(edges, x, side="right") - 1
    inside = (index >= 0) & (index < n_bins)
    codes = np.where(np.isnan(x), n_bins + 1, np.where(inside, index, n_bins))
    labels = tuple(f"[{_edge(a)}, {_edge(b)})" for a, b in itertools.pairwise(edges))
    return SliceGroups(name, codes.astype(np.intp, copy=False), (*labels, OUT_OF_RANGE, MISSING))


def _crossed(frame: pl.DataFrame, first: str, second: str) -> SliceGroups:
    a, b = _by_value(frame, first), _by_value(frame, second)
    width = len(b.labels)
    combined = a.codes * width + b.codes
    if len(a.labels) * width <= 10_000_000:
        present = np.flatnonzero(np.bincount(combined, minlength=len(a.labels) * width))
        remap = np.zeros(len(a.labels) * width, dtype=np.intp)
        remap[present] = np.arange(len(present))
        codes = remap[combined]
    else:
        present, codes = np.unique(combined, return_inverse=True)
    labels = tuple(f"{a.labels[i // width]} & {b.labels[i % width]}" for i in present.tolist())
    return SliceGroups(f"{first} & {second}", codes.astype(np.intp, copy=False), labels)


def _label(value: Any) -> str:
    return MISSING if value is None else str(value)


def _edge(value: float) -> str:
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return f"{value:g}"
