"""Options shared by the CLI's commands: ``--json`` and the time range ``--start/--end``.

Declared once so that every command spells, explains and parses them the same way. Times
are read by :func:`loopwise.clock.parse_moment`: an ISO 8601 time with a zone, ``now``, or a
time before now such as ``-3d``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from loopwise import clock

START_HELP = "ISO 8601 time with a zone, or relative (-3d)."
END_HELP = "ISO 8601 time with a zone, relative, or now."


def json_option(help: str = "Print JSON instead of tables.") -> Any:
    """The ``--json`` flag; ``help`` for a command whose JSON is not a table's rows."""
    return typer.Option("--json", help=help)


def start_option(help: str = START_HELP, *, show_default: bool = False) -> Any:
    """The ``--start`` option (a moment as :func:`moments` reads it)."""
    return typer.Option("--start", help=help, show_default=show_default)


def end_option(help: str = END_HELP, *, show_default: bool = False) -> Any:
    """The ``--end`` option (a moment as :func:`moments` reads it)."""
    return typer.Option("--end", help=help, show_default=show_default)


JsonOption = Annotated[bool, json_option()]
StartOption = Annotated[str | None, start_option()]
EndOption = Annotated[str | None, end_option()]


def moments(
    start: str | None, end: str | None, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """``--start`` and ``--end`` as datetimes (None stays None), relative ones against the
    same ``now`` (default: the clock's); a bad value is an InvalidInput naming the option."""
    at = clock.now() if now is None else now
    begin = None if start is None else clock.parse_moment(start, at, "--start")
    finish = None if end is None else clock.parse_moment(end, at, "--end")
    return begin, finish
