"""Loading registered versions from a given store: the package folder, downloaded once into
the store's ``cache_dir``, and the loaded model, kept in memory by version id.

Why a service of its own: serving, batch scoring and monitoring load models from the store
they were given, which need not be the process's default one (a server serving two
stores); :mod:`loopwise.registry.api` binds these functions to the default store for
``lw.load_model``. Version ids are unique across stores, so one cache serves them all.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

from loopwise.registry import models as registry
from loopwise.registry.records import ModelVersion
from loopwise.store import Store

_loaded: dict[str, Any] = {}
_load_lock = threading.Lock()


def package_dir(store: Store, version: ModelVersion) -> Path:
    """A local folder holding the version's package, downloaded once into ``cache_dir``."""
    root = Path(os.path.expanduser(store.settings.cache_dir)) / "models" / version.id
    done = root / ".complete"
    if done.exists():
        return root
    staging = root.with_name(f"{version.id}.partial-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(staging, ignore_errors=True)
    for path, sha in registry.package_files(store, version.id):
        store.artifacts.get_blob(sha, staging / path)
    (staging / ".complete").write_text(version.uri)
    try:
        os.replace(staging, root)
    except OSError:  # another process or thread finished first
        shutil.rmtree(staging, ignore_errors=True)
    return root


def load_version(store: Store, version: ModelVersion) -> Any:
    """The loaded model of ``version`` (a :class:`~loopwise.registry.packaging.LoadedModel`),
    from the in-memory cache when it was loaded before."""
    from loopwise.registry.packaging import load_package

    cached = _loaded.get(version.id)
    if cached is not None:
        return cached
    with _load_lock:
        cached = _loaded.get(version.id)
        if cached is None:
            cached = load_package(package_dir(store, version))
            _loaded[version.id] = cached
    return cached


def load_model(store: Store, uri: str) -> Any:
    """The loaded model for ``models:/name/3`` or ``models:/name@alias`` in ``store``."""
    return load_version(store, registry.get_model_version(store, uri))
