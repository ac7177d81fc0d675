"""Capture the environment a run was started in, so the run can be understood and repeated.

Every tracked run records which code (git commit, uncommitted changes, entry point), which
interpreter and packages, and which machine produced it. Capture runs on a background
thread when a run starts, so it must be quick and must never raise: a part that fails is
recorded as ``None`` (or ``{"error": ...}`` for parts that are dicts) and the rest is kept.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["capture_environment", "git_info"]

_TIMEOUT = 5.0  # seconds, for each git / nvidia-smi call
# Never prompt for credentials, never take optional locks (we run next to the user's git).
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}


def capture_environment(cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Return a JSON-serialisable description of code, interpreter, packages and machine.

    ``cwd`` is the directory whose git repository is described (default: the current
    directory). Never raises.
    """
    directory = _attempt(lambda: os.path.abspath(cwd if cwd is not None else os.getcwd()))
    argv = list(sys.argv)
    return {
        "git": git_info(directory) if directory else None,
        "entry_point": _attempt(lambda: _entry_point(argv)),
        "argv": argv,
        "cwd": directory,
        "python": _attempt(_python, as_dict=True),
        "packages": _attempt(lambda: dict(_packages()), as_dict=True),
        "os": _attempt(_os, as_dict=True),
        "host": _attempt(socket.gethostname),
        "user": _attempt(getpass.getuser),
        "cpu": _attempt(_cpu, as_dict=True),
        "memory_bytes": _attempt(_memory_bytes),
        "gpus": _attempt(lambda: list(_gpus())),
        "captured_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def git_info(cwd: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """Describe the git work tree containing ``cwd``; ``None`` outside one or without git.

    Keys: ``commit`` (None before the first commit), ``branch`` (None when detached),
    ``dirty`` (tracked changes), ``diff_sha256`` (of ``git diff HEAD``; None when clean),
    ``untracked`` (count), ``remote`` (origin URL without credentials), ``root``.
    An unexpected failure gives ``{"error": ...}``. Never raises.
    """
    if shutil.which("git") is None:
        return None
    try:
        top = _git(os.fspath(cwd) if cwd is not None else None, "rev-parse", "--show-toplevel")
        if top is None:  # not inside a work tree (or inside .git, or a bare repository)
            return None
        root = top.decode(errors="replace").strip()
        commit = _git_text(root, "rev-parse", "--verify", "-q", "HEAD")
        dirty = bool(_git(root, "status", "--porcelain", "-z", "--untracked-files=no"))
        diff_sha256 = None
        if dirty:  # before the first commit, diff against the empty tree
            base = commit or _git_text(root, "hash-object", "-t", "tree", "/dev/null")
            diff = _git(root, "diff", "--no-color", "--no-ext-diff", base or "HEAD")
            diff_sha256 = hashlib.sha256(diff).hexdigest() if diff is not None else None
        untracked = _git(root, "ls-files", "--others", "--exclude-standard", "-z")
        return {
            "commit": commit,
            "branch": _git_text(root, "symbolic-ref", "--short", "-q", "HEAD"),
            "dirty": dirty,
            "diff_sha256": diff_sha256,
            "untracked": untracked.count(b"\0") if untracked is not None else None,
            "remote": _strip_credentials(_git_text(root, "remote", "get-url", "origin")),
            "root": root,
        }
    except Exception as exc:  # cwd gone, git hung, ...: capture must never break a run
        return {"error": _describe(exc)}


def _git(cwd: str | None, *args: str) -> bytes | None:
    """Run git and return its stdout, or None if it exited with an error."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        timeout=_TIMEOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **_GIT_ENV},
        check=False,
    )
    return done.stdout if done.returncode == 0 else None


def _git_text(cwd: str | None, *args: str) -> str | None:
    out = _git(cwd, *args)
    text = out.decode(errors="replace").strip() if out is not None else ""
    return text or None


_URL_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@]*)@")


def _strip_credentials(url: str | None) -> str | None:
    """Remove passwords from a remote URL; for http(s), remove the user (often a token) too."""
    if url is None:
        return None
    match = _URL_USERINFO.match(url)
    if match is None:  # no credentials, or scp-like "git@host:org/repo.git"
        return url
    scheme, user = match["scheme"], match["userinfo"].partition(":")[0]
    keep_user = user and not scheme.lower().startswith("http")
    return scheme + (f"{user}@" if keep_user else "") + url[match.end() :]


def _entry_point(argv: list[str]) -> str:
    """Return the resolved path of the main script, or a marker for -c / interactive use."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.origin and os.path.isfile(spec.origin):  # python -m module
        return str(Path(spec.origin).resolve())
    if "ipykernel" in sys.modules:
        return "<notebook>"
    first = argv[0] if argv else ""
    if first == "-c":
        return "<command>"
    if first == "-":
        return "<stdin>"
    path = getattr(main, "__file__", None) or first
    if not path or not os.path.exists(path):
        return "<interactive>"
    return str(Path(path).resolve())


def _python() -> dict[str, Any]:
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


@functools.lru_cache(maxsize=1)
def _packages() -> tuple[tuple[str, str], ...]:
    """All installed distributions as (lower-case name, version); the slow part, so cached."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:  # the first one on sys.path wins, as for imports
            found.setdefault(name.lower(), dist.version)
    return tuple(sorted(found.items()))


def _os() -> dict[str, Any]:
    return {
        "system": platform.system(),
        "release": platform.release(),
        "version": platform.version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def _cpu() -> dict[str, Any]:
    import psutil

    return {
        "model": _cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


@functools.lru_cache(maxsize=1)
def _gpus() -> tuple[dict[str, Any], ...]:
    """NVIDIA GPUs as reported by nvidia-smi (no torch import). Failures are not cached."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return ()
    done = subprocess.run(
        [binary, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
        capture_output=True,
        timeout=_TIMEOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        check=True,
    )
    gpus = []
    for line in done.stdout.splitlines():
        name, _, memory_mib = line.rpartition(",")
        if not name.strip():
            continue
        memory = memory_mib.strip()
        gpus.append(
            {
                "name": name.strip(),
                "memory_bytes": int(memory) * 1024 * 1024 if memory.isdigit() else None,
            }
        )
    return tuple(gpus)


def _attempt(fn: Callable[[], Any], *, as_dict: bool = False) -> Any:
    """Call ``fn``; on failure return None, or ``{"error": ...}`` when the part is a dict."""
    try:
        return fn()
    except Exception as exc:
        return {"error": _describe(exc)} if as_dict else None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
