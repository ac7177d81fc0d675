"""The UI's operations pages: monitors (window figures as charts, alerts with their state
and timeline), endpoints with a prediction log (recent predictions in a time range) and one
request's trace across the UI (model version, run, data, alias moves, promotions).

The pages call what the REST routes call (:mod:`loopwise.server.routes.monitoring` and
:mod:`loopwise.server.routes.predictions`, whose checks they reuse, so a bad name or time
is the same 4xx here). A monitor's charts are drawn by ``static/ui.js`` from
:func:`monitor_series`, a JSON answer of one metric's overall figure per window; an
endpoint's traffic and latency charts from :func:`endpoint_chart` (:mod:`.traffic`), over
the range the page shows (the last hour, day or week, or ``start`` to ``end``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from loopwise.clock import now
from loopwise.errors import InvalidInput, NotFound
from loopwise.monitoring.alerting.alerts import list_alerts
from loopwise.monitoring.storage import figures, stored_monitors
from loopwise.predictions.log import prediction_endpoints
from loopwise.server.access import store_of
from loopwise.server.routes import predictions as prediction_routes
from loopwise.server.routes.monitoring import _monitor
from loopwise.server.time_params import TimeParam, moment, time_range
from loopwise.server.ui import traffic
from loopwise.server.ui.guard import guarded_page
from loopwise.server.ui.models_pages import dataset_version_url, model_url, version_url
from loopwise.server.ui.render import render
from loopwise.server.ui.session import check_reader
from loopwise.store import Store

router = APIRouter(include_in_schema=False)

#: Alerts one monitor page lists (the newest).
MAX_ALERTS = 500
#: Predictions one endpoint page lists.
MAX_PREDICTIONS = 500
#: The ranges an endpoint page offers (``last=``), the first by default.
LAST = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
#: An endpoint page's charts: what each shows, computed by which function of .traffic.
ENDPOINT_CHARTS = {"traffic": traffic.traffic, "latency": traffic.latency}
_CHART_TITLES = {"traffic": "Requests per {bucket}", "latency": "Latency per {bucket} (live)"}
_EMPTY = {"traffic": "no traffic in this range", "latency": "no latency recorded in this range"}


def monitor_url(name: str) -> str:
    """The UI's URL of a monitor."""
    return f"/monitors/{quote(name, safe='')}"


def endpoint_url(name: str) -> str:
    """The UI's URL of an endpoint."""
    return f"/endpoints/{quote(name, safe='')}"


def trace_url(endpoint: str, request_id: str) -> str:
    """The UI's URL of one request's trace."""
    return f"{endpoint_url(endpoint)}/trace/{quote(request_id, safe='')}"


@router.get("/monitors")
def monitors_page(request: Request, store: Store = Depends(store_of)) -> Response:
    """Every monitor with stored windows, and how many of its alerts fire now."""

    def build() -> Response:
        found = stored_monitors(store)
        firing = list_alerts(store, state="firing", limit=10_000)
        for m in found:
            m["firing"] = sum(1 for a in firing if a.monitor == m["name"])
        return render(
            request, "monitors.html.j2", title="Monitors", monitors=found, monitor_url=monitor_url
        )

    return guarded_page(request, build)


@router.get("/monitors/{name}")
def monitor_page(request: Request, name: str, store: Store = Depends(store_of)) -> Response:
    """A monitor: a chart per metric over its windows, its alerts newest first."""

    def build() -> Response:
        monitor = _monitor(store, name[:200])
        frame = figures(store, monitor, slice="")
        charts = [
            {
                "key": metric,
                "series": [
                    {
                        "label": model,
                        "url": f"{monitor_url(monitor)}/series?metric={quote(metric)}"
                        f"&model={quote(model)}",
                    }
                    for model in sorted(set(frame.loc[frame["metric"] == metric, "model"]))
                ],
            }
            for metric in sorted(set(frame["metric"]))
        ]
        alerts = list_alerts(store, monitor=monitor, limit=MAX_ALERTS)
        return render(
            request,
            "monitor.html.j2",
            title=monitor,
            monitor=monitor,
            charts=charts,
            alerts=list(reversed(alerts)),
            report_url=f"{monitor_url(monitor)}/report",
        )

    return guarded_page(request, build)


@router.get("/monitors/{name}/report")
def monitor_report_page(
    request: Request,
    name: str,
    start: TimeParam = None,
    end: TimeParam = None,
    store: Store = Depends(store_of),
) -> Response:
    """The monitor's report (what ``loopwise monitor report`` writes) over its windows in
    [start, end) (default: every stored window), as its own script-free HTML page, served
    sandboxed like a run's HTML file, for the monitor page's frame."""
    from loopwise.monitoring.report import monitor_report
    from loopwise.monitoring.report_html import render_html

    check_reader(request)
    first, last = time_range(start, end)
    report = monitor_report(store, _monitor(store, name[:200]), start=first, end=last)
    return HTMLResponse(
        render_html(report),
        headers={"content-security-policy": "sandbox", "x-content-type-options": "nosniff"},
    )


@router.get("/monitors/{name}/series")
def monitor_series(
    request: Request,
    name: str,
    metric: str = Query(max_length=300),
    model: str = Query(max_length=300),
    store: Store = Depends(store_of),
) -> Response:
    """One metric's overall figure per window of one model, as JSON for a chart: window
    starts in seconds since the epoch (``step``) and values (non-finite: null)."""
    check_reader(request)
    frame = figures(store, _monitor(store, name[:200]), metric, slice="")
    frame = frame[frame["model"] == model]
    steps = [t.timestamp() for t in frame["window_start"]]
    values = [None if math.isnan(v) else float(v) for v in frame["value"]]
    return JSONResponse({"step": steps, "value": values})


@router.get("/endpoints")
def endpoints_page(request: Request, store: Store = Depends(store_of)) -> Response:
    """The endpoints with a prediction log."""

    def build() -> Response:
        found = prediction_endpoints(store)
        return render(
            request,
            "endpoints.html.j2",
            title="Endpoints",
            endpoints=found,
            endpoint_url=endpoint_url,
        )

    return guarded_page(request, build)


def _endpoint_range(query: Any) -> tuple[datetime, datetime, str | None]:
    """The range an endpoint page shows: ``last`` (hour, day or week up to now), else
    ``start`` and ``end`` (ISO 8601 with a zone; default: the hour before ``end`` or now)."""
    last = query.get("last")
    if last is not None:
        if last not in LAST:
            choices = ", ".join(repr(k) for k in LAST)
            raise InvalidInput(f"last={last[:40]!r} is not a range this page shows: use {choices}.")
        end = now()
        return end - LAST[last], end, last
    end = moment(query["end"], "end") if query.get("end") else now()
    start = moment(query["start"], "start") if query.get("start") else end - LAST["hour"]
    return start, end, None


def _bucket_words(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return "second" if seconds == 1 else f"{seconds} seconds"


def _charts(endpoint: str, start: datetime, end: datetime) -> list[dict[str, str]]:
    """The chart cards of an endpoint page: each fetches its series when scrolled into view."""
    bucket = _bucket_words(traffic.bucket_seconds(start, end))
    window = urlencode({"start": start.isoformat(), "end": end.isoformat()})
    return [
        {
            "key": kind,
            "title": _CHART_TITLES[kind].format(bucket=bucket),
            "url": f"{endpoint_url(endpoint)}/charts/{kind}?{window}",
            "empty": _EMPTY[kind],
        }
        for kind in ENDPOINT_CHARTS
    ]


@router.get("/endpoints/{name}")
def endpoint_page(request: Request, name: str, store: Store = Depends(store_of)) -> Response:
    """An endpoint's traffic and latency charts and its predictions in a time range (the
    last hour by default; ``last=day`` or ``week``, or ISO 8601 ``start`` and ``end``),
    each prediction linked to its trace."""

    def build() -> Response:
        start, end, last = _endpoint_range(request.query_params)
        answer = prediction_routes.list_predictions(
            name[:200],
            request,
            start=start.isoformat(),
            end=end.isoformat(),
            max_results=MAX_PREDICTIONS,
            page_token=None,
            store=store,
        )
        endpoint = answer["endpoint"]
        rows, more = answer["predictions"], answer["next_page_token"] is not None
        too_long = end - start > traffic.MAX_RANGE
        return render(
            request,
            "endpoint.html.j2",
            title=endpoint,
            endpoint=endpoint,
            rows=rows,
            more=more,
            quiet=not rows and not more,
            charts=[] if too_long else _charts(endpoint, start, end),
            max_chart_days=traffic.MAX_RANGE.days,
            ranges=list(LAST),
            last=last,
            start=start.isoformat(),
            end=end.isoformat(),
            trace_url=trace_url,
        )

    return guarded_page(request, build)


@router.get("/endpoints/{name}/charts/{kind}")
def endpoint_chart(
    request: Request,
    name: str,
    kind: str,
    start: TimeParam = None,
    end: TimeParam = None,
    store: Store = Depends(store_of),
) -> Response:
    """One chart of an endpoint page as JSON (see :mod:`.traffic`): ``traffic`` (requests
    per bucket and variant) or ``latency`` (p50 and p95 per bucket) over [start, end)
    (default: the last hour), at most :data:`.traffic.MAX_RANGE` long."""
    check_reader(request)
    chart = ENDPOINT_CHARTS.get(kind)
    if chart is None:
        raise NotFound(
            f"no chart {kind[:40]!r} of an endpoint: the charts are "
            f"{', '.join(repr(k) for k in ENDPOINT_CHARTS)}."
        )
    endpoint = prediction_routes._endpoint(store, name[:200])
    first, last = time_range(start, end)
    last = last or now()
    first = first or last - LAST["hour"]
    return JSONResponse(chart(store, endpoint, first, last))


@router.get("/endpoints/{name}/trace/{request_id}")
def trace_page(
    request: Request, name: str, request_id: str, store: Store = Depends(store_of)
) -> Response:
    """One request traced: the version that answered, its run and data, the alias moves
    and promotions that made it live, each linked to its page."""

    def build() -> Response:
        trace: dict[str, Any] = prediction_routes.trace_request(
            name[:200], request_id[:256], request, start=None, end=None, store=store
        )
        return render(
            request,
            "trace.html.j2",
            title=f"Request {trace['request_id']}",
            trace=trace,
            endpoint_url=endpoint_url,
            model_url=model_url,
            version_url=version_url,
            dataset_version_url=dataset_version_url,
        )

    return guarded_page(request, build)
