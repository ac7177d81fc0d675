"""The HTML page of a data quality report
(:meth:`~loopwise.data.quality.report.QualityReport.to_html`).

It reads a finished report and computes nothing: it gathers what the page shows (the
findings by severity, the class balance, leakage candidates, correlated pairs, outliers and
conflicting duplicates) and renders the ``quality.html.j2`` template of the
:mod:`loopwise.reports` kit, which holds the markup. It never imports
:mod:`loopwise.data.quality.report`; :class:`ReportView` names the parts of the report it
reads.
"""

from __future__ import annotations

from typing import Any, Protocol

from loopwise.data.quality.types import (
    METRICS,
    SEVERITIES,
    ClassBalance,
    CorrelatedPair,
    Finding,
    LeakageScore,
    OutlierStats,
    plural,
)
from loopwise.reports.charts import CURRENT_COLOR, bars_svg
from loopwise.reports.page import Badge, render

MAX_CLASSES = 30  # classes in the balance chart and table
MAX_LEAKAGE_ROWS = 20  # leakage candidates in the table
MAX_LEAKAGE_BARS = 15  # of them in the chart


class ReportView(Protocol):
    """What the page reads from a :class:`~loopwise.data.quality.report.QualityReport`."""

    @property
    def rows(self) -> int: ...
    @property
    def labelled_rows(self) -> int: ...
    @property
    def features(self) -> tuple[str, ...]: ...
    @property
    def target(self) -> str | None: ...
    @property
    def task(self) -> str | None: ...
    @property
    def findings(self) -> tuple[Finding, ...]: ...
    @property
    def class_balance(self) -> ClassBalance | None: ...
    @property
    def outliers(self) -> tuple[OutlierStats, ...]: ...
    @property
    def correlated_pairs(self) -> tuple[CorrelatedPair, ...]: ...
    @property
    def leakage_scores(self) -> tuple[LeakageScore, ...]: ...
    @property
    def scored_rows(self) -> int: ...
    @property
    def settings(self) -> dict[str, Any]: ...
    @property
    def sampled(self) -> bool: ...


def render_html(r: ReportView) -> str:
    """The complete HTML document for report ``r``."""
    counts = {s: sum(f.severity == s for f in r.findings) for s in SEVERITIES}
    return render(
        "quality.html.j2",
        title="Training data quality",
        subtitle=r.target or "",
        tally=[Badge(plural(counts[s], s), s) for s in SEVERITIES],
        report=r,
        balance=_balance(r.class_balance),
        findings=[
            (Badge(f.severity, f.severity), f.kind, ", ".join(f.columns), f.message)
            for f in r.findings
        ],
        leakage=_leakage(r),
        pairs=[(*p.columns, p.method, p.value, p.rows) for p in r.correlated_pairs],
        outliers=[
            (
                *(o.column, o.lower, o.upper, o.count, f"{o.share:.2%}"),
                ", ".join(f"row {e['row']}: {e['value']}" for e in o.examples),
            )
            for o in r.outliers
        ],
        duplicates=[_duplicates(f) for f in r.findings if f.kind == "conflicting_duplicates"],
    )


def _balance(cb: ClassBalance | None) -> dict[str, Any] | None:
    if cb is None:
        return None
    shares = list(cb.shares.values())[:MAX_CLASSES]
    labels = [str(label) for label in cb.labels[:MAX_CLASSES]]
    return {
        "chart": bars_svg(labels, [("share", shares, CURRENT_COLOR)]),
        "rows": [
            (lab, n, f"{s:.2%}") for lab, n, s in zip(labels, cb.counts, shares, strict=False)
        ],
    }


def _leakage(r: ReportView) -> dict[str, Any] | None:
    if not r.leakage_scores:
        return None
    threshold = r.settings["leakage_threshold"]
    copies = {f.columns[0] for f in r.findings if f.kind == "target_copy"}
    top = r.leakage_scores[:MAX_LEAKAGE_ROWS]

    def status(s: LeakageScore) -> Badge | str:
        if s.column in copies:
            return Badge("target copy", "error")
        return Badge("leak?", "warning") if s.score >= threshold else ""

    charted = top[:MAX_LEAKAGE_BARS]
    return {
        "threshold": f"{threshold:g}",
        "chart": bars_svg(
            [s.column for s in charted], [("score", [s.score for s in charted], CURRENT_COLOR)]
        ),
        "rows": [(s.column, METRICS[s.metric], s.score, s.rows, status(s)) for s in top],
    }


def _duplicates(finding: Finding) -> list[tuple[Any, ...]]:
    """The examples of a conflicting-duplicates finding: rows, labels (rows), features."""
    return [
        (
            e["rows"],
            ", ".join(f"{x['value']} ({x['rows']})" for x in e["labels"]),
            ", ".join(f"{k}={v}" for k, v in e["features"].items()),
        )
        for e in finding.details["examples"]
    ]
