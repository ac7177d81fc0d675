"""MLflow's run inputs: ``runs/log-inputs`` -- ``mlflow.log_input(dataset, context=...)``,
the datasets MLflow's autologging records, MLflow 3's logged models used by a run -- and
the ``inputs`` of a run's message (:func:`loopwise.server.mlflow.entities.run_messages`).

MLflow sends a dataset's metadata, never its rows: its name, the digest MLflow computed
from the data, where the data lives (``source_type``, ``source``), its schema and profile.
loopwise keeps them as sent, one row per input of a run (:data:`mlflow_run_inputs`): the
same dataset (name and digest) logged again to a run replaces its tags, as MLflow keeps
one input per dataset and run. A model input must name a logged model this server knows.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from loopwise.clock import now_us
from loopwise.server.access import check_experiment, store_of
from loopwise.server.mlflow import models as logged
from loopwise.server.mlflow.protocol import endpoint, invalid, items, run_id_of, text
from loopwise.server.mlflow.tracking import _writable_run
from loopwise.store.tables import mlflow_run_inputs
from loopwise.store.upsert import insert_on_conflict

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
    now = now_us()
    rows: dict[tuple[str, str], dict[str, Any]] = {}  # one per input: the last one sent wins
    for entry in items(message, "datasets", limit=1000):
        body = _dataset(entry)
        # the digest's length first: no name and digest pair can spell another's key
        key = f"{len(body['digest'])}:{body['digest']}:{body['name']}"
        rows[("dataset", key)] = {"body": body, "tags": _tags(entry)}
    for entry in items(message, "models", limit=1000):
        model_id = text(entry, "model_id", limit=64)
        check_experiment(request, logged.model_row(store, model_id).experiment_name)
        rows[("model", model_id)] = {"body": {"model_id": model_id}, "tags": []}
    if rows:
        with store.db.write() as conn:
            insert_on_conflict(
                conn,
                mlflow_run_inputs,
                [
                    {
                        "run_id": run_id,
                        "kind": kind,
                        "input_key": key,
                        "body": json.dumps(row["body"]),
                        "tags": json.dumps(row["tags"]),
                        "created_at": now,
                    }
                    for (kind, key), row in rows.items()
                ],
                keys=["run_id", "kind", "input_key"],
                update=["body", "tags"],
            )
    return {}


ROUTES = [("POST", "runs/log-inputs", log_inputs)]

__all__ = ["ROUTES"]
