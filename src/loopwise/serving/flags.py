"""The model flag of an endpoint, kept in the store so every worker and replica follows it.

Why in the store and not in the endpoint's config file: the flag is the switch someone
flips during an incident (``loopwise endpoints flag credit-risk off --reason "..."``), on
every replica at once, without a deploy; and who flipped it, when and why is part of the
endpoint's history. Each switch is one appended row; the newest row is the state.
"""

from __future__ import annotations

from sqlalchemy import select

from loopwise.clock import now_us, to_datetime
from loopwise.errors import InvalidInput
from loopwise.identity import current_user
from loopwise.serving.endpoint import FlagState
from loopwise.serving.endpoint_config import check_endpoint_name
from loopwise.store import Store
from loopwise.store.tables import endpoint_flag_events


def set_model_flag(
    store: Store, endpoint: str, enabled: bool, *, reason: str | None = None
) -> FlagState:
    """Turn the model of ``endpoint`` on or off (off: the fallback answers); record why."""
    check_endpoint_name(endpoint)
    if not isinstance(enabled, bool):
        raise InvalidInput(f"The 'enabled' parameter must be True or False. Got {enabled!r}.")
    if reason is not None and not isinstance(reason, str):
        raise InvalidInput(f"The 'reason' parameter must be text. Got {reason!r}.")
    at, user = now_us(), current_user()
    with store.db.write() as conn:
        conn.execute(
            endpoint_flag_events.insert().values(
                endpoint=endpoint, enabled=enabled, reason=reason, set_at=at, set_by=user
            )
        )
    return FlagState(enabled=enabled, reason=reason, set_at=to_datetime(at), set_by=user)


def model_flag(store: Store, endpoint: str) -> FlagState | None:
    """The current flag of ``endpoint`` (None: never set, so the model is on)."""
    history = flag_history(store, endpoint, limit=1)
    return history[-1] if history else None


def flag_history(store: Store, endpoint: str, *, limit: int | None = None) -> list[FlagState]:
    """Every switch of the flag of ``endpoint``, oldest first (the newest ``limit``)."""
    check_endpoint_name(endpoint)
    t = endpoint_flag_events.c
    query = select(t.enabled, t.reason, t.set_at, t.set_by).where(t.endpoint == endpoint)
    query = query.order_by(t.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with store.db.read() as conn:
        rows = conn.execute(query).all()
    return [
        FlagState(
            enabled=bool(r.enabled), reason=r.reason, set_at=to_datetime(r.set_at), set_by=r.set_by
        )
        for r in reversed(rows)
    ]
