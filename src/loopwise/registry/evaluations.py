"""Evaluations kept in the store, linked to the model version and dataset version scored.

The computation is :mod:`loopwise.evaluation`; this module resolves ``models:/`` and
``datasets:/`` references, stores the result, and lists a version's evaluations.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from loopwise.clock import now_us
from loopwise.evaluation.evaluate import Evaluation
from loopwise.evaluation.evaluate import evaluate as compute
from loopwise.ids import new_id
from loopwise.store import Store
from loopwise.store.lineage import Node, add_edge
from loopwise.store.tables import evaluations

EVALUATED_ON = "evaluated_on"


def save_evaluation(
    store: Store,
    evaluation: Evaluation,
    *,
    model_version_id: str | None,
    dataset_version_id: str | None,
    run_id: str | None,
) -> str:
    """Store an evaluation; return its id."""
    evaluation_id = new_id()
    with store.db.write() as conn:
        conn.execute(
            evaluations.insert().values(
                id=evaluation_id,
                model_version_id=model_version_id,
                dataset_version_id=dataset_version_id,
                run_id=run_id,
                task=evaluation.task,
                result=json.dumps(evaluation.to_dict(), allow_nan=False),
                created_at=now_us(),
            )
        )
        if model_version_id is not None and dataset_version_id is not None:
            add_edge(
                conn,
                Node("model_version", model_version_id),
                EVALUATED_ON,
                Node("dataset_version", dataset_version_id),
                {"evaluation_id": evaluation_id},
            )
    return evaluation_id


def evaluations_of(store: Store, model_version_id: str) -> list[Evaluation]:
    """Every stored evaluation of a model version, oldest first."""
    with store.db.read() as conn:
        rows = conn.execute(
            select(evaluations.c.result)
            .where(evaluations.c.model_version_id == model_version_id)
            .order_by(evaluations.c.id)
        ).all()
    return [Evaluation.from_dict(json.loads(row.result)) for row in rows]


class LenientModel:
    """A loaded package that ignores columns outside its signature (not missing ones).

    Evaluation data carries the target, slice columns and ids besides the features.
    """

    def __init__(self, loaded: Any) -> None:
        self._loaded = loaded
        if loaded.manifest.has_predict_proba:
            self.predict_proba = lambda data: loaded.predict_proba(data, strict=False)
        if hasattr(loaded.raw, "classes_"):
            self.classes_ = loaded.raw.classes_

    def predict(self, data: Any) -> Any:
        return self._loaded.predict(data, strict=False)

    def __getattr__(self, name: str) -> Any:  # input_example, manifest, signature, raw
        return getattr(self._loaded, name)


def evaluate_and_store(
    store: Store,
    model_or_uri: Any,
    data: Any,
    *,
    run_id: str | None,
    load: Any,
    **kwargs: Any,
) -> Evaluation:
    """Evaluate a model (object or ``models:/`` URI) on data (frame, file or ``datasets:/``).

    ``load`` turns a URI into a loaded model (the registry API's cached ``load_model``).
    """
    from loopwise.data.datasets import get_dataset_version, load_dataset
    from loopwise.registry.models import get_model_version

    version_id = dataset_id = None
    model = model_or_uri
    if isinstance(model_or_uri, str):
        version_id = get_model_version(store, model_or_uri).id
        model = LenientModel(load(model_or_uri))
    if isinstance(data, str) and data.startswith("datasets:/"):
        dataset_id = get_dataset_version(store, data).id
        data = load_dataset(store, data, as_="polars")
    result = compute(model, data, **kwargs)
    if version_id is not None or dataset_id is not None or run_id is not None:
        save_evaluation(
            store, result, model_version_id=version_id, dataset_version_id=dataset_id, run_id=run_id
        )
    return result
