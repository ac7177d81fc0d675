"""Request bodies read with a size limit, from a Starlette request or straight from ASGI,
checked for a JSON content type and parsed with a bounded depth; and the
:class:`RequestError` every mistake in a request becomes (a 4xx with a JSON body).

Why the content type is required: a browser sends a cross-origin POST with a ``text/plain``,
form or multipart body (or none) without asking the server first, so any web page could
make its visitors' browsers call a token-less endpoint on 127.0.0.1. A JSON content type
forces the CORS preflight, which the app does not answer unless CORS is configured.

Why the depth is bounded: the decoder recurses once per level, so a small body nested a
thousand levels deep raises ``RecursionError``; every valid request is a few levels deep.

``POST /predict`` has two ways in (see :mod:`.direct_route`): the FastAPI route and the
direct one that skips Starlette's layers; both read the ASGI messages the same way. A body
over the limit is refused as soon as it is declared (``Content-Length``) or, when streamed,
as soon as it grows past the limit, so an oversized body is never held in memory whole.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

Receive = Callable[[], Awaitable[dict[str, Any]]]

MAX_DEPTH = 32  # nesting levels of a JSON body (a tensor of rank 29 inside "inputs")
MAX_LABEL_CHARS = 1000  # the longest label text /feedback takes (a class name, not a document)


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


def require_json(content_type: str | None) -> None:
    """Refuse (415) a body not declared as JSON (``application/json``, or ``*/*+json``)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    got = f"got {content_type!r}" if content_type else "got no Content-Type"
    raise RequestError(
        415,
        "unsupported_media_type",
        f"the body must be sent as JSON with 'Content-Type: application/json'; {got}.",
    )


def parse_json(raw: bytes) -> Any:
    """The JSON document in ``raw``; 400 when it is not JSON or nests deeper than
    ``MAX_DEPTH``."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestError(400, "invalid_json", f"the body is not valid JSON: {e}.") from None
    # (as deep as it has brackets at most: most bodies are passed without a walk)
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _deeper_than(body, MAX_DEPTH):
        raise _too_deep()
    return body


def _too_deep() -> RequestError:
    return RequestError(
        400, "invalid_json", f"the body nests deeper than {MAX_DEPTH} levels; flatten it."
    )


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether ``document`` nests more than ``limit`` containers deep: level by level,
    without recursing, skipping in C each object or list that holds only scalars (the
    records of a large body)."""
    if type(document) not in _CONTAINERS:
        return False
    level, depth = [document], 1
    while level:
        if depth > limit:
            return True
        deeper: list[Any] = []
        for node in level:
            values = node.values() if type(node) is dict else node
            if _CONTAINERS.isdisjoint(map(type, values)):
                continue
            deeper.extend(v for v in values if type(v) in _CONTAINERS)
        level, depth = deeper, depth + 1
    return False


_CONTAINERS = frozenset((dict, list))
