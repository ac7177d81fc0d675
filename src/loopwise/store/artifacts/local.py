"""The artifact store on a local folder (the embedded default).

Atomicity: every write goes to ``tmp/<random>`` inside the root, is fsynced, then moved into
place with :func:`os.replace`. ``tmp/`` is on the same filesystem as the final path, so the
rename is atomic; a crash leaves at most an orphan in ``tmp/`` (never listed), never a
partial file at a final path.

Plain ``os`` calls, no fsspec: a folder needs no filesystem layer, and importing or opening
a local store loads nothing beyond the standard library. Constructing a store creates no
folder; the root is created on the first write.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from typing import IO

from loopwise.errors import Conflict, InvalidInput, LoopwiseError, NotFound, StoreUnavailable
from loopwise.store.artifacts.interface import ArtifactStore, BlobInfo
from loopwise.store.artifacts.paths import (
    TMP_DIR,
    blob_key,
    check_path,
    check_writable,
    is_in_flight,
)
from loopwise.store.artifacts.streams import (
    copy_chunks,
    download,
    hash_bytes,
    unlink_quietly,
)

__all__ = ["LocalArtifactStore"]


class LocalArtifactStore(ArtifactStore):
    """Blobs and files under a local folder.

    ``url`` is a path (``./.loopwise/artifacts``, ``/abs``, ``~/x``) or ``file:///abs``;
    a relative path is resolved against the working directory at construction time.
    """

    def __init__(self, url: str) -> None:
        rest = url[len("file://") :] if url.lower().startswith("file://") else url
        self._root = os.path.abspath(os.path.expanduser(rest))
        self.url = "file://" + self._root

    # -- blobs ----------------------------------------------------------------------------

    def put_file(self, local_path: str | os.PathLike[str]) -> BlobInfo:
        """Streamed in 1 MiB chunks into ``tmp/``, hashed while copying, then renamed into
        place (or discarded if the blob already exists)."""
        src = os.fspath(local_path)
        if not os.path.isfile(src):
            raise InvalidInput(f"put_file expects an existing local file, got {src!r}")
        hasher = hashlib.sha256()
        copied = 0

        def fill(dst: IO[bytes]) -> None:
            nonlocal copied
            with open(src, "rb") as f:
                copied = copy_chunks(f, dst, hasher)

        with self._translate(target=f"blob from {src!r}"):
            tmp = self._stage(fill)
            info = BlobInfo(hasher.hexdigest(), copied)
            final = self._full(blob_key(info.sha256))
            if os.path.isfile(final):
                unlink_quietly(tmp)  # already stored (maybe by a concurrent writer)
            else:
                self._commit(tmp, final)
        return info

    def put_bytes(self, data: bytes) -> BlobInfo:
        data = bytes(data)
        info = hash_bytes(data)
        if not self.has_blob(info.sha256):
            self._write(blob_key(info.sha256), data, f"blob {info.sha256}")
        return info

    def has_blob(self, sha256: str) -> bool:
        return os.path.isfile(self._full(blob_key(sha256)))

    def open_blob(self, sha256: str) -> IO[bytes]:
        full = self._full(blob_key(sha256))
        with self._translate(missing=f"blob {sha256}"):
            return open(full, "rb")

    def read_blob(self, sha256: str) -> bytes:
        return self._read(blob_key(sha256), f"blob {sha256}")

    def get_blob(self, sha256: str, dest: str | os.PathLike[str]) -> None:
        full = self._full(blob_key(sha256))
        download(lambda: self._opened(full, f"blob {sha256}"), dest)

    def blob_path(self, sha256: str) -> str:
        return self._full(blob_key(sha256))

    # -- readable paths -------------------------------------------------------------------

    def write_bytes(self, path: str, data: bytes) -> BlobInfo:
        rel = check_writable(path)
        data = bytes(data)
        self._write(rel, data, f"path {path!r}")
        return hash_bytes(data)

    def read_bytes(self, path: str) -> bytes:
        return self._read(check_path(path), f"path {path!r}")

    def exists(self, path: str) -> bool:
        return os.path.isfile(self._full(check_path(path)))

    def list(self, prefix: str = "") -> builtins.list[str]:
        rel = check_path(prefix, allow_empty=True)
        base = self._full(rel)
        root_len = len(self._root) + 1
        found: builtins.list[str] = []
        if os.path.isfile(base):
            found.append(rel)
        for dirpath, _dirnames, filenames in os.walk(base):
            rel_dir = dirpath[root_len:].replace(os.sep, "/")
            found.extend(f"{rel_dir}/{f}" if rel_dir else f for f in filenames)
        return sorted(p for p in found if not is_in_flight(p))

    def delete(self, path: str) -> None:
        full = self._full(check_writable(path))
        with self._translate(missing=f"path {path!r}"):
            os.remove(full)

    # -- internals ------------------------------------------------------------------------

    def _full(self, rel: str) -> str:
        """Absolute path of a validated relative path; ``rel`` may be '' (the root)."""
        return os.path.join(self._root, *rel.split("/")) if rel else self._root

    def _read(self, rel: str, what: str) -> bytes:
        with self._translate(missing=what), open(self._full(rel), "rb") as f:
            return f.read()

    @contextlib.contextmanager
    def _opened(self, full: str, what: str) -> Iterator[IO[bytes]]:
        with self._translate(missing=what), open(full, "rb") as f:
            yield f

    def _write(self, rel: str, data: bytes, what: str) -> None:
        """Atomically write ``data`` at a validated relative path."""
        with self._translate(target=what):
            self._commit(self._stage(lambda f: f.write(data)), self._full(rel))

    def _stage(self, fill: Callable[[IO[bytes]], object]) -> str:
        """Write a new file in <root>/tmp with ``fill``, fsync it; return its path."""
        tmp_dir = os.path.join(self._root, TMP_DIR)
        os.makedirs(tmp_dir, exist_ok=True)
        tmp = os.path.join(tmp_dir, secrets.token_hex(16))
        try:
            with open(tmp, "xb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            unlink_quietly(tmp)
            raise
        return tmp

    @staticmethod
    def _commit(tmp: str, final: str) -> None:
        """Atomically move a staged temp file to its final path (creating parents)."""
        try:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)
        except BaseException:
            unlink_quietly(tmp)
            raise

    def _unavailable(self, e: BaseException) -> StoreUnavailable:
        return StoreUnavailable(
            f"artifact store {self.url} is not usable: {type(e).__name__}: {e}; "
            "check LOOPWISE_ARTIFACTS_URL and the folder's permissions and free space"
        )

    @contextlib.contextmanager
    def _translate(
        self, *, missing: str | None = None, target: str | None = None
    ) -> Iterator[None]:
        """Turn OS errors into loopwise errors.

        ``missing`` names what is read (for NotFound); ``target`` names what is written
        (for Conflict when a file or folder is in the way).
        """
        try:
            yield
        except LoopwiseError:
            raise
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            if missing is not None:
                raise NotFound(f"{missing} not found in artifact store {self.url}") from e
            if target is not None and not isinstance(e, FileNotFoundError):
                raise Conflict(
                    f"cannot write {target} in artifact store {self.url}: "
                    f"a file or folder is in the way ({e})"
                ) from e
            raise self._unavailable(e) from e
        except FileExistsError as e:
            if target is not None:
                raise Conflict(
                    f"cannot write {target} in artifact store {self.url}: "
                    f"a file is in the way of a folder ({e})"
                ) from e
            raise self._unavailable(e) from e
        except OSError as e:  # includes TimeoutError
            raise self._unavailable(e) from e
