"""The UI's dataset pages: the datasets, a dataset's versions, and a version (its profile
column by column with a small histogram each, its schema and its validation report).

The pages read what the REST routes read (:mod:`loopwise.server.routes.datasets`): the
profile, schema and report stored when the version was logged. Histograms are the reports'
inline SVG (:func:`loopwise.reports.charts.histogram_svg`), drawn from the profile's stored
bins, so a page needs neither the data nor a script.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from loopwise.data import datasets as dataset_service
from loopwise.errors import NotFound
from loopwise.server.access import store_of
from loopwise.server.listing import name_of
from loopwise.server.routes.datasets import _version
from loopwise.server.ui.guard import guarded_page
from loopwise.server.ui.models_pages import dataset_version_url
from loopwise.server.ui.render import render
from loopwise.store import Store

router = APIRouter(include_in_schema=False)

#: Columns whose histogram a version page draws (the table lists them all).
MAX_HISTOGRAMS = 200


def dataset_url(name: str) -> str:
    """The UI's URL of a dataset."""
    from urllib.parse import quote

    return f"/datasets/{quote(name, safe='')}"


@router.get("/datasets")
def datasets_page(request: Request, store: Store = Depends(store_of)) -> Response:
    """Every dataset with its number of versions and the latest's rows."""

    def build() -> Response:
        found = dataset_service.list_datasets(store)
        return render(
            request, "datasets.html.j2", title="Datasets", datasets=found, dataset_url=dataset_url
        )

    return guarded_page(request, build)


@router.get("/datasets/{name}")
def dataset_page(request: Request, name: str, store: Store = Depends(store_of)) -> Response:
    """A dataset's versions, newest first."""

    def build() -> Response:
        checked = name_of("datasets", name)
        versions = dataset_service.list_versions(store, checked)
        if not versions:
            raise NotFound(f"No dataset named {checked!r}; the datasets page lists them.")
        return render(
            request,
            "dataset.html.j2",
            title=checked,
            name=checked,
            versions=versions,
            dataset_version_url=dataset_version_url,
        )

    return guarded_page(request, build)


def profile_rows(profile: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The profile's columns, each with an SVG histogram when the profile kept bins."""
    from loopwise.reports.charts import REFERENCE_COLOR, histogram_svg

    if profile is None:
        return []
    rows = []
    for i, column in enumerate(profile.get("columns") or []):
        bins = column.get("histogram")
        svg = None
        if bins and i < MAX_HISTOGRAMS and bins.get("counts"):
            svg = histogram_svg(
                bins["edges"],
                [(str(column["name"]), bins["counts"], REFERENCE_COLOR)],
                width=200,
                height=60,
            )
        rows.append({**column, "svg": svg})
    return rows


@router.get("/datasets/{name}/versions/{version}")
def dataset_version_page(
    request: Request, name: str, version: str, store: Store = Depends(store_of)
) -> Response:
    """A dataset version: per-column profile with histograms, schema, validation report."""

    def build() -> Response:
        if version != "latest" and not (version.isdigit() and len(version) <= 20):
            raise NotFound(
                f"No version {version[:40]!r} of dataset {name[:100]!r}: a version is a "
                "number (1, 2, 3 ...) or latest."
            )
        found = _version(store, name, version)
        profile = found.profile.to_dict() if found.profile is not None else None
        return render(
            request,
            "dataset_version.html.j2",
            title=f"{found.name} v{found.version}",
            version=found,
            columns=profile_rows(profile),
            schema=found.schema,
            validation=found.validation,
            dataset_url=dataset_url,
        )

    return guarded_page(request, build)
