"""``loopwise score``: a registered model over a Parquet or CSV file, chunk by chunk.

A progress bar on stderr follows the rows (Parquet files say how many they hold; for CSV
it follows the bytes read), then one summary line goes to stdout. The output gets the
model's columns, the model version and the time of scoring; it appears at OUT only when
complete, and an existing OUT is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from loopwise.cli.render import console, error_console


def score_command(
    uri: Annotated[
        str, typer.Argument(metavar="URI", help="The model, e.g. models:/credit-risk@champion.")
    ],
    source: Annotated[
        str, typer.Argument(metavar="IN", help="Input: a .parquet or .csv path or URL.")
    ],
    dest: Annotated[
        str, typer.Argument(metavar="OUT", help="Output: a .parquet or .csv path or URL.")
    ],
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", help="Rows scored at a time (bounds memory).")
    ] = 100_000,
    executor: Annotated[
        str, typer.Option("--executor", help="local (this process) or ray (Ray tasks).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Ray cluster to use with --executor ray (default: start Ray here).",
            show_default=False,
        ),
    ] = None,
    proba: Annotated[
        bool, typer.Option("--proba", help="Also write class probabilities (proba_<class>).")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace OUT if it exists.")
    ] = False,
    log_endpoint: Annotated[
        str | None,
        typer.Option(
            "--log-endpoint",
            help="Also write the predictions to this endpoint's prediction log (monitoring).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Score a file with a registered model: IN's columns plus prediction, model version
    and time, written to OUT."""
    from loopwise.batch.api import score_file
    from loopwise.cli.models import model_uri

    with _progress_bar() as progress:
        summary = score_file(
            model_uri(uri),
            source,
            dest,
            chunk_rows=chunk_rows,
            executor=executor,
            proba=proba,
            progress=progress,
            ray_address=ray_address,
            overwrite=overwrite,
            log_endpoint=log_endpoint,
        )
    console().print(summary.summary(), markup=False)


@contextlib.contextmanager
def _progress_bar() -> Iterator[Callable[[Any], None]]:
    """A transient bar on stderr over rows (Parquet) or bytes read (CSV)."""
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("scoring"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=error_console(),
        transient=True,
    )
    with bar:
        task = bar.add_task("scoring", total=None, rows="0")

        def update(step: Any) -> None:
            by_rows = step.total_rows is not None
            bar.update(
                task,
                total=step.total_rows if by_rows else step.total_bytes,
                completed=step.rows if by_rows else (step.bytes_read or 0),
                rows=f"{step.rows:,}",
            )

        yield update
