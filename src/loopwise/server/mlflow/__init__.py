"""MLflow's REST API on ``loopwise server``: an unchanged MLflow client logs to and reads
from loopwise with ``mlflow.set_tracking_uri("http://host:5000")``.

The routes live under MLflow's own prefixes (``/api/2.0/mlflow/``, ``/ajax-api/2.0/mlflow/``,
``/api/2.0/mlflow-artifacts/artifacts``, ``/api/3.0/mlflow/server-info``) beside loopwise's
``/api/v1``, over the same store and tokens. They are left out of ``/api/v1/openapi.json``:
their contract is MLflow's, listed endpoint by endpoint in ``docs/mlflow.md``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from loopwise._version import __version__
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


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    for prefix in PREFIXES:
        for method, path, handler in [
            *tracking.ROUTES,
            *inputs.ROUTES,
            *models.ROUTES,
            *registry.ROUTES,
        ]:
            router.add_api_route(prefix + path, handler, methods=[method])
    for method, path, handler in artifacts.ROUTES:
        router.add_api_route(path, handler, methods=[method])
    router.add_api_route("/api/3.0/mlflow/server-info", server_info, methods=["GET"])
    router.add_api_route("/version", version, methods=["GET"])
    for prefix in (*PREFIXES, "/api/3.0/mlflow/", "/api/2.0/mlflow-artifacts/"):
        router.add_api_route(
            prefix + "{rest:path}", unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
        )
    return router


__all__ = ["build_router"]
