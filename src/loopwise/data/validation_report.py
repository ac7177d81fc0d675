"""What a validation result is and how it is shown.

:class:`Anomaly` (one problem found), :class:`ValidationReport` (every anomaly of a batch,
with its summary, JSON form and HTML page) and :class:`DataValidationError` (defined with
the other errors in :mod:`loopwise.errors`; raised when a caller refuses data with errors),
plus the anomaly kinds and their usual severity (:data:`SEVERITY`, :data:`ANOMALY_KINDS`).
It finds nothing itself: the checking passes live in :mod:`loopwise.data.validation`, which
imports this module (never the reverse) and re-exports its public names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopwise._version import __version__
from loopwise.errors import DataValidationError
from loopwise.reports.page import Badge, render, write_page

__all__ = [
    "ANOMALY_KINDS",
    "FORMAT_VERSION",
    "SEVERITY",
    "Anomaly",
    "DataValidationError",
    "ValidationReport",
]

FORMAT_VERSION = 1
#: Each anomaly kind with its usual severity (``new_value`` and ``custom_check`` vary).
SEVERITY = {
    "missing_column": "error",
    "unexpected_column": "warning",
    "column_order": "error",
    "type_mismatch": "error",
    "null_values": "error",
    "missing_rate": "error",
    "out_of_range": "error",
    "new_value": "error",
    "suspicious_default": "warning",
    "pinned_value": "error",
    "distribution_shift": "error",
    "duplicate_rows": "warning",
    "duplicate_key": "error",
    "class_imbalance": "warning",
    "missing_class": "error",
    "custom_check": "error",
    "empty_data": "error",
}
ANOMALY_KINDS = tuple(SEVERITY)


@dataclass(frozen=True)
class Anomaly:
    """One problem found: what, where, how bad, how many rows, examples, and what to do."""

    kind: str
    severity: str  # "error" or "warning"
    column: str | None
    count: int
    message: str
    examples: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "column": self.column,
            "count": self.count,
            "message": self.message,
            "examples": self.examples,
        }


@dataclass
class ValidationReport:
    """The anomalies of one batch; ``ok`` is False when any has severity "error"."""

    anomalies: list[Anomaly]
    rows: int
    columns: dict[str, dict[str, Any]]  # observed dtype, nulls, missing rate, min, max
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Anomaly]:
        return [a for a in self.anomalies if a.severity == "error"]

    @property
    def warnings(self) -> list[Anomaly]:
        return [a for a in self.anomalies if a.severity == "warning"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, stamped with ``format_version`` and the loopwise version."""
        return {
            "format_version": FORMAT_VERSION,
            "loopwise_version": __version__,
            "ok": self.ok,
            "rows": self.rows,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "anomalies": [a.to_dict() for a in self.anomalies],
            "columns": self.columns,
            "timings": self.timings,
        }

    def summary(self) -> str:
        verdict = "passed" if self.ok else "FAILED"
        lines = [
            f"Validation {verdict}: {_plural(len(self.errors), 'error')}, "
            f"{_plural(len(self.warnings), 'warning')} on {self.rows:,} rows x "
            f"{len(self.columns)} columns."
        ]
        for a in _by_severity(self.anomalies):
            lines.append(f"  {a.severity:<7} {a.kind:<18} {a.column or '-'}: {a.message}")
        return "\n".join(lines)

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Write a single self-contained HTML report and return its path."""
        write_page(path, _render_html(self))
        return Path(path)


# -- small helpers -------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _by_severity(anomalies: list[Anomaly]) -> list[Anomaly]:
    return sorted(anomalies, key=lambda a: a.severity != "error")


# -- HTML ----------------------------------------------------------------------------------


def _render_html(report: ValidationReport) -> str:
    """The page: the verdict, every anomaly (errors first) with what to do, a row per schema
    column with its status, and a card per column with anomalies (``validation.html.j2``)."""
    ordered = _by_severity(report.anomalies)
    return render(
        "validation.html.j2",
        title="Data validation report",
        subtitle=f"{report.rows:,} rows",
        report=report,
        anomalies=[
            (
                *(Badge(a.severity, a.severity), a.kind, a.column or "–", a.count, a.message),
                ", ".join(str(e) for e in a.examples),
            )
            for a in ordered
        ],
        columns=[_column_row(report, name, stat) for name, stat in report.columns.items()],
        cards=[(name, found) for name in report.columns if (found := _of(ordered, name))],
    )


def _of(anomalies: list[Anomaly], column: str) -> list[Anomaly]:
    return [a for a in anomalies if a.column == column]


def _column_row(report: ValidationReport, name: str, stat: dict[str, Any]) -> tuple[Any, ...]:
    """A schema column's row: its types, missing rate, range and what was found in it."""
    found = _of(report.anomalies, name)
    worst = "error" if any(a.severity == "error" for a in found) else "warning"
    status = Badge(f"{len(found)} found", worst) if found else Badge("ok", "ok")
    kinds = ", ".join(sorted({a.kind for a in found}))
    rate = stat.get("missing_rate")
    missing = None if rate is None else f"{rate:.2%}"
    return (
        *(name, stat["type"], stat["dtype"], missing, stat.get("min"), stat.get("max")),
        [status, kinds],
    )
