"""The default store that the module-level API (``lw.log_metric``...) uses.

Nothing is opened at import: the first call that needs a store resolves the settings
(:mod:`loopwise.config`) and opens it. ``configure`` switches to another store; hooks
registered by subpackages (the tracking writer) let them finish with the old one first.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from loopwise.config import load_settings
from loopwise.store import Store

_lock = threading.RLock()
_store: Store | None = None
_overrides: dict[str, Any] = {}
_before_switch: list[Callable[[Store], None]] = []


def get_store() -> Store:
    """The default store, opened on first use."""
    global _store
    store = _store
    if store is not None:
        return store
    with _lock:
        if _store is None:
            _store = Store(settings=load_settings(**_overrides))
        return _store


def configure(
    store_url: str | None = None,
    artifacts_url: str | None = None,
    **settings: Any,
) -> Store:
    """Point the module-level API at another store (and optionally change settings).

    Arguments override environment variables and ``loopwise.toml`` (see
    :mod:`loopwise.config`). Buffered metric points of the previous store are flushed
    first. Returns the new default :class:`~loopwise.store.Store`.
    """
    global _store, _overrides
    overrides = {"store_url": store_url, "artifacts_url": artifacts_url, **settings}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    new_store = Store(settings=load_settings(**overrides))
    with _lock:
        _leave(_store)
        _overrides = overrides
        _store = new_store
    return new_store


def _leave(old: Store | None) -> None:
    """Let subpackages finish with ``old`` (flush buffers; refuse if runs are active)."""
    if old is not None:
        for hook in _before_switch:
            hook(old)


def on_store_switch(hook: Callable[[Store], None]) -> None:
    """Register ``hook(old_store)`` to run before ``configure`` replaces the default store."""
    _before_switch.append(hook)


def _after_fork_in_child() -> None:
    # Pooled connections belong to the parent; the child opens its own.
    if _store is not None:
        _store.db.dispose()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def reset() -> Store | None:
    """Finish with the default store (flushing buffers) and forget it; return it.

    The next call that needs a store opens it again from the settings.
    """
    global _store, _overrides
    with _lock:
        old = _store
        _leave(old)
        _store = None
        _overrides = {}
    return old
