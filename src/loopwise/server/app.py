"""The server's ASGI app: the REST API under ``/api/v1``, on one Store.

:func:`create_server_app` builds it: the routers of :mod:`loopwise.server.routes` (one
module per area of the API), the JSON error handlers (:mod:`.errors`), the strict body
checks (:mod:`.body`), the token check per route (:mod:`.access`) and MLflow's REST API
(:class:`loopwise.server.mlflow.MlflowApi`). The OpenAPI document
is at ``/api/v1/openapi.json``; ``GET /health`` answers 200 as soon as the app is up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import import_module
from typing import Any

from fastapi import FastAPI

from loopwise._version import __version__
from loopwise.auth.tokens import TokenAuthenticator
from loopwise.server.audit_log import AuditLog
from loopwise.server.body import StrictBody
from loopwise.server.errors import install_error_handlers
from loopwise.server.mlflow import MlflowApi
from loopwise.store import Store

#: The route modules, each with a ``router`` (an ``APIRouter`` with paths under /api/v1).
ROUTE_MODULES = (
    "loopwise.server.routes.tracking",
    "loopwise.server.routes.artifacts",
    "loopwise.server.routes.registry",
    "loopwise.server.routes.datasets",
    "loopwise.server.routes.predictions",
    "loopwise.server.routes.monitoring",
    "loopwise.server.routes.audit",
    "loopwise.server.routes.pipelines",
)


def create_server_app(store: Store, *, token_refresh_s: float = 5.0) -> Any:
    """The REST API on ``store`` (an ASGI app). Tokens are read from ``store`` and
    refreshed every ``token_refresh_s`` seconds while the app runs."""
    authenticator = TokenAuthenticator(store, cache_ttl=token_refresh_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        authenticator.start()
        try:
            yield
        finally:
            authenticator.stop()

    app = FastAPI(
        title="loopwise",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.authenticator = authenticator
    install_error_handlers(app)

    @app.get("/health", tags=["server"], summary="200 once the server is up")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for name in ROUTE_MODULES:
        app.include_router(import_module(name).router, prefix="/api/v1")
    ui = import_module("loopwise.server.ui.pages")  # the web UI at /, its files at /static
    app.include_router(ui.router)
    app.mount(ui.STATIC_PREFIX, ui.HashedStaticFiles(), name="static")
    app.add_middleware(MlflowApi)  # MLflow's REST API, for its clients (innermost)
    app.add_middleware(StrictBody)
    app.add_middleware(AuditLog, store=store)  # outermost: refused bodies are audited too
    return app
