"""Settings: where the store lives and how tracking behaves.

Each setting is resolved once, in this order (first found wins)::

    loopwise.configure(...) argument  >  LOOPWISE_<NAME> environment variable
    >  loopwise.toml (in the working directory, or the file named by LOOPWISE_CONFIG)
    >  built-in default

Nothing here runs at import: :func:`load_settings` reads the sources when a store is
first needed. An unknown key in ``loopwise.toml`` or a value of the wrong type is a
:class:`~loopwise.errors.ConfigurationError`, never silently ignored.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loopwise.errors import ConfigurationError

DEFAULT_STORE_URL = "sqlite:///./.loopwise/loopwise.db"
DEFAULT_ARTIFACTS_URL = "./.loopwise/artifacts"
ENV_PREFIX = "LOOPWISE_"


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Field names double as ``loopwise.toml`` keys and, upper-cased
    with the ``LOOPWISE_`` prefix, as environment variables."""

    store_url: str = DEFAULT_STORE_URL
    artifacts_url: str = DEFAULT_ARTIFACTS_URL
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    key_rule: str = "printable"  # the strict opt-in: "snake_case" (see tracking.naming)
    model_name_rule: str = "kebab-case"
    cache_dir: str = "~/.cache/loopwise"
    flush_interval: float = 1.0
    buffer_max_points: int = 1_000_000
    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 30.0
    capture_environment: bool = True
    # A `loopwise server` to track through instead of the store (see loopwise.client).
    tracking_url: str | None = None
    tracking_token: str | None = field(default=None, repr=False)  # a secret: never shown

    def storage_options(self) -> dict[str, Any]:
        """fsspec options for the artifact store (only S3 needs any)."""
        if not self.artifacts_url.startswith("s3://"):
            return {}
        # Fail within seconds, not minutes, when the endpoint is down (s3fs and botocore
        # would otherwise retry on top of each other).
        options: dict[str, Any] = {
            "config_kwargs": {
                "connect_timeout": 5,
                "read_timeout": 60,
                "retries": {"max_attempts": 3, "mode": "standard"},
            }
        }
        if self.s3_endpoint_url:
            options["endpoint_url"] = self.s3_endpoint_url
        if self.s3_region:
            options["client_kwargs"] = {"region_name": self.s3_region}
        return options


_FIELDS = {f.name: f for f in fields(Settings)}
_POSITIVE = {"flush_interval", "buffer_max_points", "heartbeat_interval", "heartbeat_timeout"}


def _coerce(name: str, raw: Any, source: str) -> Any:
    """Turn a raw value from ``source`` into the type of setting ``name``."""
    kind = _FIELDS[name].type
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                value: Any = raw
            elif str(raw).strip().lower() in {"1", "true", "yes", "on"}:
                value = True
            elif str(raw).strip().lower() in {"0", "false", "no", "off"}:
                value = False
            else:
                raise ValueError(raw)
        elif kind == "int":
            if isinstance(raw, bool):
                raise ValueError(raw)
            value = int(raw)
        elif kind == "float":
            if isinstance(raw, bool):
                raise ValueError(raw)
            value = float(raw)
        else:
            if not isinstance(raw, str):
                raise ValueError(raw)
            value = raw
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"Setting '{name}' from {source} must be of type {kind.replace(' | None', '')}, "
            f"got {raw!r}. Fix the value in {source}."
        ) from None
    if name in _POSITIVE and value <= 0:
        raise ConfigurationError(
            f"Setting '{name}' from {source} must be greater than 0, got {raw!r}."
        )
    return value


def _config_file() -> Path | None:
    explicit = os.environ.get(ENV_PREFIX + "CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigurationError(
                f"LOOPWISE_CONFIG names '{explicit}', which is not a file. "
                "Point it at a loopwise.toml or unset it."
            )
        return path
    path = Path("loopwise.toml")
    return path if path.is_file() else None


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigurationError(f"{path} is not valid TOML: {e}. Fix the file.") from e
    # Allow an optional [loopwise] table so the file can be shared with other tools.
    if set(data) == {"loopwise"} and isinstance(data["loopwise"], dict):
        data = data["loopwise"]
    values = {}
    for key, raw in data.items():
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, _FIELDS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigurationError(
                f"Unknown setting '{key}' in {path}.{hint} "
                f"Known settings: {', '.join(sorted(_FIELDS))}."
            )
        values[key] = _coerce(key, raw, str(path))
    return values


def _from_env() -> dict[str, Any]:
    values = {}
    for name in _FIELDS:
        env = ENV_PREFIX + name.upper()
        raw = os.environ.get(env)
        if raw is not None and raw != "":
            values[name] = _coerce(name, raw, f"environment variable {env}")
    return values


def load_settings(**overrides: Any) -> Settings:
    """Resolve settings from arguments, environment, ``loopwise.toml`` and defaults.

    ``overrides`` whose value is None are ignored, so callers can pass optional
    arguments straight through.
    """
    values: dict[str, Any] = {}
    path = _config_file()
    if path is not None:
        values.update(_from_file(path))
    values.update(_from_env())
    for key, raw in overrides.items():
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, _FIELDS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigurationError(f"Unknown setting '{key}'.{hint}")
        if raw is not None:
            values[key] = _coerce(key, raw, "the configure() argument")
    if values.get("tracking_url"):
        values["tracking_url"] = _checked_tracking_url(values["tracking_url"])
    return replace(Settings(), **values)


def _checked_tracking_url(url: str) -> str:
    """``url`` without a trailing slash, once it names an http(s) server."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigurationError(
            f"Setting 'tracking_url' must be the http:// or https:// address of a loopwise "
            f"server, like http://host:5000; got {url!r}. Fix LOOPWISE_TRACKING_URL, "
            "loopwise.toml or the configure() argument, or unset it to track to the store."
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ConfigurationError(
            f"Setting 'tracking_url' has a port that is not a number: {url!r}. "
            "Write it like http://host:5000."
        ) from None
    return url.strip().rstrip("/")
