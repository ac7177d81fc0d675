"""Propose a :class:`~loopwise.data.schema.Schema` from data or a profile.

A schema that flags ordinary sampling noise gets switched off, so every default here leans
towards letting a fresh sample of the same distribution pass: identifier columns become
keys (no range or domain, since new ids are always new); numeric ranges are widened well
beyond the observed span, using the tails of the distribution; value domains are proposed
only where values repeat; the label's class-share floor sits below the share observed.
Date and datetime columns get no range (time moves on); add one by hand if it matters.
People tighten what they know better in the YAML.
"""

from __future__ import annotations

import ast
import math
from typing import Any

import polars as pl

from loopwise.data.frames import DataLike, to_polars
from loopwise.data.profiles import ColumnProfile, Profile
from loopwise.data.schema import ColumnSchema, Schema, Thresholds, default_key
from loopwise.errors import InvalidInput

#: Fewer rows than this and no column is taken for a key (everything is unique in tiny data).
KEY_MIN_ROWS = 20
#: From a profile alone, text longer than this is taken for free text, not for an id.
KEY_MAX_CHARS = 64
#: A text column needs this many rows per distinct value on average to get a domain.
DOMAIN_MIN_REPEATS = 10
#: Ranges reach this many (q99 - q95) spans past the 99th percentile (linear tail).
TAIL_SPANS = 10
#: For positive data, also this power of q99/q95 past q99 (a lognormal-like tail).
GEOMETRIC_SPANS = 6

_TYPE_OF_KIND = {"other": "any"}
_UNKNOWN_MODE = 0.5  # assumed top share when the profile lists no top values


def infer_schema(
    data_or_profile: DataLike | Profile,
    *,
    label: str | None = None,
    range_slack: float = 0.1,
    ordered: bool = False,
    max_categories: int = 50,
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
    - numeric ``min``/``max``: the observed range widened on both sides by the largest of
      ``range_slack`` x span, the 1%-99% quantile spread, and a tail extrapolation; kept
      at or above 0 where the data is non-negative and bunched towards 0;
    - ``mode_share`` (for the "pinned to one value" check), placeholder values seen (and
      the share of zeros of a numeric column without a domain), the share of duplicate
      rows, and the label's ``min_class_share`` (1%, or half the rarest class's share if
      lower).

    From a profile alone, domains come from its top values (only when they list every
    value) and the duplicate-row share is unknown (0 is assumed).
    """
    _check_params(label, range_slack, ordered, max_categories)
    frame = None
    if isinstance(data_or_profile, Profile):
        prof = data_or_profile
    else:
        from loopwise.data.profiling import profile

        frame = to_polars(data_or_profile, what="data for infer_schema")
        prof = profile(frame)
    if label is not None and label not in prof.columns:
        raise InvalidInput(
            f"infer_schema: label {label!r} is not a column; columns: {list(prof.columns)}."
        )
    rows = prof.rows
    keys = [name for name, cp in prof.columns.items() if name != label and _is_key(cp, frame)]
    domains = _domains(prof, frame, label, keys, max_categories)
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
        )
    thresholds = Thresholds(
        min_class_share=_class_floor(prof, frame, label, domains),
        max_duplicate_share=_duplicate_allowance(frame),
    )
    return Schema(
        columns=columns,
        label=label,
        ordered=ordered,
        keys=[[k] for k in keys],
        thresholds=thresholds,
        rows=rows,
    )


def numeric_range(cp: ColumnProfile, kind: str, range_slack: float) -> tuple[Any, Any]:
    """Bounds that ordinary samples of the same distribution stay inside (see module doc)."""
    low, high = float(cp.min), float(cp.max)
    pad = range_slack * (high - low)
    q = cp.quantiles or {}
    if all(k in q for k in ("0.01", "0.05", "0.95", "0.99")):
        q01, q05, q95, q99 = (float(q[k]) for k in ("0.01", "0.05", "0.95", "0.99"))
        pad = max(pad, q99 - q01)
        upper = _upper(high, low, q99, q95, q01, pad)
        lower = 0.0 - _upper(-low, -high, -q01, -q05, -q99, pad)
    else:
        upper, lower = high + pad, low - pad
        if low >= 0 and low <= 0.25 * high:
            lower = max(lower, 0.0)
        if high <= 0 and -high <= -0.25 * low:
            upper = min(upper, 0.0)
    if kind == "integer":
        return math.ceil(lower), math.floor(upper)
    return _round_out(lower, low, up=False), _round_out(upper, high, up=True)


def _upper(
    top: float, bottom: float, q_end: float, q_inner: float, q_other: float, pad: float
) -> float:
    """Upper bound from max and min, the 99%/95% quantiles and the 1% one (``q_other``).

    The lower bound is the same rule applied to the negated values.
    """
    bound = max(top + pad, q_end + TAIL_SPANS * (q_end - q_inner))
    if bottom >= 0 and q_inner > 0:  # positive data: allow a lognormal-like tail
        bound = max(bound, q_end * (q_end / q_inner) ** GEOMETRIC_SPANS)
    if top <= 0 and -q_end <= -0.25 * q_other:  # non-positive, bunched towards 0
        bound = min(bound, 0.0)
    return bound


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


def _check_params(label: Any, range_slack: Any, ordered: Any, max_categories: Any) -> None:
    def bad(name: str, rule: str, value: Any) -> InvalidInput:
        return InvalidInput(
            f"The {name!r} parameter of infer_schema must be {rule}. Got {value!r} instead."
        )

    if label is not None and not isinstance(label, str):
        raise bad("label", "a column name (str) or None", label)
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
