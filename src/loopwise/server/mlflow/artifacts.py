"""MLflow's proxied artifact API (``/api/2.0/mlflow-artifacts/artifacts``) on loopwise's
run artifacts: what an MLflow client's ``log_artifact(s)``, ``log_dict``, ``log_text``,
``log_figure``, ``list_artifacts`` and downloads call.

A run's artifact location is handed out as ``mlflow-artifacts:/<experiment>/<run>/
artifacts`` (:mod:`.entities`), so every path here starts with those three segments; the
rest is the file's path in the run, stored as any loopwise run file is (content-addressed,
listed by ``lw.list_artifacts``, shown in the web UI). Uploads stream to a temporary file
under the server's upload limit. A path that is not a run's (another artifact root) is
NOT_IMPLEMENTED; a run that does not exist, or whose experiment is not the path's, is a
404.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from loopwise.clock import now_us
from loopwise.errors import NotFound
from loopwise.server import uploads
from loopwise.server.access import check_experiment, check_run, store_of
from loopwise.server.mlflow import entities
from loopwise.server.mlflow import models as logged
from loopwise.server.mlflow.protocol import MlflowApiError, guarded, invalid, unsupported
from loopwise.store.tables import artifacts
from loopwise.store.upsert import insert_on_conflict
from loopwise.tracking import run_artifacts

_CHUNK = 1024 * 1024


def _split(path: str) -> tuple[str, str, str]:
    """(kind, id, the file's path inside) of ``<experiment>/<run>/artifacts/<path>`` (kind
    ``run``) or ``<experiment>/models/<model id>/artifacts/<path>`` (kind ``model``)."""
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts) or "\\" in path or "\x00" in path:
        raise invalid(f"Invalid path {path[:200]!r}: no '..', '.', backslash or NUL.")
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        return "model", parts[2], "/".join(parts[4:])
    if len(parts) < 3 or parts[2] != "artifacts":
        raise unsupported(f"Artifacts outside a run's or a model's artifacts/ ({path[:200]!r})")
    return "run", parts[1], "/".join(parts[3:])


def _target(request: Request, path: str) -> tuple[str, str, str]:
    """``_split`` checked: the run or logged model exists, in the path's experiment, and
    the caller's token reaches it."""
    kind, entity_id, inner = _split(path)
    store = store_of(request)
    experiment = path.split("/", 1)[0]
    if kind == "run":
        row = entities.run_row(store, entity_id)
        check_run(request, row.id)
    else:
        row = logged.model_row(store, entity_id)
        check_experiment(request, row.experiment_name)
    if entities.wire_experiment_id(row.experiment_name, row.experiment_id) != experiment:
        raise NotFound(f"{entity_id[:64]!r} is not in experiment {experiment[:64]!r}.")
    return kind, row.id, inner


def _store_file(request: Request, kind: str, entity_id: str, inner: str, temp: str) -> None:
    store = store_of(request)
    if kind == "run":
        run_artifacts.log_file(store, entity_id, temp, inner)
        return
    path = run_artifacts.clean_artifact_path(inner, run_id=entity_id)
    blob = store.artifacts.put_file(temp)
    row = {"path": path, "sha256": blob.sha256, "size": blob.size, "created_at": now_us()}
    with store.db.write() as conn:
        insert_on_conflict(
            conn,
            artifacts,
            [{"entity_type": logged.ENTITY, "entity_id": entity_id, **row}],
            keys=["entity_type", "entity_id", "path"],
            update=["sha256", "size", "created_at"],
        )


def _files(request: Request, kind: str, entity_id: str) -> list[tuple[str, int, str]]:
    """(path, size, sha256) of every file of the run or logged model."""
    store = store_of(request)
    if kind == "run":
        return [(a.path, a.size, a.sha256) for a in run_artifacts.list_artifacts(store, entity_id)]
    return [(r.path, r.size, r.sha256) for r in logged.files_of(store, entity_id)]


def _too_large(limit: int) -> MlflowApiError:
    return MlflowApiError(
        "INVALID_PARAMETER_VALUE",
        f"The file is larger than this server's limit of {limit:,} bytes.",
        413,
    )


async def upload(request: Request) -> Response:
    """``PUT .../artifacts/<experiment>/<run>/artifacts/<path>``: the body is the file."""
    path = request.path_params["artifact_path"]

    async def work() -> Any:
        kind, entity_id, inner = await run_in_threadpool(_target, request, path)
        if not inner:
            raise invalid("The artifact path names a folder, not a file in it.")
        temp = await uploads.receive(request, _too_large, prefix="loopwise-mlflow-")
        try:
            await run_in_threadpool(_store_file, request, kind, entity_id, inner, str(temp))
        finally:
            temp.unlink()
        return {}

    return await guarded(request, "write", work)


async def download(request: Request) -> Response:
    """``GET .../artifacts/<experiment>/<run>/artifacts/<path>``: the file, streamed."""
    path = request.path_params["artifact_path"]

    async def work() -> Any:
        kind, entity_id, inner = await run_in_threadpool(_target, request, path)
        files = await run_in_threadpool(_files, request, kind, entity_id)
        found = [(size, sha) for name, size, sha in files if name == inner]
        if not found:
            raise NotFound(f"No artifact {inner[:200]!r} under {path.split('/artifacts')[0]!r}.")
        size, sha = found[0]
        stream = store_of(request).artifacts.open_blob(sha)

        def chunks() -> Any:
            with stream:
                while chunk := stream.read(_CHUNK):
                    yield chunk

        return StreamingResponse(
            chunks(),
            media_type="application/octet-stream",
            headers={"content-length": str(size), "x-content-type-options": "nosniff"},
        )

    return await guarded(request, "read", work)


def _children(request: Request, path: str) -> dict[str, Any]:
    kind, entity_id, inner = _target(request, path)
    folder = inner.rstrip("/")
    entries: dict[str, dict[str, Any]] = {}
    for name, size, _ in _files(request, kind, entity_id):
        if folder and not name.startswith(folder + "/"):
            continue  # elsewhere, or the path names this very file: it has no children
        rest = name[len(folder) + 1 :] if folder else name
        child, _, deeper = rest.partition("/")
        if deeper:
            entries.setdefault(child, {"path": child, "is_dir": True})
        else:
            entries[child] = {"path": child, "is_dir": False, "file_size": size}
    return {"files": [entries[k] for k in sorted(entries)]}


async def list_files(request: Request) -> Response:
    """``GET .../artifacts?path=<experiment>/<run>/artifacts/<folder>``: its entries."""
    path = request.query_params.get("path")

    async def work() -> Any:
        if not path:
            raise unsupported("Listing the root of the artifact store")
        return await run_in_threadpool(_children, request, path)

    return await guarded(request, "read", work)


async def delete(request: Request) -> Response:
    async def work() -> Any:
        raise unsupported("Deleting artifacts")

    return await guarded(request, "write", work)


PREFIX = "/api/2.0/mlflow-artifacts/artifacts"
ROUTES = [
    ("PUT", PREFIX + "/{artifact_path:path}", upload),
    ("GET", PREFIX + "/{artifact_path:path}", download),
    ("GET", PREFIX, list_files),
    ("DELETE", PREFIX + "/{artifact_path:path}", delete),
]
