"""Files attached to runs: stored once as content-addressed blobs, named per run.

``log_artifact("plot.png")`` puts the file's bytes under ``blobs/sha256/...`` in the
artifact store and records ``runs/<id>/artifacts/plot.png -> sha256`` in the metadata
database, so the same model file logged by a hundred runs is stored once.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select

from loopwise.clock import now_us, to_datetime
from loopwise.errors import InvalidInput, NotFound
from loopwise.store import Store
from loopwise.store.tables import artifacts
from loopwise.store.upsert import insert_on_conflict

ENTITY = "run"


@dataclass(frozen=True)
class ArtifactInfo:
    """One file attached to a run."""

    path: str
    size: int
    sha256: str
    created_at: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "created_at": self.created_at.isoformat(),
        }


def clean_artifact_path(path: str, *, run_id: str) -> str:
    """A normalised relative POSIX path; absolute paths and ``..`` are refused."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidInput(f"Artifact path for run {run_id} must be a non-empty string.")
    normal = posixpath.normpath(path.replace("\\", "/"))
    if normal.startswith("/") or normal == ".." or normal.startswith("../") or normal == ".":
        raise InvalidInput(
            f"Artifact path {path!r} of run {run_id} must be relative and stay inside the run "
            "(no leading '/', no '..'). Use a path such as 'plots/roc.png'."
        )
    return normal


def _record(store: Store, run_id: str, entries: list[tuple[str, str, int]]) -> None:
    from loopwise.tracking.runs import require_run

    now = now_us()
    rows = [
        {
            "entity_type": ENTITY,
            "entity_id": run_id,
            "path": path,
            "sha256": sha,
            "size": size,
            "created_at": now,
        }
        for path, sha, size in entries
    ]
    with store.db.write() as conn:
        require_run(conn, store, run_id)
        insert_on_conflict(
            conn,
            artifacts,
            rows,
            keys=["entity_type", "entity_id", "path"],
            update=["sha256", "size", "created_at"],
        )


def log_artifact(
    store: Store, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
) -> list[str]:
    """Attach a file, or every file under a folder, to a run; return the stored paths.

    A file lands at ``artifact_path/<file name>`` (or its name alone); a folder's files keep
    their paths relative to the folder.
    """
    source = Path(local_path)
    if not source.exists():
        raise NotFound(f"Cannot log artifact {str(source)!r} for run {run_id}: no such file.")
    prefix = clean_artifact_path(artifact_path, run_id=run_id) if artifact_path else ""
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file())
        names = [p.relative_to(source).as_posix() for p in files]
    else:
        files, names = [source], [source.name]
    entries = []
    for file, name in zip(files, names, strict=True):
        blob = store.artifacts.put_file(file)
        path = posixpath.join(prefix, name) if prefix else name
        entries.append((clean_artifact_path(path, run_id=run_id), blob.sha256, blob.size))
    if entries:
        _record(store, run_id, entries)
    return [path for path, _, _ in entries]


def log_bytes(store: Store, run_id: str, data: bytes, artifact_path: str) -> str:
    """Attach bytes as a file named ``artifact_path``."""
    path = clean_artifact_path(artifact_path, run_id=run_id)
    blob = store.artifacts.put_bytes(data)
    _record(store, run_id, [(path, blob.sha256, blob.size)])
    return path


def dict_bytes(data: Any, artifact_path: str) -> bytes:
    """Serialise a dictionary as JSON, or YAML when the name ends in .yaml/.yml."""
    if artifact_path.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_dump(data, sort_keys=False).encode()
    return json.dumps(data, indent=2, default=str).encode()


def list_artifacts(store: Store, run_id: str, prefix: str = "") -> list[ArtifactInfo]:
    """Files attached to a run, sorted by path, optionally under a folder ``prefix``."""
    query = (
        select(artifacts)
        .where(artifacts.c.entity_type == ENTITY)
        .where(artifacts.c.entity_id == run_id)
        .order_by(artifacts.c.path)
    )
    if prefix:
        folder = clean_artifact_path(prefix, run_id=run_id).rstrip("/")
        query = query.where(
            (artifacts.c.path == folder) | artifacts.c.path.startswith(folder + "/")
        )
    with store.db.read() as conn:
        rows = conn.execute(query).all()
    return [ArtifactInfo(r.path, r.size, r.sha256, to_datetime(r.created_at)) for r in rows]


def download_artifacts(
    store: Store, run_id: str, path: str = "", dst: str | os.PathLike[str] = "."
) -> Path:
    """Copy a run's file (or folder, or everything) into ``dst``; return the local path."""
    found = list_artifacts(store, run_id, path)
    if not found:
        raise NotFound(
            f"Run {run_id} has no artifact {path!r}. List them with lw.list_artifacts({run_id!r})."
        )
    root = Path(dst)
    for info in found:
        store.artifacts.get_blob(info.sha256, root / info.path)
    return root / clean_artifact_path(path, run_id=run_id) if path else root


def log_file(
    store: Store, run_id: str, local_path: str | os.PathLike[str], artifact_path: str
) -> ArtifactInfo:
    """Attach one file under exactly ``artifact_path`` (an upload's temp file keeps no
    meaningful name of its own)."""
    path = clean_artifact_path(artifact_path, run_id=run_id)
    blob = store.artifacts.put_file(local_path)
    _record(store, run_id, [(path, blob.sha256, blob.size)])
    return find_artifact(store, run_id, path)


def find_artifact(store: Store, run_id: str, path: str) -> ArtifactInfo:
    """The record of one file attached to a run; :class:`NotFound` when there is none."""
    clean = clean_artifact_path(path, run_id=run_id)
    with store.db.read() as conn:
        row = conn.execute(
            select(artifacts)
            .where(artifacts.c.entity_type == ENTITY)
            .where(artifacts.c.entity_id == run_id)
            .where(artifacts.c.path == clean)
        ).first()
    if row is None:
        raise NotFound(
            f"Run {run_id} has no artifact {path!r}. List them with lw.list_artifacts({run_id!r})."
        )
    return ArtifactInfo(row.path, row.size, row.sha256, to_datetime(row.created_at))


def open_artifact(store: Store, run_id: str, path: str) -> tuple[ArtifactInfo, IO[bytes]]:
    """One file attached to a run, opened for reading (the caller closes it), so a server
    streams it instead of holding it in memory."""
    info = find_artifact(store, run_id, path)
    return info, store.artifacts.open_blob(info.sha256)


def read_artifact(store: Store, run_id: str, path: str) -> bytes:
    """The bytes of one file attached to a run."""
    return store.artifacts.read_blob(find_artifact(store, run_id, path).sha256)
