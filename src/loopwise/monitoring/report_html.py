"""The HTML page of a monitor report (:meth:`~loopwise.monitoring.report.MonitorReport.to_html`).

Pure rendering from the :mod:`loopwise.reporting` pieces plus an inline-SVG time-series
chart (:func:`line_chart_svg`): summary, model versions, feature drift (one card per
feature and the drift share), predictions against the baseline (dashed), live performance
overall and per slice, service figures, data quality and the alerts (a timeline and a
table). Every chart draws a vertical marker where the model version changed and a band
over each window an alert on that metric fired in. No JavaScript, no network fetch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from loopwise.monitoring.report import MonitorReport
from loopwise.monitoring.results import OVERALL
from loopwise.reporting import Markup, badge, esc, legend, page, table

PALETTE = ("#3e7cb1", "#e8845c", "#5aa469", "#9c6ade", "#d6a13b", "#3fa7a3", "#c05780")
BASELINE_COLOR = "#616e7c"
MARKER_COLOR = "#7b8794"
ALERT_COLOR = "#d64545"
PREDICTION_METRICS = ("prediction.mean", "prediction.positive_rate", "prediction.std")
SERVICE_METRICS = (
    ("latency_p95_ms", "p95 latency (ms)"),
    ("error_rate", "error rate"),
    ("throughput_rps", "throughput (requests/s)"),
)

Point = tuple[float, float | None]


def line_chart_svg(
    series: Sequence[tuple[str, Sequence[Point], str, bool]],
    x_range: tuple[float, float],
    *,
    markers: Sequence[tuple[float, str]] = (),
    bands: Sequence[tuple[float, float, str]] = (),
    x_labels: tuple[str, str] = ("", ""),
    show_y: bool = True,
    width: int = 520,
    height: int = 170,
) -> str:
    """Lines over time: ``series`` holds (label, [(x, y or None)], colour, dashed); a None
    breaks the line. ``markers`` are vertical lines (x, label), ``bands`` shaded spans
    (x0, x1, label), both within ``x_range``; ``show_y=False`` leaves out the y-axis figures."""
    left, right, top, bottom = 44, 8, 8, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    ys = [y for _, points, _, _ in series for _, y in points if y is not None]
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.1 or 0.5), hi + (abs(hi) * 0.1 or 0.5)
    x0, x1 = x_range
    span = (x1 - x0) or 1.0

    def sx(x: float) -> float:
        return left + plot_w * (x - x0) / span

    def sy(y: float) -> float:
        return top + plot_h * (1 - (y - lo) / (hi - lo))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#e4e7eb"/>',
    ]
    for a, b, label in bands:
        xa, xb = sx(max(a, x0)), sx(min(b, x1))
        parts.append(
            f'<rect x="{xa:.1f}" y="{top}" width="{max(xb - xa, 2):.1f}" height="{plot_h}" '
            f'fill="{ALERT_COLOR}" fill-opacity="0.12"><title>{esc(label)}</title></rect>'
        )
    for x, label in markers:
        parts.append(
            f'<line x1="{sx(x):.1f}" y1="{top}" x2="{sx(x):.1f}" y2="{top + plot_h}" '
            f'stroke="{MARKER_COLOR}" stroke-width="1.5" stroke-dasharray="2 2">'
            f"<title>{esc(label)}</title></line>"
            f'<text x="{sx(x) + 2:.1f}" y="{top + 9}" font-size="9" fill="{MARKER_COLOR}">'
            f"{esc(label)}</text>"
        )
    for label, points, color, dashed in series:
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        runs: list[list[tuple[float, float]]] = [[]]
        for x, y in points:
            if y is None:
                runs.append([])
            else:
                runs[-1].append((sx(x), sy(y)))
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{a:.1f},{b:.1f}" for a, b in run)
                parts.append(
                    f'<polyline points="{path}" fill="none" stroke="{color}" '
                    f'stroke-width="1.6"{dash}><title>{esc(label)}</title></polyline>'
                )
        if not dashed:
            for x, y in points:
                if y is not None:
                    parts.append(
                        f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.2" fill="{color}">'
                        f"<title>{esc(label)}: {y:.4g}</title></circle>"
                    )
    if show_y:
        parts.append(
            f'<text x="{left - 3}" y="{top + 8}" font-size="9" fill="#616e7c" '
            f'text-anchor="end">{hi:.3g}</text>'
            f'<text x="{left - 3}" y="{top + plot_h}" font-size="9" fill="#616e7c" '
            f'text-anchor="end">{lo:.3g}</text>'
        )
    parts.append(
        f'<text x="{left}" y="{height - 5}" font-size="9" fill="#616e7c">'
        f"{esc(x_labels[0])}</text>"
        f'<text x="{width - right}" y="{height - 5}" font-size="9" fill="#616e7c" '
        f'text-anchor="end">{esc(x_labels[1])}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: MonitorReport) -> str:
    """The complete HTML document for ``report``."""
    subtitle = (
        f"endpoint {report.endpoint} · {_time(report.start)} – {_time(report.end)} UTC · "
        f"{len({w.start for w in report.windows})} windows"
    )
    return page(f"Monitor report: {report.monitor}", _Body(report).html(), subtitle=subtitle)


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


class _Body:
    def __init__(self, report: MonitorReport) -> None:
        self.r = report
        self.t0 = report.start.timestamp()
        self.x_range = (self.t0, report.end.timestamp())
        self.x_labels = (_time(report.start), _time(report.end))
        self.markers = [(c.at.timestamp(), c.model) for c in report.model_changes]
        self.ends = {w.start: w.end for w in report.windows}
        step = self._window_length()
        self.bands: dict[tuple[str, str], list[tuple[float, float, str]]] = {}
        for a in report.alerts:
            start = a.window_start.timestamp()
            stop = a.resolved_at.timestamp() if a.resolved_at else report.end.timestamp()
            stop = max(stop, start + step)
            label = f"alert {a.rule} ({a.state}): {a.message}"
            self.bands.setdefault((a.slice, a.metric), []).append((start, stop, label))

    def _window_length(self) -> float:
        lengths = [(w.end - w.start).total_seconds() for w in self.r.windows]
        return min(lengths) if lengths else timedelta(hours=1).total_seconds()

    # -- pieces ------------------------------------------------------------------------------

    def points(self, metric: str, slice: str = OVERALL) -> list[Point]:
        """One point per window, at its middle."""
        return [(self._middle(s), v) for s, v, _ in self.r.series(metric, slice)]

    def _middle(self, start: datetime) -> float:
        return (start.timestamp() + self.ends[start].timestamp()) / 2

    def baseline_points(self, metric: str) -> list[Point]:
        """The baseline of the model live in each window: a step line, over each window."""
        out: list[Point] = []
        for s, _, model in self.r.series(metric):
            value = self.r.baselines.get(model, {}).get(metric)
            out += [(s.timestamp(), value), (self.ends[s].timestamp(), value)]
        return out

    def has(self, metric: str, slice: str = OVERALL) -> bool:
        return any(v is not None for _, v in self.points(metric, slice))

    def chart(
        self,
        series: Sequence[tuple[str, Sequence[Point], str, bool]],
        alert_keys: Sequence[tuple[str, str]],
    ) -> str:
        bands = [b for key in alert_keys for b in self.bands.get(key, [])]
        return line_chart_svg(
            series,
            self.x_range,
            markers=self.markers,
            bands=bands,
            x_labels=self.x_labels,
        )

    def card(self, title: str, body: str, note: str = "") -> str:
        meta = f'<div class="meta">{esc(note)}</div>' if note else ""
        return f'<div class="card"><h3>{esc(title)}</h3>{meta}{body}</div>'

    # -- sections ----------------------------------------------------------------------------

    def html(self) -> str:
        parts = [self.summary(), self.models()]
        for section in (
            self.drift,
            self.predictions,
            self.performance,
            self.service,
            self.quality,
            self.alerts,
        ):
            parts.append(section())
        return "".join(parts)

    def summary(self) -> str:
        firing = sum(a.state == "firing" for a in self.r.alerts)
        state = (
            badge(f"{firing} alert(s) firing", "error")
            if firing
            else badge("no alert firing", "ok")
        )
        versions = ", ".join(self.r.models) or "–"
        return (
            f"<p>{state} {len(self.r.alerts)} alert(s) in the range; model version(s): "
            f"{esc(versions)}; {len(self.r.model_changes)} change(s) of version.</p>"
            '<p class="meta">Dotted vertical lines mark a change of model version; red bands '
            "the windows an alert on that figure was active; dashed lines the baseline of "
            "the live model version (its figures on the reference / training data).</p>"
        )

    def models(self) -> str:
        rows = []
        for model in self.r.models:
            parts = [w for w in self.r.windows if w.model == model]
            rows.append(
                (
                    model or "(none logged)",
                    _time(parts[0].start),
                    _time(max(w.end for w in parts)),
                    len(parts),
                    sum(w.rows for w in parts),
                    sum(w.labelled for w in parts),
                )
            )
        out = ["<h2>Model versions</h2>"]
        out.append(
            table(["model", "from", "to", "windows", "rows", "labelled"], rows, numeric={3, 4, 5})
        )
        if self.r.model_changes:
            out.append(
                table(
                    ["changed at (UTC)", "from", "to"],
                    [(_time(c.at), c.previous or "–", c.model) for c in self.r.model_changes],
                )
            )
        return "".join(out)

    def drift(self) -> str:
        out = ["<h2>Feature drift</h2>"]
        if not self.r.features:
            return out[0] + _none("No drift scores stored (the drift check is off).")
        out.append('<div class="grid">')
        if self.has("drift.share"):
            out.append(
                self.card(
                    "share of features drifted",
                    self.chart(
                        [("drift.share", self.points("drift.share"), PALETTE[0], False)],
                        [(OVERALL, "drift.share")],
                    ),
                )
            )
        for feature in self.r.features:
            metric = f"drift.{feature}"
            flagged = sum(1 for _, v in self.points(f"drifted.{feature}") if v)
            out.append(
                self.card(
                    feature,
                    self.chart(
                        [(metric, self.points(metric), PALETTE[1], False)],
                        [(OVERALL, metric), (OVERALL, f"drifted.{feature}")],
                    ),
                    f"drift score; drifted in {flagged} window(s)",
                )
            )
        out.append("</div>")
        return "".join(out)

    def predictions(self) -> str:
        out = ["<h2>Predictions</h2>"]
        cards = []
        for metric in (*PREDICTION_METRICS, "prediction.drift"):
            if not self.has(metric):
                continue
            series = [(metric, self.points(metric), PALETTE[0], False)]
            base = self.baseline_points(metric)
            if any(v is not None for _, v in base):
                series.append((f"baseline {metric}", base, BASELINE_COLOR, True))
            cards.append(self.card(metric, self.chart(series, [(OVERALL, metric)])))
        if not cards:
            return out[0] + _none("No prediction figures stored.")
        return "".join([*out, '<div class="grid">', *cards, "</div>", _legend_baseline()])

    def performance(self) -> str:
        out = ["<h2>Live performance</h2>"]
        metrics = [m for m in self.r.metrics if m.startswith("perf.")]
        metrics = [m for m in metrics if any(self.has(m, s) for s in self.r.slices)]
        if not metrics:
            return out[0] + _none("No performance figures: no feedback (labels) in the range.")
        slices = [s for s in self.r.slices if any(self.has(m, s) for m in metrics)]
        colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(slices)}
        out.append('<div class="grid">')
        for metric in metrics:
            series = [
                (f"{_slice(s)} {metric}", self.points(metric, s), colors[s], False)
                for s in slices
                if self.has(metric, s)
            ]
            base = self.baseline_points(metric)
            if any(v is not None for _, v in base):
                series.append((f"baseline {metric}", base, BASELINE_COLOR, True))
            keys = [(s, metric) for s in slices]
            out.append(self.card(metric.removeprefix("perf."), self.chart(series, keys)))
        out.append("</div>")
        out.append(
            legend([(_slice(s), colors[s]) for s in slices] + [("baseline", BASELINE_COLOR)])
        )
        return "".join(out)

    def service(self) -> str:
        out = ["<h2>Service</h2>"]
        cards = [
            self.card(
                title,
                self.chart([(metric, self.points(metric), PALETTE[0], False)], [(OVERALL, metric)]),
            )
            for metric, title in SERVICE_METRICS
            if self.has(metric)
        ]
        if not cards:
            return out[0] + _none("No latency, error or throughput figures stored.")
        return "".join([*out, '<div class="grid">', *cards, "</div>"])

    def quality(self) -> str:
        metrics = [m for m in self.r.metrics if m.startswith("missing.") and self.has(m)]
        metrics += [m for m in ("schema.errors", "schema.warnings") if self.has(m)]
        if not metrics:
            return ""
        cards = [
            self.card(m, self.chart([(m, self.points(m), PALETTE[2], False)], [(OVERALL, m)]))
            for m in metrics
        ]
        return "".join(["<h2>Data quality</h2>", '<div class="grid">', *cards, "</div>"])

    def alerts(self) -> str:
        out = ["<h2>Alerts</h2>"]
        if not self.r.alerts:
            return out[0] + _none("No alert was active in the range.")
        rules = list(dict.fromkeys((a.rule, a.slice) for a in self.r.alerts))
        series = []
        for i, (rule, slice_) in enumerate(rules):
            level = float(len(rules) - i)
            points: list[Point] = []
            for a in self.r.alerts:
                if (a.rule, a.slice) != (rule, slice_):
                    continue
                stop = a.resolved_at or self.r.end
                points += [(a.window_start.timestamp(), level), (stop.timestamp(), level)]
                points.append((stop.timestamp(), None))
            label = f"{rule} ({_slice(slice_)})"
            series.append((label, points, PALETTE[i % len(PALETTE)], False))
        bands = [b for values in self.bands.values() for b in values]
        out.append(
            line_chart_svg(
                series,
                self.x_range,
                markers=self.markers,
                bands=bands,
                x_labels=self.x_labels,
                show_y=False,
                width=1000,
                height=max(90, 26 * len(rules) + 40),
            )
        )
        out.append(
            legend(
                [
                    (f"{r} ({_slice(s)})", PALETTE[i % len(PALETTE)])
                    for i, (r, s) in enumerate(rules)
                ]
            )
        )
        rows = [
            (
                _time(a.window_start),
                _time(a.fired_at),
                _time(a.resolved_at) if a.resolved_at else "–",
                Markup(badge(a.state, "error" if a.state == "firing" else "ok")),
                a.severity,
                a.rule,
                _slice(a.slice),
                a.metric,
                a.value,
                a.threshold,
                a.model,
                a.message,
            )
            for a in self.r.alerts
        ]
        headers = ["window", "fired", "resolved", "state", "severity", "rule", "slice"]
        headers += ["metric", "value", "threshold", "model", "message"]
        out.append(table(headers, rows, numeric={8, 9}))
        return "".join(out)


def _slice(value: str) -> str:
    return value or "overall"


def _none(text: str) -> str:
    return f'<p class="meta">{esc(text)}</p>'


def _legend_baseline() -> str:
    return legend([("live", PALETTE[0]), ("baseline (dashed)", BASELINE_COLOR)])
