"""The module-level registry API: ``lw.log_model``, ``lw.load_model``, aliases, lineage.

Bound to the default store and to the active run (the services, :mod:`.saving`,
:mod:`.loading`, :mod:`.models`, take the store explicitly): a model logged inside a run records
the run as its producer and the run's input dataset versions as its training data.
Loaded packages are cached on disk (``cache_dir``) and in memory by version id, so a warm
``load_model("models:/name@champion")`` costs one query to resolve the alias.

One keyword rule for aliases: in every function here (and in the services of
:mod:`.models`), ``alias`` is an ordinary parameter right after the model's name or URI,
so it may be passed by position or by keyword -- ``set_alias("credit-risk", "champion",
3)``, ``rollback("credit-risk", alias="champion")`` and ``promote(uri, "champion", ...)``
all work. Options that follow it (``reason``, ``policy``, ...) are keyword-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopwise import context
from loopwise.errors import InvalidInput
from loopwise.refs import parse_ref
from loopwise.registry import loading, saving
from loopwise.registry import models as registry
from loopwise.registry.lineage import ModelLineage
from loopwise.registry.lineage import model_lineage as lineage_of
from loopwise.registry.records import AliasMove, ModelVersion, RegisteredModel
from loopwise.tracking.fluent import active_run

if TYPE_CHECKING:
    from loopwise.evaluation.evaluate import Evaluation
    from loopwise.registry.promotion import Decision


def log_model(
    model: Any,
    name: str,
    *,
    input_example: Any = None,
    signature: Any = None,
    flavor: str | None = None,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
) -> ModelVersion:
    """Package ``model`` and register it as the next version of ``name``.

    The package holds the serialised model, its flavor, a signature (inferred from
    ``input_example`` and the model's output on it, unless given), the input example and
    the package versions needed to load it. Inside a run, the version is linked to the run
    and to the run's input dataset versions.
    """
    run = active_run()
    return saving.log_model(
        context.local_store(),
        model,
        name,
        run_id=run.id if run is not None else None,
        input_example=input_example,
        signature=signature,
        flavor=flavor,
        description=description,
        tags=tags,
    )


def load_model(uri: str) -> Any:
    """A loaded model for ``models:/name/3`` or ``models:/name@alias``: ``.predict(data)``
    for every flavor (and ``.predict_proba`` where the model has it), inputs checked
    against the signature."""
    return loading.load_model(context.local_store(), uri)


def get_model_version(uri: str) -> ModelVersion:
    """A version's metadata: name, version, aliases, run, flavor, signature."""
    return registry.get_model_version(context.local_store(), uri)


def list_models() -> list[RegisteredModel]:
    """Every registered model with its versions and aliases."""
    return registry.list_models(context.local_store())


def update_model(name: str, *, description: str | None) -> RegisteredModel:
    """Set (or clear, with None) a model's description; returns the model."""
    return registry.update_model(context.local_store(), name, description=description)


def update_model_version(
    uri: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
) -> ModelVersion:
    """Change a version's description or merge tags into its own; the package never changes."""
    return registry.update_version(context.local_store(), uri, description=description, tags=tags)


def list_model_versions(name: str) -> list[ModelVersion]:
    """Every version of a model, oldest first."""
    return registry.list_versions(context.local_store(), name)


def set_alias(name: str, alias: str, version: int, *, reason: str | None = None) -> AliasMove:
    """Point ``alias`` (e.g. ``champion``) of model ``name`` at ``version``; recorded."""
    return registry.set_alias(context.local_store(), name, alias, version, reason=reason)


def delete_alias(name: str, alias: str, *, reason: str | None = None) -> AliasMove:
    """Remove an alias; recorded in its history."""
    return registry.delete_alias(context.local_store(), name, alias, reason=reason)


def alias_history(name: str, alias: str | None = None) -> list[AliasMove]:
    """Who moved the model's aliases, when, from which version to which, and why."""
    return registry.alias_history(context.local_store(), name, alias)


def version_at(name: str, alias: str, at: datetime) -> int | None:
    """Which version held ``alias`` at moment ``at`` (None if none did)."""
    return registry.version_at(context.local_store(), name, alias, at)


def rollback(name: str, alias: str, *, reason: str | None = None) -> AliasMove:
    """Move ``alias`` back to its previous holder."""
    return registry.rollback(context.local_store(), name, alias, reason=reason)


def model_lineage(uri: str) -> ModelLineage:
    """The run, params, metrics, code version, environment and datasets behind a version."""
    if not isinstance(uri, str) or not uri.startswith("models:/"):
        raise InvalidInput(f"model_lineage takes a models:/ reference, got {uri!r}.")
    parse_ref(uri, kind="models")
    return lineage_of(context.local_store(), uri)


def evaluate(model_or_uri: Any, data: Any, target: str = "y", **kwargs: Any) -> Evaluation:
    """Evaluate a model overall, per slice and against a trivial baseline.

    ``model_or_uri`` is a fitted model or ``models:/name@alias``; ``data`` a frame, a file,
    or ``datasets:/name/3``. With a registered model, a dataset version or an active run,
    the result is stored and linked to them. See :func:`loopwise.evaluation.evaluate.evaluate`
    for ``task``, ``slices``, ``predictions``, ``probabilities`` and ``threshold``.
    """
    from loopwise.registry.evaluations import evaluate_and_store

    run = active_run()
    return evaluate_and_store(
        context.local_store(),
        model_or_uri,
        data,
        run_id=run.id if run is not None else None,
        load=load_model,
        target=target,
        **kwargs,
    )


def promote(
    uri: str,
    alias: str,
    *,
    policy: Any,
    data: Any,
    target: str,
) -> Decision:
    """Evaluate ``uri`` against ``policy`` (a Policy, a dict or a YAML path) on ``data`` and
    move ``alias`` to it only if every gate passes. Returns a ``Decision`` with ``.passed``
    and ``.checks`` (each with ``.name``, ``.passed``, ``.value``, ``.limit``, ``.slice``,
    ``.message``); the decision is recorded either way."""
    from loopwise.registry.promotion import promote as run_promotion

    run = active_run()
    return run_promotion(
        context.local_store(),
        uri,
        alias=alias,
        policy=policy,
        data=data,
        target=target,
        load=load_model,
        run_id=run.id if run is not None else None,
    )
