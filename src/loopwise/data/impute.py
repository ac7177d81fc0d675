"""Fill missing values visibly, and the same way at training and serving time.

Silent imputation hides a broken pipeline behind plausible numbers, and a model cannot
learn that "missing" itself carries signal. So :func:`impute` adds a boolean
``<name>__was_missing`` column for every column it fills, and returns the fill values it
learned (:class:`ImputeResult`), so serving data is filled with exactly the training-time
values (``result.apply(serving_data)``) rather than statistics of each serving batch.

The result is always a Polars frame (``result.data``); ``result.to_pandas()`` converts it
for pandas users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl

from loopwise._version import __version__
from loopwise.data.frames import DataLike, to_polars
from loopwise.data.schema import Schema, dtype_type
from loopwise.errors import InvalidInput

FORMAT_VERSION = 1
STRATEGIES = ("median", "mean", "most_frequent", "constant")
INDICATOR_SUFFIX = "__was_missing"


@dataclass
class ImputeResult:
    """The filled frame, and what was filled with what.

    ``fill_values`` maps each imputed column to its fill value; ``strategies`` to the
    strategy actually used (text, boolean and date columns use ``most_frequent`` when
    ``median`` or ``mean`` was asked for). ``indicators`` are the added flag columns.
    """

    data: pl.DataFrame
    fill_values: dict[str, Any]
    strategies: dict[str, str] = field(default_factory=dict)

    @property
    def indicators(self) -> list[str]:
        return [f"{name}{INDICATOR_SUFFIX}" for name in self.fill_values]

    def to_pandas(self) -> Any:
        """``data`` as a pandas DataFrame."""
        return self.data.to_pandas()

    def apply(self, data: DataLike) -> pl.DataFrame:
        """Fill ``data`` (e.g. serving data) with these fill values, adding the indicators."""
        frame = to_polars(data, what="data to impute")
        return _fill(frame, self.fill_values)

    def to_dict(self) -> dict[str, Any]:
        """Fill values and strategies as JSON-safe data (dates as ISO text)."""
        values = {
            k: v.isoformat() if isinstance(v, date) else v for k, v in self.fill_values.items()
        }
        return {
            "format_version": FORMAT_VERSION,
            "loopwise_version": __version__,
            "fill_values": values,
            "strategies": dict(self.strategies),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImputeResult:
        """Fill values saved with :meth:`to_dict`, ready for :meth:`apply` (no ``data``)."""
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            raise InvalidInput(
                f"Imputation values need format_version {FORMAT_VERSION}; got "
                f"{data.get('format_version') if isinstance(data, dict) else data!r}. "
                "Fit them again with impute(data)."
            )
        fills = data.get("fill_values")
        if not isinstance(fills, dict):
            raise InvalidInput("Imputation values need a 'fill_values' mapping.")
        return cls(pl.DataFrame(), dict(fills), dict(data.get("strategies") or {}))


def impute(
    data: DataLike,
    schema: Schema | None = None,
    *,
    strategy: str = "median",
    fill_value: Any = None,
    columns: list[str] | None = None,
) -> ImputeResult:
    """Fill missing values (null, and NaN in float columns) and flag every filled row.

    Which columns: ``columns`` if given; else, with a ``schema``, its nullable columns
    other than the target and keys (plus any column that has missing values here), so the
    same indicator columns appear for every batch; else every column with missing values.

    ``strategy``: ``median`` or ``mean`` for numbers (integer columns get the rounded
    value and keep their type; other kinds fall back to ``most_frequent``),
    ``most_frequent`` (ties go to the smallest value), or ``constant`` with
    ``fill_value`` (one value, or a mapping of column to value).

    Returns an :class:`ImputeResult`: ``.data`` (a Polars frame, whatever the input type;
    ``.to_pandas()`` converts), ``.fill_values`` and ``.apply(new_data)`` for serving.
    """
    if strategy not in STRATEGIES:
        raise InvalidInput(
            f"The 'strategy' parameter of impute must be one of {list(STRATEGIES)}. "
            f"Got {strategy!r} instead."
        )
    if strategy == "constant" and fill_value is None:
        raise InvalidInput("impute: strategy='constant' needs fill_value (a value or a mapping).")
    if strategy != "constant" and fill_value is not None:
        raise InvalidInput("impute: fill_value is only used with strategy='constant'.")
    if schema is not None and not isinstance(schema, Schema):
        raise InvalidInput(f"impute: schema must be a Schema or None; got {type(schema).__name__}.")
    frame = to_polars(data, what="data to impute")
    names = _columns(frame, schema, columns)
    fills, used = _fit(frame, names, strategy, fill_value)
    return ImputeResult(_fill(frame, fills), fills, used)


def _columns(frame: pl.DataFrame, schema: Schema | None, columns: Any) -> list[str]:
    if columns is not None:
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise InvalidInput(f"impute: columns must be a list of column names; got {columns!r}.")
        absent = [c for c in columns if c not in frame.schema]
        if absent:
            raise InvalidInput(
                f"impute: columns {absent} are not in the data; it has {frame.columns}."
            )
        return list(dict.fromkeys(columns))
    missing = _missing_counts(frame)
    if schema is None:
        return [c for c in frame.columns if missing[c]]
    skip = {schema.target, *(k for key in schema.keys for k in key)}
    nullable = {n for n, c in schema.columns.items() if c.nullable}
    return [c for c in frame.columns if c not in skip and (c in nullable or missing[c])]


def _missing_counts(frame: pl.DataFrame) -> dict[str, int]:
    if frame.width == 0:
        return {}
    exprs = [_missing(frame, c).sum().alias(c) for c in frame.columns]
    return frame.select(exprs).row(0, named=True)


def _missing(frame: pl.DataFrame, name: str) -> pl.Expr:
    x = pl.col(name)
    return x.is_null() | x.is_nan() if frame.schema[name].is_float() else x.is_null()


def _fit(
    frame: pl.DataFrame, names: list[str], strategy: str, fill_value: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    used = {}
    for name in names:
        numeric = dtype_type(frame.schema[name]) in ("integer", "float")
        used[name] = (
            strategy if strategy in ("constant", "most_frequent") or numeric else ("most_frequent")
        )
    if strategy == "constant":
        if isinstance(fill_value, dict):
            absent = [n for n in names if n not in fill_value]
            if absent:
                raise InvalidInput(f"impute: fill_value has no value for columns {absent}.")
            return {n: fill_value[n] for n in names}, used
        return dict.fromkeys(names, fill_value), used
    exprs = []
    for name in names:
        x = pl.col(name).fill_nan(None) if frame.schema[name].is_float() else pl.col(name)
        if used[name] == "median":
            exprs.append(x.median().alias(name))
        elif used[name] == "mean":
            exprs.append(x.mean().alias(name))
        else:
            counts = x.drop_nulls().alias("value").value_counts()
            exprs.append(counts.implode().alias(name))
    fitted = frame.select(exprs).row(0, named=True) if exprs else {}
    fills = {}
    for name in names:
        value = fitted[name]
        if used[name] == "most_frequent":
            value = _most_frequent(value)
        if value is None:
            raise InvalidInput(
                f"impute: column {name!r} has no values to compute a {used[name]} from; use "
                "strategy='constant' with a fill_value for it, or drop the column."
            )
        if frame.schema[name].is_integer() and isinstance(value, float):
            value = round(value)
        fills[name] = value
    return fills, used


def _most_frequent(pairs: list[dict[str, Any]]) -> Any:
    if not pairs:
        return None
    top = max(p["count"] for p in pairs)
    candidates = [p["value"] for p in pairs if p["count"] == top]
    try:
        return min(candidates)
    except TypeError:  # values that do not order: first seen
        return candidates[0]


def _fill(frame: pl.DataFrame, fills: dict[str, Any]) -> pl.DataFrame:
    absent = [n for n in fills if n not in frame.schema]
    if absent:
        raise InvalidInput(f"Cannot impute: columns {absent} are not in the data.")
    taken = [f"{n}{INDICATOR_SUFFIX}" for n in fills if f"{n}{INDICATOR_SUFFIX}" in frame.schema]
    if taken:
        raise InvalidInput(
            f"Cannot add indicator columns {taken}: the data already has columns with those "
            "names. Rename them, or impute the original data."
        )
    filled, flags = [], []
    for name, value in fills.items():
        dtype = frame.schema[name]
        x = pl.col(name).fill_nan(None) if dtype.is_float() else pl.col(name)
        filled.append(x.fill_null(_literal(name, value, dtype)).alias(name))
        flags.append(_missing(frame, name).alias(f"{name}{INDICATOR_SUFFIX}"))
    if not fills:
        return frame
    try:
        return frame.with_columns(*filled, *flags)
    except pl.exceptions.PolarsError as e:
        raise InvalidInput(f"Cannot impute: {str(e).splitlines()[0]}") from e


def _literal(name: str, value: Any, dtype: pl.DataType) -> pl.Expr:
    """``value`` as a literal of the column's type, or a clear error."""
    if dtype == pl.Null:
        return pl.lit(value)
    if isinstance(value, str) and (dtype == pl.Date or isinstance(dtype, pl.Datetime)):
        value = _parse_time(value, dtype)
    try:
        pl.select(pl.lit(value).cast(dtype, strict=True))
    except (pl.exceptions.PolarsError, TypeError, ValueError) as e:
        raise InvalidInput(
            f"impute: fill value {value!r} does not fit column {name!r} ({dtype}); give a "
            "value of that type."
        ) from e
    return pl.lit(value).cast(dtype)


def _parse_time(text: str, dtype: pl.DataType) -> Any:
    try:
        return date.fromisoformat(text[:10]) if dtype == pl.Date else datetime.fromisoformat(text)
    except ValueError:
        return text
