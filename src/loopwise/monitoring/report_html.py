"""The HTML page of a monitor report
(:meth:`~loopwise.monitoring.report.MonitorReport.to_html`).

Summary, what was live when (model versions, and versions answering side by side as
variants), feature drift (one card per feature and the drift share), predictions against the
baseline (dashed), live performance overall and per slice (under a notice of the windows'
problems, such as feedback in labels the model does not predict), service figures, data
quality and the alerts (a timeline and a table, with the value that fired each alert and the
latest one). Every chart draws a vertical marker where what was live changed and a band over
each window an alert on that metric fired in. Where versions answered side by side (an A/B
split), every chart draws one line per version instead of one line.

This module gathers that data (the layout of the figures over time, the markers and bands)
and renders the ``monitoring.html.j2`` template of the :mod:`loopwise.reports` kit, which
holds the markup; the charts are :func:`loopwise.reports.charts.time_chart_svg`. No
JavaScript, no network fetch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loopwise.monitoring.report import MonitorReport
from loopwise.monitoring.results import OVERALL
from loopwise.reports.charts import Line, Marker, time_chart_svg
from loopwise.reports.page import Badge, Wrapped, render

PALETTE = ("#3e7cb1", "#e8845c", "#5aa469", "#9c6ade", "#d6a13b", "#3fa7a3", "#c05780")
BASELINE_COLOR = "#616e7c"
PREDICTION_METRICS = ("prediction.mean", "prediction.positive_rate", "prediction.std")
SERVICE_METRICS = (
    ("latency_p95_ms", "p95 latency (ms)"),
    ("error_rate", "error rate"),
    ("throughput_rps", "throughput (requests/s)"),
)
_ALERT_HEADERS = (
    *("window", "fired", "resolved", "state", "severity", "rule", "slice"),
    *("metric", "fired value", "latest value", "threshold", "model", "message"),
)

Point = tuple[float, float | None]
Legend = list[tuple[str, str]]


@dataclass(frozen=True)
class Card:
    """A chart in the grid of its section, with a title and an optional note above it."""

    title: str
    chart: Any  # the chart's markup
    note: str = ""


def render_html(report: MonitorReport) -> str:
    """The complete HTML document for ``report``."""
    subtitle = (
        f"endpoint {report.endpoint} · {_time(report.start)} – {_time(report.end)} UTC · "
        f"{len({w.start for w in report.windows})} windows"
    )
    page = _Page(report)
    return render(
        "monitoring.html.j2",
        title=f"Monitor report: {report.monitor}",
        subtitle=subtitle,
        summary=page.summary(),
        models=page.models(),
        drift=page.drift(),
        predictions=page.predictions(),
        performance=page.performance(),
        service=page.service(),
        quality=page.quality(),
        alerts=page.alerts(),
    )


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def short_names(models: Sequence[str]) -> dict[str, str]:
    """Short chart labels: "v3" for "name/3" when every version is of one model, else the
    whole "name/version"."""
    names = {m.rpartition("/")[0] for m in models}
    if len(names) == 1 and all(m.rpartition("/")[2].isdigit() for m in models):
        return {m: f"v{m.rpartition('/')[2]}" for m in models}
    return {m: m for m in models}


class _Page:
    """The sections of the page, each as the data its part of the template shows."""

    def __init__(self, report: MonitorReport) -> None:
        self.r = report
        self.x_range = (report.start.timestamp(), report.end.timestamp())
        self.short = short_names(report.models)
        self.markers = [
            Marker(
                c.at.timestamp(),
                "+".join(self.short.get(m, m) for m in c.model.split(" + ")),
                f"{_time(c.at)} UTC: {c.previous or '–'} → {c.model}",
            )
            for c in report.model_changes
        ]
        # one line per version where versions answered side by side, else one line
        self.lanes: list[str | None] = list(report.models) if report.concurrent else [None]
        self.ends = {w.start: w.end for w in report.windows}
        step = self._window_length()
        self.bands: dict[tuple[str, str], list[tuple[float, float, str]]] = {}
        for a in report.alerts:
            start = a.window_start.timestamp()
            stop = a.resolved_at.timestamp() if a.resolved_at else report.end.timestamp()
            stop = max(stop, start + step)
            label = f"alert {a.rule} ({a.state}): {a.message}"
            self.bands.setdefault((a.slice, a.metric), []).append((start, stop, label))
        self._charts = 0

    def _window_length(self) -> float:
        lengths = [(w.end - w.start).total_seconds() for w in self.r.windows]
        return min(lengths) if lengths else timedelta(hours=1).total_seconds()

    # -- pieces ------------------------------------------------------------------------------

    def points(self, metric: str, slice: str = OVERALL, model: str | None = None) -> list[Point]:
        """One point per window, at its middle (``model``: that version's figures only)."""
        return [(self._middle(s), v) for s, v, _ in self.r.series(metric, slice, model)]

    def _middle(self, start: datetime) -> float:
        return (start.timestamp() + self.ends[start].timestamp()) / 2

    def baseline_points(self, metric: str, model: str | None = None) -> list[Point]:
        """The baseline of the model live in each window: a step line, over each window."""
        out: list[Point] = []
        for s, value, live in self.r.series(metric, OVERALL, model):
            base = self.r.baselines.get(live, {}).get(metric)
            if model is not None and value is None:
                base = None  # that version did not answer in this window
            out += [(s.timestamp(), base), (self.ends[s].timestamp(), base)]
        return out

    def has(self, metric: str, slice: str = OVERALL) -> bool:
        return any(v is not None for _, v in self.points(metric, slice))

    def lane_color(self, index: int) -> str:
        return PALETTE[index % len(PALETTE)]

    def metric_lines(
        self, metric: str, color: str, *, slice: str = OVERALL, baseline: bool = False
    ) -> list[Line]:
        """The figure's line (one per version, in the version's colour, when versions
        answered side by side), and with ``baseline`` the baseline of the live version,
        dashed."""
        lines = []
        for i, lane in enumerate(self.lanes):
            tint = color if lane is None else self.lane_color(i)
            name = metric if lane is None else f"{self.short[lane]} {metric}"
            points = self.points(metric, slice, lane)
            if any(v is not None for _, v in points):
                lines.append(Line(name, points, tint))
            if baseline:
                base = self.baseline_points(metric, lane)
                if any(v is not None for _, v in base):
                    tint = BASELINE_COLOR if lane is None else tint
                    lines.append(Line(f"baseline {name}", base, tint, dashed=True))
        return lines

    def chart(self, lines: Sequence[Line], alert_keys: Sequence[tuple[str, str]]) -> Any:
        bands = [b for key in alert_keys for b in self.bands.get(key, [])]
        self._charts += 1
        return time_chart_svg(
            lines,
            self.x_range,
            chart_id=str(self._charts),
            markers=self.markers,
            bands=bands,
        )

    def lane_legend(self, *, baseline: bool = False) -> Legend:
        if self.lanes == [None]:
            items = [("live", PALETTE[0])]
        else:
            items = [
                (f"{self.short[m]} ({m})", self.lane_color(i)) for i, m in enumerate(self.r.models)
            ]
        if baseline:
            dashed = "dashed" if self.lanes == [None] else "dashed, in the version's colour"
            items.append((f"baseline ({dashed})", BASELINE_COLOR))
        return items

    # -- sections ----------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        firing = sum(a.state == "firing" for a in self.r.alerts)
        state = [
            Badge(f"{firing} alert(s) firing", "error")
            if firing
            else Badge("no alert firing", "ok")
        ]
        if self.r.problems:
            state.append(
                Badge(f"{len(self.r.problems)} problem(s): see Live performance", "warning")
            )
        side = [
            f"{p.describe()} from {_time(p.start)} to {_time(p.end)}"
            for p in self.r.periods
            if p.concurrent
        ]
        return {
            "state": state,
            "alerts": len(self.r.alerts),
            "versions": ", ".join(self.r.models) or "–",
            "served": f"; served side by side as {'; as '.join(side)}" if side else "",
            "changes": len(self.r.model_changes),
            "concurrent": self.r.concurrent,
        }

    def models(self) -> dict[str, Any]:
        rows = []
        for model in self.r.models:
            parts = [w for w in self.r.windows if w.model == model]
            names = sorted(
                {v.name for p in self.r.periods for v in p.variants if v.model == model and v.name}
            )
            rows.append(
                (
                    model or "(none logged)",
                    ", ".join(names) or "–",
                    _time(parts[0].start),
                    _time(max(w.end for w in parts)),
                    len(parts),
                    sum(w.rows for w in parts),
                    sum(w.labelled for w in parts),
                )
            )
        periods = []
        # each version live once, alone: the versions' table already says what was live when
        if self.r.concurrent or len(self.r.periods) > len(self.r.models):
            periods = [
                (
                    _time(p.start),
                    _time(p.end),
                    p.describe(),
                    len({w.start for w in self.r.windows if p.start <= w.start < p.end}),
                )
                for p in self.r.periods
            ]
        return {"rows": rows, "periods": periods}

    def drift(self) -> dict[str, Any]:
        if not self.r.features:
            return {
                "cards": [],
                "legend": [],
                "nothing": "No drift scores stored (the drift check is off).",
            }
        cards = []
        if self.has("drift.share"):
            lines = self.metric_lines("drift.share", PALETTE[0])
            cards.append(
                Card("share of features drifted", self.chart(lines, [(OVERALL, "drift.share")]))
            )
        for feature in self.r.features:
            metric = f"drift.{feature}"
            flagged = sum(1 for _, v in self.points(f"drifted.{feature}") if v)
            chart = self.chart(
                self.metric_lines(metric, PALETTE[1]),
                [(OVERALL, metric), (OVERALL, f"drifted.{feature}")],
            )
            cards.append(Card(feature, chart, f"drift score; drifted in {flagged} window(s)"))
        legend = self.lane_legend() if self.r.concurrent else []
        return {"cards": cards, "legend": legend, "nothing": ""}

    def predictions(self) -> dict[str, Any]:
        cards = [
            Card(
                metric,
                self.chart(
                    self.metric_lines(metric, PALETTE[0], baseline=True), [(OVERALL, metric)]
                ),
            )
            for metric in (*PREDICTION_METRICS, "prediction.drift")
            if self.has(metric)
        ]
        if not cards:
            return {"cards": [], "legend": [], "nothing": "No prediction figures stored."}
        return {"cards": cards, "legend": self.lane_legend(baseline=True), "nothing": ""}

    def performance(self) -> dict[str, Any]:
        problems = self.problems()
        metrics = [m for m in self.r.metrics if m.startswith("perf.")]
        metrics = [m for m in metrics if any(self.has(m, s) for s in self.r.slices)]
        if not metrics:
            why = "see the problem(s) above" if self.r.problems else "no feedback (labels)"
            nothing = f"No performance figures: {why} in the range."
            return {"problems": problems, "cards": [], "legend": [], "nothing": nothing}
        slices = [s for s in self.r.slices if any(self.has(m, s) for m in metrics)]
        if self.r.concurrent:
            cards = self._performance_by_version(metrics, slices)
            legend = self.lane_legend(baseline=True)
        else:
            colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(slices)}
            cards = []
            for metric in metrics:
                lines = [
                    Line(f"{_slice(s)} {metric}", self.points(metric, s), colors[s])
                    for s in slices
                    if self.has(metric, s)
                ]
                base = self.baseline_points(metric)
                if any(v is not None for _, v in base):
                    lines.append(Line(f"baseline {metric}", base, BASELINE_COLOR, dashed=True))
                keys = [(s, metric) for s in slices]
                cards.append(Card(metric.removeprefix("perf."), self.chart(lines, keys)))
            legend = [(_slice(s), colors[s]) for s in slices] + [("baseline", BASELINE_COLOR)]
        return {"problems": problems, "cards": cards, "legend": legend, "nothing": ""}

    def problems(self) -> dict[str, Any] | None:
        """What kept figures out of windows (feedback in labels the model does not predict:
        no ``perf.*``), each distinct problem once, as a notice above the charts it
        concerns: read on its own, a chart with gaps looks like missing feedback."""
        found = self.r.problems
        if not found:
            return None
        windows = len({w.start for w in self.r.windows if w.problems})
        return {
            "head": Badge(f"figures left out of {windows} window(s)", "warning"),
            "rows": [
                (p.model or "–", p.windows, _time(p.start), _time(p.end), p.message) for p in found
            ],
        }

    def _performance_by_version(self, metrics: list[str], slices: list[str]) -> list[Card]:
        """Versions side by side: a card per metric and slice, a line per version (the
        version's colour, as on every chart of the page)."""
        cards = []
        for metric in metrics:
            for s in slices:
                if not self.has(metric, s):
                    continue
                lines = self.metric_lines(metric, PALETTE[0], slice=s, baseline=s == OVERALL)
                title = metric.removeprefix("perf.") + ("" if s == OVERALL else f" · {s}")
                cards.append(Card(title, self.chart(lines, [(s, metric)])))
        return cards

    def service(self) -> dict[str, Any]:
        cards = [
            Card(title, self.chart(self.metric_lines(metric, PALETTE[0]), [(OVERALL, metric)]))
            for metric, title in SERVICE_METRICS
            if self.has(metric)
        ]
        nothing = "" if cards else "No latency, error or throughput figures stored."
        return {"cards": cards, "legend": [], "nothing": nothing}

    def quality(self) -> list[Card]:
        """The data-quality cards; none leaves the section out."""
        metrics = [m for m in self.r.metrics if m.startswith("missing.") and self.has(m)]
        metrics += [m for m in ("schema.errors", "schema.warnings") if self.has(m)]
        return [
            Card(m, self.chart(self.metric_lines(m, PALETTE[2]), [(OVERALL, m)])) for m in metrics
        ]

    def alerts(self) -> dict[str, Any] | None:
        """A timeline of the alerts (a row per rule and slice) and their table."""
        if not self.r.alerts:
            return None
        rules = list(dict.fromkeys((a.rule, a.slice) for a in self.r.alerts))
        lines = []
        for i, (rule, slice_) in enumerate(rules):
            level = float(len(rules) - i)
            points: list[Point] = []
            for a in self.r.alerts:
                if (a.rule, a.slice) != (rule, slice_):
                    continue
                stop = a.resolved_at or self.r.end
                points += [(a.window_start.timestamp(), level), (stop.timestamp(), level)]
                points.append((stop.timestamp(), None))
            lines.append(Line(f"{rule} ({_slice(slice_)})", points, PALETTE[i % len(PALETTE)]))
        bands = [b for values in self.bands.values() for b in values]
        self._charts += 1
        chart = time_chart_svg(
            lines,
            self.x_range,
            chart_id=str(self._charts),
            markers=self.markers,
            bands=bands,
            y_range=(0.5, len(rules) + 0.5),
            show_y=False,
            width=1000,
            height=max(90, 26 * len(rules) + 44),
        )
        legend = [
            (f"{r} ({_slice(s)})", PALETTE[i % len(PALETTE)]) for i, (r, s) in enumerate(rules)
        ]
        rows = [
            (
                _time(a.window_start),
                _time(a.fired_at),
                _time(a.resolved_at) if a.resolved_at else "–",
                Badge(a.state, "error" if a.state == "firing" else "ok"),
                a.severity,
                a.rule,
                _slice(a.slice),
                a.metric,
                a.fired_value,  # None (a dash) for alerts stored before it was kept
                a.value,
                a.threshold,
                a.model,
                # long paths and commands in a message wrap instead of widening the table
                Wrapped(a.message),
            )
            for a in self.r.alerts
        ]
        return {"chart": chart, "legend": legend, "headers": _ALERT_HEADERS, "rows": rows}


def _slice(value: str) -> str:
    return value or "overall"
