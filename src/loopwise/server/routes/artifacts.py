"""``/api/v1`` routes for a run's files: streamed upload, streamed download, listing.

An upload's body is raw bytes (any content type; :data:`loopwise.server.body.UPLOAD_PATHS`
lets it through unread). It is streamed to a temporary file, never held in memory, and
refused with a 413 once it passes the server's upload limit (``app.state.max_upload_bytes``,
:data:`loopwise.server.uploads.MAX_UPLOAD_BYTES` unless set). The file then goes
through the same service as ``lw.log_artifact``: stored once by content, recorded under
the run at the given path.

Downloads are streamed from the artifact store with a content type from the file's name.
They carry ``Content-Security-Policy: sandbox`` and ``nosniff``: an HTML report logged by a
run is shown, but its scripts cannot act as the API's origin.

Paths are relative and stay inside the run: ``..`` and absolute paths are a 400.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from typing import IO, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from loopwise.server import uploads
from loopwise.server.access import needs, store_of
from loopwise.store import Store
from loopwise.tracking import run_artifacts
from loopwise.tracking import runs as run_service

router = APIRouter(tags=["artifacts"])

_CHUNK = 1024 * 1024


@router.put(
    "/runs/{run_id}/artifacts/{path:path}", dependencies=[Depends(needs("write", run="run_id"))]
)
async def upload_artifact(
    run_id: str, path: str, request: Request, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """Store the request's raw body as the run's file at ``path`` (replacing one there)."""
    clean = run_artifacts.clean_artifact_path(path, run_id=run_id)
    resolved = await run_in_threadpool(run_service.resolve_run_id, store, run_id)
    temp = await uploads.receive(request, lambda limit: _too_large(clean, limit))
    try:
        info = await run_in_threadpool(run_artifacts.log_file, store, resolved, temp, clean)
    finally:
        temp.unlink()
    return info.to_dict()


def _too_large(path: str, limit: int) -> HTTPException:
    return HTTPException(
        413,
        f"The upload of {path!r} is larger than this server's limit of {limit:,} bytes; "
        "split it, or ask the server's operator to raise the limit.",
    )


@router.get(
    "/runs/{run_id}/artifacts/{path:path}", dependencies=[Depends(needs("read", run="run_id"))]
)
def download_artifact(
    run_id: str, path: str, store: Store = Depends(store_of)
) -> StreamingResponse:
    """The run's file at ``path``, streamed, with a content type from its name."""
    resolved = run_service.resolve_run_id(store, run_id)
    info, stream = run_artifacts.open_artifact(store, resolved, path)
    kind = mimetypes.guess_type(info.path)[0] or "application/octet-stream"
    return StreamingResponse(
        _chunks(stream),
        media_type=kind,
        headers={
            "content-length": str(info.size),
            "content-security-policy": "sandbox",
            "x-content-type-options": "nosniff",
            "etag": f'"{info.sha256}"',
        },
    )


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(_CHUNK):
            yield chunk


@router.get("/runs/{run_id}/artifacts", dependencies=[Depends(needs("read", run="run_id"))])
def list_artifacts(
    run_id: str,
    path: str = Query(default="", max_length=4096),
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """The run's files (path, size, sha256, created_at), sorted by path; ``path`` limits
    the list to one folder (or one file)."""
    resolved = run_service.resolve_run_id(store, run_id)
    found = run_artifacts.list_artifacts(store, resolved, path)
    return {"run_id": resolved, "artifacts": [info.to_dict() for info in found]}
