"""Alert rules: declared as data, checked once, applied to one figure at a time.

A rule watches one metric of :mod:`.results` (or a family of them, ``drift.*``) and has
exactly one condition::

    alerts:
      - {name: precision-drop, metric: perf.precision, below_baseline: 0.10}
      - {name: many-drifted, metric: drift.share, above: 0.3}
      - {name: score-variance, metric: prediction.std, change_from_baseline: 0.5}
      - {name: slow, metric: latency_p95_ms, above: 50, severity: warning}
      - {name: missing-any, metric: missing.*, above: 0.05, per_slice: true, min_rows: 100}
      - name: retrain-on-drop
        metric: perf.f1
        below_baseline: 0.1
        for_windows: 2                      # must hold in 2 windows in a row
        action: {command: [python, retrain.py, --reason, "{rule}"], timeout: 3600}
        runbook: https://wiki.example.com/credit-risk#retrain

Conditions (``v`` the window's figure, ``b`` the model version's training baseline):
``above: x`` fires when v > x; ``below: x`` when v < x; ``below_baseline: r`` when
v < b - r·|b| (a relative drop: 0.10 is 10 %); ``above_baseline: r`` when v > b + r·|b|;
``change_from_baseline: r`` when |v - b| > r·|b|. On a slice (``per_slice``), ``b`` is the
slice's own baseline when the version has one, else the whole reference's; the message
says which. A figure that is None (not computable,
e.g. no feedback yet), a missing baseline, or ``change_from_baseline`` on a zero baseline
neither fires nor resolves. The whole list is checked when read; errors name the key path
(``alerts[2].metric: unknown metric 'perf.precison' — did you mean 'perf.precision'?``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loopwise.ids import label_pattern
from loopwise.monitoring.alerting.delivery import Action, parse_action
from loopwise.monitoring.results import OVERALL, WindowResult
from loopwise.param_errors import closest, path_error, refuse_unknown_keys, suggestion

#: Metrics of :mod:`.results` without a feature part.
FIXED_METRICS = (
    "rows", "labelled", "throughput_rps", "error_rate", "latency_p50_ms", "latency_p95_ms",
    "latency_p99_ms", "schema.errors", "schema.warnings", "drift.share", "prediction.mean",
    "prediction.std", "prediction.positive_rate", "prediction.drift", "prediction.drifted",
)  # fmt: skip
#: ``<family>.<name>`` metrics; ``<family>.*`` matches every name of the family in a window.
FAMILIES = ("missing", "drift", "drifted", "perf", "custom")
#: The live-performance figures (as :mod:`loopwise.evaluation.metrics` names them).
PERF_METRICS = (
    "accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss",
    "rmse", "mae", "r2", "nrmse", "mape",
)  # fmt: skip
CONDITIONS = ("above", "below", "below_baseline", "above_baseline", "change_from_baseline")
BASELINE_CONDITIONS = frozenset({"below_baseline", "above_baseline", "change_from_baseline"})
SEVERITIES = ("critical", "warning")
_KEYS = (
    "name", "metric", *CONDITIONS, "severity", "per_slice", "for_windows", "min_rows",
    "action", "runbook",
)  # fmt: skip
_NAME = label_pattern(128)
MAX_FOR_WINDOWS = 1000


@dataclass(frozen=True)
class RuleOutcome:
    """The outcome of a rule on one figure: whether it holds and the limit it was held to;
    ``baseline_slice`` is the slice whose baseline was used (``""``: the whole reference)."""

    holds: bool
    threshold: float
    baseline: float | None = None
    baseline_slice: str = OVERALL


@dataclass(frozen=True)
class AlertRule:
    """One checked alert rule (see the module doc for the keys)."""

    name: str
    metric: str
    condition: str
    limit: float
    severity: str = "critical"
    per_slice: bool = False
    for_windows: int = 1
    min_rows: int = 0
    action: Action | None = None
    runbook: str | None = None

    @property
    def needs_baseline(self) -> bool:
        return self.condition in BASELINE_CONDITIONS

    @property
    def family(self) -> str | None:
        """``"drift"`` for ``drift.*``; None for a rule on one metric."""
        return self.metric[:-2] if self.metric.endswith(".*") else None

    def metrics_in(self, result: WindowResult, slice: str) -> list[str]:
        """The metric names this rule watches in ``slice`` of ``result``."""
        family = self.family
        if family is None:
            return [self.metric]
        prefix = family + "."
        found = {m for s, m in result.values if s == slice and m.startswith(prefix)}
        found.discard("drift.share")  # not a feature
        return sorted(found)

    def check(
        self, value: float | None, baseline: float | None = None, *, baseline_slice: str = OVERALL
    ) -> RuleOutcome | None:
        """Does the rule hold for ``value``? None when it cannot tell. ``baseline_slice``
        names the slice ``baseline`` is of (kept in the RuleOutcome for the message)."""
        if value is None or math.isnan(value):
            return None
        if self.condition == "above":
            return RuleOutcome(value > self.limit, self.limit)
        if self.condition == "below":
            return RuleOutcome(value < self.limit, self.limit)
        if baseline is None or not math.isfinite(baseline):
            return None
        band = abs(baseline) * self.limit
        of = baseline_slice
        if self.condition == "below_baseline":
            return RuleOutcome(value < baseline - band, baseline - band, baseline, of)
        if self.condition == "above_baseline":
            return RuleOutcome(value > baseline + band, baseline + band, baseline, of)
        if baseline == 0:
            return None  # a relative change from zero is not defined
        bound = baseline + band if value >= baseline else baseline - band
        return RuleOutcome(abs(value - baseline) > band, bound, baseline, of)

    def to_dict(self) -> dict[str, Any]:
        """The rule as it would be written in YAML (defaults omitted)."""
        out: dict[str, Any] = {"name": self.name, "metric": self.metric}
        out[self.condition] = self.limit
        for key, default in (("severity", "critical"), ("per_slice", False)):
            if getattr(self, key) != default:
                out[key] = getattr(self, key)
        for key, default in (("for_windows", 1), ("min_rows", 0), ("runbook", None)):
            if getattr(self, key) != default:
                out[key] = getattr(self, key)
        if self.action is not None:
            out["action"] = self.action.to_dict()
        return out


def parse_rules(value: Any, path: str = "alerts") -> tuple[AlertRule, ...]:
    """Check the ``alerts`` section (a list of mappings); raise InvalidInput naming the key."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise path_error(path, f"must be a list of rules (name, metric, condition); got {value!r}.")
    rules = tuple(
        item if isinstance(item, AlertRule) else _rule(item, f"{path}[{i}]")
        for i, item in enumerate(value)
    )
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise path_error(
                f"{path}[{i}].name",
                f"rule name {rule.name!r} is used twice; names "
                "must be unique (alerts are stored under them).",
            )
        seen.add(rule.name)
    return rules


def _rule(item: Any, path: str) -> AlertRule:
    if not isinstance(item, Mapping):
        raise path_error(
            path,
            f"must be a mapping such as {{name: slow, metric: latency_p95_ms, "
            f"above: 50}}; got {item!r}.",
        )
    d = dict(item)
    refuse_unknown_keys(d, _KEYS, path)
    name = d.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise path_error(
            f"{path}.name",
            "is required: letters, digits, '-', '_' or '.' (at most "
            f"128), e.g. precision-drop; got {name!r}.",
        )
    metric = _metric(d.get("metric"), f"{path}.metric")
    given = [c for c in CONDITIONS if c in d]
    if len(given) != 1:
        problem = "gives none" if not given else f"gives {len(given)} ({', '.join(given)})"
        raise path_error(
            path,
            f"a rule needs exactly one condition of {', '.join(CONDITIONS)}; "
            f"rule {name!r} {problem}.",
        )
    condition = given[0]
    limit = _limit(d[condition], f"{path}.{condition}", condition)
    severity = d.get("severity", "critical")
    if severity not in SEVERITIES:
        raise path_error(
            f"{path}.severity", f"unknown severity {severity!r}{suggestion(severity, SEVERITIES)}"
        )
    per_slice = d.get("per_slice", False)
    if not isinstance(per_slice, bool):
        raise path_error(f"{path}.per_slice", f"must be true or false; got {per_slice!r}.")
    runbook = d.get("runbook")
    if runbook is not None and (not isinstance(runbook, str) or not runbook.strip()):
        raise path_error(f"{path}.runbook", f"must be text (advice or a link); got {runbook!r}.")
    action = d.get("action")
    return AlertRule(
        name=name,
        metric=metric,
        condition=condition,
        limit=limit,
        severity=severity,
        per_slice=per_slice,
        for_windows=_count(d.get("for_windows", 1), f"{path}.for_windows", 1, MAX_FOR_WINDOWS),
        min_rows=_count(d.get("min_rows", 0), f"{path}.min_rows", 0, None),
        action=None if action is None else parse_action(action, f"{path}.action"),
        runbook=runbook,
    )


def _metric(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise path_error(
            path,
            f"is required: a metric name such as perf.precision, drift.share "
            f"or drift.* (see loopwise.monitoring.results); got {value!r}.",
        )
    if value in FIXED_METRICS:
        return value
    family, _, rest = value.partition(".")
    if family in FAMILIES and rest:
        if "*" in rest and rest != "*":
            raise path_error(
                path, f"a wildcard stands for a whole name ({family}.*); got {value!r}."
            )
        if family == "perf" and rest != "*" and rest not in PERF_METRICS:
            names = [f"perf.{m}" for m in PERF_METRICS]
            raise path_error(path, f"unknown metric {value!r}{suggestion(value, names)}")
        return value
    known = [*FIXED_METRICS, *(f"{f}.*" for f in FAMILIES), *(f"perf.{m}" for m in PERF_METRICS)]
    close = closest(value, known)
    hint = f" — did you mean {close!r}?" if close else "."
    raise path_error(
        path,
        f"unknown metric {value!r}{hint} Metrics are {', '.join(FIXED_METRICS)}, "
        f"or {', '.join(f + '.<name>' for f in FAMILIES)} (<name> may be *).",
    )


def _limit(value: Any, path: str, condition: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise path_error(path, f"must be a finite number; got {value!r}.")
    if condition in BASELINE_CONDITIONS:
        if value < 0:
            raise path_error(
                path, f"is a relative change (0.10 is 10%) and cannot be negative; got {value!r}."
            )
        if condition == "below_baseline" and value >= 1:
            raise path_error(
                path, f"is a fraction in [0, 1): 0.10 means 10% below the baseline; got {value!r}."
            )
    return float(value)


def _count(value: Any, path: str, low: int, high: int | None) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if not ok or (high is not None and value > high):
        span = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise path_error(path, f"must be an integer {span}; got {value!r}.")
    return value


# -- messages ----------------------------------------------------------------------------------


def fired_message(
    rule: AlertRule,
    *,
    metric: str,
    slice: str,
    value: float,
    check: RuleOutcome,
    result: WindowResult,
    streak: int,
) -> str:
    """What fired, where, by how much, and what to do, in one paragraph."""
    where = f"{metric} on {slice}" if slice != OVERALL else metric
    b = check.baseline
    if rule.condition == "above":
        what = f"rose to {num(value)}, above the limit {num(check.threshold)}"
    elif rule.condition == "below":
        what = f"fell to {num(value)}, below the limit {num(check.threshold)}"
    elif rule.condition == "below_baseline":
        what = (
            f"fell to {num(value)}, {pct((b - value) / abs(b))} below {_baseline(slice, check)} "
            f"{num(b)} (limit {pct(rule.limit)})"
        )
    else:
        direction = "above" if value >= b else "below"
        what = (
            f"{'rose' if direction == 'above' else 'fell'} to {num(value)}, "
            f"{pct(abs(value - b) / abs(b))} {direction} {_baseline(slice, check)} {num(b)} "
            f"(limit {'±' if rule.condition == 'change_from_baseline' else ''}"
            f"{pct(rule.limit)})"
        )
    text = f"{where} {what} in window {window_text(result.start, result.end)}"
    if result.model:
        text += f" for {result.model}"
    if streak > 1:
        text += f", {streak} windows in a row"
    text += f". {advice(metric)}"
    if rule.runbook:
        text += f" Runbook: {rule.runbook}"
    if rule.action is not None:
        text += f" On firing, this rule runs: {rule.action.describe()}."
    return text


def _baseline(slice: str, check: RuleOutcome) -> str:
    """Which training baseline a figure was compared with."""
    if slice == OVERALL:
        return "the training baseline"
    if check.baseline_slice == slice:
        return f"the training baseline of {slice}"
    return f"the overall training baseline ({slice} has none of its own)"


def resolved_message(
    rule: AlertRule,
    *,
    metric: str,
    slice: str,
    value: float,
    check: RuleOutcome,
    result: WindowResult,
) -> str:
    """Why an alert is over: the figure that no longer breaks the limit."""
    where = f"{metric} on {slice}" if slice != OVERALL else metric
    text = (
        f"Resolved: {where} is back to {num(value)} (limit {num(check.threshold)}) in "
        f"window {window_text(result.start, result.end)}"
    )
    if result.model:
        text += f" for {result.model}"
    return text + f"; rule {rule.name!r} no longer holds."


_ADVICE = (
    ("perf.", "Check the feedback of recent windows; retrain on recent data if it lasts."),
    (
        "drift.share",
        "Several inputs changed at once: check the upstream sources (a schema or "
        "unit change?) before retraining.",
    ),
    (
        "drift.",
        "Compare recent values of feature {f} with the training data: fix the source if "
        "it is a bug, retrain if the change is real.",
    ),
    (
        "drifted.",
        "Compare recent values of feature {f} with the training data: fix the source "
        "if it is a bug, retrain if the change is real.",
    ),
    (
        "missing.",
        "Check the upstream source of feature {f}: a broken join or a renamed field "
        "often shows as missing values.",
    ),
    ("schema.", "Read the validation of this window: inputs no longer match the training schema."),
    (
        "prediction.",
        "The model's outputs shifted: look for input drift, and compare with the "
        "feedback once it arrives.",
    ),
    ("latency_", "Check the serving hosts (CPU, memory, batch sizes) and recent deployments."),
    ("error_rate", "Read the serving logs of the failing requests."),
    ("throughput_rps", "Traffic changed: check the callers and the autoscaling."),
    ("rows", "The volume of predictions changed: check the callers."),
    ("labelled", "The volume of feedback changed: check the feedback pipeline."),
    ("custom.", "See the definition of custom check {f}."),
)


def advice(metric: str) -> str:
    """A first thing to do about ``metric``."""
    for prefix, text in _ADVICE:
        if metric.startswith(prefix):
            return text.format(f=metric.partition(".")[2])
    return "Investigate the monitor's recent windows."


def num(value: float | None) -> str:
    """A figure for people: 0.61, 72.4, 12,345."""
    if value is None:
        return "–"
    if math.isfinite(value) and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def pct(fraction: float) -> str:
    """0.18 -> '18%', 0.055 -> '5.5%'."""
    p = fraction * 100
    return f"{p:.0f}%" if abs(p) >= 10 or p == int(p) else f"{p:.1f}%"


def window_text(start: datetime, end: datetime) -> str:
    """'2026-12-01 14:00–15:00 UTC' (or both dates when the window crosses midnight)."""
    s, e = start.astimezone(UTC), end.astimezone(UTC)
    clock = "%H:%M" if s.second == e.second == 0 else "%H:%M:%S"
    if s.date() == e.date():
        return f"{s:%Y-%m-%d} {s.strftime(clock)}–{e.strftime(clock)} UTC"
    return f"{s:%Y-%m-%d} {s.strftime(clock)} – {e:%Y-%m-%d} {e.strftime(clock)} UTC"
