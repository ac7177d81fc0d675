"""``loopwise experiments``: see which experiments a store holds and how many runs each has."""

from __future__ import annotations

import typer

from loopwise.cli.options import JsonOption
from loopwise.cli.render import (
    console,
    local_time,
    new_table,
    print_json,
    print_note,
    text,
    where_stored,
)

app = typer.Typer(help="List experiments.", no_args_is_help=True)


@app.command("list")
def list_experiments(as_json: JsonOption = False) -> None:
    """List every experiment with its number of runs, oldest first."""
    from loopwise.tracking.fluent import list_experiments as list_api

    found = list_api()
    if as_json:
        print_json([exp.to_dict() for exp in found])
        return
    if not found:
        print_note(f"No experiments yet in {where_stored()}.")
        return
    table = new_table()
    table.add_column("id", no_wrap=True, style="dim")
    table.add_column("name", style="bold")
    table.add_column("runs", justify="right")
    table.add_column("created", no_wrap=True)
    for exp in found:
        table.add_row(
            text(exp.id),
            text(exp.name),
            text(exp.run_count if exp.run_count is not None else None),
            local_time(exp.created_at),
        )
    console().print(table)
