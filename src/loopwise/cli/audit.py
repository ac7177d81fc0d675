"""``loopwise audit``: the writes made through the server, newest first (who, what, when).

Reads the store's audit log directly (:func:`loopwise.auth.audit.list_audit_events`), so it
works where the store is reachable, whether or not a server is running.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from loopwise.cli.options import EndOption, JsonOption, StartOption, moments
from loopwise.cli.render import (
    MISSING,
    console,
    local_time,
    new_table,
    print_json,
    print_note,
    text,
)

_STATUS_STYLES = {2: "green", 4: "yellow", 5: "red"}


def audit_command(
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            help="Only this token's writes ('anonymous': without one).",
            show_default=False,
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option("--method", help="Only POST, PUT, PATCH or DELETE.", show_default=False),
    ] = None,
    entity: Annotated[
        str | None,
        typer.Option(
            "--entity",
            help="Only writes to this entity, e.g. endpoints/credit-risk.",
            show_default=False,
        ),
    ] = None,
    start: StartOption = None,
    end: EndOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=100_000, help="Show at most this many.")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the writes made through the server, newest first: who, what, when."""
    from loopwise.auth.audit import list_audit_events
    from loopwise.context import get_store

    store = get_store()
    first, last = moments(start, end)
    events, token = [], None
    while len(events) < limit:
        found = list_audit_events(
            store,
            actor=actor,
            method=method,
            entity=entity,
            start=first,
            end=last,
            max_results=min(1000, limit - len(events)),
            page_token=token,
        )
        events += found.events
        token = found.next_page_token
        if token is None:
            break
    if as_json:
        print_json([e.to_dict() for e in events])
        return
    if not events:
        print_note(f"No writes through the server recorded in {store.db.safe_url} that match.")
        return
    table = new_table()
    for name in ("time", "actor", "method", "path", "status", "entity"):
        table.add_column(name, no_wrap=name in ("time", "method", "status"))
    for e in events:
        status = Text(str(e.status), style=_STATUS_STYLES.get(e.status // 100, ""))
        table.add_row(
            local_time(e.at), text(e.actor), text(e.method), text(e.path), status,
            text(e.entity) if e.entity else MISSING,
        )  # fmt: skip
    console().print(table)
    if token is not None:
        print_note(f"Showing the latest {limit}; raise --limit or narrow --start/--end for more.")


__all__ = ["audit_command"]
