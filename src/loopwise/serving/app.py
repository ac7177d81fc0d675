"""The prediction app: ``POST /predict`` and ``/feedback``, ``GET /health``, ``/ready``,
``/model`` and ``/metrics``, over an :class:`~loopwise.serving.endpoint.Endpoint`; and the
API documentation (``/openapi.json``, ``/docs``, ``/redoc``) as the config's ``docs`` key
says (see :mod:`.api_docs`).

A prediction is routed to a variant (by weight, sticky by ``routing_key``), answered, then
logged and mirrored to the shadows after the answer is built; neither the log nor the
shadows do I/O on the request path. While the model flag is off (or for the walking
skeleton) the endpoint answers its fallback with variant ``"fallback"``.

Every mistake in a request is a 4xx with ``{"error": {"type": ..., "message": ...}}``:

- 415 ``unsupported_media_type``: a ``POST`` whose body is not declared as JSON
  (``Content-Type: application/json``); see :mod:`.request_io` for why;
- 400 ``invalid_json``: the body is not JSON, or nests deeper than 32 levels;
- 400 ``invalid_request``: the body is not an object with ``inputs`` (records or columns),
  ``proba`` is not a boolean, or a feedback body lacks ``request_id`` / ``label``. Bodies
  are parsed here rather than by pydantic, so a missing field is a 400 like every other
  request mistake, not FastAPI's 422;
- 400 ``invalid_input``: the inputs do not match the model signature (missing, unexpected or
  mistyped columns, an infinity, an integer out of its column's range), or the model
  rejected the values (a ``ValueError`` from its predict, such as a missing value given to
  a model that cannot take one);
- 400 ``invalid_request`` on ``/feedback``: a label that is not a finite number, text of at
  most ``MAX_LABEL_CHARS`` characters or true/false, or a ``request_id`` that is not an id
  ``/predict`` makes;
- 401 ``Unauthorized`` / 403 ``Forbidden`` when API tokens are enabled (on the docs too,
  under ``docs: token``);
- 404 ``unknown_request``: feedback for a request id this endpoint never answered, and
  ``unknown_row``: for a ``row`` past the rows of the request it labels;
- 409 ``log_disabled``: feedback to an endpoint without a prediction log;
- 413 ``payload_too_large``, 404 ``not_found``, 405 ``method_not_allowed``;
- 503 ``not_ready`` while no model is loaded.

``POST /predict`` skips Starlette's middleware and router (see :mod:`.direct_route`); the
FastAPI route of the same handler documents it and answers when middleware is added.

Anything else raised by the model is a 500 ``internal_error`` with a generic message; the
traceback is logged with the request id (every 500, on every route, is logged).

Answers are strict JSON: a prediction or probability that is not a finite number (a
regressor overflowing to infinity) is answered as ``null``, its row listed in
``non_finite_rows`` and counted in ``loopwise_predict_non_finite_total``. The browser's
cross-origin rules apply as they are (no CORS headers) unless the config lists
``cors_origins``.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from loopwise.errors import InvalidInput, LoopwiseError
from loopwise.ids import is_id, new_id
from loopwise.serving.api_docs import add_docs_routes
from loopwise.serving.direct_route import PredictionApp
from loopwise.serving.endpoint import FALLBACK, Endpoint
from loopwise.serving.endpoint_config import DOCS_MODES
from loopwise.serving.live_model import LiveModel
from loopwise.serving.metrics import ServingMetrics
from loopwise.serving.openapi_spec import (
    feedback_openapi,
    metrics_openapi,
    predict_openapi,
    status_openapi,
)
from loopwise.serving.request_io import (
    MAX_LABEL_CHARS,
    RequestError,
    parse_json,
    read_body,
    require_json,
)

logger = logging.getLogger(__name__)

_STATUS_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
_INT64 = (-(2**63), 2**63 - 1)
# one strict encoder: json.dumps(allow_nan=False) would build a new one on every call
_STRICT = json.JSONEncoder(allow_nan=False)


def _json(body: Any, status: int = 200) -> Response:
    return Response(_dumps(body), status_code=status, media_type="application/json")


def _dumps(body: Any) -> bytes:
    """Strict JSON (no bare NaN or Infinity); a non-finite number becomes null."""
    try:
        return _STRICT.encode(body).encode()
    except ValueError:
        return _STRICT.encode(_finite(body)).encode()


def _finite(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _flag_non_finite(body: dict[str, Any]) -> int:
    """Answer non-finite predictions and probabilities as null, listing their rows in
    ``non_finite_rows``; the number of rows flagged. (Called only when strict encoding
    failed, so an answer of finite numbers costs nothing more.)"""
    rows: set[int] = set()
    for key in ("predictions", "probabilities"):
        if key in body:
            cleaned = [_finite(v) for v in body[key]]
            rows.update(
                i for i, (a, b) in enumerate(zip(cleaned, body[key], strict=True)) if a != b
            )
            body[key] = cleaned
    body["non_finite_rows"] = sorted(rows)
    return len(rows)


def _error(status: int, type_: str, message: str, request_id: str | None = None) -> Response:
    error = {"type": type_, "message": message}
    if request_id is not None:
        error["request_id"] = request_id
    response = _json({"error": error}, status)
    if status == 401:  # RFC 6750: say which scheme the endpoint expects
        response.headers["WWW-Authenticate"] = 'Bearer realm="loopwise"'
    return response


def create_app(
    endpoint: Endpoint | LiveModel,
    *,
    max_body_bytes: int | None = None,
    docs: str | None = None,
    stop_on_shutdown: bool = False,
) -> PredictionApp:
    """An app answering predictions for ``endpoint`` (see the module doc).

    ``endpoint`` is an :class:`Endpoint` (variants, shadows, flag, log, tokens) or, for one
    model and nothing else, a started :class:`LiveModel`. ``max_body_bytes`` and ``docs``
    (``"token"``, ``"public"`` or ``"off"``: who may read the API documentation) override
    the endpoint config's. With ``stop_on_shutdown``, the server's shutdown stops the
    endpoint (and so writes its prediction log): for worker processes that own it.
    """
    if isinstance(endpoint, LiveModel):
        endpoint = Endpoint.single(endpoint)
    if not isinstance(endpoint, Endpoint):
        raise InvalidInput(
            f"create_app takes an Endpoint or a LiveModel; got {type(endpoint).__name__}."
        )
    limit = endpoint.config.max_body_bytes if max_body_bytes is None else max_body_bytes
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise InvalidInput(
            "The 'max_body_bytes' parameter of create_app must be an int > 0. "
            f"Got {limit!r} instead."
        )
    docs = endpoint.config.docs if docs is None else docs
    if not isinstance(docs, str) or docs not in DOCS_MODES:
        raise InvalidInput(
            "The 'docs' parameter of create_app must be one of "
            f"{', '.join(map(repr, DOCS_MODES))}. Got {docs!r} instead."
        )
    metrics = ServingMetrics(endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if stop_on_shutdown:
                await run_in_threadpool(endpoint.stop)

    app = PredictionApp(
        title="loopwise serving",
        description=_app_description(endpoint),
        lifespan=lifespan,
        openapi_url=None,  # served by api_docs, behind the token check
        docs_url=None,
        redoc_url=None,
    )
    if endpoint.config.cors_origins:  # (middleware: /predict then takes the routed path)
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(endpoint.config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Routing-Key"],
        )
    app.max_body_bytes = limit
    app.state.endpoint = endpoint
    app.state.metrics = metrics
    log = endpoint.log

    def authorize(header: Callable[[str], str | None], permission: str) -> None:
        auth = endpoint.auth
        if auth is not None and auth.enabled:
            auth.authenticate(header("authorization"), permission)

    def refusal(request: Request, permission: str) -> Response | None:
        """None when ``request`` may use a route needing ``permission``, else the 401/403."""
        try:
            authorize(request.headers.get, permission)
        except Exception as e:
            return _error(*_classify(e, None))
        return None

    routes = "POST /predict, POST /feedback, GET /health, /ready, /model"
    routes += " or /metrics" if docs == "off" else ", /metrics or /docs"

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        type_ = _STATUS_TYPES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.url.path!r}; use {routes}."
        elif exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
            message = (
                f"{request.method} {request.url.path} is not served; use {exc.headers['Allow']}."
            )
        response = _error(exc.status_code, type_, message)
        response.headers.update(exc.headers or {})  # 405: Allow
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error(400, "invalid_request", str(exc.errors()))

    @app.get(
        "/health",
        summary="The process is alive (always 200)",
        openapi_extra=status_openapi('{"status": "ok"}'),
    )
    async def health() -> Response:
        return _json({"status": "ok"})

    @app.get(
        "/ready",
        summary="200 when every variant is loaded (or the fallback serves)",
        openapi_extra=status_openapi(
            "Ready: the model (or fallback) each variant answers with.", 503
        ),
    )
    async def ready() -> Response:
        if not endpoint.ready:
            return _error(503, "not_ready", f"endpoint {endpoint.name!r} has no model loaded.")
        labels = {
            v.name: v.live.current.label if v.live.current is not None else None
            for v in endpoint.variants
        }
        model = next(iter(labels.values())) if endpoint.model_enabled else FALLBACK
        body = {"status": "ready", "endpoint": endpoint.name, "model": model}
        return _json(body | {"variants": labels})

    @app.get(
        "/model",
        summary="What is live: variants, versions, flag, last load errors",
        openapi_extra=status_openapi("The variants, their versions and the flag.", 401, 403),
    )
    async def model(request: Request) -> Response:
        if (refused := refusal(request, "read")) is not None:
            return refused
        return _json(endpoint.status())

    @app.get(
        "/metrics",
        summary="Prometheus metrics (text format)",
        response_class=Response,
        openapi_extra=metrics_openapi(),
    )
    async def prometheus(request: Request) -> Response:
        if (refused := refusal(request, "read")) is not None:
            return refused
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    async def answer_predict(
        header: Callable[[str], str | None], read_body: Callable[[], Awaitable[bytes]]
    ) -> Response:
        """The answer to one ``POST /predict``, from its headers and body reader."""
        request_id = new_id()
        timestamp_us = time.time_ns() // 1000
        start = time.perf_counter()
        variant, label = None, "none"
        metrics.in_flight.inc()
        try:
            authorize(header, "predict")
            require_json(header("content-type"))
            inputs, proba, key = _parse(await read_body())
            routing_key = header("x-routing-key")
            variant, snap = endpoint.route(key if routing_key is None else routing_key)
            if snap is not None:
                label = snap.label
                body = await endpoint.batcher.predict(snap, inputs, proba)
            elif variant == FALLBACK:
                label = FALLBACK
                body = _fallback(endpoint, inputs)
            else:
                raise RequestError(503, "not_ready", f"no model loaded yet for {endpoint.name!r}.")
        except Exception as e:
            status, type_, message = _classify(e, request_id)
            if type_ == "internal_error":
                logger.exception("prediction request %s failed in model %s", request_id, label)
            outcome = "client_error" if status < 500 else "server_error"
            metrics.requests.labels(variant or "none", label, outcome).inc()
            metrics.errors.labels(type_).inc()
            elapsed = time.perf_counter() - start
            metrics.latency.labels(variant or "none", label).observe(elapsed)
            if log is not None:
                log.log_error(
                    request_id=request_id,
                    timestamp_us=timestamp_us,
                    variant=variant,
                    model=None if label == "none" else label,
                    error_type=type_,
                    latency_ms=elapsed * 1000,
                )
            return _error(status, type_, message, request_id)
        finally:
            metrics.in_flight.dec()
        body["request_id"] = request_id
        body["variant"] = variant
        try:
            payload = _STRICT.encode(body).encode()
        except ValueError:  # a prediction that is not a finite number: null, and flagged
            metrics.non_finite.labels(variant, label).inc(_flag_non_finite(body))
            payload = _dumps(body)
        elapsed = time.perf_counter() - start
        metrics.requests.labels(variant, label, "ok").inc()
        metrics.latency.labels(variant, label).observe(elapsed)
        if log is not None:
            log.log_request(
                request_id=request_id,
                timestamp_us=timestamp_us,
                variant=variant,
                model=label,
                model_version_id=snap.version.id if snap is not None else None,
                inputs=inputs,
                outputs=body["predictions"],
                probabilities=body.get("probabilities"),
                latency_ms=elapsed * 1000,
            )
        if snap is not None:
            endpoint.mirror(inputs, request_id, timestamp_us)
        return Response(payload, media_type="application/json")

    @app.post(
        "/predict",
        summary="Predict on records or columns",
        description=_predict_description(endpoint),
        openapi_extra=predict_openapi(_signature(endpoint)[1], _example_row(endpoint)),
    )
    async def predict(request: Request) -> Response:
        # (reached when the app runs under middleware of its own; else the direct route)
        return await answer_predict(request.headers.get, lambda: read_body(request, limit))

    app.direct_predict = answer_predict

    @app.post(
        "/feedback",
        summary="Record the ground truth of an earlier request",
        description='Send `{"request_id": "<from /predict>", "label": <the true answer>}`, '
        'and `"row"` to label one row of a request of several.',
        openapi_extra=feedback_openapi(),
    )
    async def feedback(request: Request) -> Response:
        try:
            authorize(request.headers.get, "feedback")
            if log is None:
                raise RequestError(
                    409,
                    "log_disabled",
                    f"endpoint {endpoint.name!r} keeps no prediction log, so feedback cannot "
                    "be joined to anything; enable 'log' in the endpoint config.",
                )
            require_json(request.headers.get("content-type"))
            request_id, label, row = _parse_feedback(await read_body(request, limit))
            rows = await run_in_threadpool(log.request_rows, request_id)
            if rows is None:
                raise RequestError(
                    404,
                    "unknown_request",
                    f"no prediction with request_id {request_id!r} on endpoint "
                    f"{endpoint.name!r}; send the request_id that /predict answered.",
                )
            if row is not None and row >= rows:
                raise RequestError(
                    404,
                    "unknown_row",
                    f'"row" is {row}, but request {request_id} had {rows} row(s); send a row '
                    f'in 0..{rows - 1}, or leave "row" out to label every row.',
                )
            log.log_feedback(request_id, _as_model_label(endpoint, label), row=row)
        except Exception as e:
            status, type_, message = _classify(e, None)
            if type_ == "internal_error":
                logger.exception("feedback request failed on endpoint %s", endpoint.name)
            metrics.errors.labels(type_).inc()
            return _error(status, type_, message)
        metrics.feedback.inc()
        return _json({"status": "recorded", "request_id": request_id})

    add_docs_routes(app, docs, lambda request: refusal(request, "read"))
    return app


def _classify(e: Exception, request_id: str | None) -> tuple[int, str, str]:
    """HTTP status, error type and message for an exception raised while answering."""
    if isinstance(e, RequestError):
        return e.status, e.type, e.message
    if isinstance(e, InvalidInput):
        return 400, "invalid_input", str(e)
    if isinstance(e, LoopwiseError) and e.http_status < 500:
        return e.http_status, type(e).__name__, str(e)
    if isinstance(e, ValueError):  # the model refused the values (e.g. NaN into a linear model)
        return 400, "invalid_input", _rejected(e, request_id)
    where = f" for request {request_id}" if request_id else ""
    return 500, "internal_error", f"the request failed; see the server log{where}."


def _rejected(e: ValueError, request_id: str | None) -> str:
    """What a caller is told when the model refused the values: not the library's own
    message, which names the model's class and internals (logged at debug instead)."""
    logger.debug("request %s: the model rejected the input: %s", request_id, e)
    text = str(e).lower()
    if "nan" in text or "missing" in text:
        return (
            "the model rejected the input: it cannot take missing values (null or NaN); "
            "send a value for every column."
        )
    if "infinity" in text or "too large" in text:
        return "the model rejected the input: a value is too large for it; send smaller ones."
    return (
        "the model rejected the input values; check them against the input columns "
        "GET /model lists."
    )


def _parse(raw: bytes) -> tuple[Any, bool, str | None]:
    body = parse_json(raw)
    if not isinstance(body, dict) or "inputs" not in body:
        raise RequestError(
            400,
            "invalid_request",
            'the body must be a JSON object with "inputs": a list of records '
            '([{"col": 1, ...}, ...]) or columns ({"col": [1, 2], ...}).',
        )
    inputs = body["inputs"]
    records = isinstance(inputs, list) and all(isinstance(r, dict) for r in inputs)
    columns = isinstance(inputs, dict) and all(v != [] for v in inputs.values())
    if not (records or columns) or not inputs:
        raise RequestError(
            400,
            "invalid_request",
            '"inputs" must be a non-empty list of records ([{"col": 1, ...}, ...]) or an '
            f'object of non-empty columns ({{"col": [1, 2], ...}}); got {json.dumps(inputs)[:80]}.',
        )
    proba = body.get("proba", False)
    if not isinstance(proba, bool):
        message = f'"proba" must be true or false, got {json.dumps(proba)}.'
        raise RequestError(400, "invalid_request", message)
    key = body.get("routing_key")
    if key is not None and (isinstance(key, bool) or not isinstance(key, str | int)):
        message = f'"routing_key" must be text or an integer, got {json.dumps(key)[:80]}.'
        raise RequestError(400, "invalid_request", message)
    return inputs, proba, None if key is None else str(key)


def _parse_feedback(raw: bytes) -> tuple[str, Any, int | None]:
    body = parse_json(raw)
    usage = 'send {"request_id": "<from /predict>", "label": <the true answer>}'
    if not isinstance(body, dict) or "request_id" not in body or "label" not in body:
        raise RequestError(400, "invalid_request", f"the body must be an object; {usage}.")
    unknown = sorted(set(body) - {"request_id", "label", "row"})
    if unknown:
        raise RequestError(400, "invalid_request", f"unknown fields {unknown}; {usage}.")
    request_id, label, row = body["request_id"], body["label"], body.get("row")
    if not isinstance(request_id, str) or not is_id(request_id):
        shown = json.dumps(request_id)[:80]
        raise RequestError(
            400, "invalid_request", f'"request_id" must be an id answered by /predict; got {shown}.'
        )
    label = _checked_label(label)
    if isinstance(row, float) and row.is_integer():  # JSON has one kind of number
        row = int(row)
    if row is not None and (isinstance(row, bool) or not isinstance(row, int) or row < 0):
        shown = json.dumps(row)[:80]
        raise RequestError(
            400,
            "invalid_request",
            f'"row" must be the index (≥ 0) of a row of the request; got {shown}.',
        )
    return request_id, label, row


def _checked_label(label: Any) -> Any:
    """``label`` as it is stored (an integer past int64 as a float), or a 400 saying why it
    cannot be a ground truth: a column of labels must keep one type in the log's files."""
    if isinstance(label, bool) or (isinstance(label, int) and _INT64[0] <= label <= _INT64[1]):
        return label
    if isinstance(label, int) and abs(label) <= sys.float_info.max:
        return float(label)
    if isinstance(label, float) and math.isfinite(label):
        return label
    if isinstance(label, str) and 0 < len(label) <= MAX_LABEL_CHARS:
        return label
    usage = f"must be a finite number, text of at most {MAX_LABEL_CHARS} characters or true/false"
    if isinstance(label, str):
        got = f"text of {len(label)} characters"
    elif isinstance(label, int):
        got = f"an integer of {len(str(abs(label)))} digits, past the float range"
    else:
        got = json.dumps(label)[:80]
    raise RequestError(400, "invalid_request", f'"label" {usage}; got {got}.')


def _as_model_label(endpoint: Endpoint, label: Any) -> Any:
    """``label`` written as the endpoint's models answer (``"1"`` -> ``1`` for a 0/1
    classifier), or a 400 when it is none of their labels (``1`` for a Yes/No model), so a
    stored ground truth can always be compared with the predictions it labels."""
    classes: list[Any] = []
    numeric_outputs = False
    for variant in endpoint.variants:
        snap = variant.live.current
        if snap is None:
            continue
        known = getattr(snap.model.raw, "classes_", getattr(snap.model.raw, "classes", None))
        if known is not None:
            classes.extend(np.asarray(known).tolist())
        signature = snap.model.signature
        if signature is not None and signature.outputs:
            numeric_outputs |= signature.outputs[0].type in ("float", "integer")
    if classes:
        for known_label in classes:
            if known_label == label and type(known_label) is type(label):
                return known_label
        for known_label in classes:  # 1.0 or True for 1, "1" for 1, 1 for "1"
            same_text = not isinstance(known_label, bool) and str(known_label) == str(label)
            if known_label == label or same_text:
                return known_label
        shown = ", ".join(json.dumps(c) for c in dict.fromkeys(classes))
        raise RequestError(
            400,
            "invalid_request",
            f'"label" {json.dumps(label)[:80]} is none of the labels the model answers '
            f"({shown}); send the true answer as the model would give it.",
        )
    if numeric_outputs and isinstance(label, str):
        raise RequestError(
            400,
            "invalid_request",
            f'"label" {json.dumps(label)[:80]} is text, but the model answers numbers; '
            "send the true value as a number.",
        )
    return label


def _rows(inputs: Any) -> int:
    if isinstance(inputs, list):
        return len(inputs)
    lengths = {len(v) if isinstance(v, list) else 1 for v in inputs.values()}
    if len(lengths) > 1:
        raise RequestError(400, "invalid_input", 'the columns of "inputs" have different lengths.')
    return lengths.pop()


def _fallback(endpoint: Endpoint, inputs: Any) -> dict[str, Any]:
    """The answer while no model serves: the config's fallback for every row."""
    return {"predictions": [endpoint.config.fallback] * _rows(inputs), "model": FALLBACK}


def _app_description(endpoint: Endpoint) -> str:
    if not endpoint.variants:
        return f"Endpoint `{endpoint.name}`: the walking skeleton (a constant answer)."
    models = ", ".join(f"`{v.live.uri}` ({v.name})" for v in endpoint.variants)
    return f"Endpoint `{endpoint.name}`: predictions from {models}, following their aliases."


def _signature(endpoint: Endpoint) -> Any:
    snap = endpoint.variants[0].live.current if endpoint.variants else None
    return (snap.label, snap.model.signature) if snap is not None else (None, None)


def _predict_description(endpoint: Endpoint) -> str:
    text = (
        'Send `{"inputs": [{...}, ...]}` (records) or `{"inputs": {"col": [...], ...}}` '
        '(columns); add `"proba": true` for class probabilities and `"routing_key"` (or the '
        "`X-Routing-Key` header) to keep a user on one variant."
    )
    label, signature = _signature(endpoint)
    if signature is not None:
        columns = "\n".join(f"- `{c.name}`: {c.type}" for c in signature.inputs)
        text += f"\n\nInput columns of {label} (when the app was created):\n\n{columns}"
    return text


def _example_row(endpoint: Endpoint) -> dict[str, Any]:
    _, signature = _signature(endpoint)
    return {c.name: 0 for c in signature.inputs} if signature is not None else {}
