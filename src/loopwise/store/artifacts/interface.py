"""The artifact store's interface: what every backend does, and nothing of how.

Why an abstract base with no logic in it: the rest of loopwise must not care whether the
bytes sit in a local folder or in a bucket, and each backend keeps its own guarantees
(atomic rename on a disk, atomic PUT on S3) in its own module. Shared, backend-free rules
(path checks, the blob layout, hashing while copying) are plain functions in
:mod:`.paths` and :mod:`.streams`.
"""

from __future__ import annotations

import abc
import builtins
import os
from dataclasses import dataclass
from typing import IO

__all__ = ["ArtifactStore", "BlobInfo"]


@dataclass(frozen=True)
class BlobInfo:
    """What a write stored: the SHA-256 (64 lowercase hex) and the size in bytes."""

    sha256: str
    size: int


class ArtifactStore(abc.ABC):
    """Blobs and readable files under one root (see :mod:`loopwise.store.artifacts`).

    Blobs are addressed by the SHA-256 of their content and stored once; readable files
    live at relative paths with ``/`` separators. Every write is atomic: a reader sees the
    old content or the new, never part of it. Failures are loopwise errors: ``NotFound``
    for what is not there, ``InvalidInput`` for a bad path or id, ``StoreUnavailable``
    when the backend cannot be used, ``Conflict`` when something is in the way.
    """

    #: The store's canonical URL: ``file:///abs/path`` or ``s3://bucket/prefix``.
    url: str

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    # -- blobs ----------------------------------------------------------------------------

    @abc.abstractmethod
    def put_file(self, local_path: str | os.PathLike[str]) -> BlobInfo:
        """Store a local file as a blob, streamed in bounded chunks; return its id and size."""

    @abc.abstractmethod
    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store bytes as a blob (once per distinct content); return its id and size."""

    @abc.abstractmethod
    def has_blob(self, sha256: str) -> bool:
        """Whether a blob with this SHA-256 is stored."""

    @abc.abstractmethod
    def open_blob(self, sha256: str) -> IO[bytes]:
        """A binary read stream of a blob (close it, or use it as a context manager).

        A missing blob raises NotFound here; errors while reading later are not translated.
        """

    @abc.abstractmethod
    def read_blob(self, sha256: str) -> bytes:
        """The whole content of a blob."""

    @abc.abstractmethod
    def get_blob(self, sha256: str, dest: str | os.PathLike[str]) -> None:
        """Download a blob to a local file, atomically, creating parent folders: ``dest``
        never holds a partial download."""

    @abc.abstractmethod
    def blob_path(self, sha256: str) -> str:
        """Where the blob lives, for tools that read it directly: an absolute local path or
        ``s3://bucket/.../<hash>``."""

    # -- readable paths -------------------------------------------------------------------

    @abc.abstractmethod
    def write_bytes(self, path: str, data: bytes) -> BlobInfo:
        """Write ``data`` at a readable relative path (replacing it), atomically."""

    @abc.abstractmethod
    def read_bytes(self, path: str) -> bytes:
        """The whole content of the file at a relative path."""

    @abc.abstractmethod
    def exists(self, path: str) -> bool:
        """Whether a file (not a folder) exists at a relative path."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> builtins.list[str]:
        """Relative paths of the files under ``prefix`` (a folder), sorted; in-flight
        writes are never listed."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Delete the file at a relative path; NotFound if there is none."""
