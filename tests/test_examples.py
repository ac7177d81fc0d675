"""The examples run end to end, each on a fresh store of its own; ``make demo`` runs them on
a store of its own that it resets, so a second demo reports what the first did."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEMO = "demo.py"  # runs the others: tested below, not once more per store


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py") if p.name != DEMO))
def test_example_runs(script, store_url, tmp_path):
    if script == "mlflow_client.py":
        from tests.mlflow_compat.conftest import require_mlflow_client

        require_mlflow_client("mlflow3")  # its MLflow side runs in .venv-mlflow
    env = dict(os.environ)
    env["LOOPWISE_STORE_URL"] = store_url
    env["LOOPWISE_ARTIFACTS_URL"] = str(tmp_path / "artifacts")
    env["LOOPWISE_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    if script == "quickstart.py":
        assert "best run" in proc.stdout
        assert "top runs by AUC" in proc.stdout
    if script == "pipelines.py":  # cached, re-run from a changed parameter, resumed
        assert "load cached, features cached, train cached, score cached" in proc.stdout
        assert "new C: FINISHED" in proc.stdout
        assert "train succeeded, score succeeded" in proc.stdout
        assert "training broken: FAILED" in proc.stdout
        assert "train failed, score skipped" in proc.stdout
        assert "resumed: FINISHED" in proc.stdout
    if script == "continuous_training.py":  # alert -> pipeline -> gate -> alias -> recovery
        assert "alert accuracy-drop from hour 24: action pipeline succeeded" in proc.stdout
        assert "models:/credit-ct/2 promoted to @champion" in proc.stdout
        assert "trigger alert:accuracy-drop@" in proc.stdout
        windows = re.findall(r"^  h(\d\d)    (\d\.\d+)     (\d)$", proc.stdout, re.M)
        assert len(windows) == 12
        by_hour = {int(h): (float(a), int(v)) for h, a, v in windows}
        assert by_hour[24][0] < 0.5  # the concept change, served by version 1
        assert all(v == 2 and a > 0.85 for h, (a, v) in by_hour.items() if h > 24)
        assert "loop closed" in proc.stdout
    if script == "mlflow_client.py":  # unchanged MLflow code, read back through loopwise
        assert "lw.search_runs: logreg  C=0.5" in proc.stdout
        assert "models:/mlflow-credit/1 flavor=mlflow tags={'team': 'risk'}" in proc.stdout
        assert "predictions equal to MLflow's own model: True" in proc.stdout
        assert "<- run logreg (params {'C': '0.5', 'solver': 'lbfgs'})" in proc.stdout
    if script == "remote_client.py":  # the whole lifecycle went through a server process
        assert "promotion to champion: passed" in proc.stdout
        assert "prediction log: 200 rows" in proc.stdout
        assert "<- run credit <- datasets:/loans-train/1" in proc.stdout


def test_readme_tracking_example_runs(lw, tmp_path):
    readme = (EXAMPLES.parent / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    best = namespace["best"]
    assert len(best) == 1
    assert best["metrics.auc"].iloc[0] == 0.91


def run_demo(cwd: Path, *examples: str) -> subprocess.CompletedProcess:
    """``examples/demo.py`` in ``cwd``, with the user's store set to somewhere else."""
    env = dict(os.environ)
    env["LOOPWISE_STORE_URL"] = f"sqlite:///{cwd / 'users-own.db'}"
    env["LOOPWISE_ARTIFACTS_URL"] = str(cwd / "users-own-artifacts")
    env["LOOPWISE_CACHE_DIR"] = str(cwd / "cache")
    return subprocess.run(
        [sys.executable, str(EXAMPLES / DEMO), *examples],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def monitoring_figures(stdout: str) -> dict:
    """What the monitoring example reports: windows, alerts, the retrain and the aliases."""
    windows = stdout.split("figures per 6-hour window:\n", 1)[1].split("alerts:\n", 1)[0]
    action = json.loads(stdout.split("retrain action: ", 1)[1].splitlines()[0])
    return {
        "windows": windows.splitlines()[1:],  # below the header
        "alerts": re.findall(r"^  \[(\w+)\] ([\w-]+) from hour (\d+):", stdout, re.M),
        "retrain": action["stdout"],
        "aliases": re.search(r"^.* holds @challenger; .*$", stdout, re.M).group(0),
    }


def test_make_demo_runs_the_examples_through_the_demo_runner():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # run as a fresh make would be, not as a sub-make of `make test` (which prints the
    # directories it enters)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.demo-installed", "demo"],
        cwd=EXAMPLES.parent,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert dry.stdout.split() == [".venv/bin/python", f"examples/{DEMO}"]


def test_a_second_demo_reports_its_own_results_not_both(tmp_path):
    """Issue 13: run twice on one store, the demo listed every monitoring window twice and
    showed the first run's alerts and retrain, with exit 0. Its own store, reset, fixes it."""
    users_store = tmp_path / ".loopwise"
    users_store.mkdir()
    (users_store / "loopwise.db").write_text("the user's own store")
    first = run_demo(tmp_path, "monitoring")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "demo: creating its own store at ./.loopwise-demo" in first.stdout
    second = run_demo(tmp_path, "monitoring.py")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "demo: resetting its own store at ./.loopwise-demo (" in second.stdout

    figures = monitoring_figures(first.stdout)
    assert len(figures["windows"]) == 8  # 48 hours in 6-hour windows, each listed once
    assert [(rule, hour) for _, rule, hour in figures["alerts"]] == [
        ("age-drift", "24"),
        ("accuracy-drop", "36"),
    ]
    assert "credit-risk-monitored/2 is now @challenger" in figures["retrain"]
    assert monitoring_figures(second.stdout) == figures

    # The user's store, wherever it is, is untouched.
    assert (users_store / "loopwise.db").read_text() == "the user's own store"
    assert not (tmp_path / "users-own.db").exists()
    assert not (tmp_path / "users-own-artifacts").exists()


def test_the_examples_share_the_demos_store_without_colliding(tmp_path):
    """make demo runs every example on one store: names one example registers (the
    model_registry example's credit-risk@champion, the monitoring example's training
    data) must not be taken by another, whose gate or alias would then fail."""
    done = run_demo(tmp_path, "model_registry", "monitoring", "pipelines", "continuous_training")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "models:/credit-ct/2 promoted to @champion" in done.stdout
    assert "loop closed" in done.stdout


def test_the_demo_deletes_no_folder_it_did_not_make(tmp_path):
    lookalike = tmp_path / ".loopwise-demo"
    lookalike.mkdir()
    (lookalike / "notes.txt").write_text("mine")
    refused = run_demo(tmp_path, "quickstart")
    assert refused.returncode != 0
    assert "was not made by the demo" in refused.stderr
    assert (lookalike / "notes.txt").read_text() == "mine"
    unknown = run_demo(tmp_path, "nope")
    assert "no example named 'nope'" in unknown.stderr
