"""``loopwise models`` and ``loopwise evaluate``: the model registry from the terminal.

Each command makes one or two calls into the registry services (``list_models``,
``list_versions``, ``model_lineage``, ``set_alias``, ``rollback``, ``version_at``...) and
prints a table for people or JSON with ``--json``. Alias moves print the move they made
(``credit-risk@champion: 2 → 3``), so a terminal log shows what changed. ``evaluate`` scores
a registered model on a file or a ``datasets:/`` reference, overall, per slice and against
a trivial baseline; the result is stored with the model version (``models show`` lists it,
each distinct result once). ``models show`` and ``models history`` also list refused
promotions with the checks that refused them, so "why was v3 refused?" has an answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from loopwise.cli.options import JsonOption
from loopwise.cli.render import (
    MISSING,
    console,
    local_time,
    new_table,
    number,
    print_json,
    print_note,
    size,
    text,
    where_stored,
)
from loopwise.cli.run_views import git_summary, key_values, label_grid

if TYPE_CHECKING:
    from loopwise.evaluation.evaluate import Evaluation
    from loopwise.registry.evaluations import StoredEvaluation
    from loopwise.registry.lineage import ModelLineage
    from loopwise.registry.promotion_history import PromotionRecord
    from loopwise.registry.records import AliasMove, ModelVersion

app = typer.Typer(
    help="List and inspect registered models; move, roll back and trace their aliases.",
    no_args_is_help=True,
)
alias_app = typer.Typer(help="Point an alias (e.g. champion) at a version, or remove it.")
app.add_typer(alias_app, name="alias", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The model name (see `loopwise models list`).")]
ReasonOption = Annotated[
    str | None,
    typer.Option("--reason", "-r", help="Why: recorded in the alias history.", show_default=False),
]
AliasOption = Annotated[
    str, typer.Option("--alias", "-a", help="The alias, e.g. champion.", show_default=False)
]

#: Slice columns shown per task by ``evaluate`` (all metrics are in --json and --html).
SLICE_METRICS = {
    "classification": ("accuracy", "f1", "roc_auc"),
    "regression": ("rmse", "mae", "r2"),
}


def model_uri(uri_or_name: str) -> str:
    """``models:/...`` as given; a bare ``name`` (or ``name/3``, ``name@alias``) prefixed."""
    return uri_or_name if ":/" in uri_or_name else f"models:/{uri_or_name}"


def _version_text(version: int | None) -> str:
    return MISSING if version is None else str(version)


def _move_text(move: AliasMove) -> str:
    suffix = {"rollback": " (rollback)", "delete": " (deleted)"}.get(move.kind, "")
    return (
        f"{move.model}@{move.alias}: {_version_text(move.from_version)} → "
        f"{_version_text(move.to_version)}{suffix}"
    )


def _print_move(move: AliasMove) -> None:
    console().print(Text(_move_text(move), style="bold"))
    if move.reason:
        print_note(f"reason: {move.reason}")


# -- listing ---------------------------------------------------------------------------------


@app.command("list")
def list_models(as_json: JsonOption = False) -> None:
    """List every registered model: versions, latest version, aliases, created."""
    from loopwise.registry.api import list_models as list_api

    found = list_api()
    if as_json:
        print_json([m.to_dict() for m in found])
        return
    if not found:
        print_note(
            f"No models yet in {where_stored()}. Register one with lw.log_model(model, name=...)."
        )
        return
    table = new_table()
    table.add_column("name", style="bold")
    table.add_column("versions", justify="right")
    table.add_column("latest", justify="right")
    table.add_column("aliases")
    table.add_column("created", no_wrap=True)
    for m in found:
        aliases = sorted(m.aliases.items(), key=lambda item: (item[1], item[0]))
        table.add_row(
            text(m.name),
            text(m.versions),
            text(m.latest_version),
            text(", ".join(f"{alias}→{version}" for alias, version in aliases) or None),
            local_time(m.created_at),
        )
    console().print(table)


@app.command("versions")
def list_versions(name: NameArg, as_json: JsonOption = False) -> None:
    """List the versions of a model, oldest first: aliases, flavor, run, size, created."""
    from loopwise.registry.api import list_model_versions

    found = list_model_versions(name)
    if as_json:
        print_json([v.to_dict() for v in found])
        return
    if not found:
        print_note(f"Model {name!r} has no versions yet.")
        return
    table = new_table()
    table.add_column("version", justify="right", style="bold")
    table.add_column("aliases")
    table.add_column("flavor")
    table.add_column("run", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for v in found:
        table.add_row(
            text(v.version),
            text(", ".join(v.aliases) or None),
            text(v.flavor),
            text(v.run_id),
            size(v.size),
            local_time(v.created_at),
        )
    console().print(table)


@app.command("history")
def history(
    name: NameArg,
    alias: Annotated[
        str | None,
        typer.Option("--alias", "-a", help="Only this alias's moves.", show_default=False),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Every recorded move of the model's aliases, oldest first: who, when, why.

    Refused promotions are listed too (kind "refused", the alias stayed where it was),
    with the checks that refused the candidate.
    """
    from loopwise.registry.api import alias_history, promotion_history

    moves = alias_history(name, alias)
    refused = [p for p in promotion_history(name, alias=alias) if not p.passed]
    entries: list[tuple[datetime, dict[str, Any]]] = [(m.moved_at, m.to_dict()) for m in moves]
    entries += [(p.decided_at, _refusal_entry(p)) for p in refused]
    entries.sort(key=lambda entry: entry[0])  # stable: a move before a refusal at one time
    if as_json:
        print_json([entry for _, entry in entries])
        return
    if not entries:
        which = f"alias {alias!r} of model {name!r}" if alias else f"the aliases of {name!r}"
        print_note(f"No recorded moves of {which}.")
        return
    table = new_table()
    table.add_column("when", no_wrap=True)
    table.add_column("alias", style="bold")
    table.add_column("kind")
    table.add_column("from → to", no_wrap=True)
    table.add_column("by")
    table.add_column("reason", overflow="fold")
    for moment, entry in entries:
        from_version, to_version = entry["from_version"], entry["to_version"]
        if entry["kind"] == "refused":  # the candidate did not get the alias
            arrow = f"{_version_text(from_version)} ↛ {entry['candidate_version']}"
        else:
            arrow = f"{_version_text(from_version)} → {_version_text(to_version)}"
        table.add_row(
            local_time(moment),
            text(entry["alias"]),
            Text(entry["kind"], style="red" if entry["kind"] == "refused" else ""),
            text(arrow),
            text(entry["moved_by"]),
            text(entry["reason"]),
        )
    console().print(table)
    if refused:
        print_note(
            f"{len(refused)} refused promotion{'s' if len(refused) > 1 else ''} (↛): the alias "
            "stayed where it was, for the reasons shown."
        )


def _refusal_entry(record: PromotionRecord) -> dict[str, Any]:
    """A refused promotion as an alias history entry: the alias stayed with its holder."""
    return {
        "model": record.model,
        "alias": record.alias,
        "kind": "refused",
        "from_version": record.current_version,
        "to_version": record.current_version,
        "candidate_version": record.candidate_version,
        "moved_at": record.decided_at.isoformat(),
        "moved_by": record.decided_by,
        "reason": "\n".join(_failed_check_lines(record)),
        "failed_checks": record.failed_checks,
    }


def _failed_check_lines(record: PromotionRecord) -> list[str]:
    """``threshold:roc_auc — roc_auc is 0.61, below the floor 0.7 by 0.09``, one a check."""
    return [f"{check.get('name')} — {check.get('message')}" for check in record.failed_checks]


# -- show ------------------------------------------------------------------------------------


@app.command("show")
def show(
    uri_or_name: Annotated[
        str,
        typer.Argument(
            metavar="URI_OR_NAME",
            help="models:/name/3, models:/name@champion, or a name (its latest version).",
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Show one version: overview, signature, lineage (run, code, data) and evaluations."""
    from loopwise.registry.api import model_lineage, promotion_history, stored_evaluations

    lineage = model_lineage(model_uri(uri_or_name))
    version = lineage.version
    evaluations = stored_evaluations(version.uri)
    promotions = promotion_history(version.name, version=version.version)
    if as_json:
        print_json(
            {
                **lineage.to_dict(),
                "evaluations": [e.to_dict() for e in evaluations],
                "promotions": [p.to_dict() for p in promotions],
            }
        )
        return
    console().print(Group(*_version_details(lineage, evaluations, promotions)))
    if any(e.dataset_uri is None and e.dataset_version_id is None for e in evaluations):
        print_note(
            "Unversioned data was passed as a frame or a file, not as a datasets:/ reference; "
            "log it with lw.log_dataset and evaluate on its reference to record which data "
            "it was."
        )


def _version_details(
    lineage: ModelLineage,
    evaluations: Sequence[StoredEvaluation],
    promotions: Sequence[PromotionRecord],
) -> list[RenderableType]:
    """The sections of ``models show``, top to bottom."""
    sections = [_overview(lineage.version), _signature(lineage.version.signature)]
    run = lineage.run
    sections.append(_lineage(lineage))
    if run is not None:
        sections.append(key_values("Run params", run.params, str, "The run logged no params."))
        sections.append(
            key_values("Run metrics", run.metrics, _metric, "The run logged no metrics.")
        )
    sections.append(_evaluations(evaluations))
    sections.extend(_promotions(promotions))
    return sections


def _overview(version: ModelVersion) -> Panel:
    tags = ", ".join(f"{k}={v}" for k, v in sorted(version.tags.items()))
    rows: list[tuple[str, RenderableType]] = [
        ("uri", text(version.uri)),
        ("flavor", text(version.flavor)),
        ("aliases", text(", ".join(version.aliases) or None)),
        ("size", text(size(version.size))),
        ("created", text(local_time(version.created_at, zone=True))),
        ("created by", text(version.created_by)),
        ("run", text(version.run_id)),
        ("description", text(version.description)),
        ("tags", text(tags or None)),
    ]
    return Panel(
        label_grid(rows),
        title=Text(f"Model {version.name} version {version.version}"),
        title_align="left",
        expand=False,
    )


def _signature(signature: Mapping[str, Any] | None) -> RenderableType:
    if not signature or not signature.get("inputs"):
        return Text("No signature: inputs are not checked.", style="dim")
    table = new_table("Signature")
    table.add_column("input", style="bold", overflow="fold")
    table.add_column("type")
    for spec in signature["inputs"]:
        table.add_row(text(spec.get("name")), text(_spec_type(spec)))
    outputs = signature.get("outputs") or []
    if not outputs:
        return table
    described = ", ".join(f"{spec.get('name')} ({_spec_type(spec)})" for spec in outputs)
    return Group(table, Text(f"outputs: {described}", style="dim"))


def _spec_type(spec: Mapping[str, Any]) -> str:
    shape = spec.get("shape")
    if shape is None:
        return str(spec.get("type"))
    return f"{spec.get('type')} {tuple(shape)}"


def _lineage(lineage: ModelLineage) -> RenderableType:
    run = lineage.run
    if run is None:
        return Text("Lineage: no run recorded (the model was logged outside a run).", style="dim")
    datasets = [f"{d.uri} ({d.rows:,} rows × {d.columns} columns)" for d in lineage.datasets]
    rows: list[tuple[str, RenderableType]] = [
        ("run", text(f"{run.name} ({run.id})")),
        ("experiment", text(run.experiment)),
        ("status", text(run.status)),
        ("code", text(git_summary(lineage.code_version))),
        ("data", text("\n".join(datasets) or "no dataset versions recorded")),
    ]
    return Panel(label_grid(rows), title="Lineage", title_align="left", expand=False)


def _evaluations(evaluations: Sequence[StoredEvaluation]) -> RenderableType:
    """One row per distinct result; ``stored`` counts the copies (one per promote attempt
    on the same data) and says when the last one was stored."""
    if not evaluations:
        return Text(
            "No evaluations stored. Score this version with `loopwise evaluate URI DATA`.",
            style="dim",
        )
    names: list[str] = []
    for e in evaluations:
        metrics = e.document.get("metrics", {})
        names.extend(m for m in metrics if m != "confusion_matrix" and m not in names)
    table = new_table("Evaluations (overall)")
    for column in ("#", "data", "task", "n", "stored"):
        table.add_column(column, justify="right" if column in ("#", "n") else "left")
    for name in names:
        table.add_column(name, justify="right", min_width=len(name))
    for i, e in enumerate(evaluations, start=1):
        metrics = e.document.get("metrics", {})
        stored = local_time(e.last_at)
        if e.count > 1:
            stored = f"{e.count}×, last {stored}"
        table.add_row(
            text(i),
            text(e.data),
            text(e.document.get("task")),
            text(f"{e.document.get('n', 0):,}"),
            text(stored),
            *(text(_metric(metrics.get(name))) for name in names),
        )
    return table


def _check_value(value: Any) -> str:
    """A gate's value or limit: six significant digits, so 0.999998 is not shown as 1."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING if value is None else str(value)
    return number(value, 6)


def _promotions(promotions: Sequence[PromotionRecord]) -> list[RenderableType]:
    """Every promotion decision about this version and, for the refused ones, each failed
    check: the gate, the slice, the value observed, the limit and by how much it failed."""
    if not promotions:
        return []
    table = new_table("Promotions")
    for column in ("#", "when", "alias", "verdict", "holder then", "checks passed"):
        table.add_column(column, justify="right" if column == "#" else "left", no_wrap=True)
    failed = new_table("Why refused")
    for column in ("#", "gate", "slice", "observed", "limit", "reason"):
        failed.add_column(
            column,
            justify="right" if column in ("#", "observed", "limit") else "left",
            no_wrap=column != "reason",
            overflow="fold",
        )
    for i, p in enumerate(promotions, start=1):
        passed = sum(bool(c.get("passed")) for c in p.checks)
        table.add_row(
            text(i),
            text(local_time(p.decided_at)),
            text(p.alias),
            Text("promoted", style="green") if p.passed else Text("refused", style="red"),
            text(_version_text(p.current_version)),
            text(f"{passed}/{len(p.checks)}"),
        )
        for check in p.failed_checks:
            failed.add_row(
                text(i),
                text(check.get("name")),
                text(check.get("slice")),
                text(_check_value(check.get("value"))),
                text(_check_value(check.get("limit"))),
                text(check.get("message")),
            )
    return [table, failed] if failed.row_count else [table]


# -- aliases ---------------------------------------------------------------------------------


@alias_app.command("set")
def set_alias(
    name: NameArg,
    alias: Annotated[str, typer.Argument(help="The alias, e.g. champion.")],
    version: Annotated[int, typer.Argument(help="The version number it should point at.")],
    reason: ReasonOption = None,
) -> None:
    """Point ALIAS of model NAME at VERSION (recorded with who, when and why)."""
    from loopwise.registry.api import set_alias as set_api

    _print_move(set_api(name, alias, version, reason=reason))


@alias_app.command("delete")
def delete_alias(
    name: NameArg,
    alias: Annotated[str, typer.Argument(help="The alias to remove.")],
    reason: ReasonOption = None,
) -> None:
    """Remove ALIAS from model NAME (recorded in its history)."""
    from loopwise.registry.api import delete_alias as delete_api

    _print_move(delete_api(name, alias, reason=reason))


@app.command("rollback")
def rollback(name: NameArg, alias: AliasOption, reason: ReasonOption = None) -> None:
    """Move an alias back to the version that held it before the current one.

    Rollbacks stack: rolling back twice after 1 → 2 → 3 lands on 1.
    """
    from loopwise.registry.api import rollback as rollback_api

    _print_move(rollback_api(name, alias, reason=reason))


def parse_time(value: str) -> datetime:
    """An ISO 8601 moment with a zone (one without is refused, as everywhere in loopwise)."""
    from loopwise.clock import parse_iso
    from loopwise.errors import InvalidInput

    try:
        return parse_iso(value, "--time")
    except InvalidInput as e:
        raise typer.BadParameter(str(e).removeprefix("--time "), param_hint="'--time'") from None


@app.command("at")
def version_at(
    name: NameArg,
    alias: AliasOption,
    time: Annotated[
        str,
        typer.Option(
            "--time",
            "-t",
            help="An ISO 8601 time with a zone, e.g. 2024-05-01T14:00:00+02:00 or ...Z.",
            show_default=False,
        ),
    ],
) -> None:
    """Which version held an alias at a given time (exit 1 when none did)."""
    from loopwise.errors import NotFound
    from loopwise.registry.api import version_at as version_at_api

    moment = parse_time(time)
    held = version_at_api(name, alias, moment)
    when = local_time(moment, zone=True)
    if held is None:
        raise NotFound(f"No version of model {name!r} held alias {alias!r} at {when}.")
    console().print(
        Text(f"{name}@{alias} at {when}: version {held} (models:/{name}/{held})"),
    )


# -- evaluate --------------------------------------------------------------------------------


class Task(StrEnum):
    classification = "classification"
    regression = "regression"


def parse_bins(specs: Sequence[str]) -> list[tuple[str, list[float]]]:
    """``COL=0,30,50,120`` options as ``(column, edges)`` slice specs."""
    parsed = []
    for spec in specs:
        column, sep, edges = spec.partition("=")
        try:
            values = [float(e) for e in edges.split(",") if e.strip()]
        except ValueError:
            values = []
        if not sep or not column.strip() or len(values) < 2:
            raise typer.BadParameter(
                f"{spec!r} is not COLUMN=EDGE,EDGE,...; e.g. age=0,30,50,120.",
                param_hint="'--bins'",
            )
        parsed.append((column.strip(), values))
    return parsed


def _metric(value: Any, *, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


def evaluate_command(
    uri: Annotated[
        str,
        typer.Argument(help="models:/name/3, models:/name@champion, or a name (latest)."),
    ],
    data: Annotated[
        str,
        typer.Argument(help="Labelled data: a Parquet or CSV file, or datasets:/name/version."),
    ],
    target: Annotated[str, typer.Option("--target", "-t", help="The label column.")] = "y",
    task: Annotated[
        Task | None,
        typer.Option("--task", help="Inferred from the target when not given.", show_default=False),
    ] = None,
    slices: Annotated[
        list[str] | None,
        typer.Option(
            "--slice",
            "-s",
            help="Score each value of this column separately; repeat for several.",
            show_default=False,
        ),
    ] = None,
    bins: Annotated[
        list[str] | None,
        typer.Option(
            "--bins",
            help="Score numeric bins of a column, e.g. age=0,30,50,120; repeat for several.",
            show_default=False,
        ),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report here.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate a registered model on labelled data: overall, per slice, against a baseline.

    The result is stored with the model version; `loopwise models show` lists it.

    Slices worse than overall by more than 0.05 on a unitless metric are marked ▼.
    """
    from loopwise.cli.data import _read, _steps, _write_html
    from loopwise.context import get_store
    from loopwise.registry.api import load_model
    from loopwise.registry.evaluations import evaluate_and_store

    specs: list[Any] = [*(slices or []), *parse_bins(bins or [])]
    uri = model_uri(uri)
    from_dataset = data.startswith("datasets:/")
    with _steps(3) as (step, done):
        step(f"loading {uri}")
        load_model(uri)  # cached: evaluate_and_store below reuses it
        done()
        source: Any = data
        if not from_dataset:  # a datasets:/ reference is read (and linked) by the service
            step(f"reading {data}")
            source = _read(data)
        done()
        step(("reading data, " if from_dataset else "") + "predicting and scoring")
        evaluation = evaluate_and_store(
            get_store(),
            uri,
            source,
            run_id=None,
            load=load_model,
            target=target,
            task=None if task is None else task.value,
            slices=specs or None,
        )
        done()
    if as_json:
        flagged = evaluation.flagged_slices()
        print_json({**evaluation.to_dict(), "flagged_slices": flagged.to_dict("records")})
    else:
        _print_evaluation(evaluation)
    _write_html(evaluation, html)


def _print_evaluation(evaluation: Evaluation) -> None:
    from loopwise.evaluation.metrics import HIGHER_IS_BETTER

    out = console()
    out.print(Text(evaluation.summary().splitlines()[0], style="bold"))
    table = new_table()
    table.add_column("metric", style="bold")
    for column in ("model", "baseline", "lift"):
        table.add_column(column, justify="right")
    for name in evaluation.metric_names:
        lift = evaluation.lift[name]
        better = lift > 0 if name in HIGHER_IS_BETTER else lift < 0
        style = "" if math.isnan(lift) or lift == 0 else ("green" if better else "red")
        table.add_row(
            text(name),
            text(_metric(evaluation.metrics[name])),
            text(_metric(evaluation.baseline_metrics[name])),
            Text(_metric(lift, sign=True), style=style),
        )
    out.print(table)
    if evaluation.slice_metrics.empty:
        return
    flagged = evaluation.flagged_slices()
    marks: dict[tuple[str, str], list[str]] = {}
    for row in flagged.itertuples():
        marks.setdefault((str(row.slice_column), str(row.slice_value)), []).append(row.metric)
    for metrics in marks.values():
        metrics.sort(key=evaluation.metric_names.index)
    shown = [m for m in SLICE_METRICS[evaluation.task] if m in evaluation.slice_metrics]
    slices = new_table("Slices")
    for column in ("slice", "value", "n", *shown, "flagged"):
        slices.add_column(column, justify="right" if column == "n" or column in shown else "left")
    for row in evaluation.slice_metrics.to_dict("records"):
        key = (str(row["slice_column"]), str(row["slice_value"]))
        hit = marks.get(key)
        slices.add_row(
            text(key[0]),
            text(key[1]),
            text(f"{int(row['n']):,}"),
            *(text(_metric(row[m])) for m in shown),
            Text("▼ " + ", ".join(hit), style="bold red") if hit else text(""),
            style="red" if hit else None,
        )
    out.print(slices)
    if marks:
        print_note(
            f"{len(marks)} slice(s) marked ▼ are worse than overall by more than 0.05 on the "
            "metrics named; --json or --html has every metric."
        )


from loopwise.cli.promote import promote_command  # noqa: E402  (registered on this group)

app.command("promote")(promote_command)
