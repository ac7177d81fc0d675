"""Artifact storage: content-addressed blobs and readable files on a local folder or S3.

Why this module exists: artifacts, datasets and logs are bytes that the metadata database only
*points at*. Keeping them in an fsspec filesystem lets the same code run against a local folder
(the default, zero setup) and ``s3://bucket/prefix`` (at scale) without the rest of loopwise
knowing which one is in use.

Layout under the root::

    blobs/sha256/<2 hex>/<remaining 62 hex>   content-addressed blobs, stored once
    <any/relative/path>                       readable files written with write_bytes
    tmp/<random>                              local only: in-flight writes (never listed)

Identical data is stored once: a blob's key is the SHA-256 of its content, and the metadata DB
maps readable per-entity paths to blob hashes.

Atomicity -- nothing half-written is ever visible at a final path:

* Local folder: every write goes to ``tmp/<random>`` inside the root, is fsynced, then moved
  into place with :func:`os.replace`. ``tmp/`` is on the same filesystem as the final path, so
  the rename is atomic; a crash leaves at most an orphan in ``tmp/``, never a partial file at a
  final path.
* Object stores (S3): a PUT is already atomic -- an object becomes visible only once it is
  complete, and that also holds for multipart uploads, which appear only on
  ``CompleteMultipartUpload``. So there is no temp-then-rename dance (S3 has no rename; a copy
  would double the traffic): the content is hashed first, then uploaded straight to its final
  key. An interrupted multipart upload leaves invisible parts behind; a bucket lifecycle rule
  "abort incomplete multipart uploads" reclaims them.

Every write returns a :class:`BlobInfo` with the size and SHA-256 of what was written.

fsspec (and s3fs through it) is imported only when a store is constructed, so importing
loopwise stays cheap; constructing a store opens no connection and creates no directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from loopwise.errors import (
    ConfigurationError,
    Conflict,
    InvalidInput,
    LoopwiseError,
    NotFound,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["CHUNK_SIZE", "ArtifactStore", "BlobInfo"]

#: Size of the chunks files are streamed and hashed in.
CHUNK_SIZE = 1024 * 1024

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_BLOB_DIR = "blobs/sha256"
_TMP_DIR = "tmp"
_ENV_HINT = (
    "check LOOPWISE_ARTIFACTS_URL / LOOPWISE_S3_ENDPOINT_URL and the S3 credentials "
    "(key/secret or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
)


@dataclass(frozen=True)
class BlobInfo:
    """What a write stored: the SHA-256 (64 lowercase hex) and the size in bytes."""

    sha256: str
    size: int


def _copy_chunks(src: IO[bytes], dst: IO[bytes], hasher: Any) -> int:
    """Copy ``src`` to ``dst`` in CHUNK_SIZE pieces, feeding ``hasher``; return bytes copied."""
    size = 0
    while chunk := src.read(CHUNK_SIZE):
        hasher.update(chunk)
        dst.write(chunk)
        size += len(chunk)
    return size


def _hash_file(path: str) -> BlobInfo:
    """SHA-256 and size of a local file, read in CHUNK_SIZE pieces."""
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            hasher.update(chunk)
            size += len(chunk)
    return BlobInfo(hasher.hexdigest(), size)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _blob_rel(sha256: str) -> str:
    return f"{_BLOB_DIR}/{sha256[:2]}/{sha256[2:]}"


def _check_sha256(sha256: object) -> str:
    if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
        raise InvalidInput(
            f"invalid blob id {sha256!r}: expected a SHA-256 digest, 64 lowercase hex characters"
        )
    return sha256


def _check_rel_path(path: object, *, allow_empty: bool = False) -> str:
    """Validate a path relative to the store root; return it without a trailing slash."""
    expected = (
        "expected a relative path with '/' separators, such as 'predictions/ep/part-0.parquet' "
        "(no leading '/', no '..' or '.' segments, no empty segments, no backslashes)"
    )
    if not isinstance(path, str):
        raise InvalidInput(f"invalid artifact path {path!r}: {expected}")
    stripped = path.rstrip("/") if allow_empty else path
    if not stripped:
        if allow_empty:
            return ""
        raise InvalidInput(f"invalid artifact path {path!r}: {expected}")
    if (
        stripped.startswith("/")
        or "\\" in stripped
        or "\x00" in stripped
        or "://" in stripped
        or any(seg in ("", ".", "..") for seg in stripped.split("/"))
    ):
        raise InvalidInput(f"invalid artifact path {path!r}: {expected}")
    return stripped


class ArtifactStore:
    """Blobs and files under one root: a local folder or ``s3://bucket/prefix``.

    ``url`` is a local path (``./.loopwise/artifacts``, ``/abs``, ``file:///abs``) or
    ``s3://bucket/prefix``. ``storage_options`` go to fsspec; for S3 e.g.
    ``{"endpoint_url": ..., "key": ..., "secret": ..., "client_kwargs": {"region_name": ...}}``.
    Relative local paths are resolved against the working directory at construction time.
    The local root is created on the first write.
    """

    url: str

    def __init__(self, url: str, *, storage_options: dict[str, Any] | None = None) -> None:
        if not isinstance(url, str) or not url.strip():
            raise ConfigurationError(
                f"invalid artifact store url {url!r}: expected a local path or "
                "'s3://bucket/prefix'; check LOOPWISE_ARTIFACTS_URL"
            )
        options = dict(storage_options or {})
        protocol, _, rest = url.partition("://") if "://" in url else ("file", "", url)
        protocol = protocol.lower()
        if protocol == "file":
            root = os.path.abspath(os.path.expanduser(rest))
            self._local = True
            self._root = root
            self._bucket = ""
            self.url = "file://" + root
            self._fs = self._make_fs("file", {})
        elif protocol == "s3":
            root = rest.strip("/")
            bucket = root.split("/", 1)[0]
            if not bucket:
                raise ConfigurationError(
                    f"invalid artifact store url {url!r}: expected 's3://bucket/prefix' "
                    "with a bucket name; check LOOPWISE_ARTIFACTS_URL"
                )
            self._local = False
            self._root = root
            self._bucket = bucket
            self.url = "s3://" + root
            # Listings cached in-process would hide other processes' writes.
            options.setdefault("use_listings_cache", False)
            self._fs = self._make_fs("s3", {"skip_instance_cache": True, **options})
        else:
            raise ConfigurationError(
                f"unsupported artifact store url {url!r}: expected a local path, "
                "'file:///abs/path' or 's3://bucket/prefix'; check LOOPWISE_ARTIFACTS_URL"
            )
        self._endpoint = self._describe_endpoint(options)
        self._bucket_checked = False

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    # -- construction helpers -------------------------------------------------------------

    def _make_fs(self, protocol: str, options: dict[str, Any]) -> AbstractFileSystem:
        import fsspec

        try:
            return fsspec.filesystem(protocol, **options)
        except ImportError as e:
            raise ConfigurationError(
                f"artifact store {self.url} needs s3fs, which is not installed: "
                "pip install 'loopwise[s3]'"
            ) from e

    @staticmethod
    def _describe_endpoint(options: dict[str, Any]) -> str:
        client_kwargs = options.get("client_kwargs") or {}
        return str(
            options.get("endpoint_url")
            or client_kwargs.get("endpoint_url")
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
            or "the default AWS endpoint"
        )

    # -- paths ----------------------------------------------------------------------------

    def _full(self, rel: str) -> str:
        """fsspec path (no protocol) of a validated relative path; rel may be ''."""
        if self._local:
            return os.path.join(self._root, *rel.split("/")) if rel else self._root
        return f"{self._root}/{rel}" if rel else self._root

    def blob_path(self, sha256: str) -> str:
        """Full fsspec path of the blob: an absolute local path or ``s3://bucket/.../<hash>``."""
        full = self._full(_blob_rel(_check_sha256(sha256)))
        return full if self._local else "s3://" + full

    # -- error translation ----------------------------------------------------------------

    def _unavailable(self, e: BaseException) -> StoreUnavailable:
        if self._local:
            return StoreUnavailable(
                f"artifact store {self.url} is not usable: {type(e).__name__}: {e}; "
                "check LOOPWISE_ARTIFACTS_URL and the folder's permissions and free space"
            )
        problem = "refused access" if isinstance(e, PermissionError) else "is unreachable"
        return StoreUnavailable(
            f"artifact store {self.url} {problem} (endpoint {self._endpoint}): "
            f"{type(e).__name__}: {e}; {_ENV_HINT}"
        )

    def _is_store_failure(self, e: BaseException) -> bool:
        if isinstance(e, OSError):  # includes TimeoutError and fsspec's FSTimeoutError
            return True
        if self._local:
            return False
        try:  # s3fs is loaded, so botocore and aiohttp are importable
            import aiohttp
            import botocore.exceptions
        except ImportError:  # pragma: no cover
            return False
        return isinstance(
            e,
            botocore.exceptions.BotoCoreError
            | botocore.exceptions.ClientError
            | aiohttp.ClientError,
        )

    def _check_bucket(self) -> None:
        """On S3, raise StoreUnavailable if the bucket does not exist (checked once)."""
        if self._local or self._bucket_checked:
            return
        try:
            self._fs.info(self._bucket)
        except FileNotFoundError as e:
            raise StoreUnavailable(
                f"artifact store {self.url}: bucket {self._bucket!r} does not exist at "
                f"{self._endpoint}; create it or {_ENV_HINT}"
            ) from e
        except Exception as e:
            if self._is_store_failure(e):
                raise self._unavailable(e) from e
            raise
        self._bucket_checked = True

    @contextlib.contextmanager
    def _translate(
        self, *, missing: str | None = None, target: str | None = None
    ) -> Iterator[None]:
        """Turn filesystem/boto errors into loopwise errors.

        ``missing`` names what is read (for NotFound); ``target`` names what is written
        (for Conflict when a file or folder is in the way of a local write).
        """
        try:
            yield
        except LoopwiseError:
            raise
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            if not self._local:
                self._check_bucket()
            if missing is not None:
                raise NotFound(f"{missing} not found in artifact store {self.url}") from e
            if target is not None and self._local and not isinstance(e, FileNotFoundError):
                raise Conflict(
                    f"cannot write {target} in artifact store {self.url}: "
                    f"a file or folder is in the way ({e})"
                ) from e
            raise self._unavailable(e) from e
        except FileExistsError as e:
            if target is not None and self._local:
                raise Conflict(
                    f"cannot write {target} in artifact store {self.url}: "
                    f"a file is in the way of a folder ({e})"
                ) from e
            raise self._unavailable(e) from e
        except Exception as e:
            if self._is_store_failure(e):
                raise self._unavailable(e) from e
            raise

    # -- local atomic writes --------------------------------------------------------------

    def _local_stage(self, fill: Callable[[IO[bytes]], None]) -> str:
        """Write a new file in <root>/tmp with ``fill``, fsync it; return its path."""
        tmp_dir = os.path.join(self._root, _TMP_DIR)
        os.makedirs(tmp_dir, exist_ok=True)
        tmp = os.path.join(tmp_dir, secrets.token_hex(16))
        try:
            with open(tmp, "xb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            _unlink_quietly(tmp)
            raise
        return tmp

    @staticmethod
    def _local_commit(tmp: str, final: str) -> None:
        """Atomically move a staged temp file to its final path (creating parents)."""
        try:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    # -- blobs ----------------------------------------------------------------------------

    def put_file(self, local_path: str | os.PathLike[str]) -> BlobInfo:
        """Store a local file as a blob; return its SHA-256 and size.

        Local: streamed in 1 MiB chunks into ``tmp/``, hashed while copying, then renamed into
        place (or discarded if the blob already exists). S3: hashed first, then uploaded to the
        final key unless the blob already exists.
        """
        src = os.fspath(local_path)
        if not os.path.isfile(src):
            raise InvalidInput(f"put_file expects an existing local file, got {src!r}")
        if self._local:
            hasher = hashlib.sha256()
            copied = 0

            def fill(dst: IO[bytes]) -> None:
                nonlocal copied
                with open(src, "rb") as f:
                    copied = _copy_chunks(f, dst, hasher)

            with self._translate(target=f"blob from {src!r}"):
                tmp = self._local_stage(fill)
                info = BlobInfo(hasher.hexdigest(), copied)
                final = self._full(_blob_rel(info.sha256))
                if os.path.isfile(final):
                    _unlink_quietly(tmp)  # already stored (maybe by a concurrent writer)
                else:
                    self._local_commit(tmp, final)
            return info
        info = _hash_file(src)
        if not self.has_blob(info.sha256):
            with self._translate(target=f"blob {info.sha256}"):
                self._fs.put_file(src, self._full(_blob_rel(info.sha256)))
        return info

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store bytes as a blob (once per distinct content); return SHA-256 and size."""
        data = bytes(data)
        info = BlobInfo(hashlib.sha256(data).hexdigest(), len(data))
        if not self.has_blob(info.sha256):
            self._write(_blob_rel(info.sha256), data, f"blob {info.sha256}")
        return info

    def has_blob(self, sha256: str) -> bool:
        """Whether a blob with this SHA-256 is stored."""
        return self._is_file(_blob_rel(_check_sha256(sha256)))

    def open_blob(self, sha256: str) -> IO[bytes]:
        """Open a blob as a binary read stream (close it, or use it as a context manager).

        A missing blob raises NotFound here; errors while reading later are not translated.
        """
        rel = _blob_rel(_check_sha256(sha256))
        with self._translate(missing=f"blob {sha256}"):
            return self._fs.open(self._full(rel), "rb")

    def read_blob(self, sha256: str) -> bytes:
        """The whole content of a blob."""
        rel = _blob_rel(_check_sha256(sha256))
        with self._translate(missing=f"blob {sha256}"):
            return self._fs.cat_file(self._full(rel))

    def get_blob(self, sha256: str, dest: str | os.PathLike[str]) -> None:
        """Download a blob to a local file, atomically, creating parent folders.

        The content goes to a hidden temp file next to ``dest`` and is renamed over ``dest``
        only when complete, so ``dest`` never holds a partial download.
        """
        rel = _blob_rel(_check_sha256(sha256))
        dest_path = os.path.abspath(os.fspath(dest))
        parent, name = os.path.split(dest_path)
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".{name}.{secrets.token_hex(8)}.part")
        try:
            with open(tmp, "xb") as out:
                with (
                    self._translate(missing=f"blob {sha256}"),
                    self._fs.open(self._full(rel), "rb") as src,
                ):
                    _copy_chunks(src, out, hashlib.sha256())
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest_path)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    # -- readable paths -------------------------------------------------------------------

    def write_bytes(self, path: str, data: bytes) -> BlobInfo:
        """Write ``data`` at a readable relative path (replacing it), atomically."""
        rel = self._check_writable(path)
        data = bytes(data)
        self._write(rel, data, f"path {path!r}")
        return BlobInfo(hashlib.sha256(data).hexdigest(), len(data))

    def read_bytes(self, path: str) -> bytes:
        """The whole content of the file at a relative path."""
        rel = _check_rel_path(path)
        with self._translate(missing=f"path {path!r}"):
            return self._fs.cat_file(self._full(rel))

    def exists(self, path: str) -> bool:
        """Whether a file (not a folder) exists at a relative path."""
        return self._is_file(_check_rel_path(path))

    def list(self, prefix: str = "") -> list[str]:
        """Relative paths of the files under ``prefix`` (a folder), sorted.

        In-flight local writes (``tmp/``) are never listed.
        """
        rel = _check_rel_path(prefix, allow_empty=True)
        base = self._full(rel)
        root_len = len(self._root) + 1
        found: list[str] = []
        if self._local:
            if os.path.isfile(base):
                found.append(rel)
            for dirpath, _dirnames, filenames in os.walk(base):
                rel_dir = dirpath[root_len:].replace(os.sep, "/")
                found.extend(f"{rel_dir}/{f}" if rel_dir else f for f in filenames)
        else:
            with self._translate():
                names = self._fs.find(base)
                if not names:
                    self._check_bucket()
            found.extend(n[root_len:] for n in names if n.startswith(self._root + "/"))
        return sorted(p for p in found if p.split("/", 1)[0] != _TMP_DIR)

    def delete(self, path: str) -> None:
        """Delete the file at a relative path; NotFound if there is none."""
        rel = self._check_writable(path)
        full = self._full(rel)
        with self._translate(missing=f"path {path!r}"):
            if self._local:
                os.remove(full)
            else:
                if not self._is_file(rel):  # S3 deletes of missing keys succeed silently
                    raise FileNotFoundError(full)
                self._fs.rm_file(full)

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _check_writable(path: str) -> str:
        rel = _check_rel_path(path)
        if rel.split("/", 1)[0] == _TMP_DIR:
            raise InvalidInput(
                f"invalid artifact path {path!r}: the top-level folder 'tmp/' is reserved for "
                "in-flight writes; choose another path"
            )
        return rel

    def _is_file(self, rel: str) -> bool:
        full = self._full(rel)
        if self._local:
            return os.path.isfile(full)
        with self._translate():
            try:
                info = self._fs.info(full)
            except FileNotFoundError:
                self._check_bucket()
                return False
        return info.get("type") == "file"

    def _write(self, rel: str, data: bytes, what: str) -> None:
        """Atomically write ``data`` at a validated relative path."""
        full = self._full(rel)
        with self._translate(target=what):
            if self._local:
                tmp = self._local_stage(lambda f: f.write(data))
                self._local_commit(tmp, full)
            else:
                self._fs.pipe_file(full, data)
