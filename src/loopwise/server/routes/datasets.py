"""``/api/v1`` routes for datasets: versions, their profiles, schemas and validation
reports, over :mod:`loopwise.data.datasets` (read-only; datasets are logged through the
Python API).

A version is addressed by number or as ``latest``. The store keeps, per version, the
profile computed when it was logged and, when it was logged against a schema, that schema
and the validation report; the routes answer them as stored (non-finite numbers as null).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from loopwise.data import datasets as dataset_service
from loopwise.errors import InvalidInput, NotFound
from loopwise.server.access import needs, store_of
from loopwise.server.listing import MAX_VERSION, MaxResults, PageToken, finite, name_of, page
from loopwise.store import Store

router = APIRouter(tags=["datasets"])

DatasetName = Annotated[str, Path(description="The dataset's name, e.g. loans.")]
VersionText = Annotated[
    str,
    Path(
        pattern=r"^(latest|[0-9]{1,20})$",
        description="A version number (1, 2, 3 ...) or latest.",
    ),
]


def _dataset(name: str) -> str:
    return name_of("datasets", name)


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
    name: DatasetName, version: VersionText, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """One version, by number or ``latest``: rows, columns, column types, content hash,
    the run that logged it and whether it passed validation."""
    return _version(store, name, version).to_dict()


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
