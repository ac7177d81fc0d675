"""Time as loopwise stores and reads it: integer microseconds since the epoch, in UTC.

The API takes and returns timezone-aware datetimes; nothing depends on the local zone. This
module is the one place that reads the current time and parses time as people write it:
durations (``90s``, ``15m``, ``1h``, ``7d``, ``2w``), ISO 8601 moments and moments relative to
now (``-3d``, ``now``). A time without a zone is refused everywhere, with a message that says
how to add one: guessing its zone is how time bugs start.

Why a clock to read from: tests set it (:func:`use_clock`) to step time instead of sleeping
to separate two timestamps.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from loopwise.errors import InvalidInput

#: The origin of stored times.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Seconds per unit of a duration such as ``15m``.
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
DURATION_EXAMPLES = "30s, 15m, 1h, 1d or 2w"

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_ONE_US = timedelta(microseconds=1)
# Where the current time comes from: None reads the system clock; tests install a source.
_source: Callable[[], int] | None = None


def now_us() -> int:
    """The current time in microseconds since the epoch (from :func:`use_clock`'s source
    while one is installed)."""
    source = _source
    return time.time_ns() // 1000 if source is None else source()


def now() -> datetime:
    """The current time as a UTC datetime (the same clock as :func:`now_us`)."""
    return EPOCH + timedelta(microseconds=now_us())


_now = now  # for parse_moment, whose ``now`` parameter hides this function


@contextmanager
def use_clock(source: Callable[[], int]) -> Iterator[None]:
    """Read the current time from ``source`` (microseconds since the epoch) inside the block.

    For tests: a clock they step gives distinct, ordered timestamps without sleeping.
    """
    global _source
    before, _source = _source, source
    try:
        yield
    finally:
        _source = before


def to_datetime(us: int | None) -> datetime | None:
    """A UTC datetime for stored microseconds (None stays None)."""
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def to_us(value: datetime | float | int, *, what: str = "timestamp") -> int:
    """Microseconds for a timezone-aware datetime or epoch seconds (a naive datetime is
    refused, see :func:`require_zone`)."""
    if isinstance(value, datetime):
        return int(require_zone(value, what).timestamp() * 1_000_000)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(
            f"{what} must be a timezone-aware datetime or seconds since the epoch, "
            f"got {type(value).__name__} {value!r}."
        )
    return int(value * 1_000_000)


def exact_us(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (no float rounding)."""
    return (value - EPOCH) // _ONE_US


def require_zone(value: datetime, what: str = "time") -> datetime:
    """``value`` itself when it has a time zone; otherwise an InvalidInput saying how to add one."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{what} {value.isoformat()} has no time zone. Pass an aware datetime, for "
            "example datetime(2026, 1, 1, tzinfo=timezone.utc) or datetime.now(timezone.utc)."
        )
    return value


def parse_iso(value: str, what: str = "time") -> datetime:
    """An ISO 8601 time with a zone (``2026-01-01T00:00Z``, ``...+02:00``) as a datetime.

    A time without a zone is refused, with the same text written with one as the way out.
    """
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{what} {value!r} is not an ISO 8601 time; write it as e.g. 2026-01-01T00:00Z "
            "or 2026-01-01T14:00:00+02:00."
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        timed = text if len(text) > 10 else f"{text}T00:00"  # a date alone takes no zone
        raise InvalidInput(
            f"{what} {value!r} has no time zone; write it with one, e.g. {timed}Z (UTC) or "
            f"{timed}+02:00."
        )
    return moment


def parse_duration(value: Any, what: str = "duration") -> int:
    """Whole seconds of ``"90s"``, ``"15m"``, ``"1h"``, ``"1d"``, ``"2w"`` or a timedelta (at
    least one second)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds < 1 or seconds != int(seconds):
            raise InvalidInput(
                f"{what}: must be a whole number of seconds, at least 1; got {value}."
            )
        return int(seconds)
    match = _DURATION.fullmatch(value.strip().lower()) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise InvalidInput(
            f"{what}: must be a duration such as {DURATION_EXAMPLES}; got {value!r}."
        )
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    """A duration as people write it: ``21600`` -> ``6h``, ``90`` -> ``90s``, ``1.5`` ->
    ``1.5s``."""
    if seconds == int(seconds) and seconds > 0:
        for unit, size in sorted(DURATION_UNITS.items(), key=lambda kv: -kv[1]):
            if seconds % size == 0:
                return f"{int(seconds) // size}{unit}"
    return f"{seconds:g}s"


def parse_moment(value: Any, now: datetime | None = None, what: str = "time") -> datetime:
    """A moment from a timezone-aware datetime, an ISO 8601 time with a zone
    (``2024-05-01T14:00:00+02:00``, ``...Z``), ``now``, or a time relative to now
    (``-3d``, ``-12h``, ``-90m``). ``now`` defaults to :func:`now`."""
    if isinstance(value, datetime):
        return require_zone(value, what)
    if isinstance(value, str):
        text = value.strip()
        base = now if now is not None else _now()
        if text.lower() == "now":
            return base
        if text.startswith("-"):
            return base - timedelta(seconds=parse_duration(text[1:], what))
        try:
            datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return parse_iso(text, what)
    raise InvalidInput(
        f"{what} must be an ISO 8601 time with a zone (2024-05-01T14:00:00+02:00), 'now', or "
        f"a time before now such as -3d, -12h or -90m; got {value!r}."
    )
