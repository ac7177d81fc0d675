"""Time-sortable identifiers.

Ids are ULID-style: 48 bits of milliseconds since the epoch, then 80 random bits, written
as 26 lowercase Crockford base-32 characters. Sorting ids as text sorts entities by
creation time, so listings need no extra index on a timestamp.
"""

from __future__ import annotations

import os
import re
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# Crockford base 32 (no i, l, o, u) to the digits that int(..., 32) reads.
_TO_DIGITS = str.maketrans(_ALPHABET, "0123456789abcdefghijklmnopqrstuv")
#: How :func:`new_id` writes an id (a regular expression, for schemas and validators):
#: 26 characters, the first at most "7" (two always-zero bits, then the milliseconds).
ID_PATTERN = f"[0-7][{_ALPHABET}]{{25}}"
_ID = re.compile(ID_PATTERN)


#: The longest endpoint name: names become paths in the prediction log and metric labels.
ENDPOINT_NAME_LENGTH = 63


def slug_pattern(max_length: int = ENDPOINT_NAME_LENGTH) -> re.Pattern[str]:
    """Names that become paths and labels (endpoints, monitors): lowercase letters, digits,
    ``_`` and ``-``, starting with a letter or digit, at most ``max_length`` characters."""
    return re.compile(f"[a-z0-9][a-z0-9_-]{{0,{max_length - 1}}}")


def label_pattern(max_length: int) -> re.Pattern[str]:
    """Names people give (tokens, alert rules): letters, digits, ``.``, ``_`` and ``-``,
    starting with a letter or digit, at most ``max_length`` characters."""
    return re.compile(f"[A-Za-z0-9][A-Za-z0-9._-]{{0,{max_length - 1}}}")


def new_id(now_ms: int | None = None) -> str:
    """Return a new 26-character time-sortable id."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def id_time_ms(entity_id: str) -> int:
    """Milliseconds since the epoch encoded in an id made by :func:`new_id`.

    The first 10 characters hold 50 bits: two always-zero bits, then the 48-bit
    millisecond count, so their value is the count itself.
    """
    return int(entity_id[:10].translate(_TO_DIGITS), 32)


def is_id(value: str) -> bool:
    """Whether ``value`` is written as :func:`new_id` writes ids (so :func:`id_time_ms` can
    read a time from it): request ids of a served endpoint are; ids users chose are not."""
    return _ID.fullmatch(value) is not None
