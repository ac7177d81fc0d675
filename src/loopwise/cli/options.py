"""Options shared by the CLI's commands: ``--json``, the time range ``--start/--end``, and
the hidden former names of renamed options.

Declared once so that every command spells, explains and parses them the same way. Times
are read by :func:`loopwise.clock.parse_moment`: an ISO 8601 time with a zone, ``now``, or a
time before now such as ``-3d``. A renamed option (``--label`` -> ``--target``) keeps its
old name hidden from ``--help``; using it prints a deprecation note on stderr.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from loopwise import clock
from loopwise.cli.render import print_note
from loopwise.errors import InvalidInput

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


def former_option(name: str, new: str) -> Any:
    """The hidden ``name`` option, the former name of ``new`` (read with :func:`renamed`)."""
    return typer.Option(name, hidden=True, help=f"Deprecated: use {new}.")


def renamed(new: str, new_value: Any, old: str, old_value: Any) -> Any:
    """The value of option ``new`` given under its own name or its former name ``old``
    (None: not given); the former name prints a deprecation note, both is an error."""
    if old_value is None:
        return new_value
    if new_value is not None:
        raise InvalidInput(
            f"Give {new} or its deprecated name {old}, not both. "
            f"Got {new} {new_value} and {old} {old_value}; drop {old}."
        )
    print_note(f"{old} is deprecated; use {new}.")
    return old_value
