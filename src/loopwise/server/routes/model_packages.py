"""``/api/v1`` routes for model packages: upload a package as a new version, download one.

An upload's body is the package as a tar archive (plain or compressed; the remote client
builds it with the same packaging code as ``lw.log_model``), streamed to a temporary file
and refused with a 413 once it passes the server's upload limit
(``app.state.max_upload_bytes``, as for a run's files). Its metadata comes in the query:
``run_id``, ``description`` and ``tags`` (a JSON object of text values). The archive is
unpacked with :func:`loopwise.registry.archive.extract_archive` (regular files at relative
paths only, at most ``app.state.max_unpacked_bytes`` bytes) and held to its manifest by
:func:`~loopwise.registry.archive.check_package` -- nothing uploaded is imported or
unpickled here -- then registered by the service ``lw.log_model`` uses, so the version is
linked to the run and to the run's input datasets exactly as a local one is.

A download is the version's package folder (fetched once into the server's ``cache_dir``)
as a plain tar written on the fly, with its length known up front.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from loopwise.errors import InvalidInput
from loopwise.registry import loading, saving
from loopwise.registry import models as model_service
from loopwise.registry.archive import archive_folder, check_package, extract_archive
from loopwise.server import uploads
from loopwise.server.access import check_run, needs, store_of
from loopwise.server.listing import MAX_VERSION, Text, name_of
from loopwise.store import Store
from loopwise.tracking import runs as run_service

router = APIRouter(tags=["registry"])

#: What an uploaded package may unpack to unless the app sets
#: ``app.state.max_unpacked_bytes``: 20 GiB (a gzip of zeros is tiny).
MAX_UNPACKED_BYTES = 20 * 1024**3
#: Tags of one upload at most, and the longest tag key and value.
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 1000, 250, 10_000

ModelName = Annotated[str, PathParam(description="The model's name, e.g. credit-risk.")]
VersionNumber = Annotated[
    int, PathParam(ge=1, le=MAX_VERSION, description="The version number (1, 2, 3 ...).")
]


def _unpacked_limit(request: Request) -> int:
    return int(getattr(request.app.state, "max_unpacked_bytes", MAX_UNPACKED_BYTES))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _tags(text: str | None) -> dict[str, str] | None:
    """The ``tags`` query parameter: a JSON object of text values."""
    if text is None:
        return None
    try:
        tags = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as e:
        raise InvalidInput(
            f"the tags parameter is not JSON ({e}); send an object such as "
            '{"team": "risk"}, URL-encoded.'
        ) from None
    if not isinstance(tags, dict) or len(tags) > MAX_TAGS:
        raise InvalidInput(
            f"the tags parameter must be a JSON object of at most {MAX_TAGS} tags; got "
            f"{type(tags).__name__}."
        )
    for key, value in tags.items():
        if not 1 <= len(key) <= MAX_TAG_KEY or "\x00" in key:
            raise InvalidInput(
                f"tag key {key[:100]!r} must be 1 to {MAX_TAG_KEY} characters, without NUL."
            )
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE or "\x00" in value:
            raise InvalidInput(
                f"tag {key!r} must have a text value of at most {MAX_TAG_VALUE:,} characters "
                f"(without NUL); got {str(value)[:100]!r}. Send every value as a string."
            )
    return tags


def _too_large(name: str, limit: int) -> HTTPException:
    return HTTPException(
        413,
        f"The package uploaded for model {name[:200]!r} is larger than this server's limit "
        f"of {limit:,} bytes; ask the server's operator to raise the limit.",
    )


def _register(
    store: Store,
    name: str,
    folder: Path,
    unpacked_limit: int,
    *,
    run_id: str | None,
    description: str | None,
    tags: dict[str, str] | None,
) -> dict[str, Any]:
    root = folder / "package"
    extract_archive(folder / "package.tar", root, max_bytes=unpacked_limit)
    check_package(root)
    version = saving.register_package(
        store, name, root, run_id=run_id, description=description, tags=tags
    )
    return version.to_dict(with_manifest=True)


@router.post(
    "/models/{name}/versions",
    dependencies=[Depends(needs("write", model="name"))],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_version(
    name: ModelName,
    request: Request,
    run_id: Annotated[
        Text | None, Query(max_length=200, description="The run that trained the model.")
    ] = None,
    description: Annotated[Text | None, Query(max_length=10_000)] = None,
    tags: Annotated[
        str | None, Query(max_length=100_000, description='A JSON object: {"team": "risk"}.')
    ] = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """Register the body (a model package as a tar archive) as the model's next version,
    linked to ``run_id`` and that run's input datasets. Answers the version as
    ``GET /models/{name}/versions/{version}`` does."""
    await run_in_threadpool(model_service.check_model_name, store, name)
    name_of("models", name)
    checked_tags = _tags(tags)
    if run_id is not None:
        run_id = await run_in_threadpool(run_service.resolve_run_id, store, run_id)
        await run_in_threadpool(check_run, request, run_id)
    unpacked_limit = _unpacked_limit(request)
    with tempfile.TemporaryDirectory(prefix="loopwise-upload-") as tmp:
        folder = Path(tmp)
        await uploads.receive(
            request, lambda limit: _too_large(name, limit), target=folder / "package.tar"
        )
        return await run_in_threadpool(
            _register,
            store,
            name,
            folder,
            unpacked_limit,
            run_id=run_id,
            description=description,
            tags=checked_tags,
        )


@router.get(
    "/models/{name}/versions/{version}/package",
    dependencies=[Depends(needs("read", model="name"))],
)
def download_package(
    name: ModelName, version: VersionNumber, store: Store = Depends(store_of)
) -> StreamingResponse:
    """The version's package as a tar archive, streamed (``lw.load_model`` unpacks it into
    its cache once per version)."""
    found = model_service.get_model_version(store, f"models:/{name_of('models', name)}/{version}")
    length, chunks = archive_folder(loading.package_dir(store, found))
    return StreamingResponse(
        chunks,
        media_type="application/x-tar",
        headers={
            "content-length": str(length),
            "content-disposition": f'attachment; filename="{found.name}-{found.version}.tar"',
            "etag": f'"{found.id}"',
        },
    )
