"""Output helpers shared by every command: consoles, JSON, and value formatting.

The CLI prints two kinds of output and keeps them apart: Rich renderables for people
(colour, tables, panels) and plain JSON for programs (``--json``). JSON never goes through
Rich, so it carries no markup, no line wrapping and no colour codes, and NaN becomes
``null`` so that every JSON parser accepts it. User-supplied text (run names, param
values, tags) always enters Rich as :class:`~rich.text.Text`, never as markup, so a value
such as ``"[red]"`` is printed as written.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {
    "FINISHED": "green",
    "FAILED": "red",
    "RUNNING": "blue",
    "KILLED": "yellow",
    "LOST": "yellow",
}
MISSING = "–"


PIPE_WIDTH = 200


def console() -> Console:
    """A console on the current stdout (created per call: test runners swap stdout).

    Rich lays out for 80 columns when stdout is not a terminal; tables written to a file
    or a pipe get :data:`PIPE_WIDTH` instead (unless COLUMNS says otherwise), so their
    columns are not squeezed or cut.
    """
    out = Console(highlight=False)
    if not out.is_terminal and not os.environ.get("COLUMNS"):
        out = Console(highlight=False, width=PIPE_WIDTH)
    return out


def error_console() -> Console:
    """A console on the current stderr."""
    return Console(stderr=True, highlight=False)


def print_error(message: str) -> None:
    """Print ``Error: <message>`` in red on stderr, never wrapping (carets stay aligned)."""
    error_console().print(Text(f"Error: {message}", style="red"), soft_wrap=True)


def print_note(message: str) -> None:
    """A dim remark on stderr (hidden columns, empty results), out of the way of pipes."""
    error_console().print(Text(message, style="dim"), soft_wrap=True)


def where_stored() -> str:
    """Where the commands read: the server ``--tracking-url`` names, else the store's URL
    (its password hidden)."""
    from loopwise import context

    remote = context.remote_tracking()
    return remote.url if remote is not None else context.get_store().db.safe_url


def new_table(title: str | None = None) -> Table:
    """The house table: a rule under the header, two spaces between columns, no frame."""
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )


# -- JSON ------------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """``value`` with datetimes as ISO text, NaN/inf and NaT as None, NumPy scalars as Python."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):  # pandas.Timestamp is a datetime too
        return None if _is_nat(value) else value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return jsonable(value.item())
    if _is_nat(value):
        return None
    return str(value)


def _is_nat(value: Any) -> bool:
    return type(value).__name__ == "NaTType"


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout (``json.loads`` always accepts it)."""
    typer.echo(json.dumps(jsonable(data), indent=2, allow_nan=False, ensure_ascii=False))


# -- values ----------------------------------------------------------------------------------


def status_text(status: Any) -> Text:
    """A run status in its colour."""
    name = str(status) if status is not None else MISSING
    return Text(name, style=STATUS_STYLES.get(name, ""))


def local_time(value: datetime | None, *, zone: bool = False) -> str:
    """A timestamp in the local time zone, e.g. ``2024-05-01 14:03:07`` (``+ zone``)."""
    if value is None or _is_nat(value):
        return MISSING
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        value = value.to_pydatetime()
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S" + (" %Z" if zone else ""))


def short_time(value: datetime | None) -> str:
    """A compact local timestamp for tables, as ``ls -l`` writes them.

    ``Nov 25 09:18`` this year, ``Nov 25  2023`` before; 12 characters either way.
    """
    if value is None or _is_nat(value):
        return MISSING
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    local = value.astimezone()
    if local.year == datetime.now().astimezone().year:
        return local.strftime("%b %d %H:%M")
    return local.strftime("%b %d  %Y")


def duration(seconds: float | None) -> str:
    """A compact duration: ``850ms``, ``12.3s``, ``4m 05s``, ``2h 03m``, ``3d 04h``."""
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def number(value: Any, digits: int = 6) -> str:
    """A metric value with ``digits`` significant digits; missing values as a dash."""
    if value is None:
        return MISSING
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(as_float):
        return "nan"
    if as_float.is_integer() and abs(as_float) < 1e15:
        return str(int(as_float))
    return f"{as_float:.{digits}g}"


def size(n_bytes: int | None) -> str:
    """A byte count for people: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    if n_bytes is None:
        return MISSING
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value, unit = float(n_bytes), 0
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    return f"{n_bytes} B" if unit == 0 else f"{value:.1f} {units[unit]}"


def text(value: Any) -> Text:
    """User-supplied text, shown literally (no markup); None as a dash."""
    return Text(MISSING if value is None else str(value))
