"""``/api/v1`` routes for experiments and runs: the tracking services over HTTP.

Reads need the ``read`` permission, writes ``write`` (see :mod:`loopwise.server.access`).
Every answer is the record's ``to_dict()``: times as ISO 8601 in UTC.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from loopwise.server.access import needs, store_of
from loopwise.store import Store
from loopwise.tracking import runs as run_service

router = APIRouter(tags=["tracking"])


class ExperimentIn(BaseModel):
    """``POST /experiments``: the experiment called ``name``, created if missing."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=256)


@router.get("/experiments", dependencies=[Depends(needs("read"))])
def list_experiments(store: Store = Depends(store_of)) -> dict[str, Any]:
    """Every experiment with its number of runs, oldest first."""
    return {"experiments": [e.to_dict() for e in run_service.list_experiments(store)]}


@router.post("/experiments", dependencies=[Depends(needs("write"))])
def create_experiment(body: ExperimentIn, store: Store = Depends(store_of)) -> dict[str, Any]:
    """The experiment called ``name`` (created if it does not exist yet)."""
    return run_service.get_or_create_experiment(store, body.name).to_dict()


@router.get("/experiments/{name_or_id}", dependencies=[Depends(needs("read"))])
def get_experiment(name_or_id: str, store: Store = Depends(store_of)) -> dict[str, Any]:
    """One experiment, by name or id (404 naming it when neither matches)."""
    return run_service.get_experiment(store, name_or_id).to_dict()
