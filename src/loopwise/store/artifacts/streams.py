"""Bytes in bounded chunks: copying while hashing, and downloading to a local file
atomically. Shared by every artifact backend; nothing here knows one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import IO, Any

from loopwise.store.artifacts.interface import BlobInfo

__all__ = ["CHUNK_SIZE", "copy_chunks", "download", "hash_bytes", "hash_file", "unlink_quietly"]

#: Size of the chunks files are streamed and hashed in.
CHUNK_SIZE = 1024 * 1024


def copy_chunks(src: IO[bytes], dst: IO[bytes], hasher: Any) -> int:
    """Copy ``src`` to ``dst`` in CHUNK_SIZE pieces, feeding ``hasher``; return bytes copied."""
    size = 0
    while chunk := src.read(CHUNK_SIZE):
        hasher.update(chunk)
        dst.write(chunk)
        size += len(chunk)
    return size


def hash_file(path: str) -> BlobInfo:
    """SHA-256 and size of a local file, read in CHUNK_SIZE pieces."""
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            hasher.update(chunk)
            size += len(chunk)
    return BlobInfo(hasher.hexdigest(), size)


def hash_bytes(data: bytes) -> BlobInfo:
    """SHA-256 and size of ``data``."""
    return BlobInfo(hashlib.sha256(data).hexdigest(), len(data))


def unlink_quietly(path: str) -> None:
    """Remove a local file that may already be gone."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def download(
    source: Callable[[], AbstractContextManager[IO[bytes]]], dest: str | os.PathLike[str]
) -> None:
    """Copy the stream ``source()`` opens to the local file ``dest``, atomically.

    The content goes to a hidden temp file next to ``dest`` (creating parent folders), is
    fsynced, and is renamed over ``dest`` only when complete, so ``dest`` never holds a
    partial download; on any failure the temp file is removed and ``dest`` is untouched.
    """
    dest_path = os.path.abspath(os.fspath(dest))
    parent, name = os.path.split(dest_path)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{name}.{secrets.token_hex(8)}.part")
    try:
        with open(tmp, "xb") as out:
            with source() as src:
                copy_chunks(src, out, hashlib.sha256())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest_path)
    except BaseException:
        unlink_quietly(tmp)
        raise
