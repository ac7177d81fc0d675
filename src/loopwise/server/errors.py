"""Every refusal of the REST API as one JSON shape: ``{"error": {"code", "message"}}``.

A caller's mistake is a 4xx whose ``code`` is stable (the ``LoopwiseError`` class in
snake case: ``invalid_input``, ``not_found``, ``conflict``, ``unauthorized`` ...) and whose
message names the problem and the fix. A 5xx means a bug or an unreachable store; it is
logged with its traceback, and the body never carries one.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from loopwise.errors import LoopwiseError

logger = logging.getLogger(__name__)

_CODES_BY_STATUS = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    503: "store_unavailable",
}


def error_code(error: LoopwiseError) -> str:
    """The error's class in snake case: ``InvalidInput`` -> ``invalid_input``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one error body of the API."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def _validation_message(error: RequestValidationError) -> str:
    """One line per problem, naming where it is (``body.metrics[3].value``) and what is wrong."""
    parts = []
    for problem in error.errors()[:5]:
        where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {problem.get('msg', 'is not valid')}")
    more = len(error.errors()) - 5
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "") + "."


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the JSON error body with the right status."""

    @app.exception_handler(LoopwiseError)
    async def _loopwise(request: Request, error: LoopwiseError) -> JSONResponse:
        status = error.http_status
        if status >= 500:
            logger.error("%s %s: %s", request.method, request.url.path, error)
        return error_response(status, error_code(error), str(error))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid_input", _validation_message(error))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _CODES_BY_STATUS.get(error.status_code, "error")
        message = error.detail if isinstance(error.detail, str) else str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}; see /api/v1/openapi.json."
        if error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}."
        return error_response(error.status_code, code, message, dict(error.headers or {}))

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return error_response(
            500, "internal", "the server failed on this request; its log has the traceback."
        )
