"""Self-contained HTML reports: one file, styles and charts inline, no network fetches.

Validation, drift and (later) evaluation and monitoring reports are built from these
pieces, so they look alike and open offline, attached to a ticket or an email. Charts are
inline SVG drawn here: no plotting library, no JavaScript.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from loopwise._version import __version__

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1f2933;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem}
.meta{color:#616e7c;font-size:.85rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border-bottom:1px solid #e4e7eb;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f7fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.6rem;font-size:.8rem;
font-weight:600}.ok{background:#e3f9e5;color:#1f6b2c}.error{background:#ffe3e3;color:#a61b1b}
.warning{background:#fff3c4;color:#8d5b00}.info{background:#e6f0ff;color:#1c4f9c}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:1rem}
.card{border:1px solid #e4e7eb;border-radius:.5rem;padding:.6rem .8rem}
.card h3{font-size:1rem;margin:.1rem 0 .4rem}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 .8rem;
vertical-align:middle}
code{background:#f5f7fa;padding:0 .2rem;border-radius:.2rem}
"""

REFERENCE_COLOR = "#7b93db"
CURRENT_COLOR = "#e8845c"


def esc(value: Any) -> str:
    """HTML-escape any value's text."""
    return html.escape(str(value), quote=True)


def badge(text: str, kind: str) -> str:
    """A coloured label; ``kind`` is ok, error, warning or info."""
    return f'<span class="badge {esc(kind)}">{esc(text)}</span>'


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: set[int] = frozenset()
) -> str:
    """An HTML table; cells are escaped unless they are already ``Markup``."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = cell.html if isinstance(cell, Markup) else esc(_fmt(cell))
            css = ' class="num"' if i in numeric else ""
            cells.append(f"<td{css}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class Markup:
    """Trusted HTML to put in a table cell as is."""

    def __init__(self, html_text: str) -> None:
        self.html = html_text


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.4g}"
    return str(value)


def histogram_svg(
    edges: Sequence[float],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    width: int = 320,
    height: int = 140,
) -> str:
    """Overlaid bar histograms over shared bin ``edges``.

    ``series`` holds (label, counts or shares per bin, colour); each is normalised to its
    own total so reference and current compare as distributions.
    """
    bins = max(len(edges) - 1, 1)
    pad_left, pad_bottom = 4, 18
    plot_w, plot_h = width - 2 * pad_left, height - pad_bottom - 4
    shares = []
    for _, counts, _ in series:
        total = float(sum(counts)) or 1.0
        shares.append([c / total for c in counts])
    top = max((max(s) for s in shares if s), default=1.0) or 1.0
    bar_w = plot_w / bins
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    ]
    for (label, _, color), share in zip(series, shares, strict=True):
        for i, s in enumerate(share):
            h = plot_h * s / top
            x = pad_left + i * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{4 + plot_h - h:.1f}" width="{max(bar_w - 1, 0.5):.1f}" '
                f'height="{h:.1f}" fill="{color}" fill-opacity="0.55">'
                f"<title>{esc(label)}: {s:.1%}</title></rect>"
            )
    parts.append(
        f'<line x1="{pad_left}" y1="{4 + plot_h}" x2="{width - pad_left}" y2="{4 + plot_h}" '
        'stroke="#9aa5b1"/>'
    )
    if edges:
        parts.append(
            f'<text x="{pad_left}" y="{height - 4}" font-size="10" fill="#616e7c">'
            f"{esc(_fmt(edges[0]))}</text>"
            f'<text x="{width - pad_left}" y="{height - 4}" font-size="10" fill="#616e7c" '
            f'text-anchor="end">{esc(_fmt(edges[-1]))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    width: int = 320,
    bar_height: int = 12,
) -> str:
    """Horizontal grouped bars (categories): one group per label, one bar per series."""
    label_w = 110
    groups = len(labels)
    group_h = bar_height * len(series) + 6
    height = groups * group_h + 4
    top = max((max(values) for _, values, _ in series if len(values)), default=1.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    ]
    for g, label in enumerate(labels):
        y0 = 2 + g * group_h
        parts.append(
            f'<text x="{label_w - 4}" y="{y0 + group_h / 2 + 3:.1f}" font-size="10" '
            f'text-anchor="end" fill="#3e4c59">{esc(str(label)[:18])}</text>'
        )
        for k, (name, values, color) in enumerate(series):
            value = values[g] if g < len(values) else 0.0
            w = (width - label_w - 4) * value / top
            parts.append(
                f'<rect x="{label_w}" y="{y0 + k * bar_height:.1f}" width="{w:.1f}" '
                f'height="{bar_height - 2}" fill="{color}" fill-opacity="0.75">'
                f"<title>{esc(name)} {esc(label)}: {value:.1%}</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


def legend(items: Sequence[tuple[str, str]]) -> str:
    """A colour legend: (label, colour) pairs."""
    spans = "".join(f'<span style="background:{c}"></span>{esc(t)}' for t, c in items)
    return f'<div class="legend">{spans}</div>'


def page(title: str, body: str, *, subtitle: str = "") -> str:
    """A complete HTML document with the report styles inline."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sub = f"{esc(subtitle)} · " if subtitle else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{esc(title)}</h1><div class="meta">{sub}generated {stamp} by loopwise '
        f"{esc(__version__)}</div>{body}</body></html>"
    )


def write_page(path: Any, document: str) -> None:
    """Write a report atomically (temporary file, then rename)."""
    import os
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(document, encoding="utf-8")
    os.replace(tmp, target)
