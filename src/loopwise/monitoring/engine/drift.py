"""Drift of every window and slice of a feature against a reference binned once.

The tests, the choice between them and the thresholds are those of
:func:`loopwise.data.drift.detect.detect_drift`: per column, ``ks`` / ``chi2`` when the
reference has at most 1,000 usable values, else ``wasserstein`` (numeric, divided by the reference's
standard deviation) / ``jensenshannon`` (categorical); integers with at most 20 distinct
reference values are categorical; ``psi`` on request. What differs is the layout, so that a
backfill costs one pass over the log instead of one ``detect_drift`` call per window, slice
and feature:

- The reference is profiled once per feature: numeric values are cut at a grid (every
  distinct reference value when there are at most ``GRID_POINTS``, else ``GRID_POINTS``
  reference quantiles, plus the deciles that ``psi`` and ``jensenshannon`` bin by), and the
  reference and each of its slices keep their count, equal-to-edge count and area
  (``Σ (edge − value)``) per bin. Categories keep their counts.
- Every logged row is binned once (one ``searchsorted`` per feature), and one ``bincount``
  over (cell, bin) gives the same three numbers for every window × slice cell at once.
- The statistics follow from those arrays, vectorised over cells. ``ks``, ``chi2``, ``psi``
  and ``jensenshannon`` are exact (``ks`` needs a grid of every reference value, which is
  always the case at 1,000 values or fewer; its p-value is scipy's asymptotic one). The
  Wasserstein distance integrates ``|F_ref − F_cur|`` bin by bin from the exact areas under
  both CDFs: exact when they do not cross inside a bin, otherwise off by at most the bin's
  width times its mass; beyond the reference's range it is exact.

A slice is compared with the same slice of the reference (``region=north`` with the
reference's rows where region is north), or with the whole reference when the reference has
no such column; a reference slice with fewer than ``min_rows`` rows gives no figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from loopwise.data.drift.detect import (
    CATEGORICAL,
    CATEGORICAL_MAX_DISTINCT,
    DEFAULT_TESTS,
    DEFAULT_THRESHOLDS,
    MIN_STD,
    NUMERIC,
    P_VALUE_TESTS,
    PSI_EPSILON,
    QUANTILE_BINS,
    SAMPLE_SIZE_THRESHOLD,
    TEST_KINDS,
)
from loopwise.errors import InvalidInput

GRID_POINTS = 2048
_LUT_CELLS = 1 << 16  # uniform cells of the binning table (see _search)
_LUT_MIN_ROWS = 50_000  # fewer values: plain searchsorted is as fast


@dataclass
class Binned:
    """One side binned: a row per cell (current) or per reference subset."""

    counts: np.ndarray  # [rows, bins] usable values per bin
    hits: np.ndarray | None = None  # numeric: values equal to the bin's upper edge
    area: np.ndarray | None = None  # numeric: Σ (edge − value); last bin Σ (value − max)


@dataclass
class RowBins:
    """Every row of a frame binned for one feature (``usable`` False: not counted)."""

    bins: np.ndarray
    usable: np.ndarray
    hits: np.ndarray | None = None
    area: np.ndarray | None = None
    n_bins: int = 0


@dataclass
class FeatureProfile:
    """A feature of the reference, binned once, with the test that compares it."""

    column: str
    kind: str
    test: str
    threshold: float
    compare_as: pl.DataType
    reference: Binned  # rows: the subsets (0: the whole reference)
    ref_n: np.ndarray  # usable values per subset
    ref_std: np.ndarray | None = None  # numeric: population std per subset
    grid: np.ndarray | None = None  # numeric: sorted bin edges
    deciles: np.ndarray | None = None  # numeric: one-hot [bins, decile bins]
    categories: pl.Series | None = None  # categorical: reference values, in code order

    @property
    def uses_p_value(self) -> bool:
        return self.test in P_VALUE_TESTS

    def bin_rows(self, values: pl.Series) -> RowBins:
        """Bin current values (any dtype; cast like the reference, failures unusable)."""
        if self.kind == NUMERIC:
            return _numeric_rows(_as_float(values), self.grid, self.test)
        assert self.categories is not None
        return _category_rows(values, self.categories, self.compare_as)

    def compare(
        self, current: Binned, subsets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Statistic, p-value (p-value tests) and usable count per cell, against the
        reference subset of each cell."""
        ref = _take(self.reference, subsets, current.counts.shape[1])
        n = self.ref_n[subsets].astype(np.float64)
        m = current.counts.sum(axis=1).astype(np.float64)
        p_value = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.test == "wasserstein":
                assert self.ref_std is not None
                stat = _wasserstein(ref, current, self.grid, n, m)
                stat = stat / np.maximum(self.ref_std[subsets], MIN_STD)
            elif self.test == "ks":
                stat, p_value = _ks(ref, current, n, m)
            elif self.test == "chi2":
                stat, p_value = _chi2(ref.counts, current.counts, n, m)
            else:
                r, c = ref.counts, current.counts
                if self.deciles is not None:
                    r, c = r @ self.deciles, c @ self.deciles
                stat = _distance(self.test, r, c, n, m)
        empty = (m == 0) | (n == 0)
        stat = np.where(empty, np.nan, stat)
        if p_value is not None:
            p_value = np.where(empty, np.nan, p_value)
        return stat, p_value, m

    def drifted(self, stat: np.ndarray, p_value: np.ndarray | None) -> np.ndarray:
        """1.0 where drifted (and where current had no usable value), else 0.0."""
        flag = p_value < self.threshold if p_value is not None else stat >= self.threshold
        return np.where(np.isnan(stat), 1.0, flag.astype(np.float64))


def profile_feature(
    column: str,
    values: pl.Series,
    subset_codes: list[tuple[int, np.ndarray]],
    n_subsets: int,
    *,
    method: str | None,
    threshold: float | None,
    categorical: bool = False,
    setting: str = "checks.feature_drift",
) -> FeatureProfile | str:
    """Profile one reference column; a string says why it cannot be checked.

    ``subset_codes`` holds (offset, code per reference row) for the whole reference
    (offset 0, all codes 0) and each slice spec; subset ``offset + code`` of ``n_subsets``.
    ``categorical`` compares the values as categories whatever their type (class labels);
    ``setting`` names the config key of ``method`` in messages.
    """
    dtype = values.dtype
    base = dtype.base_type()
    if dtype.is_numeric():
        family = "number"
    elif base in (pl.String, pl.Categorical, pl.Enum):
        family = "text"
    elif base == pl.Boolean:
        family = "boolean"
    else:
        return f"has type {dtype}, which no drift test supports"
    if values.null_count() == values.len():
        return "is entirely null in the reference"
    if family != "number" or categorical:
        kinds: tuple[str, ...] = (CATEGORICAL,)
    elif dtype.is_integer():
        few = values.n_unique() - (1 if values.null_count() else 0) <= CATEGORICAL_MAX_DISTINCT
        kinds = (CATEGORICAL, NUMERIC) if few else (NUMERIC, CATEGORICAL)
    else:
        kinds = (NUMERIC,)
    kind = kinds[0]
    if method is not None:
        usable = [k for k in kinds if k in TEST_KINDS[method]]
        if not usable:
            raise InvalidInput(
                f"drift test {method!r} cannot check {column!r} ({dtype}, {kind}); change "
                f"{setting}.method (for {kind} values use one of: "
                f"{', '.join(t for t, k in TEST_KINDS.items() if kind in k)})."
            )
        kind = usable[0]
    if kind == NUMERIC:
        floats = _as_float(values)
        count = int(np.isfinite(floats).sum())
    else:
        compare_as = _compare_dtype(dtype)
        cats = _usable_categories(values.cast(compare_as, strict=False))
        count = cats.len()
    if count == 0:
        return "has no usable (non-null, finite) value in the reference"
    test = method or DEFAULT_TESTS[kind]["small" if count <= SAMPLE_SIZE_THRESHOLD else "large"]
    limit = DEFAULT_THRESHOLDS[test] if threshold is None else threshold
    if kind == NUMERIC:
        return _numeric_profile(column, floats, subset_codes, n_subsets, test, limit)
    categories = cats.unique().sort()
    rows = _category_rows(values, categories, compare_as)
    reference = Binned(_counts(rows, subset_codes, n_subsets, categories.len()))
    return FeatureProfile(
        column=column,
        kind=CATEGORICAL,
        test=test,
        threshold=float(limit),
        compare_as=compare_as,
        reference=reference,
        ref_n=reference.counts.sum(axis=1),
        categories=categories,
    )


def bin_cells(rows: RowBins, cells: np.ndarray, n_cells: int, mask: np.ndarray) -> Binned:
    """The binned counts of every cell (``cells`` per row, rows kept where ``mask``)."""
    keep = mask & rows.usable
    index = cells[keep] * rows.n_bins + rows.bins[keep]
    size = n_cells * rows.n_bins
    shape = (n_cells, rows.n_bins)
    counts = np.bincount(index, minlength=size).reshape(shape)
    hits = area = None
    if rows.hits is not None:
        hits = np.bincount(index, weights=rows.hits[keep], minlength=size).reshape(shape)
    if rows.area is not None:
        area = np.bincount(index, weights=rows.area[keep], minlength=size).reshape(shape)
    return Binned(counts, hits, area)


# -- profiles -------------------------------------------------------------------------------


def _as_float(values: pl.Series) -> np.ndarray:
    if values.dtype != pl.Float64:
        values = values.cast(pl.Float64, strict=False)
    return values.to_numpy()  # nulls become NaN


def _numeric_profile(
    column: str,
    x: np.ndarray,
    subset_codes: list[tuple[int, np.ndarray]],
    n_subsets: int,
    test: str,
    threshold: float,
) -> FeatureProfile:
    ordered = np.sort(x[np.isfinite(x)])
    cuts = np.unique(np.quantile(ordered, np.linspace(0, 1, QUANTILE_BINS + 1)[1:-1]))
    distinct = ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])]
    if distinct.size > GRID_POINTS:  # ~GRID_POINTS quantiles (any grid will do: exact ones cost)
        distinct = ordered[np.linspace(0, ordered.size - 1, GRID_POINTS + 1).astype(np.intp)]
    grid = np.unique(np.concatenate([distinct, cuts]))
    rows = _numeric_rows(x, grid, test)
    reference = Binned(
        _counts(rows, subset_codes, n_subsets, rows.n_bins),
        None
        if rows.hits is None
        else _counts(rows, subset_codes, n_subsets, rows.n_bins, rows.hits),
        None
        if rows.area is None
        else _counts(rows, subset_codes, n_subsets, rows.n_bins, rows.area),
    )
    ref_n = reference.counts.sum(axis=1)
    deciles = None
    if test in ("psi", "jensenshannon"):
        # fine bin j = (grid[j-1], grid[j]] lies in decile bin "cuts below grid[j-1]"
        below = np.concatenate([[0], np.searchsorted(cuts, grid, side="right")])
        deciles = np.zeros((grid.size + 1, cuts.size + 1))
        deciles[np.arange(grid.size + 1), below] = 1.0
    return FeatureProfile(
        column=column,
        kind=NUMERIC,
        test=test,
        threshold=float(threshold),
        compare_as=pl.Float64,
        reference=reference,
        ref_n=ref_n,
        ref_std=_subset_std(x, rows.usable, subset_codes, n_subsets, ref_n),
        grid=grid,
        deciles=deciles,
    )


def _subset_std(
    x: np.ndarray,
    usable: np.ndarray,
    subset_codes: list[tuple[int, np.ndarray]],
    n_subsets: int,
    n: np.ndarray,
) -> np.ndarray:
    """Population standard deviation of the usable values of every subset (two passes)."""
    v = x[usable]
    total = np.zeros(n_subsets)
    squares = np.zeros(n_subsets)
    codes = [(offset, c[usable]) for offset, c in subset_codes]
    for offset, c in codes:
        total += np.bincount(offset + c, weights=v, minlength=n_subsets)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / n
    for offset, c in codes:
        d = v - mean[offset + c]
        squares += np.bincount(offset + c, weights=d * d, minlength=n_subsets)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(squares / n)


def _counts(
    rows: RowBins,
    subset_codes: list[tuple[int, np.ndarray]],
    n_subsets: int,
    n_bins: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    out = np.zeros(n_subsets * n_bins)
    for offset, codes in subset_codes:
        keep = rows.usable & (codes >= 0)
        index = (offset + codes[keep]) * n_bins + rows.bins[keep]
        w = None if weights is None else weights[keep]
        out += np.bincount(index, weights=w, minlength=n_subsets * n_bins)
    return out.reshape(n_subsets, n_bins)


def _numeric_rows(x: np.ndarray, grid: np.ndarray | None, test: str) -> RowBins:
    """Bins (``searchsorted(grid, x, "left")``), and what ``test`` needs of each row:
    equal-to-edge flags (ks) or the distance to the bin's upper edge (wasserstein)."""
    assert grid is not None
    usable = np.isfinite(x)
    clean = x if usable.all() else np.where(usable, x, grid[0])
    bins = _search(grid, clean)
    top = grid.size
    hits = area = None
    if test == "ks":
        edge = grid[np.minimum(bins, top - 1)]
        hits = ((bins < top) & (edge == clean)).astype(np.float64)
    elif test == "wasserstein":
        area = np.append(grid, grid[-1])[bins]
        area -= clean
        above = bins == top
        if above.any():
            area[above] *= -1.0  # beyond the reference's maximum: value - max
    return RowBins(bins, usable, hits, area, top + 1)


def _search(grid: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``np.searchsorted(grid, x)`` for finite ``x``, through a table over uniform cells.

    A value's cell (of ``_LUT_CELLS`` between the grid's ends) gives its bin at once when
    no edge falls in the cell (with a margin for rounding); only values in cells holding an
    edge, or beyond the top end, are searched.
    """
    lo, hi = float(grid[0]), float(grid[-1])
    if x.size < _LUT_MIN_ROWS or not hi > lo:
        return np.searchsorted(grid, x, side="left")
    cells = _LUT_CELLS
    scale = cells / (hi - lo)
    position = x - lo
    position *= scale
    np.floor(position, out=position)
    np.clip(position, -1, cells, out=position)
    index = position.astype(np.intp)
    index += 1  # table row of cell c is c + 1 (cell -1: below the grid)
    starts = lo + np.arange(-1, cells + 1) / scale
    margin = 1e-6 / scale + 16 * np.spacing(max(abs(lo), abs(hi)))
    low = np.searchsorted(grid, starts - margin, side="left")
    high = np.searchsorted(grid, starts + 1 / scale + margin, side="left")
    low[0] = high[0] = 0  # below lo: no edge is smaller
    high[-1] = low[-1] + 1  # at or beyond hi: always searched
    bins = low[index]
    unsure = np.flatnonzero(high[index] != bins)
    if unsure.size:
        bins[unsure] = np.searchsorted(grid, x[unsure], side="left")
    return bins


def _compare_dtype(dtype: pl.DataType) -> pl.DataType:
    if dtype.is_numeric():
        return pl.Float64
    if dtype.base_type() == pl.Boolean:
        return pl.Boolean
    return pl.String


def _usable_categories(values: pl.Series) -> pl.Series:
    values = values.drop_nulls()
    if values.dtype.is_float():
        values = values.filter(values.is_finite())
    return values


def _category_rows(values: pl.Series, categories: pl.Series, compare_as: pl.DataType) -> RowBins:
    """Codes: a reference category's position, or past them for values new to it."""
    cast = values.cast(compare_as, strict=False)
    usable = cast.is_not_null()
    if cast.dtype.is_float():
        usable = usable & cast.is_finite().fill_null(False)
    known = categories.len()
    codes = cast.replace_strict(
        categories, pl.Series(range(known)), default=None, return_dtype=pl.Int64
    )
    new_mask = codes.is_null() & usable
    n_bins = known
    if new_mask.any():
        new = cast.filter(new_mask).unique().sort()
        extra = cast.replace_strict(
            new, pl.Series(range(known, known + new.len())), default=None, return_dtype=pl.Int64
        )
        codes = codes.fill_null(extra)
        n_bins += new.len()
    usable_np = usable.to_numpy()
    return RowBins(codes.fill_null(0).to_numpy(), usable_np, n_bins=max(n_bins, 1))


# -- statistics, vectorised over cells -----------------------------------------------------


def _take(reference: Binned, subsets: np.ndarray, n_bins: int) -> Binned:
    """The reference rows of each cell, padded with empty bins (categories new to it)."""

    def rows(a: np.ndarray | None) -> np.ndarray | None:
        if a is None:
            return None
        picked = a[subsets]
        if picked.shape[1] < n_bins:
            picked = np.pad(picked, ((0, 0), (0, n_bins - picked.shape[1])))
        return picked

    counts = rows(reference.counts)
    assert counts is not None
    return Binned(counts, rows(reference.hits), rows(reference.area))


def _wasserstein(
    ref: Binned, cur: Binned, grid: np.ndarray | None, n: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """∫ |F_ref − F_cur| dx, bin by bin from the exact area under each CDF."""
    assert grid is not None
    assert ref.area is not None
    assert cur.area is not None
    width = np.diff(grid)

    def areas(side: Binned, total: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        before = np.cumsum(side.counts, axis=1)[:, :-2]  # values <= grid[j-1], j = 1..K-1
        assert side.area is not None
        inner = (before * width + side.area[:, 1:-1]) / total[:, None]
        return inner, side.area[:, 0] / total, side.area[:, -1] / total

    r_inner, r_low, r_high = areas(ref, n)
    c_inner, c_low, c_high = areas(cur, m)
    return np.abs(r_inner - c_inner).sum(axis=1) + np.abs(r_low - c_low) + np.abs(r_high - c_high)


def _ks(ref: Binned, cur: Binned, n: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample KS statistic at every edge (at and just before it); asymptotic p-value."""
    from scipy.stats import kstwo

    assert ref.hits is not None
    assert cur.hits is not None

    def cdf(side: Binned, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = np.cumsum(side.counts, axis=1)[:, :-1]
        assert side.hits is not None
        return at / total[:, None], (at - side.hits[:, :-1]) / total[:, None]

    r_at, r_before = cdf(ref, n)
    c_at, c_before = cdf(cur, m)
    stat = np.maximum(np.abs(r_at - c_at).max(axis=1), np.abs(r_before - c_before).max(axis=1))
    effective = np.round(n * m / (n + m))
    p_value = np.where(effective > 0, kstwo.sf(stat, np.maximum(effective, 1)), np.nan)
    return stat, np.clip(p_value, 0.0, 1.0)


def _chi2(
    ref: np.ndarray, cur: np.ndarray, n: np.ndarray, m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Chi-square test of homogeneity of the 2 x k table of each cell (k: non-empty bins)."""
    from scipy.stats import chi2

    total = ref + cur
    seen = total > 0
    grand = (n + m)[:, None]
    expected_r = n[:, None] * total / grand
    expected_c = m[:, None] * total / grand
    terms = (ref - expected_r) ** 2 / expected_r + (cur - expected_c) ** 2 / expected_c
    stat = np.where(seen, terms, 0.0).sum(axis=1)
    k = seen.sum(axis=1)
    stat = np.where(k >= 2, stat, 0.0)
    p_value = np.where(k >= 2, chi2.sf(stat, np.maximum(k - 1, 1)), 1.0)
    return stat, p_value


def _distance(
    test: str, ref: np.ndarray, cur: np.ndarray, n: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """PSI or Jensen–Shannon distance (base 2) of each cell's two count vectors."""
    p = ref / n[:, None]
    q = cur / m[:, None]
    if test == "psi":
        p = np.where(p > 0, p, PSI_EPSILON)
        q = np.where(q > 0, q, PSI_EPSILON)
        return np.sum((q - p) * np.log(q / p), axis=1)
    from scipy.special import rel_entr

    middle = (p + q) / 2
    divergence = (rel_entr(p, middle).sum(axis=1) + rel_entr(q, middle).sum(axis=1)) / (
        2 * math.log(2)
    )
    return np.sqrt(np.maximum(divergence, 0.0))
