"""The prediction app's API documentation: ``GET /openapi.json``, ``/docs`` (Swagger UI)
and ``/redoc``, served as the endpoint config's ``docs`` key says.

Why not FastAPI's own routes: they are open to anyone, and the OpenAPI document names the
model's input columns and their types (in the ``/predict`` description and example), which
a server reachable by strangers should not hand out. So the app is created without them and
these routes take their place:

- ``token`` (the default): while API tokens are enabled, each route needs a token with the
  ``read`` permission and refuses like ``GET /model`` (401 or 403, JSON body); while they
  are not, the routes are open;
- ``public``: open to anyone, whatever the tokens;
- ``off``: not served, so a request for them is the app's 404.

FastAPI's ``/docs/oauth2-redirect`` page is left out: the app has no OAuth2 flow.

A browser sends no ``Authorization`` header of its own, and the two pages load
``/openapi.json`` with a plain fetch; so under ``token`` they work in a browser only while
tokens are disabled. Read the document with ``curl -H "Authorization: Bearer $TOKEN"``, or
choose ``public`` for a server on a private network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse, Response

OPENAPI_URL = "/openapi.json"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"

#: ``guard(request)`` is None when the request may read the docs, else the refusal to send.
Guard = Callable[[Request], Response | None]


def add_docs_routes(app: FastAPI, mode: str, guard: Guard) -> None:
    """Add the three documentation routes to ``app`` for ``mode`` (see the module doc).

    ``app`` must have been created with ``openapi_url=None``, ``docs_url=None`` and
    ``redoc_url=None``; ``guard`` checks the ``read`` permission and is consulted only
    under ``token``.
    """
    if mode == "off":
        return
    check = guard if mode == "token" else _open

    async def openapi(request: Request) -> Response:
        refusal = check(request)
        return refusal if refusal is not None else JSONResponse(_schema(app, request))

    async def swagger(request: Request) -> Response:
        refusal = check(request)
        if refusal is not None:
            return refusal
        return get_swagger_ui_html(
            openapi_url=_root_path(request) + OPENAPI_URL,
            title=f"{app.title} - Swagger UI",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def redoc(request: Request) -> Response:
        refusal = check(request)
        if refusal is not None:
            return refusal
        return get_redoc_html(
            openapi_url=_root_path(request) + OPENAPI_URL, title=f"{app.title} - ReDoc"
        )

    app.add_route(OPENAPI_URL, openapi, include_in_schema=False)
    app.add_route(DOCS_URL, swagger, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)


def _open(request: Request) -> None:
    return None


def _root_path(request: Request) -> str:
    """The prefix the app is mounted at (or served under, behind a proxy), without a
    trailing slash: the pages must fetch the document from under it."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _schema(app: FastAPI, request: Request) -> dict[str, Any]:
    """The OpenAPI document, built once (``app.openapi()`` caches it), with the mount
    prefix as its first server, as FastAPI's own route does."""
    schema = app.openapi()
    root = _root_path(request)
    if root and app.root_path_in_servers:
        servers = schema.get("servers", [])
        if root not in {s.get("url") for s in servers}:
            schema = schema | {"servers": [{"url": root}, *servers]}
    return schema
