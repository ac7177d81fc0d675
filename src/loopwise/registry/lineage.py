"""``model_lineage``: everything behind a model version, in one call.

Follows the lineage graph from a version to the run that produced it (its params,
metrics, code version and environment) and to the dataset versions it was trained on
(recorded on the version, or as inputs of its run), plus its stored evaluations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from loopwise.data.datasets import DatasetVersion, dataset_inputs, get_dataset_version
from loopwise.registry.models import ENTITY, PRODUCED_BY, TRAINED_ON, get_model_version
from loopwise.registry.records import ModelVersion
from loopwise.store import Store
from loopwise.store.lineage import Node, edges
from loopwise.store.tables import dataset_versions, datasets, evaluations
from loopwise.tracking.records import Run
from loopwise.tracking.runs import get_run


@dataclass(frozen=True)
class ModelLineage:
    """A version, the run behind it, its training data and its evaluations.

    ``parent_run`` is the run that started the version's run: for a model a pipeline
    trained, the pipeline run (the version's run is then the step's run, whose
    ``loopwise.step`` tag names the step)."""

    version: ModelVersion
    run: Run | None
    datasets: list[DatasetVersion] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    parent_run: Run | None = None

    @property
    def pipeline_step(self) -> str | None:
        """The pipeline step that trained the version (None when no pipeline did)."""
        return None if self.run is None else self.run.tags.get("loopwise.step")

    @property
    def code_version(self) -> dict[str, Any] | None:
        """Git commit, branch and dirty flag of the training code, if recorded."""
        if self.run is None or not self.run.environment:
            return None
        return self.run.environment.get("git")

    def __repr__(self) -> str:
        # one line: the run's params, metrics and environment stay in to_dict()
        run = "None" if self.run is None else self.run.id
        if self.run is not None and self.run.name:
            run = f"{self.run.name!r} ({self.run.id})"
        return (
            f"ModelLineage({self.version.uri}, run={run}, datasets={len(self.datasets)}, "
            f"evaluations={len(self.evaluations)})"
        )

    def to_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            "model_version": self.version.to_dict(),
            "run": None
            if run is None
            else {
                "id": run.id,
                "name": run.name,
                "experiment": run.experiment,
                "status": str(run.status),
                "params": run.params,
                "metrics": {k: (None if v != v else v) for k, v in run.metrics.items()},
                "tags": run.tags,
            },
            "code_version": self.code_version,
            "environment": None
            if run is None or not run.environment
            else {
                k: run.environment.get(k)
                for k in ("python", "os", "host", "cpu", "memory_bytes", "gpus", "entry_point")
            },
            "datasets": [d.to_dict() for d in self.datasets],
            "evaluations": self.evaluations,
            "parent_run": None
            if self.parent_run is None
            else {
                "id": self.parent_run.id,
                "name": self.parent_run.name,
                "experiment": self.parent_run.experiment,
                "status": str(self.parent_run.status),
                "tags": self.parent_run.tags,
            },
            "pipeline_step": self.pipeline_step,
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        run: Run | None,
        datasets: Sequence[DatasetVersion] = (),
        parent_run: Run | None = None,
    ) -> ModelLineage:
        """The lineage :meth:`to_dict` described, with the full ``run`` and ``datasets``
        records given by the caller: the document holds only a summary of them (the run's
        params, metrics and tags; each dataset version without its profile), so the remote
        client reads them from their own routes and passes them here."""
        return cls(
            version=ModelVersion.from_dict(data["model_version"]),
            run=run,
            datasets=list(datasets),
            evaluations=[dict(e) for e in data.get("evaluations") or []],
            parent_run=parent_run,
        )


def model_lineage(store: Store, uri: str) -> ModelLineage:
    """The run, params, metrics, code version, environment and data behind a version."""
    version = get_model_version(store, uri)
    node = Node(ENTITY, version.id)
    with store.db.read() as conn:
        out = edges(conn, node, direction="out")
        eval_rows = conn.execute(
            select(evaluations.c.id, evaluations.c.result, evaluations.c.dataset_version_id)
            .where(evaluations.c.model_version_id == version.id)
            .order_by(evaluations.c.id)
        ).all()
        trained_on = [e.dst.id for e in out if e.relation == TRAINED_ON]
        names = {
            row.id: f"datasets:/{row.name}/{row.version}"
            for row in conn.execute(
                select(dataset_versions.c.id, datasets.c.name, dataset_versions.c.version)
                .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
                .where(dataset_versions.c.id.in_(trained_on))
            )
        }
    run_ids = [e.dst.id for e in out if e.relation == PRODUCED_BY] or (
        [version.run_id] if version.run_id else []
    )
    run = get_run(store, run_ids[0]) if run_ids else None
    found: dict[str, DatasetVersion] = {}
    for dataset_id in trained_on:
        if dataset_id in names:
            found[dataset_id] = get_dataset_version(store, names[dataset_id])
    if run is not None:
        for dv in dataset_inputs(store, run.id):
            found.setdefault(dv.id, dv)
    evals = []
    for row in eval_rows:
        result = json.loads(row.result)
        result["id"] = row.id
        result["dataset_version_id"] = row.dataset_version_id
        evals.append(result)
    parent = None
    if run is not None and run.parent_run_id is not None:
        parent = get_run(store, run.parent_run_id)
    return ModelLineage(version, run, list(found.values()), evals, parent)
