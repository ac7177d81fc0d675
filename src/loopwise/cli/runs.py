"""``loopwise runs``: list, inspect and compare runs from the terminal.

Each command makes one call into the tracking services (``search_runs``, ``get_run``,
``list_artifacts``) and hands the result to :mod:`loopwise.cli.run_views` for display, or
prints it as JSON with ``--json``. Heavy imports (pandas, SQLAlchemy) happen inside the
commands, so ``loopwise --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Group

from loopwise.cli.render import console, print_json, print_note

app = typer.Typer(help="List, inspect and compare runs.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@app.command("list")
def list_runs(
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            help="Only runs of this experiment (name or id); repeat for several.",
            show_default=False,
        ),
    ] = None,
    filter_text: Annotated[
        str | None,
        typer.Option(
            "--filter",
            "-f",
            help="Filter, e.g. \"metrics.auc > 0.8 and params.model = 'xgb'\".",
            show_default=False,
        ),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option(
            "--order-by",
            "-o",
            help="Sort key, e.g. 'metrics.auc desc'; repeat for ties. Default: newest first.",
            show_default=False,
        ),
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max-results", "-n", help="Show at most this many runs.")
    ] = 50,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            "--columns",
            "-c",
            help="Extra columns, comma-separated, e.g. 'metrics.auc,params.C,tags.team'. "
            "Default: the metric columns that fit the terminal.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first: status, start, duration and metrics.

    With --json each run comes with all its params, metrics and tags (not just --columns).
    """
    from loopwise.cli import run_views
    from loopwise.context import get_store
    from loopwise.tracking.search import search_runs

    frame = search_runs(
        get_store(),
        experiment=experiment or None,
        filter=filter_text,
        order_by=order_by or None,
        max_results=max_results,
    )
    if as_json:
        print_json(run_views.frame_records(frame))
        return
    if frame.empty:
        print_note("No runs match.")
        return
    out = console()
    requested = run_views.split_columns(columns)
    table, notes = run_views.runs_table(frame, requested, width=out.width)
    out.print(table)
    if len(frame) == max_results:
        notes.append(f"Showing the first {max_results} runs; raise --max-results to see more.")
    for note in notes:
        print_note(note)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="The run id (see `loopwise runs list`).")],
    as_json: JsonOption = False,
) -> None:
    """Show one run: overview, params, latest metrics, tags, environment and artifacts."""
    from loopwise.cli import run_views
    from loopwise.context import get_store
    from loopwise.tracking.run_artifacts import list_artifacts
    from loopwise.tracking.runs import get_run

    store = get_store()
    run = get_run(store, run_id)
    artifacts = list_artifacts(store, run.id)
    if as_json:
        print_json({**run.to_dict(), "artifacts": [a.to_dict() for a in artifacts]})
        return
    console().print(Group(*run_views.run_details(run, artifacts)))


@app.command()
def compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.", show_default=False)],
    show_all: Annotated[
        bool, typer.Option("--all", help="Also show params that are the same in every run.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compare runs side by side: one column per run, differing rows in bold.

    Params equal in every run are hidden unless --all; metrics (latest values) always show.
    """
    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two run ids to compare.", param_hint="RUN_IDS")
    from loopwise.cli import run_views
    from loopwise.context import get_store
    from loopwise.tracking.runs import get_run

    store = get_store()
    found = [get_run(store, run_id) for run_id in run_ids]
    if as_json:
        print_json([run.to_dict() for run in found])
        return
    table, hidden = run_views.compare_table(found, show_all=show_all)
    console().print(table)
    if hidden:
        noun = "param is" if hidden == 1 else "params are"
        print_note(f"{hidden} {noun} the same in every run and not shown; --all shows them.")
