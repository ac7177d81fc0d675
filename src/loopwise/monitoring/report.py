"""A monitor's stored results as one report: the data (:meth:`MonitorReport.to_dict`, JSON)
and a self-contained HTML page (:meth:`MonitorReport.to_html`, rendered by
:mod:`loopwise.monitoring.report_html`).

:func:`monitor_report` reads what ``loopwise monitor run`` / ``watch`` stored -- the windows
and their figures, the baselines of each model version, the alerts -- and computes nothing
but the model-version changes (where the live model differs from the previous window's).
It never evaluates a window: a monitor with no stored window in the range is an error that
says to run the monitor first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from loopwise._version import __version__
from loopwise.errors import NotFound
from loopwise.monitoring.alerting import Alert, list_alerts
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

    def series(self, metric: str, slice: str = OVERALL) -> list[tuple[datetime, float | None, str]]:
        """(window start, value, model) per window start, oldest first. A window split by a
        model swap counts once: the value of its part with the most rows (that has one)."""
        by_start: dict[datetime, list[WindowResult]] = {}
        for w in self.windows:
            by_start.setdefault(w.start, []).append(w)
        out = []
        for start, parts in by_start.items():
            ranked = sorted(parts, key=lambda w: -w.rows)
            found = [w for w in ranked if w.value(metric, slice) is not None]
            best = found[0] if found else ranked[0]
            out.append((start, best.value(metric, slice), best.model))
        return out

    # -- output ------------------------------------------------------------------------------

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
            "baselines": self.baselines,
            "windows": [w.to_dict() for w in self.windows],
            "alerts": [a.to_dict() for a in self.alerts],
        }

    def to_html(self, path: str | Path) -> Path:
        """Write the report as one self-contained HTML file (atomically); returns the path."""
        from loopwise.monitoring.report_html import render_html
        from loopwise.reporting import write_page

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
    alerts = [
        a
        for a in list_alerts(store, monitor=name, since=first)
        if a.window_start < last or a.fired_at < last
    ]
    used = {w.model for w in windows}
    known = {m: v for m, v in baselines(store, name).items() if m in used}
    return MonitorReport(
        monitor=name,
        endpoint=windows[0].endpoint,
        start=first,
        end=last,
        windows=windows,
        model_changes=model_changes(windows),
        alerts=alerts,
        baselines=known,
    )


def model_changes(windows: list[WindowResult]) -> list[ModelChange]:
    """Where the live model differs from the previous window's (results oldest first; a
    window split by a swap holds the old and the new version: the change is at its start).
    The first window's model is not a change."""
    by_start: dict[datetime, list[WindowResult]] = {}
    for w in windows:
        by_start.setdefault(w.start, []).append(w)
    changes: list[ModelChange] = []
    current: str | None = None
    for start, parts in by_start.items():
        models = [w.model for w in parts]
        if current is None:
            # the first window: a split one changes from its smaller part to the larger
            if len(models) > 1:
                ranked = sorted(parts, key=lambda w: w.rows)
                changes.append(ModelChange(start, ranked[0].model, ranked[-1].model))
                current = ranked[-1].model
            else:
                current = models[0]
            continue
        others = [m for m in models if m != current]
        if not others:
            continue
        # a split window holds the old version and the new one; otherwise the largest part
        new = others[0] if current in models else max(parts, key=lambda w: w.rows).model
        changes.append(ModelChange(start, current, new))
        current = new
    return changes
