"""Raw request bodies streamed to a file under the server's upload limit: how every upload
route takes its bytes (a run's file, a dataset version's Parquet, a model package, a frame
of predictions, an MLflow client's artifact).

Why one function: the limit must be checked the same way everywhere -- against the
declared ``Content-Length`` before anything is read, then as the body streams in, so a
client that lies about its length is cut off at the limit too -- and a refused or broken
upload must never leave a partial file behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from fastapi import Request

#: The largest upload unless the app sets ``app.state.max_upload_bytes``: 5 GiB.
MAX_UPLOAD_BYTES = 5 * 1024**3


def upload_limit(request: Request) -> int:
    """The app's upload limit in bytes."""
    return int(getattr(request.app.state, "max_upload_bytes", MAX_UPLOAD_BYTES))


async def receive(
    request: Request,
    too_large: Callable[[int], Exception],
    *,
    target: Path | None = None,
    prefix: str = "loopwise-upload-",
    suffix: str = "",
) -> Path:
    """Stream the body into ``target`` (a new temporary file unless given) and return its
    path; the caller removes it. ``too_large(limit)`` is raised (after the partial file is
    removed) when the body is declared or found to be longer than the limit."""
    limit = upload_limit(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    if target is None:
        handle, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)
        os.close(handle)
        target = Path(name)
    path = target
    try:
        with path.open("wb") as out:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


__all__ = ["MAX_UPLOAD_BYTES", "receive", "upload_limit"]
