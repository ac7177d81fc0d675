"""The direct route for ``POST /predict``: the prediction app answers it without going
through Starlette's middleware stack and router.

Why: a one-row prediction is a few milliseconds, and FastAPI's ten ASGI layers (error and
exception middleware, router, dependency solving, request object) cost ~0.3 ms of it on
every request, about as much as the HTTP parsing. :class:`PredictionApp` is a FastAPI app
in every other respect (its routes, ``/docs``, lifespan and ``app.state``); only a
``POST /predict`` goes straight to the handler that the FastAPI route also calls, so both
answer alike. When middleware has been added to the app (``app.add_middleware``), every
request takes the normal path, so that middleware sees ``/predict`` too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.responses import Response

from loopwise.serving.request_io import Receive, receive_body

Header = Callable[[str], str | None]
Handler = Callable[[Header, Callable[[], Awaitable[bytes]]], Awaitable[Response]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class PredictionApp(FastAPI):
    """A FastAPI app with a direct route for ``POST /predict`` (see the module doc)."""

    direct_predict: Handler | None = None
    max_body_bytes: int = 0

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        handler = self.direct_predict
        if (
            handler is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and not self.user_middleware
            and _route_path(scope) == "/predict"
        ):
            header = Headers(scope=scope).get
            limit = self.max_body_bytes
            response = await handler(
                header, lambda: receive_body(receive, header("content-length"), limit)
            )
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _route_path(scope: dict[str, Any]) -> str:
    """The path the router would match: without the ``root_path`` the app is mounted at."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :]
    return path
