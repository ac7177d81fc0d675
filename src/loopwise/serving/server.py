"""Run the prediction app with uvicorn: :func:`serve` (one process or ``workers``), the
builders it shares with the worker processes, and :class:`ServerThread` for tests and
notebooks (a real server on a free loopback port, in a background thread)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging.config
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from loopwise._version import __version__
from loopwise.config import load_settings
from loopwise.errors import InvalidInput, LoopwiseError
from loopwise.registry.models import get_model_version
from loopwise.serving.access_log import AccessLog, AccessLoggedEndpoint
from loopwise.serving.api_docs import DOCS_URL
from loopwise.serving.app import create_app
from loopwise.serving.endpoint import Endpoint
from loopwise.serving.endpoint_config import EndpointConfig
from loopwise.serving.server_output import banner, check_log_level, log_config, log_lines, url
from loopwise.store import Store

logger = logging.getLogger("loopwise.serve")

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


def build_endpoint(config: EndpointConfig, store: Store, *, access_log: bool = False) -> Endpoint:
    """An endpoint wired to ``store``: its models, prediction log, API tokens and model flag.

    With ``access_log``, it notes which variant answers each request for
    :class:`~loopwise.serving.access_log.AccessLog`."""
    from loopwise.auth.tokens import TokenAuthenticator
    from loopwise.predictions.log import PredictionLog
    from loopwise.serving.flags import model_flag

    log = (
        PredictionLog(store, config.name, flush_interval=config.flush_interval)
        if config.log
        else None
    )
    kind = AccessLoggedEndpoint if access_log else Endpoint
    endpoint = kind(
        config,
        prediction_log=log,
        authenticator=TokenAuthenticator(store),
        flag_reader=lambda: model_flag(store, config.name),
        store=store,
    )
    for variant in endpoint.variants:
        variant.live.log_name = f"{config.name}: {variant.name}"
    for shadow in endpoint.shadows:
        shadow.live.log_name = f"{config.name}: shadow {shadow.name}"
    return endpoint


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
    store: Store,
    config: str | Path | EndpointConfig | None = None,
    skeleton: Any = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    poll_interval: float | None = None,
    public: bool = False,
    workers: int = 1,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve an endpoint of ``store`` over HTTP until interrupted (see :func:`endpoint_config`).

    Listens on loopback only, unless API tokens exist in ``store`` (then every route but
    /health and /ready needs one) or ``public=True``. Each variant follows its alias (see
    :class:`~loopwise.serving.live_model.LiveModel`). With ``workers > 1``, uvicorn runs
    that many processes on one port; each builds the same endpoint and follows the aliases
    on its own.

    Writes on stderr (see :mod:`.server_output`): once, the loopwise version, what each
    variant serves, the address and the API docs' address; then a line for each hot swap
    (a warning for a version that failed to load); with ``access_log``, a line for each
    request (:mod:`.access_log`). ``log_level`` (``"debug"``, ``"info"``, ``"warning"``
    or ``"error"``) filters loopwise's lines and uvicorn's.
    """
    chosen = endpoint_config(uri, config=config, skeleton=skeleton, poll_interval=poll_interval)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInput(f"The 'workers' parameter of serve must be an int ≥ 1. Got {workers!r}.")
    level = check_log_level(log_level)
    if not isinstance(access_log, bool):
        raise InvalidInput(
            f"The 'access_log' parameter of serve must be True or False. Got {access_log!r}."
        )
    from loopwise.auth.tokens import TokenAuthenticator

    tokens_enabled = TokenAuthenticator(store).enabled
    check_bind(host, public=public, tokens_enabled=tokens_enabled)
    logging_config = log_config(level, workers=workers)
    logging.config.dictConfig(logging_config)
    access_log = access_log and level in ("debug", "info")  # its lines are info lines
    sock = _listening_socket(host, port)
    port = sock.getsockname()[1]  # the port chosen, when asked for port 0
    docs = chosen.docs != "off"
    about = {
        "version": __version__,
        "store": store.db.safe_url,
        "address": url(host, port),
        "docs_url": url(host, port, DOCS_URL) if docs else None,
        "docs_needs_token": chosen.docs == "token" and tokens_enabled,
        "workers": workers,
        "access_log": access_log,
    }
    if workers > 1:
        sock.close()  # uvicorn binds it again, in the parent of its workers
        _run_workers(chosen, store, host, port, workers, logging_config, about)
    else:
        _run_one(chosen, store, sock, logging_config, about)


def _run_one(
    config: EndpointConfig,
    store: Store,
    sock: socket.socket,
    logging_config: dict[str, Any],
    about: dict[str, Any],
) -> None:
    """Load the endpoint, print the banner and serve on ``sock`` in this process."""
    import uvicorn

    try:
        endpoint = build_endpoint(config, store, access_log=about["access_log"]).start()
    except BaseException:
        sock.close()
        raise
    # The app's shutdown stops the endpoint (writing the prediction log): uvicorn re-raises
    # the SIGTERM it caught once it has shut down, so code after run() may never execute.
    app: Any = create_app(endpoint, stop_on_shutdown=True)
    if about["access_log"]:
        app = AccessLog(app)
    labels = {
        v.live.uri: v.live.current.label
        for v in endpoint.variants + endpoint.shadows
        if v.live.current is not None
    }
    log_lines(banner(config, labels=labels, flag=endpoint.flag, **about))
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_config=logging_config, access_log=False)
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down and re-raised it
        pass
    finally:
        endpoint.stop()
        sock.close()


def _run_workers(
    config: EndpointConfig,
    store: Store,
    host: str,
    port: int,
    workers: int,
    logging_config: dict[str, Any],
    about: dict[str, Any],
) -> None:
    """Print the banner (the versions the aliases point at: the workers load them), then
    let uvicorn run ``workers`` processes, each building the endpoint from the spec."""
    import uvicorn

    from loopwise.serving.flags import model_flag

    labels = {uri: _resolve(store, uri) for uri in _model_uris(config)}
    flag = None if config.is_skeleton else model_flag(store, config.name)
    log_lines(banner(config, labels=labels, flag=flag, **about))
    os.environ[_SPEC_ENV] = json.dumps(
        {
            "config": config_document(config),
            "store_url": store.settings.store_url,
            "artifacts_url": store.settings.artifacts_url,
            "access_log": about["access_log"],
        }
    )
    uvicorn.run(
        f"{__name__}:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=logging_config,
        access_log=False,
    )


_SPEC_ENV = "LOOPWISE_SERVE_SPEC"


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (set up as :class:`ServerThread`'s), or a clear
    error when the address is taken or cannot be bound."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidInput(
            f"The 'port' parameter of serve must be an int in [0, 65535]. Got {port!r}."
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise InvalidInput(
            f"cannot listen on {host}:{port}: {e.strerror or e}. Stop what holds that "
            "address, or choose another port."
        ) from e
    return sock


def _model_uris(config: EndpointConfig) -> list[str]:
    return [v.model for v in config.variants + config.shadows]


def _resolve(store: Store, uri: str) -> str | None:
    """``name/version`` that ``uri`` points at now in ``store``, or None if it cannot be
    resolved (the workers report why when they load it)."""
    try:
        version = get_model_version(store, uri)
    except LoopwiseError:
        return None
    return f"{version.name}/{version.version}"


def config_document(config: EndpointConfig) -> dict[str, Any]:
    """``config`` as plain data that :meth:`EndpointConfig.from_dict` reads back whole."""
    document = config.to_dict()
    if config.smoke_tests:
        from loopwise.evaluation.policy import Policy

        document["smoke_tests"] = Policy(smoke_tests=config.smoke_tests).to_dict()["smoke_tests"]
    return document


def worker_app() -> Any:
    """The app of one worker process (``--workers N``), built from the parent's spec: the
    worker opens the parent's store (its URLs; other settings from the environment, as the
    parent read them)."""
    spec = json.loads(os.environ[_SPEC_ENV])
    settings = load_settings(store_url=spec["store_url"], artifacts_url=spec["artifacts_url"])
    access_log = spec.get("access_log", False)
    config = EndpointConfig.from_dict(spec["config"])
    endpoint = build_endpoint(config, Store(settings=settings), access_log=access_log).start()
    app = create_app(endpoint, stop_on_shutdown=True)
    serves = ", ".join(
        f"{v.name} serves {v.live.current.label}"
        for v in endpoint.variants
        if v.live.current is not None
    )
    logger.info("%s: worker ready%s", config.name, f" ({serves})" if serves else "")
    return AccessLog(app) if access_log else app


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
