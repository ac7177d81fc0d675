"""``/api/v1`` routes for endpoints and their prediction log: the endpoints with a log, the
predictions in a time range (JSON pages, or the whole range as Parquet), logging a frame of
predictions, one request's trace, feedback labels and compaction. The remote client
(:mod:`loopwise.client.predictions`) calls them for ``lw.read_predictions`` and the rest.

Reads need ``read``; logging predictions and compaction need ``write``. Logging feedback
needs ``feedback`` *or* ``write``: the systems that learn the ground truth are often the
ones that call ``/predict`` (role ``predict``, which grants ``feedback``), and a pipeline
with a ``write`` token may backfill labels too. A ``read`` token is refused.

Predictions come a page at a time, oldest first (by time, then request id, row, shadow,
model and variant, so the order never depends on how the log's files were merged). A page
reads the log an hour at a time, more hours while they are empty, and at most
:data:`SCAN_US` of it: over a long, sparse range a page may hold fewer rows than asked,
even none, with a ``next_page_token`` to go on from. Every JSON answer is plain JSON: times
as ISO 8601 in UTC, NaN and infinities as null. ``GET .../predictions.parquet`` answers a
whole range as one Parquet file with the columns and types of a local read (the server
reads the range into memory once, as a local read does, and streams the encoded file).

A frame of predictions arrives as Parquet (``Content-Type: application/vnd.apache.parquet``),
streamed to a temporary file under the upload limit of :mod:`.artifacts` (413 beyond it, and
beyond :data:`MAX_DECODED_BYTES` once decoded), and is logged as ``log_predictions`` logs it.

Scoped tokens: the log records which model answered each row, but an endpoint's models are
only known by reading its log. So a token limited to model patterns may read rows (a page,
a range, a trace) only when every model those rows name is in its scope (403 naming its
patterns and the model otherwise; rows logged without a model name none), and may log
predictions only for a model in its scope. Feedback and compaction touch rows of any model
the endpoint logged, so they need a token whose model patterns include ``*`` (or no
scope). The list of endpoint names is not filtered.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from starlette.concurrency import run_in_threadpool

from loopwise.auth.tokens import TokenInfo
from loopwise.clock import exact_us, now
from loopwise.errors import Forbidden, InvalidInput, NotFound
from loopwise.ids import id_time_ms, is_id
from loopwise.predictions.compaction import compact_predictions
from loopwise.predictions.files import (
    FALLBACK,
    HOUR_US,
    MAX_US,
    MIN_US,
    check_endpoint,
    natural_column,
    require_endpoint,
)
from loopwise.predictions.log import (
    log_feedback,
    log_predictions,
    prediction_endpoints,
    read_feedback,
    read_predictions_frame,
)
from loopwise.predictions.tracing import trace_prediction
from loopwise.server import uploads
from loopwise.server.access import check_model, model_scope, needs, store_of
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
#: The media type of a frame of predictions, sent and answered (the first is the one named).
PARQUET = "application/vnd.apache.parquet"
_PARQUET_TYPES = frozenset({PARQUET, "application/x-parquet"})
#: The most a Parquet upload may decode to (what its footer declares): a frame held in memory.
MAX_DECODED_BYTES = 2 * 1024**3
#: The longest ``settle`` of a compaction, in seconds (about 300 years: no log is older).
MAX_SETTLE_S = 10**10
_CHUNK = 1024 * 1024

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


def _model_name(label: str) -> str:
    """The model name of a logged label: ``credit-risk`` of ``credit-risk/3``."""
    name, slash, number = label.rpartition("/")
    return name if slash and number.isdigit() else label


def _check_models(request: Request, endpoint: str, labels: Iterable[Any]) -> None:
    """403 unless a model-scoped token reaches every model ``labels`` (logged ``model``
    values) name; the fallback and rows without a model name none."""
    if model_scope(request) is None:
        return
    for label in sorted({x for x in labels if isinstance(x, str) and x != FALLBACK}):
        try:
            check_model(request, _model_name(label))
        except Forbidden as e:
            raise Forbidden(
                f"{e} (endpoint {endpoint!r} logged predictions of {label!r})"
            ) from None


def _check_whole_log(request: Request, endpoint: str, action: str) -> None:
    """403 for a token whose model patterns do not reach every model: ``action`` touches
    rows of any model the endpoint logged, which only a read of its whole log would tell."""
    token = model_scope(request)
    if token is None or "*" in (token.models or ()):
        return
    patterns = ", ".join(map(repr, token.models or ())) or "none"
    raise Forbidden(
        f"The API token {token.name!r} is limited to models matching {patterns}; {action} "
        f"endpoint {endpoint!r} touches rows of every model it logged, which the server "
        "cannot tell apart without reading its whole log. Use a token whose --models "
        "patterns include '*', or one without a scope."
    )


# -- endpoints and the log ---------------------------------------------------------------------


@router.get("/endpoints", dependencies=[Depends(needs("read"))])
def list_endpoints(store: Store = Depends(store_of)) -> dict[str, Any]:
    """The endpoints that have a prediction log (or feedback), by name."""
    return {"endpoints": [{"name": n} for n in prediction_endpoints(store)]}


@router.get("/endpoints/{name}/predictions", dependencies=[Depends(needs("read"))])
def list_predictions(
    name: EndpointName,
    request: Request,
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
    _check_models(request, endpoint, (r.get("model") for r in rows))
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


# -- whole frames, as Parquet ----------------------------------------------------------------


ModelLabel = Annotated[
    Text | None,
    Query(
        min_length=1,
        max_length=300,
        description="The model that made the predictions: 'name/version' (a registered "
        "model's version, or a model served elsewhere); none: no model.",
    ),
]
ModelVersionId = Annotated[
    Text | None,
    Query(
        min_length=1,
        max_length=200,
        description="The id of the version 'model' names (a ModelVersion's id), recorded "
        "as given; without it a registered model's id is looked up.",
    ),
]
Variant = Annotated[
    Text, Query(min_length=1, max_length=200, description="The variant the rows are logged as.")
]


@router.post(
    "/endpoints/{name}/predictions",
    dependencies=[Depends(needs("write"))],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {PARQUET: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def post_predictions(
    name: EndpointName,
    request: Request,
    model: ModelLabel = None,
    model_version_id: ModelVersionId = None,
    variant: Variant = "batch",
    timestamp: TimeParam = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """Log a frame of predictions sent as Parquet (a ``prediction`` column and the feature
    columns, optionally ``request_id``, ``row``, ``timestamp``, ``probabilities``,
    ``latency_ms``), as ``lw.log_predictions`` logs it; ``timestamp`` applies to every row
    when the frame has no such column (default: now)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in _PARQUET_TYPES:
        raise HTTPException(
            415,
            f"A frame of predictions is sent as Parquet with Content-Type {PARQUET}; got "
            f"{kind[:100] or 'none'!r}. Write the frame with DataFrame.write_parquet / "
            "to_parquet and send its bytes.",
        )
    endpoint = check_endpoint(name, "log_predictions")
    note_entity(request, f"endpoints:/{endpoint}")
    if model is not None:
        _check_models(request, endpoint, [model])
    at = moment(timestamp, "timestamp")
    temp = await uploads.receive(
        request,
        lambda limit: _too_large(endpoint, limit),
        prefix="loopwise-predictions-",
        suffix=".parquet",
    )
    try:
        frame = await run_in_threadpool(_read_frame, temp)
    finally:
        temp.unlink()
    logged = await run_in_threadpool(
        partial(
            log_predictions,
            model=model,
            model_version_id=model_version_id,
            variant=variant,
            timestamp=at,
        ),
        store,
        endpoint,
        frame,
    )
    return {"endpoint": endpoint, **logged.to_dict()}


def _too_large(endpoint: str, limit: int) -> HTTPException:
    return HTTPException(
        413,
        f"The frame of predictions for endpoint {endpoint!r} is larger than this server's "
        f"limit of {limit:,} bytes; send it in parts (a log_predictions call each), or ask "
        "the server's operator to raise the limit.",
    )


def _read_frame(path: str) -> pl.DataFrame:
    """The uploaded Parquet file as a frame; a 400 naming the problem when it is not one,
    a 413 when its footer declares more than :data:`MAX_DECODED_BYTES` of data."""
    try:
        metadata = pq.ParquetFile(path).metadata
    except (pa.ArrowException, OSError, ValueError) as e:
        raise InvalidInput(
            f"The body is not a readable Parquet file ({_first_line(e)}); send the bytes "
            "DataFrame.write_parquet / to_parquet writes."
        ) from None
    decoded = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if decoded > MAX_DECODED_BYTES:
        raise HTTPException(
            413,
            f"The Parquet file declares {decoded:,} bytes of data, more than this server "
            f"decodes at once ({MAX_DECODED_BYTES:,}); send the frame in parts.",
        )
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, pa.ArrowException, OSError, ValueError) as e:
        raise InvalidInput(
            f"The Parquet file could not be read as a frame ({_first_line(e)}); send the "
            "bytes DataFrame.write_parquet / to_parquet writes."
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


@router.get("/endpoints/{name}/predictions.parquet", dependencies=[Depends(needs("read"))])
def download_predictions(
    name: EndpointName,
    request: Request,
    start: TimeParam = None,
    end: TimeParam = None,
    store: Store = Depends(store_of),
) -> StreamingResponse:
    """The predictions with a time in [start, end) (either side may be left out: unbounded)
    joined with their feedback, as one Parquet file: the columns and types of
    ``lw.read_predictions``, sorted by time."""
    endpoint = _endpoint(store, name)
    first, last = moment(start, "start"), moment(end, "end")
    if first is not None and last is not None and last < first:
        raise InvalidInput(
            f"end {end!r} is before start {start!r}; the range is [start, end): give an end "
            "at or after its start."
        )
    frame = read_predictions_frame(store, endpoint, first, last)
    _check_models(request, endpoint, frame["model"].unique().to_list())
    sink = io.BytesIO()
    frame.write_parquet(sink)
    data = sink.getbuffer()
    return StreamingResponse(
        _slices(data),
        media_type=PARQUET,
        headers={
            "content-length": str(len(data)),
            "content-disposition": f'attachment; filename="{endpoint}-predictions.parquet"',
        },
    )


def _slices(data: memoryview) -> Iterator[bytes]:
    for at in range(0, len(data), _CHUNK):
        yield bytes(data[at : at + _CHUNK])


# -- one request ----------------------------------------------------------------------------


@router.get("/endpoints/{name}/trace/{request_id:path}", dependencies=[Depends(needs("read"))])
def trace_request(
    name: EndpointName,
    request_id: Annotated[
        str, Path(max_length=256, description="The request's id (a '/' in it as %2F).")
    ],
    request: Request,
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
    shadow_models = trace.shadows["model"] if "model" in trace.shadows.columns else ()
    _check_models(request, endpoint, [trace.model, *shadow_models])
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
    """Log ground-truth labels for requests of an endpoint that has a prediction log; the
    answer says how many rows were written, to which files (as ``lw.log_feedback``)."""
    endpoint = _endpoint(store, name)
    note_entity(request, f"endpoints:/{endpoint}")
    require_endpoint(store.artifacts, endpoint)
    _check_whole_log(request, endpoint, "logging feedback for")
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
    return {"endpoint": endpoint, **logged.to_dict()}


# -- compaction -------------------------------------------------------------------------------


class CompactIn(BaseModel):
    """``POST /endpoints/{name}/compact``: the range of hours to merge and how long ago an
    hour must have ended (a duration such as ``"10m"``, or seconds)."""

    model_config = ConfigDict(extra="forbid")
    start: str | None = Field(default=None, max_length=64, description="ISO 8601 with a zone.")
    end: str | None = Field(default=None, max_length=64, description="ISO 8601 with a zone.")
    settle: Annotated[str, Field(max_length=32)] | StrictInt | StrictFloat = Field(
        default="10m", description="A duration such as 10m or 1h, or a number of seconds >= 0."
    )


@router.post("/endpoints/{name}/compact", dependencies=[Depends(needs("write"))])
def compact(
    name: EndpointName, body: CompactIn, request: Request, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """Merge each closed hour of the endpoint's prediction log and feedback in [start, end)
    into one file per hour, as ``lw.compact_predictions`` does; safe while it serves."""
    endpoint = _endpoint(store, name)
    note_entity(request, f"endpoints:/{endpoint}")
    require_endpoint(store.artifacts, endpoint)
    _check_whole_log(request, endpoint, "compacting the prediction log of")
    settle: str | timedelta = body.settle  # type: ignore[assignment]
    if not isinstance(settle, str):
        if not 0 <= settle <= MAX_SETTLE_S:
            raise InvalidInput(
                f"settle {settle!r} is not a number of seconds from 0 to {MAX_SETTLE_S:,}; "
                "send seconds in that range or a duration such as '10m'."
            )
        settle = timedelta(seconds=settle)
    first, last = moment(body.start, "start"), moment(body.end, "end")
    return compact_predictions(store, endpoint, first, last, settle=settle).to_dict()
