"""``loopwise runs reproduce``: a pipeline run again from its own commit, compared.

Each test makes a git repository of its own with a small deterministic pipeline, runs it
in a subprocess (as a user would, so the run records that repository's commit), changes
the code, and reproduces the run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopwise.config import load_settings
from loopwise.errors import ConfigurationError, InvalidInput, NotFound
from loopwise.pipelines.reproduce import REPRODUCES_TAG, reproduce_run
from loopwise.store import Store
from loopwise.tracking import runs as run_service

PIPELINE = """\
import loopwise as lw


@lw.step
def numbers(n: int) -> list:
    return list(range(n))


@lw.step
def total(values: list, scale: float) -> float:
    return float(sum(values)) * scale{change}


@lw.pipeline(name="repro")
def sums(n: int = 10, scale: float = 1.0):
    return total(numbers(n), scale)
"""
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        check=True,
    )
    return done.stdout


def write(repo: Path, change: str = "", name: str = "flow.py") -> Path:
    path = repo / "pipes" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PIPELINE.format(change=change))
    return path


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    write(root)
    commit(root, "first")
    return root


@pytest.fixture
def store(store_url: str, tmp_path: Path):
    s = Store(
        settings=load_settings(store_url=store_url, artifacts_url=str(tmp_path / "artifacts"))
    )
    yield s
    s.db.engine.dispose()


def run_pipeline(store: Store, path: Path, *params: str) -> dict:
    """``python -m loopwise pipelines run FILE:sums --json`` in a subprocess."""
    args = [f"--param={p}" for p in params]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loopwise",
            "--store-url",
            store.settings.store_url,
            "--artifacts-url",
            store.settings.artifacts_url,
            "pipelines",
            "run",
            f"{path}:sums",
            *args,
            "--json",
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOOPWISE_")},
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def worktrees(repo: Path) -> list[str]:
    return [line for line in git(repo, "worktree", "list", "--porcelain").splitlines() if line]


def test_reproduce_runs_the_old_code_and_finds_the_same_outputs(
    store: Store, repo: Path, invoke
) -> None:
    original = run_pipeline(store, repo / "pipes" / "flow.py", "n=7", "scale=1.5")
    first = git(repo, "rev-parse", "HEAD").strip()
    env = run_service.get_run(store, original["id"]).environment
    assert env["git"]["commit"] == first
    write(repo, change=" * 2")  # HEAD now computes something else
    assert commit(repo, "double it") != first

    result = invoke("runs", "reproduce", original["id"], "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["commit"] == first
    assert report["original"] == original["id"]
    assert report["reproduced"] != original["id"]
    assert report["identical"] is True
    assert report["warnings"] == []
    assert [s["name"] for s in report["steps"]] == ["numbers", "total"]
    assert all(s["same"] for s in report["steps"])
    metrics = {(m["run"], m["key"]): m for m in report["metrics"]}
    assert metrics[("pipeline", "total")]["old"] == metrics[("pipeline", "total")]["new"] == 31.5
    assert metrics[("total", "value")]["delta"] == 0
    assert all(m["delta"] == 0 for m in report["metrics"])

    reproduced = run_service.get_run(store, report["reproduced"])
    assert reproduced.tags[REPRODUCES_TAG] == original["id"]
    assert reproduced.params == {"n": "7", "scale": "1.5"}
    assert reproduced.experiment == run_service.get_run(store, original["id"]).experiment
    assert len(worktrees(repo)) == 3  # worktree, HEAD, branch: the repository's own only
    # the pipeline's name still points at the repository, not at the removed worktree
    from loopwise.pipelines.records import entrypoint_of

    assert entrypoint_of(store, "repro") == f"{(repo / 'pipes' / 'flow.py').resolve()}:sums"


def test_the_table_shows_steps_and_metrics(store: Store, repo: Path, invoke) -> None:
    original = run_pipeline(store, repo / "pipes" / "flow.py")
    result = invoke("runs", "reproduce", original["id"])
    assert result.exit_code == 0, result.output
    for shown in ("numbers", "total", "same", "delta", "every output and metric is the same"):
        assert shown in result.output


def test_a_dirty_run_is_reproduced_from_its_commit_with_a_warning(store: Store, repo: Path) -> None:
    path = write(repo, change=" + 1")  # not committed
    original = run_pipeline(store, path)
    result = reproduce_run(store, original["id"])
    assert any("uncommitted changes" in w for w in result.warnings)
    assert not result.identical
    total = next(s for s in result.steps if s.name == "total")
    assert not total.same
    assert json.loads(total.old_output) == 46.0
    assert json.loads(total.new_output) == 45.0
    delta = next(m for m in result.metrics if m.run == "pipeline" and m.key == "total")
    assert (delta.old, delta.new, delta.delta) == (46.0, 45.0, -1.0)
    assert len(worktrees(repo)) == 3


def test_the_worktree_is_removed_when_the_old_code_fails(store: Store, repo: Path) -> None:
    write(repo, change="\nraise RuntimeError('broken at this commit')")
    commit(repo, "broken")
    path = write(repo)  # fixed on disk only: the run is dirty, its commit broken
    original = run_pipeline(store, path)
    with pytest.raises(InvalidInput, match="did not run from commit") as caught:
        reproduce_run(store, original["id"])
    assert "RuntimeError: broken at this commit" in str(caught.value)
    assert len(worktrees(repo)) == 3


def test_a_run_that_is_not_a_pipeline_run_is_refused(store: Store, invoke) -> None:
    run_id = run_service.create_run(store, "plain")
    run_service.end_run(store, run_id, run_service.RunStatus.FINISHED)
    result = invoke("runs", "reproduce", run_id)
    assert result.exit_code == 1
    assert "is not a pipeline run" in result.output


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # git only: one backend
def test_a_run_without_git_information_is_refused(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "loose")  # no repository around it
    original = run_pipeline(store, path)
    with pytest.raises(InvalidInput, match="recorded no git commit"):
        reproduce_run(store, original["id"])


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # git only: one backend
def test_a_commit_that_is_gone_is_refused(store: Store, repo: Path) -> None:
    original = run_pipeline(store, repo / "pipes" / "flow.py")
    old = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "--orphan", "fresh")
    commit(repo, "new history")
    git(repo, "branch", "-D", "master" if "master" in git(repo, "branch") else "main")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    with pytest.raises(NotFound, match=f"Commit {old[:12]} .* no longer in the repository"):
        reproduce_run(store, original["id"])


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # git only: one backend
def test_without_git_the_error_says_so(
    store: Store, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = run_pipeline(store, repo / "pipes" / "flow.py")
    import loopwise.pipelines.reproduce as reproduce

    monkeypatch.setattr(reproduce.shutil, "which", lambda name: None)
    with pytest.raises(ConfigurationError, match="git is not installed"):
        reproduce_run(store, original["id"])
