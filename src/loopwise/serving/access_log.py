"""The access log of ``serve(access_log=True)``: one line per HTTP request, on the
``loopwise.access`` logger (info level)::

    POST /predict 200 1.84 ms default credit-risk/3
    GET /ready 200 0.21 ms

method, path, status, latency in milliseconds and, for a prediction, the variant and model
version that answered (``fallback fallback`` while the model flag is off).

Why a wrapper around the whole ASGI app, and not middleware or uvicorn's access log: a
middleware added to the app would send ``POST /predict`` down the slower routed path (see
:mod:`.direct_route`), and uvicorn's line cannot say which variant answered. The wrapper
sits outside the app, so it sees the direct route and the routed ones alike; the variant
and model come from :meth:`AccessLoggedEndpoint.route`, which notes them for the request
being answered (a context variable the wrapper sets per request). Without the access log
neither is built: the default request path runs no code of this module.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any

from loopwise.serving.endpoint import FALLBACK, Endpoint
from loopwise.serving.live_model import Snapshot
from loopwise.serving.request_io import Receive

logger = logging.getLogger("loopwise.access")

# [variant, model] of the request being answered, filled in by AccessLoggedEndpoint.route
_ANSWERED: ContextVar[list[str | None] | None] = ContextVar("loopwise_answered", default=None)


class AccessLoggedEndpoint(Endpoint):
    """An :class:`Endpoint` that notes which variant and version answer each request, for
    :class:`AccessLog` (``build_endpoint(..., access_log=True)`` makes one)."""

    def route(self, key: str | None) -> tuple[str, Snapshot | None]:
        variant, snap = super().route(key)
        answered = _ANSWERED.get()
        if answered is not None:
            answered[0] = variant
            if snap is not None:
                answered[1] = snap.label
            elif variant == FALLBACK:
                answered[1] = FALLBACK
        return variant, snap


class AccessLog:
    """``AccessLog(app)``: ``app`` with one log line per HTTP request (see the module doc).

    Other scopes (lifespan, websockets) pass through untouched.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: list[int] = []
        answered: list[str | None] = [None, None]
        token = _ANSWERED.set(answered)

        async def noting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            _ANSWERED.reset(token)
            elapsed_ms = (time.perf_counter() - start) * 1000
            line = f"{scope['method']} {_path(scope)} {status[0] if status else '-'}"
            line += f" {elapsed_ms:.2f} ms"
            if answered[0] is not None:
                line += f" {answered[0]} {answered[1] or '-'}"
            logger.info("%s", line)


def _path(scope: dict[str, Any]) -> str:
    """The path as the client sent it (still percent-encoded), so that no path can write
    a line of its own (``/a%0Ab`` decodes to a line break)."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope["path"]
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")
