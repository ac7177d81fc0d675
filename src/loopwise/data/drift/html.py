"""The HTML page of a data drift report
(:meth:`~loopwise.data.drift.detect.DriftReport.to_html`).

It reads a finished :class:`~loopwise.data.drift.detect.DriftReport` and computes nothing:
it gathers what the page shows (the verdict and how it was reached, a summary table, one
chart card per column with drifted columns first, the columns not checked) and renders the
``drift.html.j2`` template of the :mod:`loopwise.reports` kit, which holds the markup. It
imports types from :mod:`loopwise.data.drift.detect`, which imports this module only lazily,
inside ``DriftReport.to_html``, so there is no import cycle.
"""

from __future__ import annotations

from loopwise.data.drift.detect import NUMERIC, ColumnDrift, DriftReport
from loopwise.reports.charts import CURRENT_COLOR, REFERENCE_COLOR, bars_svg, histogram_svg
from loopwise.reports.page import Badge, number, render

_TABLE_HEADERS = (
    *("column", "kind", "test", "statistic", "threshold", "p-value", "drifted"),
    *("null rate (ref)", "null rate (cur)"),
)
_LEGEND = (("reference", REFERENCE_COLOR), ("current", CURRENT_COLOR))


def render_html(report: DriftReport) -> str:
    """The complete HTML document for ``report``."""
    ordered = sorted(report.columns.values(), key=lambda r: not r.drifted)
    return render(
        "drift.html.j2",
        title="Data drift report",
        subtitle=(
            f"reference {report.reference_rows:,} rows, current {report.current_rows:,} rows"
        ),
        verdict=_verdict(report),
        summary=report.summary(),
        rule=_rule(report),
        headers=_TABLE_HEADERS,
        rows=[_row(r) for r in report.columns.values()],
        cards=[_card(r) for r in ordered],
        legend=_LEGEND,
        skipped=list(report.skipped.items()),
    )


def _verdict(report: DriftReport) -> Badge:
    """Drift wherever a column drifted, even under a share rule's verdict."""
    if report.drifted:
        return Badge("dataset drift" if report.dataset_threshold else "drift", "error")
    if report.drifted_columns:
        return Badge("drift below the dataset share", "warning")
    return Badge("no drift", "ok")


def _rule(report: DriftReport) -> str:
    """How the dataset verdict was reached, and what was left out on purpose."""
    if report.dataset_threshold is None:
        rule = "The dataset counts as drifted when any column drifted."
    else:
        rule = (
            f"The dataset counts as drifted when at least {report.dataset_threshold:.0%} "
            "of the columns drifted."
        )
    if report.target is not None and report.target not in report.columns:
        rule += f" The label column {report.target} is not checked."
    return rule


def _state(result: ColumnDrift) -> Badge:
    return Badge("drifted", "error") if result.drifted else Badge("ok", "ok")


def _row(r: ColumnDrift) -> tuple[object, ...]:
    return (
        *(r.column, r.kind, r.test, r.statistic, r.threshold, r.p_value, _state(r)),
        *(f"{r.reference.null_rate:.1%}", f"{r.current.null_rate:.1%}"),
    )


def _card(result: ColumnDrift) -> dict[str, object]:
    """One column's card: its state, the statistic, what moved, and the two distributions."""
    series = [
        ("reference", result.reference_shares, REFERENCE_COLOR),
        ("current", result.current_shares, CURRENT_COLOR),
    ]
    if result.kind == NUMERIC:
        chart = histogram_svg(result.bins, series)
        detail = f"mean {number(result.reference.mean)} → {number(result.current.mean)}"
    else:
        chart = bars_svg([str(label) for label in result.bins], series)
        detail = f"{result.reference.distinct} → {result.current.distinct} categories"
        if result.new_category_count:
            detail += (
                f"; {result.new_category_count} new in current "
                f"({result.new_category_share:.1%} of values): "
                + ", ".join(result.new_categories[:5])
            )
    stat = f"{result.test} = {number(result.statistic)}"
    if result.statistic_error is not None:
        stat += f" (± {result.statistic_error:.1g})"
    if result.p_value is not None:
        stat += f", p = {number(result.p_value)}"
    return {
        "column": result.column,
        "state": _state(result),
        "statistic": f"{stat}; threshold {number(result.threshold)}",
        "detail": detail,
        "note": result.note,
        "chart": chart,
    }
