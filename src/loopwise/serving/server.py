"""Run the prediction app with uvicorn: :func:`serve` (one process or ``workers``), the
builders it shares with the worker processes, and :class:`ServerThread` for tests and
notebooks (a real server on a free loopback port, in a background thread)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from loopwise import context
from loopwise.errors import InvalidInput
from loopwise.serving.app import create_app
from loopwise.serving.endpoint import Endpoint
from loopwise.serving.endpoint_config import EndpointConfig
from loopwise.store import Store

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def endpoint_config(
    uri: str | None = None,
    *,
    config: str | Path | EndpointConfig | None = None,
    skeleton: Any = None,
    poll_interval: float | None = None,
) -> EndpointConfig:
    """The endpoint to serve, from exactly one of a model URI, a config file or a skeleton
    answer (``poll_interval`` overrides the config's)."""
    given = [name for name, v in (("a model URI", uri), ("--config", config)) if v is not None]
    if skeleton is not None:
        given.append("--skeleton")
    if len(given) != 1:
        raise InvalidInput(
            "serve needs exactly one of a model URI (models:/credit-risk@champion), "
            f"--config endpoint.yaml or --skeleton VALUE; got {', '.join(given) or 'none'}."
        )
    options = {} if poll_interval is None else {"poll_interval": poll_interval}
    if uri is not None:
        return EndpointConfig.single(uri, **options)
    if skeleton is not None:
        return EndpointConfig.skeleton(skeleton, **options)
    if not isinstance(config, EndpointConfig):
        config = EndpointConfig.load(config)  # type: ignore[arg-type]
    return dataclasses.replace(config, **options) if options else config


def build_endpoint(config: EndpointConfig, store: Store | None = None) -> Endpoint:
    """An endpoint wired to the store: prediction log, API tokens and the model flag."""
    from loopwise.serving.flags import model_flag
    from loopwise.serving.prediction_log import PredictionLog
    from loopwise.serving.tokens import TokenAuthenticator

    store = store or context.get_store()
    log = (
        PredictionLog(store, config.name, flush_interval=config.flush_interval)
        if config.log
        else None
    )
    return Endpoint(
        config,
        prediction_log=log,
        authenticator=TokenAuthenticator(store),
        flag_reader=lambda: model_flag(store, config.name),
    )


def check_bind(host: str, *, public: bool, tokens_enabled: bool) -> None:
    """Refuse a non-loopback address unless tokens protect it or ``public`` says so."""
    if not isinstance(host, str) or not host:
        raise InvalidInput(f"The 'host' parameter of serve must be a host name. Got {host!r}.")
    if is_loopback(host) or public or tokens_enabled:
        return
    raise InvalidInput(
        f"refusing to listen on {host!r} with no API tokens: anyone who can reach it could "
        "use the endpoint. Create a token (loopwise tokens create NAME --role predict), or "
        "pass public=True (--public on the command line) to serve without authentication."
    )


def serve(
    uri: str | None = None,
    *,
    config: str | Path | EndpointConfig | None = None,
    skeleton: Any = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    poll_interval: float | None = None,
    public: bool = False,
    workers: int = 1,
    log_level: str = "warning",
) -> None:
    """Serve an endpoint over HTTP until interrupted (see :func:`endpoint_config`).

    Listens on loopback only, unless API tokens exist in the store (then every route but
    /health and /ready needs one) or ``public=True``. Each variant follows its alias (see
    :class:`~loopwise.serving.live_model.LiveModel`). With ``workers > 1``, uvicorn runs
    that many processes on one port; each builds the same endpoint and follows the aliases
    on its own.
    """
    chosen = endpoint_config(uri, config=config, skeleton=skeleton, poll_interval=poll_interval)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInput(f"The 'workers' parameter of serve must be an int ≥ 1. Got {workers!r}.")
    import uvicorn

    from loopwise.serving.tokens import TokenAuthenticator

    store = context.get_store()
    check_bind(host, public=public, tokens_enabled=TokenAuthenticator(store).enabled)
    if workers > 1:
        os.environ[_SPEC_ENV] = json.dumps(
            {
                "config": config_document(chosen),
                "store_url": store.settings.store_url,
                "artifacts_url": store.settings.artifacts_url,
            }
        )
        uvicorn.run(
            f"{__name__}:worker_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
        )
        return
    endpoint = build_endpoint(chosen, store).start()
    # The app's shutdown stops the endpoint (writing the prediction log): uvicorn re-raises
    # the SIGTERM it caught once it has shut down, so code after run() may never execute.
    app = create_app(endpoint, stop_on_shutdown=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        endpoint.stop()


_SPEC_ENV = "LOOPWISE_SERVE_SPEC"


def config_document(config: EndpointConfig) -> dict[str, Any]:
    """``config`` as plain data that :meth:`EndpointConfig.from_dict` reads back whole."""
    document = config.to_dict()
    if config.smoke_tests:
        from loopwise.evaluation.policy import Policy

        document["smoke_tests"] = Policy(smoke_tests=config.smoke_tests).to_dict()["smoke_tests"]
    return document


def worker_app() -> Any:
    """The app of one worker process (``--workers N``), built from the parent's spec."""
    spec = json.loads(os.environ[_SPEC_ENV])
    context.configure(store_url=spec["store_url"], artifacts_url=spec["artifacts_url"])
    endpoint = build_endpoint(EndpointConfig.from_dict(spec["config"])).start()
    return create_app(endpoint, stop_on_shutdown=True)


class ServerThread:
    """``with ServerThread(app) as server:`` runs ``app`` under uvicorn on ``server.url``.

    Binds ``host:port`` itself (port 0 picks a free one) before starting, so the port is
    known and never raced; ``__enter__`` returns once the server accepts connections.
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 10.0
    ) -> None:
        import uvicorn

        self.host = host
        self.timeout = timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this; without it, a response written in two parts
        # waits ~40 ms for the client's delayed ACK (uvicorn sets it only on sockets it binds).
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind((host, port))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self._socket]},
            name=f"loopwise-server :{self.port}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(self.timeout)
        self._socket.close()
