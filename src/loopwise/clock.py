"""Time as loopwise stores it: integer microseconds since the epoch, in UTC.

The API takes and returns timezone-aware datetimes; nothing depends on the local zone.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from loopwise.errors import InvalidInput


def now_us() -> int:
    """The current time in microseconds since the epoch."""
    return time.time_ns() // 1000


def to_datetime(us: int | None) -> datetime | None:
    """A UTC datetime for stored microseconds (None stays None)."""
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def to_us(value: datetime | float | int, *, what: str = "timestamp") -> int:
    """Microseconds for a timezone-aware datetime or epoch seconds.

    A naive datetime is refused: guessing its zone is how time bugs start.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput(
                f"{what} {value.isoformat()} has no time zone. Pass an aware datetime, "
                "for example datetime.now(timezone.utc)."
            )
        return int(value.timestamp() * 1_000_000)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(
            f"{what} must be a timezone-aware datetime or seconds since the epoch, "
            f"got {type(value).__name__} {value!r}."
        )
    return int(value * 1_000_000)
