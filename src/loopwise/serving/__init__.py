"""Serving: endpoints that answer predictions over HTTP, and the same models in batch.

An :class:`EndpointConfig` declares the variants (A/B), shadows, fallback and smoke
tests; :func:`build_endpoint` wires it to the store (prediction log, API tokens, model
flag); :func:`create_app` is the ASGI app; :func:`serve` runs it with uvicorn and
:class:`ServerThread` runs it in a background thread. The prediction log is
:mod:`loopwise.predictions`, tokens :mod:`loopwise.auth`, batch scoring :mod:`loopwise.batch`
and the load generator :mod:`loopwise.loadtest`. Names resolve on first use, so importing
this package imports neither FastAPI nor uvicorn; ``import loopwise`` imports nothing from
here.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "Endpoint": "loopwise.serving.endpoint",
    "EndpointConfig": "loopwise.serving.endpoint_config",
    "LiveModel": "loopwise.serving.live_model",
    "PredictionLog": "loopwise.predictions.log",
    "ServerThread": "loopwise.serving.server",
    "TokenAuthenticator": "loopwise.auth.tokens",
    "build_endpoint": "loopwise.serving.server",
    "create_app": "loopwise.serving.app",
    "serve": "loopwise.serving.server",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopwise.serving' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
