"""The UI's pipeline pages: the pipelines (last run, schedules), a pipeline's runs, and one
pipeline run: its steps in graph order as a table (status, cache, duration, attempts,
output linked to its page, a failed step's traceback folded), its params, trigger and
``resumed_from``, and its step graph as inline SVG.

The pages read what the REST routes read (:mod:`loopwise.server.routes.pipelines`), so a
bad name or page token is the same 4xx here. The graph is laid out here and drawn by its
template (``pipeline_graph.svg.j2``), as the reports' charts are
(:mod:`loopwise.reports.charts`): no script, so it needs nothing the page's CSP would
refuse, and it prints as it shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from loopwise.errors import InvalidReference
from loopwise.refs import parse_ref
from loopwise.server.access import store_of
from loopwise.server.routes import pipelines as pipeline_routes
from loopwise.server.ui.guard import guarded_page
from loopwise.server.ui.models_pages import dataset_version_url, version_url
from loopwise.server.ui.render import render
from loopwise.store import Store
from loopwise.tracking import runs as run_service

router = APIRouter(include_in_schema=False)

#: Runs one pipeline page lists (then a link to the next ones).
RUNS_PER_PAGE = 100
#: The step graph's box and gaps (px).
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 160, 34, 56, 14, 8
#: Characters of a step's name a box holds at 12 px.
BOX_CHARS = 20
#: Step status -> the page's status class (``static/ui.css``) and the graph's colours.
STATUS_CLASS = {
    "SUCCEEDED": "status-finished",
    "FAILED": "status-failed",
    "RUNNING": "status-running",
    "SKIPPED": "meta",
}
STATUS_FILL = {
    "SUCCEEDED": ("#e3f4e6", "#1f6b2c"),
    "FAILED": ("#ffe3e3", "#a61b1b"),
    "RUNNING": ("#e3ecfa", "#1c4f9c"),
    "SKIPPED": ("#f5f7fa", "#9aa5b1"),
}


def pipeline_url(name: str) -> str:
    """The UI's URL of a pipeline (its runs)."""
    return f"/pipelines/{quote(name, safe='')}"


def pipeline_run_url(run_id: str) -> str:
    """The UI's URL of a pipeline run."""
    return f"/pipeline-runs/{quote(run_id, safe='')}"


def run_url(run_id: str) -> str:
    """The UI's URL of a tracking run (a pipeline run's own, or a step's child run)."""
    return f"/runs/{quote(run_id, safe='')}"


def output_link(outputs: dict[str, str]) -> dict[str, str] | None:
    """Where a step's output is shown: ``{"text", "url"}`` (url empty for an inline value),
    or None when the step stored nothing."""
    kind, ref = outputs.get("kind"), outputs.get("ref")
    if not kind or ref is None:
        return None
    if kind == "value":
        text = ref if len(ref) <= 120 else ref[:117] + "..."
        return {"text": text, "url": ""}
    if kind == "pickle":  # <step run id>/<artifact path>
        run_id, _, path = ref.partition("/")
        return {"text": path or ref, "url": f"{run_url(run_id)}#artifacts"}
    try:
        parsed = parse_ref(ref)
    except InvalidReference:
        return {"text": ref, "url": ""}
    if parsed.version is None:
        return {"text": ref, "url": ""}
    if parsed.kind == "datasets":
        return {"text": ref, "url": dataset_version_url(parsed.name, parsed.version)}
    if parsed.kind == "models":
        return {"text": ref, "url": version_url(parsed.name, parsed.version)}
    return {"text": ref, "url": ""}


@dataclass(frozen=True)
class Box:
    """One step of the graph: its rectangle, label and colours."""

    name: str
    label: str
    status: str
    cached: bool
    x: int
    y: int
    fill: str
    stroke: str


@dataclass(frozen=True)
class Arrow:
    """An input edge: from the right side of a box to the left side of another; ``bend``
    (px, 0 for a straight line) curves an edge that skips columns below the boxes it
    passes, so it is not hidden behind them."""

    x1: int
    y1: int
    x2: int
    y2: int
    title: str
    bend: int = 0


def graph_layout(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Boxes in columns by depth (a step sits one column right of its deepest input), in
    graph order down each column, and an arrow per input: what ``pipeline_graph.svg.j2``
    draws. Inputs naming no recorded step (a run cut short) are left out."""
    known = {s["name"]: s for s in steps}
    depth: dict[str, int] = {}

    def depth_of(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in depth:
            parents = [
                p
                for ps in known[name]["inputs"].values()
                for p in ps
                if p in known and p not in seen
            ]
            depth[name] = 1 + max((depth_of(p, seen | {name}) for p in parents), default=-1)
        return depth[name]

    columns: dict[int, list[str]] = {}
    for step in steps:
        columns.setdefault(depth_of(step["name"]), []).append(step["name"])
    where: dict[str, tuple[int, int]] = {}
    for column, names in columns.items():
        for row, name in enumerate(names):
            where[name] = (PAD + column * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    boxes = []
    for step in steps:
        x, y = where[step["name"]]
        fill, stroke = STATUS_FILL.get(step["status"], STATUS_FILL["SKIPPED"])
        name = step["name"]
        label = name if len(name) <= BOX_CHARS else name[: BOX_CHARS - 1] + "…"
        boxes.append(Box(name, label, step["status"], step["cached"], x, y, fill, stroke))
    arrows = []
    for step in steps:
        x2, y2 = where[step["name"]]
        for argument, parents in step["inputs"].items():
            for parent in parents:
                if parent not in where:
                    continue
                x1, y1 = where[parent]
                skipped = depth[step["name"]] - depth[parent] > 1
                arrows.append(
                    Arrow(
                        x1 + BOX_W,
                        y1 + BOX_H // 2,
                        x2 - 2,
                        y2 + BOX_H // 2,
                        f"{parent} → {step['name']} ({argument})",
                        bend=BOX_H + GAP_Y if skipped else 0,
                    )
                )
    width = PAD * 2 + (max(columns, default=0) + 1) * (BOX_W + GAP_X) - GAP_X
    tallest = max((len(names) for names in columns.values()), default=1)
    height = PAD * 2 + tallest * (BOX_H + GAP_Y) - GAP_Y
    height = max([height] + [max(a.y1, a.y2) + a.bend // 2 + PAD for a in arrows])
    return {
        "boxes": boxes,
        "arrows": arrows,
        "width": width,
        "height": height,
        "box_w": BOX_W,
        "box_h": BOX_H,
    }


@router.get("/pipelines")
def pipelines_page(request: Request, store: Store = Depends(store_of)) -> Response:
    """Every pipeline with its runs, last run (status, when) and schedules."""

    def build() -> Response:
        found = pipeline_routes.pipelines_overview(store, None)
        return render(
            request,
            "pipelines.html.j2",
            title="Pipelines",
            pipelines=found,
            pipeline_url=pipeline_url,
            pipeline_run_url=pipeline_run_url,
        )

    return guarded_page(request, build)


@router.get("/pipelines/{name}")
def pipeline_page(request: Request, name: str, store: Store = Depends(store_of)) -> Response:
    """A pipeline's runs, newest first, 100 at a time; its schedules with their latest
    ticks."""

    def build() -> Response:
        pipeline_id = pipeline_routes._pipeline_id(store, name)
        page_token = request.query_params.get("page_token") or None
        found, token = pipeline_routes.runs_page(
            store,
            pipeline_id,
            f"pipeline-runs:{pipeline_id}",
            allowed=None,
            max_results=RUNS_PER_PAGE,
            page_token=page_token[:1000] if page_token else None,
        )
        schedules = pipeline_routes.pipeline_schedules(name, request, 5, store)["schedules"]
        return render(
            request,
            "pipeline.html.j2",
            title=name,
            name=name,
            runs=found,
            schedules=schedules,
            next_url=f"{pipeline_url(name)}?page_token={quote(token)}" if token else None,
            pipeline_run_url=pipeline_run_url,
        )

    return guarded_page(request, build)


@router.get("/pipeline-runs/{run_id:path}")
def pipeline_run_page(request: Request, run_id: str, store: Store = Depends(store_of)) -> Response:
    """A pipeline run: its steps as a table and a graph, its params and how it started."""

    def build() -> Response:
        run = pipeline_routes.pipeline_run(store, run_service.resolve_run_id(store, run_id))
        steps = [
            {
                **step,
                "status_class": STATUS_CLASS.get(step["status"], "meta"),
                "output": output_link(step["outputs"]),
                "error_line": (step["error"] or "").strip().splitlines()[-1:] or ["failed"],
            }
            for step in run["steps"]
        ]
        return render(
            request,
            "pipeline_run.html.j2",
            title=f"{run['pipeline']} · run {run['id']}",
            run=run,
            steps=steps,
            graph=graph_layout(run["steps"]),
            status_class=STATUS_CLASS,
            pipeline_url=pipeline_url,
            pipeline_run_url=pipeline_run_url,
            run_url=run_url,
        )

    return guarded_page(request, build)
