"""The HTML page of an evaluation (:meth:`~loopwise.evaluation.evaluate.Evaluation.to_html`).

Why a module of its own: rendering is presentation, kept apart from the numbers.
:func:`render_html` reads a finished :class:`~loopwise.evaluation.evaluate.Evaluation`,
gathers what the page shows (the overall metrics against the baseline, the confusion
matrix, the slices worse than overall, and per slice column a bar chart per metric with the
row count of each slice) and renders the ``evaluation.html.j2`` template of the
:mod:`loopwise.reports` kit, which holds the markup. ``Evaluation.to_html`` imports this
module lazily, so there is no cycle.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from loopwise.evaluation.evaluate import SLICE_KEYS, Evaluation
from loopwise.evaluation.metrics import HIGHER_IS_BETTER
from loopwise.reports.charts import (
    CURRENT_COLOR,
    FLAG_COLOR,
    REFERENCE_COLOR,
    slice_bars_svg,
)
from loopwise.reports.page import Badge, render

TOLERANCE = 0.05
MAX_BARS = 40
_SLICE_LEGEND = (
    ("slice", CURRENT_COLOR),
    ("flagged slice", FLAG_COLOR),
    ("overall (dashed)", REFERENCE_COLOR),
)


def render_html(evaluation: Evaluation) -> str:
    """The complete HTML document for ``evaluation``."""
    ev = evaluation
    kind = ev.task
    if ev.labels is not None:
        kind = f"{'binary' if len(ev.labels) <= 2 else 'multiclass'} {kind}"
    flagged = ev.flagged_slices(TOLERANCE)
    by_column = ev.slice_metrics["slice_column"]
    confusion = None
    if "confusion_matrix" in ev.metrics and ev.labels is not None:
        confusion = _confusion(ev.labels, ev.metrics["confusion_matrix"])
    return render(
        "evaluation.html.j2",
        title="Model evaluation",
        subtitle=f"{kind} of {ev.target!r} on {ev.n:,} rows",
        ev=ev,
        tolerance=TOLERANCE,
        flagged=list(flagged.itertuples(index=False, name=None)),
        labels=[str(label) for label in (ev.labels or [])[:20]],
        overall=[
            (m, ev.metrics[m], ev.baseline_metrics[m], _lift(m, ev.lift[m]))
            for m in ev.metric_names
        ],
        confusion=confusion,
        slices=[_slice_section(ev, column, flagged) for column in dict.fromkeys(by_column)],
        legend=_SLICE_LEGEND,
        max_bars=MAX_BARS,
    )


def _lift(metric: str, value: float) -> Badge | str:
    if math.isnan(value):
        return "NaN"
    better = value > 0 if metric in HIGHER_IS_BETTER else value < 0
    kind = "ok" if better else ("info" if value == 0 else "warning")
    return Badge(f"{value:+.4g}", kind)


def _confusion(labels: list[Any], matrix: list[list[int]]) -> list[tuple[Any, list[Any]]]:
    """Per true class: its cells as (count, shade), shaded by the share of the row."""
    rows = []
    for label, counts in zip(labels, matrix, strict=True):
        total = sum(counts) or 1
        rows.append((label, [(f"{c:,}", f"{0.75 * c / total:.2f}") for c in counts]))
    return rows


def _slice_section(ev: Evaluation, column: str, flagged: pd.DataFrame) -> dict[str, Any]:
    """A slice column's charts (one per metric, flagged slices marked) and its table."""
    rows = ev.slice_metrics[ev.slice_metrics["slice_column"] == column]
    mine = flagged[flagged["slice_column"] == column]
    marks = set(zip(mine["slice_value"], mine["metric"], strict=True))
    shown = rows.head(MAX_BARS)
    labels = [f"{v} (n={n:,})" for v, n in zip(shown["slice_value"], shown["n"], strict=True)]
    charts = [
        (
            metric,
            slice_bars_svg(
                labels,
                shown[metric].tolist(),
                ev.metrics[metric],
                [(v, metric) in marks for v in shown["slice_value"]],
            ),
        )
        for metric in ev.metric_names
    ]
    body = []
    for record in rows.to_dict("records"):
        cells: list[Any] = [record["slice_value"], f"{record['n']:,}"]
        for metric in ev.metric_names:
            value = record[metric]
            if (record["slice_value"], metric) in marks:
                cells.append(Badge(f"{value:.4g}", "error"))
            else:
                cells.append(value)
        body.append(cells)
    headers = [*SLICE_KEYS[1:], *ev.metric_names]
    return {
        "column": column,
        "count": len(rows),
        "charts": charts,
        "headers": headers,
        "rows": body,
        "numeric": set(range(1, len(headers))),
    }
