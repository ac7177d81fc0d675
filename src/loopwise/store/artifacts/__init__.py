"""Artifact storage: content-addressed blobs and readable files on a local folder or S3.

Why this package exists: artifacts, datasets and logs are bytes that the metadata database
only *points at*. :class:`ArtifactStore` is the interface the rest of loopwise uses; a URL
picks the backend once, where the store is opened (:func:`open_artifact_store`):

==========================================  =====================================  ==========
URL                                         backend                                 module
==========================================  =====================================  ==========
a path, ``~/x``, ``file:///abs/path``       :class:`~.local.LocalArtifactStore`     ``local``
``s3://bucket/prefix``                      :class:`~.s3.S3ArtifactStore` (s3fs)    ``s3``
==========================================  =====================================  ==========

Both keep the same layout (:mod:`.paths`), so identical data is stored once: a blob's key
is the SHA-256 of its content, and the metadata DB maps readable per-entity paths to blob
hashes. Both make every write atomic -- nothing half-written is ever visible at a final
path -- each in the way its medium allows (see the backend modules). Every write returns a
:class:`BlobInfo` with the size and SHA-256 of what was written.

Backends are imported when a store is opened, so importing loopwise stays cheap (no fsspec,
no s3fs); opening a store opens no connection and creates no directory.
"""

from __future__ import annotations

import importlib
from typing import Any

from loopwise.errors import ConfigurationError
from loopwise.store.artifacts.interface import ArtifactStore, BlobInfo
from loopwise.store.artifacts.streams import CHUNK_SIZE

__all__ = ["CHUNK_SIZE", "ArtifactStore", "BlobInfo", "open_artifact_store"]

#: URL scheme -> "module:class" of its backend, imported on first use.
_BACKENDS = {
    "file": "loopwise.store.artifacts.local:LocalArtifactStore",
    "s3": "loopwise.store.artifacts.s3:S3ArtifactStore",
}
#: Backends that take fsspec ``storage_options``.
_TAKES_OPTIONS = {"s3"}


def open_artifact_store(
    url: str, *, storage_options: dict[str, Any] | None = None
) -> ArtifactStore:
    """The artifact store at ``url``: a local path (``./.loopwise/artifacts``, ``/abs``,
    ``file:///abs``) or ``s3://bucket/prefix``.

    ``storage_options`` go to fsspec for object stores; for S3 e.g. ``{"endpoint_url": ...,
    "key": ..., "secret": ..., "client_kwargs": {"region_name": ...}}`` (a local folder
    takes none, and ignores them).
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(
            f"invalid artifact store url {url!r}: expected a local path or "
            "'s3://bucket/prefix'; check LOOPWISE_ARTIFACTS_URL"
        )
    scheme = url.partition("://")[0].lower() if "://" in url else "file"
    target = _BACKENDS.get(scheme)
    if target is None:
        raise ConfigurationError(
            f"unsupported artifact store url {url!r}: expected a local path, "
            "'file:///abs/path' or 's3://bucket/prefix'; check LOOPWISE_ARTIFACTS_URL"
        )
    module_name, _, class_name = target.partition(":")
    backend = getattr(importlib.import_module(module_name), class_name)
    if scheme in _TAKES_OPTIONS:
        return backend(url, storage_options=storage_options)
    return backend(url)
