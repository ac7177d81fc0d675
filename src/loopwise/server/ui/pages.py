"""The UI's pages: experiments, an experiment's runs table, a run, and runs side by side.

Each page calls the same service functions as the REST API and renders a template; the
metric charts fetch their points from :func:`history` (the downsampled history of
:func:`loopwise.server.routes.tracking.metric_history`, min/max/last per bucket) when
they are scrolled into view. Every caller's mistake (an unknown run or experiment, a bad
filter) is a page with the message and its 4xx status; without a valid token (once the
store has tokens) a page sends the browser to the login form (:mod:`.session`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from loopwise.errors import InvalidInput
from loopwise.server.access import store_of
from loopwise.server.downsample import MIN_POINTS
from loopwise.server.routes import artifacts as artifact_routes
from loopwise.server.routes import tracking as tracking_routes
from loopwise.server.ui import data_pages, models_pages, ops_pages, pipelines_pages
from loopwise.server.ui import previews as preview_service
from loopwise.server.ui.assets import STATIC_PREFIX, HashedStaticFiles
from loopwise.server.ui.guard import guarded_page
from loopwise.server.ui.render import is_htmx, render
from loopwise.server.ui.runs_table import TableState, build_table, empty_table, picked
from loopwise.server.ui.session import check_reader
from loopwise.server.ui.session import router as session_router
from loopwise.store import Store
from loopwise.tracking import run_artifacts
from loopwise.tracking import runs as run_service

__all__ = ["STATIC_PREFIX", "HashedStaticFiles", "router"]

router = APIRouter(include_in_schema=False)
router.include_router(session_router)
router.include_router(models_pages.router)
router.include_router(data_pages.router)
router.include_router(ops_pages.router)
router.include_router(pipelines_pages.router)

#: Points per chart line (the server keeps min, max and last per bucket beyond that).
CHART_POINTS = 1000
#: Runs one compare page may show.
MAX_COMPARE = 100
#: Artifacts listed on a run page.
MAX_LISTED_ARTIFACTS = 500


def run_url(run_id: str) -> str:
    """The UI's URL of a run."""
    return f"/runs/{quote(run_id, safe='')}"


def history_url(run_id: str, key: str) -> str:
    """Where a chart fetches a metric's downsampled points."""
    return f"{run_url(run_id)}/history/{quote(key)}?max_points={CHART_POINTS}"


@router.get("/")
def experiments_page(request: Request, store: Store = Depends(store_of)) -> Response:
    """Every experiment with its number of runs."""

    def build() -> Response:
        found = run_service.list_experiments(store)
        return render(request, "experiments.html.j2", experiments=found, title="Experiments")

    return guarded_page(request, build)


def _table_state(request: Request) -> TableState:
    query = request.query_params

    def keys(name: str) -> tuple[str, ...] | None:
        if name not in query:
            return None
        return picked(",".join(query.getlist(name)), name)

    return TableState(
        filter=query.get("filter", ""),
        order=query.get("order", ""),
        params=keys("params"),
        metrics=keys("metrics"),
        page_token=query.get("page_token") or None,
    )


@router.get("/experiments/{experiment}")
def runs_page(request: Request, experiment: str, store: Store = Depends(store_of)) -> Response:
    """An experiment's runs: filter, sort, pick columns, page on; htmx swaps the table."""

    def build() -> Response:
        found = run_service.get_experiment(store, experiment)
        state = _table_state(request)
        status, error = 200, None
        try:
            table = build_table(store, found.id, state)
        except InvalidInput as refused:  # a bad filter, order or token: shown above the form
            status, error, table = refused.http_status, str(refused), empty_table(state)
        context = {
            "experiment": found,
            "table": table,
            "error": error,
            "base": f"/experiments/{quote(found.id, safe='')}",
            "run_url": run_url,
        }
        if is_htmx(request):
            return render(request, "runs_table.html.j2", status=status, **context)
        return render(request, "runs.html.j2", status=status, title=found.name, **context)

    return guarded_page(request, build)


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, store: Store = Depends(store_of)) -> Response:
    """A run: params, tags, latest metrics with a chart each, artifacts with previews."""

    def build() -> Response:
        run = run_service.get_run(store, run_service.resolve_run_id(store, run_id))
        files = run_artifacts.list_artifacts(store, run.id)
        listed = preview_service.previews(store, run.id, files[:MAX_LISTED_ARTIFACTS])
        charts = [
            {"key": key, "series": [{"label": run.name, "url": history_url(run.id, key)}]}
            for key in sorted(run.metrics)
        ]
        return render(
            request,
            "run.html.j2",
            title=run.name,
            run=run,
            charts=charts,
            artifacts=listed,
            more_artifacts=max(0, len(files) - MAX_LISTED_ARTIFACTS),
        )

    return guarded_page(request, build)


@router.get("/runs/{run_id}/history/{key:path}")
def history(
    request: Request,
    run_id: str,
    key: str,
    max_points: int = Query(
        default=CHART_POINTS, ge=MIN_POINTS, le=tracking_routes.MAX_HISTORY_POINTS
    ),
    store: Store = Depends(store_of),
) -> Response:
    """A metric's downsampled points as JSON, for the charts (the API's answer)."""
    check_reader(request)
    return tracking_routes.metric_history(run_id, key, max_points, store)


@router.get("/runs/{run_id}/files/{path:path}")
def run_file(
    request: Request, run_id: str, path: str, store: Store = Depends(store_of)
) -> Response:
    """A run's file, streamed in a sandbox (as the API serves it), for previews."""
    check_reader(request)
    return artifact_routes.download_artifact(run_id, path, store)


def _compared_ids(request: Request, store: Store) -> list[str]:
    named = [p.strip() for v in request.query_params.getlist("runs") for p in v.split(",")]
    wanted = list(dict.fromkeys(p for p in named if p))
    if not 2 <= len(wanted) <= MAX_COMPARE:
        raise InvalidInput(
            f"Compare needs 2 to {MAX_COMPARE} runs; got {len(wanted)}. "
            "Pass their ids as runs=ID1,ID2 (or runs=ID1&runs=ID2)."
        )
    return list(dict.fromkeys(run_service.resolve_run_id(store, r) for r in wanted))


def _param_rows(found: list[Any]) -> list[dict[str, Any]]:
    keys = sorted({k for run in found for k in run.params})
    rows = []
    for key in keys:
        values = [run.params.get(key) for run in found]
        rows.append({"key": key, "values": values, "differs": len(set(values)) > 1})
    return rows


@router.get("/compare")
def compare_page(request: Request, store: Store = Depends(store_of)) -> Response:
    """Runs side by side: overlaid metric curves and a params table with the differences
    marked. ``runs`` names 2 to 100 runs (ids, names or ``runs:/`` references)."""

    def build() -> Response:
        found = [run_service.get_run(store, r) for r in _compared_ids(request, store)]
        keys = sorted({k for run in found for k in run.metrics})
        charts = [
            {
                "key": key,
                "series": [
                    {"label": run.name, "url": history_url(run.id, key)}
                    for run in found
                    if key in run.metrics
                ],
            }
            for key in keys
        ]
        return render(
            request,
            "compare.html.j2",
            title=f"Compare {len(found)} runs",
            runs=found,
            charts=charts,
            param_rows=_param_rows(found),
            run_url=run_url,
        )

    return guarded_page(request, build)
