"""Whether a firing may start its rule's action: one at a time, and not within the cooldown.

Two protections, decided from the stored alerts of the same monitor and rule (any slice or
metric), from the ``action`` record each of them holds, so that they hold across processes
sharing one store:

- **no overlap**: while an earlier action of the rule is ``queued`` or ``running``, a new
  firing's action is skipped. A process that died leaves its record ``running`` forever,
  so a record counts only until its start (``started_at``, or ``queued_at`` while queued)
  plus its ``timeout`` plus :data:`STALE_MARGIN_S`: by then the action was killed or its
  process is gone;
- **cooldown**: while the rule's last action *started* (wall clock) less than the
  action's ``cooldown`` ago, a new firing's action is skipped.

:func:`admit` must run inside the write transaction that then stores the new alert's record
(``queued`` or ``skipped``), under the rule's lock (:mod:`.alerting` takes it: an advisory
lock on PostgreSQL, the write transaction itself on SQLite). So of two processes firing
the rule at the same moment, the second sees the first's ``queued`` record and skips.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select

from loopwise.clock import format_duration, parse_iso
from loopwise.errors import InvalidInput
from loopwise.monitoring.alerting.delivery import Action
from loopwise.monitoring.results import OVERALL
from loopwise.store.expressions import json_field
from loopwise.store.tables import alerts

#: Seconds past ``timeout`` after which a ``queued`` / ``running`` record no longer counts:
#: room for the kill and the final write, and for clocks of hosts that differ a little.
STALE_MARGIN_S = 60.0
LIVE = ("queued", "running")


def admit(
    conn: Connection,
    *,
    monitor: str,
    rule: str,
    alert_id: str,
    action: Action,
    now: datetime,
) -> dict[str, Any] | None:
    """None when ``alert_id``'s action may start; else the fields of its ``skipped`` record
    (``cause``: ``overlap`` or ``cooldown``, ``blocked_by``: the alert in the way,
    ``reason``: the sentence for people)."""
    a = alerts.c
    # only the few values needed are read from the ``action`` JSON
    keys = ("status", "queued_at", "started_at", "timeout")
    fields = {key: json_field(a.action, key) for key in keys}
    wanted = fields["status"].in_(LIVE)
    if action.cooldown is not None:
        wanted = or_(wanted, fields["started_at"].is_not(None))
    query = select(a.id, a.slice, a.metric, *(f.label(k) for k, f in fields.items())).where(
        a.monitor == monitor,
        a.rule == rule,
        a.id != alert_id,
        a.action.is_not(None),
        wanted,
    )
    rows = conn.execute(query).all()
    running = []
    for row in rows:
        since = _moment(row.started_at) or _moment(row.queued_at)
        if row.status not in LIVE or since is None:
            continue
        seconds = (_seconds(row.timeout) or action.timeout) + STALE_MARGIN_S
        if since + timedelta(seconds=seconds) > now:
            running.append((since, row))
    if running:
        since, row = max(running, key=lambda found: found[0])
        doing = "running (started" if row.status == "running" else "queued (since"
        return {
            "cause": "overlap",
            "blocked_by": row.id,
            "reason": (
                f"the action of alert {row.id} ({_where(row.metric, row.slice)}) is still "
                f"{doing} {_text(since)}); one action of rule {rule!r} runs at a time."
            ),
        }
    if action.cooldown is None:
        return None
    starts = [(moment, row) for row in rows if (moment := _moment(row.started_at)) is not None]
    if not starts:
        return None
    last, row = max(starts, key=lambda found: found[0])
    ends = last + timedelta(seconds=action.cooldown)
    if ends <= now:
        return None
    return {
        "cause": "cooldown",
        "blocked_by": row.id,
        "last_started_at": last.isoformat(),
        "cooldown_s": action.cooldown,
        "cooldown_ends_at": ends.isoformat(),
        "reason": (
            f"the last action of rule {rule!r} (alert {row.id}) started {_text(last)}, "
            f"within its cooldown of {format_duration(action.cooldown)}; the cooldown ends "
            f"{_text(ends)}."
        ),
    }


def _moment(value: Any) -> datetime | None:
    """A stored ISO 8601 time (None for a missing, unreadable or zone-less one: it cannot
    block)."""
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value, "stored time")
    except InvalidInput:
        return None


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


def _where(metric: str, slice: str) -> str:
    return f"{metric} on {slice}" if slice != OVERALL else metric


def _text(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
