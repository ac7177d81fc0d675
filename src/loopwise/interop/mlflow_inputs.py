"""A run's MLflow inputs as rows of ``mlflow_run_inputs``: what ``runs/log-inputs`` on
``loopwise server`` stores and what ``loopwise import mlflow`` copies, written one way.

An input is a dataset's metadata (MLflow's ``Dataset``: name, digest, source type,
source, schema, profile) with the input's tags, or a logged model's id. A run holds one
input per dataset (name and digest) and per model: logging it again replaces its tags.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from loopwise.clock import now_us
from loopwise.store.tables import mlflow_run_inputs
from loopwise.store.upsert import insert_on_conflict

#: (the dataset's fields, the input's tags) of one dataset input.
DatasetInput = tuple[dict[str, str], list[dict[str, str]]]


def input_key(kind: str, body: dict[str, str]) -> str:
    """What makes an input one of its run: a dataset's name and digest (the digest's
    length first, so no pair spells another's key), or the model's id."""
    if kind == "model":
        return body["model_id"]
    return f"{len(body['digest'])}:{body['digest']}:{body['name']}"


def input_rows(
    run_id: str, datasets: Iterable[DatasetInput], model_ids: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The rows of a run's inputs; of two with the same key, the last one counts."""
    now = now_us()
    found: dict[tuple[str, str], dict[str, Any]] = {}
    entries = [("dataset", body, tags) for body, tags in datasets]
    entries += [("model", {"model_id": m}, []) for m in model_ids]
    for kind, body, tags in entries:
        key = input_key(kind, body)
        found[(kind, key)] = {
            "run_id": run_id,
            "kind": kind,
            "input_key": key,
            "body": json.dumps(body),
            "tags": json.dumps(tags),
            "created_at": now,
        }
    return list(found.values())


def write_inputs(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Store ``rows``: a new input is added, a known one gets the tags sent now."""
    insert_on_conflict(
        conn, mlflow_run_inputs, rows, keys=["run_id", "kind", "input_key"], update=["body", "tags"]
    )


def held_inputs(conn: Connection, run_id: str) -> dict[tuple[str, str], str]:
    """(kind, key) -> tags (JSON) of the inputs run ``run_id`` holds."""
    t = mlflow_run_inputs.c
    rows = conn.execute(select(t.kind, t.input_key, t.tags).where(t.run_id == run_id))
    return {(kind, key): tags for kind, key, tags in rows}


__all__ = ["DatasetInput", "held_inputs", "input_key", "input_rows", "write_inputs"]
