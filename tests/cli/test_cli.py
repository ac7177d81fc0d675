"""Tests for the ``loopwise`` command, on SQLite and PostgreSQL.

Why through ``CliRunner`` and a real store: the CLI is a thin layer, so what can break is
the wiring (options reaching the services, errors turning into exit code 1 and a message,
JSON that parses) and the display of real records, not logic of its own.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from loopwise import __version__, context
from loopwise.cli import render, run_views
from loopwise.cli.main import app
from loopwise.clock import now_us
from loopwise.tracking.fluent import writer_for
from loopwise.tracking.run_artifacts import log_bytes
from loopwise.tracking.runs import create_run, end_run, log_params, set_environment

ENVIRONMENT = {
    "git": {"commit": "abc123def4567890", "branch": "main", "dirty": True},
    "python": {"version": "3.11.7", "implementation": "CPython"},
    "entry_point": "/src/train.py",
    "os": {"platform": "Linux-6.1-x86_64"},
    "cpu": {"model": "Test CPU", "logical_cores": 8, "physical_cores": 4},
    "memory_bytes": 16 * 2**30,
    "gpus": [{"name": "Tesla T4", "memory_bytes": 15 * 2**30}],
    "packages": {"numpy": "1.26.4", "pandas": "2.2.1", "scikit-learn": "1.4.0"},
}

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _reset_default_store() -> Iterator[None]:
    """``--store-url`` reconfigures the process-wide default store: forget it afterwards."""
    yield
    old = context.reset()
    if old is not None:
        old.db.engine.dispose()


@pytest.fixture
def runs(store) -> dict[str, str]:
    """Three runs: two in "churn" (FINISHED, FAILED), one RUNNING in "other"."""
    small = create_run(store, "churn", name="rf-small", tags={"team": "risk"})
    log_params(store, small, {"C": 0.1, "model": "rf", "seed": 7})
    large = create_run(store, "churn", name="rf-large", tags={"team": "risk"})
    log_params(store, large, {"C": 1.0, "model": "rf", "seed": 7})
    odd = create_run(store, "other", name="[bold]odd[/bold]", tags={"note": "[red]x[/red]"})
    log_params(store, odd, {"penalty": "[l2]"})
    writer = writer_for(store)
    now = now_us()
    writer.add(small, "auc", 0, now, 0.70)
    writer.add(small, "auc", 1, now + 1, 0.80)
    writer.add(small, "epochs", 0, now, 5.0)
    writer.add(small, "recall", 0, now, math.nan)
    writer.add(large, "auc", 0, now, 0.90)
    writer.add(large, "epochs", 0, now, 5.0)
    writer.add(large, "recall", 0, now, 0.5)
    writer.flush()
    set_environment(store, small, ENVIRONMENT)
    log_bytes(store, small, b"w" * 2048, "model/weights.bin")
    end_run(store, small)
    end_run(store, large, "FAILED")
    return {"small": small, "large": large, "odd": odd}


def _json(result: Result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- root ------------------------------------------------------------------------------------


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"loopwise {__version__}"


def test_no_arguments_show_help():
    result = CliRunner().invoke(app, [])
    assert "Usage" in result.output
    assert "runs" in result.output


def test_importing_the_cli_is_light():
    code = (
        "import sys, loopwise.cli.main\n"
        "heavy = [m for m in ('pandas', 'sqlalchemy', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _command_paths(group, prefix: str = "") -> Iterator[str]:
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            yield from _command_paths(command, f"{path} ")
        else:
            yield path


@pytest.mark.parametrize(
    "top",
    [
        "experiments",
        "runs",
        "data",
        "datasets",
        "models",
        "evaluate",
        "db",
        "serve",
        "endpoints",
        "tokens",
        "loadtest",
        "score",
        "monitor",
        "pipelines",
        "scheduler",
        "init",
        "import",
    ],
)
def test_docs_cli_shows_every_command(top):
    from pathlib import Path

    import typer

    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    root = typer.main.get_command(app)
    command = root.commands[top]
    paths = list(_command_paths(command, f"{top} ")) if hasattr(command, "commands") else [top]
    missing = [p for p in paths if f"loopwise {p} " not in docs and f"loopwise {p}\n" not in docs]
    assert not missing, f"docs/cli.md does not show: {missing}"


def test_bad_store_url_is_a_clean_error():
    result = CliRunner().invoke(app, ["--store-url", "mysql://db/x", "runs", "list"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Store URL 'mysql://db/x'")
    assert "Traceback" not in result.output


def test_store_url_from_environment(runs, store_url, tmp_path):
    result = CliRunner().invoke(
        app,
        ["runs", "list", "--json"],
        env={"LOOPWISE_STORE_URL": store_url, "LOOPWISE_ARTIFACTS_URL": str(tmp_path / "a")},
    )
    assert {r["id"] for r in _json(result)} == set(runs.values())


# -- experiments -----------------------------------------------------------------------------


def test_experiments_list(invoke, runs):
    result = invoke("experiments", "list")
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line.split() for line in result.stdout.splitlines()[2:] if line}
    assert lines["churn"][2] == "2"
    assert lines["other"][2] == "1"


def test_experiments_list_json(invoke, runs):
    data = _json(invoke("experiments", "list", "--json"))
    assert [(e["name"], e["run_count"]) for e in data] == [("churn", 2), ("other", 1)]
    assert all(isinstance(e["created_at"], str) for e in data)


def test_experiments_list_empty_store(invoke):
    result = invoke("experiments", "list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No experiments yet" in result.stderr
    assert _json(invoke("experiments", "list", "--json")) == []


# -- runs list -------------------------------------------------------------------------------


def test_runs_list_table(invoke, runs):
    result = invoke("runs", "list")
    assert result.exit_code == 0, result.output
    out = result.stdout
    header = out.splitlines()[0].split()
    assert header[:7] == ["run", "id", "name", "experiment", "status", "start", "duration"]
    assert header[7:] == ["auc", "epochs", "recall"]  # every metric fits in 200 columns
    rows = [line for line in out.splitlines()[2:] if line.strip()]
    assert [row.split()[0] for row in rows] == [runs["odd"], runs["large"], runs["small"]]
    assert "[bold]odd[/bold]" in rows[0]  # names are text, never markup
    assert [row.split()[3] for row in rows] == ["RUNNING", "FAILED", "FINISHED"]
    assert rows[2].split()[-3:] == ["0.8", "5", "–"]  # latest auc; NaN recall as missing


def test_runs_list_json(invoke, runs):
    data = _json(invoke("runs", "list", "--json"))
    by_name = {r["name"]: r for r in data}
    small = by_name["rf-small"]
    assert small["id"] == runs["small"]
    assert small["experiment"] == "churn"
    assert small["status"] == "FINISHED"
    assert small["params"] == {"C": "0.1", "model": "rf", "seed": "7"}
    assert small["metrics"] == {"auc": 0.8, "epochs": 5.0}  # NaN is left out
    assert small["tags"] == {"team": "risk"}
    assert small["duration_s"] >= 0
    assert by_name["[bold]odd[/bold]"]["end_time"] is None
    assert by_name["[bold]odd[/bold]"]["duration_s"] is None


def test_runs_list_filter_and_order(invoke, runs):
    data = _json(invoke("runs", "list", "-f", "metrics.auc > 0.85", "--json"))
    assert [r["name"] for r in data] == ["rf-large"]
    data = _json(invoke("runs", "list", "-e", "churn", "-o", "metrics.auc asc", "--json"))
    assert [r["name"] for r in data] == ["rf-small", "rf-large"]
    data = _json(
        invoke("runs", "list", "-o", "params.model desc", "-o", "metrics.auc desc", "--json")
    )
    assert [r["name"] for r in data] == ["rf-large", "rf-small", "[bold]odd[/bold]"]
    data = _json(invoke("runs", "list", "--filter", "tags.team = 'risk'", "-n", "1", "--json"))
    assert [r["name"] for r in data] == ["rf-large"]


def test_runs_list_limit_note(invoke, runs):
    result = invoke("runs", "list", "-n", "2")
    assert result.exit_code == 0
    assert "Showing the first 2 runs" in result.stderr


def test_runs_list_no_match(invoke, runs):
    result = invoke("runs", "list", "-f", "metrics.auc > 5")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No runs match" in result.stderr
    assert _json(invoke("runs", "list", "-f", "metrics.auc > 5", "--json")) == []


def test_runs_list_columns(invoke, runs):
    result = invoke("runs", "list", "-e", "churn", "--columns", "params.C,tags.team", "-c", "auc")
    assert result.exit_code == 1
    assert "Unknown column 'auc'" in result.stderr

    result = invoke("runs", "list", "-e", "churn", "--columns", "params.C,metrics.auc,tags.team")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[7:] == ["params.C", "auc", "tags.team"]
    small = next(line for line in result.stdout.splitlines() if runs["small"] in line)
    assert small.split()[-3:] == ["0.1", "0.8", "risk"]

    result = invoke("runs", "list", "--columns", "metrics.acu")
    assert result.exit_code == 0
    assert "No run in the results has metrics.acu (did you mean metrics.auc?)" in result.stderr


def test_runs_list_narrow_terminal_names_hidden_metrics(invoke, runs):
    result = invoke("runs", "list", env={"COLUMNS": "100"})
    assert result.exit_code == 0
    assert all(len(line) <= 100 for line in result.stdout.splitlines())
    assert "more metric column" in result.stderr


def test_runs_list_bad_filter(invoke, runs):
    result = invoke("runs", "list", "-f", "metrics.auc >> 3", "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: Invalid filter at position 13")
    assert "\n  metrics.auc >> 3\n" + " " * 14 + "^\n" in result.stderr
    assert "Traceback" not in result.output


def test_runs_list_bad_order_by_and_limit(invoke, runs):
    result = invoke("runs", "list", "-o", "metrics.auc sideways")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Invalid order_by")
    result = invoke("runs", "list", "-n", "0")
    assert result.exit_code == 1
    assert "max_results must be a positive integer" in result.stderr


def test_runs_list_unknown_experiment(invoke, runs):
    result = invoke("runs", "list", "-e", "nope")
    assert result.exit_code == 1
    assert "Error: Experiment 'nope' does not exist" in result.stderr


# -- runs show -------------------------------------------------------------------------------


def test_runs_show(invoke, runs):
    result = invoke("runs", "show", runs["small"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (
        runs["small"],
        "rf-small",
        "churn",
        "FINISHED",
        "model",
        "0.8",  # latest auc
        "nan",  # a logged NaN is shown as such
        "risk",
        "abc123def456 on main [dirty: uncommitted changes]",
        "3.11.7 CPython",
        "/src/train.py",
        "Test CPU (8 logical, 4 physical cores)",
        "16.0 GiB",
        "Tesla T4 (15.0 GiB)",
        "model/weights.bin",
        "2.0 KiB",
    ):
        assert expected in out, expected
    assert "packages     3" in out


def test_runs_show_sparse_run(invoke, runs):
    result = invoke("runs", "show", runs["odd"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "[bold]odd[/bold]" in out
    assert "[l2]" in out
    assert "[red]x[/red]" in out
    assert "RUNNING" in out
    for empty in ("No metrics.", "Environment: not captured.", "No artifacts."):
        assert empty in out


def test_runs_show_json(invoke, runs):
    data = _json(invoke("runs", "show", runs["small"], "--json"))
    assert data["id"] == runs["small"]
    assert data["metrics"] == {"auc": 0.8, "epochs": 5.0, "recall": None}  # NaN as null
    assert data["params"]["C"] == "0.1"
    assert data["environment"]["git"]["commit"] == "abc123def4567890"
    assert [a["path"] for a in data["artifacts"]] == ["model/weights.bin"]
    assert data["artifacts"][0]["size"] == 2048
    assert isinstance(data["start_time"], str)


def test_runs_show_unknown_run(invoke, runs):
    result = invoke("runs", "show", "nope")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: Run 'nope' does not exist")
    assert "loopwise runs list" in result.stderr


# -- runs compare ----------------------------------------------------------------------------


def _rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines()[3:]:
        if line.strip():
            label, *cells = line.split()
            rows[label] = cells
    return rows


def test_runs_compare(invoke, runs):
    result = invoke("runs", "compare", runs["small"], runs["large"])
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert rows["status"] == ["FINISHED", "FAILED"]
    assert rows["params.C"] == ["0.1", "1.0"]
    assert "params.model" not in rows  # the same in both runs
    assert rows["metrics.auc"] == ["0.8", "0.9"]
    assert rows["metrics.epochs"] == ["5", "5"]  # metrics are always shown
    assert rows["metrics.recall"] == ["nan", "0.5"]
    assert "experiment" not in rows
    assert "2 params are the same in every run" in result.stderr


def test_runs_compare_all(invoke, runs):
    result = invoke("runs", "compare", runs["small"], runs["large"], runs["odd"], "--all")
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert rows["experiment"] == ["churn", "churn", "other"]
    assert rows["params.model"] == ["rf", "rf", "–"]
    assert rows["params.penalty"] == ["–", "–", "[l2]"]
    assert rows["metrics.auc"] == ["0.8", "0.9", "–"]
    assert result.stderr == ""


def test_runs_compare_bolds_differing_rows(invoke, runs):
    result = invoke(
        "runs", "compare", runs["small"], runs["large"], "--all", env={"FORCE_COLOR": "1"}
    )
    assert result.exit_code == 0, result.output
    lines = {
        re.sub(r"\x1b\[[0-9;]*m", "", line).split()[0]: line
        for line in result.stdout.splitlines()
        if "." in line
    }
    bold = "\x1b[1m"
    assert bold in lines["params.C"]
    assert bold in lines["metrics.auc"]
    assert bold not in lines["params.model"]
    assert bold not in lines["metrics.epochs"]


def test_runs_compare_json(invoke, runs):
    data = _json(invoke("runs", "compare", runs["small"], runs["large"], "--json"))
    assert [r["id"] for r in data] == [runs["small"], runs["large"]]
    assert data[0]["metrics"]["recall"] is None


def test_runs_compare_needs_two_runs(invoke, runs):
    result = invoke("runs", "compare", runs["small"])
    assert result.exit_code == 2
    assert "at least two run ids" in result.output


def test_runs_compare_unknown_run(invoke, runs):
    result = invoke("runs", "compare", runs["small"], "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Run 'nope' does not exist")


# -- runs by name ----------------------------------------------------------------------------


def test_runs_show_and_compare_take_run_names(invoke, runs):
    shown = invoke("runs", "show", "rf-small")
    assert shown.exit_code == 0, shown.output
    assert runs["small"] in shown.stdout
    assert _json(invoke("runs", "show", "runs:/rf-large", "--json"))["id"] == runs["large"]
    compared = _json(invoke("runs", "compare", "rf-small", runs["large"], "--json"))
    assert [r["id"] for r in compared] == [runs["small"], runs["large"]]


def test_a_run_name_two_runs_share_is_refused_with_their_ids(invoke, runs, store):
    again = create_run(store, "other", name="rf-small")
    for args in (("runs", "show", "rf-small"), ("runs", "compare", "rf-small", "rf-large")):
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("Error: Run name 'rf-small' is ambiguous: 2 runs")
        assert runs["small"] in result.stderr
        assert again in result.stderr
        assert "Traceback" not in result.output
    assert invoke("runs", "show", again).exit_code == 0  # the id still works


# -- runs list columns -----------------------------------------------------------------------


def test_runs_list_always_shows_the_sort_columns(invoke, runs):
    result = invoke("runs", "list", "-e", "churn", "-c", "params.C", "-o", "metrics.auc desc")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[7:] == ["auc", "params.C"]  # the sort key first, then -c
    assert [line.split()[-2:] for line in lines[2:] if line.strip()] == [
        ["0.9", "1.0"],
        ["0.8", "0.1"],
    ]
    assert "2 metric columns not shown: --columns shows only the columns it names" in (
        result.stderr
    )

    # Without -c: the sort key leads, the metric columns that fit follow (once each).
    result = invoke("runs", "list", "-e", "churn", "-o", "params.C", "-o", "metrics.recall")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[7:] == ["params.C", "recall", "auc", "epochs"]

    result = invoke("runs", "list", "-o", "end_time desc", "-c", "tags.team")
    assert result.stdout.splitlines()[0].split()[7:] == ["end_time", "tags.team"]


def test_sort_columns():
    assert run_views.sort_columns(None) == []
    assert run_views.sort_columns(["metrics.auc desc, name", "params.C", "metrics.auc"]) == [
        "metrics.auc",
        "params.C",
    ]
    assert run_views.sort_columns(["start_time", "attributes.end_time"]) == ["end_time"]


# -- runs metric -----------------------------------------------------------------------------


def test_runs_metric_short_history(invoke, runs):
    result = invoke("runs", "metric", "rf-small", "auc")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"auc of run rf-small ({runs['small']}): 2 points, steps 0 to 1" in out
    assert "first 0.7 · last 0.8 · min 0.7 (step 0) · max 0.8 (step 1)" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("0 ", "1 "))]
    assert [row[:2] for row in rows] == [["0", "0.7"], ["1", "0.8"]]
    assert [row[-1] for row in rows] == ["min", "max"]
    assert result.stderr == ""  # nothing left out
    nan = _json(invoke("runs", "metric", "rf-small", "recall", "--json"))
    (point,) = nan["history"]
    assert (point["step"], point["value"]) == (0, None)
    assert point["timestamp"].endswith("+00:00")
    assert nan["summary"]["not_finite"] == 1
    assert nan["summary"]["min"] is None


def test_runs_metric_long_history_lists_a_subset_and_says_so(invoke, runs, store):
    run_id = create_run(store, "churn", name="long")
    writer = writer_for(store)
    start = now_us()
    values = [1.0 / (step + 1) for step in range(10_000)]
    values[4321] = -5.0  # the lowest point, far from any evenly spaced row
    for step, value in enumerate(values):
        writer.add(run_id, "loss", step, start + step, value)
    writer.flush()

    result = invoke("runs", "metric", "long", "loss", "-n", "10")
    assert result.exit_code == 0, result.output
    assert "10,000 points, steps 0 to 9,999" in result.stdout
    assert "min -5 (step 4,321)" in result.stdout
    lines = result.stdout.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("──"))
    rows = [line.split() for line in lines[rule + 1 :] if line.strip()]
    assert len(rows) == 11  # ten evenly spaced (first and last among them) and the minimum
    assert rows[0][:2] == ["0", "1"]
    assert rows[-1][0] == "9,999"
    assert ["4,321", "-5"] in [row[:2] for row in rows]
    assert "Showing 11 of 10,000 points" in result.stderr
    assert "--json gives every point" in result.stderr

    data = _json(invoke("runs", "metric", run_id, "loss", "--json"))
    assert (data["run_id"], data["run_name"]) == (run_id, "long")
    assert len(data["history"]) == 10_000
    assert data["history"][4321]["value"] == -5.0
    assert (data["summary"]["min"], data["summary"]["min_step"]) == (-5.0, 4321)
    assert data["summary"]["points"] == 10_000


def test_runs_metric_errors(invoke, runs):
    unknown = invoke("runs", "metric", "rf-small", "acu")
    assert unknown.exit_code == 1
    assert "has no metric 'acu'. Its metrics: auc, epochs, recall" in unknown.stderr
    missing = invoke("runs", "metric", "nope", "auc")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: Run 'nope' does not exist")
    assert invoke("runs", "metric", "rf-small", "auc", "-n", "0").exit_code == 2


def test_sparkline_and_history_rows():
    import pandas as pd

    assert run_views.sparkline([]) == ""
    assert run_views.sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert run_views.sparkline([2.0, 2.0, 2.0]) == "▄▄▄"
    assert run_views.sparkline([1.0, math.nan, 3.0]) == "▁ █"
    assert len(run_views.sparkline(list(range(1000)), width=40)) == 40
    frame = pd.DataFrame({"step": range(100), "value": [float(i % 7) for i in range(100)]})
    assert run_views.history_rows(frame, 200) == list(range(100))
    picked = run_views.history_rows(frame, 5)
    assert (picked[0], picked[-1]) == (0, 99)
    assert 1 <= len(picked) - 5 <= 2  # plus the lowest and highest unless already there
    summary = run_views.history_summary(frame)
    assert (summary.min, summary.max, summary.max_step) == (0.0, 6.0, 6)


# -- db --------------------------------------------------------------------------------------


def test_db_current_and_upgrade(invoke):
    from loopwise.store.database import HEAD_REVISION

    result = invoke("db", "current")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "none (empty database)"

    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(f"none (empty database) → {HEAD_REVISION} (head)")

    result = invoke("db", "current")
    assert result.stdout.strip() == f"{HEAD_REVISION} (head)"

    result = invoke("db", "upgrade")
    assert result.exit_code == 0
    assert result.stdout.strip().endswith(f"already at {HEAD_REVISION} (head)")


# -- display helpers (no store) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "–"),
        (0.0042, "4ms"),
        (12.34, "12.3s"),
        (245, "4m 05s"),
        (7380, "2h 03m"),
        (3 * 86400 + 4 * 3600, "3d 04h"),
    ],
)
def test_duration(seconds, shown):
    assert render.duration(seconds) == shown


@pytest.mark.parametrize(
    ("n", "shown"),
    [(None, "–"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 * 2**40, "3.0 TiB")],
)
def test_size(n, shown):
    assert render.size(n) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "–"), (math.nan, "nan"), (5.0, "5"), (0.123456789, "0.123457"), (1e20, "1e+20")],
)
def test_number(value, shown):
    assert render.number(value) == shown


def test_jsonable_makes_valid_json():
    from datetime import UTC, datetime

    import numpy as np
    import pandas as pd

    data = {
        "nan": math.nan,
        "inf": -math.inf,
        "np": np.float64(np.nan),
        "i": np.int64(3),
        "when": datetime(2024, 5, 1, tzinfo=UTC),
        "ts": pd.Timestamp("2024-05-01", tz="UTC"),
        "nat": pd.NaT,
        "nested": [{"x": (1, math.nan)}],
    }
    out = json.loads(json.dumps(render.jsonable(data), allow_nan=False))
    assert out == {
        "nan": None,
        "inf": None,
        "np": None,
        "i": 3,
        "when": "2024-05-01T00:00:00+00:00",
        "ts": "2024-05-01T00:00:00+00:00",
        "nat": None,
        "nested": [{"x": [1, None]}],
    }


def test_environment_with_failed_parts_still_renders():
    env = {"git": {"error": "boom"}, "python": {"error": "x"}, "cpu": None, "gpus": None}
    console = Console(width=120, record=True)
    console.print(run_views._environment(env))
    out = console.export_text()
    assert "unknown (boom)" in out
    assert "python" in out


def test_split_columns():
    assert run_views.split_columns(None) is None
    assert run_views.split_columns(["a,b", " b , c", ""]) == ["a", "b", "c"]
