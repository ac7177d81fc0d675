"""``/api/v1`` routes for monitors and alerts: the monitors with stored windows, a monitor's
window figures, the alerts (filtered), one alert and its history. All reads (``read``).

A monitor's windows come a page at a time, oldest first: a page is ``max_results`` window
starts (each with one result per model version live in it), and its token is the start
of the next window, so re-evaluated windows (stored again under the same start) neither
repeat nor vanish. Alerts are a bounded list, as :func:`list_alerts` gives them: the
newest ``max_results`` matching the filters, oldest first, with ``truncated`` set when
older ones matched too (narrow ``start``/``end`` to see them).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from loopwise.clock import exact_us
from loopwise.errors import NotFound
from loopwise.ids import is_id, slug_pattern
from loopwise.monitoring.alerting.alerts import alert_history, get_alert, list_alerts
from loopwise.monitoring.storage import stored_counts, stored_monitors, window_results
from loopwise.server.access import needs, store_of
from loopwise.server.listing import MaxResults, PageToken, Text, finite
from loopwise.server.time_params import (
    LAST_US,
    TimeParam,
    at_us,
    decode_cursor,
    encode_cursor,
    time_range,
)
from loopwise.store import Store

router = APIRouter(tags=["monitoring"], dependencies=[Depends(needs("read"))])

_NAME = slug_pattern()
MonitorName = Annotated[str, Path(max_length=200, description="The monitor's name.")]
AlertId = Annotated[str, Path(max_length=64, description="The alert's id.")]
Filter = Annotated[Text | None, Query(max_length=300)]


def _monitor(store: Store, name: str) -> str:
    """``name`` when the store holds windows of that monitor; a 404 naming those it has."""
    names = {m["name"] for m in stored_monitors(store)}
    if _NAME.fullmatch(name) and name in names:
        return name
    known = ", ".join(repr(n) for n in sorted(names)) or "none yet"
    raise NotFound(
        f"no monitor {name[:100]!r} has stored windows (monitors with windows: {known}); "
        "check the name, or run the monitor first (`loopwise monitor run`)."
    )


@router.get("/monitors")
def list_monitors(store: Store = Depends(store_of)) -> dict[str, Any]:
    """The monitors with stored windows: endpoint, number of windows, first and last."""
    found = stored_monitors(store)
    for m in found:
        for key in ("first_window_start", "last_window_end"):
            m[key] = m[key].isoformat()
    return {"monitors": found}


@router.get("/monitors/{name}/windows")
def monitor_windows(
    name: MonitorName,
    start: TimeParam = None,
    end: TimeParam = None,
    model: Filter = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """The figures of the windows starting in [start, end), oldest first, a page at a time."""
    monitor = _monitor(store, name)
    first, last = time_range(start, end)
    begin_us = 0 if first is None else min(max(exact_us(first), 0), LAST_US)
    end_us = LAST_US if last is None else min(max(exact_us(last), 0), LAST_US)
    listing = f"windows:{monitor}:{begin_us}:{end_us}:{model or ''}"
    if page_token is not None:
        (begin_us,) = decode_cursor(page_token, listing, 1)
    counts = stored_counts(store, monitor, begin_us, end_us)
    starts = sorted({s for s, m in counts if model is None or m == model})
    chosen, rest = starts[:max_results], starts[max_results:]
    results = []
    if chosen:
        stop = rest[0] if rest else end_us
        found = window_results(store, monitor, at_us(chosen[0]), at_us(stop), model=model)
        results = [finite(r.to_dict()) for r in found]
    token = encode_cursor(listing, [rest[0]]) if rest else None
    return {"monitor": monitor, "windows": results, "next_page_token": token}


@router.get("/alerts")
def alerts(
    state: Literal["firing", "resolved"] | None = None,
    monitor: Filter = None,
    endpoint: Filter = None,
    rule: Filter = None,
    start: TimeParam = None,
    end: TimeParam = None,
    max_results: MaxResults = 100,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """Alerts whose span meets [start, end), the newest ``max_results``, oldest first."""
    first, last = time_range(start, end)
    found = list_alerts(
        store,
        endpoint=endpoint,
        monitor=monitor,
        state=state,
        rule=rule,
        start=first,
        end=last,
        limit=max_results + 1,
    )
    truncated = len(found) > max_results
    kept = found[1:] if truncated else found
    return {"alerts": [finite(a.to_dict()) for a in kept], "truncated": truncated}


def _alert(store: Store, alert_id: str) -> Any:
    if not is_id(alert_id):
        raise NotFound(
            f"no alert with id {alert_id[:100]!r}: alert ids are 26 lower-case letters and "
            "digits (GET /api/v1/alerts lists them)."
        )
    return get_alert(store, alert_id)


@router.get("/alerts/{alert_id}")
def alert(alert_id: AlertId, store: Store = Depends(store_of)) -> dict[str, Any]:
    """One alert: its rule, figure, threshold, state, window times, deliveries and action."""
    return finite(_alert(store, alert_id).to_dict())


@router.get("/alerts/{alert_id}/history")
def history(alert_id: AlertId, store: Store = Depends(store_of)) -> dict[str, Any]:
    """One alert's life: when it fired and resolved, what was delivered, what action ran."""
    found = _alert(store, alert_id)
    changes = alert_history(store, monitor=found.monitor, rule=found.rule, start=found.window_start)
    return finite(
        {
            "alert_id": found.id,
            "state": found.state,
            "changes": [
                {"at": c.at.isoformat(), "kind": c.kind, "value": _value(c.kind, c.alert)}
                for c in changes
                if c.alert.id == found.id
            ],
            "deliveries": found.deliveries,
            "action": found.action,
        }
    )


def _value(kind: str, alert: Any) -> float | None:
    """The figure of the change: the one that fired it, or the last while it held."""
    return alert.fired_value if kind == "fired" else alert.value
