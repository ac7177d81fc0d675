"""``loopwise runs``: list, inspect and compare runs, and read a metric's history.

Each command makes one call into the tracking API (``search_runs``, ``get_run``,
``list_artifacts``, ``get_metric_history``: the store, or the server that
``LOOPWISE_TRACKING_URL`` / ``--tracking-url`` names) and hands the result to
:mod:`loopwise.cli.run_views` for display, or prints it as JSON with ``--json``. A run is
named by its id or by its name, as ``runs list`` shows both (ids win; a name two runs share
is refused with their ids). ``reproduce`` runs a pipeline run again from its git commit
(:mod:`loopwise.pipelines.reproduce`, on the local store). Heavy imports (pandas,
SQLAlchemy) happen inside the commands, so ``loopwise --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Group

from loopwise.cli.options import JsonOption, json_option
from loopwise.cli.render import console, print_json, print_note
from loopwise.cli.run_views import HISTORY_ROWS

app = typer.Typer(help="List, inspect and compare runs.", no_args_is_help=True)

RunArg = Annotated[
    str,
    typer.Argument(
        metavar="RUN", help="A run id or a run name, as `loopwise runs list` shows them."
    ),
]


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
            help="The columns to show after id, name, experiment, status, start and duration, "
            "comma-separated, e.g. 'metrics.auc,params.C,tags.team'. Default: the metric "
            "columns that fit the terminal. The --order-by keys are always shown.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first: status, start, duration and metrics.

    The columns sorted on come first; --columns picks the rest. With --json each run comes
    with all its params, metrics and tags (not just --columns).
    """
    from loopwise.cli import run_views
    from loopwise.tracking.fluent import search_runs

    frame = search_runs(
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
    table, notes = run_views.runs_table(
        frame, requested, width=out.width, sorted_by=run_views.sort_columns(order_by)
    )
    out.print(table)
    if len(frame) == max_results:
        notes.append(f"Showing the first {max_results} runs; raise --max-results to see more.")
    for note in notes:
        print_note(note)


@app.command()
def show(run_id: RunArg, as_json: JsonOption = False) -> None:
    """Show one run: overview, params, latest metrics, tags, environment and artifacts."""
    from loopwise.cli import run_views
    from loopwise.tracking.fluent import get_run, list_artifacts

    run = get_run(run_id)
    artifacts = list_artifacts(run.id)
    if as_json:
        print_json({**run.to_dict(), "artifacts": [a.to_dict() for a in artifacts]})
        return
    console().print(Group(*run_views.run_details(run, artifacts)))


@app.command()
def compare(
    run_ids: Annotated[
        list[str],
        typer.Argument(metavar="RUN...", help="Two or more run ids or names.", show_default=False),
    ],
    show_all: Annotated[
        bool, typer.Option("--all", help="Also show params that are the same in every run.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compare runs side by side: one column per run, differing rows in bold.

    Params equal in every run are hidden unless --all; metrics (latest values) always show.
    """
    if len(run_ids) < 2:
        raise typer.BadParameter(
            "give at least two run ids or names to compare.", param_hint="RUN..."
        )
    from loopwise.cli import run_views
    from loopwise.tracking.fluent import get_run

    found = [get_run(run_id) for run_id in run_ids]
    if as_json:
        print_json([run.to_dict() for run in found])
        return
    table, hidden = run_views.compare_table(found, show_all=show_all)
    console().print(table)
    if hidden:
        noun = "param is" if hidden == 1 else "params are"
        print_note(f"{hidden} {noun} the same in every run and not shown; --all shows them.")


@app.command("metric")
def metric(
    run_id: RunArg,
    key: Annotated[str, typer.Argument(help="The metric key, e.g. loss.")],
    max_rows: Annotated[
        int,
        typer.Option(
            "--max-rows",
            "-n",
            min=1,
            help="List at most about this many points (evenly spaced, plus the lowest and "
            "highest).",
        ),
    ] = HISTORY_ROWS,
    as_json: Annotated[bool, json_option("Print every point and the summary as JSON.")] = False,
) -> None:
    """A metric's history: first, last, min and max, a sparkline, and its points.

    A long history lists an evenly spaced subset (and says so); --json has every point.
    """
    from loopwise.cli import run_views
    from loopwise.tracking.fluent import get_metric_history, get_run

    run = get_run(run_id)
    history = get_metric_history(run.id, key)
    if as_json:
        typer.echo(run_views.history_json(run, key, history))
        return
    if history.empty:
        print_note(f"Metric {key!r} of run {run.name} ({run.id}) has no points yet.")
        return
    sections, notes = run_views.history_details(run, key, history, limit=max_rows)
    console().print(Group(*sections))
    for note in notes:
        print_note(note)


@app.command("reproduce")
def reproduce(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="A pipeline run id or name.")],
    as_json: JsonOption = False,
) -> None:
    """Run a pipeline run again from its git commit (in a temporary worktree), with its
    parameters and no cache, and show which outputs and metrics differ.

    Exit code 1 when the reproduced run did not finish.
    """
    from loopwise import context
    from loopwise.cli.render import error_console, new_table, number, status_text, text
    from loopwise.pipelines.reproduce import reproduce_run

    with error_console().status(f"reproducing {run_id} from its commit", spinner="dots"):
        result = reproduce_run(context.local_store(), run_id)
    if as_json:
        print_json(result.to_dict())
    else:
        out = console()
        for warning in result.warnings:
            error_console().print(f"Warning: {warning}", style="yellow", markup=False)
        steps = new_table(f"steps · {result.original.id} → {result.reproduced.id}")
        for name in ("step", "old", "new", "output", "old output", "new output"):
            steps.add_column(name)
        for s in result.steps:
            steps.add_row(
                text(s.name),
                status_text(s.old_status),
                status_text(s.new_status),
                text("same" if s.same else "DIFFERS"),
                text(_short(s.old_output)),
                text(_short(s.new_output)),
            )
        out.print(steps)
        if result.metrics:
            metrics = new_table("metrics")
            for name in ("run", "metric", "old", "new", "delta"):
                metrics.add_column(
                    name, justify="right" if name in ("old", "new", "delta") else "left"
                )
            for m in result.metrics:
                metrics.add_row(
                    text(m.run),
                    text(m.key),
                    number(m.old),
                    number(m.new),
                    number(m.delta),
                )
            out.print(metrics)
        out.print(
            result.summary(), style="green" if result.identical else "bold yellow", markup=False
        )
    if result.reproduced.status.value != "FINISHED":
        raise typer.Exit(1)


def _short(ref: str | None, limit: int = 40) -> str | None:
    """An output reference cut to ``limit`` characters for a table cell."""
    if ref is None or len(ref) <= limit:
        return ref
    return ref[: limit - 3] + "..."
