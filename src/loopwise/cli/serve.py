"""``loopwise serve``: answer predictions over HTTP for a registered model.

The endpoint follows its alias (``models:/name@champion``): when the alias moves, the new
version is loaded and checked in the background and swapped in without dropping a request.
It binds to 127.0.0.1 unless told otherwise; a public address needs ``--public``.
"""

from __future__ import annotations

from typing import Annotated

import typer


def serve_command(
    uri: Annotated[str, typer.Argument(help="The model, e.g. models:/credit-risk@champion.")],
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 8000,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", help="Seconds between checks of the alias.")
    ] = 2.0,
    public: Annotated[
        bool,
        typer.Option("--public", help="Allow binding to a non-loopback address."),
    ] = False,
) -> None:
    """Serve a registered model: POST /predict, GET /health /ready /model /metrics."""
    from loopwise.serving.server import serve

    serve(uri, host=host, port=port, poll_interval=poll_interval, public=public)
