"""The HTML page of a data drift report
(:meth:`~loopwise.data.drift.detect.DriftReport.to_html`).

Pure rendering: :func:`render_html` reads a finished
:class:`~loopwise.data.drift.detect.DriftReport` and returns one self-contained HTML
document built from the :mod:`loopwise.reporting` pieces (summary table, one chart card per
column, the columns not checked). It computes nothing. It imports types from
:mod:`loopwise.data.drift.detect`, which imports this module only lazily, inside
``DriftReport.to_html``, so there is no import cycle.
"""

from __future__ import annotations

from loopwise.data.drift.detect import NUMERIC, ColumnDrift, DriftReport
from loopwise.reporting import (
    CURRENT_COLOR,
    REFERENCE_COLOR,
    Markup,
    badge,
    bars_svg,
    esc,
    histogram_svg,
    legend,
    page,
    table,
)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


_TABLE_HEADERS = (
    *("column", "kind", "test", "statistic", "threshold", "p-value", "drifted"),
    *("null rate (ref)", "null rate (cur)"),
)


def render_html(report: DriftReport) -> str:
    """The complete HTML document for ``report``."""
    subtitle = f"reference {report.reference_rows:,} rows, current {report.current_rows:,} rows"
    return page("Data drift report", _html_body(report), subtitle=subtitle)


def _verdict(report: DriftReport) -> str:
    """The badge: drift wherever a column drifted, even under a share rule's verdict."""
    if report.drifted:
        return badge("dataset drift" if report.dataset_threshold else "drift", "error")
    if report.drifted_columns:
        return badge("drift below the dataset share", "warning")
    return badge("no drift", "ok")


def _rule(report: DriftReport) -> str:
    """How the dataset verdict was reached, and what was left out on purpose."""
    if report.dataset_threshold is None:
        rule = "The dataset counts as drifted when any column drifted."
    else:
        rule = (
            f"The dataset counts as drifted when at least {report.dataset_threshold:.0%} "
            "of the columns drifted."
        )
    if report.label is not None and report.label not in report.columns:
        rule += f" The label column {report.label} is not checked."
    return rule


def _html_body(report: DriftReport) -> str:
    parts = [
        f"<p>{_verdict(report)} {esc(report.summary())}</p>",
        f'<p class="meta">{esc(_rule(report))}</p>',
        '<p class="meta">p-value tests (ks, chi2) flag a column when p &lt; threshold; '
        "distances (wasserstein, jensenshannon, psi) when the statistic ≥ threshold. Missing "
        "values are left out of the tests.</p>",
    ]
    rows = [
        (
            r.column,
            r.kind,
            r.test,
            r.statistic,
            r.threshold,
            r.p_value,
            Markup(badge("drifted", "error") if r.drifted else badge("ok", "ok")),
            f"{r.reference.null_rate:.1%}",
            f"{r.current.null_rate:.1%}",
        )
        for r in report.columns.values()
    ]
    parts.append(table(_TABLE_HEADERS, rows, numeric={3, 4, 5, 7, 8}))
    ordered = sorted(report.columns.values(), key=lambda r: not r.drifted)
    parts.append('<h2>Columns</h2><div class="grid">')
    parts.extend(_card(r) for r in ordered)
    parts.append("</div>")
    if report.skipped:
        parts.append("<h2>Not checked</h2>")
        parts.append(table(["column", "reason"], report.skipped.items()))
    return "".join(parts)


def _card(result: ColumnDrift) -> str:
    series = [
        ("reference", result.reference_shares, REFERENCE_COLOR),
        ("current", result.current_shares, CURRENT_COLOR),
    ]
    if result.kind == NUMERIC:
        chart = histogram_svg(result.bins, series)
        detail = f"mean {_num(result.reference.mean)} → {_num(result.current.mean)}"
    else:
        chart = bars_svg([str(label) for label in result.bins], series)
        detail = f"{result.reference.distinct} → {result.current.distinct} categories"
        if result.new_category_count:
            detail += (
                f"; {result.new_category_count} new in current "
                f"({result.new_category_share:.1%} of values): "
                + ", ".join(result.new_categories[:5])
            )
    stat = f"{result.test} = {_num(result.statistic)}"
    if result.statistic_error is not None:
        stat += f" (± {result.statistic_error:.1g})"
    if result.p_value is not None:
        stat += f", p = {_num(result.p_value)}"
    state = badge("drifted", "error") if result.drifted else badge("ok", "ok")
    note = f'<div class="meta">{esc(result.note)}</div>' if result.note else ""
    return (
        f'<div class="card"><h3>{esc(result.column)} {state}</h3>'
        f'<div class="meta">{esc(stat)}; threshold {_num(result.threshold)}</div>'
        f'<div class="meta">{esc(detail)}</div>{note}{chart}'
        f"{legend([('reference', REFERENCE_COLOR), ('current', CURRENT_COLOR)])}</div>"
    )
