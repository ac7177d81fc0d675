"""The module-level pipeline API: ``lw.step``, ``lw.pipeline``, ``lw.run_pipeline``...

Bound to the default store (the services, :mod:`.runner` and :mod:`.records`, take the
store explicitly).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopwise import context
from loopwise.pipelines import records, runner
from loopwise.pipelines.definition import Pipeline, pipeline, step
from loopwise.pipelines.records import PipelineInfo, PipelineRun, StepRun

__all__ = [
    "PipelineInfo",
    "PipelineRun",
    "StepRun",
    "get_pipeline_run",
    "list_pipeline_runs",
    "list_pipelines",
    "pipeline",
    "resume_pipeline",
    "run_pipeline",
    "step",
]


def run_pipeline(
    pipeline: Pipeline | str,
    params: Mapping[str, Any] | None = None,
    *,
    executor: str = "inprocess",
    max_workers: int | None = None,
    address: str | None = None,
    cache: bool = True,
    experiment: str | None = None,
) -> PipelineRun:
    """Run ``pipeline`` with ``params``; the finished :class:`PipelineRun`.

    ``executor``: ``"inprocess"`` (threads, default), ``"processes"`` or ``"ray"``
    (``address="ray://host:10001"`` for a cluster). ``cache=False`` runs every step.
    """
    return runner.run_pipeline(
        context.local_store(),
        pipeline,
        params,
        executor=executor,
        max_workers=max_workers,
        address=address,
        cache=cache,
        experiment=experiment,
    )


def resume_pipeline(
    run_id: str, *, executor: str | None = None, max_workers: int | None = None
) -> PipelineRun:
    """Run a failed pipeline run again, reusing every step that succeeded in it."""
    return runner.resume_pipeline(
        context.local_store(), run_id, executor=executor, max_workers=max_workers
    )


def get_pipeline_run(run_id: str) -> PipelineRun:
    """The pipeline run ``run_id`` with its steps."""
    return records.get_pipeline_run(context.local_store(), run_id)


def list_pipeline_runs(pipeline: str | None = None, *, limit: int = 100) -> list[PipelineRun]:
    """The latest pipeline runs, newest first (their steps: :func:`get_pipeline_run`)."""
    return records.list_pipeline_runs(context.local_store(), pipeline, limit=limit)


def list_pipelines() -> list[PipelineInfo]:
    """The pipelines this store has runs of."""
    return records.list_pipelines(context.local_store())
