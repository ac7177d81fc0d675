"""Time parameters of the REST API's queries, and cursors into time-ordered streams.

A time is ISO 8601 with a zone (``2026-05-01T14:00:00Z``, ``...+02:00``), read by
:func:`loopwise.clock.parse_iso`: a time without a zone is a 400 that says how to add one.
In a URL query an unencoded ``+`` means a space, so ``...T14:00:00 02:00`` (what
``+02:00`` becomes when a caller forgets to write ``%2B``) is read as ``+02:00``.

The prediction log, a monitor's windows and the audit log are streams ordered by time,
too long to list in one answer and too long to cut out of a list in memory. Their pages
are cursors: a position in the stream (a time, and how many items at that time were
given), written as an opaque token naming the listing, so a token is refused by any other.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Query

from loopwise.clock import EPOCH, exact_us, parse_iso
from loopwise.errors import InvalidInput
from loopwise.server.listing import decode_token, encode_token

#: Times as stored: microseconds since the epoch, at most the last moment of year 9999.
LAST_US = exact_us(datetime.max.replace(tzinfo=EPOCH.tzinfo))

TimeParam = Annotated[
    str | None,
    Query(
        max_length=64,
        description="ISO 8601 time with a zone, e.g. 2026-05-01T14:00:00Z or "
        "2026-05-01T16:00:00%2B02:00 (a + in a URL is written %2B).",
    ),
]

_SPACED_OFFSET = re.compile(r"(\d) (\d\d(?::?\d\d)?)$")


def moment(value: str | None, what: str) -> datetime | None:
    """``value`` (a query parameter named ``what``) as an aware datetime; None stays None."""
    if value is None:
        return None
    text = _SPACED_OFFSET.sub(r"\1+\2", value.strip())
    at = parse_iso(text, what)
    try:
        exact_us(at)
        at.astimezone(EPOCH.tzinfo)
    except OverflowError:
        raise InvalidInput(f"{what} {value!r} is outside the years 1 to 9999.") from None
    return at


def time_range(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """``start`` and ``end`` as datetimes; a 400 unless ``end`` is after ``start``."""
    first, last = moment(start, "start"), moment(end, "end")
    if first is not None and last is not None and last <= first:
        raise InvalidInput(
            f"end {end!r} is not after start {start!r}; the range is [start, end): give an "
            "end later than its start."
        )
    return first, last


def at_us(us: int) -> datetime:
    """The UTC datetime of ``us`` microseconds since the epoch, exactly."""
    return EPOCH + timedelta(microseconds=us)


def encode_cursor(listing: str, position: list[int]) -> str:
    """An opaque page token for ``position`` in the stream ``listing``."""
    return encode_token(listing, position)


def decode_cursor(token: str, listing: str, size: int) -> list[int]:
    """The position (``size`` integers) a token of :func:`encode_cursor` holds; a 400 for a
    token of another listing or one this server did not give."""
    values = decode_token(token, listing)
    if (
        values is None
        or len(values) != size
        or not all(type(v) is int and 0 <= v <= LAST_US for v in values)
    ):
        raise InvalidInput(
            f"page_token {token[:80]!r} was not given by this listing; pass the "
            "next_page_token of the previous answer unchanged (with the same query), or "
            "leave it out for the first page."
        )
    return values


__all__ = [
    "LAST_US",
    "TimeParam",
    "at_us",
    "decode_cursor",
    "encode_cursor",
    "moment",
    "time_range",
]
