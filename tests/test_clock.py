"""Time parsing in one place: durations, ISO moments, relative moments, one rule for a time
without a zone (refused, with the way to write it), and the clock tests step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from loopwise import clock
from loopwise.errors import InvalidInput
from tests.helpers import stepped_clock

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604_800), ("2w", 1_209_600), (" 3 H", 10800)],
)
def test_durations(text, seconds):
    assert clock.parse_duration(text) == seconds
    assert clock.parse_duration(timedelta(seconds=seconds)) == seconds


@pytest.mark.parametrize("bad", ["0s", "1.5h", "6 hours", "", "-1d", 90, None])
def test_bad_durations_name_the_value_and_the_forms(bad):
    with pytest.raises(InvalidInput, match=r"cooldown: must be a duration such as 30s, 15m"):
        clock.parse_duration(bad, "cooldown")


def test_a_duration_of_a_fraction_of_a_second_is_refused():
    with pytest.raises(InvalidInput, match="whole number of seconds"):
        clock.parse_duration(timedelta(seconds=1.5))


@pytest.mark.parametrize(
    ("seconds", "text"), [(21600, "6h"), (90, "90s"), (1.5, "1.5s"), (604_800, "1w"), (120, "2m")]
)
def test_format_duration_writes_what_parse_duration_reads(seconds, text):
    assert clock.format_duration(seconds) == text
    if seconds == int(seconds):
        assert clock.parse_duration(text) == seconds


def test_iso_moments_need_a_zone():
    assert clock.parse_iso("2026-01-01T00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)
    assert clock.parse_iso("2026-01-01T02:00+02:00") == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match=r"'2026-01-01T00:00' has no time zone") as naive:
        clock.parse_iso("2026-01-01T00:00", "--time")
    assert "2026-01-01T00:00Z (UTC) or 2026-01-01T00:00+02:00" in str(naive.value)
    with pytest.raises(InvalidInput, match=r"e\.g\. 2026-01-01T00:00Z"):
        clock.parse_iso("2026-01-01")  # a date alone: the example adds a time
    with pytest.raises(InvalidInput, match="is not an ISO 8601 time"):
        clock.parse_iso("yesterday")


def test_moments_absolute_relative_and_now():
    assert clock.parse_moment("-3d", NOW) == NOW - timedelta(days=3)
    assert clock.parse_moment("now", NOW) == NOW
    assert clock.parse_moment("2026-01-10T14:00+02:00", NOW) == NOW
    assert clock.parse_moment(NOW.astimezone(timezone(timedelta(hours=-5))), NOW) == NOW
    with pytest.raises(InvalidInput, match="has no time zone"):
        clock.parse_moment("2026-01-10T12:00", NOW)
    with pytest.raises(InvalidInput, match="has no time zone"):
        clock.parse_moment(datetime(2026, 1, 10), NOW)
    with pytest.raises(InvalidInput, match="--end must be an ISO 8601 time"):
        clock.parse_moment("tomorrow", NOW, "--end")


def test_aware_datetimes_only():
    assert clock.to_us(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == 1_000_000
    assert clock.exact_us(datetime(2026, 1, 1, 0, 0, 0, 7, tzinfo=UTC)) % 1_000_000 == 7
    with pytest.raises(InvalidInput, match="has no time zone"):
        clock.to_us(datetime(2026, 1, 1))


def test_a_stepped_clock_moves_only_when_told_and_is_put_back():
    with stepped_clock(NOW) as stepped:
        first, second = clock.now(), clock.now()
        assert NOW < first < second < NOW + timedelta(milliseconds=1)
        stepped.advance(60)
        assert clock.now() - second >= timedelta(seconds=60)
        assert clock.parse_moment("-1m") > second  # relative moments read the same clock
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
