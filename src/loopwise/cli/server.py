"""``loopwise server``: the REST API under /api/v1 for a team sharing one store.

It binds to 127.0.0.1 unless told otherwise; an address beyond loopback needs an API token
in the store (``loopwise tokens create NAME --role admin``) or ``--public``. ``--store-url``
and ``--artifacts-url`` choose the store like the global options do.
"""

from __future__ import annotations

from typing import Annotated

import typer


def server_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 5000,
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="Worker processes (each opens the store).")
    ] = 1,
    store_url: Annotated[
        str | None,
        typer.Option("--store-url", help="Metadata database URL.", show_default=False),
    ] = None,
    artifacts_url: Annotated[
        str | None,
        typer.Option("--artifacts-url", help="Artifact store URL.", show_default=False),
    ] = None,
    public: Annotated[
        bool,
        typer.Option(
            "--public",
            help="Listen beyond loopback even with no API token (something in front "
            "authenticates callers).",
        ),
    ] = False,
) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /api/v1/openapi.json) until Ctrl+C."""
    from loopwise import context
    from loopwise.errors import ConfigurationError

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ConfigurationError(
            f"loopwise server needs FastAPI and uvicorn ({e.name} is not installed): "
            "pip install 'loopwise[serve]'."
        ) from None
    from loopwise.server.run import run_server

    if store_url is not None or artifacts_url is not None:
        context.configure(store_url=store_url, artifacts_url=artifacts_url)
    store = context.get_store()
    typer.echo(
        f"loopwise server on http://{host}:{port} (store {store.db.safe_url}); Ctrl+C stops it.",
        err=True,
    )
    run_server(store, host=host, port=port, workers=workers, public=public)
