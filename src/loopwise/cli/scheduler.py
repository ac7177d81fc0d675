"""``loopwise scheduler``: run the pipeline schedules of the store.

Any number of schedulers may share a store (on SQLite or PostgreSQL): each tick is claimed
by exactly one of them (see :mod:`loopwise.pipelines.scheduler`). ``--once`` polls once,
waits for the runs it started and exits: for cron jobs of the system's own, and tests.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from loopwise.cli.options import JsonOption
from loopwise.cli.render import print_json, print_note


def scheduler_command(
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.1, help="Seconds between two polls.")
    ] = 5.0,
    once: Annotated[
        bool, typer.Option("--once", help="Poll once, wait for the runs it started, exit.")
    ] = False,
    max_runs: Annotated[
        int, typer.Option("--max-runs", min=1, help="Runs going at once, at most.")
    ] = 4,
    grace: Annotated[
        float,
        typer.Option(
            "--grace", min=0, help="Seconds runs get to finish on shutdown before interruption."
        ),
    ] = 30.0,
    as_json: JsonOption = False,
) -> None:
    """Start the runs the pipeline schedules call for, until SIGTERM or Ctrl-C."""
    from loopwise import context
    from loopwise.pipelines.scheduler import Scheduler
    from loopwise.pipelines.schedules import get_tick

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    store = context.local_store()
    scheduler = Scheduler(store, max_runs=max_runs, grace_s=grace)
    if not once:
        scheduler.run_forever(poll_interval)
        return
    started = scheduler.tick()
    scheduler.wait()
    done = [get_tick(store, t.schedule_id, t.key) for t in started]
    if as_json:
        print_json([t.to_dict() for t in done])
        return
    if not done:
        print_note("No schedule was due.")
    for tick in done:
        typer.echo(f"{tick.trigger}: {tick.state} (run {tick.run_id or 'none'})")
