"""The HTML page of an evaluation (:meth:`~loopwise.evaluation.evaluate.Evaluation.to_html`).

Why a module of its own: rendering is pure presentation, kept apart from the numbers.
:func:`render_html` reads a finished :class:`~loopwise.evaluation.evaluate.Evaluation` and
returns one self-contained document built from the :mod:`loopwise.reporting` pieces: the
overall metrics against the baseline, the confusion matrix, the slices worse than overall,
and per slice column a bar chart per metric (with the row count of each slice). It computes
nothing but layout. ``Evaluation.to_html`` imports this module lazily, so there is no cycle.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from loopwise.evaluation.evaluate import SLICE_KEYS, Evaluation
from loopwise.evaluation.metrics import HIGHER_IS_BETTER
from loopwise.reporting import (
    CURRENT_COLOR,
    REFERENCE_COLOR,
    Markup,
    badge,
    esc,
    legend,
    page,
    table,
)

TOLERANCE = 0.05
MAX_BARS = 40
FLAG_COLOR = "#d64545"
LABEL_CHARS = 21  # what the 126 px label column holds at 10 px (about 6 px a character)


def render_html(evaluation: Evaluation) -> str:
    """The complete HTML document for ``evaluation``."""
    ev = evaluation
    kind = ev.task
    if ev.labels is not None:
        kind = f"{'binary' if len(ev.labels) <= 2 else 'multiclass'} {kind}"
    subtitle = f"{kind} of {ev.target!r} on {ev.n:,} rows"
    return page("Model evaluation", _body(ev), subtitle=subtitle)


def _body(ev: Evaluation) -> str:
    flagged = ev.flagged_slices(TOLERANCE)
    parts = [f"<p>{_verdict(flagged)} {_setup(ev)}</p>", "<h2>Overall</h2>"]
    rows = [
        (m, ev.metrics[m], ev.baseline_metrics[m], Markup(_lift(m, ev.lift[m])))
        for m in ev.metric_names
    ]
    parts.append(table(["metric", "model", "baseline", "lift"], rows, numeric={1, 2, 3}))
    if "confusion_matrix" in ev.metrics and ev.labels is not None:
        parts.append("<h2>Confusion matrix</h2>")
        parts.append('<p class="meta">Rows: true class; columns: predicted class.</p>')
        parts.append(_confusion(ev.labels, ev.metrics["confusion_matrix"]))
    if len(flagged):
        parts.append(f"<h2>Slices worse than overall by more than {TOLERANCE}</h2>")
        parts.append(
            table(
                ["slice column", "slice", "n", "metric", "slice value", "overall", "gap"],
                flagged.itertuples(index=False, name=None),
                numeric={2, 4, 5, 6},
            )
        )
    for column in dict.fromkeys(ev.slice_metrics["slice_column"]):
        rows_of = ev.slice_metrics[ev.slice_metrics["slice_column"] == column]
        parts.append(_slice_section(ev, column, rows_of, flagged))
    return "".join(parts)


def _verdict(flagged: pd.DataFrame) -> str:
    if len(flagged):
        return badge(f"{len(flagged)} slice metric(s) flagged", "warning")
    return badge("no slice worse than overall", "ok")


def _setup(ev: Evaluation) -> str:
    if ev.task == "regression":
        baseline = "the mean of the target"
        notes = (
            " Normalised RMSE is RMSE / (max − min) of the target in the same rows; MAPE "
            "leaves out rows whose target is zero."
        )
    else:
        baseline = "the majority class, with the class priors as probabilities"
        notes = f" Classes: {esc(', '.join(map(str, (ev.labels or [])[:20])))}."
        if ev.positive_label is not None:
            notes += (
                f" Positive label <code>{esc(ev.positive_label)}</code>, threshold "
                f"{esc(ev.threshold)}."
            )
        else:
            notes += " Precision, recall, F1, ROC-AUC (one-vs-rest) and PR-AUC are macro."
    return (
        f"Baseline: {baseline}, taken from the evaluated data.{notes} A slice is flagged "
        f"when a unitless metric is worse than overall by more than {TOLERANCE}; "
        "undefined values (e.g. ROC-AUC of a one-class slice) show as NaN."
    )


def _lift(metric: str, value: float) -> str:
    if math.isnan(value):
        return "NaN"
    better = value > 0 if metric in HIGHER_IS_BETTER else value < 0
    kind = "ok" if better else ("info" if value == 0 else "warning")
    return badge(f"{value:+.4g}", kind)


def _confusion(labels: list[Any], matrix: list[list[int]]) -> str:
    head = "".join(f"<th>{esc(label)}</th>" for label in labels)
    rows = []
    for label, counts in zip(labels, matrix, strict=True):
        total = sum(counts) or 1
        cells = "".join(
            f'<td class="num" style="background:rgba(123,147,219,{0.75 * c / total:.2f})">'
            f"{c:,}</td>"
            for c in counts
        )
        rows.append(f"<tr><th>{esc(label)}</th>{cells}</tr>")
    return (
        f"<table><thead><tr><th>true \\ predicted</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _slice_section(ev: Evaluation, column: str, rows: pd.DataFrame, flagged: pd.DataFrame) -> str:
    mine = flagged[flagged["slice_column"] == column]
    marks = set(zip(mine["slice_value"], mine["metric"], strict=True))
    shown = rows.head(MAX_BARS)
    parts = [f"<h2>Slices by <code>{esc(column)}</code></h2>"]
    if len(rows) > MAX_BARS:
        parts.append(
            f'<p class="meta">Charts show the first {MAX_BARS} of {len(rows)} slices; '
            "the table lists them all.</p>"
        )
    parts.append(
        legend(
            [
                ("slice", CURRENT_COLOR),
                ("flagged slice", FLAG_COLOR),
                ("overall (dashed)", REFERENCE_COLOR),
            ]
        )
    )
    parts.append('<div class="grid">')
    for metric in ev.metric_names:
        flags = [(v, metric) in marks for v in shown["slice_value"]]
        svg = _bars(
            [f"{v} (n={n:,})" for v, n in zip(shown["slice_value"], shown["n"], strict=True)],
            shown[metric].tolist(),
            ev.metrics[metric],
            flags,
        )
        parts.append(f'<div class="card"><h3>{esc(metric)}</h3>{svg}</div>')
    parts.append("</div>")
    headers = [*SLICE_KEYS[1:], *ev.metric_names]
    body = []
    for record in rows.to_dict("records"):
        cells: list[Any] = [record["slice_value"], f"{record['n']:,}"]
        for metric in ev.metric_names:
            value = record[metric]
            if (record["slice_value"], metric) in marks:
                cells.append(Markup(badge(f"{value:.4g}", "error")))
            else:
                cells.append(value)
        body.append(cells)
    parts.append(table(headers, body, numeric=set(range(1, len(headers)))))
    return "".join(parts)


def _bars(labels: list[str], values: list[float], overall: float, flags: list[bool]) -> str:
    """Horizontal bars, one per slice, with a dashed line at the overall value."""
    width, label_w, value_w, row_h = 340, 130, 46, 16
    height = row_h * len(labels) + 8
    known = [v for v in [*values, overall] if not math.isnan(v)]
    low, high = min([0.0, *known]), max([0.0, *known])
    span = (high - low) or 1.0
    plot_w = width - label_w - value_w

    def x(value: float) -> float:
        return label_w + plot_w * (value - low) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    ]
    for i, (label, value, flag) in enumerate(zip(labels, values, flags, strict=True)):
        y = 4 + i * row_h
        parts.append(
            f'<text x="{label_w - 4}" y="{y + 11}" font-size="10" text-anchor="end" '
            f'fill="#3e4c59">{esc(_short(label))}</text>'
        )
        if math.isnan(value):
            text = "NaN"
        else:
            left, right = sorted((x(0.0), x(value)))
            color = FLAG_COLOR if flag else CURRENT_COLOR
            parts.append(
                f'<rect x="{left:.1f}" y="{y + 2}" width="{max(right - left, 0.5):.1f}" '
                f'height="{row_h - 4}" fill="{color}" fill-opacity="0.8">'
                f"<title>{esc(label)}: {value:.4g}</title></rect>"
            )
            text = f"{value:.3g}"
        parts.append(
            f'<text x="{width - 2}" y="{y + 11}" font-size="10" text-anchor="end" '
            f'fill="#3e4c59">{esc(text)}</text>'
        )
    if not math.isnan(overall):
        parts.append(
            f'<line x1="{x(overall):.1f}" y1="2" x2="{x(overall):.1f}" y2="{height - 2}" '
            f'stroke="{REFERENCE_COLOR}" stroke-width="1.5" stroke-dasharray="4 3">'
            f"<title>overall: {overall:.4g}</title></line>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _short(label: str, limit: int = LABEL_CHARS) -> str:
    """A slice label that fits the label column: a long value is cut with an ellipsis and
    its row count kept (the bar's tooltip holds the whole label)."""
    if len(label) <= limit:
        return label
    head, sep, count = label.rpartition(" (n=")
    if not sep:
        return label[: limit - 1] + "…"
    tail = sep + count
    return head[: max(limit - len(tail) - 1, 1)] + "…" + tail
