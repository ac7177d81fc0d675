"""The vectorised kernels behind :func:`~loopwise.data.quality.report.data_quality`.

Each check is a few Polars expressions or NumPy array operations over whole columns, never a
Python loop over rows: column kinds and the task, class balance, outliers (IQR fences),
correlated feature pairs (Pearson, Cramér's V), single-feature leakage scores, target copies
and duplicate rows. Each kind of problem also has its function that turns what was found into
a :class:`~loopwise.data.quality.types.Finding` saying what it means and what to do.
:mod:`loopwise.data.quality.report` decides what runs on which rows and how findings are ordered.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from loopwise.data.quality.types import (
    METRICS,
    ClassBalance,
    CorrelatedPair,
    Finding,
    LeakageScore,
    OutlierStats,
    jsonable,
    plural,
)
from loopwise.errors import InvalidInput

_CLASS_LIMIT = 20  # a numeric label with at most this many distinct values is a class label
_CRAMERS_MAX_LEVELS = 100  # Cramér's V only between categoricals with few levels
_BINS = 50  # quantile bins when scoring a numeric feature against three or more classes
_MIN_SCORED_ROWS = 20  # below this, single-feature scores are noise: not computed
_OUTLIER_WARNING_SHARE = 0.001  # fewer outliers than this share: info, not warning
_OUTLIER_MIN_SHARE = 0.0001  # fewer (and none far out): no finding, only report.outliers
_EXAMPLES = 5


# ---- column kinds, target --------------------------------------------------------------


def kind(dtype: pl.DataType) -> str:
    if dtype in (pl.Boolean, pl.String) or isinstance(dtype, pl.Categorical | pl.Enum):
        return "categorical"
    if dtype.is_numeric() or dtype.is_temporal():
        return "numeric"
    if dtype in (pl.Null, pl.Object):
        return "ignored"
    return "other"  # lists, structs, binary: only compared for duplicates


def nan_to_null(frame: pl.DataFrame) -> pl.DataFrame:
    floats = [c for c, t in frame.schema.items() if t.is_float()]
    if not floats:
        return frame
    has_nan = frame.select(pl.col(c).is_nan().any() for c in floats).row(0)
    fix = [c for c, nan in zip(floats, has_nan, strict=True) if nan]
    return frame.with_columns(pl.col(c).fill_nan(None) for c in fix) if fix else frame


def _as_float(name: str, dtype: pl.DataType) -> pl.Expr:
    column = pl.col(name)
    if dtype.is_temporal():
        column = column.to_physical()
    return column.cast(pl.Float64)


def _codes(name: str, dtype: pl.DataType) -> pl.Expr:
    """Dense integer codes of a column's values: 0 for null, then 1, 2, ..."""
    column = pl.col(name)
    if dtype == pl.Boolean:
        column = column.cast(pl.UInt8)
    elif isinstance(dtype, pl.Categorical | pl.Enum):
        column = column.cast(pl.String)
    return column.rank("dense").fill_null(0).cast(pl.Int64)


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    return pl.col(name) if dtype == pl.String else pl.col(name).cast(pl.String)


def resolve_task(y: pl.Series, target: str, task: str | None) -> str:
    distinct = y.n_unique()
    if distinct < 2:
        raise InvalidInput(
            f"Target column {target!r} has the same value ({jsonable(y[0])!r}) in every "
            "labelled row; a model cannot learn from a constant label. Check that the right "
            "column was passed, or that filtering did not remove the other classes."
        )
    numeric = y.dtype.is_numeric()
    if not numeric and kind(y.dtype) != "categorical":
        raise InvalidInput(
            f"Target column {target!r} is {y.dtype}; a target must be numeric, text, boolean "
            "or categorical. Convert it to one of those."
        )
    if task == "regression" and not numeric:
        raise InvalidInput(
            f"Target column {target!r} is {y.dtype}, not numeric, so task='regression' does "
            "not apply; use task='classification' or cast the column to numbers."
        )
    if task is not None:
        return task
    if not numeric:
        return "classification"
    integral = y.dtype.is_integer() or bool((y == y.round(0)).all())
    return "classification" if integral and distinct <= _CLASS_LIMIT else "regression"


# ---- class balance ---------------------------------------------------------------------


def class_balance(y: pl.Series) -> ClassBalance:
    counts = y.rename("label").value_counts(name="n").sort(["n", "label"], descending=[True, False])
    return ClassBalance(
        tuple(jsonable(counts.get_column("label").to_list())),
        tuple(counts.get_column("n").to_list()),
    )


def imbalance_findings(cb: ClassBalance, target: str, threshold: float) -> list[Finding]:
    bar = threshold * 2 / len(cb.labels)
    if cb.minority_share >= bar:
        return []
    total = sum(cb.counts)
    return [
        Finding(
            "class_imbalance",
            "warning",
            (target,),
            f"The rarest class {cb.minority!r} is {cb.minority_share:.1%} of {total:,} "
            f"labelled rows ({cb.imbalance_ratio:.1f} rows of the majority per row of it). "
            "Accuracy will look good for a model that ignores it: judge models by per-class "
            "recall, PR-AUC or balanced accuracy, and consider class weights, resampling or "
            f"collecting more examples of class {cb.minority!r}.",
            jsonable(
                {
                    "minority": cb.minority,
                    "minority_share": cb.minority_share,
                    "imbalance_ratio": cb.imbalance_ratio,
                    "classes": len(cb.labels),
                    "threshold": bar,
                    "shares": cb.shares,
                }
            ),
        )
    ]


def unlabelled_finding(target: str, nulls: int, rows: int) -> Finding:
    return Finding(
        "unlabelled_rows",
        "warning" if nulls / rows >= 0.01 else "info",
        (target,),
        f"{nulls:,} of {rows:,} rows ({nulls / rows:.1%}) have no value in {target!r}; they "
        "were left out of every check except outliers. Find out why labels are missing: "
        "rows unlabelled for a reason (e.g. not yet resolved) bias the training set.",
        {"rows": nulls, "share": nulls / rows},
    )


# ---- outliers --------------------------------------------------------------------------


def outliers(frame: pl.DataFrame, columns: list[str], k: float) -> list[OutlierStats]:
    if not columns:
        return []
    xs = [_as_float(c, frame.schema[c]) for c in columns]
    stats = frame.select(
        *(x.quantile(0.25, "linear").alias(f"a{i}") for i, x in enumerate(xs)),
        *(x.quantile(0.75, "linear").alias(f"b{i}") for i, x in enumerate(xs)),
        *(x.count().alias(f"n{i}") for i, x in enumerate(xs)),
    ).row(0, named=True)
    fences = {}
    for i in range(len(columns)):
        q1, q3 = stats[f"a{i}"], stats[f"b{i}"]
        if q1 is not None and q3 > q1:
            fences[i] = (q1 - k * (q3 - q1), q3 + k * (q3 - q1))
    if not fences:
        return []
    counts = frame.select(
        ((xs[i] < lo) | (xs[i] > hi)).sum().alias(f"c{i}") for i, (lo, hi) in fences.items()
    ).row(0, named=True)
    result = []
    for i, (lo, hi) in fences.items():
        count = counts[f"c{i}"]
        if not count:
            continue
        x = xs[i]
        outside = (x < lo) | (x > hi)
        distance = pl.max_horizontal(lo - x, x - hi).filter(outside)
        iqr = (hi - lo) / (2 * k + 1)
        worst = frame.select(
            pl.int_range(pl.len())
            .filter(outside)
            .sort_by(distance, descending=True)
            .head(_EXAMPLES)
            .alias("row"),
            pl.col(columns[i])
            .filter(outside)
            .sort_by(distance, descending=True)
            .head(_EXAMPLES)
            .alias("value"),
        )
        furthest = frame.select(distance.max()).item() / iqr + k
        result.append(
            OutlierStats(
                columns[i],
                lo,
                hi,
                count,
                count / stats[f"n{i}"],
                furthest,
                tuple(jsonable(r) for r in worst.to_dicts()),
            )
        )
    return result


def notable(o: OutlierStats, k: float) -> bool:
    """Worth a finding: many outliers, or one far beyond the fence. A handful just past the
    fence is what a clean column of a million rows has; those stay in ``report.outliers``."""
    return o.share >= _OUTLIER_MIN_SHARE or o.furthest >= 2 * k


def outlier_finding(o: OutlierStats, k: float) -> Finding:
    shown = ", ".join(str(e["value"]) for e in o.examples[:3])
    return Finding(
        "outliers",
        "warning" if o.share >= _OUTLIER_WARNING_SHARE else "info",
        (o.column,),
        f"{o.column!r} has {plural(o.count, 'value')} ({o.share:.2%}) more than {k:g} IQR "
        f"beyond the quartiles (outside [{o.lower:.4g}, {o.upper:.4g}]); the furthest is "
        f"{o.furthest:.1f} IQR out. Most extreme: {shown}. "
        "Check for entry errors, sentinel codes (-999, 9999) or unit mix-ups and fix or drop "
        "them; for a genuine heavy tail consider a log transform, clipping or a robust model.",
        jsonable({**vars(o), "fence_iqr": k}),
    )


# ---- correlated features ---------------------------------------------------------------


def _pairwise_corr(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of every column pair over the rows where both are present.

    NaN marks a missing value. Four matrix products give, for each pair, the count, sums
    and sums of squares over the rows they share; columns are standardised first so the
    sums do not cancel badly.
    """
    present = np.isfinite(x)
    m = present.astype(np.float64)
    n_col = m.sum(axis=0)
    filled = np.where(present, x, 0.0)
    mean = filled.sum(axis=0) / np.maximum(n_col, 1)
    centred = np.where(present, x - mean, 0.0)
    scale = np.sqrt((centred**2).sum(axis=0) / np.maximum(n_col, 1))
    z = centred / np.where(scale > 0, scale, 1.0)
    n = m.T @ m
    sx = z.T @ m  # sx[i, j]: sum of column i over rows where i and j are both present
    sxx = (z * z).T @ m
    sxy = z.T @ z
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sxy - sx * sx.T / n
        var = sxx - sx**2 / n
        r = cov / np.sqrt(var * var.T)
    degenerate = (n < 3) | (var <= 1e-9 * n) | (1e-9 * n >= var.T)
    r[degenerate] = np.nan
    return np.clip(r, -1.0, 1.0), n


def pearson_pairs(sample: pl.DataFrame, columns: list[str], threshold: float) -> list:
    if len(columns) < 2:
        return []
    x = sample.select(_as_float(c, sample.schema[c]) for c in columns).to_numpy()
    r, n = _pairwise_corr(np.asarray(x, dtype=np.float64))
    i, j = np.nonzero(np.triu(np.abs(np.nan_to_num(r)) >= threshold, k=1))
    return [
        CorrelatedPair((columns[a], columns[b]), "pearson", float(r[a, b]), int(n[a, b]))
        for a, b in zip(i.tolist(), j.tolist(), strict=True)
    ]


def cramers_pairs(sample: pl.DataFrame, columns: list[str], threshold: float) -> list:
    if len(columns) < 2:
        return []
    distinct = sample.select(pl.col(c).n_unique() for c in columns).row(0)
    usable = [c for c, d in zip(columns, distinct, strict=True) if 2 <= d <= _CRAMERS_MAX_LEVELS]
    if len(usable) < 2:
        return []
    codes = sample.select(_codes(c, sample.schema[c]) for c in usable).to_numpy()
    n = codes.shape[0]
    pairs = []
    for a in range(len(usable)):
        for b in range(a + 1, len(usable)):
            v = _cramers_v(codes[:, a], codes[:, b], n)
            if v >= threshold:
                pairs.append(CorrelatedPair((usable[a], usable[b]), "cramers_v", v, n))
    return pairs


def _cramers_v(a: np.ndarray, b: np.ndarray, n: int) -> float:
    """Bias-corrected Cramér's V (Bergsma 2013) of two code arrays."""
    width = int(b.max()) + 1
    counts = np.bincount(a * width + b, minlength=(int(a.max()) + 1) * width)
    counts = counts.reshape(-1, width).astype(np.float64)
    counts = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]
    rows, cols = counts.sum(axis=1), counts.sum(axis=0)
    r, k = counts.shape
    phi2 = (counts**2 / np.outer(rows, cols)).sum() - 1.0
    phi2 = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    r_c, k_c = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    denominator = min(r_c - 1, k_c - 1)
    return float(math.sqrt(phi2 / denominator)) if denominator > 0 else 0.0


def correlation_finding(p: CorrelatedPair) -> Finding:
    a, b = p.columns
    what = (
        f"Pearson r = {p.value:+.3f}" if p.method == "pearson" else (f"Cramér's V = {p.value:.3f}")
    )
    return Finding(
        "correlated_features",
        "warning",
        p.columns,
        f"{a!r} and {b!r} carry almost the same information ({what} on {p.rows:,} rows). "
        "Redundant features make importances and coefficients unstable and can hide a leak "
        "in one of them; keep one, or combine them, unless both are needed.",
        jsonable(vars(p)),
    )


# ---- leakage ---------------------------------------------------------------------------


def leakage_scores(
    sample: pl.DataFrame,
    numeric: list[str],
    categorical: list[str],
    target: str,
    task: str,
    seed: int,
) -> list[LeakageScore]:
    n = sample.height
    if n < _MIN_SCORED_ROWS or not numeric + categorical:
        return []
    schema = sample.schema
    train = np.random.default_rng(seed).random(n) < 0.5
    scores = []
    if task == "classification":
        y = sample.select(_codes(target, schema[target]) - 1).to_series().to_numpy()
        k = int(y.max()) + 1
        if k < 2:
            return []
        if numeric and k == 2:
            # AUC from rank sums; a null ranks below every value, so "missing means
            # positive" is caught too.
            ranks = sample.select(
                _as_float(c, schema[c]).fill_null(-np.inf).rank("average") for c in numeric
            ).to_numpy()
            positive = (y == 1).astype(np.float64)
            n1 = positive.sum()
            auc = (positive @ ranks - n1 * (n1 + 1) / 2) / (n1 * (n - n1))
            scores += [
                LeakageScore(c, "roc_auc", float(max(a, 1 - a)), n)
                for c, a in zip(numeric, auc.tolist(), strict=True)
            ]
        elif numeric:
            bins = sample.select(_quantile_bins(c, schema[c]) for c in numeric).to_numpy()
            scores += [
                LeakageScore(c, "majority_lift", _majority_lift(bins[:, j], y, k, train), n)
                for j, c in enumerate(numeric)
            ]
        if categorical:
            codes = sample.select(_codes(c, schema[c]) for c in categorical).to_numpy()
            scores += [
                LeakageScore(c, "majority_lift", _majority_lift(codes[:, j], y, k, train), n)
                for j, c in enumerate(categorical)
            ]
    else:
        y_expr = _as_float(target, schema[target])
        if numeric:
            ranks = sample.select(
                *(_as_float(c, schema[c]).rank("average") for c in numeric),
                y_expr.rank("average"),
            ).to_numpy()
            r, rows = _pairwise_corr(np.asarray(ranks, dtype=np.float64))
            scores += [
                LeakageScore(c, "spearman", float(np.nan_to_num(abs(r[j, -1]))), int(rows[j, -1]))
                for j, c in enumerate(numeric)
            ]
        if categorical:
            y = sample.select(y_expr).to_series().to_numpy()
            codes = sample.select(_codes(c, schema[c]) for c in categorical).to_numpy()
            scores += [
                LeakageScore(c, "category_r", _category_r(codes[:, j], y, train), n)
                for j, c in enumerate(categorical)
            ]
    return sorted(scores, key=lambda s: -s.score)


def _quantile_bins(name: str, dtype: pl.DataType) -> pl.Expr:
    """Equal-frequency bin codes 1.._BINS (0 for null); ties share a bin."""
    x = _as_float(name, dtype)
    position = (x.rank("min").cast(pl.Float64) - 1) * _BINS / x.count()
    return position.floor().cast(pl.Int64).fill_null(-1) + 1


def _majority_lift(f: np.ndarray, y: np.ndarray, k: int, train: np.ndarray) -> float:
    """How much a per-value majority vote, learnt on one half, beats the overall majority
    on the other half: 0 = no better, 1 = perfect. Held out, so an id column scores 0."""
    ft, yt, fe, ye = f[train], y[train], f[~train], y[~train]
    if not len(ft) or not len(fe):
        return 0.0
    keys, counts = np.unique(ft * k + yt, return_counts=True)
    values, classes = keys // k, keys % k
    order = np.lexsort((-counts, values))
    values, classes = values[order], classes[order]
    first = np.r_[True, values[1:] != values[:-1]]
    vote = np.full(int(f.max()) + 1, -1)
    vote[values[first]] = classes[first]
    overall = int(np.bincount(yt, minlength=k).argmax())
    predicted = vote[fe]
    predicted[predicted < 0] = overall
    base = float((ye == overall).mean())
    if base >= 1.0:
        return 0.0
    return max(0.0, (float((predicted == ye).mean()) - base) / (1.0 - base))


def _category_r(f: np.ndarray, y: np.ndarray, train: np.ndarray) -> float:
    """sqrt of the held-out R² of predicting ``y`` by the mean of its feature value."""
    size = int(f.max()) + 1
    counts = np.bincount(f[train], minlength=size)
    sums = np.bincount(f[train], weights=y[train], minlength=size)
    overall = float(y[train].mean()) if train.any() else 0.0
    means = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
    ye = y[~train]
    total = float(((ye - ye.mean()) ** 2).sum()) if len(ye) else 0.0
    if total <= 0:
        return 0.0
    r2 = 1.0 - float(((ye - means[f[~train]]) ** 2).sum()) / total
    return math.sqrt(max(r2, 0.0))


def target_copies(
    sample: pl.DataFrame, labelled: pl.DataFrame, columns: list[str], target: str
) -> dict[str, bool]:
    """Features equal to the target, or one-to-one with it: column -> identical?

    Screened on the sample, confirmed on every labelled row.
    """
    candidates = _copy_screen(sample, columns, target)
    if candidates and sample.height < labelled.height:
        candidates = _copy_screen(labelled, list(candidates), target)
    return candidates


def _copy_screen(frame: pl.DataFrame, columns: list[str], target: str) -> dict[str, bool]:
    if not columns:
        return {}
    schema = frame.schema
    t_type = schema[target]
    exprs = [pl.col(target).n_unique().alias("t")]
    for i, c in enumerate(columns):
        if schema[c].is_numeric() and t_type.is_numeric():
            same = pl.col(c).cast(pl.Float64).eq_missing(pl.col(target).cast(pl.Float64))
        else:
            same = _as_text(c, schema[c]).eq_missing(_as_text(target, t_type))
        exprs += [
            same.all().alias(f"s{i}"),
            pl.col(c).n_unique().alias(f"u{i}"),
            pl.struct(pl.col(c), pl.col(target)).n_unique().alias(f"p{i}"),
        ]
    row = frame.select(exprs).row(0, named=True)
    found = {}
    for i, c in enumerate(columns):
        t = row["t"]
        one_to_one = row[f"u{i}"] == row[f"p{i}"] == t and t <= frame.height / 2
        if row[f"s{i}"] or one_to_one:
            found[c] = bool(row[f"s{i}"])
    return found


def copy_finding(column: str, identical: bool, target: str, rows: int) -> Finding:
    how = "identical to" if identical else "a one-to-one relabelling of"
    return Finding(
        "target_copy",
        "error",
        (column, target),
        f"{column!r} is {how} the target {target!r} in all {rows:,} labelled rows: it is the "
        "label under another name. Drop it from the features, and find out how it got into "
        "the training data.",
        {"identical": identical, "rows": rows},
    )


def leakage_finding(s: LeakageScore, target: str, sampled: bool) -> Finding:
    return Finding(
        "leakage_candidate",
        "warning",
        (s.column,),
        f"{s.column!r} alone predicts {target!r} almost perfectly ({METRICS[s.metric]} = "
        f"{s.score:.3f} on {s.rows:,} rows). A feature this strong is usually a leak: a copy "
        "or consequence of the label, or something recorded after the outcome. Confirm its "
        "value is known at prediction time; if not, drop it.",
        jsonable({**vars(s), "target": target, "sampled": sampled}),
    )


def sampled_finding(used: int, rows: int, seed: int) -> Finding:
    return Finding(
        "sampled",
        "info",
        (),
        f"Correlations and leakage scores were computed on a random sample of {used:,} of "
        f"{rows:,} labelled rows (seed {seed}); outlier and duplicate counts use every row.",
        {"sample_rows": used, "rows": rows, "seed": seed},
    )


# ---- duplicates ------------------------------------------------------------------------


def duplicate_findings(
    frame: pl.DataFrame, keys: list[str], target: str | None, task: str | None
) -> list[Finding]:
    if not keys:
        return []
    repeated = frame.select(keys).is_duplicated()
    if not repeated.any():
        return []
    rows, labels = _free_name(frame, "rows"), _free_name(frame, "labels")
    agg = [pl.len().alias(rows)]
    agg.append(pl.col(target).n_unique().alias(labels) if target else pl.lit(1).alias(labels))
    dupes = frame.filter(repeated)
    groups = dupes.group_by(keys, maintain_order=True).agg(agg)
    conflicts = groups.filter(pl.col(labels) > 1)
    agreeing = groups.filter(pl.col(labels) == 1)
    findings = []
    extra = int(agreeing.get_column(rows).sum()) - agreeing.height
    if extra:
        findings.append(
            Finding(
                "duplicate_rows",
                "info",
                (),
                f"{extra:,} rows repeat another row exactly ({agreeing.height:,} distinct "
                "rows appear more than once). Duplicates weigh those examples more, and a "
                "random train/test split puts copies on both sides, inflating test scores; "
                "deduplicate, or split so copies stay together.",
                {"extra_rows": extra, "groups": agreeing.height},
            )
        )
    if target is None or conflicts.height == 0:
        return findings
    top = conflicts.sort(rows, descending=True, maintain_order=True).head(_EXAMPLES)
    label_counts = (
        dupes.join(top.select(keys), on=keys, nulls_equal=True)
        .group_by([*keys, target], maintain_order=True)
        .agg(pl.len().alias(rows))
        .sort(rows, descending=True, maintain_order=True)
    )
    examples = []
    for group in top.iter_rows(named=True):
        match = label_counts.filter(pl.all_horizontal(pl.col(c).eq_missing(group[c]) for c in keys))
        examples.append(
            {
                "features": {c: group[c] for c in keys},
                "rows": group[rows],
                "labels": [
                    {"value": r[target], "rows": r[rows]} for r in match.iter_rows(named=True)
                ],
            }
        )
    n_groups, n_rows = conflicts.height, int(conflicts.get_column(rows).sum())
    classification = task == "classification"
    meaning = (
        "Either the features miss something that decides the label, or some labels are "
        "wrong (mislabel candidates). Review the examples; fix wrong labels or add the "
        "missing feature, since no model can fit both."
        if classification
        else "For a regression target some spread is noise; a large spread means the features "
        "miss something that decides the target, or some values are wrong."
    )
    findings.append(
        Finding(
            "conflicting_duplicates",
            "warning" if classification else "info",
            (target,),
            f"{plural(n_groups, 'group')} of rows ({n_rows:,} rows, {n_rows / frame.height:.1%}"
            f" of the labelled rows) are identical in all {plural(len(keys), 'feature')} but "
            f"have different {target!r} values. {meaning}",
            jsonable({"groups": n_groups, "rows": n_rows, "examples": examples}),
        )
    )
    return findings


def _free_name(frame: pl.DataFrame, base: str) -> str:
    name = f"__{base}"
    while name in frame.columns:
        name += "_"
    return name
