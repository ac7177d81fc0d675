"""``loopwise loadtest``: drive an endpoint and report latency, throughput and errors.

A progress bar (elapsed of the duration, with the requests per second of the last second)
goes to stderr; the report goes to stdout as a table, or as JSON with ``--json``. With
``--swap-to`` the alias the endpoint follows is moved mid-run in the configured store
(``--store-url``), and the report shows when the new version answered and what failed.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn
from rich.text import Text

from loopwise.cli.options import json_option
from loopwise.cli.render import MISSING, console, error_console, new_table, print_json
from loopwise.cli.run_views import label_grid


def loadtest_command(
    url: Annotated[str, typer.Argument(help="The endpoint, e.g. http://127.0.0.1:8000.")],
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Requests kept in flight.")
    ] = 8,
    duration: Annotated[float, typer.Option("--duration", "-d", help="Seconds of load.")] = 20.0,
    swap_to: Annotated[
        int | None,
        typer.Option(
            "--swap-to",
            help="Move the alias the endpoint follows to this version mid-run.",
            show_default=False,
        ),
    ] = None,
    swap_at: Annotated[
        float | None,
        typer.Option(
            "--swap-at",
            help="Seconds into the run to move the alias (default: half way).",
            show_default=False,
        ),
    ] = None,
    payload: Annotated[
        Path | None,
        typer.Option(
            "--payload",
            help='A JSON file: a request body ({"inputs": ...}) or the inputs alone. '
            "Default: one row built from the endpoint's signature.",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds before a request counts as failed.")
    ] = 10.0,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="LOOPWISE_TOKEN",
            help="API token for an endpoint with tokens (role admin: reads /model, predicts).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, json_option("Print the report as JSON.")] = False,
) -> None:
    """Load an endpoint for a while and report latency percentiles, throughput and errors."""
    from loopwise.loadtest.generator import run_loadtest

    columns = (
        TextColumn("[bold]load[/]"),
        BarColumn(),
        TextColumn("{task.completed:.1f}/{task.total:g} s"),
        TextColumn("{task.fields[rps]} req/s"),
        TextColumn("{task.fields[failed]} failed"),
    )
    # Started by the first tick, so that a refusal (bad option, unreachable URL) prints
    # only its error.
    bar = Progress(*columns, console=error_console(), transient=True)
    task: list[Any] = []
    recent: collections.deque[tuple[float, int]] = collections.deque([(0.0, 0)])

    def progress(elapsed: float, requests: int, failed: int) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task("load", total=duration, rps=MISSING, failed=0))
        recent.append((elapsed, requests))
        while len(recent) > 2 and recent[0][0] < elapsed - 1.0:
            recent.popleft()
        span = elapsed - recent[0][0]
        rps = f"{(requests - recent[0][1]) / span:,.0f}" if span > 0 else MISSING
        bar.update(task[0], completed=min(elapsed, duration), rps=rps, failed=failed)

    store = None
    if swap_to is not None:  # only a swap needs the store; a plain load test opens none
        from loopwise import context

        store = context.get_store()
    try:
        report = run_loadtest(
            url,
            store=store,
            concurrency=concurrency,
            duration=duration,
            payload=payload,
            swap_to=swap_to,
            swap_at=swap_at,
            timeout=timeout,
            token=token,
            progress=progress,
        )
    finally:
        if task:
            bar.stop()
    if as_json:
        print_json(report.to_dict())
        return
    _print_report(report)


def _print_report(report: Any) -> None:
    out = console()
    rows = [
        ("concurrency", str(report.concurrency)),
        ("duration", f"{report.duration_s:.1f} s"),
        ("requests", f"{report.requests:,} ({report.ok:,} ok, {report.failed:,} failed)"),
        ("throughput", f"{report.throughput_rps:,.1f} req/s"),
        ("latency p50", _ms(report.p50_ms)),
        ("latency p95", _ms(report.p95_ms)),
        ("latency p99", _ms(report.p99_ms)),
        ("latency max", _ms(report.max_ms)),
        ("longest gap", _ms(report.longest_gap_ms)),
    ]
    grid = label_grid((label, Text(value)) for label, value in rows)
    out.print(
        Panel(grid, title=Text(f"Load test of {report.url}"), title_align="left", expand=False)
    )
    if report.errors:
        errors = new_table("Failed requests")
        errors.add_column("error")
        errors.add_column("requests", justify="right")
        for key, count in report.errors.items():
            errors.add_row(Text(key, style="red"), f"{count:,}")
        out.print(errors)
    if report.models:
        models = new_table("Answered by")
        models.add_column("model")
        models.add_column("requests", justify="right")
        for label, count in report.models.items():
            models.add_row(Text(label), f"{count:,}")
        out.print(models)
    if report.swap is not None:
        _print_swap(out, report)


def _print_swap(out: Any, report: Any) -> None:
    swap = report.swap
    rows = [
        ("alias moved at", _seconds(swap.moved_at_s)),
        ("new version first answered at", _seconds(swap.first_answer_s)),
        ("pick-up delay", _seconds(swap.pickup_s)),
        ("failed requests during the run", f"{report.failed:,}"),
        ("longest gap between answers", _ms(report.longest_gap_ms)),
    ]
    title = f"Alias {swap.alias} of {swap.model}: {swap.from_version} → {swap.to_version}"
    grid = label_grid((label, Text(value)) for label, value in rows)
    out.print(Panel(grid, title=Text(title), title_align="left", expand=False))
    if swap.error is not None:
        out.print(Text(f"The alias could not be moved: {swap.error}", style="red"))
    elif not swap.observed:
        out.print(
            Text(
                f"{swap.model}/{swap.to_version} did not answer before the end of the run: "
                "run longer, or check the endpoint's GET /model for a load error.",
                style="yellow",
            )
        )


def _ms(value: float | None) -> str:
    if value is None:
        return MISSING
    return f"{value:,.{2 if value < 10 else 1 if value < 100 else 0}f} ms"


def _seconds(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f} s"
