"""Run the prediction app with uvicorn: :func:`serve`, and :class:`ServerThread` for tests
and notebooks (a real server on a free loopback port, in a background thread)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any

from loopwise.errors import InvalidInput

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    uri: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    poll_interval: float = 2.0,
    public: bool = False,
    log_level: str = "warning",
) -> None:
    """Serve ``uri`` (e.g. ``models:/credit-risk@champion``) over HTTP until interrupted.

    Listens on loopback only unless ``public=True``: the endpoints have no authentication
    yet, so exposing them is an explicit choice. The model follows its alias (see
    :class:`~loopwise.serving.live_model.LiveModel`).
    """
    if not isinstance(host, str) or not host:
        raise InvalidInput(f"The 'host' parameter of serve must be a host name. Got {host!r}.")
    if not is_loopback(host) and not public:
        raise InvalidInput(
            f"refusing to listen on {host!r}: serving has no authentication yet, so it "
            "listens on loopback (127.0.0.1) by default. Pass public=True (--public on the "
            "command line) to accept connections from other machines."
        )
    import uvicorn

    from loopwise.serving.app import create_app
    from loopwise.serving.live_model import LiveModel

    live = LiveModel(uri, poll_interval=poll_interval).start()
    try:
        uvicorn.run(create_app(live), host=host, port=port, log_level=log_level)
    finally:
        live.stop()


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
