"""Loading registered versions: the package folder, fetched once into a ``cache_dir``, and
the loaded model, kept in memory by version id.

Why a service of its own: serving, batch scoring and monitoring load models from the store
they were given, which need not be the process's default one (a server serving two
stores); :mod:`loopwise.registry.api` binds these functions to the default store for
``lw.load_model``. Version ids are unique across stores, so one cache serves them all.

Where the files come from is a parameter (:func:`cached_package_dir` takes a ``fetch``):
from the store's blobs here (:func:`package_dir`), from a server's package download in the
remote client. Both fill the same cache, and :func:`load_cached` keeps the same in-memory
models, so a warm load costs only resolving the reference, wherever the store is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopwise.registry import models as registry
from loopwise.registry.archive import CACHE_MARKER
from loopwise.registry.records import ModelVersion
from loopwise.store import Store

_loaded: dict[str, Any] = {}
_load_lock = threading.Lock()


def cached_package_dir(
    cache_dir: str, version: ModelVersion, fetch: Callable[[Path], None]
) -> Path:
    """The folder ``<cache_dir>/models/<version id>`` holding the version's package, filled
    once: ``fetch(staging)`` writes the package into a fresh staging folder, which is moved
    into place only when complete (a crash or a concurrent fetch never leaves half a
    package behind)."""
    root = Path(os.path.expanduser(cache_dir)) / "models" / version.id
    done = root / CACHE_MARKER
    if done.exists():
        return root
    staging = root.with_name(f"{version.id}.partial-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        fetch(staging)
        (staging / CACHE_MARKER).write_text(version.uri)
        with contextlib.suppress(OSError):  # another process or thread finished first
            os.replace(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def package_dir(store: Store, version: ModelVersion) -> Path:
    """A local folder holding the version's package, copied once from the store's blobs
    into ``cache_dir``."""

    def copy_blobs(staging: Path) -> None:
        for path, sha in registry.package_files(store, version.id):
            store.artifacts.get_blob(sha, staging / path)

    return cached_package_dir(store.settings.cache_dir, version, copy_blobs)


def load_cached(version: ModelVersion, directory: Callable[[], Path]) -> Any:
    """The loaded model of ``version`` (a :class:`~loopwise.registry.packaging.LoadedModel`)
    from the in-memory cache, or loaded from the folder ``directory()`` gives (called only
    on a miss)."""
    from loopwise.registry.packaging import load_package

    cached = _loaded.get(version.id)
    if cached is not None:
        return cached
    with _load_lock:
        cached = _loaded.get(version.id)
        if cached is None:
            cached = load_package(directory())
            _loaded[version.id] = cached
    return cached


def load_version(store: Store, version: ModelVersion) -> Any:
    """The loaded model of ``version`` in ``store``, from the in-memory cache when it was
    loaded before."""
    return load_cached(version, lambda: package_dir(store, version))


def load_model(store: Store, uri: str) -> Any:
    """The loaded model for ``models:/name/3`` or ``models:/name@alias`` in ``store``."""
    return load_version(store, registry.get_model_version(store, uri))
