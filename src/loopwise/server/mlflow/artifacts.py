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

import os
import tempfile
from typing import Any

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from loopwise.errors import NotFound
from loopwise.server.access import check_run, store_of
from loopwise.server.mlflow import entities
from loopwise.server.mlflow.protocol import MlflowApiError, guarded, invalid, unsupported
from loopwise.server.routes.artifacts import MAX_UPLOAD_BYTES
from loopwise.tracking import run_artifacts

_CHUNK = 1024 * 1024


def _split(path: str) -> tuple[str, str]:
    """(run id, the file's path in the run) of ``<experiment>/<run>/artifacts/<path>``."""
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts) or "\\" in path or "\x00" in path:
        raise invalid(f"Invalid path {path[:200]!r}: no '..', '.', backslash or NUL.")
    if len(parts) < 3 or parts[2] != "artifacts":
        raise unsupported(f"Artifacts outside a run's artifacts/ folder ({path[:200]!r})")
    return parts[1], "/".join(parts[3:])


def _run_of(request: Request, path: str) -> tuple[str, str]:
    run_id, inner = _split(path)
    row = entities.run_row(store_of(request), run_id)
    experiment = path.split("/", 1)[0]
    if entities.wire_experiment_id(row.experiment_name, row.experiment_id) != experiment:
        raise NotFound(f"Run '{run_id}' is not in experiment {experiment[:64]!r}.")
    check_run(request, run_id)
    return run_id, inner


async def upload(request: Request) -> Response:
    """``PUT .../artifacts/<experiment>/<run>/artifacts/<path>``: the body is the file."""
    path = request.path_params["artifact_path"]

    async def work() -> Any:
        run_id, inner = await run_in_threadpool(_run_of, request, path)
        if not inner:
            raise invalid("The artifact path names the run's folder, not a file in it.")
        limit = int(getattr(request.app.state, "max_upload_bytes", MAX_UPLOAD_BYTES))
        handle, temp = tempfile.mkstemp(prefix="loopwise-mlflow-")
        try:
            size = 0
            with os.fdopen(handle, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise MlflowApiError(
                            "INVALID_PARAMETER_VALUE",
                            f"The file is larger than this server's limit of {limit:,} bytes.",
                            413,
                        )
                    out.write(chunk)
            await run_in_threadpool(run_artifacts.log_file, store_of(request), run_id, temp, inner)
        finally:
            os.unlink(temp)
        return {}

    return await guarded(request, "write", work)


async def download(request: Request) -> Response:
    """``GET .../artifacts/<experiment>/<run>/artifacts/<path>``: the file, streamed."""
    path = request.path_params["artifact_path"]

    async def work() -> Any:
        run_id, inner = await run_in_threadpool(_run_of, request, path)
        info, stream = await run_in_threadpool(
            run_artifacts.open_artifact, store_of(request), run_id, inner
        )

        def chunks() -> Any:
            with stream:
                while chunk := stream.read(_CHUNK):
                    yield chunk

        return StreamingResponse(
            chunks(),
            media_type="application/octet-stream",
            headers={"content-length": str(info.size), "x-content-type-options": "nosniff"},
        )

    return await guarded(request, "read", work)


def _children(request: Request, path: str) -> dict[str, Any]:
    run_id, inner = _run_of(request, path)
    folder = inner.rstrip("/")
    found = run_artifacts.list_artifacts(store_of(request), run_id, folder) if folder else None
    if found is None:
        found = run_artifacts.list_artifacts(store_of(request), run_id)
    entries: dict[str, dict[str, Any]] = {}
    for info in found:
        if info.path == folder:
            continue  # the path names a file: it has no children
        rest = info.path[len(folder) + 1 :] if folder else info.path
        name, _, deeper = rest.partition("/")
        if deeper:
            entries.setdefault(name, {"path": name, "is_dir": True})
        else:
            entries[name] = {"path": name, "is_dir": False, "file_size": info.size}
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
