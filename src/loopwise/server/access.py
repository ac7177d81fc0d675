"""Who may call what: the API tokens of :mod:`loopwise.auth.tokens`, checked per route.

A route declares the permission it needs with ``Depends(needs("read"))`` (or ``"write"``,
``"admin"``). While the store holds no token, every request is let through: that is the
laptop case, and :func:`loopwise.server.run.run_server` refuses to listen beyond loopback
without a token unless told ``--public``. Once a token exists, each request needs
``Authorization: Bearer <token>`` whose role grants the permission (401 / 403 otherwise);
the authenticator holds the tokens in memory, so a check costs a hash and a dict lookup.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from loopwise.auth.tokens import PERMISSIONS, TokenAuthenticator, TokenInfo
from loopwise.store import Store


def store_of(request: Request) -> Store:
    """The Store the server works on (one per app)."""
    return request.app.state.store


def needs(permission: str) -> Callable[[Request], TokenInfo | None]:
    """A FastAPI dependency that lets a request through only with ``permission``; it
    returns the caller's token (None while the store has no token)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}; use one of {sorted(PERMISSIONS)}")

    def check(request: Request) -> TokenInfo | None:
        authenticator: TokenAuthenticator = request.app.state.authenticator
        token = authenticator.authenticate(request.headers.get("authorization"), permission)
        request.state.token = token
        return token

    check.__name__ = f"needs_{permission}"
    return check
