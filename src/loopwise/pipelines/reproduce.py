"""Run a pipeline run again from its own code version, and say what came out different.

Why: "can we get this model again?" is only answered by doing it. A pipeline run records
the git commit of its code (its environment), its parameters (which hold the dataset
version references) and a fingerprint of every step's output. :func:`reproduce_run` checks
that commit out in a temporary ``git worktree`` (the user's checkout is never touched, and
the worktree is removed afterwards, also on failure), runs the pipeline from there in a
fresh process against the same store with the same parameters and no cache, and compares
the two runs: per step, whether the outputs' fingerprints are equal; per metric of the
pipeline run and of each step run, the old and new values and their difference.

A fresh process matters: the code is imported from the worktree, not from modules this
process already holds, and nothing of the current interpreter's state leaks in. A run
that started from uncommitted changes cannot be reproduced exactly; it is reproduced from
its commit with a warning that says so.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from loopwise.errors import ConfigurationError, InvalidInput, NotFound
from loopwise.pipelines import records
from loopwise.pipelines.fingerprint import is_json_exact
from loopwise.pipelines.records import PipelineRun, StepRun
from loopwise.store import Store
from loopwise.store.tables import metric_series
from loopwise.tracking import runs as run_service
from loopwise.tracking.records import RunStatus

#: The tag on a reproduced run naming the run it reproduces.
REPRODUCES_TAG = "loopwise.reproduces"
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
_GIT_TIMEOUT = 120.0  # seconds; a worktree of a large repository takes a while to check out
#: Files that mark a project folder: the reproduced run starts in the nearest one above
#: its pipeline file, as ``make train`` would (its imports and loopwise.toml are there).
_PROJECT_MARKERS = ("loopwise.toml", "pyproject.toml", "setup.py")


@dataclass(frozen=True)
class StepComparison:
    """One step in both runs: statuses, output references and fingerprints (None when the
    step is missing from a run or stored no output)."""

    name: str
    old_status: str | None
    new_status: str | None
    old_output: str | None
    new_output: str | None
    old_fingerprint: str | None
    new_fingerprint: str | None

    @property
    def same(self) -> bool:
        """True when both runs stored an output and their fingerprints are equal."""
        return self.old_fingerprint is not None and self.old_fingerprint == self.new_fingerprint

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "old_status": self.old_status,
            "new_status": self.new_status,
            "old_output": self.old_output,
            "new_output": self.new_output,
            "old_fingerprint": self.old_fingerprint,
            "new_fingerprint": self.new_fingerprint,
            "same": self.same,
        }


@dataclass(frozen=True)
class MetricComparison:
    """A metric of the pipeline run (``run`` is ``"pipeline"``) or of a step run (``run``
    is the step's name) in both runs; None where a run has no such metric."""

    run: str
    key: str
    old: float | None
    new: float | None

    @property
    def delta(self) -> float | None:
        """``new - old``; 0.0 when both are NaN, None when either is missing."""
        if self.old is None or self.new is None:
            return None
        if math.isnan(self.old) and math.isnan(self.new):
            return 0.0
        return self.new - self.old

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "key": self.key,
            "old": self.old,
            "new": self.new,
            "delta": self.delta,
        }


@dataclass(frozen=True)
class Reproduction:
    """The outcome of :func:`reproduce_run`: the ``original`` and ``reproduced`` pipeline
    runs, the ``commit`` the code came from, per-step and per-metric comparisons, and
    ``warnings`` (a dirty tree at the original run, ...)."""

    original: PipelineRun
    reproduced: PipelineRun
    commit: str
    entrypoint: str
    steps: list[StepComparison]
    metrics: list[MetricComparison]
    warnings: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """True when both runs finished, every step's output has the same fingerprint and
        every metric has the same value."""
        return (
            self.original.status is self.reproduced.status
            and all(s.same for s in self.steps)
            and all(m.delta == 0 for m in self.metrics)
        )

    def summary(self) -> str:
        differ = [s.name for s in self.steps if not s.same]
        changed = [m for m in self.metrics if m.delta != 0]
        head = (
            f"Reproduced pipeline run {self.original.id} as {self.reproduced.id} "
            f"({self.reproduced.status.value}) from commit {self.commit[:12]}: "
        )
        if self.identical:
            return head + "every output and metric is the same."
        return head + (
            f"{len(differ)} of {len(self.steps)} step outputs differ"
            + (f" ({', '.join(differ)})" if differ else "")
            + f", {len(changed)} of {len(self.metrics)} metrics changed."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original.id,
            "reproduced": self.reproduced.id,
            "original_status": self.original.status.value,
            "reproduced_status": self.reproduced.status.value,
            "commit": self.commit,
            "entrypoint": self.entrypoint,
            "identical": self.identical,
            "warnings": list(self.warnings),
            "steps": [s.to_dict() for s in self.steps],
            "metrics": [m.to_dict() for m in self.metrics],
        }


# -- git --------------------------------------------------------------------------------------


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(root), *args],
        capture_output=True,
        text=True,
        timeout=_GIT_TIMEOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **_GIT_ENV},
        check=False,
    )


def _code_version(store: Store, run: PipelineRun) -> tuple[Path, str, list[str]]:
    """The repository root and commit the run's code came from, and warnings; a clear
    error when they are not recorded or not there any more."""
    environment = run_service.get_run(store, run.id).environment or {}
    git = environment.get("git")
    if not isinstance(git, dict) or not git.get("commit") or not git.get("root"):
        why = (
            git["error"]
            if isinstance(git, dict) and git.get("error")
            else "its pipeline's code was not in a git repository with a commit, or "
            "environment capture was off (capture_environment = false)"
        )
        raise InvalidInput(
            f"Pipeline run {run.id} recorded no git commit ({why}), so its code version is "
            "unknown and it cannot be reproduced. Commit the pipeline's code and run it again."
        )
    if shutil.which("git") is None:
        raise ConfigurationError(
            f"git is not installed (or not on PATH): reproducing run {run.id} checks out "
            f"commit {git['commit'][:12]} with git. Install git and try again."
        )
    root, commit = Path(git["root"]), str(git["commit"])
    if not (root / ".git").exists():
        raise NotFound(
            f"The git repository of pipeline run {run.id} ({root}) is gone, so commit "
            f"{commit[:12]} cannot be checked out. Reproduce it on the machine that ran it, "
            "or clone the repository back to that path."
        )
    if _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise NotFound(
            f"Commit {commit[:12]} of pipeline run {run.id} is no longer in the repository "
            f"{root} (history rewritten, or the branch deleted and pruned). Fetch it back "
            "(git fetch origin <commit>) and try again."
        )
    warnings = []
    if git.get("dirty"):
        warnings.append(
            f"Pipeline run {run.id} ran with uncommitted changes in {root}: it is reproduced "
            f"from commit {commit[:12]} without them, so differences may come from those "
            "changes rather than from the run."
        )
    return root, commit, warnings


@contextmanager
def _worktree(root: Path, commit: str) -> Iterator[Path]:
    """``commit`` checked out (detached) in a temporary worktree of ``root``, removed at
    the end whatever happens."""
    parent = Path(tempfile.mkdtemp(prefix="loopwise-reproduce-"))
    path = parent / "code"
    try:
        added = _git(root, "worktree", "add", "--detach", str(path), commit)
        if added.returncode != 0:
            raise InvalidInput(
                f"Could not check out commit {commit[:12]} of {root} in a worktree: "
                f"{added.stderr.strip() or added.stdout.strip()}"
            )
        yield path
    finally:
        if _git(root, "worktree", "remove", "--force", str(path)).returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            _git(root, "worktree", "prune")
        shutil.rmtree(parent, ignore_errors=True)


# -- running ----------------------------------------------------------------------------------


def _inside(path: Path, root: Path, run: PipelineRun) -> Path:
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        raise InvalidInput(
            f"The code of pipeline run {run.id} ({path}) is outside its git repository "
            f"{root}, so that repository's commit does not hold it."
        ) from None


def _project_folder(start: Path, top: Path) -> Path:
    """The nearest folder from ``start`` up to ``top`` with a project marker, else ``top``."""
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in _PROJECT_MARKERS):
            return folder
        if folder == top:
            break
    return top


def _launch_spec(
    store: Store, run: PipelineRun, root: Path, worktree: Path
) -> tuple[str, Path, list[Path]]:
    """The entrypoint to run from ``worktree``, the folder to start in, and the folders to
    put first on the import path."""
    module, _, qualname = run.entrypoint.rpartition(":")
    if module.endswith(".py"):
        relative = _inside(Path(module), root, run)
        target = worktree / relative
        folder = _project_folder(target.parent, worktree)
        return f"{target}:{qualname}", folder, [folder]
    # module:function: the folder the module is imported from, mapped into the worktree
    environment = run_service.get_run(store, run.id).environment or {}
    found = environment.get("cwd")  # the folder of the pipeline's file, as captured
    base = worktree
    if isinstance(found, str):
        folder = Path(found)
        for _ in range(module.count(".")):
            folder = folder.parent
        base = worktree / _inside(folder, root, run)
    return run.entrypoint, _project_folder(base, worktree), [base]


def _absolute(store: Store) -> dict[str, str]:
    """The store's settings as environment variables, with relative paths made absolute
    (the reproduced run starts in another folder but must write to this store)."""
    settings = store.settings
    url = settings.store_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = url[len("sqlite:///") :]
        if path and not path.startswith(":memory:"):
            url = "sqlite:///" + str(Path(path).resolve())
    artifacts = settings.artifacts_url
    if "://" not in artifacts:
        artifacts = str(Path(artifacts).expanduser().resolve())
    values = {"LOOPWISE_STORE_URL": url, "LOOPWISE_ARTIFACTS_URL": artifacts}
    if settings.s3_endpoint_url:
        values["LOOPWISE_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    if settings.s3_region:
        values["LOOPWISE_S3_REGION"] = settings.s3_region
    return values


def _param_args(run: PipelineRun) -> list[str]:
    args = []
    for key, value in run.params.items():
        if not is_json_exact(value):
            raise InvalidInput(
                f"Parameter {key!r} of pipeline run {run.id} is a {type(value).__name__}, not "
                "a JSON value, so it cannot be passed to a new process; only runs whose "
                "parameters are JSON (numbers, text, lists, dicts, dataset references) can be "
                "reproduced."
            )
        args += ["--param", f"{key}={json.dumps(value)}"]
    return args


def _last_json(text: str) -> dict[str, Any] | None:
    """The last JSON object printed on its own lines in ``text`` (a step may print too)."""
    decoder = json.JSONDecoder()
    starts = [i for i in range(len(text)) if text[i] == "{" and (i == 0 or text[i - 1] == "\n")]
    for start in reversed(starts):
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict) and "steps" in value and not text[end:].strip():
            return value
    return None


def _run_again(
    store: Store, run: PipelineRun, root: Path, worktree: Path, python: str
) -> tuple[str, list[str]]:
    """Run the pipeline from ``worktree`` in a new process; the new run's id, and notes."""
    entrypoint, folder, path = _launch_spec(store, run, root, worktree)
    notes = []
    executor = run.executor
    if executor not in ("inprocess", "processes"):
        notes.append(
            f"Pipeline run {run.id} ran on the {executor} executor; it is reproduced in "
            "local threads (the executor does not change what a step computes)."
        )
        executor = "inprocess"
    experiment = run_service.get_run(store, run.id).experiment
    command = [python, "-m", "loopwise", "pipelines", "run", entrypoint, *_param_args(run)]
    command += ["--executor", executor, "--experiment", experiment, "--no-cache", "--json"]
    env = {k: v for k, v in os.environ.items() if k != "LOOPWISE_CONFIG"}
    env.update(_absolute(store))
    env["_TYPER_STANDARD_TRACEBACK"] = "1"  # a plain traceback to quote in an error
    env["PYTHONPATH"] = os.pathsep.join(
        [*map(str, path), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    done = subprocess.run(
        command,
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    printed = _last_json(done.stdout)
    if printed is None or not printed.get("id"):
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise InvalidInput(
            f"The pipeline of run {run.id} did not run from commit (exit code "
            f"{done.returncode}):\n{tail}"
        )
    return str(printed["id"]), notes


# -- comparing --------------------------------------------------------------------------------


def _metrics_of(store: Store, run_ids: list[str]) -> dict[str, dict[str, float]]:
    """Latest metric values of each run, in one query."""
    wanted = sorted({r for r in run_ids if r})
    found: dict[str, dict[str, float]] = {r: {} for r in wanted}
    if not wanted:
        return found
    with store.db.read() as conn:
        rows = conn.execute(
            select(metric_series.c.run_id, metric_series.c.key, metric_series.c.last_value).where(
                metric_series.c.run_id.in_(wanted)
            )
        ).all()
    for run_id, key, value in rows:
        found[run_id][key] = math.nan if value is None else float(value)
    return found


def _metric_run(step: StepRun | None) -> str | None:
    """The run that holds a step's metrics: a cached step's come from the run it reused."""
    if step is None:
        return None
    return step.cached_from or step.run_id


def compare_runs(
    store: Store, old: PipelineRun, new: PipelineRun
) -> tuple[list[StepComparison], list[MetricComparison]]:
    """Per step (in the old run's order, then steps only the new one has): statuses and
    output fingerprints; per metric of the pipeline runs and the step runs: both values."""
    old_steps = {s.name: s for s in old.steps}
    new_steps = {s.name: s for s in new.steps}
    names = [*old_steps, *(n for n in new_steps if n not in old_steps)]
    holders = [old.id, new.id]
    for name in names:
        holders += [_metric_run(old_steps.get(name)) or "", _metric_run(new_steps.get(name)) or ""]
    values = _metrics_of(store, holders)

    steps = []
    metrics = _metric_rows("pipeline", values.get(old.id, {}), values.get(new.id, {}))
    for name in names:
        before, after = old_steps.get(name), new_steps.get(name)
        steps.append(
            StepComparison(
                name=name,
                old_status=before.status if before else None,
                new_status=after.status if after else None,
                old_output=before.outputs.get("ref") if before and before.outputs else None,
                new_output=after.outputs.get("ref") if after and after.outputs else None,
                old_fingerprint=before.fingerprint if before else None,
                new_fingerprint=after.fingerprint if after else None,
            )
        )
        metrics += _metric_rows(
            name,
            values.get(_metric_run(before) or "", {}),
            values.get(_metric_run(after) or "", {}),
        )
    return steps, metrics


def _metric_rows(
    scope: str, old: dict[str, float], new: dict[str, float]
) -> list[MetricComparison]:
    keys = sorted(set(old) | set(new))
    return [MetricComparison(scope, key, old.get(key), new.get(key)) for key in keys]


def reproduce_run(store: Store, run_id: str, *, python: str | None = None) -> Reproduction:
    """Run pipeline run ``run_id`` again with its code version (its git commit, checked out
    in a temporary worktree), its parameters and no cache, in ``store``; the comparison.

    ``python`` is the interpreter that runs it (default: this one). The new run is tagged
    ``loopwise.reproduces`` with the original's id.
    """
    original = records.get_pipeline_run(store, run_id)
    if original.status is RunStatus.RUNNING:
        raise InvalidInput(
            f"Pipeline run {original.id} is still RUNNING; reproduce it once it has ended."
        )
    root, commit, warnings = _code_version(store, original)
    try:
        with _worktree(root, commit) as worktree:
            new_id, notes = _run_again(store, original, root, worktree, python or sys.executable)
    finally:
        # the run from the worktree registered the pipeline at the worktree's path, which
        # is gone now: point the name back at where the pipeline lives
        records.register_pipeline(store, original.pipeline, original.entrypoint)
    run_service.set_tags(store, new_id, {REPRODUCES_TAG: original.id})
    reproduced = records.get_pipeline_run(store, new_id)
    steps, metrics = compare_runs(store, original, reproduced)
    return Reproduction(
        original=original,
        reproduced=reproduced,
        commit=commit,
        entrypoint=original.entrypoint,
        steps=steps,
        metrics=metrics,
        warnings=[*warnings, *notes],
    )
