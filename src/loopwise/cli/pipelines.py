"""``loopwise pipelines``: run a pipeline, list pipelines and their runs, show a run's
steps, resume a failed run.

A pipeline is named by its entrypoint (``module:function`` or ``path/file.py:function``)
or, once it has run, by its name. Parameters are ``--param key=value``; a value is read
as JSON when it is JSON (``C=0.5``, ``layers=[64,32]``), else taken as text.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from loopwise.cli.options import JsonOption
from loopwise.cli.render import (
    console,
    duration,
    error_console,
    new_table,
    print_error,
    print_json,
    print_note,
    short_time,
    status_text,
    text,
    where_stored,
)
from loopwise.errors import InvalidInput

app = typer.Typer(help="Run pipelines and look at their runs.", no_args_is_help=True)

ParamOption = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="A pipeline parameter, key=value (repeatable)."),
]
ExecutorOption = Annotated[
    str | None,
    typer.Option(
        "--executor",
        help="inprocess (threads), processes, ray, or ray://host:10001.",
        show_default=False,
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option("--max-workers", min=1, help="How many steps run at once.", show_default=False),
]


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs as parameters (values read as JSON when they are JSON)."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--param {pair!r} is not key=value (e.g. --param C=0.5).")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        except RecursionError:
            raise InvalidInput(
                f"--param {key.strip()!r} is nested too deeply to read as JSON."
            ) from None
        params[key.strip()] = value
    return params


def _resolve(store: Any, target: str) -> Any:
    """A pipeline from an entrypoint, or from the name of one that has run before."""
    from loopwise.pipelines.definition import load_pipeline
    from loopwise.pipelines.records import entrypoint_of

    if ":" in target:
        return load_pipeline(target)
    return load_pipeline(entrypoint_of(store, target))


@contextlib.contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[int, int, str, str], None]]:
    """A transient bar on stderr over the steps, naming the last one that ended."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        console=error_console(),
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=None, last="")

        def update(done: int, total: int, key: str, status: str) -> None:
            bar.update(task, completed=done, total=total, last=f"{key}: {status}")

        yield update


def _print_run(run: Any, as_json: bool) -> None:
    if as_json:
        print_json(run.to_dict())
        return
    table = new_table(f"{run.pipeline} · run {run.id}")
    table.add_column("step", style="bold")
    table.add_column("status")
    table.add_column("cached")
    table.add_column("duration", justify="right")
    table.add_column("attempts", justify="right")
    table.add_column("output")
    table.add_column("run", no_wrap=True, style="dim")
    for found in run.steps:
        output = found.outputs.get("ref", "") if found.outputs else ""
        if found.outputs.get("kind") == "value" and len(output) > 40:
            output = output[:37] + "..."
        table.add_row(
            text(found.name),
            status_text(found.status),
            "yes" if found.cached else "",
            duration(found.duration_s),
            str(found.attempts),
            text(output),
            text(found.run_id),
        )
    console().print(table)
    line = f"{run.status.value} in {duration(run.duration_s)}"
    if run.resumed_from:
        line += f" (resumed from {run.resumed_from})"
    console().print(line)
    for found in run.steps:
        if found.status == "FAILED" and found.error:
            console().print(f"\n[bold red]{found.name} failed[/]:")
            console().print(text(found.error.rstrip()))


def _finish(run: Any, as_json: bool) -> None:
    _print_run(run, as_json)
    if run.status.value != "FINISHED":
        failed = ", ".join(s.name for s in run.steps if s.status == "FAILED") or "none"
        print_error(
            f"pipeline run {run.id} {run.status.value} (failed steps: {failed}); fix the "
            f"step and run `loopwise pipelines resume {run.id}`."
        )
        raise typer.Exit(1)


@app.command("run")
def run_command(
    target: Annotated[
        str, typer.Argument(help="module:function, path/file.py:function, or a pipeline name.")
    ],
    param: ParamOption = None,
    executor: ExecutorOption = None,
    max_workers: WorkersOption = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step.")] = False,
    experiment: Annotated[
        str | None, typer.Option(help="Experiment of the run (default: the pipeline's name).")
    ] = None,
    as_json: JsonOption = False,
    trigger: Annotated[
        str | None,
        typer.Option("--trigger", hidden=True, help="What started the run (the scheduler's)."),
    ] = None,
) -> None:
    """Run a pipeline and print its steps (exit code 1 when a step failed)."""
    from loopwise import context
    from loopwise.pipelines.runner import run_pipeline

    store = context.local_store()
    pipeline = _resolve(store, target)
    with _progress_bar(pipeline.name) as progress:
        run = run_pipeline(
            store,
            pipeline,
            parse_params(param),
            executor=executor or "inprocess",
            max_workers=max_workers,
            cache=not no_cache,
            experiment=experiment,
            trigger=trigger or "cli",
            progress=progress,
        )
    _finish(run, as_json)


@app.command("resume")
def resume_command(
    run_id: Annotated[str, typer.Argument(help="The failed pipeline run.")],
    executor: ExecutorOption = None,
    max_workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a failed pipeline run again, reusing the steps that succeeded in it."""
    from loopwise import context
    from loopwise.pipelines.runner import resume_pipeline

    with _progress_bar("resume") as progress:
        run = resume_pipeline(
            context.local_store(),
            run_id,
            executor=executor,
            max_workers=max_workers,
            progress=progress,
        )
    _finish(run, as_json)


@app.command("show")
def show_command(
    run_id: Annotated[str, typer.Argument(help="A pipeline run id (or runs:/<id>).")],
    as_json: JsonOption = False,
) -> None:
    """Show a pipeline run's steps: status, cache, duration, output, failures."""
    from loopwise import context
    from loopwise.pipelines.records import get_pipeline_run

    _print_run(get_pipeline_run(context.local_store(), run_id), as_json)


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """List the pipelines that have run, with their last run."""
    from loopwise import context
    from loopwise.pipelines.records import list_pipelines

    found = list_pipelines(context.local_store())
    if as_json:
        print_json([vars(p) for p in found])
        return
    if not found:
        print_note(f"No pipelines have run in {where_stored()} yet.")
        return
    table = new_table()
    table.add_column("name", style="bold")
    table.add_column("runs", justify="right")
    table.add_column("last run", no_wrap=True, style="dim")
    table.add_column("status")
    table.add_column("entrypoint")
    for p in found:
        table.add_row(
            text(p.name),
            str(p.runs),
            text(p.last_run_id),
            status_text(p.last_status),
            text(p.entrypoint),
        )
    console().print(table)


@app.command("runs")
def runs_command(
    name: Annotated[str | None, typer.Argument(help="Only this pipeline's runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many runs.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List the latest pipeline runs, newest first."""
    from loopwise import context
    from loopwise.pipelines.records import list_pipeline_runs

    found = list_pipeline_runs(context.local_store(), name, limit=limit)
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    if not found:
        print_note("No pipeline runs yet.")
        return
    table = new_table()
    table.add_column("run", no_wrap=True, style="dim")
    table.add_column("pipeline", style="bold")
    table.add_column("status")
    table.add_column("started", no_wrap=True)
    table.add_column("duration", justify="right")
    table.add_column("trigger")
    for r in found:
        table.add_row(
            text(r.id),
            text(r.pipeline),
            status_text(r.status.value),
            short_time(r.start_time),
            duration(r.duration_s),
            text(r.trigger),
        )
    console().print(table)
