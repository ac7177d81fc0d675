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

With a ``tracking_url`` configured, every function goes through that server instead
(:class:`~loopwise.client.registry.RemoteRegistry`) and answers the same records and
errors: models are packaged here and uploaded, loaded packages are cached the same way,
``evaluate`` scores here and stores the result there, ``promote`` runs on the server.
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
    from loopwise.client.registry import RemoteRegistry
    from loopwise.evaluation.evaluate import Evaluation
    from loopwise.registry.evaluations import StoredEvaluation
    from loopwise.registry.promotion import Decision
    from loopwise.registry.promotion_history import PromotionRecord


def _remote() -> RemoteRegistry | None:
    """The server's registry calls when a ``tracking_url`` is configured, else None."""
    http = context.remote_http()
    if http is None:
        return None
    from loopwise.client.registry import RemoteRegistry  # httpx: only when remote

    return RemoteRegistry(http, context.settings())


def _run_id() -> str | None:
    run = active_run()
    return run.id if run is not None else None


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
    options: dict[str, Any] = {
        "run_id": _run_id(),
        "input_example": input_example,
        "signature": signature,
        "flavor": flavor,
        "description": description,
        "tags": tags,
    }
    if (remote := _remote()) is not None:
        return remote.log_model(model, name, **options)
    return saving.log_model(context.local_store(), model, name, **options)


def load_model(uri: str) -> Any:
    """A loaded model for ``models:/name/3`` or ``models:/name@alias``: ``.predict(data)``
    for every flavor (and ``.predict_proba`` where the model has it), inputs checked
    against the signature."""
    if (remote := _remote()) is not None:
        return remote.load_model(uri)
    return loading.load_model(context.local_store(), uri)


def get_model_version(uri: str) -> ModelVersion:
    """A version's metadata: name, version, aliases, run, flavor, signature."""
    if (remote := _remote()) is not None:
        return remote.get_model_version(uri)
    return registry.get_model_version(context.local_store(), uri)


def list_models() -> list[RegisteredModel]:
    """Every registered model with its versions and aliases."""
    if (remote := _remote()) is not None:
        return remote.list_models()
    return registry.list_models(context.local_store())


def update_model(
    name: str,
    *,
    description: str | registry.Unchanged | None = registry.UNCHANGED,
    tags: Mapping[str, Any] | None = None,
    delete_tags: list[str] | tuple[str, ...] | None = None,
) -> RegisteredModel:
    """Set (or clear, with None) a model's description, merge ``tags`` into its tags and
    remove the keys in ``delete_tags``; returns the model."""
    changes = {"description": description, "tags": tags, "delete_tags": delete_tags}
    if (remote := _remote()) is not None:
        return remote.update_model(name, **changes)
    return registry.update_model(context.local_store(), name, **changes)


def update_model_version(
    uri: str,
    *,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    delete_tags: list[str] | tuple[str, ...] | None = None,
) -> ModelVersion:
    """Change a version's description, merge ``tags`` into its tags and remove the keys in
    ``delete_tags``; the package never changes."""
    changes = {"description": description, "tags": tags, "delete_tags": delete_tags}
    if (remote := _remote()) is not None:
        return remote.update_model_version(uri, **changes)
    return registry.update_version(context.local_store(), uri, **changes)


def list_model_versions(name: str) -> list[ModelVersion]:
    """Every version of a model, oldest first."""
    if (remote := _remote()) is not None:
        return remote.list_model_versions(name)
    return registry.list_versions(context.local_store(), name)


def set_alias(name: str, alias: str, version: int, *, reason: str | None = None) -> AliasMove:
    """Point ``alias`` (e.g. ``champion``) of model ``name`` at ``version``; recorded."""
    if (remote := _remote()) is not None:
        return remote.set_alias(name, alias, version, reason=reason)
    return registry.set_alias(context.local_store(), name, alias, version, reason=reason)


def delete_alias(name: str, alias: str, *, reason: str | None = None) -> AliasMove:
    """Remove an alias; recorded in its history."""
    if (remote := _remote()) is not None:
        return remote.delete_alias(name, alias, reason=reason)
    return registry.delete_alias(context.local_store(), name, alias, reason=reason)


def alias_history(name: str, alias: str | None = None) -> list[AliasMove]:
    """Who moved the model's aliases, when, from which version to which, and why."""
    if (remote := _remote()) is not None:
        return remote.alias_history(name, alias)
    return registry.alias_history(context.local_store(), name, alias)


def version_at(name: str, alias: str, at: datetime) -> int | None:
    """Which version held ``alias`` at moment ``at`` (None if none did)."""
    if (remote := _remote()) is not None:
        return remote.version_at(name, alias, at)
    return registry.version_at(context.local_store(), name, alias, at)


def rollback(name: str, alias: str, *, reason: str | None = None) -> AliasMove:
    """Move ``alias`` back to its previous holder."""
    if (remote := _remote()) is not None:
        return remote.rollback(name, alias, reason=reason)
    return registry.rollback(context.local_store(), name, alias, reason=reason)


def model_lineage(uri: str) -> ModelLineage:
    """The run, params, metrics, code version, environment and datasets behind a version."""
    if not isinstance(uri, str):
        raise InvalidInput(f"model_lineage takes a models:/ reference, got {uri!r}.")
    parse_ref(uri, kind="models")  # names what is wrong with the reference
    if (remote := _remote()) is not None:
        return remote.model_lineage(uri)
    return lineage_of(context.local_store(), uri)


def promotion_history(
    name: str, *, version: int | None = None, alias: str | None = None
) -> list[PromotionRecord]:
    """The promotion decisions stored for model ``name`` (of candidate ``version`` and
    ``alias`` only, when given), oldest first, each with every check and its policy."""
    if (remote := _remote()) is not None:
        return remote.promotion_history(name, version=version, alias=alias)
    from loopwise.registry.promotion_history import promotion_history as history_of

    return history_of(context.local_store(), name, version=version, alias=alias)


def stored_evaluations(uri: str) -> list[StoredEvaluation]:
    """The distinct evaluation results stored for the version ``uri`` names, in the order
    first stored, each with how many times it was stored and the data it scored."""
    if (remote := _remote()) is not None:
        return remote.stored_evaluations(uri)
    from loopwise.registry.evaluations import stored_evaluations as stored_for

    store = context.local_store()
    return stored_for(store, registry.get_model_version(store, uri).id)


def evaluate(model_or_uri: Any, data: Any, target: str = "y", **kwargs: Any) -> Evaluation:
    """Evaluate a model overall, per slice and against a trivial baseline.

    ``model_or_uri`` is a fitted model or ``models:/name@alias``; ``data`` a frame, a file,
    or ``datasets:/name/3``. With a registered model, a dataset version or an active run,
    the result is stored and linked to them. See :func:`loopwise.evaluation.evaluate.evaluate`
    for ``task``, ``slices``, ``predictions``, ``probabilities`` and ``threshold``.
    Through a server, the scoring runs here and the result is stored there.
    """
    from loopwise.registry.evaluations import evaluate_and_store

    if (remote := _remote()) is not None:
        return remote.evaluate(model_or_uri, data, run_id=_run_id(), target=target, **kwargs)
    return evaluate_and_store(
        context.local_store(),
        model_or_uri,
        data,
        run_id=_run_id(),
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
    ``.message``); the decision is recorded either way.

    Through a server, the promotion runs on the server, on its models and data: ``data``
    given as a frame or a file is first logged there as a version of dataset
    ``<model>-promotion-data`` (the decision then names the data it was taken on), and
    the policy travels as its declarative rules.
    """
    from loopwise.registry.promotion import promote as run_promotion

    if (remote := _remote()) is not None:
        return remote.promote(uri, alias, policy=policy, data=data, target=target, run_id=_run_id())
    return run_promotion(
        context.local_store(),
        uri,
        alias=alias,
        policy=policy,
        data=data,
        target=target,
        load=load_model,
        run_id=_run_id(),
    )
