"""A monitor's stored results as one report: the data (:meth:`MonitorReport.to_dict`, JSON)
and a self-contained HTML page (:meth:`MonitorReport.to_html`, rendered by
:mod:`loopwise.monitoring.report_html`).

:func:`monitor_report` reads what ``loopwise monitor run`` / ``watch`` stored -- the windows
and their figures, the baselines of each model version, the alerts -- and computes nothing
but what was live when: the periods in which the same model version(s) answered and the
changes between them. It never evaluates a window: a monitor with no stored window in the
range is an error that says to run the monitor first.

Why periods and not "the model of each window": an endpoint that splits its traffic between
variants (A/B) stores every window once per version, and the larger part alternates at
random; read window by window that is a change of version every window. Versions that
answer side by side in consecutive windows are one period with several variants (named
from the prediction log, which the report reads for those periods only); a window split by
a swap (the old version before it, the new one after) is a change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from loopwise._version import __version__
from loopwise.errors import NotFound
from loopwise.monitoring.alerting.alerts import Alert, list_alerts
from loopwise.monitoring.results import OVERALL, WindowResult
from loopwise.monitoring.storage import baselines, monitor_name, window_results
from loopwise.store import Store

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelChange:
    """The live model changed at window start ``at`` (``previous`` is "" for the first)."""

    at: datetime
    previous: str
    model: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "previous": self.previous, "model": self.model}


@dataclass(frozen=True)
class Variant:
    """A model version answering in a period: its serving variant's name ("" when the
    prediction log does not say), its rows and its share of the period's rows."""

    model: str
    name: str
    rows: int
    share: float

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "name": self.name, "rows": self.rows, "share": self.share}


@dataclass(frozen=True)
class LivePeriod:
    """Consecutive windows, from ``start`` to ``end``, in which the same model version
    answered -- or the same versions side by side (variants of an A/B split)."""

    start: datetime
    end: datetime
    variants: tuple[Variant, ...]

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(v.model for v in self.variants)

    @property
    def concurrent(self) -> bool:
        """Several versions answered side by side."""
        return len(self.variants) > 1

    @property
    def label(self) -> str:
        """The model version, or the versions side by side joined by " + "."""
        return " + ".join(self.models)

    def describe(self) -> str:
        """For people: the version, or "variants A (m/1, 50%) and B (m/2, 50%)"."""
        if not self.concurrent:
            return self.variants[0].model or "(none logged)"
        named = all(v.name for v in self.variants)
        items = [
            f"{v.name} ({v.model}, {v.share:.0%})" if named else f"{v.model} ({v.share:.0%})"
            for v in self.variants
        ]
        listed = ", ".join(items[:-1]) + f" and {items[-1]}"
        return f"variants {listed}" if named else f"versions {listed} side by side"

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "variants": [v.to_dict() for v in self.variants],
        }


@dataclass(frozen=True)
class Problem:
    """One distinct problem that kept figures out of windows of a model version (e.g.
    feedback labels the model does not predict: no ``perf.*``), with how many windows it
    concerns and their span."""

    model: str
    message: str
    windows: int
    start: datetime
    end: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "message": self.message,
            "windows": self.windows,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


@dataclass(frozen=True, repr=False)
class MonitorReport:
    """The stored results of one monitor over a range, ready to render or serialise."""

    monitor: str
    endpoint: str
    start: datetime  # first window start
    end: datetime  # last window end
    windows: list[WindowResult]
    model_changes: list[ModelChange]
    alerts: list[Alert]
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    periods: list[LivePeriod] = field(default_factory=list)

    # -- views -------------------------------------------------------------------------------

    @property
    def models(self) -> list[str]:
        """The model versions live in the range, in order of first appearance."""
        return list(dict.fromkeys(w.model for w in self.windows))

    @property
    def metrics(self) -> list[str]:
        """Every metric name with a figure, sorted."""
        return sorted({m for w in self.windows for (_, m) in w.values})

    @property
    def features(self) -> list[str]:
        """The features with a drift score (``drift.<f>``, not ``drift.share``)."""
        return sorted(
            m.removeprefix("drift.")
            for m in self.metrics
            if m.startswith("drift.") and m != "drift.share"
        )

    @property
    def slices(self) -> list[str]:
        """The slices with figures, the whole window (``""``) first."""
        found = sorted({s for w in self.windows for (s, _) in w.values} - {OVERALL})
        return [OVERALL, *found]

    @property
    def concurrent(self) -> bool:
        """Some versions answered side by side (variants) in the range."""
        return any(p.concurrent for p in self.periods)

    @property
    def problems(self) -> list[Problem]:
        """The windows' problems, each distinct one (per model version) once, in order of
        first appearance."""
        found: dict[tuple[str, str], list[WindowResult]] = {}
        for w in self.windows:
            for message in w.problems:
                found.setdefault((w.model, message), []).append(w)
        return [
            Problem(model, message, len({w.start for w in ws}), ws[0].start, max(w.end for w in ws))
            for (model, message), ws in found.items()
        ]

    def series(
        self, metric: str, slice: str = OVERALL, model: str | None = None
    ) -> list[tuple[datetime, float | None, str]]:
        """(window start, value, model) per window start, oldest first. A window split by a
        model swap counts once: the value of its part with the most rows (that has one).
        With ``model``, that version's figures only (None where it did not answer)."""
        by_start: dict[datetime, list[WindowResult]] = {}
        for w in self.windows:
            by_start.setdefault(w.start, []).append(w)
        out: list[tuple[datetime, float | None, str]] = []
        for start, parts in by_start.items():
            if model is not None:
                mine = [w for w in parts if w.model == model]
                out.append((start, mine[0].value(metric, slice) if mine else None, model))
                continue
            ranked = sorted(parts, key=lambda w: -w.rows)
            found = [w for w in ranked if w.value(metric, slice) is not None]
            best = found[0] if found else ranked[0]
            out.append((start, best.value(metric, slice), best.model))
        return out

    # -- output ------------------------------------------------------------------------------

    def summary(self) -> str:
        """A few lines for people: the range, the versions, the alerts, then each problem."""
        firing = sum(a.state == "firing" for a in self.alerts)
        head = (
            f"Monitor {self.monitor} (endpoint {self.endpoint}): "
            f"{len({w.start for w in self.windows})} window(s) from {self.start.isoformat()} "
            f"to {self.end.isoformat()}; model(s) {', '.join(self.models) or '–'}; "
            f"{len(self.model_changes)} version change(s); {len(self.alerts)} alert(s), "
            f"{firing} firing."
        )
        lines = [
            f"Problem in {p.windows} window(s) of {p.model or 'an unknown model'}: {p.message}"
            for p in self.problems
        ]
        return "\n".join([head, *lines])

    def __repr__(self) -> str:
        models = self.models
        shown = ", ".join(models) if len(models) <= 3 else f"{models[0]} … {models[-1]}"
        return (
            f"MonitorReport({self.monitor!r}, windows={len({w.start for w in self.windows})}, "
            f"start={self.start.isoformat()!r}, end={self.end.isoformat()!r}, "
            f"models={len(models)} ({shown}), alerts={len(self.alerts)}, "
            f"problems={len(self.problems)})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (times ISO 8601, missing figures None)."""
        return {
            "format_version": FORMAT_VERSION,
            "loopwise_version": __version__,
            "kind": "monitor_report",
            "monitor": self.monitor,
            "endpoint": self.endpoint,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "models": self.models,
            "features": self.features,
            "slices": self.slices,
            "model_changes": [c.to_dict() for c in self.model_changes],
            "periods": [p.to_dict() for p in self.periods],
            "baselines": self.baselines,
            "windows": [w.to_dict() for w in self.windows],
            "alerts": [a.to_dict() for a in self.alerts],
            "problems": [p.to_dict() for p in self.problems],
        }

    def to_html(self, path: str | Path) -> Path:
        """Write the report as one self-contained HTML file (atomically); returns the path."""
        from loopwise.monitoring.report_html import render_html
        from loopwise.reports.page import write_page

        target = Path(path)
        write_page(target, render_html(self))
        return target


def monitor_report(
    store: Store,
    monitor: Any,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> MonitorReport:
    """The report of ``monitor`` (a Monitor or its name) over the windows starting in
    [start, end) (default: every stored window), with the alerts active in that range."""
    name = monitor_name(monitor)
    windows = window_results(store, name, start, end)
    if not windows:
        span = ""
        if start is not None or end is not None:
            span = (
                f" in [{start.isoformat() if start else '...'}, "
                f"{end.isoformat() if end else '...'})"
            )
        raise NotFound(
            f"Monitor {name!r} has no stored windows{span}; run `loopwise monitor run "
            f"{name}` first (or pick another --start/--end)."
        )
    first, last = windows[0].start, max(w.end for w in windows)
    alerts = list_alerts(store, monitor=name, start=first, end=last)
    used = {w.model for w in windows}
    known = {m: v for m, v in baselines(store, name).items() if m in used}
    periods = name_variants(store, windows[0].endpoint, live_periods(windows))
    return MonitorReport(
        monitor=name,
        endpoint=windows[0].endpoint,
        start=first,
        end=last,
        windows=windows,
        model_changes=model_changes(windows, periods),
        alerts=alerts,
        baselines=known,
        periods=periods,
    )


def _by_start(windows: list[WindowResult]) -> list[tuple[datetime, list[WindowResult]]]:
    by_start: dict[datetime, list[WindowResult]] = {}
    for w in windows:
        by_start.setdefault(w.start, []).append(w)
    return list(by_start.items())


def live_periods(windows: list[WindowResult]) -> list[LivePeriod]:
    """The periods of the windows (oldest first): consecutive windows with the same live
    version(s). Versions present together in a window and in a neighbouring window answered
    side by side; otherwise a window with two versions was split by a swap and belongs to
    the version it ends with. Variant names are left empty (see :func:`name_variants`)."""
    groups = _by_start(windows)
    present = [{w.model for w in ps if w.rows > 0} or {w.model for w in ps} for _, ps in groups]
    live: list[tuple[str, ...]] = []
    current: str | None = None
    for i, (_, parts) in enumerate(groups):
        together: set[str] = set()
        for j in (i - 1, i + 1):
            if 0 <= j < len(groups):
                shared = present[i] & present[j]
                if len(shared) > 1:
                    together |= shared
        if len(together) > 1:
            models = [w.model for w in parts if w.model in together]
            live.append(tuple(sorted(dict.fromkeys(models))))
            current = None
            continue
        models = [w.model for w in parts]
        if current in models and len(models) > 1:
            current = next(m for m in models if m != current)  # a swap: the new version
        elif current not in models:
            current = max(parts, key=lambda w: w.rows).model
        live.append((current,))
    periods: list[LivePeriod] = []
    start = 0
    for i in range(1, len(groups) + 1):
        if i < len(groups) and live[i] == live[start]:
            continue
        spans = groups[start:i]
        rows = {m: sum(w.rows for _, ps in spans for w in ps if w.model == m) for m in live[start]}
        total = sum(rows.values())
        variants = tuple(
            Variant(m, "", rows[m], rows[m] / total if total else 1 / len(rows)) for m in rows
        )
        end = max(w.end for w in spans[-1][1])
        periods.append(LivePeriod(spans[0][0], end, variants))
        start = i
    return periods


def name_variants(store: Store, endpoint: str, periods: list[LivePeriod]) -> list[LivePeriod]:
    """Name the variants of the periods with several versions side by side from the
    prediction log (the variant most of a version's rows were logged under); a period whose
    log is gone keeps unnamed variants. Single-version periods read nothing."""
    out = []
    for period in periods:
        names = _variant_names(store, endpoint, period) if period.concurrent else {}
        variants = tuple(
            Variant(v.model, names.get(v.model, ""), v.rows, v.share) for v in period.variants
        )
        out.append(LivePeriod(period.start, period.end, variants))
    return out


def _variant_names(store: Store, endpoint: str, period: LivePeriod) -> dict[str, str]:
    import polars as pl

    from loopwise.errors import LoopwiseError
    from loopwise.predictions.log import read_predictions_frame

    try:
        frame = read_predictions_frame(
            store, endpoint, period.start, period.end,
            columns=["variant", "model", "shadow"], feedback=False,
        )  # fmt: skip
    except LoopwiseError:
        return {}
    if frame.height == 0 or not {"variant", "model"} <= set(frame.columns):
        return {}
    if "shadow" in frame.columns:
        frame = frame.filter(~pl.col("shadow").fill_null(False))
    counts = frame.group_by("model", "variant").len().sort("len", descending=True)
    names: dict[str, str] = {}
    for model, variant, _ in counts.iter_rows():
        if model in period.models and variant and model not in names:
            names[model] = variant
    return names


def model_changes(
    windows: list[WindowResult], periods: list[LivePeriod] | None = None
) -> list[ModelChange]:
    """Where what was live changed (results oldest first): the start of each period after
    the first, from the previous period's :attr:`LivePeriod.label` to its own (a window
    split by a swap holds the old and the new version: the change is at its start). A first
    window split by a swap is a change too (from its smaller part to the larger)."""
    periods = live_periods(windows) if periods is None else periods
    changes: list[ModelChange] = []
    first = _by_start(windows)[0][1] if windows else []
    if len(first) > 1 and not periods[0].concurrent:
        ranked = sorted(first, key=lambda w: w.rows)
        changes.append(ModelChange(first[0].start, ranked[0].model, ranked[-1].model))
    for before, after in pairwise(periods):
        changes.append(ModelChange(after.start, before.label, after.label))
    return changes
