"""What list routes share: keyset pages of a listing, and the checks on the names,
numbers and text callers put in paths, queries and bodies.

Pages are keyset pages: a page token is opaque to callers (URL-safe base64 of the listing
it came from and the key of the last item given), and the next page starts after that
key, so an item added meanwhile neither repeats nor hides one. The registry and dataset
services return a whole list (the versions of a model, the moves of an alias ...), so the
page is cut here, over the list ordered by its key; append-only lists (alias history,
promotion decisions, evaluations) use an item's position as its key, which never changes.

The checks run before any query, so a hostile value (a name a reference cannot hold, a
version beyond the database's 32-bit column, a NUL character PostgreSQL refuses in text)
is a 400 naming it rather than a database error.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import AfterValidator

from loopwise.errors import InvalidInput, InvalidReference
from loopwise.refs import parse_ref

T = TypeVar("T")
Key = int | str

#: The highest version number the store's version columns hold.
MAX_VERSION = 2**31 - 1

MaxResults = Annotated[
    int, Query(ge=1, le=1000, description="How many items per page (1 to 1000).")
]
PageToken = Annotated[
    str | None,
    Query(
        max_length=1000,
        description="The next_page_token of the previous answer; leave out for the first page.",
    ),
]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


#: Text a caller sends: any string but one with a NUL character, which no store keeps.
Text = Annotated[str, AfterValidator(_no_nul)]


def name_of(kind: str, name: str) -> str:
    """``name`` itself when a ``kind:/`` reference can hold it (``models``, ``datasets``);
    an InvalidReference saying what a name may contain otherwise."""
    try:
        ref = parse_ref(f"{kind}:/{name}", kind=kind)
    except InvalidReference:
        ref = None
    if ref is None or ref.name != name:
        raise InvalidReference(
            f"{name[:200]!r} is not a valid {kind[:-1]} name: use letters, digits, '_', '.' and "
            "'-', starting with a letter or digit."
        )
    return name


def encode_token(listing: str, values: list[Any]) -> str:
    """An opaque page token: ``values`` (JSON scalars) tagged with the ``listing`` that
    gave them, so a token is refused by any other listing."""
    raw = json.dumps([listing, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, listing: str) -> list[Any] | None:
    """The values of a token :func:`encode_token` gave for ``listing``; None for anything
    else (the caller refuses it with a 400 and checks the values' types)."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(decoded, list) or not decoded or decoded[0] != listing:
        return None
    return decoded[1:]


def _encode(listing: str, after: Key) -> str:
    return encode_token(listing, [after])


def _decode(token: str, listing: str, key_type: type | None) -> Key:
    values = decode_token(token, listing)
    if (
        values is None
        or len(values) != 1
        or type(values[0]) not in (int, str)
        or (key_type is not None and type(values[0]) is not key_type)
    ):
        raise InvalidInput(
            f"page_token {token[:80]!r} was not given by this listing; pass the "
            "next_page_token of the previous answer unchanged, or leave page_token out for "
            "the first page."
        )
    return values[0]


def page(
    listing: str,
    items: Sequence[T],
    key: Callable[[int, T], Key],
    token: str | None,
    max_results: int,
) -> tuple[list[T], str | None]:
    """The page of ``items`` after ``token``, ordered by ``key(position, item)`` (unique
    per item, all of one type), and the token of the next page (None on the last).

    ``listing`` names the listing and its filters, so a token is refused by any other.
    """
    keyed = sorted(((key(i, item), item) for i, item in enumerate(items)), key=lambda p: p[0])
    start = 0
    if token is not None:
        after = _decode(token, listing, type(keyed[0][0]) if keyed else None)
        start = next((i for i, (k, _) in enumerate(keyed) if k > after), len(keyed))
    chosen = keyed[start : start + max_results]
    more = start + max_results < len(keyed)
    return [item for _, item in chosen], _encode(listing, chosen[-1][0]) if more else None


def finite(value: Any) -> Any:
    """``value`` with every float that is not finite (NaN, infinities) as None: JSON has no
    such numbers, and a stored metric or statistic may be one."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


__all__ = ["MAX_VERSION", "MaxResults", "PageToken", "Text", "finite", "name_of", "page"]
