"""``/api/v1`` routes for datasets: versions, their data, profiles, schemas and validation
reports, over :mod:`loopwise.data.datasets`.

A version is addressed by number or as ``latest``. The store keeps, per version, the
profile computed when it was logged and, when it was logged against a schema, that schema
and the validation report; the routes answer them as stored (non-finite numbers as null).

Uploading a version (``POST /datasets/{name}/versions``) takes the data as one Parquet
body (``Content-Type: application/vnd.apache.parquet``), streamed to a temporary file
under the server's upload limit (413 beyond it, as for a run's files). Why Parquet: it
carries every column type the Python API logs (zoned datetimes, categoricals, nested
values) exactly, so the server stores the same bytes, hence the same version, as a local
``lw.log_dataset`` of the same data. A schema to validate against travels inside that
file, as JSON under the key-value metadata key ``loopwise.schema``: one request, one
atomic write. The server validates the data against it and refuses it (400,
``data_validation_error``, with the whole ``report`` beside the message) or stores schema
and report with the version, exactly as the local call does.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import IO, Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from loopwise.data import datasets as dataset_service
from loopwise.errors import DataValidationError, InvalidInput, NotFound
from loopwise.server import uploads
from loopwise.server.access import check_run, needs, store_of
from loopwise.server.audit_log import note_entity
from loopwise.server.errors import error_code
from loopwise.server.listing import (
    MAX_VERSION,
    MaxResults,
    PageToken,
    Text,
    finite,
    name_of,
    page,
)
from loopwise.store import Store
from loopwise.tracking import runs as run_service

router = APIRouter(tags=["datasets"])

DatasetName = Annotated[str, Path(description="The dataset's name, e.g. loans.")]
VersionText = Annotated[
    str,
    Path(
        pattern=r"^(latest|[0-9]{1,20})$",
        description="A version number (1, 2, 3 ...) or latest.",
    ),
]
FullFlag = Annotated[
    bool,
    Query(
        description="Also the profile, the schema and the validation report: the whole "
        "DatasetVersion record of the Python API."
    ),
]

#: The media type of an upload's body and of a version's data.
PARQUET = "application/vnd.apache.parquet"
#: The Parquet key-value metadata key holding the schema (JSON) to validate an upload with.
SCHEMA_KEY = b"loopwise.schema"
#: What a version uploaded without a ``source`` records as its source.
UPLOADED = "<parquet upload>"
MAX_DESCRIPTION = 10_000
MAX_SOURCE = 4096
_CHUNK = 1024 * 1024


def _dataset(name: str) -> str:
    return name_of("datasets", name)


def _full(found: dataset_service.DatasetVersion) -> dict[str, Any]:
    """The whole record: ``to_dict`` with the profile, the schema and the report."""
    data = found.to_dict(with_profile=True)
    data["schema"], data["validation"] = found.schema, found.validation
    return finite(data)


def _version(store: Store, name: str, version: str) -> dataset_service.DatasetVersion:
    """The version ``version`` (a number or ``latest``) of dataset ``name``."""
    if version == "latest":
        return dataset_service.get_dataset_version(store, f"datasets:/{_dataset(name)}@latest")
    number = int(version)
    if not 1 <= number <= MAX_VERSION:
        raise InvalidInput(
            f"Dataset version {version} is out of range: use a number from 1 to {MAX_VERSION}, "
            "or latest."
        )
    return dataset_service.get_dataset_version(store, f"datasets:/{_dataset(name)}/{number}")


@router.get("/datasets", dependencies=[Depends(needs("read"))])
def list_datasets(
    max_results: MaxResults = 100,
    page_token: PageToken = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """Datasets by name, each with its number of versions and its latest version."""
    found, token = page(
        "datasets",
        dataset_service.list_datasets(store),
        lambda _, d: d.name,
        page_token,
        max_results,
    )
    return {"datasets": [d.to_dict() for d in found], "next_page_token": token}


@router.get("/datasets/{name}", dependencies=[Depends(needs("read"))])
def get_dataset(name: DatasetName, store: Store = Depends(store_of)) -> dict[str, Any]:
    """One dataset: description, number of versions, latest version and its rows."""
    _dataset(name)
    for info in dataset_service.list_datasets(store):
        if info.name == name:
            return info.to_dict()
    raise NotFound(f"No dataset named {name!r}; list the datasets with GET /api/v1/datasets.")


@router.get("/datasets/{name}/versions", dependencies=[Depends(needs("read"))])
def list_versions(
    name: DatasetName,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """The dataset's versions, oldest first (profiles left out: ask a version for its)."""
    versions = dataset_service.list_versions(store, _dataset(name))
    found, token = page(
        "dataset-versions", versions, lambda _, v: v.version, page_token, max_results
    )
    return {"versions": [v.to_dict() for v in found], "next_page_token": token}


@router.get("/datasets/{name}/versions/{version}", dependencies=[Depends(needs("read"))])
def get_version(
    name: DatasetName,
    version: VersionText,
    full: FullFlag = False,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """One version, by number or ``latest``: rows, columns, column types, content hash,
    the run that logged it and whether it passed validation (``full``: the whole record)."""
    found = _version(store, name, version)
    return _full(found) if full else found.to_dict()


@router.get("/datasets/{name}/versions/{version}/profile", dependencies=[Depends(needs("read"))])
def get_profile(
    name: DatasetName, version: VersionText, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """The version's profile: per-column statistics (counts, nulls, range, quantiles,
    histogram, most frequent values), as computed when it was logged."""
    found = _version(store, name, version)
    if found.profile is None:
        raise NotFound(f"{found.uri} has no profile stored; it was logged without one.")
    return {"dataset_version": found.uri, "profile": finite(found.profile.to_dict())}


@router.get("/datasets/{name}/versions/{version}/schema", dependencies=[Depends(needs("read"))])
def get_schema(
    name: DatasetName, version: VersionText, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """The schema the version was validated against when it was logged."""
    found = _version(store, name, version)
    if found.schema is None:
        raise NotFound(
            f"{found.uri} was logged without a schema; log data with "
            "lw.log_dataset(data, name=..., schema=schema) to keep one."
        )
    return {"dataset_version": found.uri, "schema": finite(found.schema)}


@router.get(
    "/datasets/{name}/versions/{version}/validation-reports",
    dependencies=[Depends(needs("read"))],
)
def list_validation_reports(
    name: DatasetName, version: VersionText, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """The validation reports kept for the version: the report of the check against its
    schema when it was logged (none when it was logged without a schema)."""
    found = _version(store, name, version)
    reports = [] if found.validation is None else [finite(found.validation)]
    return {"dataset_version": found.uri, "reports": reports}


# -- data: upload and download ---------------------------------------------------------------

Description = Annotated[
    Text | None,
    Query(max_length=MAX_DESCRIPTION, description="The dataset's description (a new name)."),
]
ProducingRun = Annotated[
    Text | None,
    Query(
        max_length=300,
        description="The run that produced or used the data (id, name or runs:/ reference); "
        "the version becomes an input of it in the lineage graph.",
    ),
]
Source = Annotated[
    Text | None,
    Query(
        max_length=MAX_SOURCE,
        description="Where the data came from (the client's file path or frame kind).",
    ),
]
_PARQUET_BODY = {
    "requestBody": {
        "required": True,
        "content": {PARQUET: {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "/datasets/{name}/versions",
    dependencies=[Depends(needs("write"))],
    openapi_extra=_PARQUET_BODY,
)
async def upload_version(
    name: DatasetName,
    request: Request,
    description: Description = None,
    run_id: ProducingRun = None,
    source: Source = None,
    store: Store = Depends(store_of),
) -> Any:
    """Store the Parquet body as a version of dataset ``name`` (identical data is the
    version already stored), validated first against the schema in the file's metadata
    when there is one. Answers the whole version record (``GET ...?full=true``)."""
    _dataset(name)
    dataset_service.check_name(name)
    _check_media_type(request.headers.get("content-type"))
    run = None if run_id is None else await run_in_threadpool(_producing_run, request, run_id)
    temp = await uploads.receive(
        request,
        lambda limit: _too_large(name, limit),
        prefix="loopwise-dataset-",
        suffix=".parquet",
    )
    try:
        found = await run_in_threadpool(
            _log_upload, store, temp, name, description, run, source or UPLOADED
        )
    except DataValidationError as e:
        return JSONResponse(
            {
                "error": {
                    "code": error_code(e),
                    "message": str(e),
                    "report": finite(e.report.to_dict()),
                }
            },
            status_code=e.http_status,
        )
    finally:
        temp.unlink()
    note_entity(request, found.uri)
    return _full(found)


def _check_media_type(header: str | None) -> None:
    kind = (header or "").split(";")[0].strip().lower()
    if kind != PARQUET:
        raise HTTPException(
            415,
            f"A dataset version is uploaded as Parquet; the body's Content-Type is "
            f"{(header or 'missing')[:100]!r}. Send the data as a Parquet file with "
            f"Content-Type: {PARQUET}.",
        )


def _producing_run(request: Request, run: str) -> str:
    """The id of the run ``run`` names (404 if none), within the caller's scope (403)."""
    resolved = run_service.resolve_run_id(store_of(request), run)
    check_run(request, resolved)
    return resolved


def _too_large(name: str, limit: int) -> HTTPException:
    return HTTPException(
        413,
        f"The data uploaded for dataset {name!r} is larger than this server's limit of "
        f"{limit:,} bytes; log it in parts (several datasets or versions), or ask the "
        "server's operator to raise the limit.",
    )


def _log_upload(
    store: Store,
    path: str,
    name: str,
    description: str | None,
    run_id: str | None,
    source: str,
) -> dataset_service.DatasetVersion:
    """What ``lw.log_dataset`` does, on the uploaded file: validate against the schema
    sent with it (DataValidationError on errors), then store."""
    frame, schema_text = _read_upload(path, name)
    schema = report = None
    if schema_text is not None:
        from loopwise.data.validation import validate

        schema = _schema_of(schema_text, name)
        report = validate(frame, schema)
        if not report.ok:
            raise DataValidationError(report, what=f"dataset {name!r}")
    return dataset_service.log_dataset(
        store,
        frame,
        name,
        description=description,
        run_id=run_id,
        schema=schema,
        validation=report,
        source=source,
    )


def _read_upload(path: str, name: str) -> tuple[pl.DataFrame, bytes | None]:
    """The uploaded frame and the schema in its metadata. Read with PyArrow (bounds
    checked; a damaged file is an error, not a crash), then taken into Polars without the
    file's metadata, whose text Polars assumes is UTF-8."""
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path).read()
        schema_text = (table.schema.metadata or {}).get(SCHEMA_KEY)
        frame = pl.from_arrow(table.replace_schema_metadata(None))
    except (Exception, pl.exceptions.PanicException) as e:
        raise InvalidInput(
            f"The data uploaded for dataset {name!r} is not a readable Parquet file "
            f"({type(e).__name__}: {str(e)[:300]}). Send the data written as Parquet "
            "(e.g. frame.write_parquet(path)), or log it with lw.log_dataset."
        ) from None
    if isinstance(frame, pl.Series):  # (typed so; a table always gives a frame)
        frame = frame.to_frame()
    return frame, schema_text


def _schema_of(text: bytes, name: str) -> Any:
    """The :class:`~loopwise.data.schema.Schema` sent (JSON) with an upload; a 400 naming
    what is wrong with it."""
    from loopwise.data.schema import Schema

    where = f"The schema sent with dataset {name!r} (Parquet metadata {SCHEMA_KEY.decode()!r})"
    try:
        return Schema.from_dict(json.loads(text))
    except InvalidInput as e:
        raise InvalidInput(f"{where} is not valid: {e}") from None
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        raise InvalidInput(
            f"{where} is not a schema document ({type(e).__name__}: {str(e)[:300]}); send "
            "json.dumps(schema.to_dict())."
        ) from None


@router.get(
    "/datasets/{name}/versions/{version}/data",
    dependencies=[Depends(needs("read"))],
    response_class=StreamingResponse,
    responses={200: {"content": {PARQUET: {}}, "description": "The version's data, Parquet."}},
)
def download_data(
    name: DatasetName,
    version: VersionText,
    columns: Annotated[
        list[Text] | None,
        Query(max_length=10_000, description="Only these columns (repeat the parameter)."),
    ] = None,
    store: Store = Depends(store_of),
) -> Response:
    """The version's data as Parquet, as stored (streamed), or only ``columns``."""
    found = _version(store, name, version)
    headers = {
        "content-disposition": f'attachment; filename="{found.name}-{found.version}.parquet"',
        "etag": f'"{found.sha256}"',
    }
    if not columns:
        headers["content-length"] = str(found.size)
        stream = store.artifacts.open_blob(found.sha256)
        return StreamingResponse(_chunks(stream), media_type=PARQUET, headers=headers)
    wanted = list(dict.fromkeys(columns))
    unknown = [c for c in wanted if c not in found.column_types]
    if unknown:
        known = ", ".join(map(repr, list(found.column_types)[:20]))
        raise InvalidInput(
            f"{found.uri} has no column {unknown[0][:200]!r}; its columns are {known}"
            f"{' ...' if len(found.column_types) > 20 else ''}."
        )
    with store.artifacts.open_blob(found.sha256) as stream:
        frame = pl.read_parquet(stream, columns=wanted)
    out = io.BytesIO()
    frame.write_parquet(out)
    headers["etag"] = f'W/"{found.sha256}"'
    return Response(out.getvalue(), media_type=PARQUET, headers=headers)


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(_CHUNK):
            yield chunk
