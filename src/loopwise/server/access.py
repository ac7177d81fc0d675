"""Who may call what: the API tokens of :mod:`loopwise.auth.tokens`, checked per route.

A route declares the permission it needs with ``Depends(needs("read"))`` (or ``"write"``,
``"admin"``). While the store holds no token, every request is let through: that is the
laptop case, and :func:`loopwise.server.run.run_server` refuses to listen beyond loopback
without a token unless told ``--public``. Once a token exists, each request needs
``Authorization: Bearer <token>`` whose role grants the permission (401 / 403 otherwise);
the authenticator holds the tokens in memory, so a check costs a hash and a dict lookup.

A token may be scoped to experiment and model name patterns. A route whose path names a
run or a model says which path parameter holds it (``needs("read", run="run_id")``,
``needs("write", model="name")``) and the dependency answers 403 naming the token's
patterns when the entity is outside them; a route that finds its experiment in the body
calls :func:`check_experiment`. Lists are filtered to the scope (:func:`experiment_scope`);
a search that names an out-of-scope experiment is a 403 rather than a silently shorter
answer. An unscoped token (and no token at all) costs no lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from loopwise.auth.tokens import PERMISSIONS, TokenAuthenticator, TokenInfo
from loopwise.errors import Forbidden
from loopwise.identity import act_as
from loopwise.store import Store
from loopwise.tracking import runs as run_service


def store_of(request: Request) -> Store:
    """The Store the server works on (one per app)."""
    return request.app.state.store


def token_of(request: Request) -> TokenInfo | None:
    """The caller's token, as the route's :func:`needs` dependency found it (None while
    the store has no token)."""
    return getattr(request.state, "token", None)


def needs(
    permission: str, *, run: str | None = None, model: str | None = None
) -> Callable[[Request], Awaitable[TokenInfo | None]]:
    """A FastAPI dependency that lets a request through only with ``permission``; it
    returns the caller's token (None while the store has no token).

    ``run`` / ``model`` name the path parameter holding the run (id, name or ``runs:/``
    reference) or the model the route acts on; a scoped token must reach it (403 if not).
    """
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}; use one of {sorted(PERMISSIONS)}")

    def checked(request: Request) -> TokenInfo | None:
        authenticator: TokenAuthenticator = request.app.state.authenticator
        token = authenticator.authenticate(request.headers.get("authorization"), permission)
        request.state.token = token
        if token is not None and token.scoped:
            if run is not None:
                check_run(request, request.path_params[run])
            if model is not None:
                check_model(request, request.path_params[model])
        return token

    async def check(request: Request) -> TokenInfo | None:
        # The check may query the store (a scoped token's run): off the event loop. The
        # caller is named here, in the request's own context, which the route's thread
        # inherits, so what the route records (an alias move, a run) names the token.
        token = await run_in_threadpool(checked, request)
        if token is not None:
            act_as(token.name)
        return token

    check.__name__ = f"needs_{permission}"
    return check


def authorize(request: Request, permission: str) -> TokenInfo | None:
    """The token check of :func:`needs` for a route that checks scopes itself: in memory
    (a hash and a dict lookup, no query), so it runs on the event loop, without the thread
    hop of the dependency. Names the caller for the request's context, as :func:`needs`
    does; returns the token (None while the store has no token)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}; use one of {sorted(PERMISSIONS)}")
    authenticator: TokenAuthenticator = request.app.state.authenticator
    token = authenticator.authenticate(request.headers.get("authorization"), permission)
    request.state.token = token
    if token is not None:
        act_as(token.name)
    return token


def _patterns(patterns: Iterable[str]) -> str:
    return ", ".join(map(repr, patterns)) or "none"


def check_experiment(request: Request, name: str) -> None:
    """403 unless the caller's token reaches the experiment called ``name``."""
    token = token_of(request)
    if token is None or token.allows_experiment(name):
        return
    raise Forbidden(
        f"The API token {token.name!r} is limited to experiments matching "
        f"{_patterns(token.experiments or ())}; experiment {name[:200]!r} is outside that "
        "scope. Use a token whose --experiments patterns match it."
    )


def check_model(request: Request, name: str) -> None:
    """403 unless the caller's token reaches the registered model called ``name``."""
    token = token_of(request)
    if token is None or token.allows_model(name):
        return
    raise Forbidden(
        f"The API token {token.name!r} is limited to models matching "
        f"{_patterns(token.models or ())}; model {name[:200]!r} is outside that scope. "
        "Use a token whose --models patterns match it."
    )


def check_run(request: Request, run: str) -> None:
    """403 unless the caller's token reaches the experiment of ``run`` (404 if no such run)."""
    token = token_of(request)
    if token is None or token.experiments is None:
        return
    store = store_of(request)
    found = run_service.get_run(store, run_service.resolve_run_id(store, run))
    check_experiment(request, found.experiment)


def experiment_scope(request: Request) -> TokenInfo | None:
    """The caller's token when its experiments are limited (lists filter by it), else None."""
    token = token_of(request)
    return token if token is not None and token.experiments is not None else None


def model_scope(request: Request) -> TokenInfo | None:
    """The caller's token when its models are limited (lists filter by it), else None."""
    token = token_of(request)
    return token if token is not None and token.models is not None else None
