"""Tests for loopwise.tracking.environment: what a run records about where it ran."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from loopwise.tracking import environment
from loopwise.tracking.environment import capture_environment, git_info


@pytest.fixture
def git_env(tmp_path, monkeypatch):
    """Isolate git from the user's configuration."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)
    for var in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{var}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{var}_EMAIL", "test@example.com")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path, git_env) -> Path:
    """A repository on branch 'main' with one commit of train.py."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('hello')\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    return path


def test_clean_repository(repo):
    info = git_info(repo)
    assert info == {
        "commit": git(repo, "rev-parse", "HEAD"),
        "branch": "main",
        "dirty": False,
        "diff_sha256": None,
        "untracked": 0,
        "remote": None,
        "root": str(repo.resolve()),
    }


def test_modified_file_makes_tree_dirty_and_hashes_the_diff(repo):
    (repo / "train.py").write_text("print('changed')\n")
    info = git_info(repo)
    assert info["dirty"] is True
    assert re.fullmatch(r"[0-9a-f]{64}", info["diff_sha256"])

    (repo / "train.py").write_text("print('changed again')\n")
    assert git_info(repo)["diff_sha256"] != info["diff_sha256"]


def test_staged_changes_count_as_dirty(repo):
    (repo / "new.py").write_text("x = 1\n")
    git(repo, "add", "new.py")
    info = git_info(repo)
    assert info["dirty"] is True
    assert info["diff_sha256"] is not None


def test_untracked_files_are_counted_but_do_not_make_the_tree_dirty(repo):
    (repo / "a.txt").write_text("a")
    (repo / "sub").mkdir()
    (repo / "sub" / "b.txt").write_text("b")
    info = git_info(repo)
    assert info["untracked"] == 2
    assert info["dirty"] is False


def test_subdirectory_reports_the_root(repo):
    sub = repo / "pkg"
    sub.mkdir()
    info = git_info(sub)
    assert info["root"] == str(repo.resolve())


def test_branch_name_and_detached_head(repo):
    git(repo, "checkout", "-q", "-b", "feature/x")
    assert git_info(repo)["branch"] == "feature/x"
    git(repo, "checkout", "-q", "--detach")
    info = git_info(repo)
    assert info["branch"] is None
    assert info["commit"] == git(repo, "rev-parse", "HEAD")


def test_repository_without_commits(tmp_path, git_env):
    git(tmp_path, "init", "-q", "-b", "main")
    info = git_info(tmp_path)
    assert info["commit"] is None
    assert info["branch"] == "main"
    assert info["dirty"] is False

    (tmp_path / "f.py").write_text("x = 1\n")
    git(tmp_path, "add", "f.py")
    info = git_info(tmp_path)
    assert info["dirty"] is True
    assert info["diff_sha256"] is not None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:s3cret@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("https://ghp_token@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("ssh://git:pw@host:2222/repo.git", "ssh://git@host:2222/repo.git"),
        ("ssh://git@host/repo.git", "ssh://git@host/repo.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
    ],
)
def test_remote_credentials_are_stripped(repo, url, expected):
    git(repo, "remote", "add", "origin", url)
    assert git_info(repo)["remote"] == expected


def test_outside_a_repository(tmp_path, git_env):
    assert git_info(tmp_path) is None
    assert capture_environment(tmp_path)["git"] is None


def test_missing_directory_does_not_raise(tmp_path):
    info = git_info(tmp_path / "missing")
    assert info is None or "error" in info


def test_capture_is_json_serialisable_and_complete(repo):
    env = capture_environment(repo)
    assert json.loads(json.dumps(env)) == env
    assert env["git"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert env["cwd"] == str(repo)
    assert env["argv"] == list(sys.argv)
    assert env["python"]["version"].count(".") == 2
    assert env["packages"]["pytest"] == pytest.__version__
    assert all(name == name.lower() for name in env["packages"])
    assert set(env["os"]) == {"system", "release", "version", "platform", "machine"}
    assert env["cpu"]["logical_cores"] >= 1
    assert env["memory_bytes"] > 0
    assert isinstance(env["gpus"], list)
    assert env["captured_at"].endswith("+00:00")


def test_capture_without_git_on_path(tmp_path, monkeypatch, repo):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    env = capture_environment(repo)
    assert env["git"] is None
    json.dumps(env)


def test_a_failing_part_is_recorded_not_raised(monkeypatch):
    def boom():
        raise RuntimeError("no cpu today")

    monkeypatch.setattr(environment, "_cpu", boom)
    monkeypatch.setattr(environment, "_memory_bytes", boom)
    env = capture_environment()
    assert env["cpu"] == {"error": "RuntimeError: no cpu today"}
    assert env["memory_bytes"] is None
    assert env["python"]["executable"]


def test_git_timeout_is_recorded_as_error(repo, monkeypatch):
    def hang(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], 5)

    monkeypatch.setattr(environment.subprocess, "run", hang)
    assert git_info(repo)["error"].startswith("TimeoutExpired")


def test_gpus_from_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'NVIDIA A100-SXM4-40GB, 40960'\necho 'Tesla T4, [N/A]'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    environment._gpus.cache_clear()
    try:
        assert capture_environment()["gpus"] == [
            {"name": "NVIDIA A100-SXM4-40GB", "memory_bytes": 40960 * 1024 * 1024},
            {"name": "Tesla T4", "memory_bytes": None},
        ]
    finally:
        environment._gpus.cache_clear()


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [("-c", "<command>"), ("-", "<stdin>"), ("", "<interactive>")],
)
def test_entry_point_markers(monkeypatch, argv0, expected):
    main = type(sys)("__main__")  # no __file__, no __spec__
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert environment._entry_point([argv0]) == expected


def test_entry_point_of_a_script(tmp_path, monkeypatch):
    script = tmp_path / "train.py"
    script.write_text("")
    main = type(sys)("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert environment._entry_point([str(script)]) == str(script.resolve())


def test_entry_point_of_python_dash_m(tmp_path):
    (tmp_path / "mod.py").write_text(
        "import json\n"
        "from loopwise.tracking.environment import capture_environment\n"
        "print(json.dumps(capture_environment()['entry_point']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mod"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == str((tmp_path / "mod.py").resolve())
