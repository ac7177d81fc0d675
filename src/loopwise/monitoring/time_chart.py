"""An inline-SVG time-series chart that stays inside its box, for the monitor report.

Why a layout step and not just coordinates: a report is read in a browser at whatever width
its card gets, so the chart (a) scales down with its card (``max-width:100%``) instead of
running into the next one, (b) draws lines, points, bands and markers only inside its plot
area (y-scales cover every value, and a clip path holds what a rounding error would push
out), and (c) places text so no two labels overlap: y ticks are "nice" numbers whose labels
are distinct, x ticks take the smallest time step whose labels fit side by side (each label
unique: the date at midnight, the time otherwise, both where a time repeats), and marker
labels along the top are left out where they would print over the previous one (the line
and its tooltip stay). Label widths are estimated from the character count at a
conservative width per character; the browser tests in tests/reports/ check the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from loopwise.reporting import esc

FONT = 10  # px, every label
CHAR_W = 0.66 * FONT  # a wide estimate of one character's advance (DejaVu digits: 0.64 em)
GAP = 6  # px kept free between two labels
TEXT_COLOR = "#616e7c"
GRID_COLOR = "#eef0f3"
FRAME_COLOR = "#d9dde2"
MARKER_COLOR = "#7b8794"
BAND_COLOR = "#d64545"

#: x-tick steps tried, smallest first (seconds)
_STEPS = (
    60, 300, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600,
    86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400, 91 * 86400, 364 * 86400,
)  # fmt: skip


@dataclass(frozen=True)
class Line:
    """One series: (x, y or None) points, x in epoch seconds; a None breaks the line.
    A dashed line (a baseline) draws no points."""

    label: str
    points: Sequence[tuple[float, float | None]]
    color: str
    dashed: bool = False


@dataclass(frozen=True)
class Marker:
    """A vertical line at ``x``: ``label`` is printed above the plot when it fits,
    ``title`` is its tooltip."""

    x: float
    label: str
    title: str


def text_width(text: str) -> float:
    """The estimated width of ``text`` at :data:`FONT` (generous, never short)."""
    return len(text) * CHAR_W


def nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """About ``count`` round values (steps of 1, 2 or 5 x 10^k) from at or below ``lo`` to
    at or above ``hi``: the y-scale covers every value."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 0.5
        lo, hi = (0.0, 1.0) if lo == 0 else (lo - pad, hi + pad)
    raw = (hi - lo) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * 0.999)
    first = math.floor(lo / step + 1e-9) * step
    last = math.ceil(hi / step - 1e-9) * step
    n = round((last - first) / step)
    return [first + i * step for i in range(n + 1)]


def tick_label(value: float, step: float) -> str:
    """``value`` with as many decimals as ``step`` needs (so tick labels are distinct)."""
    if abs(value) < step * 1e-6:
        value = 0.0
    big = max(abs(value), step)
    if big >= 1e5:
        return f"{value:.3g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{decimals}f}"


def time_ticks(
    x0: float, x1: float, left: float, right: float, width: float
) -> list[tuple[float, str]]:
    """(x, label) ticks over [x0, x1] drawn between pixels ``left`` and ``right`` of a chart
    ``width`` wide: the smallest step whose labels fit side by side; labels are distinct."""
    span = (x1 - x0) or 1.0
    for step in _STEPS:
        first = math.ceil(x0 / step - 1e-9) * step
        values = [first + i * step for i in range(int((x1 - first) // step) + 1)]
        if len(values) < 2 or len(values) > 40:
            continue
        labels = _time_labels(values)
        xs = [left + (right - left) * (v - x0) / span for v in values]
        placed = list(zip(xs, labels, strict=True))
        if _fit(placed, width):
            return list(zip(values, labels, strict=True))
    return [(x0, _time_labels([x0])[0])]


def _time_labels(values: Sequence[float]) -> list[str]:
    moments = [datetime.fromtimestamp(v, UTC) for v in values]
    short = [f"{m:%b} {m.day}" if (m.hour, m.minute) == (0, 0) else f"{m:%H:%M}" for m in moments]
    return [
        f"{m:%b} {m.day} {m:%H:%M}" if short.count(s) > 1 and (m.hour, m.minute) != (0, 0) else s
        for m, s in zip(moments, short, strict=True)
    ]


def label_centre(x: float, text: str, width: float) -> float:
    """Where a label centred on ``x`` goes: moved inwards to stay within the chart."""
    half = text_width(text) / 2
    return min(max(x, half + 1), width - half - 1)


def _fit(placed: Sequence[tuple[float, str]], width: float) -> bool:
    """Labels centred on their x (moved inwards at the edges) do not overlap."""
    end = -math.inf
    for x, text in placed:
        half = text_width(text) / 2
        centre = label_centre(x, text, width)
        if centre - half < end + GAP:
            return False
        end = centre + half
    return True


def time_chart_svg(
    lines: Sequence[Line],
    x_range: tuple[float, float],
    *,
    chart_id: str,
    markers: Sequence[Marker] = (),
    bands: Sequence[tuple[float, float, str]] = (),
    y_range: tuple[float, float] | None = None,
    show_y: bool = True,
    width: int = 320,
    height: int = 170,
) -> str:
    """The chart as one ``<svg>`` element (``chart_id`` must be unique in the page: it
    names the clip path). ``bands`` are shaded spans (x0, x1, tooltip); ``y_range`` fixes
    the y-scale (default: round ticks covering every value)."""
    ys = [y for line in lines for _, y in line.points if y is not None and math.isfinite(y)]
    if y_range is not None:
        lo, hi = y_range
        ticks: list[float] = []
        step = 1.0
    else:
        ticks = nice_ticks(min(ys, default=0.0), max(ys, default=1.0))
        lo, hi = ticks[0], ticks[-1]
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    labels = [tick_label(t, step) for t in ticks] if show_y else []
    left = 6 + max((text_width(t) for t in labels), default=0) + 4
    top = 16 if markers else 8
    right, bottom = 12, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    x0, x1 = x_range
    span = (x1 - x0) or 1.0

    def sx(x: float) -> float:
        return left + plot_w * (min(max(x, x0), x1) - x0) / span

    def sy(y: float) -> float:
        return top + plot_h * (1 - (min(max(y, lo), hi) - lo) / ((hi - lo) or 1.0))

    clip = f"clip-{chart_id}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto;display:block" '
        f'role="img"><defs><clipPath id="{clip}"><rect x="{left - 3:.1f}" y="{top - 3}" '
        f'width="{plot_w + 6:.1f}" height="{plot_h + 6}"/></clipPath></defs>'
    ]
    for t, text in zip(ticks, labels, strict=False):
        y = sy(t)
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOR}"/><text x="{left - 4:.1f}" y="{y + FONT * 0.35:.1f}" '
            f'font-size="{FONT}" fill="{TEXT_COLOR}" text-anchor="end">{esc(text)}</text>'
        )
    parts.append(
        f'<rect x="{left:.1f}" y="{top}" width="{plot_w:.1f}" height="{plot_h}" fill="none" '
        f'stroke="{FRAME_COLOR}"/>'
    )
    for x, text in time_ticks(x0, x1, left, left + plot_w, width):
        px = sx(x)
        cx = label_centre(px, text, width)
        parts.append(
            f'<line x1="{px:.1f}" y1="{top + plot_h}" x2="{px:.1f}" y2="{top + plot_h + 3}" '
            f'stroke="{FRAME_COLOR}"/><text x="{cx:.1f}" y="{height - 4}" font-size="{FONT}" '
            f'fill="{TEXT_COLOR}" text-anchor="middle">{esc(text)}</text>'
        )
    parts.append(f'<g clip-path="url(#{clip})">')
    for a, b, title in bands:
        xa, xb = sx(a), sx(b)
        parts.append(
            f'<rect x="{xa:.1f}" y="{top}" width="{max(xb - xa, 1):.1f}" height="{plot_h}" '
            f'fill="{BAND_COLOR}" fill-opacity="0.12"><title>{esc(title)}</title></rect>'
        )
    for marker in markers:
        px = sx(marker.x)
        parts.append(
            f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{top + plot_h}" '
            f'stroke="{MARKER_COLOR}" stroke-width="1.5" stroke-dasharray="2 2">'
            f"<title>{esc(marker.title)}</title></line>"
        )
    for line in lines:
        parts.extend(_line(line, sx, sy))
    parts.append("</g>")
    parts.extend(_marker_labels(markers, sx, top, left, left + plot_w))
    parts.append("</svg>")
    return "".join(parts)


def _line(line: Line, sx, sy) -> list[str]:  # noqa: ANN001 (the chart's scales)
    dash = ' stroke-dasharray="5 4"' if line.dashed else ""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in line.points:
        if y is None or not math.isfinite(y):
            runs.append([])
        else:
            runs[-1].append((sx(x), sy(y)))
    out = []
    for run in runs:
        if len(run) > 1:
            path = " ".join(f"{a:.1f},{b:.1f}" for a, b in run)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{line.color}" '
                f'stroke-width="1.6"{dash}><title>{esc(line.label)}</title></polyline>'
            )
    if not line.dashed:
        for x, y in line.points:
            if y is not None and math.isfinite(y):
                out.append(
                    f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.2" fill="{line.color}">'
                    f"<title>{esc(line.label)}: {y:.4g}</title></circle>"
                )
    return out


def _marker_labels(
    markers: Sequence[Marker],
    sx,  # noqa: ANN001 (the chart's x-scale)
    top: int,
    left: float,
    right: float,
) -> list[str]:
    """Marker labels above the plot, left to right; one that would overlap the label
    before it (or stick out of the plot's width) is left out."""
    out = []
    end = -math.inf
    for marker in sorted(markers, key=lambda m: m.x):
        if not marker.label:
            continue
        w = text_width(marker.label)
        start = sx(marker.x) + 2
        if start + w > right:
            start = sx(marker.x) - 2 - w  # print it to the left of its line
        if start < left or start < end + GAP:
            continue
        out.append(
            f'<text x="{start:.1f}" y="{top - 5}" font-size="{FONT}" fill="{MARKER_COLOR}">'
            f"{esc(marker.label)}<title>{esc(marker.title)}</title></text>"
        )
        end = start + w
    return out
