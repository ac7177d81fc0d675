"""The Ray executor of batch scoring: the chunks of :mod:`loopwise.batch.scoring` as Ray tasks.

The driver reads the input chunk by chunk, exactly as the local executor does, and submits
one task per chunk, keeping at most two tasks per cluster CPU in flight (memory stays
bounded). For Parquet a task gets only the chunk's row range and reads those rows of the
model's columns itself, from the row groups that hold them; for CSV (no row groups) the
chunk travels with the task. A task returns only the model's columns (``prediction``,
``proba_*``); the driver takes results in input order and writes the output, so the file is
the one the local executor writes.

Each worker process loads the model once and keeps it for later tasks. It loads the
package from the driver's package folder when that path exists on its node (one machine,
or a shared filesystem), and otherwise from a copy of the package that the driver put in
the object store, so a remote cluster needs no shared folder for the model. It does need
loopwise and the model's libraries installed, and, for Parquet, the source at a path or
URL (``s3://...``) that the workers can open.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from loopwise.batch.scoring import Scored, Scorer, Source, read_rows
from loopwise.errors import ConfigurationError, LoopwiseError

_models: dict[tuple[str, bool], Scorer] = {}  # per worker: (version id, proba) -> scorer
_models_lock = threading.Lock()
_KEEP_MODELS = 4
_remote: Any = None


def require_ray() -> Any:
    """The ``ray`` module, or a ConfigurationError that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ConfigurationError(
            "executor='ray' needs Ray, which is not installed here: pip install 'loopwise[ray]'."
        ) from e
    return ray


@dataclass(frozen=True)
class _Job:
    """What every task of one job shares (put in the object store once)."""

    version_id: str
    package_dir: str
    package: Any  # ObjectRef of {relative path: bytes}, fetched only where package_dir is absent
    names: list[str] | None
    proba: bool
    source: str | None  # Parquet: the file the tasks read their rows from
    source_name: str  # as the user gave it, for error messages
    storage_options: dict[str, Any]
    chunk_rows: int


def run(
    reader: Source,
    package_dir: Path,
    version_id: str,
    names: list[str] | None,
    proba: bool,
    address: str | None,
) -> Iterator[tuple[pa.RecordBatch, Scored]]:
    """(chunk, its scored columns) in input order, scored by Ray tasks."""
    ray = require_ray()
    _connect(ray, address)
    task = _task(ray)
    job = _Job(
        version_id=version_id,
        package_dir=str(package_dir),
        package=ray.put(_package_files(package_dir)),
        names=names,
        proba=proba,
        source=reader.task_url,
        source_name=reader.url,
        storage_options=reader.options,
        chunk_rows=reader.chunk_rows,
    )
    job_ref = ray.put(job)
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    pending: deque[tuple[pa.RecordBatch, Any]] = deque()
    start = 0
    try:
        for batch in reader.chunks():
            end = start + batch.num_rows
            carried = None if job.source is not None else batch.select(names or batch.schema.names)
            pending.append((batch, task.remote(job_ref, start, end, carried)))
            start = end
            if len(pending) >= window:
                yield _result(ray, *pending.popleft())
        while pending:
            yield _result(ray, *pending.popleft())
    finally:
        for _, ref in pending:
            ray.cancel(ref)


def _connect(ray: Any, address: str | None) -> None:
    """Use the connected Ray; else connect to ``address``, or start a local Ray."""
    if ray.is_initialized():
        return
    options: dict[str, Any] = {"logging_level": logging.WARNING}
    if address is None:
        options["include_dashboard"] = False
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ConfigurationError(
            f"cannot connect to Ray at {address!r}: {e}. Give the address of a running "
            "cluster (ray://host:10001, or 'auto' on a cluster node), or leave it out to "
            "start Ray on this machine."
        ) from e


def _task(ray: Any) -> Any:
    global _remote
    if _remote is None:
        _remote = ray.remote(_score_chunk)
    return _remote


def _result(ray: Any, batch: pa.RecordBatch, ref: Any) -> tuple[pa.RecordBatch, Scored]:
    try:
        return batch, ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, LoopwiseError):
            raise cause from None
        raise


def _score_chunk(job: _Job, start: int, end: int, batch: pa.RecordBatch | None) -> Scored:
    """In a worker: score rows ``start`` to ``end`` (read here, or given as ``batch``)."""
    if batch is None:
        batch = read_rows(job.source, job.storage_options, job.names, start, end, job.chunk_rows)
    where = f"rows {start + 1:,}-{end:,} of {job.source_name!r}"
    return _scorer(job).columns(batch, where=where)


def _scorer(job: _Job) -> Scorer:
    key = (job.version_id, job.proba)
    with _models_lock:
        if key not in _models:
            from loopwise.registry.packaging import load_package

            root = Path(job.package_dir)
            if not (root / ".complete").is_file():
                root = _unpack(job)
            if len(_models) >= _KEEP_MODELS:  # a long-lived worker keeps the latest few
                _models.pop(next(iter(_models)))
            _models[key] = Scorer(load_package(root), job.names, job.proba)
        return _models[key]


def _package_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _unpack(job: _Job) -> Path:
    """The package written from the object store into this node's temp folder."""
    import ray

    root = Path(tempfile.gettempdir()) / "loopwise-ray-models" / job.version_id
    if (root / ".complete").is_file():
        return root
    staging = root.with_name(f"{job.version_id}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    for rel, data in ray.get(job.package).items():
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (staging / ".complete").touch()
    try:
        os.replace(staging, root)
    except OSError:  # another worker on this node finished first
        shutil.rmtree(staging, ignore_errors=True)
    return root
