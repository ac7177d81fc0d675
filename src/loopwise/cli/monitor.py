"""``loopwise monitor``: evaluate an endpoint's windows (``run``, a backfill) or keep
evaluating them as they close (``watch``).

The monitor is an endpoint name (the defaults: hourly windows, the live model's training data
as reference, every check) or a YAML config (``ENDPOINT_OR_CONFIG`` ending in .yaml/.yml/.json,
or ``--config``). ``--start`` / ``--end`` take ISO 8601 times with a zone or times relative to
now (``-3d``, ``-12h``). Progress goes to stderr; the table (or ``--json``) to stdout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from loopwise.cli.options import (
    EndOption,
    JsonOption,
    StartOption,
    end_option,
    former_option,
    json_option,
    moments,
    renamed,
    start_option,
)
from loopwise.cli.render import console, error_console, new_table, number, print_json, print_note

if TYPE_CHECKING:
    from loopwise.monitoring.config import Monitor
    from loopwise.monitoring.results import WindowResult

app = typer.Typer(
    help="Monitor endpoints: drift, data quality, live accuracy and service figures per window.",
    no_args_is_help=True,
)

TargetArg = Annotated[
    str | None,
    typer.Argument(
        metavar="ENDPOINT_OR_CONFIG",
        help="An endpoint name (monitored with the defaults) or a monitor YAML file.",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="A monitor YAML file.", show_default=False),
]
WindowOption = Annotated[
    str | None,
    typer.Option(
        "--window",
        help="Override the window: 15m, 1h, 1d ... or a number of predictions.",
        show_default=False,
    ),
]
#: Performance figures shown in the table, the first one present wins.
_PERF = ("f1", "accuracy", "rmse", "mae", "roc_auc", "r2")


@app.command("run")
def run(
    target: TargetArg = None,
    config: ConfigOption = None,
    start: Annotated[str, start_option(show_default=True)] = "-1d",
    end: Annotated[str, end_option(show_default=True)] = "now",
    window: WindowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate and store every closed window in [start, end) (re-running replaces them)."""
    from loopwise import clock
    from loopwise.context import get_store
    from loopwise.monitoring.engine.runner import MonitorRunner

    monitor = _monitor(target, config, window)
    now = clock.now()
    begin, finish = moments(start, end, now)
    runner = MonitorRunner(get_store(), monitor)
    with _progress_bar() as progress:
        results = runner.run(begin, finish, progress=progress, now=now)
    if as_json:
        print_json(
            {
                "windows": [r.to_dict() for r in results],
                "alerts": [
                    {"kind": e.kind, "text": e.text, **e.alert.to_dict()} for e in runner.events
                ],
            }
        )
        return
    for event in runner.events:
        style = "bold red" if event.kind == "fired" else "green"
        console().print(Text(f"alert {event.kind}: {event.text}", style=style))
        action = event.alert.action or {}
        if action.get("status") == "skipped":
            console().print(Text(f"  action skipped: {action['reason']}", style="yellow"))
    if not results:
        print_note(
            f"No closed window of monitor {monitor.name!r} in [{begin.isoformat()}, "
            f"{finish.isoformat()})."
        )
        return
    console().print(_table(results, f"Monitor {monitor.name} (endpoint {monitor.endpoint})"))
    _print_problems(results)
    print_note(f"{len(results)} result(s) stored for monitor {monitor.name!r}.")


@app.command("alerts")
def alerts_command(
    endpoint: Annotated[
        str | None, typer.Argument(help="Only this endpoint's alerts.", show_default=False)
    ] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="firing or resolved.", show_default=False),
    ] = None,
    monitor: Annotated[
        str | None, typer.Option("--monitor", help="Only this monitor.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="The newest N alerts.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List alerts, oldest first: state, rule, slice, value, message and action."""
    from loopwise.cli.render import local_time, text
    from loopwise.context import get_store
    from loopwise.monitoring.alerting.alerts import list_alerts

    found = list_alerts(get_store(), endpoint=endpoint, monitor=monitor, state=state, limit=limit)
    if as_json:
        print_json([a.to_dict() for a in found])
        return
    if not found:
        print_note("No alerts" + (f" for endpoint {endpoint!r}." if endpoint else "."))
        return
    table = new_table("alerts")
    columns = ("fired", "state", "rule", "slice", "fired value", "latest value", "model")
    for column in (*columns, "message", "action"):
        table.add_column(column, overflow="fold", justify="right" if "value" in column else "left")
    for a in found:
        style = "bold red" if a.state == "firing" else "green"
        table.add_row(
            local_time(a.fired_at),
            Text(a.state, style=style),
            text(a.rule),
            text(a.slice or "(all)"),
            number(a.fired_value, 4),
            number(a.value, 4),
            text(a.model),
            text(a.message),
            _action_text(a.action),
        )
    console().print(table)
    print_note(
        "fired value: the figure that fired the alert (the message's); latest value: the "
        "latest window's while it held."
    )


_ACTION_STYLES = {"succeeded": "green", "queued": "cyan", "running": "cyan", "skipped": "yellow"}


def _action_text(action: dict[str, Any] | None) -> Text:
    """An alert's action in a cell: its status, and for a skipped one what was in the way."""
    from loopwise.cli.render import MISSING, local_time
    from loopwise.clock import parse_iso

    if not action:
        return Text(MISSING)
    status = str(action.get("status"))
    shown = status
    if status == "skipped" and action.get("cause") == "cooldown":
        ends = parse_iso(action["cooldown_ends_at"], "cooldown_ends_at")
        shown += f": cooldown until {local_time(ends)}"
    elif status == "skipped":
        shown += f": the action of alert {action.get('blocked_by')} was still under way"
    elif action.get("exit_code") not in (None, 0):
        shown += f" (exit code {action['exit_code']})"
    return Text(shown, style=_ACTION_STYLES.get(status, "red"))


@app.command("watch")
def watch(
    target: TargetArg = None,
    config: ConfigOption = None,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between checks for closed windows.")
    ] = 60.0,
    refresh: Annotated[
        int,
        typer.Option(
            "--refresh",
            help="Latest windows re-evaluated each check (stored again when feedback arrived).",
        ),
    ] = 1,
    start: Annotated[
        str | None,
        start_option("Start here when nothing is stored yet (default: the last closed window)."),
    ] = None,
    since: Annotated[str | None, former_option("--since", "--start")] = None,
    window: WindowOption = None,
    compact: Annotated[
        bool,
        typer.Option(
            "--compact/--no-compact",
            help="Once an hour, merge the endpoint's log files of the last hours (one per hour).",
        ),
    ] = True,
    as_json: Annotated[bool, json_option("Print each result as one JSON line.")] = False,
) -> None:
    """Evaluate windows as they close, until Ctrl-C."""
    import json

    from loopwise.cli.render import jsonable
    from loopwise.clock import parse_moment
    from loopwise.context import get_store
    from loopwise.monitoring.engine.runner import watch_monitor

    monitor = _monitor(target, config, window)
    option = "--start" if since is None else "--since"  # errors name the option given
    start = renamed("--start", start, "--since", since)
    begin = None if start is None else parse_moment(start, what=option)

    def show(results: list[WindowResult]) -> None:
        if as_json:
            for r in results:
                typer.echo(json.dumps(jsonable(r.to_dict()), allow_nan=False))
        else:
            console().print(_table(results, None))
            _print_problems(results)

    print_note(
        f"Watching monitor {monitor.name!r} (endpoint {monitor.endpoint!r}, window "
        f"{monitor.window}) every {interval:g}s; Ctrl-C stops."
    )
    try:
        watch_monitor(
            get_store(),
            monitor,
            interval=interval,
            refresh=refresh,
            start=begin,
            on_results=show,
            compact=compact,
        )
    except KeyboardInterrupt:
        print_note("Stopped.")


@app.command("report")
def report_command(
    target: Annotated[
        str,
        typer.Argument(
            metavar="ENDPOINT_OR_MONITOR",
            help="A monitor name (an endpoint's default monitor is named after it) or its YAML.",
            show_default=False,
        ),
    ],
    html_path: Annotated[
        Path | None,
        typer.Option(
            "--html", help="Write the self-contained HTML report here.", show_default=False
        ),
    ] = None,
    as_json: Annotated[bool, json_option("Print the report data as JSON.")] = False,
    start: StartOption = None,
    end: EndOption = None,
) -> None:
    """Report a monitor's stored windows: drift per feature, predictions, live metrics per
    slice, latency and alerts over time, with the model-version changes marked."""
    from loopwise.context import get_store
    from loopwise.monitoring.config import as_monitor
    from loopwise.monitoring.report import monitor_report

    name = (
        as_monitor(target).name if target.lower().endswith((".yaml", ".yml", ".json")) else target
    )
    begin, finish = moments(start, end)
    report = monitor_report(get_store(), name, start=begin, end=finish)
    if html_path is not None:
        written = report.to_html(html_path)
        print_note(f"Report of monitor {name!r} written to {written}.")
    if as_json:
        print_json(report.to_dict())
        return
    firing = sum(a.state == "firing" for a in report.alerts)
    console().print(
        f"Monitor {report.monitor} (endpoint {report.endpoint}): "
        f"{len({w.start for w in report.windows})} window(s) from {report.start.isoformat()} "
        f"to {report.end.isoformat()}; model(s) {', '.join(report.models) or '–'}; "
        f"{len(report.model_changes)} version change(s); {len(report.alerts)} alert(s), "
        f"{firing} firing.",
        markup=False,
        highlight=False,
    )
    _print_problems(report.windows)
    if html_path is None:
        print_note("Add --html report.html to write the page, or --json for the data.")


@app.command("ab")
def ab_command(
    endpoint: Annotated[str, typer.Argument(help="The endpoint whose variants to compare.")],
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="accuracy, precision, recall, f1 (classification) or rmse, mae (regression); "
            "default accuracy or rmse.",
            show_default=False,
        ),
    ] = None,
    control: Annotated[
        str | None,
        typer.Option(
            "--control",
            help="The control variant (default: champion/control, else the most traffic).",
            show_default=False,
        ),
    ] = None,
    start: StartOption = None,
    end: EndOption = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level.")] = 0.05,
    min_labels: Annotated[
        int, typer.Option("--min-labels", help="Labelled rows each side needs for a verdict.")
    ] = 30,
    as_json: JsonOption = False,
) -> None:
    """Compare an endpoint's variants on live labelled traffic: each challenger against the
    control is better, worse or undecided (with a significance test)."""
    from loopwise.context import get_store
    from loopwise.monitoring.ab import compare_variants

    begin, finish = moments(start, end)
    report = compare_variants(
        get_store(),
        endpoint,
        start=begin,
        end=finish,
        control=control,
        metric=metric,
        alpha=alpha,
        min_labels=min_labels,
    )
    if as_json:
        print_json(report.to_dict())
        return
    level = f"{1 - report.alpha:.0%} CI"
    table = new_table(
        f"A/B {report.endpoint}: {report.metric} "
        f"({'higher' if report.higher_is_better else 'lower'} is better), control {report.control}"
    )
    for name in ("variant", "traffic", "rows", "labelled", "pred. mean", report.metric, level):
        table.add_column(name, justify="left" if name == "variant" else "right")
    table.add_column("vs control", justify="left")
    verdicts = {c.challenger: c for c in report.comparisons}
    styles = {"better": "bold green", "worse": "bold red", "undecided": "yellow"}
    for v in report.variants:
        m = v.metrics[report.metric]
        c = verdicts.get(v.variant)
        if c is None:
            versus = Text("control")
        else:
            versus = Text(c.verdict, style=styles[c.verdict])
            versus.append(f"  {number(c.difference, 4)} [{number(c.low, 4)}, {number(c.high, 4)}]")
            versus.append(f"  p={number(c.p_value, 3)}")
        table.add_row(
            Text(v.variant),
            f"{v.share:.1%}",
            f"{v.rows:,}",
            f"{v.labelled:,}",
            number(v.prediction_mean, 4),
            number(m.value, 4),
            f"[{number(m.low, 4)}, {number(m.high, 4)}]",
            versus,
        )
    console().print(table)
    for c in report.comparisons:
        print_note(f"{c.challenger} vs {c.control}: {c.verdict} ({c.test}); {c.reason}.")


def _monitor(target: str | None, config: Path | None, window: str | None) -> Monitor:
    from loopwise.errors import InvalidInput
    from loopwise.monitoring.config import Monitor, as_monitor

    if target is not None and config is not None:
        raise InvalidInput(
            "give an endpoint (or a monitor YAML file) or --config, not both; the config "
            "names its endpoint."
        )
    if target is None and config is None:
        raise InvalidInput(
            "name an endpoint, e.g. `loopwise monitor run credit-risk`, or --config."
        )
    monitor = as_monitor(config if config is not None else target)
    if window is not None:
        value: Any = int(window) if window.strip().isdigit() else window
        monitor = Monitor.from_dict(monitor.to_dict() | {"window": value})
    return monitor


def _table(results: Sequence[WindowResult], title: str | None) -> Any:
    table = new_table(title)
    perf = next((m for m in _PERF if any(r.value(f"perf.{m}") is not None for r in results)), None)
    columns = ["window (UTC)", "model", "rows", "labelled", "drift share", "drifted"]
    columns += ["pred. mean", *([perf] if perf else []), "p95 ms", "errors"]
    for name in columns:
        table.add_column(
            name, justify="left" if name in ("window (UTC)", "model", "drifted") else "right"
        )
    for r in results:
        drifted = sorted(
            m.removeprefix("drifted.")
            for (s, m), v in r.values.items()
            if s == "" and m.startswith("drifted.") and v
        )
        shown = ", ".join(drifted[:3]) + (f" +{len(drifted) - 3}" if len(drifted) > 3 else "")
        error_rate = r.value("error_rate")
        cells = [
            r.start.strftime("%Y-%m-%d %H:%M"),
            Text(r.model or "–"),
            f"{r.rows:,}",
            f"{r.labelled:,}",
            number(r.value("drift.share"), 3),
            Text(shown or "–"),
            number(r.value("prediction.mean"), 4),
            *([number(r.value(f"perf.{perf}"), 4)] if perf else []),
            number(r.value("latency_p95_ms"), 4),
            "–" if error_rate is None else f"{error_rate:.1%}",
        ]
        table.add_row(*cells)
    return table


def _print_problems(results: Sequence[WindowResult]) -> None:
    """Each problem that kept figures from being computed, once, with its windows' count."""
    found: dict[tuple[str, str], int] = {}
    for r in results:
        for problem in r.problems:
            found[(r.model, problem)] = found.get((r.model, problem), 0) + 1
    for (model, problem), n in found.items():
        line = Text(f"Problem in {n} window(s) of {model or 'an unknown model'}: ", style="yellow")
        line.append(problem)
        console().print(line)


@contextlib.contextmanager
def _progress_bar() -> Iterator[Callable[[int, int | None], None]]:
    """A transient bar on stderr over the windows evaluated (none when stderr is no terminal:
    logs and pipes get no bar)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    errors = error_console()
    if not errors.is_terminal:
        yield lambda done, total: None
        return
    bar = Progress(
        TextColumn("windows"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )
    with bar:
        task = bar.add_task("windows", total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update
