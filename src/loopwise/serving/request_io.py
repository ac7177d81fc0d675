"""Request bodies read with a size limit, from a Starlette request or straight from ASGI,
and the :class:`RequestError` every mistake in a request becomes (a 4xx with a JSON body).

``POST /predict`` has two ways in (see :mod:`.direct_route`): the FastAPI route and the
direct one that skips Starlette's layers; both read the ASGI messages the same way. A body
over the limit is refused as soon as it is declared (``Content-Length``) or, when streamed,
as soon as it grows past the limit, so an oversized body is never held in memory whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

Receive = Callable[[], Awaitable[dict[str, Any]]]


class RequestError(Exception):
    """A request the app refuses: HTTP ``status``, error ``type`` and a ``message``."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message


def _check_declared(declared: str | None, limit: int) -> None:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(
            413, "payload_too_large", f"the body is {declared} bytes; the limit is {limit}."
        )


def _too_large(limit: int) -> RequestError:
    return RequestError(413, "payload_too_large", f"the body is over the limit of {limit} bytes.")


def _disconnected() -> RequestError:
    return RequestError(400, "client_disconnected", "the client closed the connection.")


async def read_body(request: Request, limit: int) -> bytes:
    """The body of a Starlette ``request``, at most ``limit`` bytes."""
    return await receive_body(request.receive, request.headers.get("content-length"), limit)


async def receive_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The body of a raw ASGI request, at most ``limit`` bytes (``declared`` is its
    ``Content-Length`` header, if any)."""
    _check_declared(declared, limit)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
