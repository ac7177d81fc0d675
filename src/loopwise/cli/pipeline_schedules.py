"""``loopwise pipelines schedule / schedules / unschedule``: when pipelines run by
themselves. ``loopwise scheduler`` (:mod:`loopwise.cli.scheduler`) starts the runs.

Registered on the ``pipelines`` group by :mod:`loopwise.cli.main`; the parameters are read
by :func:`loopwise.cli.pipelines.parse_params`, as ``pipelines run`` reads them.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from loopwise.cli.options import JsonOption
from loopwise.cli.pipelines import ParamOption, parse_params
from loopwise.cli.render import console, new_table, print_json, print_note, short_time, text


def schedule_command(
    pipeline: Annotated[
        str,
        typer.Argument(help="A pipeline name (one that has run), or module:function."),
    ],
    cron: Annotated[
        str | None,
        typer.Option(
            "--cron",
            help="Run on a cron expression: minute hour day-of-month month day-of-week "
            "(e.g. '0 3 * * *'), or @hourly, @daily...",
            show_default=False,
        ),
    ] = None,
    on_new_data: Annotated[
        str | None,
        typer.Option(
            "--on-new-data",
            help="Run on each new version of a dataset (datasets:/loans).",
            show_default=False,
        ),
    ] = None,
    input_param: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="With --on-new-data: the parameter that receives datasets:/<name>/<version> "
            "[default: data].",
            show_default=False,
        ),
    ] = None,
    param: ParamOption = None,
    timezone: Annotated[
        str, typer.Option("--timezone", help="Time zone the cron expression is read in.")
    ] = "UTC",
    executor: Annotated[
        str, typer.Option("--executor", help="inprocess (threads), processes, ray, ray://...")
    ] = "inprocess",
    as_json: JsonOption = False,
) -> None:
    """Schedule a pipeline: on a cron expression, or on each new version of a dataset."""
    from loopwise import context
    from loopwise.errors import InvalidInput
    from loopwise.pipelines.schedules import create_schedule

    if (cron is None) == (on_new_data is None):
        raise InvalidInput(
            "Give exactly one of --cron '0 3 * * *' or --on-new-data datasets:/<name>."
        )
    if input_param is not None and on_new_data is None:
        raise InvalidInput("--as names the parameter of --on-new-data; it needs --on-new-data.")
    now = _now()
    found = create_schedule(
        context.local_store(),
        pipeline,
        cron=cron,
        on_new_data=on_new_data,
        input_param=input_param,
        params=parse_params(param),
        timezone=timezone,
        executor=executor,
    )
    if as_json:
        print_json(found.to_dict() | {"next_tick": _next(found, now)})
        return
    line = f"Scheduled {found.pipeline} ({found.describe()}): schedule {found.id}"
    upcoming = found.next_tick(now)
    if upcoming is not None:
        line += f", next run {short_time(upcoming)}"
    console().print(text(line))
    print_note("`loopwise scheduler` starts the runs; it must be running.")


def schedules_command(
    pipeline: Annotated[str | None, typer.Argument(help="Only this pipeline's.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the pipeline schedules, with their next and last ticks."""
    from loopwise import context
    from loopwise.pipelines.schedules import list_schedules, list_ticks

    store = context.local_store()
    found = list_schedules(store, pipeline)
    now = _now()
    last = {s.id: next(iter(list_ticks(store, s.id, limit=1)), None) for s in found}
    if as_json:
        rows = []
        for s in found:
            tick = last[s.id]
            extra = {"next_tick": _next(s, now), "last": tick.to_dict() if tick else None}
            rows.append(s.to_dict() | extra)
        print_json(rows)
        return
    if not found:
        print_note("No pipeline schedules yet (loopwise pipelines schedule NAME --cron ...).")
        return
    table = new_table()
    table.add_column("id", no_wrap=True, style="dim")
    table.add_column("pipeline", style="bold")
    table.add_column("trigger")
    table.add_column("params")
    table.add_column("enabled")
    table.add_column("next", no_wrap=True)
    table.add_column("last tick")
    for s in found:
        tick = last[s.id]
        upcoming = s.next_tick(now) if s.enabled else None
        params = ", ".join(f"{k}={v}" for k, v in s.params.items())
        last_text = f"{tick.state} {tick.run_id or ''}".strip() if tick else ""
        table.add_row(
            text(s.id),
            text(s.pipeline),
            text(s.describe()),
            text(params),
            "yes" if s.enabled else "no",
            short_time(upcoming) if upcoming else "",
            text(last_text),
        )
    console().print(table)


def unschedule_command(
    schedule_id: Annotated[
        str, typer.Argument(help="The schedule's id (loopwise pipelines schedules).")
    ],
) -> None:
    """Remove a schedule (the runs it started stay)."""
    from loopwise import context
    from loopwise.pipelines.schedules import delete_schedule

    found = delete_schedule(context.local_store(), schedule_id)
    console().print(text(f"Removed schedule {found.id} of {found.pipeline} ({found.describe()})."))


def _now() -> Any:
    from loopwise.clock import now

    return now()


def _next(schedule: Any, now: Any) -> str | None:
    upcoming = schedule.next_tick(now) if schedule.enabled else None
    return upcoming.isoformat() if upcoming else None
