"""Request bodies of the REST API, checked before any route sees them.

Every ``POST``/``PUT``/``PATCH`` under ``/api/v1`` must be JSON (``Content-Type:
application/json``, 415 otherwise: a JSON content type forces a browser's CORS preflight,
so no web page can make its visitors write to a server on their machine), at most
:data:`MAX_JSON_BYTES` (413), nested at most ``MAX_DEPTH`` levels, and strict JSON: the
``NaN``/``Infinity`` literals Python's decoder accepts, and numbers too large for a float,
and integers outside 64 bits, are refused (400) instead of being stored as values no
other client can read (or failing in the database).

Uploads are the exception (:data:`UPLOAD_PATHS`, e.g. an artifact's bytes): any content
type, streamed to the route without being held here.

The body is read once, checked, and handed on to the app unchanged, so routes declare
their bodies as Pydantic models as usual (and the OpenAPI document shows them).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

from loopwise.server.errors import error_response
from loopwise.serving.request_io import (
    MAX_DEPTH,
    RequestError,
    parse_json,
    receive_body,
    require_json,
)

MAX_JSON_BYTES = 64 * 1024 * 1024
#: Paths whose bodies are raw bytes, streamed to the route: a run's file, a dataset
#: version's Parquet, a model package's archive, a frame of logged predictions.
UPLOAD_PATHS = (
    re.compile(r"^/api/v1/runs/[^/]+/artifacts/.+$"),
    re.compile(r"^/api/v1/datasets/[^/]+/versions$"),
    re.compile(r"^/api/v1/models/[^/]+/versions$"),
    re.compile(r"^/api/v1/endpoints/[^/]+/predictions$"),
)
_WRITES = frozenset({"POST", "PUT", "PATCH"})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON; send null or a finite number")


def _int64(text: str) -> int:
    value = int(text)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"the integer {text[:40]} is outside the 64-bit range")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large for a float")
    return value


def check_strict(raw: bytes) -> Any:
    """``raw`` as strict JSON (no NaN/Infinity, no float overflow, depth bounded)."""
    try:
        json.loads(raw, parse_constant=_constant, parse_float=_finite_float, parse_int=_int64)
    except RecursionError:
        pass  # parse_json says it is too deep
    except ValueError as e:
        if any(word in str(e) for word in ("not JSON", "too large", "64-bit")):
            raise RequestError(400, "invalid_json", f"the body is not valid JSON: {e}.") from None
    return parse_json(raw)


class StrictBody:
    """ASGI middleware: the checks above for ``/api/v1`` writes."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_JSON_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_nul(scope):
            # No database text holds a NUL (PostgreSQL refuses it): a 400 here, not a 500.
            message = "the request's path or query contains a NUL byte (%00); remove it."
            await error_response(400, "invalid_input", message)(scope, receive, send)
            return
        if (
            scope["type"] != "http"
            or scope["method"] not in _WRITES
            or not scope["path"].startswith("/api/v1/")
            or any(p.match(scope["path"]) for p in UPLOAD_PATHS)
        ):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            raw = await receive_body(receive, headers.get("content-length"), self.max_bytes)
            if raw or headers.get("content-type"):
                require_json(headers.get("content-type"))
                value = check_strict(raw)
                if b"\\u0000" in raw and _holds_nul(value):
                    raise RequestError(
                        400, "invalid_json", "the body holds a NUL character (\\u0000); remove it."
                    )
        except RequestError as e:
            code = "invalid_input" if e.type == "invalid_json" else e.type
            await error_response(e.status, code, e.message)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _has_nul(scope: Scope) -> bool:
    return "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")


def _holds_nul(value: Any) -> bool:
    """True when a string (or key) anywhere in the parsed body contains NUL."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


__all__ = ["MAX_DEPTH", "MAX_JSON_BYTES", "UPLOAD_PATHS", "StrictBody", "check_strict"]
