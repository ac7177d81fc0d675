"""The plain-data pieces of a data quality report, shared by the checks and the HTML page.

:mod:`loopwise.data.quality.checks` builds these, :mod:`loopwise.data.quality.html` draws
them, and :mod:`loopwise.data.quality.report` (the public API, which re-exports them) collects them
into a :class:`~loopwise.data.quality.report.QualityReport`. Every one is a frozen dataclass of
JSON-safe values; :func:`jsonable` is how values are made JSON-safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

SEVERITIES = ("error", "warning", "info")

#: What each single-feature leakage metric (``LeakageScore.metric``) measures.
METRICS = {
    "roc_auc": "ROC-AUC (orientation-free)",
    "majority_lift": "held-out accuracy lift of a per-value majority vote",
    "spearman": "|Spearman|",
    "category_r": "held-out correlation of per-value means",
}


@dataclass(frozen=True)
class Finding:
    """One problem: its kind, how bad, which columns, what it means and what to do."""

    kind: str
    severity: str  # one of SEVERITIES
    columns: tuple[str, ...]
    message: str
    details: dict[str, Any] = field(default_factory=dict)  # JSON-safe


@dataclass(frozen=True)
class ClassBalance:
    """Rows per class of a classification target, most frequent first."""

    labels: tuple[Any, ...]  # JSON-safe label values
    counts: tuple[int, ...]

    @property
    def shares(self) -> dict[str, float]:
        total = sum(self.counts)
        return {str(label): n / total for label, n in zip(self.labels, self.counts, strict=True)}

    @property
    def minority(self) -> Any:
        return self.labels[-1]

    @property
    def minority_share(self) -> float:
        return self.counts[-1] / sum(self.counts)

    @property
    def imbalance_ratio(self) -> float:
        """Rows of the most frequent class per row of the rarest."""
        return self.counts[0] / self.counts[-1]


@dataclass(frozen=True)
class OutlierStats:
    """Values of a numeric column beyond ``k`` interquartile ranges from the quartiles."""

    column: str
    lower: float
    upper: float
    count: int
    share: float  # of the column's non-null values
    furthest: float  # how many IQRs the most extreme value lies beyond its nearer quartile
    examples: tuple[dict[str, Any], ...]  # {"row": input row number, "value": ...}, extreme first


@dataclass(frozen=True)
class CorrelatedPair:
    columns: tuple[str, str]
    method: str  # "pearson" or "cramers_v"
    value: float
    rows: int


@dataclass(frozen=True)
class LeakageScore:
    """How well one feature alone predicts the target (1.0 = perfectly)."""

    column: str
    metric: str  # a key of METRICS
    score: float
    rows: int


def jsonable(value: Any) -> Any:
    """``value`` made of JSON types only: NaN becomes None, infinities "inf"/"-inf"."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return jsonable(float(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 or word == "info" else f"{n:,} {word}s"
