"""MLflow's run inputs: ``runs/log-inputs`` -- ``mlflow.log_input(dataset, context=...)``,
the datasets MLflow's autologging records, MLflow 3's logged models used by a run -- and
the ``inputs`` of a run's message (:func:`loopwise.server.mlflow.entities.run_messages`).

MLflow sends a dataset's metadata, never its rows: its name, the digest MLflow computed
from the data, where the data lives (``source_type``, ``source``), its schema and profile.
loopwise keeps them as sent (:mod:`loopwise.interop.mlflow_inputs`, which the MLflow
importer shares): the same dataset (name and digest) logged again to a run replaces its
tags, as MLflow keeps one input per dataset and run. A model input must name a logged
model this server knows.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from loopwise.interop.mlflow_inputs import input_rows, write_inputs
from loopwise.server.access import check_experiment, store_of
from loopwise.server.mlflow import models as logged
from loopwise.server.mlflow.protocol import endpoint, invalid, items, run_id_of, text
from loopwise.server.mlflow.tracking import _writable_run

#: MLflow's own limits on a dataset's fields (its database columns), and on input tags.
DATASET_FIELDS = {
    "name": (500, True),
    "digest": (36, True),
    "source_type": (36, True),
    "source": (65_535, True),
    "schema": (1_048_576, False),
    "profile": (1_048_576, False),
}
MAX_TAG_KEY, MAX_TAG_VALUE = 255, 500


def _dataset(entry: dict[str, Any]) -> dict[str, str]:
    dataset = entry.get("dataset")
    if not isinstance(dataset, dict):
        raise invalid("Each dataset input must hold a 'dataset' object (name, digest, source).")
    body = {}
    for field, (limit, required) in DATASET_FIELDS.items():
        value = text(dataset, field, required=required, limit=limit)
        if value is not None:
            body[field] = value
    return body


def _tags(entry: dict[str, Any]) -> list[dict[str, str]]:
    tags = []
    for tag in items(entry, "tags", limit=100):
        key = text(tag, "key", limit=MAX_TAG_KEY)
        value = tag.get("value", "")
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE or "\x00" in value:
            raise invalid(
                f"The input tag {key!r} must have a text value of at most {MAX_TAG_VALUE} "
                "characters, without NUL."
            )
        tags.append({"key": key, "value": value})
    return tags


@endpoint("write")
def log_inputs(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    store = store_of(request)
    run_id = _writable_run(request, run_id_of(message))
    datasets = [(_dataset(e), _tags(e)) for e in items(message, "datasets", limit=1000)]
    model_ids = []
    for entry in items(message, "models", limit=1000):
        model_id = text(entry, "model_id", limit=64)
        check_experiment(request, logged.model_row(store, model_id).experiment_name)
        model_ids.append(model_id)
    rows = input_rows(run_id, datasets, model_ids)
    if rows:
        with store.db.write() as conn:
            write_inputs(conn, rows)
    return {}


ROUTES = [("POST", "runs/log-inputs", log_inputs)]

__all__ = ["ROUTES"]
