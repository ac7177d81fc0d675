"""``loopwise serve``: answer predictions over HTTP for a registered model or an endpoint.

``loopwise serve models:/credit-risk@champion`` serves one model that follows its alias;
``--config endpoint.yaml`` serves variants (A/B), shadows and a fallback; ``--skeleton 0.5``
serves a constant answer with the same API (the walking skeleton). It binds to 127.0.0.1
unless told otherwise; a public address needs API tokens or ``--public``. ``--docs``
says who may read /docs, /redoc and /openapi.json (the config's ``docs`` key).
It writes on stderr (stdout stays empty): where it listens, the loopwise version, what each
variant serves, a line per hot swap and, with ``--access-log``, a line per request;
``--log-level`` filters them.
``--emit-dockerfile PATH`` writes a container spec for the endpoint instead of serving.
"""

from __future__ import annotations

import dataclasses
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer


class DocsAccess(StrEnum):
    """The values of the endpoint config's ``docs`` key (spelled out: importing
    :data:`loopwise.serving.endpoint_config.DOCS_MODES` here would load the serving package
    for ``loopwise --help``)."""

    token = "token"
    public = "public"
    off = "off"


class LogLevel(StrEnum):
    """The values of ``--log-level`` (spelled out, as :class:`DocsAccess` is:
    :data:`loopwise.serving.server_output.LOG_LEVELS` has them)."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def _constant(text: str | None) -> Any:
    """A skeleton answer: JSON when it parses (0.5, true, "text"), else the text itself."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def serve_command(
    uri: Annotated[
        str | None,
        typer.Argument(help="The model, e.g. models:/credit-risk@champion (or use --config)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="An endpoint YAML: variants, shadows, fallback."),
    ] = None,
    skeleton: Annotated[
        str | None,
        typer.Option("--skeleton", help="Serve this constant answer, no model (e.g. 0.5)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="Worker processes on the one port.")
    ] = 1,
    poll_interval: Annotated[
        float | None,
        typer.Option("--poll-interval", help="Seconds between checks of the alias (default 2)."),
    ] = None,
    public: Annotated[
        bool,
        typer.Option(
            "--public",
            envvar="LOOPWISE_SERVE_PUBLIC",
            help="Allow a non-loopback address without API tokens.",
        ),
    ] = False,
    docs: Annotated[
        DocsAccess | None,
        typer.Option(
            "--docs",
            help="Who may read /docs, /redoc and /openapi.json: token (a read token, once "
            "tokens exist), public or off. Default: the config's docs key, else token.",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        LogLevel,
        typer.Option(
            "--log-level",
            help="What to write on stderr: debug, info (the banner, hot swaps, the access "
            "log), warning or error; for uvicorn's lines too.",
        ),
    ] = LogLevel.info,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            help="Write a line per request: method, path, status, latency, variant and model.",
        ),
    ] = False,
    emit_dockerfile: Annotated[
        Path | None,
        typer.Option("--emit-dockerfile", help="Write a Dockerfile for this endpoint and exit."),
    ] = None,
) -> None:
    """Serve predictions: POST /predict /feedback, GET /health /ready /model /metrics."""
    from loopwise import context
    from loopwise.serving.server import config_document, endpoint_config, serve

    answer = _constant(skeleton)
    chosen = endpoint_config(uri, config=config, skeleton=answer, poll_interval=poll_interval)
    if docs is not None:
        chosen = dataclasses.replace(chosen, docs=docs.value)
    if emit_dockerfile is not None:
        from loopwise.reports.page import write_page
        from loopwise.serving.container import dockerfile

        text = dockerfile(context.get_store(), chosen, config_document(chosen))
        write_page(emit_dockerfile, text)
        typer.echo(f"wrote {emit_dockerfile} for endpoint {chosen.name!r}")
        return
    serve(
        store=context.get_store(),
        config=chosen,
        host=host,
        port=port,
        public=public,
        workers=workers,
        log_level=log_level.value,
        access_log=access_log,
    )
