"""Alerts: rules applied window by window, with states that survive restarts.

:func:`evaluate_alerts` walks the windows of a monitor in time order. For each rule, slice
(with ``per_slice``) and metric (a wildcard rule watches every feature of its family) an
alert is keyed by ``(monitor, rule, slice, metric)``:

- the rule starts holding (for ``for_windows`` windows in a row) -> a new alert, state
  ``firing``, stored in the ``alerts`` table, delivered, and its action started;
- it keeps holding -> the same alert is updated (``value``, ``threshold``,
  ``last_seen_at``), not delivered again (``fired_value`` keeps the figure that fired it);
- it stops holding -> state ``resolved`` (``resolved_at``), delivered as a resolution;
- the figure is None (or the window has fewer than ``min_rows`` rows) -> nothing changes;
- the rule is no longer in the monitor's config -> its firing alerts are resolved.

A baseline rule on a slice compares with the slice's own baseline (the version's figure on
that slice of the reference) and falls back to the whole reference's when the slice has
none; the message says which.

Alert times are *window* times: ``window_start`` is the start of the first window of the
run that fired, ``fired_at`` / ``last_seen_at`` / ``resolved_at`` the end of the window that
fired / last held / resolved it. So a backfill dates alerts where the data says, and the
stored alerts are the state: a window that ends at or before the latest stored state of a
key has already been evaluated, and is only read to count consecutive windows. Re-running
a range therefore creates and delivers nothing twice, and a new process continues the
alerts where the last one stopped. For ``for_windows`` across calls, the windows before
the first given one are read back from the monitor's stored figures (``monitor_values``).
Evaluations of one monitor are serialized by the write transaction (SQLite) or an
advisory lock (PostgreSQL).

Delivery happens after the transaction commits: at most once (a crash between commit and
delivery loses that delivery, never duplicates it). Actions run on background threads;
:meth:`AlertEvent.wait` or :func:`wait_for_actions` wait for them. Before an action starts,
:mod:`.gate` checks that no earlier action of its rule is still running and that
the rule's cooldown is over, in the write transaction that records it as ``queued`` (or
``skipped``) under a lock per monitor and rule, so processes sharing a store agree.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update

from loopwise.clock import now as clock_now
from loopwise.clock import to_datetime, to_us
from loopwise.errors import InvalidInput, NotFound
from loopwise.ids import new_id
from loopwise.monitoring.alerting.delivery import Action, Deliverer, Webhook, parse_webhooks, submit
from loopwise.monitoring.alerting.gate import admit
from loopwise.monitoring.alerting.rules import (
    AlertRule,
    RuleOutcome,
    fired_message,
    parse_rules,
    resolved_message,
)
from loopwise.monitoring.results import OVERALL, WindowResult
from loopwise.param_errors import renamed
from loopwise.store import Store
from loopwise.store.locks import advisory_lock
from loopwise.store.tables import alerts, monitor_values, monitor_windows

log = logging.getLogger("loopwise.alerts")

FIRING, RESOLVED = "firing", "resolved"
STATES = (FIRING, RESOLVED)
#: Stored windows read back per window of ``for_windows - 1`` (room for windows with None).
HISTORY_PER_WINDOW = 4
_Key = tuple[str, str, str]  # rule, slice, metric


@dataclass(frozen=True, repr=False)
class Alert:
    """One stored alert (times are window times, UTC; see the module doc).

    ``fired_value`` is the figure of the window that fired it (None for alerts stored before
    loopwise kept it); ``value`` and ``threshold`` those of the latest window it held in.
    """

    id: str
    monitor: str
    endpoint: str
    rule: str
    slice: str
    metric: str
    value: float | None
    threshold: float | None
    state: str
    severity: str
    message: str
    window_start: datetime
    model: str
    fired_at: datetime
    resolved_at: datetime | None
    last_seen_at: datetime
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    action: dict[str, Any] | None = None
    fired_value: float | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Alert:
        times = ("window_start", "fired_at", "resolved_at", "last_seen_at")
        values = {k: row[k] for k in cls.__dataclass_fields__}
        values |= {k: to_datetime(row[k]) for k in times}
        values["deliveries"] = json.loads(row["deliveries"]) if row["deliveries"] else []
        values["action"] = json.loads(row["action"]) if row["action"] else None
        return cls(**values)

    def __repr__(self) -> str:
        # one line: the deliveries and the action's output stay out (see to_dict())
        where = self.metric if self.slice == OVERALL else f"{self.metric} on {self.slice}"
        status = f", action {self.action.get('status')}" if self.action else ""
        return (
            f"Alert({self.rule!r} {self.state}, {where}, fired_value={self.fired_value!r}, "
            f"value={self.value!r}, threshold={self.threshold!r}, model={self.model!r}, "
            f"fired_at={self.fired_at.isoformat()!r}{status}, id={self.id!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (times as ISO 8601)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for key in ("window_start", "fired_at", "resolved_at", "last_seen_at"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


@dataclass
class AlertEvent:
    """A change of state: ``kind`` is ``"fired"`` or ``"resolved"``.

    ``alert`` is the alert as of the event, ``text`` what was delivered, ``value`` the figure
    of the window (``window_start``, ``window_end``) that caused it, ``deliveries`` one
    record per target, ``action`` the rule's action (a Future of its record; already done
    when the action was ``skipped``) or None.
    """

    kind: str
    alert: Alert
    text: str
    value: float
    window_start: datetime
    window_end: datetime
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    action: Future | None = None

    def wait(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Wait for the action (if any) and return its result record."""
        return None if self.action is None else self.action.result(timeout)


def evaluate_alerts(
    store: Store,
    monitor: str,
    endpoint: str,
    rules: Sequence[AlertRule | Mapping[str, Any]],
    results: Sequence[WindowResult],
    baselines: Mapping[str, Mapping[str, float]] | Mapping[str, float],
    *,
    webhooks: Sequence[Webhook | Mapping[str, Any]] = (),
    deliver: bool = True,
    now: datetime | None = None,
) -> list[AlertEvent]:
    """Apply ``rules`` to ``results`` (windows of ``monitor``) and return the changes of state.

    ``rules`` and ``webhooks`` are checked rules or the raw ``alerts`` / ``webhooks`` sections
    of a monitor config. ``baselines`` maps metric -> training value, or ``"name/version"``
    -> {metric: value} for each model version; a key ``(slice, metric)`` such as
    ``("region=south", "perf.f1")`` is that slice's baseline (used for the slice instead of
    the overall one; ``storage.baselines(store, monitor, slices=True)`` reads them all).
    With ``deliver=False`` the states are
    stored but nothing is sent and no action runs. ``now`` stamps the delivery records.
    """
    rules = parse_rules(list(rules))
    hooks = parse_webhooks(list(webhooks))
    baseline = _baselines(baselines)
    for r in results:
        if not isinstance(r, WindowResult) or r.monitor != monitor or r.endpoint != endpoint:
            raise InvalidInput(
                f"evaluate_alerts takes WindowResults of monitor {monitor!r} on "
                f"endpoint {endpoint!r}; got {r!r:.120}."
            )
    ordered = sorted(results, key=lambda r: (r.start, r.end))
    if not ordered:
        return []
    walk = _Walk(monitor, endpoint, rules, baseline)
    with store.db.write() as conn:
        advisory_lock(conn, "alerts", monitor)
        walk.resolve_removed(conn, ordered[-1])
        if rules:
            walk.states = _load_states(conn, monitor, [r.name for r in rules])
            longest = max(r.for_windows for r in rules)
            if longest > 1:
                limit = min(1000, (longest - 1) * HISTORY_PER_WINDOW)
                for past in _load_history(conn, monitor, endpoint, ordered[0].start, limit):
                    walk.observe(past, act=False)
            for result in ordered:
                walk.observe(result, act=True)
        _save(conn, walk)
    return _finish(store, walk, hooks, rules, deliver, now)


def _finish(
    store: Store,
    walk: _Walk,
    hooks: tuple[Webhook, ...],
    rules: Sequence[AlertRule],
    deliver: bool,
    now: datetime | None,
) -> list[AlertEvent]:
    """After the states are stored: warnings, then delivery (and actions)."""
    for rule, metric, model in sorted(walk.missing_baselines):
        log.warning(
            "alert rule %r: no training baseline for %s of model %r; windows of that "
            "model are skipped by this rule (pass it in baselines).",
            rule,
            metric,
            model,
        )
    events = walk.events
    if deliver and events:
        _deliver(store, events, hooks, {r.name: r for r in rules}, now or clock_now())
    return events


class _State:
    __slots__ = ("last_start", "open", "streak", "streak_start", "watermark")

    def __init__(self) -> None:
        self.open: dict[str, Any] | None = None  # the firing alert's row
        self.watermark: int | None = None  # end (us) of the latest window the store accounts for
        self.streak = 0
        self.streak_start: int | None = None
        self.last_start: datetime | None = None


class _Walk:
    """The state machine of one evaluation: alerts' rows in memory, then written at once."""

    def __init__(self, monitor: str, endpoint: str, rules: Sequence[AlertRule], baseline: Any):
        self.monitor, self.endpoint, self.rules, self.baseline = monitor, endpoint, rules, baseline
        self.states: dict[_Key, _State] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self.new: set[str] = set()
        self.events: list[AlertEvent] = []
        self.missing_baselines: set[tuple[str, str, str]] = set()

    def resolve_removed(self, conn: Connection, last: WindowResult) -> None:
        """Resolve the firing alerts of rules no longer in the monitor's config, as of the
        end of the latest window evaluated now: nothing watches them any more, so they
        would otherwise fire forever."""
        a = alerts.c
        names = [r.name for r in self.rules]
        query = select(alerts).where(a.monitor == self.monitor, a.state == FIRING)
        if names:
            query = query.where(a.rule.not_in(names))
        end = to_us(last.end)
        for found in conn.execute(query.order_by(a.fired_at, a.id)).mappings():
            row = dict(found)
            row |= {"state": RESOLVED, "resolved_at": max(end, row["last_seen_at"])}
            text = (
                f"Resolved: rule {row['rule']!r} is no longer in the config of monitor "
                f"{self.monitor!r}, so {row['metric']} is no longer watched by it."
            )
            self._event("resolved", row, text, row["value"], last)

    def observe(self, result: WindowResult, *, act: bool) -> None:
        end = to_us(result.end)
        for rule in self.rules:
            for slice in result.slices() if rule.per_slice else [OVERALL]:
                if rule.min_rows and _count(result, slice, rule) < rule.min_rows:
                    continue
                for metric in rule.metrics_in(result, slice):
                    value = result.value(metric, slice)
                    base, of = None, OVERALL
                    if rule.needs_baseline:
                        base, of = self.baseline(result.model, metric, slice)
                    if rule.needs_baseline and base is None and value is not None:
                        self.missing_baselines.add((rule.name, metric, result.model))
                    check = rule.check(value, base, baseline_slice=of)
                    if check is None:
                        continue
                    state = self.states.setdefault((rule.name, slice, metric), _State())
                    acting = act and (state.watermark is None or end > state.watermark)
                    self._step(rule, metric, slice, value, check, result, state, acting)

    def _step(
        self,
        rule: AlertRule,
        metric: str,
        slice: str,
        value: float,
        check: RuleOutcome,
        result: WindowResult,
        state: _State,
        acting: bool,
    ) -> None:
        end = to_us(result.end)
        if not check.holds:
            state.streak, state.streak_start, state.last_start = 0, None, None
            if state.open is not None and acting:
                row = state.open
                row |= {"state": RESOLVED, "resolved_at": end}
                text = resolved_message(
                    rule, metric=metric, slice=slice, value=value, check=check, result=result
                )
                self._event("resolved", row, text, value, result)
                state.open, state.watermark = None, end
            return
        if state.last_start != result.start:  # the parts of a window split by model count once
            state.streak += 1
            state.last_start = result.start
            if state.streak_start is None:
                state.streak_start = to_us(result.start)
        if not acting:
            return
        if state.open is not None:
            state.open |= {"value": value, "threshold": check.threshold, "last_seen_at": end}
            self.rows[state.open["id"]] = state.open
            state.watermark = end
        elif state.streak >= rule.for_windows:
            row = {
                "id": new_id(),
                "monitor": self.monitor,
                "endpoint": self.endpoint,
                "rule": rule.name,
                "slice": slice,
                "state": FIRING,
                "severity": rule.severity,
                "metric": metric,
                "value": value,
                "fired_value": value,
                "threshold": check.threshold,
                "message": fired_message(
                    rule,
                    metric=metric,
                    slice=slice,
                    value=value,
                    check=check,
                    result=result,
                    streak=state.streak,
                ),
                "window_start": state.streak_start,
                "model": result.model,
                "fired_at": end,
                "resolved_at": None,
                "last_seen_at": end,
                "deliveries": None,
                "action": None,
            }
            self.new.add(row["id"])
            self._event("fired", row, row["message"], value, result)
            state.open, state.watermark = row, end

    def _event(
        self, kind: str, row: dict[str, Any], text: str, value: float, result: WindowResult
    ) -> None:
        self.rows[row["id"]] = row
        self.events.append(
            AlertEvent(kind, Alert.from_row(row), text, value, result.start, result.end)
        )


def _count(result: WindowResult, slice: str, rule: AlertRule) -> float:
    """Rows behind a figure: labelled rows for ``perf.*``, else rows (window's if unknown)."""
    metric = "labelled" if rule.metric.startswith("perf.") else "rows"
    value = result.value(metric, slice)
    if value is None:
        value = result.labelled if metric == "labelled" else result.rows
    return value


def _baselines(baselines: Any) -> Any:
    if not isinstance(baselines, Mapping):
        raise InvalidInput(
            f"baselines must be a mapping metric -> number, or 'name/version' -> "
            f"{{metric: number}}; got {type(baselines).__name__}."
        )
    nested = [isinstance(v, Mapping) for v in baselines.values()]
    if any(nested) and not all(nested):
        raise InvalidInput(
            "baselines mixes metric -> number and 'name/version' -> {metric: "
            "number} entries; use one form."
        )
    tables = dict(baselines) if nested and all(nested) else {None: baselines}
    for model, table in tables.items():
        for key, value in table.items():
            pair = isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str)
            metric = key[1] if pair else key
            where = f"{model}: {key}" if model else str(key)
            if not isinstance(metric, str):
                raise InvalidInput(
                    f"baselines[{where}]: a key is a metric name or a (slice, metric) pair "
                    f"such as ('region=south', 'perf.f1'); got {key!r}."
                )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"baselines[{where}] must be a number; got {value!r}.")
    per_version = None not in tables

    def lookup(model: str, metric: str, slice: str = OVERALL) -> tuple[float | None, str]:
        """The baseline of ``metric`` on ``slice`` (its own, else the overall one) and the
        slice it is of."""
        table = tables.get(model if per_version else None, {})
        if slice != OVERALL:
            value = _number(table.get((slice, metric)))
            if value is not None:
                return value, slice
        return _number(table.get(metric, table.get((OVERALL, metric)))), OVERALL

    return lookup


def _number(value: Any) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _load_states(conn: Connection, monitor: str, rules: list[str]) -> dict[_Key, _State]:
    a = alerts.c
    states: dict[_Key, _State] = {}
    mark = func.max(func.coalesce(a.resolved_at, a.last_seen_at))
    query = (
        select(a.rule, a.slice, a.metric, mark)
        .where(a.monitor == monitor, a.rule.in_(rules))
        .group_by(a.rule, a.slice, a.metric)
    )
    for rule, slice, metric, watermark in conn.execute(query):
        states.setdefault((rule, slice, metric), _State()).watermark = watermark
    firing = select(alerts).where(a.monitor == monitor, a.rule.in_(rules), a.state == FIRING)
    for row in conn.execute(firing.order_by(a.fired_at, a.id)).mappings():
        states[(row["rule"], row["slice"], row["metric"])].open = dict(row)  # the latest wins
    return states


def _load_history(
    conn: Connection, monitor: str, endpoint: str, before: datetime, limit: int
) -> list[WindowResult]:
    """The stored windows just before ``before``, oldest first (to count runs of windows)."""
    w = monitor_windows.c
    query = (
        select(monitor_windows)
        .where(w.monitor == monitor, w.window_start < to_us(before))
        .order_by(w.window_start.desc(), w.window_end.desc())
        .limit(limit)
    )
    windows = list(conn.execute(query).mappings())
    if not windows:
        return []
    values: dict[str, dict[tuple[str, str], float | None]] = {row["id"]: {} for row in windows}
    v = monitor_values.c
    query = select(v.window_id, v.slice, v.metric, v.value).where(v.window_id.in_(list(values)))
    for window_id, slice, metric, value in conn.execute(query):
        values[window_id][(slice, metric)] = value
    return [
        WindowResult(
            monitor=monitor,
            endpoint=endpoint,
            start=to_datetime(row["window_start"]),
            end=to_datetime(row["window_end"]),
            model=row["model"],
            model_version_id=row["model_version_id"],
            rows=row["rows"],
            labelled=row["labelled"],
            values=values[row["id"]],
        )
        for row in reversed(windows)
    ]


_COLUMNS = ("state", "value", "threshold", "last_seen_at", "resolved_at")


def _save(conn: Connection, walk: _Walk) -> None:
    new = [row for rid, row in walk.rows.items() if rid in walk.new]
    if new:
        conn.execute(insert(alerts), new)
    for rid, row in walk.rows.items():
        if rid not in walk.new:
            changes = {k: row[k] for k in _COLUMNS}
            conn.execute(update(alerts).where(alerts.c.id == rid).values(**changes))


def _deliver(
    store: Store,
    events: list[AlertEvent],
    hooks: tuple[Webhook, ...],
    rules: Mapping[str, AlertRule],
    now: datetime,
) -> None:
    done: dict[str, list[dict[str, Any]]] = {}
    deliverer = Deliverer(hooks)
    for event in events:
        alert = event.alert.to_dict()
        del alert["deliveries"], alert["action"]  # the payload is the alert, not its records
        event.deliveries = deliverer.deliver(event.kind, alert, event.text, now)
        sent = done.setdefault(event.alert.id, [])
        sent.extend(event.deliveries)
        event.alert = replace(event.alert, deliveries=list(sent))
        rule = rules.get(event.alert.rule)  # (None: a removed rule's alert resolved)
        action = rule.action if rule is not None else None
        if event.kind == "fired" and action is not None:
            event.action, record = _start_action(store, event.alert.id, action, alert)
            event.alert = replace(event.alert, action=record)
    with store.db.write() as conn:
        for alert_id, records in done.items():
            row = conn.execute(select(alerts.c.deliveries).where(alerts.c.id == alert_id)).first()
            stored = json.loads(row.deliveries) if row is not None and row.deliveries else []
            document = json.dumps(stored + records)
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(deliveries=document))


_running: set[Future] = set()
_running_lock = threading.Lock()


def _start_action(
    store: Store, alert_id: str, action: Action, alert: dict[str, Any]
) -> tuple[Future, dict[str, Any]]:
    """Record the action as ``queued`` and start it, or as ``skipped`` (see
    :mod:`.gate`); the Future of its final record, and the record stored now."""
    record: dict[str, Any] = {"kind": action.kind, "summary": action.describe()}
    with store.db.write() as conn:
        # monitor names hold no "/": this key never meets one of evaluate_alerts' keys
        advisory_lock(conn, "alerts", f"{alert['monitor']}/actions/{alert['rule']}")
        now = clock_now()
        skip = admit(
            conn,
            monitor=alert["monitor"],
            rule=alert["rule"],
            alert_id=alert_id,
            action=action,
            now=now,
        )
        if skip is None:
            record |= {"status": "queued", "queued_at": now.isoformat(), "timeout": action.timeout}
        else:
            record |= {"status": "skipped", "skipped_at": now.isoformat()} | skip
        document = json.dumps(record)
        conn.execute(update(alerts).where(alerts.c.id == alert_id).values(action=document))
    if skip is not None:
        log.info("alert %s (%s): action skipped: %s", alert_id, alert["rule"], skip["reason"])
        done: Future = Future()
        done.set_result(record)
        return done, record
    future = submit(_run_action, store, alert_id, action, alert)
    with _running_lock:
        _running.add(future)
    future.add_done_callback(_forget)
    return future, record


def _forget(future: Future) -> None:
    with _running_lock:
        _running.discard(future)


def _run_action(store: Store, alert_id: str, action: Action, alert: dict[str, Any]) -> dict:
    started = {
        "kind": action.kind,
        "status": "running",
        "started_at": clock_now().isoformat(),
        "timeout": action.timeout,
    }
    try:
        _record_action(store, alert_id, started | {"summary": action.describe()})
        result = action.run(alert, store)
    except Exception as e:  # a bug or a lost store must not lose the record
        log.exception("alert %s: action %s failed to run", alert_id, action.kind)
        result = started | {"status": "error", "error": f"{type(e).__name__}: {e}"}
    log.log(
        logging.INFO if result.get("status") == "succeeded" else logging.WARNING,
        "alert %s (%s): action %s %s (exit code %s)",
        alert_id,
        alert["rule"],
        action.kind,
        result.get("status"),
        result.get("exit_code"),
    )
    try:
        _record_action(store, alert_id, result)
    except Exception:
        log.exception("alert %s: could not record the result of its action", alert_id)
    return result


def _record_action(store: Store, alert_id: str, record: dict[str, Any]) -> None:
    with store.db.write() as conn:
        document = json.dumps(record)
        conn.execute(update(alerts).where(alerts.c.id == alert_id).values(action=document))


def wait_for_actions(timeout: float | None = None) -> bool:
    """Wait for the actions started in this process; True when all have finished."""
    with _running_lock:
        pending = set(_running)
    return not wait_futures(pending, timeout).not_done


# -- queries -----------------------------------------------------------------------------------


def list_alerts(
    store: Store,
    *,
    endpoint: str | None = None,
    monitor: str | None = None,
    state: str | None = None,
    rule: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[Alert]:
    """Alerts, oldest first (the newest ``limit``); ``start`` / ``end`` keep those whose span
    meets [start, end).

    An alert's span runs from ``window_start`` (the start of the windows that fired it) to
    ``resolved_at`` (still firing: now): ``start`` keeps the alerts not resolved before it,
    ``end`` those whose windows began before it -- so the alerts of a range of windows are
    those of [first window start, last window end), including one fired by the last window.
    """
    if state is not None and state not in STATES:
        raise InvalidInput(
            f"The 'state' parameter of list_alerts must be 'firing' or "
            f"'resolved'. Got {state!r} instead."
        )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInput(
            f"The 'limit' parameter of list_alerts must be an integer >= 1. Got {limit!r} instead."
        )
    a = alerts.c
    query = select(alerts)
    for column, wanted in (
        (a.endpoint, endpoint),
        (a.monitor, monitor),
        (a.state, state),
        (a.rule, rule),
    ):
        if wanted is not None:
            query = query.where(column == wanted)
    first = None if start is None else to_us(start, what="start")
    last = None if end is None else to_us(end, what="end")
    if first is not None and last is not None and last <= first:
        raise InvalidInput(
            f"The 'end' parameter of list_alerts must be after 'start' ({start}). "
            f"Got {end} instead."
        )
    if first is not None:
        query = query.where(or_(a.resolved_at.is_(None), a.resolved_at >= first))
    if last is not None:
        query = query.where(a.window_start < last)
    query = query.order_by(a.fired_at.desc(), a.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with store.db.read() as conn:
        rows = list(conn.execute(query).mappings())
    return [Alert.from_row(row) for row in reversed(rows)]


@dataclass(frozen=True)
class AlertChange:
    """One transition in an alert's life: ``kind`` ``fired`` or ``resolved`` at ``at``."""

    at: datetime
    kind: str
    alert: Alert


def alert_history(
    store: Store,
    *,
    endpoint: str | None = None,
    monitor: str | None = None,
    rule: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    since: datetime | None = None,
) -> list[AlertChange]:
    """Every firing and resolution in [start, end), in time order (for timelines and report
    markers). ``since`` is the former name of ``start`` (deprecated: it warns)."""
    start = renamed("alert_history", "start", start, "since", since)
    changes = []
    found = list_alerts(store, endpoint=endpoint, monitor=monitor, rule=rule, start=start, end=end)
    for alert in found:
        changes.append(AlertChange(alert.fired_at, "fired", alert))
        if alert.resolved_at is not None:
            changes.append(AlertChange(alert.resolved_at, "resolved", alert))
    changes = [
        c for c in changes if (start is None or c.at >= start) and (end is None or c.at < end)
    ]
    return sorted(changes, key=lambda c: (c.at, c.kind != "resolved", c.alert.id))


def get_alert(store: Store, alert_id: str) -> Alert:
    """One alert by id."""
    with store.db.read() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()
    if row is None:
        raise NotFound(f"No alert with id {alert_id!r}; list them with list_alerts().")
    return Alert.from_row(row)


def alerts_frame(items: Sequence[Alert]) -> Any:
    """Alerts as a pandas DataFrame, one row each (deliveries and action as JSON text)."""
    import pandas as pd

    columns = list(Alert.__dataclass_fields__)
    rows = []
    for alert in items:
        row = {k: getattr(alert, k) for k in columns}
        row["deliveries"] = json.dumps(row["deliveries"]) if row["deliveries"] else None
        row["action"] = json.dumps(row["action"]) if row["action"] else None
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
