"""MLflow's REST API on ``loopwise server``: an unchanged MLflow client logs to and reads
from loopwise with ``mlflow.set_tracking_uri("http://host:5000")``.

The routes live under MLflow's own prefixes (``/api/2.0/mlflow/``, ``/ajax-api/2.0/mlflow/``,
``/api/2.0/mlflow-artifacts/artifacts``, ``/api/3.0/mlflow/server-info``) beside loopwise's
``/api/v1``, over the same store and tokens, answered by :class:`MlflowApi` (middleware in
front of the app's own routes). They are left out of ``/api/v1/openapi.json``: their
contract is MLflow's, listed endpoint by endpoint in ``docs/mlflow.md``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.routing import compile_path

from loopwise._version import __version__
from loopwise.server.body import Receive, Scope, Send
from loopwise.server.mlflow import artifacts, inputs, models, registry, tracking
from loopwise.server.mlflow.protocol import error_body

PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/")
#: The MLflow version whose REST API these routes answer (what ``/version`` says).
MLFLOW_API_VERSION = "3.17.2"


async def server_info(request: Request) -> JSONResponse:
    """What MLflow 3 clients ask a server before uploading: no multipart, no workspaces."""
    return JSONResponse(
        {
            "store_type": "SqlStore",
            "workspaces_enabled": False,
            "trace_archival_enabled": False,
            "multipart_uploads_enabled": False,
            "multipart_downloads_enabled": False,
            "loopwise_version": __version__,
        }
    )


async def version(request: Request) -> Any:
    from fastapi.responses import PlainTextResponse

    return PlainTextResponse(MLFLOW_API_VERSION)


async def unknown(request: Request) -> JSONResponse:
    """An MLflow endpoint loopwise does not answer: MLflow's 404 ENDPOINT_NOT_FOUND."""
    return error_body(
        "ENDPOINT_NOT_FOUND",
        f"loopwise does not answer {request.method} {request.url.path}; docs/mlflow.md lists "
        "the MLflow endpoints it supports.",
        404,
    )


#: Where MLflow's API lives: every path under these is answered here (an unknown one with
#: MLflow's 404 ENDPOINT_NOT_FOUND), besides ``GET /version``.
MLFLOW_PATHS = (*PREFIXES, "/api/3.0/mlflow/", "/api/2.0/mlflow-artifacts/")

Endpoint = Callable[[Request], Awaitable[Response]]


def routes() -> list[tuple[str, str, Endpoint]]:
    """Every MLflow route: (method, path, endpoint), a path's ``{name}`` parts as in
    Starlette (``{artifact_path:path}``)."""
    table: list[tuple[str, str, Endpoint]] = []
    for prefix in PREFIXES:
        for method, path, handler in [
            *tracking.ROUTES,
            *inputs.ROUTES,
            *models.ROUTES,
            *registry.ROUTES,
        ]:
            table.append((method, prefix + path, handler))
    table.extend(artifacts.ROUTES)
    table.append(("GET", "/api/3.0/mlflow/server-info", server_info))
    table.append(("GET", "/version", version))
    return table


class MlflowApi:
    """ASGI middleware answering MLflow's paths from one route table and passing every
    other request on to the app (loopwise's API and web UI).

    Why not routes of the FastAPI app: MLflow's ~300 routes (two prefixes) would sit in
    the app's route list, which a request walks in order, matching each pattern; and each
    request would go through FastAPI's per-route layers (dependencies, exit stack), which
    these endpoints do not use -- they read their own messages and answer their own errors
    (:func:`loopwise.server.mlflow.protocol.guarded`). Here a path without parameters is
    one dict lookup. Sitting inside the audit log and the body checks, MLflow's requests
    are audited and checked as before; they are left out of ``/api/v1/openapi.json``
    (their contract is MLflow's, listed in ``docs/mlflow.md``)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._exact: dict[tuple[str, str], Endpoint] = {}
        self._templated: list[tuple[str, re.Pattern[str], dict[str, Any], Endpoint]] = []
        for method, path, endpoint in routes():
            if "{" in path:
                pattern, _, convertors = compile_path(path)
                self._templated.append((method, pattern, convertors, endpoint))
            else:
                self._exact[(method, path)] = endpoint

    def _find(self, method: str, path: str) -> tuple[Endpoint, dict[str, Any]] | None:
        """The endpoint of ``method path`` and its path parameters; None for a path that
        is not MLflow's (loopwise's API and pages pass on after one prefix test)."""
        if not path.startswith(MLFLOW_PATHS) and path != "/version":
            return None
        method = "GET" if method == "HEAD" else method
        found = self._exact.get((method, path))
        if found is not None:
            return found, {}
        for wanted, pattern, convertors, endpoint in self._templated:
            match = pattern.match(path) if wanted == method else None
            if match is not None:
                params = {k: convertors[k].convert(v) for k, v in match.groupdict().items()}
                return endpoint, params
        return (unknown, {}) if path != "/version" else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):  # behind a proxy's prefix, as Starlette routes
            path = path[len(root) :]
        found = self._find(scope["method"], path)
        if found is None:
            await self.app(scope, receive, send)
            return
        endpoint, scope["path_params"] = found
        response = await endpoint(Request(scope, receive))
        await response(scope, receive, send)


__all__ = ["MLFLOW_PATHS", "MlflowApi", "routes"]
