"""The default store that the module-level API (``lw.log_metric``...) uses.

Nothing is opened at import: the first call that needs a store resolves the settings
(:mod:`loopwise.config`) and opens it. ``configure`` switches to another store; hooks
registered by subpackages (the tracking writer) let them finish with the old one first.

When the settings name a ``tracking_url``, :func:`remote_tracking` gives the client of
that server (:mod:`loopwise.client`), and the tracking functions use it instead of the
store; it is opened on first use too, and closed (its points sent) on a switch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loopwise.config import Settings, load_settings
from loopwise.errors import ConfigurationError
from loopwise.store import Store

if TYPE_CHECKING:  # the client imports httpx, which only a remote setup needs
    from loopwise.client.http import HttpClient
    from loopwise.client.tracking import RemoteTracking

_lock = threading.RLock()
_store: Store | None = None
_settings: Settings | None = None
_remote: RemoteTracking | None = None  # the client of settings.tracking_url, opened on first use
_overrides: dict[str, Any] = {}
_before_switch: list[Callable[[Store], None]] = []
_before_remote_switch: list[Callable[[RemoteTracking], None]] = []


def get_store() -> Store:
    """The default store, opened on first use."""
    global _store
    store = _store
    if store is not None:
        return store
    with _lock:
        if _store is None:
            _store = Store(settings=settings())
        return _store


def local_store() -> Store:
    """The default store, for the facades that do not go through a server (monitoring,
    batch scoring). With a ``tracking_url`` configured they refuse rather than write to a
    local store the user does not expect (a result linked to a run only the server knows)."""
    if settings().tracking_url is not None:
        raise ConfigurationError(
            f"this call works on a store, and LOOPWISE_TRACKING_URL points at "
            f"{settings().tracking_url}: tracking, datasets, the registry and the prediction "
            "log go through the server; monitors and batch scoring run next to the store. "
            "Run this where the store is (`loopwise monitor ...` on the server's host), or "
            "unset LOOPWISE_TRACKING_URL (and tracking_url in loopwise.toml) to work on a "
            "store."
        )
    return get_store()


def remote_http() -> HttpClient | None:
    """The HTTP connection to the configured ``tracking_url`` (shared by every remote
    facade: tracking, datasets, registry, prediction log), or None to work on the store."""
    remote = remote_tracking()
    return None if remote is None else remote.http


def settings() -> Settings:
    """The resolved settings of the module-level API (read once, until ``configure``)."""
    global _settings
    resolved = _settings
    if resolved is None:
        with _lock:
            if _settings is None:
                _settings = load_settings(**_overrides)
            resolved = _settings
    return resolved


def remote_tracking() -> RemoteTracking | None:
    """The client of the configured ``tracking_url``
    (a :class:`loopwise.client.tracking.RemoteTracking`), or None to track to the store."""
    global _remote
    if _remote is not None:
        return _remote
    resolved = settings()
    if not resolved.tracking_url:
        return None
    with _lock:
        if _remote is None:
            from loopwise.client.tracking import RemoteTracking  # httpx: only when remote

            _remote = RemoteTracking(resolved)
        return _remote


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
    global _store, _overrides, _settings
    overrides = {"store_url": store_url, "artifacts_url": artifacts_url, **settings}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    resolved = load_settings(**overrides)
    new_store = Store(settings=resolved)
    with _lock:
        _leave(_store)
        _overrides = overrides
        _settings = resolved
        _store = new_store
    return new_store


def _leave(old: Store | None) -> None:
    """Let subpackages finish with ``old`` (flush buffers; refuse if runs are active), then
    close the remote client, sending its buffered points."""
    global _remote
    if old is not None:
        for hook in _before_switch:
            hook(old)
    if _remote is not None:
        for hook in _before_remote_switch:
            hook(_remote)
        remote, _remote = _remote, None
        remote.close()


def on_store_switch(hook: Callable[[Store], None]) -> None:
    """Register ``hook(old_store)`` to run before ``configure`` replaces the default store."""
    _before_switch.append(hook)


def close_remote() -> None:
    """Send the remote client's buffered points and close it (at interpreter exit); the
    next remote call opens it again."""
    global _remote
    with _lock:
        remote, _remote = _remote, None
    if remote is not None:
        remote.close()


def on_remote_switch(hook: Callable[[RemoteTracking], None]) -> None:
    """Register ``hook(old_client)`` to run before ``configure`` drops the remote client
    (it may refuse, as the tracking facade does while a run is active through it)."""
    _before_remote_switch.append(hook)


def _after_fork_in_child() -> None:
    global _remote
    # Pooled connections belong to the parent; the child opens its own.
    if _store is not None:
        _store.db.dispose()
    _remote = None  # the parent's connection and writer thread are not the child's


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def reset() -> Store | None:
    """Finish with the default store (flushing buffers) and forget it; return it.

    The next call that needs a store opens it again from the settings.
    """
    global _store, _overrides, _settings
    with _lock:
        old = _store
        _leave(old)
        _store = None
        _settings = None
        _overrides = {}
    return old
