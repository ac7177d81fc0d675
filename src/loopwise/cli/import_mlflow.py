"""``loopwise import mlflow``: copy an MLflow tracking store into the loopwise store.

A thin layer over :func:`loopwise.interop.mlflow_import.import_mlflow`: it opens the
source the URL names, draws a progress bar on stderr while runs and versions are copied,
and prints what was copied as a table. Run it again and it copies only what is new (the
table then says nothing new was copied).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from loopwise.cli.render import console, error_console, new_table, print_note, where_stored

app = typer.Typer(help="Copy other tools' records into loopwise.", no_args_is_help=True)


@app.command("mlflow")
def import_mlflow_command(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="The MLflow tracking store: its database (sqlite:///mlflow.db, "
            "postgresql://..., mysql://...) or its server (http://mlflow-host:5000).",
            show_default=False,
        ),
    ],
    artifacts_root: Annotated[
        str | None,
        typer.Option(
            "--artifacts-root",
            help="Where the MLflow server stores mlflow-artifacts:/ files (its "
            "--artifacts-destination): needed to read them when importing from a database.",
            show_default=False,
        ),
    ] = None,
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            help="Only this MLflow experiment (by name); repeat for several.",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="MLFLOW_TRACKING_TOKEN",
            help="A token for the MLflow server (sent as a Bearer token). "
            "Default: MLFLOW_TRACKING_TOKEN.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Copy experiments, runs, params, metrics, tags, artifacts, registered models,
    versions and aliases from MLflow; again, and only what is new is copied."""
    from loopwise.context import local_store
    from loopwise.interop.mlflow_import import import_mlflow
    from loopwise.interop.mlflow_source import open_source

    store = local_store()
    found = open_source(source, artifacts_root=artifacts_root, token=token)
    try:
        with _progress_bar() as progress:
            summary = import_mlflow(store, found, experiments=experiment, progress=progress)
    finally:
        found.close()
    _print_summary(summary)


@contextlib.contextmanager
def _progress_bar() -> Iterator[Any]:
    """A transient bar on stderr, one task per stage (runs, then versions)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("copying {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=error_console(),
        transient=True,
    )
    tasks: dict[str, Any] = {}
    with bar:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _print_summary(summary: Any) -> None:
    out = console()
    if not summary.copied_anything:
        print_note(f"Nothing new to copy from {summary.source}: {where_stored()} is up to date.")
    table = new_table(f"Imported from {summary.source}")
    table.add_column("kind")
    for column in ("new", "updated", "unchanged"):
        table.add_column(column, justify="right")
    for kind, counts in summary.counts.items():
        table.add_row(kind, f"{counts.new:,}", f"{counts.updated:,}", f"{counts.skipped:,}")
    out.print(table)
    deleted = ", ".join(f"{n} {kind}" for kind, n in summary.deleted.items() if n)
    if deleted:
        print_note(f"Not copied, deleted in MLflow: {deleted}.")
    for note in summary.notes:
        print_note(note)


__all__ = ["app"]
