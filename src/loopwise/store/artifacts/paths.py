"""The artifact store's layout and the rules every path and blob id must meet.

Layout under a store's root::

    blobs/sha256/<2 hex>/<remaining 62 hex>   content-addressed blobs, stored once
    <any/relative/path>                       readable files written with write_bytes
    tmp/<random>                              in-flight writes (local only; never listed)

Why here and not in each backend: both backends must accept and refuse the same paths and
place blobs at the same keys, so that a store can move from a folder to a bucket by copy.
"""

from __future__ import annotations

import re

from loopwise.errors import InvalidInput

__all__ = ["TMP_DIR", "blob_key", "check_path", "check_writable", "is_in_flight"]

TMP_DIR = "tmp"
_BLOB_DIR = "blobs/sha256"
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_EXPECTED = (
    "expected a relative path with '/' separators, such as 'predictions/ep/part-0.parquet' "
    "(no leading '/', no '..' or '.' segments, no empty segments, no backslashes)"
)


def blob_key(sha256: object) -> str:
    """The relative path of the blob with this SHA-256; InvalidInput for a malformed id."""
    if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
        raise InvalidInput(
            f"invalid blob id {sha256!r}: expected a SHA-256 digest, 64 lowercase hex characters"
        )
    return f"{_BLOB_DIR}/{sha256[:2]}/{sha256[2:]}"


def check_path(path: object, *, allow_empty: bool = False) -> str:
    """Validate a path relative to the store root; return it without a trailing slash
    (``allow_empty``: the root itself, ``''``, is accepted, as a listing prefix)."""
    if not isinstance(path, str):
        raise InvalidInput(f"invalid artifact path {path!r}: {_EXPECTED}")
    stripped = path.rstrip("/") if allow_empty else path
    if not stripped:
        if allow_empty:
            return ""
        raise InvalidInput(f"invalid artifact path {path!r}: {_EXPECTED}")
    if (
        stripped.startswith("/")
        or "\\" in stripped
        or "\x00" in stripped
        or "://" in stripped
        or any(seg in ("", ".", "..") for seg in stripped.split("/"))
    ):
        raise InvalidInput(f"invalid artifact path {path!r}: {_EXPECTED}")
    return stripped


def check_writable(path: object) -> str:
    """:func:`check_path`, and refuse the folder reserved for in-flight writes."""
    rel = check_path(path)
    if is_in_flight(rel):
        raise InvalidInput(
            f"invalid artifact path {path!r}: the top-level folder 'tmp/' is reserved for "
            "in-flight writes; choose another path"
        )
    return rel


def is_in_flight(rel: str) -> bool:
    """Whether a validated relative path lies in the folder of in-flight writes."""
    return rel.split("/", 1)[0] == TMP_DIR
