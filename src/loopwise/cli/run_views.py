"""How runs look in the terminal: the runs table, the run details and the comparison.

Kept apart from the commands so the layout rules (which metric columns fit, which rows
differ) can be tested without a store, and so ``loopwise.cli.runs`` stays a thin layer.
This module is imported only by the commands that draw runs.
"""

from __future__ import annotations

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
    jsonable,
    local_time,
    new_table,
    number,
    short_time,
    size,
    status_text,
    text,
)
from loopwise.errors import InvalidInput
from loopwise.param_errors import closest

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


def sort_columns(order_by: Iterable[str] | None) -> list[str]:
    """The frame columns that ``--order-by`` sorts on and the fixed columns do not show.

    ``metrics.auc desc`` gives ``metrics.auc``; ``end_time`` gives ``end_time``; ``name`` or
    ``start_time`` give nothing, as they are always shown.
    """
    from loopwise.tracking.filter_parser import parse_order_by

    names: list[str] = []
    for key in parse_order_by(list(order_by or [])):
        name = key.key if key.entity == "attributes" else f"{key.entity}.{key.key}"
        if key.entity == "attributes" and name not in _EXTRA_BASE:
            continue  # a fixed column, or one the listing does not carry (user)
        if name not in names:
            names.append(name)
    return names


def runs_table(
    frame: pd.DataFrame,
    requested: list[str] | None,
    *,
    width: int,
    sorted_by: Sequence[str] = (),
) -> tuple[Table, list[str]]:
    """The ``runs list`` table for ``frame`` and remarks to print under it.

    After the fixed columns (id, name, experiment, status, start, duration) come the
    columns the runs are ``sorted_by`` (always: the order means nothing without them),
    then the ``requested`` columns (``--columns``) as asked. Without ``requested``, the
    other metric columns are added in name order while the table fits ``width`` (at least
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
    for name in requested or []:
        _check_column(name)
    for name in dict.fromkeys([*sorted_by, *(requested or [])]):
        if name in _SHOWN_BASE:
            continue  # already a base column
        if name in frame.columns:
            extras.append((name, [_cell(name, v) for v in frame[name]]))
        else:
            close = closest(name, frame.columns)
            hint = f" (did you mean {close}?)" if close else ""
            notes.append(f"No run in the results has {name}{hint}.")
            extras.append((name, [MISSING] * len(frame)))
    shown = {name for name, _ in extras}
    metric_columns = [c for c in frame.columns if c.startswith("metrics.") and c not in shown]
    if requested is not None:
        if metric_columns:
            notes.append(
                f"{len(metric_columns)} metric column{'s' if len(metric_columns) > 1 else ''} "
                "not shown: --columns shows only the columns it names (and the --order-by "
                "ones)."
            )
    else:
        used = sum(_width(h, cells, cap) for h, cells, cap in base)
        used += sum(_width(_header(name), cells) for name, cells in extras)
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


# -- runs metric -----------------------------------------------------------------------------

SPARK_BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60  # buckets in the sparkline of a metric's history
HISTORY_ROWS = 20  # points listed by `runs metric` unless -n says otherwise


@dataclass(frozen=True)
class HistorySummary:
    """First, last, lowest and highest value of a metric's history (NaN and ±inf left out
    of min and max), with the steps where the extremes were logged."""

    points: int
    first: float
    last: float
    min: float | None
    min_step: int | None
    max: float | None
    max_step: int | None
    not_finite: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "points": self.points,
            "first": self.first,
            "last": self.last,
            "min": self.min,
            "min_step": self.min_step,
            "max": self.max,
            "max_step": self.max_step,
            "not_finite": self.not_finite,
        }


def history_summary(history: pd.DataFrame) -> HistorySummary:
    """The :class:`HistorySummary` of a ``metric_history`` frame with at least one point."""
    import numpy as np

    values = history["value"].to_numpy()
    steps = history["step"].to_numpy()
    finite = np.flatnonzero(np.isfinite(values))
    low = high = None
    if len(finite):
        low = int(finite[np.argmin(values[finite])])
        high = int(finite[np.argmax(values[finite])])
    return HistorySummary(
        points=len(values),
        first=float(values[0]),
        last=float(values[-1]),
        min=None if low is None else float(values[low]),
        min_step=None if low is None else int(steps[low]),
        max=None if high is None else float(values[high]),
        max_step=None if high is None else int(steps[high]),
        not_finite=len(values) - len(finite),
    )


def sparkline(values: Sequence[float] | Any, width: int = SPARK_WIDTH) -> str:
    """``values`` in order as one line of bars, averaged into at most ``width`` buckets.

    Bars span the lowest to the highest bucket; a bucket with no finite value is a space,
    and a flat series is a row of middle bars.
    """
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    if not len(array):
        return ""
    buckets = np.array_split(np.where(np.isfinite(array), array, np.nan), min(width, len(array)))
    means = np.array([np.nan if np.isnan(b).all() else np.nanmean(b) for b in buckets])
    known = ~np.isnan(means)
    if not known.any():
        return " " * len(means)
    low, high = means[known].min(), means[known].max()
    top = len(SPARK_BARS) - 1
    if high == low:
        levels = np.full(len(means), top // 2)
    else:
        levels = np.rint((np.nan_to_num(means, nan=low) - low) / (high - low) * top).astype(int)
    bars = (SPARK_BARS[level] if ok else " " for level, ok in zip(levels, known, strict=True))
    return "".join(bars)


def history_rows(history: pd.DataFrame, limit: int) -> list[int]:
    """Positions of the points to list: all when there are at most ``limit``; otherwise
    ``limit`` evenly spaced ones (the first and last among them) plus the lowest and highest
    value, so a long history reads in one screen and its extremes are never skipped."""
    import numpy as np

    n = len(history)
    if n <= limit:
        return list(range(n))
    picks = {int(i) for i in np.linspace(0, n - 1, max(limit, 2)).round()}
    summary = history_summary(history)
    steps = history["step"].to_numpy()
    values = history["value"].to_numpy()
    for value, step in ((summary.min, summary.min_step), (summary.max, summary.max_step)):
        if value is not None:
            picks.add(int(np.flatnonzero((steps == step) & (values == value))[0]))
    return sorted(picks)


def history_json(run: Run, key: str, history: pd.DataFrame) -> str:
    """``runs metric --json``: the run, the summary, then every point on a line of its own.

    Written here rather than through ``print_json``: a history can hold millions of
    points, and the indenting JSON encoder takes about a minute over a million of them.
    Times are ISO 8601 in UTC; NaN and ±inf are ``null``, as everywhere in ``--json``.
    """
    import json

    import numpy as np

    summary = history_summary(history).to_dict() if len(history) else {"points": 0}
    head = {"run_id": run.id, "run_name": run.name, "key": key, "summary": summary}
    utc = history["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    stamps = np.datetime_as_string(utc.to_numpy(dtype="datetime64[us]"), unit="us")
    raw = history["value"].to_numpy()
    # The C encoder writes a float as repr() does, a million of them in a blink.
    values = json.dumps(raw.tolist())[1:-1].split(", ") if len(raw) else []
    for i in np.flatnonzero(~np.isfinite(raw)).tolist():
        values[i] = "null"
    points = ",\n".join(
        f'    {{"step": {step}, "timestamp": "{stamp}+00:00", "value": {value}}}'
        for step, stamp, value in zip(
            history["step"].tolist(), stamps.tolist(), values, strict=True
        )
    )
    body = json.dumps(jsonable(head), indent=2, allow_nan=False, ensure_ascii=False)
    listed = f"\n{points}\n  " if points else ""
    return f'{body[: -len("}")].rstrip()},\n  "history": [{listed}]\n}}'


def _precise_time(value: Any) -> str:
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def history_details(
    run: Run, key: str, history: pd.DataFrame, *, limit: int
) -> tuple[list[RenderableType], list[str]]:
    """The sections of ``runs metric`` (headline, summary, sparkline, points table) and the
    remarks to print under them."""
    summary = history_summary(history)
    steps = history["step"]
    points = "point" if summary.points == 1 else "points"
    head = Text(f"{key} of run {run.name} ({run.id}): ", style="bold")
    head.append(f"{summary.points:,} {points}, steps {steps.iloc[0]:,} to {steps.iloc[-1]:,}")
    facts = [f"first {number(summary.first)}", f"last {number(summary.last)}"]
    if summary.min is not None and summary.max is not None:
        facts.append(f"min {number(summary.min)} (step {summary.min_step:,})")
        facts.append(f"max {number(summary.max)} (step {summary.max_step:,})")
    if summary.not_finite:
        facts.append(f"{summary.not_finite:,} NaN or infinite")
    sections: list[RenderableType] = [head, Text(" · ".join(facts))]
    if summary.points > 1:
        sections.append(Text(sparkline(history["value"].to_numpy()), style="cyan"))
    rows = history_rows(history, limit)
    start = history["timestamp"].iloc[0]
    table = new_table()
    for column in ("step", "value", "time", "since first", ""):
        table.add_column(column, justify="right" if column in ("step", "value") else "left")
    for i in rows:
        step, stamp, value = (history[c].iloc[i] for c in ("step", "timestamp", "value"))
        marks = [
            label
            for label, (extreme, at) in (
                ("min", (summary.min, summary.min_step)),
                ("max", (summary.max, summary.max_step)),
            )
            if extreme is not None and at == step and value == extreme
        ]
        table.add_row(
            Text(f"{step:,}"),
            Text(number(value, DETAIL_DIGITS)),
            Text(_precise_time(stamp)),
            Text(duration((stamp - start).total_seconds())),
            Text(", ".join(marks), style="dim"),
        )
    sections.append(table)
    notes = []
    if len(rows) < summary.points:
        notes.append(
            f"Showing {len(rows)} of {summary.points:,} points: evenly spaced from the first "
            "to the last, with the lowest and highest value. -n shows more; --json gives "
            "every point."
        )
    return sections, notes
