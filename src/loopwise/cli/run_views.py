"""How runs look in the terminal: the runs table, the run details and the comparison.

Kept apart from the commands so the layout rules (which metric columns fit, which rows
differ) can be tested without a store, and so ``loopwise.cli.runs`` stays a thin layer.
This module is imported only by the commands that draw runs.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from loopwise.cli.render import (
    MISSING,
    duration,
    local_time,
    new_table,
    number,
    short_time,
    size,
    status_text,
    text,
)
from loopwise.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from loopwise.tracking.records import Run
    from loopwise.tracking.run_artifacts import ArtifactInfo

_ENTITIES = ("params", "metrics", "tags")
_EXTRA_BASE = ("parent_run_id", "end_time")  # frame columns not shown by default
_SHOWN_BASE = ("run_id", "name", "experiment", "status", "start_time")
MIN_METRIC_COLUMNS = 0  # metrics that do not fit are named in a remark instead
NAME_WIDTH = 24  # run and experiment names are cut to this when space is short
LIST_DIGITS = 5
DETAIL_DIGITS = 10


# -- runs list -------------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ == "NaTType"


def _elapsed(start: Any, end: Any) -> float | None:
    if _is_missing(start):
        return None
    stop = datetime.now(UTC) if _is_missing(end) else end
    return (stop - start).total_seconds()


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``search_runs`` rows as dicts shaped like ``Run.to_dict()`` (missing values left out)."""
    records = []
    for row in frame.to_dict("records"):
        end = None if _is_missing(row["end_time"]) else row["end_time"]
        record: dict[str, Any] = {
            "id": row["run_id"],
            "name": row["name"],
            "experiment": row["experiment"],
            "status": row["status"],
            "start_time": row["start_time"],
            "end_time": end,
            "duration_s": _elapsed(row["start_time"], end) if end is not None else None,
            "parent_run_id": row["parent_run_id"],
        }
        for entity in _ENTITIES:
            prefix = entity + "."
            record[entity] = {
                column[len(prefix) :]: value
                for column, value in row.items()
                if column.startswith(prefix) and not _is_missing(value)
            }
        records.append(record)
    return records


def split_columns(values: Iterable[str] | None) -> list[str] | None:
    """``--columns`` values (repeatable, comma-separated) as one de-duplicated list."""
    if not values:
        return None
    names: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    return names or None


def _check_column(name: str) -> None:
    entity, dot, key = name.partition(".")
    if (dot and entity in _ENTITIES and key) or name in _EXTRA_BASE or name in _SHOWN_BASE:
        return
    raise InvalidInput(
        f"Unknown column {name!r} in --columns. Use metrics.<key>, params.<key> or "
        f"tags.<key> (for example metrics.auc,params.C), or one of: {', '.join(_EXTRA_BASE)}."
    )


def _cell(column: str, value: Any) -> str:
    if _is_missing(value):
        return MISSING
    if column.startswith("metrics."):
        return number(value, LIST_DIGITS)
    if isinstance(value, datetime):
        return local_time(value)
    return str(value)


def _header(column: str) -> str:
    """Metric columns are headed by their key alone (numbers, right-aligned); others in full."""
    return column.removeprefix("metrics.")


def _width(header: str, cells: Sequence[str], cap: int | None = None) -> int:
    widest = max([len(header), *(len(c) for c in cells)])
    return (min(widest, cap) if cap else widest) + 2  # a divider and a space of padding


def runs_table(
    frame: pd.DataFrame, requested: list[str] | None, *, width: int
) -> tuple[Table, list[str]]:
    """The ``runs list`` table for ``frame`` and remarks to print under it.

    ``requested`` columns (``--columns``) are shown as asked; without them, the metric
    columns are added in name order while the table fits ``width`` (at least
    :data:`MIN_METRIC_COLUMNS`), and the rest are named in a remark.
    """
    notes: list[str] = []
    starts = list(frame["start_time"])
    ends = list(frame["end_time"])
    statuses = list(frame["status"])
    durations = []
    for start, end, status in zip(starts, ends, statuses, strict=True):
        shown = duration(_elapsed(start, end))
        durations.append(shown + "…" if status == "RUNNING" and shown != MISSING else shown)
    # (header, cells, most columns worth giving it when space is short)
    base: list[tuple[str, list[str], int | None]] = [
        ("run id", [str(v) for v in frame["run_id"]], None),
        ("name", [str(v) for v in frame["name"]], NAME_WIDTH),
        ("experiment", [str(v) for v in frame["experiment"]], NAME_WIDTH),
        ("status", [str(v) for v in statuses], None),
        ("start", [short_time(v) for v in starts], None),
        ("duration", durations, None),
    ]
    extras: list[tuple[str, list[str]]] = []
    if requested is not None:
        for name in requested:
            _check_column(name)
            if name in _SHOWN_BASE:
                continue  # already a base column
            if name in frame.columns:
                extras.append((name, [_cell(name, v) for v in frame[name]]))
            else:
                close = difflib.get_close_matches(name, list(frame.columns), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                notes.append(f"No run in the results has {name}{hint}.")
                extras.append((name, [MISSING] * len(frame)))
    else:
        used = sum(_width(h, cells, cap) for h, cells, cap in base)
        metric_columns = [c for c in frame.columns if c.startswith("metrics.")]
        for i, name in enumerate(metric_columns):
            cells = [_cell(name, v) for v in frame[name]]
            needed = _width(_header(name), cells)
            if i >= MIN_METRIC_COLUMNS and used + needed > width:
                rest = metric_columns[i:]
                notes.append(
                    f"{len(rest)} more metric column{'s' if len(rest) > 1 else ''} not shown "
                    f"({', '.join(rest[:5])}{', ...' if len(rest) > 5 else ''}); "
                    "pick columns with --columns or widen the terminal."
                )
                break
            used += needed
            extras.append((name, cells))

    table = new_table()
    table.add_column("run id", no_wrap=True, style="dim", min_width=26)
    # Names give way when space is short (wrapped, at least 6 characters wide).
    table.add_column("name", overflow="fold", min_width=6)
    table.add_column("experiment", overflow="fold", min_width=6)
    table.add_column("status", no_wrap=True, min_width=8)
    table.add_column("start", no_wrap=True)
    table.add_column("duration", no_wrap=True, justify="right")
    for name, _ in extras:
        numeric = name.startswith("metrics.")
        table.add_column(
            Text(_header(name)),
            justify="right" if numeric else "left",
            no_wrap=True,
            overflow="ellipsis",
            min_width=min(len(_header(name)), 10),
        )
    for i in range(len(frame)):
        row: list[RenderableType] = [Text(column[i]) for _, column, _ in base]
        row[3] = status_text(statuses[i])
        row.extend(Text(column[i]) for _, column in extras)
        table.add_row(*row)
    return table, notes


# -- runs show -------------------------------------------------------------------------------


def label_grid(rows: Iterable[tuple[str, RenderableType]]) -> Table:
    """Two columns, bold labels and their values: the body of every detail panel."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def key_values(
    title: str, values: Mapping[str, Any], fmt: Callable[[Any], str], empty: str
) -> RenderableType:
    """A table of ``values`` by sorted key (params, metrics, tags), or ``empty`` dimmed."""
    if not values:
        return Text(empty, style="dim")
    table = new_table(title)
    table.add_column("key", style="bold", overflow="fold")
    table.add_column("value", overflow="fold")
    for key in sorted(values):
        table.add_row(Text(key), Text(fmt(values[key])))
    return table


def _overview(run: Run) -> Panel:
    running = run.end_time is None
    elapsed = _elapsed(run.start_time, run.end_time)
    rows: list[tuple[str, RenderableType]] = [
        ("id", text(run.id)),
        ("name", text(run.name)),
        ("experiment", text(run.experiment)),
        ("status", status_text(run.status)),
        ("parent", text(run.parent_run_id)),
        ("start", text(local_time(run.start_time, zone=True))),
        ("end", text(local_time(run.end_time, zone=True))),
        ("duration", text(duration(elapsed) + (" (running)" if running else ""))),
        ("host", text(run.host)),
        ("user", text(run.user)),
    ]
    return Panel(label_grid(rows), title=Text(f"Run {run.name}"), title_align="left", expand=False)


def _part(env: Mapping[str, Any], key: str) -> Any:
    """A part of the environment; None when absent or when its capture failed."""
    value = env.get(key)
    if isinstance(value, Mapping) and "error" in value:
        return None
    return value


def git_summary(git: Any) -> str:
    """A recorded git state in one line: commit, branch, dirty or clean."""
    if not isinstance(git, Mapping):
        return "not a git work tree"
    if "error" in git:
        return f"unknown ({git['error']})"
    commit = git.get("commit")
    parts = [str(commit)[:12] if commit else "no commit yet"]
    if git.get("branch"):
        parts.append(f"on {git['branch']}")
    else:
        parts.append("(detached)")
    if git.get("dirty"):
        parts.append("[dirty: uncommitted changes]")
    return " ".join(parts)


def _cpu_summary(cpu: Any) -> str:
    if not isinstance(cpu, Mapping):
        return MISSING
    cores = [
        f"{cpu[key]} {label}"
        for key, label in (("logical_cores", "logical"), ("physical_cores", "physical"))
        if cpu.get(key)
    ]
    model = str(cpu.get("model") or "unknown model")
    return f"{model} ({', '.join(cores)} cores)" if cores else model


def _gpu_summary(gpus: Any) -> str:
    if gpus is None:
        return MISSING
    if not isinstance(gpus, list) or not gpus:
        return "none"
    names = []
    for gpu in gpus:
        if isinstance(gpu, Mapping):
            memory = gpu.get("memory_bytes")
            names.append(f"{gpu.get('name')}" + (f" ({size(memory)})" if memory else ""))
        else:
            names.append(str(gpu))
    return "; ".join(names)


def _environment(env: Mapping[str, Any] | None) -> RenderableType:
    if not isinstance(env, Mapping) or not env:
        return Text("Environment: not captured.", style="dim")
    python = _part(env, "python") or {}
    os_info = _part(env, "os") or {}
    packages = _part(env, "packages")
    memory = env.get("memory_bytes")
    rows: list[tuple[str, RenderableType]] = [
        ("git", text(git_summary(env.get("git")))),
        (
            "python",
            text(
                " ".join(str(python[k]) for k in ("version", "implementation") if python.get(k))
                or None
            ),
        ),
        ("entry point", text(env.get("entry_point"))),
        ("os", text(os_info.get("platform") or os_info.get("system"))),
        ("cpu", text(_cpu_summary(_part(env, "cpu")))),
        ("memory", text(size(memory) if isinstance(memory, int) else None)),
        ("gpus", text(_gpu_summary(env.get("gpus")))),
        ("packages", text(len(packages) if isinstance(packages, Mapping) else None)),
    ]
    return Panel(label_grid(rows), title="Environment", title_align="left", expand=False)


def _artifacts(artifacts: Sequence[ArtifactInfo]) -> RenderableType:
    if not artifacts:
        return Text("No artifacts.", style="dim")
    table = new_table("Artifacts")
    table.add_column("path", overflow="fold")
    table.add_column("size", justify="right", no_wrap=True)
    for info in artifacts:
        table.add_row(Text(info.path), size(info.size))
    return table


def run_details(run: Run, artifacts: Sequence[ArtifactInfo]) -> list[RenderableType]:
    """The sections of ``runs show``, top to bottom."""
    return [
        _overview(run),
        key_values("Params", run.params, str, "No params."),
        key_values(
            "Metrics (latest)", run.metrics, lambda v: number(v, DETAIL_DIGITS), "No metrics."
        ),
        key_values("Tags", run.tags, str, "No tags."),
        _environment(run.environment),
        _artifacts(artifacts),
    ]


# -- runs compare ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareRow:
    """One row of ``runs compare``: a label, one cell per run, and whether the runs differ."""

    label: str
    cells: list[RenderableType]
    differs: bool


def _same(values: Sequence[Any]) -> bool:
    first = values[0]
    for value in values[1:]:
        both_nan = (
            isinstance(first, float)
            and isinstance(value, float)
            and math.isnan(first)
            and math.isnan(value)
        )
        if not both_nan and value != first:
            return False
    return True


def compare_rows(found: Sequence[Run], *, show_all: bool) -> tuple[list[CompareRow], int]:
    """The rows of ``runs compare`` and the number of identical params left out."""
    rows = [
        CompareRow(
            "status",
            [status_text(run.status) for run in found],
            not _same([run.status for run in found]),
        ),
        # Durations always differ a little: never bold, or every table would shout.
        CompareRow("duration", [Text(duration(run.duration_s)) for run in found], False),
    ]
    experiments = [run.experiment for run in found]
    if not _same(experiments):
        rows.insert(0, CompareRow("experiment", [text(e) for e in experiments], True))
    hidden = 0
    for key in sorted({k for run in found for k in run.params}):
        values = [run.params.get(key) for run in found]
        differs = not _same(values)
        if not differs and not show_all:
            hidden += 1
            continue
        rows.append(CompareRow(f"params.{key}", [text(v) for v in values], differs))
    for key in sorted({k for run in found for k in run.metrics}):
        values = [run.metrics.get(key) for run in found]
        cells: list[RenderableType] = [Text(number(v, DETAIL_DIGITS)) for v in values]
        rows.append(CompareRow(f"metrics.{key}", cells, not _same(values)))
    return rows, hidden


def compare_table(found: Sequence[Run], *, show_all: bool) -> tuple[Table, int]:
    """The ``runs compare`` table and the number of identical params left out."""
    rows, hidden = compare_rows(found, show_all=show_all)
    table = new_table()
    table.add_column("", no_wrap=True)
    for run in found:
        header = Text(run.name, style="bold")
        header.append("\n" + run.id, style="dim")
        table.add_column(header, overflow="fold")
    section = ""
    for row in rows:
        kind = row.label.split(".", 1)[0] if "." in row.label else ""
        if kind != section:
            table.add_section()
            section = kind
        table.add_row(Text(row.label), *row.cells, style="bold" if row.differs else None)
    return table, hidden
