"""``/api/v1`` routes for endpoints and their prediction log: the endpoints with a log, the
predictions in a time range, one request's trace, and feedback labels.

Reads need ``read``. Logging feedback needs ``feedback`` *or* ``write``: the systems that
learn the ground truth are often the ones that call ``/predict`` (role ``predict``, which
grants ``feedback``), and a pipeline with a ``write`` token may backfill labels too. A
``read`` token is refused.

Predictions come a page at a time, oldest first (by time, then request id, row, shadow,
model and variant, so the order never depends on how the log's files were merged). A page
reads the log an hour at a time, more hours while they are empty, and at most
:data:`SCAN_US` of it: over a long, sparse range a page may hold fewer rows than asked,
even none, with a ``next_page_token`` to go on from. Every answer is plain JSON: times as
ISO 8601 in UTC, NaN and infinities as null.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from loopwise.auth.tokens import TokenInfo
from loopwise.clock import exact_us, now
from loopwise.errors import Forbidden, InvalidInput, NotFound
from loopwise.ids import id_time_ms, is_id
from loopwise.predictions.files import (
    HOUR_US,
    MAX_US,
    MIN_US,
    check_endpoint,
    natural_column,
    require_endpoint,
)
from loopwise.predictions.log import (
    log_feedback,
    prediction_endpoints,
    read_feedback,
    read_predictions_frame,
)
from loopwise.predictions.tracing import trace_prediction
from loopwise.server.access import needs, store_of
from loopwise.server.audit_log import note_entity
from loopwise.server.listing import MaxResults, PageToken, Text, finite
from loopwise.server.time_params import (
    TimeParam,
    at_us,
    decode_cursor,
    encode_cursor,
    moment,
    time_range,
)
from loopwise.store import Store

router = APIRouter(tags=["predictions"])

#: The most of the log one page reads: a week.
SCAN_US = 7 * 24 * HOUR_US
#: A page reads an hour first, then twice as much while the hours are empty, up to this
#: (the log is then listed an hour folder at a time).
_LONGEST_CHUNK_US = 48 * HOUR_US
_BUSY_CHUNK_US = 24 * HOUR_US  # once rows have turned up: they may be dense
#: The longest ``[start, end)`` a trace searches (the whole log is searched without one).
MAX_TRACE_RANGE = timedelta(days=366)
_ORDER = ("timestamp", "request_id", "row", "shadow", "model", "variant")
MAX_LABELS = 100_000

EndpointName = Annotated[str, Path(max_length=200, description="The endpoint's name.")]


def _endpoint(store: Store, name: str) -> str:
    """``name`` when it can name an endpoint; a 404 naming the endpoints with a log otherwise
    (the log's own checks then say whether this one has one)."""
    try:
        return check_endpoint(name, "endpoint")
    except InvalidInput:
        known = ", ".join(repr(n) for n in prediction_endpoints(store)) or "none yet"
        raise NotFound(
            f"no endpoint {name[:100]!r}: endpoint names are lower-case letters, digits, '-' "
            f"and '_' (endpoints with a prediction log: {known})."
        ) from None


# -- endpoints and the log ---------------------------------------------------------------------


@router.get("/endpoints", dependencies=[Depends(needs("read"))])
def list_endpoints(store: Store = Depends(store_of)) -> dict[str, Any]:
    """The endpoints that have a prediction log (or feedback), by name."""
    return {"endpoints": [{"name": n} for n in prediction_endpoints(store)]}


@router.get("/endpoints/{name}/predictions", dependencies=[Depends(needs("read"))])
def list_predictions(
    name: EndpointName,
    start: TimeParam = None,
    end: TimeParam = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """The predictions with a time in [start, end), with their feedback, a page at a time."""
    endpoint = _endpoint(store, name)
    first, last = time_range(start, end)
    if first is None or last is None:
        raise InvalidInput(
            "start and end are both needed: the log is read by the hours a range names, e.g. "
            "?start=2026-05-01T00:00:00Z&end=2026-05-02T00:00:00Z."
        )
    require_endpoint(store.artifacts, endpoint)
    begin_us, end_us = max(exact_us(first), MIN_US), min(exact_us(last), MAX_US - 1)
    listing = f"predictions:{endpoint}:{exact_us(first)}:{exact_us(last)}"
    skip = 0
    if page_token is not None:
        begin_us, skip = decode_cursor(page_token, listing, 2)
    rows, next_position = _page(store, endpoint, begin_us, end_us, skip, max_results)
    token = None if next_position is None else encode_cursor(listing, next_position)
    return {"endpoint": endpoint, "predictions": rows, "next_page_token": token}


def _page(
    store: Store, endpoint: str, begin_us: int, end_us: int, skip: int, limit: int
) -> tuple[list[dict[str, Any]], list[int] | None]:
    """The rows from ``begin_us`` on (the first ``skip`` at that time already given) and
    the position after them (None at the end of the range)."""
    scan_end = min(end_us, begin_us + SCAN_US)
    if begin_us >= scan_end:
        return [], None
    labels = read_feedback(store, endpoint, at_us(begin_us))
    frames: list[pl.DataFrame] = []
    found, at, span = 0, begin_us, HOUR_US
    while at < scan_end and found <= skip + limit:
        stop = min(scan_end, (at // HOUR_US) * HOUR_US + span)
        chunk = read_predictions_frame(store, endpoint, at_us(at), at_us(stop), feedback=labels)
        if chunk.height:
            frames.append(chunk)
            found += chunk.height
        span = min(2 * span, _BUSY_CHUNK_US if found else _LONGEST_CHUNK_US)
        at = stop
    frame = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    if frame.height:
        order = [c for c in _ORDER if c in frame.columns]
        frame = frame.sort(order, nulls_last=True, maintain_order=True)
    given = frame.slice(skip, limit)
    rows = [finite(_plain(r)) for r in given.to_dicts()]
    if frame.height > skip + limit:  # more at or after the last row given
        last_ts = given["timestamp"][-1]
        stamps = frame["timestamp"].head(skip + limit)
        return rows, [exact_us(last_ts), int((stamps == last_ts).sum())]
    if at < end_us:  # the scan stopped before the end of the range
        return rows, [at, 0]
    return rows, None


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its times as ISO 8601 (the log's times are UTC)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


# -- one request ----------------------------------------------------------------------------


@router.get("/endpoints/{name}/trace/{request_id}", dependencies=[Depends(needs("read"))])
def trace_request(
    name: EndpointName,
    request_id: Annotated[str, Path(max_length=256, description="The request's id.")],
    start: TimeParam = None,
    end: TimeParam = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """One request traced to the model version, run, data, alias moves and promotions."""
    endpoint = _endpoint(store, name)
    first, last = time_range(start, end)
    if "\x00" in request_id:
        raise InvalidInput("request_id must not contain the NUL character (\\u0000).")
    if first is None and last is None and is_id(request_id):
        made_us = id_time_ms(request_id) * 1000
        if not MIN_US <= made_us < MAX_US - 2 * HOUR_US:
            raise NotFound(
                f"request {request_id!r} is not in the prediction log of endpoint "
                f"{endpoint!r}: its id names a time outside the years 2000 to 9999, when no "
                "prediction can be logged. Check the id, or pass start and end around the "
                "request's time."
            )
    # A side beyond the years the log can hold is no bound (the whole log is listed at once).
    if first is not None and exact_us(first) <= MIN_US:
        first = None
    if last is not None and exact_us(last) >= MAX_US - _BUSY_CHUNK_US:
        last = None
    if first is not None and last is not None and last - first > MAX_TRACE_RANGE:
        raise InvalidInput(
            f"start {start!r} and end {end!r} are more than {MAX_TRACE_RANGE.days} days apart; "
            "a range is listed a day at a time: narrow it, or leave start and end out to "
            "search the whole log."
        )
    trace = trace_prediction(store, endpoint, request_id, start=first, end=last)
    return finite(trace.to_dict())


# -- feedback -------------------------------------------------------------------------------


async def _feedback_or_write(request: Request) -> TokenInfo | None:
    """Let a request through with the ``feedback`` or the ``write`` permission."""
    try:
        return await needs("feedback")(request)
    except Forbidden:
        pass
    try:
        return await needs("write")(request)
    except Forbidden as e:
        raise Forbidden(
            f"{str(e).split(' which does ')[0]} which allows neither 'feedback' nor "
            "'write'. Use a token with role 'predict', 'write' or 'admin'."
        ) from None


class LabelIn(BaseModel):
    """One ground-truth label: for a request (every row, or one ``row``), at ``timestamp``."""

    model_config = ConfigDict(extra="forbid")
    request_id: Text = Field(min_length=1, max_length=256)
    label: StrictBool | StrictInt | StrictFloat | Text
    row: int | None = Field(default=None, ge=0, lt=2**31)
    timestamp: str | None = Field(
        default=None, max_length=64, description="ISO 8601 with a zone; default: now."
    )


class FeedbackIn(BaseModel):
    """``POST /endpoints/{name}/feedback``: labels for logged requests."""

    model_config = ConfigDict(extra="forbid")
    labels: list[LabelIn] = Field(min_length=1, max_length=MAX_LABELS)


@router.post("/endpoints/{name}/feedback", dependencies=[Depends(_feedback_or_write)])
def post_feedback(
    name: EndpointName, body: FeedbackIn, request: Request, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """Log ground-truth labels for requests of an endpoint that has a prediction log."""
    endpoint = _endpoint(store, name)
    note_entity(request, f"endpoints:/{endpoint}")
    require_endpoint(store.artifacts, endpoint)
    received = now()
    stamps = []
    for i, item in enumerate(body.labels):
        at = moment(item.timestamp, f"labels[{i}].timestamp") if item.timestamp else received
        stamps.append(at.astimezone(UTC))
    frame = pl.DataFrame(
        {
            "request_id": [item.request_id for item in body.labels],
            "row": pl.Series([item.row for item in body.labels], dtype=pl.Int64),
            "label": pl.from_arrow(natural_column([item.label for item in body.labels])),
            "timestamp": pl.Series(stamps, dtype=pl.Datetime("us", "UTC")),
        }
    )
    logged = log_feedback(store, endpoint, frame)
    return {"endpoint": endpoint, "rows": logged.rows}
