"""``/api/v1`` routes for the model registry: models, versions, aliases and their history,
lineage, evaluations and promotions, over the registry's services.

Reads need ``read``, writes ``write`` (see :mod:`loopwise.server.access`). Writes name the
caller's token: an alias move, a promotion decision and a new version record it (the
token check names the caller for the request's context), not the server's OS user.

Names, versions and aliases in paths are checked before any query (a name a reference
cannot hold, a version outside 1..2,147,483,647, an alias with characters an alias cannot
have: 400), so a hostile path never reaches the database as a value it refuses. Bodies
are strict (a version is a JSON integer, not ``"2"``; unknown fields are refused).

What the remote client needs besides: package upload and download
(:mod:`.model_packages`); storing an evaluation the client computed (``POST
.../evaluations``, or ``POST /evaluations`` for one of a model object that is not
registered); and promotion run here, on the server's own models and data (``POST
.../aliases/{alias}/promote``), whose answer is the Decision -- a refused gate is a 200
with ``passed: false``, as ``lw.promote`` returns it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from loopwise.errors import InvalidInput, NotFound
from loopwise.evaluation.evaluate import TASKS, Evaluation
from loopwise.registry import loading
from loopwise.registry import models as model_service
from loopwise.registry.evaluations import save_evaluation, stored_evaluations
from loopwise.registry.lineage import model_lineage
from loopwise.registry.promotion import promote as run_promotion
from loopwise.registry.promotion_history import promotion_history
from loopwise.server.access import check_run, model_scope, needs, store_of
from loopwise.server.listing import (
    MAX_VERSION,
    MaxResults,
    PageToken,
    Text,
    finite,
    name_of,
    page,
)
from loopwise.server.numbers import metrics_out
from loopwise.server.routes import model_packages
from loopwise.server.time_params import moment
from loopwise.store import Store
from loopwise.tracking import runs as run_service

router = APIRouter(tags=["registry"])
router.include_router(model_packages.router)

ModelName = Annotated[str, Path(description="The model's name, e.g. credit-risk.")]
VersionNumber = Annotated[
    int, Path(ge=1, le=MAX_VERSION, description="The version number (1, 2, 3 ...).")
]
AliasName = Annotated[str, Path(description="An alias such as champion.")]


def _model(name: str) -> str:
    """``name`` once a ``models:/`` reference can hold it (InvalidReference otherwise)."""
    return name_of("models", name)


def _version_uri(name: str, version: int) -> str:
    return f"models:/{_model(name)}/{version}"


def _position(position: int, _: object) -> int:
    return position


def _alias(alias: str) -> str:
    model_service.check_alias(alias)
    return alias


# -- bodies ----------------------------------------------------------------------------------


TagKey = Annotated[Text, Field(min_length=1, max_length=model_service.MAX_TAG_KEY)]
Tags = dict[TagKey, Annotated[Text, Field(max_length=model_service.MAX_TAG_VALUE)]]


class ModelPatch(BaseModel):
    """``PATCH /models/{name}``: the model's description (null clears it; absent leaves
    it), tags to merge and tag keys to remove."""

    model_config = ConfigDict(extra="forbid", strict=True)
    description: Text | None = Field(default=None, max_length=10_000)
    tags: Tags | None = Field(default=None, max_length=model_service.MAX_TAGS)
    delete_tags: list[TagKey] | None = Field(default=None, max_length=model_service.MAX_TAGS)


class VersionPatch(BaseModel):
    """``PATCH /models/{name}/versions/{version}``: a new description, tags to merge and
    tag keys to remove."""

    model_config = ConfigDict(extra="forbid", strict=True)
    description: Text | None = Field(default=None, max_length=10_000)
    tags: Tags | None = Field(default=None, max_length=model_service.MAX_TAGS)
    delete_tags: list[TagKey] | None = Field(default=None, max_length=model_service.MAX_TAGS)


class AliasSet(BaseModel):
    """``PUT /models/{name}/aliases/{alias}``: the version the alias points at from now on."""

    model_config = ConfigDict(extra="forbid", strict=True)
    version: int = Field(ge=1, le=MAX_VERSION)
    reason: Text | None = Field(default=None, max_length=2000)


class Reason(BaseModel):
    """``POST .../rollback``: why (kept in the alias history)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    reason: Text | None = Field(default=None, max_length=2000)


class EvaluationIn(BaseModel):
    """``POST .../evaluations``: an evaluation computed by a client
    (``Evaluation.to_dict()``), the dataset version it scored and the run it belongs to."""

    model_config = ConfigDict(extra="forbid", strict=True)
    evaluation: dict[str, Any]
    dataset: Text | None = Field(
        default=None, max_length=1000, description="A datasets:/ reference, e.g. datasets:/x/3."
    )
    run_id: Text | None = Field(default=None, max_length=200)


class PromotionIn(BaseModel):
    """``POST .../aliases/{alias}/promote``: the candidate version, the policy (as
    ``Policy.to_dict()`` or a policy file's content), the data as a ``datasets:/``
    reference, its target column, and the run the decision belongs to."""

    model_config = ConfigDict(extra="forbid", strict=True)
    version: int = Field(ge=1, le=MAX_VERSION)
    policy: dict[str, Any]
    data: Text = Field(max_length=1000, description="A datasets:/ reference.")
    target: Text = Field(min_length=1, max_length=1000)
    run_id: Text | None = Field(default=None, max_length=200)


# -- models ----------------------------------------------------------------------------------


@router.get("/models", dependencies=[Depends(needs("read"))])
def list_models(
    request: Request,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """Registered models by name, each with its number of versions and current aliases
    (those in a scoped token's scope)."""
    models = model_service.list_models(store)
    if (scope := model_scope(request)) is not None:
        models = [m for m in models if scope.allows_model(m.name)]
    found, token = page("models", models, lambda _, m: m.name, page_token, max_results)
    return {"models": [m.to_dict() for m in found], "next_page_token": token}


def _registered(store: Store, name: str) -> Any:
    model = model_service.get_model(store, name)
    if model is None:
        raise NotFound(f"No model named {name!r}; list the models with GET /api/v1/models.")
    return model


@router.get("/models/{name}", dependencies=[Depends(needs("read", model="name"))])
def get_model(name: ModelName, store: Store = Depends(store_of)) -> dict[str, Any]:
    """One registered model: description, number of versions, latest version, aliases."""
    return _registered(store, _model(name)).to_dict()


@router.patch("/models/{name}", dependencies=[Depends(needs("write", model="name"))])
def update_model(
    name: ModelName, body: ModelPatch, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """Set the model's description (null clears it), merge tags, remove tag keys."""
    description = (
        body.description if "description" in body.model_fields_set else model_service.UNCHANGED
    )
    return model_service.update_model(
        store, _model(name), description=description, tags=body.tags, delete_tags=body.delete_tags
    ).to_dict()


# -- versions --------------------------------------------------------------------------------


@router.get("/models/{name}/versions", dependencies=[Depends(needs("read", model="name"))])
def list_versions(
    name: ModelName,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """The model's versions, oldest first."""
    versions = model_service.list_versions(store, _model(name))
    found, token = page("model-versions", versions, lambda _, v: v.version, page_token, max_results)
    return {"versions": [v.to_dict(with_manifest=True) for v in found], "next_page_token": token}


@router.get(
    "/models/{name}/versions/{version}", dependencies=[Depends(needs("read", model="name"))]
)
def get_version(
    name: ModelName, version: VersionNumber, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """One version of the model, by number, with its package manifest."""
    found = model_service.get_model_version(store, _version_uri(name, version))
    return found.to_dict(with_manifest=True)


@router.patch(
    "/models/{name}/versions/{version}", dependencies=[Depends(needs("write", model="name"))]
)
def update_version(
    name: ModelName, version: VersionNumber, body: VersionPatch, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """Change a version's description, merge tags into its tags and remove tag keys (the
    package never changes)."""
    return model_service.update_version(
        store,
        _version_uri(name, version),
        description=body.description,
        tags=body.tags,
        delete_tags=body.delete_tags,
    ).to_dict(with_manifest=True)


@router.get(
    "/models/{name}/versions/{version}/lineage", dependencies=[Depends(needs("read", model="name"))]
)
def get_lineage(
    name: ModelName, version: VersionNumber, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """Everything behind a version: its run (params, metrics, tags), code version,
    environment, training data and evaluations. The run's non-finite metric values are
    spelled "NaN", "Infinity", "-Infinity" as in the run routes."""
    lineage = model_lineage(store, _version_uri(name, version))
    answer = lineage.to_dict()
    answer["model_version"] = lineage.version.to_dict(with_manifest=True)
    if lineage.run is not None:  # spelled as the run routes spell them
        answer["run"]["metrics"] = metrics_out(lineage.run.metrics)
    return finite(answer)


@router.get(
    "/models/{name}/versions/{version}/evaluations",
    dependencies=[Depends(needs("read", model="name"))],
)
def list_evaluations(
    name: ModelName,
    version: VersionNumber,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """The distinct evaluation results of a version, in the order first stored, each with
    how many times it was stored and the data it was scored on."""
    found = model_service.get_model_version(store, _version_uri(name, version))
    # A result is listed where it was first stored, and new ones come last: its position
    # is a stable key.
    results, token = page(
        "evaluations", stored_evaluations(store, found.id), _position, page_token, max_results
    )
    return {"evaluations": [finite(e.to_dict()) for e in results], "next_page_token": token}


def _evaluation(document: dict[str, Any]) -> Evaluation:
    """An evaluation document (``Evaluation.to_dict()``) read back, or a 400 saying why."""
    try:
        evaluation = Evaluation.from_dict(document)
    except InvalidInput:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as e:
        raise InvalidInput(
            f"evaluation is not an evaluation document ({type(e).__name__}: {str(e)[:200]}); "
            "send Evaluation.to_dict() of a loopwise evaluation."
        ) from None
    if evaluation.task not in TASKS or not isinstance(evaluation.target, str):
        raise InvalidInput(
            f"evaluation.task must be one of {', '.join(TASKS)} and evaluation.target the "
            f"target column's name; got {evaluation.task!r} and {evaluation.target!r}."
        )
    return evaluation


def _run_of(request: Request, store: Store, run_id: str | None) -> str | None:
    """The id of the run a write names (404 if none, 403 outside a scoped token's reach)."""
    if run_id is None:
        return None
    resolved = run_service.resolve_run_id(store, run_id)
    check_run(request, resolved)
    return resolved


def _store_evaluation(
    request: Request, store: Store, body: EvaluationIn, version: Any
) -> dict[str, Any]:
    from loopwise.data.datasets import get_dataset_version

    evaluation = _evaluation(body.evaluation)
    dataset = None if body.dataset is None else get_dataset_version(store, body.dataset)
    run_id = _run_of(request, store, body.run_id)
    if version is None and dataset is None and run_id is None:
        raise InvalidInput(
            "an evaluation is stored linked to a model version, a dataset version or a run; "
            "name a dataset or a run_id (or post it to /models/{name}/versions/{version}/"
            "evaluations)."
        )
    evaluation_id = save_evaluation(
        store,
        evaluation,
        model_version_id=None if version is None else version.id,
        dataset_version_id=None if dataset is None else dataset.id,
        run_id=run_id,
    )
    return {
        "id": evaluation_id,
        "model_version": None if version is None else version.uri,
        "dataset": None if dataset is None else dataset.uri,
        "run_id": run_id,
        "evaluation": evaluation.to_dict(),
    }


@router.post(
    "/models/{name}/versions/{version}/evaluations",
    dependencies=[Depends(needs("write", model="name"))],
)
def store_evaluation(
    name: ModelName,
    version: VersionNumber,
    body: EvaluationIn,
    request: Request,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """Store an evaluation of the version computed by a client (``lw.evaluate`` through a
    server), linked to the dataset version it scored and to its run, as ``lw.evaluate``
    stores one locally."""
    found = model_service.get_model_version(store, _version_uri(name, version))
    return _store_evaluation(request, store, body, found)


@router.post("/evaluations", dependencies=[Depends(needs("write"))])
def store_unregistered_evaluation(
    body: EvaluationIn, request: Request, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """Store an evaluation of a model that is not registered (a fitted object), linked to
    the dataset version it scored and/or its run."""
    return _store_evaluation(request, store, body, None)


# -- aliases ---------------------------------------------------------------------------------


@router.get("/models/{name}/aliases/{alias}", dependencies=[Depends(needs("read", model="name"))])
def get_version_by_alias(
    name: ModelName, alias: AliasName, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """The version an alias points at now (``latest``: the newest version)."""
    found = model_service.get_model_version(store, f"models:/{_model(name)}@{alias}")
    return found.to_dict(with_manifest=True)


@router.put("/models/{name}/aliases/{alias}", dependencies=[Depends(needs("write", model="name"))])
def set_alias(
    name: ModelName, alias: AliasName, body: AliasSet, store: Store = Depends(store_of)
) -> dict[str, Any]:
    """Point the alias at a version (creating or moving it); the move is recorded."""
    move = model_service.set_alias(
        store, _model(name), _alias(alias), body.version, reason=body.reason
    )
    return move.to_dict()


@router.delete(
    "/models/{name}/aliases/{alias}", dependencies=[Depends(needs("write", model="name"))]
)
def delete_alias(
    name: ModelName,
    alias: AliasName,
    reason: Annotated[Text | None, Query(max_length=2000)] = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """Remove the alias; the removal is recorded in its history."""
    return model_service.delete_alias(store, _model(name), _alias(alias), reason=reason).to_dict()


@router.post(
    "/models/{name}/aliases/{alias}/rollback", dependencies=[Depends(needs("write", model="name"))]
)
def rollback(
    name: ModelName,
    alias: AliasName,
    body: Reason | None = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """Move the alias back to the version that held it before the current one (409 when
    none did)."""
    reason = body.reason if body is not None else None
    return model_service.rollback(store, _model(name), _alias(alias), reason=reason).to_dict()


@router.get("/models/{name}/alias-history", dependencies=[Depends(needs("read", model="name"))])
def alias_history(
    name: ModelName,
    alias: Annotated[str | None, Query(description="Only this alias's moves.")] = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """Every recorded move of the model's aliases (or of one), oldest first: who moved it,
    when, from which version to which, and why."""
    moves = model_service.alias_history(
        store, _model(name), _alias(alias) if alias is not None else None
    )
    # The history is append-only, so a move's position is a stable key.
    listing = f"alias-history@{alias or ''}"
    found, token = page(listing, moves, _position, page_token, max_results)
    return {"moves": [m.to_dict() for m in found], "next_page_token": token}


@router.get("/models/{name}/version-at", dependencies=[Depends(needs("read", model="name"))])
def version_at(
    name: ModelName,
    alias: Annotated[str, Query(description="The alias, e.g. champion.")],
    at: Annotated[
        str,
        Query(
            max_length=64,
            description="ISO 8601 time with a zone, e.g. 2026-01-01T00:00Z (a + in a URL is "
            "written %2B).",
        ),
    ],
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """The version that held the alias at a moment (``version`` null when none did)."""
    when = moment(at, "at")
    held = model_service.version_at(store, _model(name), _alias(alias), when)
    return {"model": name, "alias": alias, "at": when.isoformat(), "version": held}


# -- promotion decisions ---------------------------------------------------------------------


@router.post(
    "/models/{name}/aliases/{alias}/promote", dependencies=[Depends(needs("write", model="name"))]
)
def promote(
    name: ModelName,
    alias: AliasName,
    body: PromotionIn,
    request: Request,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """Evaluate the candidate version on the data against the policy, here on the server's
    models and data, and move the alias only if every gate passes. Answers the Decision,
    passed or not (a refused gate is not an error); the decision is recorded either way,
    naming the caller."""
    if not body.data.startswith("datasets:/"):
        raise InvalidInput(
            f"data must be a datasets:/ reference, got {body.data[:200]!r}: the server scores "
            "data from its store. Log the data first (lw.log_dataset) and pass its reference."
        )
    run_id = _run_of(request, store, body.run_id)
    decision = run_promotion(
        store,
        _version_uri(name, body.version),
        _alias(alias),
        policy=body.policy,
        data=body.data,
        target=body.target,
        load=lambda uri: loading.load_model(store, uri),
        run_id=run_id,
    )
    return finite(decision.to_dict())


@router.get("/models/{name}/promotions", dependencies=[Depends(needs("read", model="name"))])
def list_promotions(
    name: ModelName,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    alias: Annotated[str | None, Query()] = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
    store: Store = Depends(store_of),
) -> dict[str, Any]:
    """The promotion decisions stored for the model (of one candidate version or alias),
    oldest first, each with every check it ran, passed or failed, and its policy."""
    _registered(store, _model(name))
    decisions = promotion_history(
        store, name, version=version, alias=_alias(alias) if alias is not None else None
    )
    # Decisions are only ever added, in time order: a position is a stable key.
    listing = f"promotions/{version or ''}@{alias or ''}"
    found, token = page(listing, decisions, _position, page_token, max_results)
    return {"decisions": [finite(d.to_dict()) for d in found], "next_page_token": token}
