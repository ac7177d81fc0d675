"""What ``serve`` writes on stderr: one logging setup for loopwise's loggers and uvicorn's,
and the startup banner (where it listens, the loopwise version, what each variant serves).

Why one setup given to uvicorn (its ``log_config``) rather than configured once here: with
``workers > 1`` uvicorn starts each worker in a fresh (spawned) process and applies its
``log_config`` there, so every worker formats its lines alike, and each line then names
its process (``[pid 1234]``), since the workers swap models and answer on their own.

uvicorn's own info lines ("Started server process", "Application startup complete",
"Uvicorn running on ...") say what the banner says, so they show at ``debug`` only; its
warnings and errors show at every level that includes them. uvicorn's access log stays off:
it cannot tell which variant answered, and ``serve(access_log=True)`` writes a line of our
own for every request (see :mod:`.access_log`). Times are UTC, like everything loopwise
stores.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from loopwise.errors import InvalidInput

#: The values of ``serve(log_level=...)`` and ``loopwise serve --log-level``.
LOG_LEVELS = ("debug", "info", "warning", "error")

logger = logging.getLogger("loopwise.serve")


class UTCFormatter(logging.Formatter):
    """``2026-01-05T10:00:00.123Z``: log times in UTC, as every stored time is."""

    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


def check_log_level(level: Any) -> str:
    """``level`` if it is one of :data:`LOG_LEVELS` (any case), lower-cased."""
    if isinstance(level, str) and level.lower() in LOG_LEVELS:
        return level.lower()
    choices = ", ".join(map(repr, LOG_LEVELS))
    raise InvalidInput(
        f"The 'log_level' parameter of serve must be one of {choices}. Got {level!r} instead."
    )


def log_config(level: str, *, workers: int = 1) -> dict[str, Any]:
    """The :func:`logging.config.dictConfig` document for a serving process (uvicorn's
    ``log_config``): loopwise's and uvicorn's lines on stderr, at ``level``."""
    level = check_log_level(level).upper()
    uvicorn_level = level if level in ("DEBUG", "ERROR") else "WARNING"
    where = " [pid %(process)d]" if workers > 1 else ""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "loopwise": {
                "()": f"{__name__}.UTCFormatter",
                "fmt": f"%(asctime)s %(levelname)-7s{where} %(message)s",
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "loopwise",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "loopwise": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": uvicorn_level, "propagate": False},
            "uvicorn.error": {"level": uvicorn_level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def url(host: str, port: int, path: str = "") -> str:
    """``http://host:port/path``, with an IPv6 address in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}"


def banner(
    config: Any,
    *,
    version: str,
    store: str,
    address: str,
    labels: dict[str, str | None],
    flag: Any = None,
    docs_url: str | None = None,
    docs_needs_token: bool = False,
    workers: int = 1,
    access_log: bool = False,
) -> list[str]:
    """The startup lines of an endpoint serving on ``address`` (a URL).

    ``config`` is the :class:`~loopwise.serving.endpoint_config.EndpointConfig`;
    ``labels`` maps each variant's and shadow's ``models:/`` URI to the version it serves
    (``name/3``), or to None when none could be loaded; ``flag`` is the model flag read
    from the store (None: never set, so the model is on).
    """
    name = config.name
    lines = [f"loopwise {version}: endpoint {name!r} from store {store}"]
    many = len(config.variants) > 1
    for v in config.variants:
        weight = f" (weight {v.weight:g})" if many else ""
        lines.append(f"{name}: variant {v.name} serves {_served(v.model, labels)}{weight}")
    for s in config.shadows:
        lines.append(f"{name}: shadow {s.name} mirrors {_served(s.model, labels)}")
    if config.is_skeleton:
        lines.append(f"{name}: no model; every answer is the fallback {config.fallback!r}")
    elif flag is not None and not flag.enabled:
        why = f" ({flag.reason})" if flag.reason else ""
        lines.append(
            f"{name}: the model flag is off{why}: every answer is the fallback "
            f"{config.fallback!r} until it is turned on"
        )
    processes = f" with {workers} worker processes" if workers > 1 else ""
    lines.append(f"{name}: listening on {address}{processes}")
    if docs_url is None:
        lines.append(f"{name}: API docs off")
    else:
        needs = " (with a read token)" if docs_needs_token else ""
        lines.append(f"{name}: API docs at {docs_url}{needs}")
    if access_log:
        lines.append(f"{name}: access log on: one line per request")
    return lines


def _served(uri: str, labels: dict[str, str | None]) -> str:
    label = labels.get(uri)
    return f"{uri} = {label}" if label else f"{uri} (not loaded yet)"


def log_lines(lines: Iterable[str]) -> None:
    """Write the banner's lines at info level (so ``log_level="warning"`` hides them)."""
    for line in lines:
        logger.info("%s", line)
