"""The HTML page of a monitor report (:meth:`~loopwise.monitoring.report.MonitorReport.to_html`).

Pure rendering from the :mod:`loopwise.reporting` pieces plus the time-series charts of
:mod:`loopwise.monitoring.time_chart`: summary, what was live when (model versions, and
versions answering side by side as variants), feature drift (one card per feature and the
drift share), predictions against the baseline (dashed), live performance overall and per
slice (under a notice of the windows' problems, such as feedback in labels the model does not
predict), service figures, data quality and the alerts (a timeline and a table, with the
value that fired each alert and the latest one). Every chart draws a vertical marker where
what was live changed and a band over each window an alert on that metric fired in. Where
versions answered side by side (an A/B split), every chart draws one line per version
instead of one line. No JavaScript, no network fetch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from loopwise.monitoring.report import MonitorReport
from loopwise.monitoring.results import OVERALL
from loopwise.monitoring.time_chart import Line, Marker, time_chart_svg
from loopwise.reporting import Markup, badge, esc, legend, page, table

PALETTE = ("#3e7cb1", "#e8845c", "#5aa469", "#9c6ade", "#d6a13b", "#3fa7a3", "#c05780")
BASELINE_COLOR = "#616e7c"
PREDICTION_METRICS = ("prediction.mean", "prediction.positive_rate", "prediction.std")
SERVICE_METRICS = (
    ("latency_p95_ms", "p95 latency (ms)"),
    ("error_rate", "error rate"),
    ("throughput_rps", "throughput (requests/s)"),
)

Point = tuple[float, float | None]


def render_html(report: MonitorReport) -> str:
    """The complete HTML document for ``report``."""
    subtitle = (
        f"endpoint {report.endpoint} · {_time(report.start)} – {_time(report.end)} UTC · "
        f"{len({w.start for w in report.windows})} windows"
    )
    return page(f"Monitor report: {report.monitor}", _Body(report).html(), subtitle=subtitle)


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def short_names(models: Sequence[str]) -> dict[str, str]:
    """Short chart labels: "v3" for "name/3" when every version is of one model, else the
    whole "name/version"."""
    names = {m.rpartition("/")[0] for m in models}
    if len(names) == 1 and all(m.rpartition("/")[2].isdigit() for m in models):
        return {m: f"v{m.rpartition('/')[2]}" for m in models}
    return {m: m for m in models}


class _Body:
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

    def chart(self, lines: Sequence[Line], alert_keys: Sequence[tuple[str, str]]) -> str:
        bands = [b for key in alert_keys for b in self.bands.get(key, [])]
        self._charts += 1
        return time_chart_svg(
            lines,
            self.x_range,
            chart_id=str(self._charts),
            markers=self.markers,
            bands=bands,
        )

    def card(self, title: str, body: str, note: str = "") -> str:
        meta = f'<div class="meta">{esc(note)}</div>' if note else ""
        return f'<div class="card"><h3>{esc(title)}</h3>{meta}{body}</div>'

    def lane_legend(self, *, baseline: bool = False) -> str:
        if self.lanes == [None]:
            items = [("live", PALETTE[0])]
        else:
            items = [
                (f"{self.short[m]} ({m})", self.lane_color(i)) for i, m in enumerate(self.r.models)
            ]
        if baseline:
            dashed = "dashed" if self.lanes == [None] else "dashed, in the version's colour"
            items.append((f"baseline ({dashed})", BASELINE_COLOR))
        return legend(items)

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
        side = [
            f"{p.describe()} from {_time(p.start)} to {_time(p.end)}"
            for p in self.r.periods
            if p.concurrent
        ]
        served = f"; served side by side as {'; as '.join(side)}" if side else ""
        lanes = (
            " Where versions answered side by side, every chart has one line per version."
            if self.r.concurrent
            else ""
        )
        if self.r.problems:
            problems = f"{len(self.r.problems)} problem(s): see Live performance"
            state += " " + badge(problems, "warning")
        return (
            f"<p>{state} {len(self.r.alerts)} alert(s) in the range; model version(s): "
            f"{esc(versions)}{esc(served)}; {len(self.r.model_changes)} change(s) of the live "
            "version(s).</p>"
            '<p class="meta">Dotted vertical lines mark a change of the live model version(s), '
            "labelled with the new one(s); red bands the windows an alert on that figure was "
            "active; dashed lines the baseline of the live model version (its figures on the "
            f"reference / training data).{lanes}</p>"
        )

    def models(self) -> str:
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
        out = ["<h2>Model versions</h2>"]
        headers = ["model", "variant", "from", "to", "windows", "rows", "labelled"]
        out.append(table(headers, rows, numeric={4, 5, 6}))
        # each version live once, alone: the table above already says what was live when
        if self.r.concurrent or len(self.r.periods) > len(self.r.models):
            out.append(
                table(
                    ["live from (UTC)", "to", "what answered", "windows"],
                    [
                        (
                            _time(p.start),
                            _time(p.end),
                            p.describe(),
                            len({w.start for w in self.r.windows if p.start <= w.start < p.end}),
                        )
                        for p in self.r.periods
                    ],
                    numeric={3},
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
                        self.metric_lines("drift.share", PALETTE[0]), [(OVERALL, "drift.share")]
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
                        self.metric_lines(metric, PALETTE[1]),
                        [(OVERALL, metric), (OVERALL, f"drifted.{feature}")],
                    ),
                    f"drift score; drifted in {flagged} window(s)",
                )
            )
        out.append("</div>")
        if self.r.concurrent:
            out.append(self.lane_legend())
        return "".join(out)

    def predictions(self) -> str:
        out = ["<h2>Predictions</h2>"]
        cards = [
            self.card(
                metric,
                self.chart(
                    self.metric_lines(metric, PALETTE[0], baseline=True), [(OVERALL, metric)]
                ),
            )
            for metric in (*PREDICTION_METRICS, "prediction.drift")
            if self.has(metric)
        ]
        if not cards:
            return out[0] + _none("No prediction figures stored.")
        return "".join(
            [*out, '<div class="grid">', *cards, "</div>", self.lane_legend(baseline=True)]
        )

    def performance(self) -> str:
        out = ["<h2>Live performance</h2>", self.problems()]
        metrics = [m for m in self.r.metrics if m.startswith("perf.")]
        metrics = [m for m in metrics if any(self.has(m, s) for s in self.r.slices)]
        if not metrics:
            why = "see the problem(s) above" if self.r.problems else "no feedback (labels)"
            return "".join(out) + _none(f"No performance figures: {why} in the range.")
        slices = [s for s in self.r.slices if any(self.has(m, s) for m in metrics)]
        if self.r.concurrent:
            return "".join([*out, self._performance_by_version(metrics, slices)])
        colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(slices)}
        out.append('<div class="grid">')
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
            out.append(self.card(metric.removeprefix("perf."), self.chart(lines, keys)))
        out.append("</div>")
        out.append(
            legend([(_slice(s), colors[s]) for s in slices] + [("baseline", BASELINE_COLOR)])
        )
        return "".join(out)

    def problems(self) -> str:
        """What kept figures out of windows (feedback in labels the model does not predict:
        no ``perf.*``), each distinct problem once, as a notice above the charts it
        concerns: read on its own, a chart with gaps looks like missing feedback."""
        found = self.r.problems
        if not found:
            return ""
        windows = len({w.start for w in self.r.windows if w.problems})
        head = badge(f"figures left out of {windows} window(s)", "warning")
        rows = [(p.model or "–", p.windows, _time(p.start), _time(p.end), p.message) for p in found]
        return (
            f'<div class="problems"><p>{head} What kept figures out of these windows (each '
            "problem says which figures); their other figures are shown.</p>"
            + table(["model", "windows", "from", "to", "problem"], rows, numeric={1})
            + "</div>"
        )

    def _performance_by_version(self, metrics: list[str], slices: list[str]) -> str:
        """Versions side by side: a card per metric and slice, a line per version (the
        version's colour, as on every chart of the page)."""
        cards = []
        for metric in metrics:
            for s in slices:
                if not self.has(metric, s):
                    continue
                lines = self.metric_lines(metric, PALETTE[0], slice=s, baseline=s == OVERALL)
                title = metric.removeprefix("perf.") + ("" if s == OVERALL else f" · {s}")
                cards.append(self.card(title, self.chart(lines, [(s, metric)])))
        return "".join(['<div class="grid">', *cards, "</div>", self.lane_legend(baseline=True)])

    def service(self) -> str:
        out = ["<h2>Service</h2>"]
        cards = [
            self.card(title, self.chart(self.metric_lines(metric, PALETTE[0]), [(OVERALL, metric)]))
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
            self.card(m, self.chart(self.metric_lines(m, PALETTE[2]), [(OVERALL, m)]))
            for m in metrics
        ]
        return "".join(["<h2>Data quality</h2>", '<div class="grid">', *cards, "</div>"])

    def alerts(self) -> str:
        out = ["<h2>Alerts</h2>"]
        if not self.r.alerts:
            return out[0] + _none("No alert was active in the range.")
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
        out.append(
            time_chart_svg(
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
                a.fired_value,  # None (a dash) for alerts stored before it was kept
                a.value,
                a.threshold,
                a.model,
                # long paths and commands in a message wrap instead of widening the table
                Markup(f'<span style="overflow-wrap:anywhere">{esc(a.message)}</span>'),
            )
            for a in self.r.alerts
        ]
        headers = ["window", "fired", "resolved", "state", "severity", "rule", "slice"]
        headers += ["metric", "fired value", "latest value", "threshold", "model", "message"]
        out.append(table(headers, rows, numeric={8, 9, 10}))
        return "".join(out)


def _slice(value: str) -> str:
    return value or "overall"


def _none(text: str) -> str:
    return f'<p class="meta">{esc(text)}</p>'
