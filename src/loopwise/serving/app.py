"""The prediction app: ``POST /predict``, ``/health``, ``/ready``, ``/model``, ``/metrics``.

Every mistake in a request is a 4xx with ``{"error": {"type": ..., "message": ...}}``:

- 400 ``invalid_json``: the body is not JSON;
- 400 ``invalid_request``: the body is not an object with ``inputs`` (records or columns), or
  ``proba`` is not a boolean. The body is parsed here rather than by pydantic, so a missing
  ``inputs`` is a 400 like every other request mistake, not FastAPI's 422;
- 400 ``invalid_input``: the inputs do not match the model signature (missing, unexpected or
  mistyped columns), or the model rejected the values (a ``ValueError`` from its predict,
  such as a missing value given to a model that cannot take one);
- 413 ``payload_too_large``, 404 ``not_found``, 405 ``method_not_allowed``;
- 503 ``not_ready`` while no model is loaded.

Anything else raised by the model is a 500 ``internal_error`` with a generic message; the
traceback is logged with the request id.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from loopwise.errors import InvalidInput, LoopwiseError
from loopwise.ids import new_id
from loopwise.serving.live_model import LiveModel, Snapshot
from loopwise.serving.metrics import ServingMetrics

logger = logging.getLogger(__name__)

_STATUS_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


class _RequestError(Exception):
    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _error(status: int, type_: str, message: str, request_id: str | None = None) -> Response:
    error = {"type": type_, "message": message}
    if request_id is not None:
        error["request_id"] = request_id
    return _json({"error": error}, status)


def create_app(live: LiveModel, *, max_body_bytes: int = 1_000_000) -> FastAPI:
    """An app answering predictions with ``live``'s current model (see the module doc)."""
    if not isinstance(max_body_bytes, int) or max_body_bytes <= 0:
        raise InvalidInput(
            "The 'max_body_bytes' parameter of create_app must be an int > 0. "
            f"Got {max_body_bytes!r} instead."
        )
    metrics = ServingMetrics(live)
    app = FastAPI(
        title="loopwise serving",
        description=f"Predictions from `{live.uri}`, following its alias.",
    )
    app.state.live = live
    app.state.metrics = metrics

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        type_ = _STATUS_TYPES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = (
                f"no route {request.url.path!r}; use POST /predict, GET /health, /ready, "
                "/model, /metrics or /docs."
            )
        return _error(exc.status_code, type_, message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error(400, "invalid_request", str(exc.errors()))

    @app.get("/health", summary="The process is alive (always 200)")
    async def health() -> Response:
        return _json({"status": "ok"})

    @app.get("/ready", summary="200 when a model is loaded, else 503")
    async def ready() -> Response:
        snap = live.current
        if snap is None:
            return _error(503, "not_ready", f"no model loaded yet for {live.uri}.")
        return _json({"status": "ready", "model": snap.label})

    @app.get("/model", summary="What is live: version, signature, last load error")
    async def model() -> Response:
        return _json(live.status())

    @app.get("/metrics", summary="Prometheus metrics (text format)")
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.post(
        "/predict",
        summary="Predict on records or columns",
        description=_predict_description(live),
        openapi_extra=_predict_openapi(live),
    )
    async def predict(request: Request) -> Response:
        request_id = new_id()
        snap = live.current
        label = snap.label if snap is not None else "none"
        start = time.perf_counter()
        metrics.in_flight.inc()
        try:
            if snap is None:
                raise _RequestError(503, "not_ready", f"no model loaded yet for {live.uri}.")
            inputs, proba = _parse(await _read_body(request, max_body_bytes))
            body = await run_in_threadpool(_answer, snap, inputs, proba)
        except Exception as e:
            status, type_, message = _classify(e, request_id)
            if type_ == "internal_error":
                logger.exception("prediction request %s failed in model %s", request_id, label)
            metrics.requests.labels(label, "client_error" if status < 500 else "server_error").inc()
            metrics.errors.labels(type_).inc()
            return _error(status, type_, message, request_id)
        finally:
            metrics.in_flight.dec()
            metrics.latency.labels(label).observe(time.perf_counter() - start)
        metrics.requests.labels(label, "ok").inc()
        body["request_id"] = request_id
        return _json(body)

    return app


def _classify(e: Exception, request_id: str) -> tuple[int, str, str]:
    """HTTP status, error type and message for an exception raised while answering."""
    if isinstance(e, _RequestError):
        return e.status, e.type, e.message
    if isinstance(e, InvalidInput):
        return 400, "invalid_input", str(e)
    if isinstance(e, LoopwiseError) and e.http_status < 500:
        return e.http_status, type(e).__name__, str(e)
    if isinstance(e, ValueError):  # the model refused the values (e.g. NaN into a linear model)
        return 400, "invalid_input", f"the model rejected the input: {e}"
    return (
        500,
        "internal_error",
        (f"the model failed on this request; see the server log for request {request_id}."),
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _RequestError(
            413, "payload_too_large", f"the body is {declared} bytes; the limit is {limit}."
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _RequestError(
                413, "payload_too_large", f"the body is over the limit of {limit} bytes."
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(raw: bytes) -> tuple[Any, bool]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise _RequestError(400, "invalid_json", f"the body is not valid JSON: {e}.") from None
    if not isinstance(body, dict) or "inputs" not in body:
        raise _RequestError(
            400,
            "invalid_request",
            'the body must be a JSON object with "inputs": a list of records '
            '([{"col": 1, ...}, ...]) or columns ({"col": [1, 2], ...}).',
        )
    inputs = body["inputs"]
    records = isinstance(inputs, list) and all(isinstance(r, dict) for r in inputs)
    if not (records or isinstance(inputs, dict)) or not inputs:
        raise _RequestError(
            400,
            "invalid_request",
            '"inputs" must be a non-empty list of records ([{"col": 1, ...}, ...]) or an '
            f'object of columns ({{"col": [1, 2], ...}}); got {json.dumps(inputs)[:80]}.',
        )
    proba = body.get("proba", False)
    if not isinstance(proba, bool):
        message = f'"proba" must be true or false, got {json.dumps(proba)}.'
        raise _RequestError(400, "invalid_request", message)
    return inputs, proba


def _answer(snap: Snapshot, inputs: Any, proba: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"predictions": snap.model.predict(inputs).tolist()}
    if proba:
        body["probabilities"] = snap.model.predict_proba(inputs).tolist()
    body["model"] = snap.label
    return body


def _predict_description(live: LiveModel) -> str:
    text = (
        'Send `{"inputs": [{...}, ...]}` (records) or `{"inputs": {"col": [...], ...}}` '
        '(columns); add `"proba": true` for class probabilities.'
    )
    snap = live.current
    if snap is not None and snap.model.signature is not None:
        columns = "\n".join(f"- `{c.name}`: {c.type}" for c in snap.model.signature.inputs)
        text += f"\n\nInput columns of {snap.label} (when the app was created):\n\n{columns}"
    return text


def _predict_openapi(live: LiveModel) -> dict[str, Any]:
    snap = live.current
    signature = snap.model.signature if snap is not None else None
    example_row = {c.name: 0 for c in signature.inputs} if signature is not None else {}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["inputs"],
                        "properties": {
                            "inputs": {"oneOf": [{"type": "array"}, {"type": "object"}]},
                            "proba": {"type": "boolean", "default": False},
                        },
                    },
                    "example": {"inputs": [example_row]},
                }
            },
        }
    }
