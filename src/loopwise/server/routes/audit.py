"""``GET /api/v1/audit``: the audit log of writes through the server (admin only).

Who did what and when is itself sensitive (token names, what each touched), so reading it
needs the ``admin`` permission. Events come newest first, a page at a time
(:func:`loopwise.auth.audit.list_audit_events`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from loopwise.auth.audit import list_audit_events
from loopwise.server.access import needs, store_of
from loopwise.server.listing import MaxResults, PageToken, Text
from loopwise.server.time_params import TimeParam, time_range
from loopwise.store import Store

router = APIRouter(tags=["audit"])

Filter = Annotated[Text | None, Query(max_length=300)]


@router.get("/audit", dependencies=[Depends(needs("admin"))])
def audit(
    actor: Filter = None,
    method: Literal["POST", "PUT", "PATCH", "DELETE"] | None = None,
    entity: Filter = None,
    start: TimeParam = None,
    end: TimeParam = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """Writes through the server in [start, end), newest first: who, what, when."""
    first, last = time_range(start, end)
    found = list_audit_events(
        store,
        actor=actor,
        method=method,
        entity=entity,
        start=first,
        end=last,
        max_results=max_results,
        page_token=page_token,
    )
    return {
        "events": [e.to_dict() for e in found.events],
        "next_page_token": found.next_page_token,
    }
