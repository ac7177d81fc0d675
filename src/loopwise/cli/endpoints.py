"""``loopwise endpoints``: list the endpoints with a log, trace a request, flip the model flag.

``loopwise endpoints list`` names the endpoints that have a prediction log.
``loopwise endpoints trace credit-risk 01hx...`` traces one request back to the model
version that answered it, that version's run (params, metrics, git commit), its training
data, the alias move that made it live and its promotion decisions
(:func:`loopwise.predictions.tracing.trace_prediction`).
``loopwise endpoints compact credit-risk`` merges each closed hour of the endpoint's log
into one file (:func:`loopwise.predictions.compaction.compact_predictions`).
``loopwise endpoints flag credit-risk off --reason "bad scores after the 2am release"``
makes every worker and replica of the endpoint answer its fallback within one poll
interval; ``... flag credit-risk on`` gives the model back. Without a state, the command
shows the current flag and its history.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from loopwise.cli.options import (
    END_HELP,
    START_HELP,
    JsonOption,
    end_option,
    moments,
    start_option,
)
from loopwise.cli.render import (
    console,
    local_time,
    new_table,
    number,
    print_json,
    print_note,
    text,
)
from loopwise.cli.run_views import git_summary, label_grid
from loopwise.errors import InvalidInput

if TYPE_CHECKING:
    from loopwise.predictions.tracing import PredictionTrace

app = typer.Typer(
    help="Serving endpoints: list them, trace a request, compact a log, switch the model flag.",
    no_args_is_help=True,
)

_STATES = {"on": True, "off": False}
_SHOWN = 12  # params / metrics / rows printed before "N more"


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """The endpoints that have a prediction log in the store."""
    from loopwise.context import get_store
    from loopwise.predictions.log import prediction_endpoints

    names = prediction_endpoints(get_store())
    if as_json:
        print_json(names)
        return
    if not names:
        print_note("No endpoint has a prediction log yet: serve one, or lw.log_predictions(...).")
        return
    table = new_table("endpoints with a prediction log")
    table.add_column("endpoint")
    for name in names:
        table.add_row(text(name))
    console().print(table)


@app.command("trace")
def trace_command(
    endpoint: Annotated[str, typer.Argument(help="The endpoint name, e.g. credit-risk.")],
    request_id: Annotated[
        str, typer.Argument(help="The request id /predict answered with, or a logged id.")
    ],
    start: Annotated[
        str | None,
        start_option(
            "Search from: ISO 8601 time with a zone, or relative (-3d). For ids that are not "
            "loopwise ids (else the whole log is scanned)."
        ),
    ] = None,
    end: Annotated[str | None, end_option("Search until: " + END_HELP)] = None,
    as_json: JsonOption = False,
) -> None:
    """Trace one request to its model version, run, data, alias move and promotion."""
    from loopwise.context import get_store
    from loopwise.predictions.tracing import trace_prediction

    begin, finish = moments(start, end)
    trace = trace_prediction(get_store(), endpoint, request_id, start=begin, end=finish)
    if as_json:
        print_json(trace.to_dict())
        return
    console().print(Group(*_trace_sections(trace)))


@app.command("compact")
def compact_command(
    endpoint: Annotated[str, typer.Argument(help="The endpoint name, e.g. credit-risk.")],
    start: Annotated[
        str | None, start_option("From: " + START_HELP + " Default: the log's start.")
    ] = None,
    end: Annotated[str | None, end_option("Until: " + END_HELP)] = None,
    settle: Annotated[
        str,
        typer.Option("--settle", help="Only hours that ended at least this long ago."),
    ] = "10m",
    as_json: JsonOption = False,
) -> None:
    """Merge each closed hour of an endpoint's log and feedback into one file.

    Reading a range then opens one file per hour instead of one per flush or per
    log_predictions call. Safe while the endpoint serves and from several processes.
    """
    from loopwise.cli.render import error_console
    from loopwise.context import get_store
    from loopwise.predictions.compaction import compact_predictions

    begin, finish = moments(start, end)
    with _hours_bar(error_console()) as advance:
        result = compact_predictions(
            get_store(), endpoint, begin, finish, settle=settle, progress=advance
        )
    if as_json:
        print_json(result.to_dict())
        return
    if result.hours == 0 and result.files_before == 0:
        print_note(f"Nothing to merge in the log of {endpoint!r}: each closed hour is one file.")
    else:
        console().print(
            f"Merged {result.hours:,} hours of {endpoint!r}: {result.files_before:,} files -> "
            f"{result.files_after:,}, {result.rows:,} rows."
        )
    if result.open_hours:
        print_note(f"{result.open_hours} hours still open (or within --settle {settle}) left.")
    if result.busy_hours:
        print_note(f"{result.busy_hours} hours were being merged by another process; left.")


@contextlib.contextmanager
def _hours_bar(out: Any) -> Iterator[Any]:
    """A transient bar over the hours being merged; yields ``advance(done, total)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("merging hours"),
        BarColumn(),
        MofNCompleteColumn(),
        console=out,
        transient=True,
    )
    with bar:
        task = bar.add_task("merging", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


@app.command("flag")
def flag_command(
    endpoint: Annotated[str, typer.Argument(help="The endpoint name, e.g. credit-risk.")],
    state: Annotated[
        str | None, typer.Argument(help="on (the model answers) or off (the fallback does).")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why: kept in the flag's history.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Turn the endpoint's model on or off; without a state, show the flag's history."""
    from loopwise.context import get_store
    from loopwise.serving.flags import flag_history, set_model_flag

    store = get_store()
    if state is not None:
        if state.lower() not in _STATES:
            raise InvalidInput(f"the flag state must be 'on' or 'off'; got {state!r}.")
        flag = set_model_flag(store, endpoint, _STATES[state.lower()], reason=reason)
        word = "on: the model answers" if flag.enabled else "off: the fallback answers"
        if as_json:
            print_json({"endpoint": endpoint, "enabled": flag.enabled, "reason": reason})
        else:
            console().print(f"endpoint {endpoint!r} model flag {word} (within a poll interval)")
        return
    if reason is not None:
        raise InvalidInput("--reason goes with a state: loopwise endpoints flag NAME off -r WHY.")
    history = flag_history(store, endpoint)
    if as_json:
        print_json(
            [
                {"enabled": f.enabled, "reason": f.reason, "set_at": f.set_at, "set_by": f.set_by}
                for f in history
            ]
        )
        return
    if not history:
        print_note(f"The model flag of {endpoint!r} was never switched: the model answers.")
        return
    table = new_table(f"model flag of {endpoint}")
    for column in ("when", "state", "by", "reason"):
        table.add_column(column)
    for f in history:
        table.add_row(
            local_time(f.set_at), "on" if f.enabled else "off", text(f.set_by), text(f.reason)
        )
    console().print(table)


# -- trace rendering --------------------------------------------------------------------------


def _trace_sections(trace: PredictionTrace) -> list[RenderableType]:
    """The sections of ``endpoints trace``, top to bottom."""
    sections: list[RenderableType] = [_request_panel(trace), _rows_table(trace)]
    if len(trace.shadows):
        sections.append(_shadows_table(trace))
    sections.extend(_run_sections(trace))
    if trace.version is not None:
        sections.extend([_live_table(trace), _promotions_table(trace)])
    for note in trace.notes:
        sections.append(Text(f"note: {note}", style="yellow"))
    return sections


def _request_panel(trace: PredictionTrace) -> Panel:
    if trace.fallback:
        answered = "the fallback (no model version)"
    elif trace.version is not None:
        answered = trace.version.uri
    else:
        answered = trace.model or "no model"
    rows: list[tuple[str, RenderableType]] = [
        ("time", text(local_time(trace.timestamp, zone=True))),
        ("variant", text(trace.variant)),
        ("model", text(answered)),
        ("aliases then", text(", ".join(f"@{a}" for a in trace.aliases) or None)),
        ("rows", text(len(trace.rows))),
        ("error", text(trace.error)),
    ]
    return Panel(
        label_grid(rows),
        title=Text(f"Request {trace.request_id} of {trace.endpoint}"),
        title_align="left",
        expand=False,
    )


def _rows_table(trace: PredictionTrace) -> RenderableType:
    records = trace.to_dict()["rows"]
    if trace.error is not None:
        return Text(f"The request failed ({trace.error}): no prediction.", style="dim")
    inputs = [k for k in (records[0] if records else {}) if k.startswith("input.")]
    table = new_table("Prediction")
    for column in ("row", "prediction", "probabilities", "label", *inputs):
        table.add_column(column.removeprefix("input."), justify="right")
    for r in records[:_SHOWN]:
        probabilities = r.get("probabilities")
        table.add_row(
            text(r.get("row")),
            text(_value(r.get("prediction"))),
            text(None if probabilities is None else ", ".join(number(p, 3) for p in probabilities)),
            text(_value(r.get("label"))),
            *(text(_value(r.get(k))) for k in inputs),
        )
    if len(records) > _SHOWN:
        return Group(table, Text(f"{len(records) - _SHOWN} more rows (--json)", style="dim"))
    return table


def _shadows_table(trace: PredictionTrace) -> RenderableType:
    table = new_table("Shadows (logged, not returned)")
    for column in ("variant", "model", "row", "prediction", "error"):
        table.add_column(column)
    for r in trace.to_dict()["shadows"][:_SHOWN]:
        table.add_row(
            text(r.get("variant")),
            text(r.get("model")),
            text(r.get("row")),
            text(_value(r.get("prediction"))),
            text(r.get("error")),
        )
    return table


def _run_sections(trace: PredictionTrace) -> list[RenderableType]:
    lineage = trace.lineage
    if lineage is None:
        return [Text("No model version: no run, data or promotion to show.", style="dim")]
    run = lineage.run
    datasets = [f"{d.uri} ({d.rows:,} rows × {d.columns} columns)" for d in lineage.datasets]
    if run is None:
        rows: list[tuple[str, RenderableType]] = [
            ("run", Text("none recorded (the model was logged outside a run)", style="dim"))
        ]
    else:
        rows = [
            ("run", text(f"{run.name} ({run.id})")),
            ("experiment", text(run.experiment)),
            ("code", text(git_summary(lineage.code_version))),
            ("params", text(_pairs(run.params, str))),
            ("metrics", text(_pairs(run.metrics, number))),
        ]
    rows.append(("trained on", text("\n".join(datasets) or "no dataset versions recorded")))
    return [
        Panel(label_grid(rows), title="Model version behind it", title_align="left", expand=False)
    ]


def _live_table(trace: PredictionTrace) -> RenderableType:
    if not trace.alias_events:
        return Text("No alias move made this version live (served by its number).", style="dim")
    table = new_table("How it became live")
    for column in ("alias", "when", "by", "from", "to", "kind", "reason"):
        table.add_column(column)
    for e in trace.alias_events:
        table.add_row(
            text(f"@{e.alias}"),
            text(local_time(e.moved_at, zone=True)),
            text(e.moved_by),
            text(e.from_version),
            text(e.to_version),
            text(e.kind),
            text(e.reason),
        )
    return table


def _promotions_table(trace: PredictionTrace) -> RenderableType:
    if not trace.promotions:
        return Text("No promotion decision recorded for this version.", style="dim")
    table = new_table("Promotion decisions")
    for column in ("alias", "when", "by", "outcome", "checks", "holder before", "failed"):
        table.add_column(column)
    for p in trace.promotions:
        passed = sum(bool(c.get("passed")) for c in p.checks)
        table.add_row(
            text(f"@{p.alias}"),
            text(local_time(p.decided_at, zone=True)),
            text(p.decided_by),
            Text("passed", style="green") if p.passed else Text("refused", style="red"),
            text(f"{passed}/{len(p.checks)}"),
            text(p.current_version),
            text("; ".join(p.reasons) or None),
        )
    return table


def _pairs(values: Mapping[str, Any], fmt: Any) -> str | None:
    shown = [f"{k}={fmt(values[k])}" for k in sorted(values)[:_SHOWN]]
    if len(values) > _SHOWN:
        shown.append(f"... {len(values) - _SHOWN} more (loopwise runs show)")
    return ", ".join(shown) or None


def _value(value: Any) -> Any:
    return number(value) if isinstance(value, float) else value
