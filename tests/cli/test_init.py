"""``loopwise init NAME``: the project it writes passes its own tests, lint, data
validation, training pipeline and promotion gate, right after ``init``.

The generated project has a store of its own (``.loopwise/`` in its folder, named by its
loopwise.toml), so these tests need no PostgreSQL: each command runs as the project's CI
would, in a subprocess from the project folder with no LOOPWISE_* variable set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from loopwise.cli.main import app
from loopwise.scaffold.project import templates

RUFF = Path(sys.executable).parent / "ruff"
CI_ORDER = ["Lint", "Unit tests", "Data validation", "Training pipeline", "Promotion gate"]


def _env() -> dict[str, str]:
    """The environment of a user's shell: no loopwise settings, no pytest of ours."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOOPWISE_", "PYTEST_", "COV_")) or k == "LOOPWISE_CACHE_DIR"
    }


def _run(project: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*args],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _init(tmp_path: Path, name: str = "demo") -> Path:
    result = CliRunner().invoke(app, ["init", name, "--dir", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return tmp_path / name


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _init(tmp_path_factory.mktemp("init"))


def test_init_lists_what_it_wrote_and_the_next_commands(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["init", "churn_kit", "--dir", str(tmp_path)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    for shown in ("pipelines/train.py", ".github/workflows/ci.yml", "make train", "make promote"):
        assert shown in result.output
    root = tmp_path / "churn_kit"
    assert (root / "Makefile").is_file()
    # the name in kebab-case names the model and the pipeline
    assert 'MODEL = "churn-kit-model"' in (root / "pipelines/train.py").read_text()
    assert '@lw.pipeline(name="churn-kit-train")' in (root / "pipelines/train.py").read_text()


def test_the_layout_settings_policy_and_monitor(project: Path) -> None:
    for folder in ("data", "features", "pipelines", "models", "monitors", "tests"):
        assert (project / folder).is_dir(), folder
    import tomllib

    toml = tomllib.loads((project / "loopwise.toml").read_text())
    assert toml["key_rule"] == "snake_case"
    assert toml["model_name_rule"] == "kebab-case"
    assert toml["store_url"] == "sqlite:///./.loopwise/loopwise.db"

    from loopwise.data.schema import Schema
    from loopwise.evaluation.policy import Policy
    from loopwise.monitoring.config import Monitor

    assert Policy.load(project / "models/policy.yaml").thresholds["roc_auc"] == 0.8
    assert Monitor.load(project / "monitors/monitor.yaml").endpoint == "demo"
    assert Schema.load(project / "data/schema.yaml").target == "churned"
    # the sample is generated, and the same every time
    again = _init(project.parent, "again")
    assert (again / "data/customers.csv").read_bytes() == (
        project / "data/customers.csv"
    ).read_bytes()


def test_the_ci_workflow_runs_its_steps_in_order(project: Path) -> None:
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    (job,) = workflow["jobs"].values()
    names = [step["name"] for step in job["steps"] if "name" in step]
    assert [n for n in names if n in CI_ORDER] == CI_ORDER
    runs = {step["name"]: step["run"] for step in job["steps"] if "name" in step}
    assert [runs[n] for n in CI_ORDER] == [
        "make lint",
        "make test",
        "make validate",
        "make train",
        "make promote",
    ]
    makefile = (project / "Makefile").read_text()
    for target in ("lint:", "test:", "validate:", "train:", "promote:"):
        assert f"\n{target}" in makefile


def test_ruff_passes_on_the_project(project: Path) -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        done = _run(project, str(RUFF), *args)
        assert done.returncode == 0, done.stdout + done.stderr


def test_its_unit_tests_pass(project: Path) -> None:
    done = _run(project, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout


def test_its_data_validation_pipeline_and_promotion_gate_pass(project: Path) -> None:
    loopwise = [sys.executable, "-m", "loopwise"]
    validated = _run(
        project, *loopwise, "data", "validate", "data/customers.csv", "--schema", "data/schema.yaml"
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr

    trained = _run(project, *loopwise, "pipelines", "run", "pipelines/train.py:train", "--json")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    run = json.loads(trained.stdout)
    assert run["status"] == "FINISHED"
    assert run["pipeline"] == "demo-train"
    steps = {s["name"]: s for s in run["steps"]}
    assert list(steps) == [
        "load",
        "validate",
        "featurize",
        "train_set",
        "holdout_set",
        "fit",
        "evaluate",
        "register",
    ]
    assert steps["fit"]["outputs"]["ref"] == "models:/demo-model/1"
    assert json.loads(steps["register"]["outputs"]["ref"]) == {"candidate": 1, "version": 1}
    assert (project / ".loopwise" / "loopwise.db").is_file()  # the project's own store

    gate = _run(
        project,
        *loopwise,
        "models",
        "promote",
        "models:/demo-model@candidate",
        "--alias",
        "champion",
        "--policy",
        "models/policy.yaml",
        "--data",
        "datasets:/demo-holdout@latest",
        "--target",
        "churned",
        "--json",
    )
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert json.loads(gate.stdout)["passed"] is True


@pytest.mark.parametrize("name", ["Demo", "1demo", "de mo", "demo-", "../demo", "a" * 41, ""])
def test_a_bad_name_is_refused(tmp_path: Path, name: str) -> None:
    result = CliRunner().invoke(app, ["init", name, "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not valid" in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_used_only_when_empty(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert CliRunner().invoke(app, ["init", "empty", "--dir", str(tmp_path)]).exit_code == 0
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["init", "taken", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]


def test_the_templates_are_package_data_not_modules() -> None:
    found = templates()
    assert {"Makefile", ".github/workflows/ci.yml", "pipelines/train.py"} <= set(found)
    scaffold = Path(__file__).resolve().parents[2] / "src/loopwise/scaffold/templates"
    assert not list(scaffold.rglob("*.py")), "templates must not be importable modules"
