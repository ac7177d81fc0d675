"""The HTML page of a data quality report
(:meth:`~loopwise.data.quality.report.QualityReport.to_html`).

Pure rendering: it reads a finished report and returns one self-contained HTML document built
from the :mod:`loopwise.reporting` pieces. It computes nothing and never imports
:mod:`loopwise.data.quality.report`; :class:`ReportView` names the parts of the report it reads.
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
from loopwise.reporting import CURRENT_COLOR, Markup, badge, bars_svg, esc, page, table


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
    parts = ["<p>" + " ".join(badge(plural(counts[s], s), s) for s in SEVERITIES) + "</p>"]
    about = f"{r.rows:,} rows, {len(r.features)} features"
    if r.target is not None:
        about += f"; target <code>{esc(r.target)}</code> ({esc(r.task)})"
        if r.labelled_rows < r.rows:
            about += f", {r.labelled_rows:,} labelled rows"
    if r.sampled:
        about += f"; correlations and leakage scores on a sample of {r.scored_rows:,} rows"
    parts.append(f'<p class="meta">{about}.</p>')
    if r.class_balance is not None:
        cb = r.class_balance
        shares = list(cb.shares.values())[:30]
        labels = [str(label) for label in cb.labels[:30]]
        parts += [
            "<h2>Class balance</h2>",
            bars_svg(labels, [("share", shares, CURRENT_COLOR)]),
            table(
                ["class", "rows", "share"],
                [
                    (lab, n, f"{s:.2%}")
                    for lab, n, s in zip(labels, cb.counts, shares, strict=False)
                ],
                numeric={1, 2},
            ),
        ]
    parts.append("<h2>Findings</h2>")
    if r.findings:
        rows = [
            (Markup(badge(f.severity, f.severity)), f.kind, ", ".join(f.columns), f.message)
            for f in r.findings
        ]
        parts.append(table(["severity", "kind", "columns", "what it means"], rows))
    else:
        parts.append(f"<p>{badge('no findings', 'ok')}</p>")
    if r.leakage_scores:
        threshold = r.settings["leakage_threshold"]
        copies = {f.columns[0] for f in r.findings if f.kind == "target_copy"}
        top = r.leakage_scores[:20]

        def status(s: LeakageScore) -> Markup | str:
            if s.column in copies:
                return Markup(badge("target copy", "error"))
            return Markup(badge("leak?", "warning")) if s.score >= threshold else ""

        parts += [
            "<h2>Leakage candidates</h2>",
            f'<p class="meta">Each feature alone against the target; flagged at {threshold:g}'
            " or more.</p>",
            bars_svg(
                [s.column for s in top[:15]],
                [("score", [s.score for s in top[:15]], CURRENT_COLOR)],
            ),
            table(
                ["feature", "metric", "score", "rows", ""],
                [(s.column, METRICS[s.metric], s.score, s.rows, status(s)) for s in top],
                numeric={2, 3},
            ),
        ]
    if r.correlated_pairs:
        parts += [
            "<h2>Correlated feature pairs</h2>",
            table(
                ["feature", "feature", "method", "value", "rows"],
                [(*p.columns, p.method, p.value, p.rows) for p in r.correlated_pairs],
                numeric={3, 4},
            ),
        ]
    if r.outliers:
        parts += [
            "<h2>Outliers</h2>",
            table(
                ["column", "lower fence", "upper fence", "count", "share", "most extreme"],
                [
                    (
                        o.column,
                        o.lower,
                        o.upper,
                        o.count,
                        f"{o.share:.2%}",
                        ", ".join(f"row {e['row']}: {e['value']}" for e in o.examples),
                    )
                    for o in r.outliers
                ],
                numeric={1, 2, 3, 4},
            ),
        ]
    for f in r.findings:
        if f.kind == "conflicting_duplicates":
            parts += [
                "<h2>Conflicting duplicates</h2>",
                table(
                    ["rows", "labels (rows)", "features"],
                    [
                        (
                            e["rows"],
                            ", ".join(f"{x['value']} ({x['rows']})" for x in e["labels"]),
                            ", ".join(f"{k}={v}" for k, v in e["features"].items()),
                        )
                        for e in f.details["examples"]
                    ],
                    numeric={0},
                ),
            ]
    return page("Training data quality", "".join(parts), subtitle=r.target or "")
