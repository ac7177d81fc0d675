"""Compute a :class:`~loopwise.data.profiles.Profile`: per-column statistics of a dataset.

Profiles are computed for every dataset version that is logged, and again over monitoring
windows, so this is a hot path: it must cost a small multiple of one columnar scan, never a
Python loop over rows. The plan, whatever the number of columns:

1. one ``select`` for null, NaN and infinity counts (cheap; it tells which columns need
   cleaning and where the finite values will sit once sorted);
2. one parallel batch: every numeric column sorted (a single sort gives min, max, all seven
   quantiles, exact distinct counts, and, by binary search, histogram counts, zeros and
   placeholder counts), every text or categorical column grouped by value (which gives
   distinct counts, top values, string lengths and placeholders over the distinct values
   only), and the remaining scalar aggregates for all columns;
3. per column, a handful of O(log n) look-ups into the sorted values.

The definitions (NaN counted as null, infinities excluded from the moments) are in
:func:`profile`'s docstring; the result's shape is :mod:`loopwise.data.profiles`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from loopwise.data.frames import DataLike, kind_of, to_polars
from loopwise.data.profiles import ColumnProfile, Histogram, Profile
from loopwise.param_errors import bad_param

if TYPE_CHECKING:
    import pandas

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: Numbers often typed in place of "missing" (0 is too common to flag; it is in ``zeros``).
NUMERIC_PLACEHOLDERS = (-1, 9999, 99999, 999999, -999, -9999)
#: Texts often meaning "missing", matched case-insensitively after stripping whitespace.
TEXT_PLACEHOLDERS = (
    "",
    "NA",
    "N/A",
    "nan",
    "null",
    "None",
    "unknown",
    "?",
    "-",
    "1900-01-01",
    "1970-01-01",
)
DATE_PLACEHOLDERS = (date(1900, 1, 1), date(1970, 1, 1))
#: Integer columns with at most this many distinct values also get ``top_values``.
TOP_VALUES_MAX_INTEGER_DISTINCT = 50

_TEXT_KEYS = {text.lower(): repr(text) for text in TEXT_PLACEHOLDERS}
# Kinds "other" whose values Polars can hash, so their distinct count is one cheap pass.
_HASHABLE_OTHER = (pl.Null, pl.Duration, pl.Time, pl.Binary, pl.List, pl.Array, pl.Struct)


@dataclass
class _Column:
    """What the first pass learned about one column, and how to read its values."""

    index: int
    name: str
    dtype: pl.DataType
    kind: str
    count: int  # non-null, non-NaN values
    nulls: int  # nulls plus NaNs
    nan: int = 0
    neg_inf: int = 0
    pos_inf: int = 0

    @property
    def finite(self) -> int:
        return self.count - self.neg_inf - self.pos_inf

    def key(self, stat: str) -> str:
        return f"{self.index}:{stat}"

    def values(self) -> pl.Expr:
        """The column with NaN as null and decimals as floats."""
        expr = pl.col(self.name)
        if isinstance(self.dtype, pl.Decimal):
            expr = expr.cast(pl.Float64)
        if self.nan:
            expr = expr.fill_nan(None)
        return expr


def profile(
    data: DataLike,
    *,
    exact_distinct_limit: int = 1_000_000,
    bins: int = 20,
    top_k: int = 20,
) -> Profile:
    """Per-column statistics of ``data`` (pandas, Polars, Arrow, or a Parquet/CSV path).

    For every column: its Polars ``dtype`` and ``kind``, ``count`` (non-null values),
    ``nulls`` and ``distinct`` (non-null distinct values). Distinct counts are exact up to
    ``exact_distinct_limit`` rows. Above it, date, datetime and other columns, whose exact
    count would cost an extra hash table, get a HyperLogLog estimate and
    ``distinct_is_approximate=True``; numeric, text and boolean columns stay exact, because
    the sort or value count they need anyway gives the exact figure for free. Then, by kind:

    - integer, float (and decimal, read as float): min, max, mean, std (sample, ddof=1),
      the quantiles in :data:`QUANTILES` (linear interpolation, as ``numpy.quantile``), a
      histogram of ``bins`` equal-width bins over [min, max] with numpy's edge rule (each bin
      holds its left edge, the last also its right edge; a constant column has one bin),
      ``zeros``, and counts of :data:`NUMERIC_PLACEHOLDERS`. Integer columns with at most
      50 distinct values also get top values.
    - boolean: ``mean`` (the share of True) and top values.
    - string, categorical (Polars Categorical or Enum): up to ``top_k`` most frequent
      values (by count, then value), counts of :data:`TEXT_PLACEHOLDERS`, and, for strings,
      ``string_length`` (in characters).
    - date, datetime: min and max as ISO strings, counts of values on 1900-01-01 or
      1970-01-01 (in the column's time zone; a datetime at the Unix epoch also counts).
    - anything else (durations, lists, structs...): count, nulls, and distinct where
      Polars can hash the values (Object columns report ``count`` as an approximate
      upper bound).

    NaN in a float column counts as null, so ``nulls`` is nulls plus NaNs and a pandas
    frame profiles the same as its Polars or Arrow copy. Infinities count as values (in
    ``count`` and ``distinct``) but are left out of min, max, mean, std, quantiles and the
    histogram, which describe the finite values. Statistics that do not apply, or are
    undefined (the mean of no values), are None, so the profile is valid strict JSON.
    """
    _check_int("exact_distinct_limit", exact_distinct_limit, 0)
    _check_int("bins", bins, 1)
    _check_int("top_k", top_k, 0)
    frame = to_polars(data, what="data to profile")
    rows = frame.height
    approximate = rows > exact_distinct_limit
    columns = _first_pass(frame)
    numeric = [c for c in columns if c.kind in ("integer", "float") and c.count]
    texts = [c for c in columns if c.kind in ("string", "categorical") and c.count]

    batch = [
        frame.lazy().select([c.values().sort(nulls_last=True).alias(c.key("v")) for c in numeric]),
        frame.lazy().select(_scalar_exprs(columns, approximate=approximate) or [pl.lit(0)]),
        *(
            frame.lazy()
            .select(c.values().alias("v"))
            .drop_nulls()
            .group_by("v")
            .agg(pl.len().alias("n"))
            for c in texts
        ),
    ]
    sorted_frame, scalars_frame, *counts = pl.collect_all(batch, engine="in-memory")
    scalars = scalars_frame.row(0, named=True)
    if numeric:  # n_unique of sorted values is one linear scan, cheaper than a sketch
        scalars |= sorted_frame.select(
            pl.col(c.key("v")).slice(0, c.count).n_unique().alias(c.key("distinct"))
            for c in numeric
        ).row(0, named=True)
    value_counts = {c.index: vc for c, vc in zip(texts, counts, strict=True)}

    profiles = {}
    for c in columns:
        fields: dict[str, Any] = {"distinct": 0}
        if not c.count:
            if c.kind in ("integer", "float"):
                fields["zeros"] = 0
        elif c.kind in ("integer", "float"):
            fields |= _numeric(c, sorted_frame[c.key("v")], bins=bins, top_k=top_k)
            fields["distinct"] = scalars[c.key("distinct")]
            fields["mean"] = _finite_or_none(scalars[c.key("mean")])
            fields["std"] = _finite_or_none(scalars[c.key("std")])
        elif c.kind == "boolean":
            fields |= _boolean(c, scalars, top_k=top_k)
        elif c.kind in ("string", "categorical"):
            fields |= _text(c, value_counts[c.index], top_k=top_k)
        else:
            fields |= _hashed_distinct(c, scalars)
            if c.kind in ("date", "datetime"):
                fields |= _temporal(c, scalars)
        profiles[c.name] = ColumnProfile(
            name=c.name,
            dtype=str(c.dtype),
            kind=c.kind,
            count=c.count,
            nulls=c.nulls,
            **fields,
        )
    return Profile(rows=rows, columns=profiles)


def profile_frame_summary(p: Profile) -> pandas.DataFrame:
    """One row per column with the main figures of ``p``, for notebooks and CLI tables."""
    import pandas as pd

    records = []
    for c in p.columns.values():
        records.append(
            {
                "column": c.name,
                "kind": c.kind,
                "dtype": c.dtype,
                "count": c.count,
                "nulls": c.nulls,
                "null_fraction": c.null_fraction,
                "distinct": c.distinct,
                "min": c.min,
                "max": c.max,
                "mean": c.mean,
                "std": c.std,
                "median": c.quantiles["0.5"] if c.quantiles else None,
                "top_value": c.top_values[0][0] if c.top_values else None,
                "zeros": c.zeros,
                "suspicious": sum(c.suspicious_defaults.values()),
            }
        )
    columns = ["column", "kind", "dtype", "count", "nulls", "null_fraction", "distinct"]
    columns += ["min", "max", "mean", "std", "median", "top_value", "zeros", "suspicious"]
    return pd.DataFrame.from_records(records, columns=columns)


# -- first pass: kinds, null / NaN / infinity counts -------------------------------------


def _first_pass(frame: pl.DataFrame) -> list[_Column]:
    exprs: list[pl.Expr] = []
    for i, (name, dtype) in enumerate(frame.schema.items()):
        exprs.append(pl.col(name).null_count().alias(f"{i}:nulls"))
        if dtype.is_float():
            x = pl.col(name)
            exprs.append(x.is_nan().sum().alias(f"{i}:nan"))
            exprs.append((x == math.inf).sum().alias(f"{i}:+inf"))
            exprs.append((x == -math.inf).sum().alias(f"{i}:-inf"))
    counts = frame.select(exprs).row(0, named=True) if exprs else {}
    columns = []
    for i, (name, dtype) in enumerate(frame.schema.items()):
        nulls = counts[f"{i}:nulls"] + counts.get(f"{i}:nan", 0)
        columns.append(
            _Column(
                index=i,
                name=name,
                dtype=dtype,
                kind=kind_of(dtype),
                count=frame.height - nulls,
                nulls=nulls,
                nan=counts.get(f"{i}:nan", 0),
                neg_inf=counts.get(f"{i}:-inf", 0),
                pos_inf=counts.get(f"{i}:+inf", 0),
            )
        )
    return columns


def _scalar_exprs(columns: list[_Column], *, approximate: bool) -> list[pl.Expr]:
    """Every one-value aggregate of every column, for one ``select``."""
    exprs: list[pl.Expr] = []
    for c in columns:
        if not c.count:
            continue
        x = c.values()
        if c.kind in ("date", "datetime") or isinstance(c.dtype, _HASHABLE_OTHER):
            # Both count null as a value; _hashed_distinct takes it off again.
            if not approximate:
                exprs.append(x.n_unique().alias(c.key("n_unique")))
            elif isinstance(c.dtype, pl.List | pl.Array | pl.Struct):  # no sketch of these
                exprs.append(x.hash().approx_n_unique().alias(c.key("hll")))
            else:
                exprs.append(x.approx_n_unique().alias(c.key("hll")))
        if c.kind in ("integer", "float"):
            finite = pl.when(x.is_finite()).then(x) if c.finite < c.count else x
            exprs.append(finite.mean().alias(c.key("mean")))
            exprs.append(finite.std().alias(c.key("std")))
        elif c.kind == "boolean":
            exprs.append(x.sum().alias(c.key("true")))
        elif c.kind in ("date", "datetime"):
            exprs.append(x.min().alias(c.key("min")))
            exprs.append(x.max().alias(c.key("max")))
            day = x.dt.date() if c.kind == "datetime" else x
            for placeholder in DATE_PLACEHOLDERS:
                hit = day == placeholder
                if c.kind == "datetime" and placeholder == date(1970, 1, 1):
                    hit = hit | (x.dt.epoch("us") == 0)
                exprs.append(hit.sum().alias(c.key(placeholder.isoformat())))
    return exprs


def _hashed_distinct(c: _Column, scalars: dict[str, Any]) -> dict[str, Any]:
    """Non-null distinct values of a column that has no sort or group-by of its own."""
    if c.key("n_unique") in scalars:
        return {"distinct": int(scalars[c.key("n_unique")]) - (c.nulls > 0)}
    if c.key("hll") in scalars:
        estimate = int(scalars[c.key("hll")]) - (c.nulls > 0)
        return {"distinct": min(max(estimate, 1), c.count), "distinct_is_approximate": True}
    # Object columns: Polars cannot hash Python objects; count is an upper bound.
    return {"distinct": c.count, "distinct_is_approximate": True}


# -- per-kind results ---------------------------------------------------------------------


def _numeric(c: _Column, ordered: pl.Series, *, bins: int, top_k: int) -> dict[str, Any]:
    """Everything read from the sorted values: order statistics, histogram, value counts."""
    values = ordered.slice(0, c.count)  # nulls were sorted last
    finite = values.slice(c.neg_inf, c.finite)
    as_number = int if c.kind == "integer" else float
    fields: dict[str, Any] = {
        "zeros": _occurrences(values, [0])[0],
        "suspicious_defaults": _numeric_placeholders(c, values),
    }
    if c.finite:
        n = c.finite
        low, high = as_number(finite[0]), as_number(finite[n - 1])
        fields |= {"min": low, "max": high, "quantiles": {}}
        for q in QUANTILES:
            position = (n - 1) * q
            below = math.floor(position)
            a, b = float(finite[below]), float(finite[min(below + 1, n - 1)])
            fields["quantiles"][str(q)] = _lerp(a, b, position - below)
        fields["histogram"] = _histogram(c, finite, float(low), float(high), bins)
    if c.kind == "integer" and top_k:
        runs = values.rle()  # sorted, so one run per distinct value
        if runs.len() <= TOP_VALUES_MAX_INTEGER_DISTINCT:
            pairs = runs.struct.unnest().sort(["len", "value"], descending=[True, False])
            fields["top_values"] = [(v, n) for n, v in pairs.head(top_k).iter_rows()]
    return fields


def _lerp(a: float, b: float, t: float) -> float:
    """numpy's interpolation between neighbours, so quantiles agree with ``numpy.quantile``."""
    difference = b - a
    return b - difference * (1 - t) if t >= 0.5 else a + difference * t


def _histogram(c: _Column, finite: pl.Series, low: float, high: float, bins: int) -> Histogram:
    """numpy.histogram's bins and edge rule, counted by binary search in sorted values."""
    if low == high:
        return Histogram(edges=[low, high], counts=[c.finite])
    step = (high - low) / bins
    edges = [low + k * step for k in range(bins)] + [high]
    inner = edges[1:-1]
    if c.kind == "integer":  # x < e exactly when x < ceil(e), for integers x
        probes = pl.Series([math.ceil(e) for e in inner], dtype=finite.dtype)
    else:  # edges are float64, as numpy's; float32 values are compared in float64 too
        finite = finite.cast(pl.Float64)
        probes = pl.Series(inner, dtype=pl.Float64)
    below = [0, *finite.search_sorted(probes, side="left").to_list(), c.finite]
    counts = [int(below[k + 1] - below[k]) for k in range(bins)]
    return Histogram(edges=edges, counts=counts)


def _occurrences(values: pl.Series, probes: list[int | float]) -> list[int]:
    """How often each probe occurs in sorted ``values``."""
    series = pl.Series(probes, dtype=values.dtype)
    left = values.search_sorted(series, side="left").to_list()
    right = values.search_sorted(series, side="right").to_list()
    return [int(r - lo) for lo, r in zip(left, right, strict=True)]


def _numeric_placeholders(c: _Column, values: pl.Series) -> dict[str, int]:
    if c.kind == "integer":
        low, high = _integer_range(c.dtype)
        probes: list[int | float] = [v for v in NUMERIC_PLACEHOLDERS if low <= v <= high]
    else:
        probes = [float(v) for v in NUMERIC_PLACEHOLDERS]
    if not probes:
        return {}
    hits = _occurrences(values, probes)
    return {repr(v): n for v, n in zip(probes, hits, strict=True) if n}


def _integer_range(dtype: pl.DataType) -> tuple[int, int]:
    name = str(dtype)  # "Int8" ... "UInt128"
    bits = int("".join(ch for ch in name if ch.isdigit()))
    if name.startswith("U"):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _boolean(c: _Column, scalars: dict[str, Any], *, top_k: int) -> dict[str, Any]:
    true = int(scalars[c.key("true")])
    pairs = [(True, true), (False, c.count - true)]
    pairs = sorted((p for p in pairs if p[1]), key=lambda p: (-p[1], p[0]))
    return {"distinct": len(pairs), "mean": true / c.count, "top_values": pairs[:top_k]}


def _text(c: _Column, counts: pl.DataFrame, *, top_k: int) -> dict[str, Any]:
    """Statistics of a text column from its value counts (one row per distinct value)."""
    counts = counts.with_columns(pl.col("v").cast(pl.String))
    fields: dict[str, Any] = {"distinct": counts.height}
    if top_k:
        # Only values at least as frequent as the k-th most frequent can be in the top k.
        threshold = pl.col("n") >= pl.col("n").top_k(top_k).min()
        top = counts.filter(threshold).sort(["n", "v"], descending=[True, False]).head(top_k)
        fields["top_values"] = [(v, int(n)) for v, n in top.iter_rows()]
    normalised = pl.col("v").str.strip_chars().str.to_lowercase()
    found = (
        counts.filter(normalised.is_in(list(_TEXT_KEYS)))
        .group_by(normalised.alias("key"))
        .agg(pl.col("n").sum())
    )
    fields["suspicious_defaults"] = {
        _TEXT_KEYS[key]: int(n) for key, n in sorted(found.iter_rows(), key=lambda r: r[0])
    }
    if c.kind == "string":
        length = pl.col("v").str.len_chars()
        low, high, total = counts.select(
            length.min().alias("min"),
            length.max().alias("max"),
            (length.cast(pl.Int64) * pl.col("n")).sum().alias("total"),
        ).row(0)
        fields["string_length"] = {"min": low, "max": high, "mean": total / c.count}
    return fields


def _temporal(c: _Column, scalars: dict[str, Any]) -> dict[str, Any]:
    low, high = scalars[c.key("min")], scalars[c.key("max")]
    found = {d.isoformat(): int(scalars[c.key(d.isoformat())]) for d in DATE_PLACEHOLDERS}
    return {
        "min": _iso(low),
        "max": _iso(high),
        "suspicious_defaults": {key: n for key, n in found.items() if n},
    }


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise bad_param("profile", name, f"an int in [{minimum}, inf)", value)
