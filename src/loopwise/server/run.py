"""``loopwise server``: the REST API in uvicorn, on one or several worker processes.

Binding beyond loopback while the store holds no API token would open every run, model
and prediction to anyone who can reach the port: :func:`run_server` refuses it unless
``public`` is set (say so on purpose, e.g. behind an authenticating proxy).
"""

from __future__ import annotations

import ipaddress
import json
import os
from typing import Any

from loopwise.config import load_settings
from loopwise.errors import ConfigurationError
from loopwise.param_errors import bad_param
from loopwise.store import Store

_SPEC_ENV = "LOOPWISE_SERVER_SPEC"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(store: Store, host: str, *, public: bool) -> None:
    """Refuse to serve a token-less store beyond loopback unless ``public``."""
    from loopwise.auth.tokens import list_tokens

    if public or is_loopback(host):
        return
    if not any(t.status() == "active" for t in list_tokens(store)):
        raise ConfigurationError(
            f"refusing to listen on {host} with no API token: anyone who can reach it could "
            "read and write every run and model. Create a token first (`loopwise tokens "
            "create admin --role admin`), or pass --public if something in front of the "
            "server authenticates callers."
        )


def run_server(
    store: Store,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    public: bool = False,
    log_level: str = "info",
) -> None:
    """Serve the REST API on ``host:port`` until interrupted."""
    import uvicorn

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise bad_param("run_server", "workers", "an int >= 1", workers)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise bad_param("run_server", "port", "an int in [0, 65535]", port)
    check_exposure(store, host, public=public)
    os.environ[_SPEC_ENV] = json.dumps(
        {"store_url": store.settings.store_url, "artifacts_url": store.settings.artifacts_url}
    )
    uvicorn.run(
        f"{__name__}:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )


def worker_app() -> Any:
    """The app of one server process, on the store the parent was started with."""
    from loopwise.server.app import create_server_app

    spec = json.loads(os.environ[_SPEC_ENV])
    settings = load_settings(store_url=spec["store_url"], artifacts_url=spec["artifacts_url"])
    return create_server_app(Store(settings=settings))
