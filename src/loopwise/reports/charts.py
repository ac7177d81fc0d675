"""Every chart of the reports, as inline SVG: no plotting library, no JavaScript.

Each function lays a chart out (scales, bars, ticks, labels) and renders its template in
``templates/charts/``; it returns markup ready to put in a page. Charts are one ``<svg>``
element sized in pixels that scales down with its card.

Why the time chart has a layout step and not just coordinates: a report is read in a browser
at whatever width its card gets, so the chart (a) scales down with its card
(``max-width:100%``) instead of running into the next one, (b) draws lines, points, bands and
markers only inside its plot area (y-scales cover every value, and a clip path holds what a
rounding error would push out), and (c) places text so no two labels overlap: y ticks are
"nice" numbers whose labels are distinct, x ticks take the smallest time step whose labels
fit side by side (each label unique: the date at midnight, the time otherwise, both where a
time repeats), and marker labels along the top are left out where they would print over the
previous one (the line and its tooltip stay). Label widths are estimated from the character
count at a conservative width per character; the browser tests in tests/reports/ check the
result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from loopwise.reports.page import number, render_fragment

if TYPE_CHECKING:  # the type only: Jinja2 is imported on the first render
    from markupsafe import Markup

REFERENCE_COLOR = "#7b93db"
CURRENT_COLOR = "#e8845c"
FLAG_COLOR = "#d64545"  # a bar that stands out (a slice flagged as worse than overall)

#: (label, counts or shares per bar, colour) of one series of bars
Series = tuple[str, Sequence[float], str]

FONT = 10  # px, every label of the time chart
CHAR_W = 0.66 * FONT  # a wide estimate of one character's advance (DejaVu digits: 0.64 em)
GAP = 6  # px kept free between two labels
TEXT_COLOR = "#616e7c"
GRID_COLOR = "#eef0f3"
FRAME_COLOR = "#d9dde2"
MARKER_COLOR = "#7b8794"
BAND_COLOR = "#d64545"
_TIME_COLORS = {
    "text": TEXT_COLOR,
    "grid": GRID_COLOR,
    "frame": FRAME_COLOR,
    "marker": MARKER_COLOR,
    "band": BAND_COLOR,
}
SLICE_LABEL_CHARS = 21  # what the 126 px label column of slice bars holds at 10 px

#: x-tick steps tried, smallest first (seconds)
_STEPS = (
    60, 300, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600,
    86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400, 91 * 86400, 364 * 86400,
)  # fmt: skip


@dataclass(frozen=True)
class _Bar:
    """One rectangle of a bar chart, its tooltip in ``title``."""

    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


# -- distributions: histograms and category bars ----------------------------------------------


def histogram_svg(
    edges: Sequence[float], series: Sequence[Series], *, width: int = 320, height: int = 140
) -> Markup:
    """Overlaid bar histograms over shared bin ``edges``.

    Each series is normalised to its own total so reference and current compare as
    distributions.
    """
    bins = max(len(edges) - 1, 1)
    pad, pad_bottom = 4, 18
    plot_w, plot_h = width - 2 * pad, height - pad_bottom - 4
    shares = [_shares(counts) for _, counts, _ in series]
    top = max((max(s) for s in shares if s), default=1.0) or 1.0
    bar_w = plot_w / bins
    bars = [
        _Bar(
            pad + i * bar_w,
            4 + plot_h - plot_h * s / top,
            max(bar_w - 1, 0.5),
            plot_h * s / top,
            color,
            f"{label}: {s:.1%}",
        )
        for (label, _, color), share in zip(series, shares, strict=True)
        for i, s in enumerate(share)
    ]
    ends = (number(edges[0]), number(edges[-1])) if edges else None
    return render_fragment(
        "charts/histogram.svg.j2",
        width=width,
        height=height,
        pad=pad,
        axis_y=4 + plot_h,
        bars=bars,
        ends=ends,
    )


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts)) or 1.0
    return [c / total for c in counts]


def bars_svg(
    labels: Sequence[str], series: Sequence[Series], *, width: int = 320, bar_height: int = 12
) -> Markup:
    """Horizontal grouped bars (categories): one group per label, one bar per series."""
    label_w = 110
    group_h = bar_height * len(series) + 6
    height = len(labels) * group_h + 4
    top = max((max(values) for _, values, _ in series if len(values)), default=1.0) or 1.0
    groups = []
    for g, label in enumerate(labels):
        y0 = 2 + g * group_h
        bars = []
        for k, (name, values, color) in enumerate(series):
            value = values[g] if g < len(values) else 0.0
            w = (width - label_w - 4) * value / top
            title = f"{name} {label}: {value:.1%}"
            bars.append(_Bar(label_w, y0 + k * bar_height, w, bar_height - 2, color, title))
        groups.append((y0 + group_h / 2 + 3, str(label)[:18], bars))
    return render_fragment(
        "charts/bars.svg.j2",
        width=width,
        height=height,
        label_x=label_w - 4,
        groups=groups,
    )


# -- slices against overall --------------------------------------------------------------------


def slice_bars_svg(
    labels: Sequence[str], values: Sequence[float], overall: float, flags: Sequence[bool]
) -> Markup:
    """Horizontal bars, one per slice (flagged ones in :data:`FLAG_COLOR`), with a dashed
    line at the ``overall`` value; NaN values print as such, without a bar."""
    width, label_w, value_w, row_h = 340, 130, 46, 16
    height = row_h * len(labels) + 8
    known = [v for v in [*values, overall] if not math.isnan(v)]
    low, high = min([0.0, *known]), max([0.0, *known])
    span = (high - low) or 1.0
    plot_w = width - label_w - value_w

    def x(value: float) -> float:
        return label_w + plot_w * (value - low) / span

    rows = []
    for i, (label, value, flag) in enumerate(zip(labels, values, flags, strict=True)):
        y = 4 + i * row_h
        bar = None
        if not math.isnan(value):
            left, right = sorted((x(0.0), x(value)))
            color = FLAG_COLOR if flag else CURRENT_COLOR
            title = f"{label}: {value:.4g}"
            bar = _Bar(left, y + 2, max(right - left, 0.5), row_h - 4, color, title)
        text = "NaN" if math.isnan(value) else f"{value:.3g}"
        rows.append((y + 11, short_label(label), bar, text))
    return render_fragment(
        "charts/slice_bars.svg.j2",
        width=width,
        height=height,
        label_x=label_w - 4,
        rows=rows,
        overall=None if math.isnan(overall) else (x(overall), f"{overall:.4g}"),
        overall_color=REFERENCE_COLOR,
    )


def short_label(label: str, limit: int = SLICE_LABEL_CHARS) -> str:
    """A slice label that fits the label column: a long value is cut with an ellipsis and
    its row count kept (the bar's tooltip holds the whole label)."""
    if len(label) <= limit:
        return label
    head, sep, count = label.rpartition(" (n=")
    if not sep:
        return label[: limit - 1] + "…"
    tail = sep + count
    return head[: max(limit - len(tail) - 1, 1)] + "…" + tail


# -- time series -------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class _Frame:
    """Where a time chart's plot area lies in its svg, and its two scales."""

    left: float
    top: int
    width: float
    height: int
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    def x(self, value: float) -> float:
        x0, x1 = self.x_range
        return self.left + self.width * (min(max(value, x0), x1) - x0) / ((x1 - x0) or 1.0)

    def y(self, value: float) -> float:
        lo, hi = self.y_range
        return self.top + self.height * (1 - (min(max(value, lo), hi) - lo) / ((hi - lo) or 1.0))


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
) -> Markup:
    """The chart as one ``<svg>`` element (``chart_id`` must be unique in the page: it
    names the clip path). ``bands`` are shaded spans (x0, x1, tooltip); ``y_range`` fixes
    the y-scale (default: round ticks covering every value)."""
    ys = [y for line in lines for _, y in line.points if y is not None and math.isfinite(y)]
    if y_range is not None:
        ticks: list[float] = []
        step = 1.0
    else:
        ticks = nice_ticks(min(ys, default=0.0), max(ys, default=1.0))
        y_range = (ticks[0], ticks[-1])
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    labels = [tick_label(t, step) for t in ticks] if show_y else []
    left = 6 + max((text_width(t) for t in labels), default=0) + 4
    top = 16 if markers else 8
    frame = _Frame(left, top, width - left - 12, height - top - 20, x_range, y_range)
    x_ticks = []
    for x, text in time_ticks(*x_range, left, left + frame.width, width):
        x_ticks.append((frame.x(x), label_centre(frame.x(x), text, width), text))
    return render_fragment(
        "charts/time.svg.j2",
        width=width,
        height=height,
        clip=f"clip-{chart_id}",
        frame=frame,
        y_ticks=[(frame.y(t), text) for t, text in zip(ticks, labels, strict=False)],
        x_ticks=x_ticks,
        bands=[(frame.x(a), max(frame.x(b) - frame.x(a), 1), title) for a, b, title in bands],
        markers=[(frame.x(m.x), m.title) for m in markers],
        lines=[_line(line, frame) for line in lines],
        marker_labels=_marker_labels(markers, frame.x, top, left, left + frame.width),
        font=FONT,
        colors=_TIME_COLORS,
    )


@dataclass(frozen=True)
class _Polyline:
    """A line as drawn: its unbroken runs of points, and the points marked as dots."""

    label: str
    color: str
    dashed: bool
    runs: list[str]  # each run's "x,y x,y ..." points attribute
    dots: list[tuple[float, float, float]]  # (x, y, value)


def _line(line: Line, frame: _Frame) -> _Polyline:
    runs: list[list[tuple[float, float]]] = [[]]
    dots = []
    for x, y in line.points:
        if y is None or not math.isfinite(y):
            runs.append([])
        else:
            runs[-1].append((frame.x(x), frame.y(y)))
            dots.append((frame.x(x), frame.y(y), y))
    paths = [" ".join(f"{a:.1f},{b:.1f}" for a, b in run) for run in runs if len(run) > 1]
    return _Polyline(line.label, line.color, line.dashed, paths, [] if line.dashed else dots)


def _marker_labels(
    markers: Sequence[Marker],
    sx: Callable[[float], float],
    top: int,
    left: float,
    right: float,
) -> list[tuple[float, int, Marker]]:
    """(x, y, marker) of the marker labels above the plot, left to right; one that would
    overlap the label before it (or stick out of the plot's width) is left out."""
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
        out.append((start, top - 5, marker))
        end = start + w
    return out
