"""Copy an MLflow tracking store into loopwise, and on later imports only what is new.

MLflow run ids (32 hex characters) are not loopwise ids, and MLflow numbers versions with
gaps, so nothing is copied under its MLflow id: an imported run gets a new loopwise id
and tags ``mlflow.import.source`` (the source's URL, without secrets) and
``mlflow.import.run_id``; an imported version gets the same two as version tags
(``mlflow.import.version``: MLflow's number). One query per source finds everything
imported before (:func:`_imported_runs`, :func:`_imported_versions`), so a re-import costs
a few queries, not a query per run.

Why a run is complete only once its ``mlflow.import.state`` tag is written, last: a run's
row, params, tags (with the two mapping tags) and metric points go in one transaction,
then its artifacts (blobs, then their records), then the state tag -- a fingerprint of
what MLflow held (status, end time, params, tags, latest metric points). A crash between
those steps leaves a mapped run without a state, which the next import finds and
completes (only missing params, tags, metric points and files are written), never a
second copy and never a run that looks finished but lacks its files. A run with a state
equal to the source's fingerprint, imported in a terminal state, is skipped without
reading its history; one that was RUNNING (or whose fingerprint changed) is brought up to
date point by point. A version is one transaction (``register_version``) with its mapping
tags, so it is there whole or not at all. Aliases are moved to match the source; one the
importer set and MLflow no longer has is removed.

Deleted MLflow experiments and runs (``lifecycle_stage = deleted``) are not copied; the
summary counts them.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import and_, select, update

from loopwise.errors import InvalidInput
from loopwise.ids import new_id
from loopwise.interop.mlflow_inputs import held_inputs, input_rows, write_inputs
from loopwise.interop.mlflow_models import package_mlflow_model
from loopwise.interop.mlflow_source import (
    DELETED,
    Columns,
    MlflowSource,
    SourceModel,
    SourceRun,
    SourceVersion,
)
from loopwise.store import Store
from loopwise.store.tables import (
    experiments,
    model_versions,
    registered_models,
    run_tags,
    runs,
)
from loopwise.tracking import run_artifacts
from loopwise.tracking.records import RunStatus
from loopwise.tracking.runs import (
    DEFAULT_EXPERIMENT,
    get_or_create_experiment,
    param_texts,
    tag_rows,
    write_params,
    write_tags,
)

SOURCE_TAG = "mlflow.import.source"
RUN_ID_TAG = "mlflow.import.run_id"
STATE_TAG = "mlflow.import.state"
VERSION_TAG = "mlflow.import.version"
#: The tag MLflow's registry routes read a version's source from (server/mlflow/registry.py).
MLFLOW_SOURCE_TAG = "mlflow.source"
ALIAS_REASON = "imported from MLflow"
_STATUS = {
    "RUNNING": RunStatus.RUNNING,
    "SCHEDULED": RunStatus.RUNNING,  # loopwise has no "scheduled": it is not over yet
    "FINISHED": RunStatus.FINISHED,
    "FAILED": RunStatus.FAILED,
    "KILLED": RunStatus.KILLED,
}
KINDS = (
    "experiments",
    "runs",
    "params",
    "tags",
    "metric points",
    "dataset inputs",
    "artifacts",
    "models",
    "versions",
    "aliases",
)

#: ``progress(stage, done, total)``: stage is "runs" or "versions".
Progress = Callable[[str, int, int], None]


@dataclass
class Counts:
    """How many records of one kind were copied new, brought up to date, or left as they
    were (already imported, or not importable: see the summary's notes)."""

    new: int = 0
    updated: int = 0
    skipped: int = 0


@dataclass
class ImportSummary:
    """What an import copied, per kind; ``deleted`` counts what MLflow holds as deleted
    (not copied); ``notes`` say what was left out and why."""

    source: str
    counts: dict[str, Counts] = field(default_factory=lambda: {k: Counts() for k in KINDS})
    deleted: dict[str, int] = field(default_factory=lambda: {"experiments": 0, "runs": 0})
    notes: list[str] = field(default_factory=list)

    @property
    def copied_anything(self) -> bool:
        return any(c.new or c.updated for c in self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "counts": {k: vars(c).copy() for k, c in self.counts.items()},
            "deleted": dict(self.deleted),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class _Imported:
    run_id: str
    status: str
    state: str | None


def import_mlflow(
    store: Store,
    source: MlflowSource,
    *,
    experiments: list[str] | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Copy ``source`` (see :func:`loopwise.interop.mlflow_source.open_source`) into
    ``store``: experiments, runs (params, metric histories, tags, artifacts), registered
    models, their versions (packages of flavor ``mlflow``, linked to their imported run)
    and aliases; anything imported before is brought up to date, not copied again.

    ``experiments`` limits the import to the MLflow experiments of these names (versions
    then only from their runs). ``progress`` is called as runs and versions are copied.
    """
    summary = ImportSummary(source.url)
    report = progress or (lambda stage, done, total: None)
    chosen = _experiments(store, source, experiments, summary)
    mapping = _imported_runs(store, source.url)
    selected = source.runs(list(chosen))
    active = sorted(
        (r for r in selected if r.lifecycle_stage != DELETED),
        key=lambda r: (r.start_ms or 0, r.id),
    )
    summary.deleted["runs"] += len(selected) - len(active)
    report("runs", 0, len(active))
    with tempfile.TemporaryDirectory(prefix="loopwise-mlflow-import-") as tmp:
        for done, run in enumerate(active, 1):
            try:
                _import_run(store, source, run, chosen[run.experiment_id], mapping, summary, tmp)
            except InvalidInput as e:
                summary.counts["runs"].skipped += 1
                summary.notes.append(f"run {run.id} ({run.name}) not copied: {e}")
            report("runs", done, len(active))
        only = {r.id for r in active} if experiments else None
        _import_models(store, source, mapping, only, summary, report, Path(tmp))
    return summary


# -- experiments -----------------------------------------------------------------------------


def _experiments(
    store: Store, source: MlflowSource, names: list[str] | None, summary: ImportSummary
) -> dict[str, str]:
    """MLflow experiment id -> loopwise experiment name, for the experiments to copy
    (created in loopwise when missing); Default (id 0) is loopwise's ``default``."""
    found = source.experiments()
    if names:
        known = {e.name for e in found}
        missing = [n for n in names if n not in known]
        if missing:
            raise InvalidInput(
                f"The MLflow source {source.url} has no experiment {', '.join(map(repr, missing))}"
                f"; its experiments: {', '.join(sorted(known)) or 'none'}."
            )
        found = [e for e in found if e.name in names]
    with store.db.read() as conn:
        existing = {name for (name,) in conn.execute(select(experiments.c.name))}
    chosen: dict[str, str] = {}
    counts = summary.counts["experiments"]
    for experiment in found:
        if experiment.lifecycle_stage == DELETED:
            summary.deleted["experiments"] += 1
            continue
        name = DEFAULT_EXPERIMENT if experiment.id == "0" else experiment.name
        if name in existing:
            counts.skipped += 1
        else:
            get_or_create_experiment(store, name)
            counts.new += 1
        chosen[experiment.id] = name
    return chosen


# -- runs ------------------------------------------------------------------------------------


def _imported_runs(store: Store, source_url: str) -> dict[str, _Imported]:
    """MLflow run id -> what an earlier import of ``source_url`` made of it: one query."""
    mlflow_id, origin, state = run_tags.alias(), run_tags.alias(), run_tags.alias()
    query = (
        select(mlflow_id.c.value, runs.c.id, runs.c.status, state.c.value.label("state"))
        .join(runs, runs.c.id == mlflow_id.c.run_id)
        .join(
            origin,
            and_(
                origin.c.run_id == mlflow_id.c.run_id,
                origin.c.key == SOURCE_TAG,
                origin.c.value == source_url,
            ),
        )
        .outerjoin(state, and_(state.c.run_id == mlflow_id.c.run_id, state.c.key == STATE_TAG))
        .where(mlflow_id.c.key == RUN_ID_TAG)
    )
    with store.db.read() as conn:
        return {row[0]: _Imported(row.id, row.status, row.state) for row in conn.execute(query)}


def fingerprint(run: SourceRun) -> str:
    """What the source holds of ``run`` that a re-import must notice, as a short hash."""
    document = [
        run.status,
        run.end_ms,
        run.name,
        sorted(run.params.items()),
        sorted(run.tags.items()),
        [(k, s, t, repr(v)) for k, s, t, v in run.latest],
    ]
    return hashlib.sha256(json.dumps(document).encode()).hexdigest()[:32]


def _us(ms: int | None) -> int | None:
    return None if ms is None else int(ms) * 1000


def _run_values(run: SourceRun) -> dict[str, Any]:
    status = _STATUS.get(run.status.upper(), RunStatus.FAILED)
    start = _us(run.start_ms) or 0
    end = None if status is RunStatus.RUNNING else _us(run.end_ms) or start
    return {"status": status.value, "start_time": start, "end_time": end}


def _import_run(
    store: Store,
    source: MlflowSource,
    run: SourceRun,
    experiment: str,
    mapping: dict[str, _Imported],
    summary: ImportSummary,
    tmp: str,
) -> None:
    state = fingerprint(run)
    prior = mapping.get(run.id)
    if prior is not None and prior.state == state and prior.status != RunStatus.RUNNING.value:
        summary.counts["runs"].skipped += 1
        return
    parent = mapping.get(run.tags.get("mlflow.parentRunId", ""))
    tags = dict(run.tags)
    if parent is not None:
        tags["mlflow.parentRunId"] = parent.run_id
    scratch = Path(tempfile.mkdtemp(dir=tmp))
    if prior is None:
        run_id = _create_run(store, source, run, experiment, tags, parent, summary)
        summary.counts["runs"].new += 1
        _copy_artifacts(store, source, run, run_id, {}, summary, scratch)
        wrote = True
    else:
        run_id = prior.run_id
        wrote = _update_run(store, source, run, run_id, tags, summary)
        wrote = _copy_artifacts(store, source, run, run_id, None, summary, scratch) or wrote
        wrote = wrote or prior.state is None or prior.status != _run_values(run)["status"]
        counts = summary.counts["runs"]
        if wrote:
            counts.updated += 1
        else:
            counts.skipped += 1
    with store.db.write() as conn:
        write_tags(conn, [{"run_id": run_id, "key": STATE_TAG, "value": state}])
    mapping[run.id] = _Imported(run_id, _run_values(run)["status"], state)


def _checked_tags(
    store: Store, run_id: str, tags: dict[str, str], summary: ImportSummary
) -> list[dict[str, str]]:
    """Tag rows of ``tags``; a tag loopwise cannot hold (too long) is left out, noted."""
    rows = []
    for key, value in tags.items():
        try:
            rows.extend(tag_rows(store, run_id, {key: value}))
        except InvalidInput as e:
            summary.counts["tags"].skipped += 1
            summary.notes.append(f"tag {key!r} of run {run_id} not copied: {e}")
    return rows


def _create_run(
    store: Store,
    source: MlflowSource,
    run: SourceRun,
    experiment: str,
    tags: dict[str, str],
    parent: _Imported | None,
    summary: ImportSummary,
) -> str:
    """The run's row, params, tags (with the mapping) and every metric point, in one
    transaction; its id."""
    exp = get_or_create_experiment(store, experiment)
    run_id = new_id()
    params = param_texts(store, run_id, run.params)
    rows = _checked_tags(store, run_id, tags, summary)
    rows += tag_rows(store, run_id, {SOURCE_TAG: source.url, RUN_ID_TAG: run.id})
    series = _series(store, run_id, source.metric_history(run))
    name = (run.name or run.tags.get("mlflow.runName") or run.id)[:250]
    inputs = _input_rows(run_id, run)
    with store.db.write() as conn:
        conn.execute(
            runs.insert().values(
                id=run_id,
                experiment_id=exp.id,
                name=name,
                parent_run_id=parent.run_id if parent is not None else None,
                heartbeat_at=None,  # MLflow's run: loopwise never marks it LOST
                host=None,
                pid=None,
                username=run.user,
                **_run_values(run),
            )
        )
        write_params(conn, run_id, params)
        write_tags(conn, rows)
        write_inputs(conn, inputs)
        if series:
            from loopwise.tracking.metric_store import write_points

            write_points(conn, series, {})
    summary.counts["params"].new += len(params)
    summary.counts["tags"].new += len(rows) - 2
    summary.counts["dataset inputs"].new += len(inputs)
    summary.counts["metric points"].new += sum(len(s[0]) for s in series.values())
    return run_id


def _input_rows(run_id: str, run: SourceRun) -> list[dict[str, Any]]:
    """The rows of the run's dataset inputs, tags in key order (so a re-import compares
    them as they were written)."""
    return input_rows(run_id, [(b, sorted(t, key=lambda x: x["key"])) for b, t in run.inputs])


def _series(store: Store, run_id: str, history: dict[str, Columns]) -> dict[Any, Any]:
    """Points per key as the (steps, timestamps µs, values) arrays metric_store writes."""
    from loopwise.tracking.runs import check_keys

    check_keys(store, history, kind="Metric key", run_id=run_id)
    return {
        (run_id, key): (steps, stamps * 1000, values)
        for key, (steps, stamps, values) in history.items()
        if len(steps)
    }


def _point_key(step: int, stamp_us: int, value: float) -> tuple[int, int, str]:
    return (int(step), int(stamp_us), "nan" if math.isnan(value) else repr(float(value)))


def _update_run(
    store: Store,
    source: MlflowSource,
    run: SourceRun,
    run_id: str,
    tags: dict[str, str],
    summary: ImportSummary,
) -> bool:
    """Bring an imported run up to date: new params and tags, the metric points it lacks,
    its status and end time. True when anything was written."""
    from loopwise.tracking.metric_store import read_arrays, write_points
    from loopwise.tracking.runs import get_run

    known = get_run(store, run_id)
    params = {
        k: v for k, v in param_texts(store, run_id, run.params).items() if k not in known.params
    }
    changed = {k: v for k, v in tags.items() if known.tags.get(k) != v}
    rows = _checked_tags(store, run_id, changed, summary)
    history = source.metric_history(run)
    fresh: dict[str, Columns] = {}
    with store.db.read() as conn:
        for key, (steps, stamps, values) in history.items():
            have = read_arrays(conn, run_id, key)
            seen = Counter(
                _point_key(s, t, v) for s, t, v in zip(*(have or ((), (), ())), strict=True)
            )
            new = []
            for i, (step, ms, value) in enumerate(zip(steps, stamps, values, strict=True)):
                mark = _point_key(step, ms * 1000, value)
                if seen[mark] > 0:
                    seen[mark] -= 1
                else:
                    new.append(i)
            if new:
                fresh[key] = (steps[new], stamps[new], values[new])
    series = _series(store, run_id, fresh)
    values = _run_values(run)
    moved = values["status"] != known.status.value or (
        values["end_time"] is not None and known.end_time is None
    )
    with store.db.write() as conn:
        held = held_inputs(conn, run_id)
        inputs = [
            row
            for row in _input_rows(run_id, run)
            if held.get((row["kind"], row["input_key"])) != row["tags"]
        ]
        write_params(conn, run_id, params)
        write_tags(conn, rows)
        write_inputs(conn, inputs)
        if series:
            write_points(conn, series, {})
        if moved:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(status=values["status"], end_time=values["end_time"])
            )
    summary.counts["params"].new += len(params)
    summary.counts["tags"].updated += len(rows)
    summary.counts["dataset inputs"].new += len(inputs)
    points = sum(len(p[0]) for p in fresh.values())
    summary.counts["metric points"].new += points
    return bool(params or rows or points or moved or inputs)


def _copy_artifacts(
    store: Store,
    source: MlflowSource,
    run: SourceRun,
    run_id: str,
    have: dict[str, int] | None,
    summary: ImportSummary,
    scratch: Path,
) -> bool:
    """Copy the run's files loopwise lacks (``have``: path -> size of those it holds; None
    to read them). True when any was copied."""
    if not run.artifact_uri:
        return False
    if have is None:
        have = {a.path: a.size for a in run_artifacts.list_artifacts(store, run_id)}
    copied = False
    for path, size in source.artifact_files(run.artifact_uri):
        if have.get(path) == size:
            summary.counts["artifacts"].skipped += 1
            continue
        local = source.fetch_artifact(run.artifact_uri, path, scratch)
        run_artifacts.log_file(store, run_id, local, path)
        summary.counts["artifacts"].new += 1
        copied = True
    return copied


# -- models ----------------------------------------------------------------------------------


def _imported_versions(store: Store, source_url: str) -> dict[tuple[str, int], int]:
    """(model name, MLflow version) -> loopwise version number of what an earlier import
    of ``source_url`` registered: one query (version tags are JSON, read here)."""
    query = (
        select(registered_models.c.name, model_versions.c.version, model_versions.c.tags)
        .join(registered_models, registered_models.c.id == model_versions.c.model_id)
        .where(model_versions.c.tags.contains(VERSION_TAG))
    )
    found = {}
    with store.db.read() as conn:
        for name, number, tags in conn.execute(query):
            document = json.loads(tags) if tags else {}
            if document.get(SOURCE_TAG) == source_url and VERSION_TAG in document:
                found[(name, int(document[VERSION_TAG]))] = int(number)
    return found


def _import_models(
    store: Store,
    source: MlflowSource,
    mapping: dict[str, _Imported],
    only_runs: set[str] | None,
    summary: ImportSummary,
    report: Progress,
    tmp: Path,
) -> None:
    from loopwise.registry.models import check_model_name

    imported = _imported_versions(store, source.url)
    plan = []
    for model in source.registered_models():
        try:
            check_model_name(store, model.name)
        except InvalidInput as e:
            summary.counts["models"].skipped += 1
            summary.notes.append(f"model {model.name!r} not copied: {e}")
            continue
        versions = source.model_versions(model.name)
        if only_runs is not None:
            versions = [v for v in versions if v.run_id in only_runs]
            if not versions:
                continue
        plan.append((model, versions))
    total = sum(len(v) for _, v in plan)
    report("versions", 0, total)
    done = 0
    for model, versions in plan:
        _import_model(store, model, summary)
        for version in versions:
            key = (model.name, version.version)
            if key in imported:
                summary.counts["versions"].skipped += 1
            else:
                number = _import_version(store, source, version, mapping, summary, tmp)
                if number is not None:
                    imported[key] = number
            done += 1
            report("versions", done, total)
        _import_aliases(store, model.name, model.aliases, imported, summary)


def _import_model(store: Store, model: SourceModel, summary: ImportSummary) -> None:
    """Register the model with its description and tags; for a model imported before,
    bring in the tags MLflow added or changed since (tags set in loopwise are kept)."""
    from loopwise.registry import models as registry

    try:
        tags = registry.check_tags(model.tags, f"model {model.name!r}")
    except InvalidInput as e:
        summary.notes.append(f"the tags of model {model.name!r} not copied: {e}")
        tags = {}
    if registry.create_model(store, model.name, description=model.description, tags=tags):
        summary.counts["models"].new += 1
        return
    held = registry.get_model(store, model.name)
    changed = {k: v for k, v in tags.items() if held is None or held.tags.get(k) != v}
    if changed:
        registry.update_model(store, model.name, tags=changed)
        summary.counts["models"].updated += 1
    else:
        summary.counts["models"].skipped += 1


def _import_version(
    store: Store,
    source: MlflowSource,
    version: SourceVersion,
    mapping: dict[str, _Imported],
    summary: ImportSummary,
    tmp: Path,
) -> int | None:
    """Register an MLflow version as a loopwise version of flavor ``mlflow``; its number
    (None when it cannot be copied, noted in the summary)."""
    from loopwise.data.datasets import dataset_inputs
    from loopwise.registry import models as registry

    what = f"version {version.version} of model {version.name!r}"
    if version.stage == "Deleted_Internal" or version.status != "READY":
        summary.counts["versions"].skipped += 1
        summary.notes.append(f"{what} not copied: it is {version.status} in MLflow.")
        return None
    if not version.artifact_uri:
        summary.counts["versions"].skipped += 1
        summary.notes.append(f"{what} not copied: its source {version.source!r} names no files.")
        return None
    scratch = Path(tempfile.mkdtemp(dir=tmp))
    files = []
    for path, _ in source.artifact_files(version.artifact_uri):
        local = source.fetch_artifact(version.artifact_uri, path, scratch / "download")
        blob = store.artifacts.put_file(local)
        files.append((path, blob.size, blob.sha256))
    run = mapping.get(version.run_id or "")
    run_id = run.run_id if run is not None else None
    tags = {
        **version.tags,
        MLFLOW_SOURCE_TAG: version.source,
        SOURCE_TAG: source.url,
        VERSION_TAG: str(version.version),
    }
    origin = {"mlflow_source": version.source, "mlflow_version": version.version}
    try:
        manifest = package_mlflow_model(store, files, scratch / "package", what, origin)
    except InvalidInput as e:
        summary.counts["versions"].skipped += 1
        summary.notes.append(f"{what} not copied: {e}")
        return None
    registered = registry.register_version(
        store,
        version.name,
        scratch / "package",
        manifest,
        run_id=run_id,
        description=version.description,
        tags=tags,
        dataset_version_ids=[d.id for d in dataset_inputs(store, run_id)] if run_id else [],
    )
    summary.counts["versions"].new += 1
    return registered.version


def _import_aliases(
    store: Store,
    name: str,
    aliases: dict[str, int],
    imported: dict[tuple[str, int], int],
    summary: ImportSummary,
) -> None:
    """Point the model's aliases where MLflow points them; remove those an import set
    that MLflow no longer has (an alias people set in loopwise is left alone)."""
    from loopwise.registry import models as registry

    current = registry.get_model(store, name)
    held = dict(current.aliases) if current is not None else {}
    counts = summary.counts["aliases"]
    for alias, number in sorted(aliases.items()):
        target = imported.get((name, number))
        if target is None:
            counts.skipped += 1
            summary.notes.append(
                f"alias {alias!r} of model {name!r} not set: version {number} was not copied."
            )
            continue
        if held.get(alias) == target:
            counts.skipped += 1
            continue
        try:
            registry.set_alias(store, name, alias, target, reason=ALIAS_REASON)
        except InvalidInput as e:
            counts.skipped += 1
            summary.notes.append(f"alias {alias!r} of model {name!r} not set: {e}")
            continue
        if alias in held:
            counts.updated += 1
        else:
            counts.new += 1
    for alias in sorted(set(held) - set(aliases)):
        history = registry.alias_history(store, name, alias)
        if history and history[-1].reason == ALIAS_REASON:
            registry.delete_alias(store, name, alias, reason=ALIAS_REASON)
            counts.updated += 1


__all__ = [
    "ALIAS_REASON",
    "RUN_ID_TAG",
    "SOURCE_TAG",
    "STATE_TAG",
    "VERSION_TAG",
    "Counts",
    "ImportSummary",
    "Progress",
    "fingerprint",
    "import_mlflow",
]
