"""``loopwise datasets``: the versioned datasets of a store."""

from __future__ import annotations

from typing import Annotated

import typer

from loopwise.cli.options import JsonOption
from loopwise.cli.render import (
    console,
    local_time,
    new_table,
    number,
    print_json,
    print_note,
    size,
    text,
    where_stored,
)

app = typer.Typer(help="List and inspect versioned datasets.", no_args_is_help=True)


@app.command("list")
def list_datasets(as_json: JsonOption = False) -> None:
    """List every dataset with its number of versions and latest size."""
    from loopwise.data.api import list_datasets as list_api

    found = list_api()
    if as_json:
        print_json([d.to_dict() for d in found])
        return
    if not found:
        print_note(f"No datasets yet in {where_stored()}. Log one with lw.log_dataset.")
        return
    table = new_table()
    table.add_column("name", style="bold")
    table.add_column("versions", justify="right")
    table.add_column("latest", justify="right")
    table.add_column("rows", justify="right")
    table.add_column("created", no_wrap=True)
    for d in found:
        table.add_row(
            text(d.name),
            text(d.versions),
            text(d.latest_version),
            text(d.latest_rows),
            local_time(d.created_at),
        )
    console().print(table)


@app.command("show")
def show_dataset(
    ref: Annotated[
        str, typer.Argument(help="datasets:/name/3, datasets:/name@latest, or a name (latest).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Show one dataset version: size, origin, and a profile of each column."""
    from loopwise.data.api import get_dataset_version

    version = get_dataset_version(ref)
    if as_json:
        print_json(version.to_dict(with_profile=True))
        return
    out = console()
    out.print(
        f"[bold]{version.uri}[/bold]  {version.rows:,} rows × {version.columns} columns, "
        f"{size(version.size)} Parquet, created {local_time(version.created_at)}"
    )
    details = [f"sha256 {version.sha256[:16]}…"]
    if version.run_id:
        details.append(f"logged by run {version.run_id}")
    if version.source:
        details.append(f"from {version.source}")
    if version.validation is not None:
        details.append("validated: " + ("ok" if version.validation.get("ok") else "anomalies"))
    out.print("  ".join(details), style="dim", markup=False)
    if version.profile is not None:
        out.print(profile_table(version.profile))


def profile_table(profile: object) -> object:
    """A Rich table with one row per profiled column."""
    table = new_table()
    for name in ("column", "type", "nulls", "distinct", "min", "max", "mean", "top / defaults"):
        table.add_column(name, justify="right" if name in ("nulls", "distinct") else "left")
    for col in profile.columns.values():  # type: ignore[attr-defined]
        null_share = f"{col.null_fraction:.1%}" if col.nulls else "0"
        top = ", ".join(f"{v}" for v, _ in col.top_values[:3])
        if col.suspicious_defaults:
            top = (top + " · " if top else "") + "defaults: " + ", ".join(col.suspicious_defaults)
        table.add_row(
            text(col.name),
            text(col.kind),
            text(null_share),
            text(f"{col.distinct:,}" + ("~" if col.distinct_is_approximate else "")),
            text(number(col.min, 5) if col.min is not None else None),
            text(number(col.max, 5) if col.max is not None else None),
            text(number(col.mean, 5) if col.mean is not None else None),
            text(top or None),
        )
    return table
