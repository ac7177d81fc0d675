"""What a profile is: per-column statistics of a dataset, as plain data.

Profiles are stored with dataset versions, drive schema inference, and are compared by
drift checks, so they are frozen dataclasses that round-trip through JSON
(``to_dict``/``from_dict``) and carry a ``format_version``. Computing them is
:mod:`loopwise.data.profiling`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from loopwise._version import __version__
from loopwise.errors import InvalidInput

FORMAT_VERSION = 1
KINDS = ("integer", "float", "boolean", "string", "categorical", "datetime", "date", "other")


@dataclass(frozen=True)
class Histogram:
    """Bin ``edges`` (len n+1) and ``counts`` (len n) of a numeric column's non-null values."""

    edges: list[float]
    counts: list[int]


@dataclass(frozen=True)
class ColumnProfile:
    """Statistics of one column. Fields that do not apply to its kind are None."""

    name: str
    dtype: str  # the Polars dtype, e.g. "Int64", "Float64", "String", "Datetime(time_unit='us')"
    kind: str  # one of KINDS
    count: int  # non-null values
    nulls: int
    distinct: int
    distinct_is_approximate: bool = False
    min: Any = None  # numbers, ISO strings for dates/times, None for strings
    max: Any = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] | None = (
        None  # keys "0.01" "0.05" "0.25" "0.5" "0.75" "0.95" "0.99"
    )
    histogram: Histogram | None = None
    top_values: list[tuple[Any, int]] = field(default_factory=list)  # most frequent, up to 20
    zeros: int | None = None  # numeric only
    string_length: dict[str, float] | None = None  # {"min", "max", "mean"} for strings
    suspicious_defaults: dict[str, int] = field(default_factory=dict)  # repr of value -> count

    @property
    def null_fraction(self) -> float:
        total = self.count + self.nulls
        return self.nulls / total if total else 0.0

    @property
    def is_unique(self) -> bool:
        """Every value present and distinct (a key candidate)."""
        return self.nulls == 0 and self.count > 0 and self.distinct == self.count


@dataclass(frozen=True)
class Profile:
    """Statistics of a whole dataset, column by column, in column order."""

    rows: int
    columns: dict[str, ColumnProfile]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "loopwise_version": __version__,
            "rows": self.rows,
            "columns": [asdict(c) for c in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise InvalidInput(
                f"Profile format_version {version!r} is not supported by loopwise {__version__} "
                f"(expected {FORMAT_VERSION}); recompute it with lw.profile(data)."
            )
        columns = {}
        for raw in data["columns"]:
            raw = dict(raw)
            if raw.get("histogram") is not None:
                raw["histogram"] = Histogram(**raw["histogram"])
            raw["top_values"] = [tuple(pair) for pair in raw.get("top_values", [])]
            columns[raw["name"]] = ColumnProfile(**raw)
        return cls(rows=data["rows"], columns=columns)
