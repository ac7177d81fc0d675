"""``loopwise data``: profile, schema, validation, drift and quality checks on files.

Each command reads a Parquet or CSV file (or a ``datasets:/`` reference), shows its steps
with a progress display, prints a table for people or JSON with ``--json``, and writes a
self-contained HTML report with ``--html``. ``validate`` exits with 1 when an error
anomaly is found, and ``drift --fail-on-drift`` when any column drifted (or, with
``--share``, that share of them), so both can gate CI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from loopwise.cli.options import JsonOption, former_option, renamed
from loopwise.cli.render import (
    console,
    error_console,
    new_table,
    number,
    print_json,
    print_note,
    text,
)

app = typer.Typer(help="Profile, validate and compare data files.", no_args_is_help=True)

HtmlOption = Annotated[
    Path | None, typer.Option("--html", help="Also write a self-contained HTML report here.")
]
SourceArg = Annotated[
    str, typer.Argument(help="A Parquet or CSV file, or a datasets:/name/version reference.")
]


@contextlib.contextmanager
def _steps(total: int) -> Iterator[Any]:
    """A transient progress bar on stderr, advanced once per step."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=error_console(),
        transient=True,
    )
    with progress:
        task = progress.add_task("starting", total=total)

        def step(description: str) -> None:
            progress.update(task, description=description)

        def done() -> None:
            progress.advance(task)

        yield step, done


def _read(source: str) -> Any:
    """A Polars frame for a file path or a ``datasets:/`` reference."""
    if source.startswith("datasets:/"):
        from loopwise.context import get_store
        from loopwise.data.datasets import load_dataset

        return load_dataset(get_store(), source, as_="polars")
    from loopwise.data.frames import to_polars

    return to_polars(Path(source), what=source)


def _schema_target(source: str) -> str | None:
    """The target column of a ``datasets:/`` version's schema (None for files, or none)."""
    if not source.startswith("datasets:/"):
        return None
    from loopwise.context import get_store
    from loopwise.data.datasets import get_dataset_version
    from loopwise.data.schema import target_of

    return target_of(get_dataset_version(get_store(), source).schema)


def _write_html(report: Any, path: Path | None) -> None:
    if path is not None:
        written = report.to_html(path)
        print_note(f"HTML report written to {written or path}")


@app.command("profile")
def profile_command(source: SourceArg, as_json: JsonOption = False) -> None:
    """Per-column statistics: type, nulls, distinct values, range, mean, top values."""
    from loopwise.cli.datasets import profile_table
    from loopwise.data.profiling import profile

    with _steps(2) as (step, done):
        step(f"reading {source}")
        frame = _read(source)
        done()
        step(f"profiling {frame.height:,} rows × {frame.width} columns")
        result = profile(frame)
        done()
    if as_json:
        print_json(result.to_dict())
        return
    console().print(f"{result.rows:,} rows × {len(result.columns)} columns")
    console().print(profile_table(result))


@app.command("infer-schema")
def infer_schema_command(
    source: SourceArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the YAML.")],
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="The label column, if any.")
    ] = None,
    label: Annotated[str | None, former_option("--label", "--target")] = None,
    ordered: Annotated[
        bool, typer.Option("--ordered", help="Also require the columns in this order.")
    ] = False,
) -> None:
    """Propose a schema from a sample of data and write it as YAML for review."""
    from loopwise.data.schema_inference import infer_schema

    target = renamed("--target", target, "--label", label)
    with _steps(2) as (step, done):
        step(f"reading {source}")
        frame = _read(source)
        done()
        step(f"inferring a schema from {frame.height:,} rows")
        schema = infer_schema(frame, target=target, ordered=ordered)
        done()
    schema.save(output)
    keys = ["+".join(key) for key in schema.keys]
    console().print(
        f"Wrote a schema of {len(schema.columns)} columns to {output}"
        + (f" (keys: {', '.join(keys)})" if keys else "")
        + ". Review it, then validate new data with "
        f"`loopwise data validate FILE --schema {output}`.",
        markup=False,
    )


@app.command("validate")
def validate_command(
    source: SourceArg,
    schema_path: Annotated[Path, typer.Option("--schema", "-s", help="The schema YAML file.")],
    html: HtmlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check data against a schema; exit with 1 when an error anomaly is found."""
    from loopwise.data.schema import Schema
    from loopwise.data.validation import validate

    schema = Schema.load(schema_path)
    with _steps(2) as (step, done):
        step(f"reading {source}")
        frame = _read(source)
        done()
        step(f"validating {frame.height:,} rows")
        report = validate(frame, schema)
        done()
    if as_json:
        print_json(report.to_dict())
    else:
        out = console()
        out.print(report.summary().splitlines()[0], style="green" if report.ok else "bold red")
        if report.anomalies:
            table = new_table()
            for name in ("severity", "kind", "column", "count", "examples", "what to do"):
                table.add_column(name)
            order = {"error": 0, "warning": 1}
            for a in sorted(report.anomalies, key=lambda a: (order.get(a.severity, 2), a.kind)):
                table.add_row(
                    text(a.severity),
                    text(a.kind),
                    text(a.column),
                    text(a.count),
                    text(", ".join(map(str, a.examples[:3])) or None),
                    text(a.message),
                )
            out.print(table)
    _write_html(report, html)
    if not report.ok:
        raise typer.Exit(1)


@app.command("drift")
def drift_command(
    reference: Annotated[str, typer.Argument(help="Reference data (e.g. the training set).")],
    current: Annotated[str, typer.Argument(help="Current data (e.g. recent serving data).")],
    columns: Annotated[
        str | None, typer.Option("--columns", help="Comma-separated columns (default: shared).")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            "-t",
            help="The label column: not checked unless --columns names it. "
            "Default: the target of a datasets:/ reference's schema, if any.",
        ),
    ] = None,
    label: Annotated[str | None, former_option("--label", "--target")] = None,
    share: Annotated[
        float | None,
        typer.Option(
            "--share",
            help="Count the data as drifted only when at least this share of the columns "
            "drifted (e.g. 0.5). Default: when any column drifted.",
        ),
    ] = None,
    html: HtmlOption = None,
    as_json: JsonOption = False,
    fail_on_drift: Annotated[
        bool,
        typer.Option(
            "--fail-on-drift",
            help="Exit with 1 when the data drifted: any column, or --share of them.",
        ),
    ] = False,
) -> None:
    """Compare two datasets column by column and say which drifted."""
    from loopwise.data.drift.detect import LABEL_SKIPPED, detect_drift

    if share is not None and not 0 < share <= 1:
        raise typer.BadParameter(
            f"must be a share of the columns in (0, 1], e.g. 0.5 for half; got {share:g}.",
            param_hint="'--share'",
        )
    target = renamed("--target", target, "--label", label)
    if target is None:
        target = _schema_target(reference) or _schema_target(current)
    with _steps(3) as (step, done):
        step(f"reading {reference}")
        ref = _read(reference)
        done()
        step(f"reading {current}")
        cur = _read(current)
        done()
        step("testing each column")
        wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
        report = detect_drift(ref, cur, wanted, target=target, dataset_threshold=share)
        done()
    if as_json:
        print_json(report.to_dict())
    else:
        table = new_table(title=report.summary())
        for name in ("column", "kind", "test", "statistic", "threshold", "p-value", "drifted"):
            table.add_column(name)
        for col in sorted(report.columns.values(), key=lambda c: (not c.drifted, c.column)):
            table.add_row(
                text(col.column),
                text(col.kind),
                text(col.test),
                text(number(col.statistic, 4)),
                text(number(col.threshold, 4)),
                text(number(col.p_value, 4) if col.p_value is not None else None),
                text("DRIFTED" if col.drifted else "no"),
            )
        console().print(table)
        if report.skipped.get(target) == LABEL_SKIPPED:
            print_note(f"Label column {target} not checked; name it in --columns to check it.")
    _write_html(report, html)
    if fail_on_drift and report.drifted:
        raise typer.Exit(1)


@app.command("quality")
def quality_command(
    source: SourceArg,
    target: Annotated[str | None, typer.Option("--target", "-t", help="The label column.")] = None,
    html: HtmlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Training-data quality: imbalance, outliers, correlated and leaking features, mislabels."""
    from loopwise.data.quality.report import data_quality

    with _steps(2) as (step, done):
        step(f"reading {source}")
        frame = _read(source)
        done()
        step("checking quality")
        report = data_quality(frame, target=target)
        done()
    if as_json:
        print_json(report.to_dict())
    elif not report.findings:
        console().print(report.summary())
    else:
        table = new_table(title=report.summary())
        for name in ("severity", "kind", "columns", "message"):
            table.add_column(name)
        for finding in report.findings:
            table.add_row(
                text(finding.severity),
                text(finding.kind),
                text(", ".join(finding.columns)),
                text(finding.message),
            )
        console().print(table)
    _write_html(report, html)
