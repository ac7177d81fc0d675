"""One keep-alive HTTP connection to a ``loopwise server``, and its errors turned back
into the errors the local API raises.

Why the errors are mapped back: code written against the local store catches
``NotFound`` or ``ParamConflict``; pointed at a server, it must catch the same classes.
The server names each refusal's class in ``{"error": {"code": ...}}`` (the class name in
snake case), so the client raises that class with the server's message. A code it does
not know falls back to the class of the HTTP status. A server that cannot be reached is
:class:`~loopwise.errors.StoreUnavailable` naming the URL, as an unreachable database is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from loopwise import errors
from loopwise._version import __version__
from loopwise.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LoopwiseError,
    NotFound,
    StoreUnavailable,
    Unauthorized,
)

API_PREFIX = "/api/v1"
#: Seconds to connect; reads may take longer (a big search, an upload).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 120.0


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _error_classes() -> dict[str, type[LoopwiseError]]:
    """Every ``LoopwiseError`` subclass that takes a message alone, by the code the server
    gives it (one that needs more, like ``DataValidationError``, falls back to its status)."""
    found: dict[str, type[LoopwiseError]] = {}
    for value in vars(errors).values():
        if (
            isinstance(value, type)
            and issubclass(value, LoopwiseError)
            and not any(
                "__init__" in vars(c) for c in value.__mro__ if issubclass(c, LoopwiseError)
            )
        ):
            found[_snake(value.__name__)] = value
    return found


_BY_CODE = _error_classes()
_BY_STATUS: dict[int, type[LoopwiseError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: InvalidInput,
    409: Conflict,
    413: InvalidInput,
    415: InvalidInput,
    503: StoreUnavailable,
}


class HttpClient:
    """Requests to one server over one pooled, keep-alive ``httpx.Client`` (thread-safe),
    with the bearer token on every request."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"loopwise/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url + API_PREFIX,
            headers=headers,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
        )

    def __repr__(self) -> str:
        return f"<HttpClient {self.url}>"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer of ``method path``; a refusal raises its LoopwiseError."""
        try:
            answer = self._http.request(
                method, path, json=json, params=params, content=content, headers=headers
            )
        except httpx.HTTPError as e:
            raise self._unreachable(e) from e
        if answer.status_code >= 400:
            raise self._refusal(answer)
        return answer.json()

    def get(self, route: str, **params: Any) -> Any:
        """``GET route`` with the query ``params`` that are not None."""
        query = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", route, params=query)

    def post(self, route: str, body: Any) -> Any:
        """``POST route`` with a JSON body."""
        return self.request("POST", route, json=body)

    @contextmanager
    def stream(self, path: str, params: dict[str, Any] | None = None) -> Iterator[httpx.Response]:
        """A streamed ``GET`` (an artifact download), checked before the body is read."""
        try:
            with self._http.stream("GET", path, params=params) as answer:
                if answer.status_code >= 400:
                    answer.read()
                    raise self._refusal(answer)
                yield answer
        except httpx.HTTPError as e:
            raise self._unreachable(e) from e

    def close(self) -> None:
        self._http.close()

    def _unreachable(self, error: httpx.HTTPError) -> StoreUnavailable:
        return StoreUnavailable(
            f"Cannot reach the loopwise server at {self.url}: {error}. Start it "
            "(`loopwise server`), check the address in LOOPWISE_TRACKING_URL, or unset it "
            "to track to the local store."
        )

    def _refusal(self, answer: httpx.Response) -> LoopwiseError:
        code, message = "", ""
        try:
            body = answer.json()
            code = str(body["error"]["code"])
            message = str(body["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = answer.text[:500]
        cls = _BY_CODE.get(code) or _BY_STATUS.get(answer.status_code)
        if cls is None:
            return LoopwiseError(
                f"The loopwise server at {self.url} failed ({answer.status_code} "
                f"{answer.request.method} {answer.request.url.path}): {message}. Its log "
                "has the details."
            )
        return cls(message)


__all__ = ["API_PREFIX", "HttpClient"]
