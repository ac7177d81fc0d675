"""Cheaper exact kernels for the costliest questions validation asks of a column.

:mod:`loopwise.data.validation` asks a few questions whose obvious Polars answer costs far
more than the answer needs, depending on the shape of the data: whether a key's values are
all distinct (hashing text keys value by value; a sparse integer key, whose range is too
wide for a bitmap, used to be counted row by row with ``is_duplicated``), whether a column
without a domain holds placeholder text such as " N/A " (lower-casing every value of a text
id), and whether a numeric column's values are all distinct (which settles that no row
repeats). Each kernel here answers exactly what the obvious one does, by a cheaper route:

- distinct integers (no nulls): marked in a bitmap over their range when it is at most
  :data:`BITMAP_SPAN` times the rows, else sorted (a vectorised sort in NumPy is several
  times cheaper than hashing);
- distinct keys (any other key): hashed (one vectorised pass) and the hashes sorted;
  equal values hash equal, so as many distinct hashes as rows proves the values
  distinct, and anything less is confirmed exactly by the caller;
- placeholder text: a stripped value can only be a placeholder when it has one of a few
  lengths (:func:`placeholder_lengths`), so only those are lower-cased;
- all distinct numbers: sorted, with NaN counted as one value and -0.0 as 0.0, so "all
  distinct" is never claimed where Polars would see a repeat.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

#: A bitmap of an integer column's range is used up to this many times its rows (a byte
#: per value of the range); wider ranges are sorted instead.
BITMAP_SPAN = 4
#: Characters outside ASCII that lower-case into ASCII, with their UTF-8 length: only the
#: Kelvin sign (U+212A, 3 bytes) becomes "k" (tests/data/test_fast_checks.py scans all of
#: Unicode for others).
_LOWER_TO_ASCII = {"k": 3}


def count_distinct_integers(series: pl.Series, low: int, high: int) -> int:
    """Distinct values of an integer ``series`` without nulls whose min and max are
    ``low`` and ``high``: a bitmap over a range up to :data:`BITMAP_SPAN` times the
    length, else a sort."""
    rows = series.len()
    if rows == 0:
        return 0
    values = series.to_numpy()
    if high - low >= BITMAP_SPAN * rows:
        ordered = np.sort(values)
        return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1
    if low < 0 or high >= BITMAP_SPAN * rows:  # index by offset from the minimum, not value
        if values.dtype != np.uint64:
            values = values.astype(np.int64, copy=False)
        values, high = values - values.dtype.type(low), high - low
    seen = np.zeros(high + 1, dtype=np.bool_)
    seen[values] = True
    return int(np.count_nonzero(seen))


def distinct_hashes(frame: pl.DataFrame, key: list[str]) -> int:
    """The distinct hashes of a key's values (one column's, or rows' of several), which
    is as many as the rows only if the values are all distinct (equal values hash equal;
    fewer: perhaps repeated, for the caller to count exactly). Hashing is one vectorised
    pass and the hashes are sorted in NumPy: far cheaper than hashing text into a set."""
    if frame.height == 0:
        return 0
    one = len(key) == 1
    hashes = frame.get_column(key[0]).hash() if one else frame.select(key).hash_rows()
    ordered = np.sort(hashes.to_numpy())
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1


def all_distinct(series: pl.Series) -> bool:
    """Whether no two values of ``series`` are equal (nulls equal each other, NaN equals
    NaN, -0.0 equals 0.0): sorted in NumPy for numbers without nulls, else Polars'
    count of distinct values."""
    rows = series.len()
    if rows < 2:
        return True
    if not series.dtype.is_numeric() or series.null_count():
        return series.n_unique() == rows
    values = series.to_numpy()
    if values.dtype.kind == "f":
        if np.count_nonzero(np.isnan(values)) > 1:
            return False
    elif values.dtype.kind not in "iu":
        return series.n_unique() == rows
    ordered = np.sort(values)
    return not np.any(ordered[1:] == ordered[:-1])


def placeholder_lengths(placeholders: Iterable[str]) -> list[int]:
    """The lengths (in UTF-8 bytes) a stripped text can have and still lower-case to one
    of the lower-case ASCII ``placeholders``: each character lower-cases to one character,
    so only characters outside ASCII that lower-case into ASCII (:data:`_LOWER_TO_ASCII`)
    make it longer than the placeholder."""
    lengths = {0}
    for text in placeholders:
        sizes = {0}
        for ch in text:
            options = {len(ch.encode()), _LOWER_TO_ASCII.get(ch, len(ch.encode()))}
            sizes = {n + o for n in sizes for o in options}
        lengths |= sizes
    return sorted(lengths)


def placeholder_counts(text: pl.Expr, placeholders: list[str], max_raw_bytes: int) -> pl.Expr:
    """One list of value counts (structs ``value``, ``count``) of the texts up to
    ``max_raw_bytes`` long that are one of ``placeholders`` (lower-case ASCII) once
    stripped of whitespace and lower-cased. Only stripped texts of a length one can have
    (:func:`placeholder_lengths`) are lower-cased: on a text id, none are. The stripped
    texts are filtered inside ``list.eval``, so they are made once (a filter on an
    expression of themselves would strip every text twice)."""
    stripped = text.filter(text.str.len_bytes() <= max_raw_bytes).str.strip_chars()
    value = pl.element()
    fits = value.filter(value.str.len_bytes().is_in(placeholder_lengths(placeholders)))
    lower = fits.str.to_lowercase()
    counts = lower.filter(lower.is_in(placeholders)).alias("value").value_counts()
    return stripped.implode().list.eval(counts)
