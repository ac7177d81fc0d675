"""The artifact store on S3 or any S3-compatible object store, through fsspec and s3fs.

Atomicity: a PUT is already atomic -- an object becomes visible only once it is complete,
and that also holds for multipart uploads, which appear only on ``CompleteMultipartUpload``.
So there is no temp-then-rename dance (S3 has no rename; a copy would double the traffic):
the content is hashed first, then uploaded straight to its final key. An interrupted
multipart upload leaves invisible parts behind; a bucket lifecycle rule "abort incomplete
multipart uploads" reclaims them.

fsspec and s3fs are imported when a store is constructed, not when this module is;
constructing a store opens no connection. A missing bucket is reported (once checked) as
StoreUnavailable naming the bucket and the endpoint.
"""

from __future__ import annotations

import builtins
import contextlib
import os
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from loopwise.errors import (
    ConfigurationError,
    InvalidInput,
    LoopwiseError,
    NotFound,
    StoreUnavailable,
)
from loopwise.store.artifacts.interface import ArtifactStore, BlobInfo
from loopwise.store.artifacts.paths import blob_key, check_path, check_writable, is_in_flight
from loopwise.store.artifacts.streams import download, hash_bytes, hash_file

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["S3ArtifactStore"]

_ENV_HINT = (
    "check LOOPWISE_ARTIFACTS_URL / LOOPWISE_S3_ENDPOINT_URL and the S3 credentials "
    "(key/secret or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
)


class S3ArtifactStore(ArtifactStore):
    """Blobs and files under ``s3://bucket/prefix``.

    ``storage_options`` go to s3fs, e.g. ``{"endpoint_url": ..., "key": ..., "secret": ...,
    "client_kwargs": {"region_name": ...}}``. Each store has a filesystem of its own (no
    shared instance cache) and no listings cache, so it sees other processes' writes.
    """

    def __init__(self, url: str, *, storage_options: dict[str, Any] | None = None) -> None:
        options = dict(storage_options or {})
        rest = url.partition("://")[2]
        self._root = rest.strip("/")
        self._bucket = self._root.split("/", 1)[0]
        if not self._bucket:
            raise ConfigurationError(
                f"invalid artifact store url {url!r}: expected 's3://bucket/prefix' "
                "with a bucket name; check LOOPWISE_ARTIFACTS_URL"
            )
        self.url = "s3://" + self._root
        # Listings cached in-process would hide other processes' writes.
        options.setdefault("use_listings_cache", False)
        self._fs = self._make_fs({"skip_instance_cache": True, **options})
        self._endpoint = _describe_endpoint(options)
        self._bucket_checked = False

    def _make_fs(self, options: dict[str, Any]) -> AbstractFileSystem:
        import fsspec

        try:
            return fsspec.filesystem("s3", **options)
        except ImportError as e:
            raise ConfigurationError(
                f"artifact store {self.url} needs s3fs, which is not installed: "
                "pip install 'loopwise[s3]'"
            ) from e

    # -- blobs ----------------------------------------------------------------------------

    def put_file(self, local_path: str | os.PathLike[str]) -> BlobInfo:
        """Hashed first, then uploaded to the final key unless the blob already exists."""
        src = os.fspath(local_path)
        if not os.path.isfile(src):
            raise InvalidInput(f"put_file expects an existing local file, got {src!r}")
        info = hash_file(src)
        if not self.has_blob(info.sha256):
            with self._translate():
                self._fs.put_file(src, self._full(blob_key(info.sha256)))
        return info

    def put_bytes(self, data: bytes) -> BlobInfo:
        data = bytes(data)
        info = hash_bytes(data)
        if not self.has_blob(info.sha256):
            self._write(blob_key(info.sha256), data)
        return info

    def has_blob(self, sha256: str) -> bool:
        return self._is_file(blob_key(sha256))

    def open_blob(self, sha256: str) -> IO[bytes]:
        full = self._full(blob_key(sha256))
        with self._translate(missing=f"blob {sha256}"):
            return self._fs.open(full, "rb")

    def read_blob(self, sha256: str) -> bytes:
        full = self._full(blob_key(sha256))
        with self._translate(missing=f"blob {sha256}"):
            return self._fs.cat_file(full)

    def get_blob(self, sha256: str, dest: str | os.PathLike[str]) -> None:
        full = self._full(blob_key(sha256))
        download(lambda: self._opened(full, f"blob {sha256}"), dest)

    def blob_path(self, sha256: str) -> str:
        return "s3://" + self._full(blob_key(sha256))

    # -- readable paths -------------------------------------------------------------------

    def write_bytes(self, path: str, data: bytes) -> BlobInfo:
        rel = check_writable(path)
        data = bytes(data)
        self._write(rel, data)
        return hash_bytes(data)

    def read_bytes(self, path: str) -> bytes:
        full = self._full(check_path(path))
        with self._translate(missing=f"path {path!r}"):
            return self._fs.cat_file(full)

    def exists(self, path: str) -> bool:
        return self._is_file(check_path(path))

    def list(self, prefix: str = "") -> builtins.list[str]:
        base = self._full(check_path(prefix, allow_empty=True))
        with self._translate():
            names = self._fs.find(base)
            if not names:
                self._check_bucket()
        root_len = len(self._root) + 1
        found = [n[root_len:] for n in names if n.startswith(self._root + "/")]
        return sorted(p for p in found if not is_in_flight(p))

    def delete(self, path: str) -> None:
        rel = check_writable(path)
        full = self._full(rel)
        with self._translate(missing=f"path {path!r}"):
            if not self._is_file(rel):  # S3 deletes of missing keys succeed silently
                raise FileNotFoundError(full)
            self._fs.rm_file(full)

    # -- internals ------------------------------------------------------------------------

    def _full(self, rel: str) -> str:
        """fsspec path (``bucket/prefix/rel``) of a validated relative path; rel may be ''."""
        return f"{self._root}/{rel}" if rel else self._root

    def _is_file(self, rel: str) -> bool:
        with self._translate():
            try:
                info = self._fs.info(self._full(rel))
            except FileNotFoundError:
                self._check_bucket()
                return False
        return info.get("type") == "file"

    def _write(self, rel: str, data: bytes) -> None:
        """PUT ``data`` at a validated relative path (atomic: see the module docstring)."""
        with self._translate():
            self._fs.pipe_file(self._full(rel), data)

    @contextlib.contextmanager
    def _opened(self, full: str, what: str) -> Iterator[IO[bytes]]:
        with self._translate(missing=what), self._fs.open(full, "rb") as f:
            yield f

    def _check_bucket(self) -> None:
        """Raise StoreUnavailable if the bucket does not exist (checked once per store)."""
        if self._bucket_checked:
            return
        try:
            self._fs.info(self._bucket)
        except FileNotFoundError as e:
            raise StoreUnavailable(
                f"artifact store {self.url}: bucket {self._bucket!r} does not exist at "
                f"{self._endpoint}; create it or {_ENV_HINT}"
            ) from e
        except Exception as e:
            if _is_store_failure(e):
                raise self._unavailable(e) from e
            raise
        self._bucket_checked = True

    def _unavailable(self, e: BaseException) -> StoreUnavailable:
        problem = "refused access" if isinstance(e, PermissionError) else "is unreachable"
        return StoreUnavailable(
            f"artifact store {self.url} {problem} (endpoint {self._endpoint}): "
            f"{type(e).__name__}: {e}; {_ENV_HINT}"
        )

    @contextlib.contextmanager
    def _translate(self, *, missing: str | None = None) -> Iterator[None]:
        """Turn filesystem and boto errors into loopwise errors; ``missing`` names what is
        read (for NotFound). A missing key first checks that the bucket exists."""
        try:
            yield
        except LoopwiseError:
            raise
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            self._check_bucket()
            if missing is not None:
                raise NotFound(f"{missing} not found in artifact store {self.url}") from e
            raise self._unavailable(e) from e
        except Exception as e:
            if _is_store_failure(e):
                raise self._unavailable(e) from e
            raise


def _describe_endpoint(options: dict[str, Any]) -> str:
    """The endpoint the options point at, for messages."""
    client_kwargs = options.get("client_kwargs") or {}
    return str(
        options.get("endpoint_url")
        or client_kwargs.get("endpoint_url")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or "the default AWS endpoint"
    )


def _is_store_failure(e: BaseException) -> bool:
    """Whether ``e`` means the store cannot be used (network, credentials, timeouts)."""
    if isinstance(e, OSError):  # includes TimeoutError and fsspec's FSTimeoutError
        return True
    try:  # s3fs is loaded, so botocore and aiohttp are importable
        import aiohttp
        import botocore.exceptions
    except ImportError:  # pragma: no cover
        return False
    return isinstance(
        e,
        botocore.exceptions.BotoCoreError | botocore.exceptions.ClientError | aiohttp.ClientError,
    )
