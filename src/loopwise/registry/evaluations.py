"""Evaluations kept in the store, linked to the model version and dataset version scored.

The computation is :mod:`loopwise.evaluation`; this module resolves ``models:/`` and
``datasets:/`` references, stores the result, and lists a version's evaluations — each
distinct result once (:func:`stored_evaluations`), as every promotion attempt stores the
candidate's evaluation again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from loopwise.clock import now_us, to_datetime
from loopwise.evaluation.evaluate import Evaluation
from loopwise.evaluation.evaluate import evaluate as compute
from loopwise.ids import new_id
from loopwise.store import Store
from loopwise.store.lineage import Node, add_edge
from loopwise.store.tables import dataset_versions, datasets, evaluations

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


@dataclass(frozen=True)
class StoredEvaluation:
    """One evaluation result of a model version, however many times it was stored.

    ``promote`` stores the candidate's evaluation at every attempt, so the same result on
    the same data can be stored again and again; it is listed once, with its ``count``.
    ``document`` is :meth:`Evaluation.to_dict` as stored (the first copy).
    """

    document: dict[str, Any]
    dataset_version_id: str | None
    dataset_uri: str | None
    ids: tuple[str, ...]
    first_at: datetime
    last_at: datetime

    @property
    def count(self) -> int:
        """How many times this result was stored."""
        return len(self.ids)

    @property
    def data(self) -> str:
        """The data scored: its ``datasets:/`` reference, or what is known of data that was
        passed as a frame or a file rather than a dataset version (its row count)."""
        if self.dataset_uri is not None:
            return self.dataset_uri
        if self.dataset_version_id is not None:  # the version was deleted since
            return f"dataset version {self.dataset_version_id}"
        n = self.document.get("n")
        return f"unversioned data ({n:,} rows)" if isinstance(n, int) else "unversioned data"

    def to_dict(self) -> dict[str, Any]:
        """The stored document with where and when it was stored (``id``: the first copy)."""
        return {
            **self.document,
            "id": self.ids[0],
            "ids": list(self.ids),
            "count": self.count,
            "dataset_version_id": self.dataset_version_id,
            "data": self.data,
            "first_at": self.first_at.isoformat(),
            "last_at": self.last_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredEvaluation:
        """The record :meth:`to_dict` wrote (a server's answer): the document is what is
        left once where and when it was stored are taken out."""
        placed = {"id", "ids", "count", "dataset_version_id", "data", "first_at", "last_at"}
        scored = data.get("data")
        versioned = isinstance(scored, str) and scored.startswith("datasets:/")
        return cls(
            document={k: v for k, v in data.items() if k not in placed},
            dataset_version_id=data.get("dataset_version_id"),
            dataset_uri=scored if versioned else None,
            ids=tuple(data.get("ids") or (data["id"],)),
            first_at=datetime.fromisoformat(data["first_at"]),
            last_at=datetime.fromisoformat(data["last_at"]),
        )


def _same_result(document: dict[str, Any]) -> str:
    """What makes two stored documents the same result (not the loopwise that wrote it)."""
    return json.dumps(
        {k: v for k, v in document.items() if k != "loopwise_version"}, sort_keys=True
    )


def stored_evaluations(store: Store, model_version_id: str) -> list[StoredEvaluation]:
    """The distinct evaluation results stored for a model version, in the order they were
    first stored: one entry per (data, result), however many times it was stored."""
    e = evaluations.c
    query = (
        select(e.id, e.result, e.dataset_version_id, e.created_at, datasets.c.name,
               dataset_versions.c.version)
        .outerjoin(dataset_versions, dataset_versions.c.id == e.dataset_version_id)
        .outerjoin(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(e.model_version_id == model_version_id)
        .order_by(e.created_at, e.id)
    )  # fmt: skip
    with store.db.read() as conn:
        rows = conn.execute(query).all()
    groups: dict[tuple[str | None, str], list[Any]] = {}
    documents: dict[tuple[str | None, str], dict[str, Any]] = {}
    for row in rows:
        document = json.loads(row.result)
        key = (row.dataset_version_id, _same_result(document))
        groups.setdefault(key, []).append(row)
        documents.setdefault(key, document)
    found = []
    for key, group in groups.items():
        first = group[0]
        uri = None if first.name is None else f"datasets:/{first.name}/{first.version}"
        found.append(
            StoredEvaluation(
                document=documents[key],
                dataset_version_id=first.dataset_version_id,
                dataset_uri=uri,
                ids=tuple(str(r.id) for r in group),
                first_at=to_datetime(first.created_at),
                last_at=to_datetime(group[-1].created_at),
            )
        )
    return found


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
