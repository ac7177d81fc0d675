"""The UI's model registry pages: the models, a model (versions with their aliases, the
alias timeline, promotion decisions check by check) and a version (its run, lineage and
evaluations with a per-slice bar chart).

The pages call the services the REST routes call (:mod:`loopwise.server.routes.registry`);
the slice charts are the reports' inline SVG (:func:`loopwise.reports.charts.slice_bars_svg`),
so they need no script. Names and numbers in paths are checked as the API checks them: a
name a reference cannot hold or a version out of range is a 400 page, an unknown one a 404.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from loopwise.errors import InvalidInput
from loopwise.registry import models as model_service
from loopwise.registry.evaluations import stored_evaluations
from loopwise.registry.lineage import model_lineage
from loopwise.registry.promotion_history import promotion_history
from loopwise.server.access import store_of
from loopwise.server.listing import MAX_VERSION, name_of
from loopwise.server.routes.registry import _registered
from loopwise.server.ui.guard import guarded_page
from loopwise.server.ui.render import render
from loopwise.store import Store

router = APIRouter(include_in_schema=False)

#: Slice metrics charted per evaluation (the others are in the table).
CHARTED = ("accuracy", "recall", "precision", "f1", "roc_auc", "rmse", "mae", "r2")


def model_url(name: str) -> str:
    """The UI's URL of a model."""
    return f"/models/{quote(name, safe='')}"


def version_url(name: str, version: int) -> str:
    """The UI's URL of a model version."""
    return f"{model_url(name)}/versions/{version}"


def dataset_version_url(name: str, version: int) -> str:
    """The UI's URL of a dataset version."""
    return f"/datasets/{quote(name, safe='')}/versions/{version}"


def _number(text: str) -> int:
    """A version number from a path, 400 when it is not one in 1..MAX_VERSION."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_VERSION:
        raise InvalidInput(
            f"Model version {text[:40]!r} is not a version number: use a number from 1 to "
            f"{MAX_VERSION}."
        )
    return int(text)


@router.get("/models")
def models_page(request: Request, store: Store = Depends(store_of)) -> Response:
    """Every registered model with its number of versions and its aliases."""

    def build() -> Response:
        found = model_service.list_models(store)
        return render(request, "models.html.j2", title="Models", models=found, model_url=model_url)

    return guarded_page(request, build)


@router.get("/models/{name}")
def model_page(request: Request, name: str, store: Store = Depends(store_of)) -> Response:
    """A model: its versions with alias badges, the alias timeline, promotion decisions."""

    def build() -> Response:
        model = _registered(store, name_of("models", name))
        return render(
            request,
            "model.html.j2",
            title=model.name,
            model=model,
            versions=model_service.list_versions(store, model.name),
            moves=model_service.alias_history(store, model.name, None),
            decisions=promotion_history(store, model.name),
            version_url=version_url,
        )

    return guarded_page(request, build)


def slice_charts(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """One SVG bar chart per (slice column, metric) of an evaluation, slices flagged when
    they fall below the overall figure."""
    from loopwise.reports.charts import slice_bars_svg

    rows = evaluation.get("slice_metrics") or []
    overall = evaluation.get("metrics") or {}
    charts = []
    for column in dict.fromkeys(r["slice_column"] for r in rows):
        of_column = [r for r in rows if r["slice_column"] == column]
        for metric in CHARTED:
            if metric not in overall or not any(metric in r for r in of_column):
                continue
            values = [_float(r.get(metric)) for r in of_column]
            whole = _float(overall[metric])
            flags = [not math.isnan(v) and v < whole for v in values]
            labels = [str(r["slice_value"]) for r in of_column]
            charts.append(
                {
                    "column": column,
                    "metric": metric,
                    "svg": slice_bars_svg(labels, values, whole, flags),
                }
            )
    return charts


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


@router.get("/models/{name}/versions/{version}")
def version_page(
    request: Request, name: str, version: str, store: Store = Depends(store_of)
) -> Response:
    """A model version: its run, params, training data (linked), evaluations per slice."""

    def build() -> Response:
        uri = f"models:/{name_of('models', name)}/{_number(version)}"
        lineage = model_lineage(store, uri)
        found = lineage.version
        evaluations = [e.to_dict() for e in stored_evaluations(store, found.id)]
        for evaluation in evaluations:
            evaluation["charts"] = slice_charts(evaluation)
        return render(
            request,
            "model_version.html.j2",
            title=f"{found.name} v{found.version}",
            version=found,
            lineage=lineage,
            evaluations=evaluations,
            model_url=model_url,
            dataset_version_url=dataset_version_url,
        )

    return guarded_page(request, build)
