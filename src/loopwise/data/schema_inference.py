"""Propose a :class:`~loopwise.data.schema.Schema` from data or a profile.

A schema that flags ordinary sampling noise gets switched off, and one that lets a unit
change through is no check at all, so the defaults here let a fresh sample of the same
distribution pass and little else: identifier columns become keys (no range or domain,
since new ids are always new); numeric ranges follow the observed support (never below 0
for data that never was; an edge where values pile up, such as 0/1 or a floor, is kept
as it is; a thin tail is extrapolated from the spread of its quantiles, in log space
for right-skewed positive data); numeric columns record their reference quantiles, which
validation compares a batch with (:mod:`loopwise.data.distribution`), so a column scaled
by 1.5 is an error although its values stay in range; value domains are proposed only
where values repeat; the label's class-share floor sits below the share observed. Date
and datetime columns get no range (time moves on); add one by hand if it matters. People
tighten what they know better in the YAML.
"""

from __future__ import annotations

import ast
import math
from typing import Any

import polars as pl

from loopwise.data import distribution
from loopwise.data.frames import DataLike, to_polars
from loopwise.data.profiles import ColumnProfile, Profile
from loopwise.data.schema import ColumnSchema, Schema, Thresholds, default_key
from loopwise.errors import InvalidInput
from loopwise.param_errors import bad_param, renamed

#: Fewer rows than this and no column is taken for a key (everything is unique in tiny data).
KEY_MIN_ROWS = 20
#: From a profile alone, text longer than this is taken for free text, not for an id.
KEY_MAX_CHARS = 64
#: A text column needs this many rows per distinct value on average to get a domain.
DOMAIN_MIN_REPEATS = 10
#: A thin tail's range ends up to this many (q99 - q95) spans past the 99th percentile
#: (the 1st likewise): where an exponential tail (the heaviest this rule serves) has 1e-7
#: of its values. The spans are fewer for a tail that thins out faster, in proportion to
#: (q99 - q95) / (q95 - q75) (1 for an exponential tail, 0.71 for a normal one), and at
#: least MIN_TAIL_SPANS: a normal column gets about 5.8 standard deviations.
TAIL_SPANS = 7
MIN_TAIL_SPANS = 4
#: The range also ends at least this many (q99 - q95) spans past the observed max (the 1st
#: percentile and min likewise), and LOG_OUTLIER_SPANS spans of log(q99 / q95) where the
#: tail is extrapolated in log space (see SKEW_FOR_LOG): a sample's outliers announce
#: heavier ones. Three log spans end a lognormal column's range about 2 standard deviations
#: of its logs past the largest value seen (6.4 on average from 100,000 rows, 5.8 at the
#: least over 3,000 such columns): with two, 4 of 40 fresh batches of 75 lognormal columns
#: of 100,000 rows held a value past some column's range; with three, none did.
OUTLIER_SPANS = 4
LOG_OUTLIER_SPANS = 3
#: Right skew, (q99 - q50) / (q50 - q01), above which the upper tail of non-negative data
#: with a positive median (amounts, sizes, durations, ratios) is also extrapolated in log
#: space, LOG_TAIL_SPANS spans of log(q99 / q95) past q99, and the wider bound kept: about
#: 5.1 standard deviations of the logs of a lognormal column (1e-7 of its values beyond).
#: The lower bound of positive data is extrapolated so too (towards 0, never past it).
SKEW_FOR_LOG = 2
LOG_TAIL_SPANS = 4
#: A hard edge of the data (0/1, a floor at 0, a cap, integers whose end values repeat):
#: 1% of the values or more sit on the edge value (q01 is the min), and the histogram's
#: edge bin holds this many values and at least half as many as the next non-empty bin
#: (the data is not thinning out towards it, as a geometric count's does)...
HARD_EDGE_VALUES = 20
#: ...and the range ends this many mean gaps between values past it (less than one value
#: for repeated integers, so their range is exact).
HARD_EDGE_GAPS = 10

_TYPE_OF_KIND = {"other": "any"}
_UNKNOWN_MODE = 0.5  # assumed top share when the profile lists no top values


def infer_schema(
    data_or_profile: DataLike | Profile,
    *,
    target: str | None = None,
    range_slack: float = 0.1,
    ordered: bool = False,
    max_categories: int = 50,
    label: str | None = None,
) -> Schema:
    """Propose a schema for ``data_or_profile`` (data of any kind ``to_polars`` reads, or a
    :class:`~loopwise.data.profiles.Profile`). Review it, then ``schema.save(path)``.

    - type, ``required`` (always true) and ``nullable`` (nulls seen) with the observed
      ``max_missing_rate``;
    - keys: integer or text columns whose values are all present and distinct (with at
      least ``KEY_MIN_ROWS`` rows; text without whitespace, so free text is no key); they
      get no range and no domain;
    - ``domain`` for a text column with at most ``max_categories`` distinct values, each
      seen ``DOMAIN_MIN_REPEATS`` times on average (so free text and ids are not domains),
      for booleans, and for the label when it has few classes;
    - numeric ``min``/``max``: the observed range; a thin tail widened by the largest of
      ``range_slack`` x span, ``TAIL_SPANS`` (q99 - q95) spans past q99 (fewer for a
      tail thinning faster than an exponential one) and ``OUTLIER_SPANS`` past the max
      (likewise below; in log space too for right-skewed positive data); a hard edge
      (values piled up at it: 0/1, a floor, a cap, repeated integers) kept within
      ``HARD_EDGE_GAPS`` mean gaps between values, so exact for integers; never below 0
      for data that is never negative (nor above 0 for data never positive);
    - ``distribution``: the quantiles in :data:`~loopwise.data.distribution.QUANTILES` of
      each numeric column (not keys, not the label) with at least
      :data:`~loopwise.data.distribution.MIN_VALUES` values, for validation to compare;
    - ``mode_share`` (for the "pinned to one value" check), placeholder values seen (and
      the share of zeros of a numeric column without a domain), the share of duplicate
      rows, and the label's ``min_class_share`` (1%, or half the rarest class's share if
      lower).

    From a profile alone, domains come from its top values (only when they list every
    value) and the duplicate-row share is unknown (0 is assumed).

    ``target`` names the label column (what a model learns to predict); ``label`` is its
    former name (deprecated: it warns).
    """
    target = renamed("infer_schema", "target", target, "label", label)
    _check_params(target, range_slack, ordered, max_categories)
    frame = None
    if isinstance(data_or_profile, Profile):
        prof = data_or_profile
    else:
        from loopwise.data.profiling import profile

        frame = to_polars(data_or_profile, what="data for infer_schema")
        prof = profile(frame)
    if target is not None and target not in prof.columns:
        raise InvalidInput(
            f"infer_schema: target {target!r} is not a column; columns: {list(prof.columns)}."
        )
    rows = prof.rows
    keys = [name for name, cp in prof.columns.items() if name != target and _is_key(cp, frame)]
    domains = _domains(prof, frame, target, keys, max_categories)
    columns = {}
    for name, cp in prof.columns.items():
        kind = "any" if cp.dtype == "Null" else _TYPE_OF_KIND.get(cp.kind, cp.kind)
        low = high = None
        if kind in ("integer", "float") and name not in keys and cp.min is not None:
            low, high = numeric_range(cp, kind, range_slack)
        columns[name] = ColumnSchema(
            name=name,
            type=kind,
            required=True,
            nullable=cp.nulls > 0 or rows == 0,
            max_missing_rate=_ceil(cp.null_fraction) if rows else 1.0,
            min=low,
            max=high,
            domain=domains.get(name),
            mode_share=None if name in keys else _mode_share(cp),
            defaults_seen=_defaults_seen(cp, zeros=name not in domains),
            distribution=(
                distribution.learn(cp.count, cp.quantiles)
                if low is not None and name != target
                else None
            ),
        )
    thresholds = Thresholds(
        min_class_share=_class_floor(prof, frame, target, domains),
        max_duplicate_share=_duplicate_allowance(frame),
    )
    return Schema(
        columns=columns,
        target=target,
        ordered=ordered,
        keys=[[k] for k in keys],
        thresholds=thresholds,
        rows=rows,
    )


def numeric_range(cp: ColumnProfile, kind: str, range_slack: float) -> tuple[Any, Any]:
    """Bounds that ordinary samples of the same distribution stay inside (see module doc)."""
    low, high = float(cp.min), float(cp.max)
    pad = range_slack * (high - low)
    lower, upper = low - pad, high + pad
    q = {k: float(v) for k, v in (cp.quantiles or {}).items()}
    names = ("0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99")
    hist = cp.histogram
    if all(k in q for k in names):
        q01, q05, q25, q50, q75, q95, q99 = (q[k] for k in names)
        right = low >= 0 and q50 > 0 and q99 - q50 > SKEW_FOR_LOG * (q50 - q01)
        left = high <= 0 and q50 < 0 and q50 - q01 > SKEW_FOR_LOG * (q99 - q50)
        upper = max(upper, _tail(q99, q95, q75, log=right), high + OUTLIER_SPANS * (q99 - q95))
        lower = min(lower, -_tail(-q01, -q05, -q25, log=left), low - OUTLIER_SPANS * (q05 - q01))
        if right:
            upper = max(upper, high * (q99 / q95) ** LOG_OUTLIER_SPANS)
        if left:
            lower = min(lower, low * (q01 / q05) ** LOG_OUTLIER_SPANS)
        if low > 0 and q05 > 0:
            lower = min(lower, q01 / (q05 / q01) ** LOG_TAIL_SPANS)
        if high < 0 and q95 < 0:
            upper = max(upper, q99 / (q95 / q99) ** LOG_TAIL_SPANS)
        if hist is not None and hist.counts:
            gap = (high - low) / len(hist.counts) * HARD_EDGE_GAPS
            if q99 >= high and _crowded(hist.counts[::-1]):
                upper = min(upper, high + gap / hist.counts[-1])
            if q01 <= low and _crowded(hist.counts):
                lower = max(lower, low - gap / hist.counts[0])
    upper, lower = max(upper, high), min(lower, low)
    if low >= 0:
        lower = max(lower, 0.0)
    if high <= 0:
        upper = min(upper, 0.0)
    if kind == "integer":
        return math.ceil(lower), math.floor(upper)
    return _round_out(lower, low, up=False), _round_out(upper, high, up=True)


def _crowded(counts: list[int]) -> bool:
    """Whether the first bin of ``counts`` may hold a hard edge (:data:`HARD_EDGE_VALUES`)."""
    inner = next((n for n in counts[1:] if n), 0)
    return counts[0] >= HARD_EDGE_VALUES and 2 * counts[0] >= inner


def _tail(q_end: float, q_inner: float, q_body: float, *, log: bool) -> float:
    """The range's end past the 99th percentile ``q_end``, from the spacing of the 95th
    (``q_inner``) and 75th (``q_body``): see :data:`TAIL_SPANS`; with ``log`` (skewed
    positive data), the wider of that and the same in log space (:data:`LOG_TAIL_SPANS`)."""
    outer, inner = q_end - q_inner, q_inner - q_body
    thinning = outer / inner if inner > 0 else 1.0
    spans = min(TAIL_SPANS, max(MIN_TAIL_SPANS, TAIL_SPANS * thinning))
    linear = q_end + spans * outer
    return max(linear, q_end * (q_end / q_inner) ** LOG_TAIL_SPANS) if log else linear


def _round_out(value: float, observed: float, *, up: bool) -> float:
    """``value`` to 6 significant digits, rounded away from the data, never inside it."""
    if value == observed or not math.isfinite(value) or value == 0:
        return float(value)
    step = 10 ** (math.floor(math.log10(abs(value))) - 5)
    rounded = (math.ceil(value / step) if up else math.floor(value / step)) * step
    rounded = float(f"{rounded:.6g}")
    ok = rounded >= max(value, observed) if up else rounded <= min(value, observed)
    return rounded if ok else float(value)


def _is_key(cp: ColumnProfile, frame: pl.DataFrame | None) -> bool:
    """Unique integers, or unique text without spaces (free text is unique too, but not a key)."""
    if cp.kind not in ("integer", "string") or cp.count < KEY_MIN_ROWS or cp.nulls:
        return False
    if cp.kind == "string":
        if frame is not None:
            if frame.select(pl.col(cp.name).str.contains(r"\s").any()).item():
                return False
        elif (cp.string_length or {}).get("max", 0) > KEY_MAX_CHARS:
            return False
    if not cp.distinct_is_approximate:
        return cp.distinct == cp.count
    if frame is None or abs(cp.distinct - cp.count) > 0.02 * cp.count:
        return False
    return frame.select(pl.col(cp.name).n_unique()).item() == cp.count


def _domains(
    prof: Profile,
    frame: pl.DataFrame | None,
    label: str | None,
    keys: list[str],
    max_categories: int,
) -> dict[str, list[Any]]:
    wanted = [
        name
        for name, cp in prof.columns.items()
        if cp.count
        and name not in keys
        and cp.distinct <= max_categories
        and _wants_domain(cp, is_label=name == label)
    ]
    if frame is not None and wanted:
        exprs = [_text(frame, name).drop_nulls().unique().implode().alias(name) for name in wanted]
        values = frame.select(exprs).row(0, named=True)
        return {name: sorted(values[name]) for name in wanted}
    domains = {}
    for name in wanted:
        cp = prof.columns[name]
        if cp.top_values and len(cp.top_values) == cp.distinct:
            domains[name] = sorted(v for v, _ in cp.top_values)
    return domains


def _wants_domain(cp: ColumnProfile, *, is_label: bool) -> bool:
    if is_label:  # classes
        return cp.kind in ("string", "categorical", "boolean", "integer")
    if cp.kind == "string":
        return cp.count >= DOMAIN_MIN_REPEATS * cp.distinct
    return cp.kind in ("categorical", "boolean")


def _text(frame: pl.DataFrame, name: str) -> pl.Expr:
    """Categorical values as text (domains are written as plain values)."""
    dtype = frame.schema[name]
    return (
        pl.col(name).cast(pl.String)
        if isinstance(dtype, pl.Categorical | pl.Enum)
        else pl.col(name)
    )


def _mode_share(cp: ColumnProfile) -> float | None:
    if cp.count == 0:
        return None
    shares = [1.0 / max(cp.distinct, 1)]
    if cp.top_values:
        shares.append(cp.top_values[0][1] / cp.count)
    elif cp.distinct <= 50 and cp.kind not in ("string", "categorical", "boolean"):
        shares.append(_UNKNOWN_MODE)  # a few repeated numbers whose counts we do not know
    if cp.zeros:
        shares.append(cp.zeros / cp.count)
    if cp.suspicious_defaults:
        shares.append(max(cp.suspicious_defaults.values()) / cp.count)
    return min(1.0, _ceil(max(shares)))


def _defaults_seen(cp: ColumnProfile, *, zeros: bool) -> dict[str, float]:
    """Share of each placeholder value in the source data; with ``zeros``, 0 as well for
    a numeric column (validation checks 0 in numeric columns that have no domain)."""
    seen: dict[str, float] = {}
    if zeros and cp.kind in ("integer", "float") and cp.zeros and cp.count:
        seen[default_key(0)] = min(1.0, _ceil(cp.zeros / cp.count))
    for raw, n in cp.suspicious_defaults.items():
        if not n or not cp.count:
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw  # dates are stored as plain ISO text
        key = default_key(value)
        seen[key] = min(1.0, _ceil(seen.get(key, 0.0) + n / cp.count))
    return seen


def _class_floor(
    prof: Profile, frame: pl.DataFrame | None, label: str | None, domains: dict[str, list[Any]]
) -> float:
    default = Thresholds().min_class_share
    if label is None or label not in domains:
        return default
    if frame is not None:
        counts = frame.get_column(label).drop_nulls().value_counts().get_column("count")
        shares = [int(n) / max(prof.columns[label].count, 1) for n in counts]
    else:
        shares = [n / max(prof.columns[label].count, 1) for _, n in prof.columns[label].top_values]
    rarest = min(shares, default=1.0)
    return min(default, _floor(rarest / 2))


def _duplicate_allowance(frame: pl.DataFrame | None) -> float:
    """0 without duplicates; rows that repeat naturally (>= 1%) switch the check off."""
    if frame is None or frame.height < 2:
        return 0.0
    from loopwise.data.validation import count_duplicate_rows

    share = count_duplicate_rows(frame)[0] / frame.height
    if share == 0:
        return 0.0
    return 1.0 if share >= 0.01 else min(1.0, _ceil(max(2 * share, share + 0.01)))


def _ceil(x: float, digits: int = 6) -> float:
    return math.ceil(x * 10**digits) / 10**digits


def _floor(x: float, digits: int = 6) -> float:
    return math.floor(x * 10**digits) / 10**digits


def _check_params(target: Any, range_slack: Any, ordered: Any, max_categories: Any) -> None:
    def bad(name: str, rule: str, value: Any) -> InvalidInput:
        return bad_param("infer_schema", name, rule, value)

    if target is not None and not isinstance(target, str):
        raise bad("target", "a column name (str) or None", target)
    if (
        isinstance(range_slack, bool)
        or not isinstance(range_slack, int | float)
        or not 0 <= range_slack < math.inf
    ):
        raise bad("range_slack", "a float in [0, inf)", range_slack)
    if not isinstance(ordered, bool):
        raise bad("ordered", "a bool", ordered)
    if (
        isinstance(max_categories, bool)
        or not isinstance(max_categories, int)
        or max_categories < 0
    ):
        raise bad("max_categories", "an int in [0, inf)", max_categories)
