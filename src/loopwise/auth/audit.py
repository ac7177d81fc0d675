"""The audit log: who wrote what through the server, and when.

Why: once a team shares a store, "who moved the champion alias at 2am?" or "which token
logged these labels?" must have an answer that does not depend on anyone's memory. The
server records one :class:`AuditEvent` for every ``POST``/``PUT``/``PATCH``/``DELETE``
under ``/api/v1`` (:mod:`loopwise.server.audit_log`), refused ones included: a burst of
401s is worth seeing too.

An event names the actor (the token's name, or :data:`ANONYMOUS` when the request carried
no token the server accepted, which is every request while the store has no token), the
method, path and status of the request, the entity it touched (``endpoints/credit-risk``)
and the time. Events are never updated or deleted by loopwise.

:func:`list_audit_events` pages newest first by ``(at, id)``: a page token is the key of
the last event given, so events recorded meanwhile neither repeat nor hide one.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select

from loopwise.clock import EPOCH, exact_us, now_us
from loopwise.errors import InvalidInput
from loopwise.ids import is_id, new_id
from loopwise.param_errors import bad_param
from loopwise.store import Store
from loopwise.store.tables import audit_events

#: The actor of a request that carried no accepted token.
ANONYMOUS = "anonymous"
#: What is kept of a long path or entity (the rest is cut: an event is a record, not a copy).
MAX_PATH, MAX_ENTITY, MAX_ACTOR = 2048, 512, 255
MAX_RESULTS = 1000
METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclasses.dataclass(frozen=True)
class AuditEvent:
    """One write through the server: ``actor`` did ``method path`` at ``at`` and got ``status``."""

    id: str
    at: datetime
    actor: str
    method: str
    path: str
    status: int
    entity: str | None = None
    token_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the time as ISO 8601 in UTC)."""
        out = dataclasses.asdict(self)
        out["at"] = self.at.isoformat()
        return out


@dataclasses.dataclass(frozen=True)
class AuditPage:
    """One page of :func:`list_audit_events`, newest first; ``next_page_token`` is None on
    the last page."""

    events: list[AuditEvent]
    next_page_token: str | None


def record_audit_event(
    store: Store,
    *,
    actor: str,
    method: str,
    path: str,
    status: int,
    entity: str | None = None,
    token_id: str | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Store one event (``at`` defaults to now); long paths and entities are cut."""
    func = "record_audit_event"
    if not isinstance(actor, str) or not actor:
        raise bad_param(func, "actor", "a token name or 'anonymous'", actor)
    if not isinstance(method, str) or not method:
        raise bad_param(func, "method", "an HTTP method such as 'POST'", method)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise bad_param(func, "status", "an HTTP status in [100, 599]", status)
    when = now_us() if at is None else exact_us(_aware(at, "at", func))
    event = AuditEvent(
        id=new_id(when // 1000),
        at=_moment(when),
        actor=_clean(actor, MAX_ACTOR),
        method=method.upper()[:16],
        path=_clean(path, MAX_PATH),
        status=status,
        entity=None if entity is None else _clean(entity, MAX_ENTITY),
        token_id=token_id,
    )
    row = dataclasses.asdict(event) | {"at": when}
    with store.db.write() as conn:
        conn.execute(audit_events.insert().values(**row))
    return event


def list_audit_events(
    store: Store,
    *,
    actor: str | None = None,
    method: str | None = None,
    entity: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> AuditPage:
    """Events in [start, end) (timezone-aware; None: unbounded), newest first, kept to those
    of ``actor``, ``method`` and ``entity`` when given; ``max_results`` (1 to 1000) per
    page, the next page after ``page_token`` (the previous page's ``next_page_token``)."""
    func = "list_audit_events"
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise bad_param(func, "max_results", f"an int in [1, {MAX_RESULTS}]", max_results)
    if not 1 <= max_results <= MAX_RESULTS:
        raise bad_param(func, "max_results", f"an int in [1, {MAX_RESULTS}]", max_results)
    if method is not None and method.upper() not in METHODS:
        raise bad_param(func, "method", f"one of {', '.join(METHODS)}", method)
    a = audit_events.c
    query = select(audit_events)
    for column, wanted in ((a.actor, actor), (a.entity, entity)):
        if wanted is not None:
            query = query.where(column == _clean(wanted, MAX_PATH))
    if method is not None:
        query = query.where(a.method == method.upper())
    first = None if start is None else exact_us(_aware(start, "start", func))
    last = None if end is None else exact_us(_aware(end, "end", func))
    if first is not None and last is not None and last <= first:
        raise bad_param(func, "end", f"after start ({start.isoformat()})", end)  # type: ignore[union-attr]
    if first is not None:
        query = query.where(a.at >= first)
    if last is not None:
        query = query.where(a.at < last)
    if page_token is not None:
        at, event_id = _decode(page_token)
        query = query.where(or_(a.at < at, and_(a.at == at, a.id < event_id)))
    query = query.order_by(a.at.desc(), a.id.desc()).limit(max_results + 1)
    with store.db.read() as conn:
        rows = conn.execute(query).mappings().all()
    events = [_event(row) for row in rows[:max_results]]
    last_row = rows[max_results - 1] if len(rows) > max_results else None
    token = None if last_row is None else _encode(last_row["at"], last_row["id"])
    return AuditPage(events, token)


# -- helpers ----------------------------------------------------------------------------------


def _aware(value: Any, name: str, func: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise bad_param(
            func,
            name,
            "a timezone-aware datetime such as datetime(2026, 1, 1, tzinfo=timezone.utc)",
            value,
        )
    return value


def _clean(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, without the NUL character no store keeps."""
    return str(text).replace("\x00", "")[:limit]


def _moment(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)  # exact, unlike a float of seconds


def _event(row: Any) -> AuditEvent:
    values = {f.name: row[f.name] for f in dataclasses.fields(AuditEvent)}
    return AuditEvent(**(values | {"at": _moment(row["at"])}))


def _encode(at_us: int, event_id: str) -> str:
    return base64.urlsafe_b64encode(f"{at_us}.{event_id}".encode()).decode().rstrip("=")


def _decode(token: str) -> tuple[int, str]:
    refused = InvalidInput(
        f"page_token {token[:80]!r} was not given by this audit listing; pass the "
        "next_page_token of the previous page unchanged, or leave it out for the first page."
    )
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        at, _, event_id = raw.partition(".")
        value = int(at)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise refused from None
    if not is_id(event_id) or not 0 <= value < 2**63:
        raise refused
    return value, event_id


__all__ = [
    "ANONYMOUS",
    "AuditEvent",
    "AuditPage",
    "list_audit_events",
    "record_audit_event",
]
