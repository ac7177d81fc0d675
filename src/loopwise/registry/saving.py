"""Logging a model into a given store: package it and register it as the next version.

Why a service of its own: autologging, pipelines and the REST server register models in
the store they work on, which need not be the process's default one, and for a run they
name rather than the process's active run. :mod:`loopwise.registry.api` binds
:func:`log_model` to the default store and the active run for ``lw.log_model``, as it binds
:func:`loopwise.registry.loading.load_model` for ``lw.load_model``.

The two steps are separate functions because they may run on two machines: the remote
client builds the package where the model object lives (:func:`build_package`) and the
server registers the uploaded folder in its store (:func:`register_package`), exactly as
:func:`log_model` does in one process.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from loopwise.data.datasets import dataset_inputs
from loopwise.registry import models as registry
from loopwise.registry.records import ModelVersion
from loopwise.store import Store


def build_package(
    model: Any,
    root: Path,
    *,
    input_example: Any = None,
    signature: Any = None,
    flavor: str | None = None,
) -> None:
    """Write ``model`` as a package folder at ``root`` (new or empty): the serialised model,
    its flavor, a signature (inferred from ``input_example`` and the model's output on it,
    unless given), the input example and the package versions needed to load it."""
    from loopwise.registry.packaging import save_package

    save_package(model, root, input_example=input_example, signature=signature, flavor=flavor)


def register_package(
    store: Store,
    name: str,
    root: Path,
    *,
    run_id: str | None = None,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
) -> ModelVersion:
    """Register the package folder at ``root`` in ``store`` as the next version of ``name``.

    With ``run_id``, the version is linked to that run and to the run's input dataset
    versions (its training data). The folder must be a checked package (the server checks
    an uploaded one with :func:`loopwise.registry.archive.check_package` first).
    """
    registry.check_model_name(store, name)
    manifest = json.loads((root / "loopwise_model.json").read_text())
    datasets = [d.id for d in dataset_inputs(store, run_id)] if run_id is not None else []
    return registry.register_version(
        store,
        name,
        root,
        manifest,
        run_id=run_id,
        description=description,
        tags=tags,
        dataset_version_ids=datasets,
    )


def log_model(
    store: Store,
    model: Any,
    name: str,
    *,
    run_id: str | None = None,
    input_example: Any = None,
    signature: Any = None,
    flavor: str | None = None,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
) -> ModelVersion:
    """Package ``model`` and register it in ``store`` as the next version of ``name``.

    The package holds the serialised model, its flavor, a signature (inferred from
    ``input_example`` and the model's output on it, unless given), the input example and
    the package versions needed to load it. With ``run_id``, the version is linked to that
    run and to the run's input dataset versions (its training data).
    """
    registry.check_model_name(store, name)
    with tempfile.TemporaryDirectory(prefix="loopwise-model-") as tmp:
        root = Path(tmp) / "package"
        build_package(model, root, input_example=input_example, signature=signature, flavor=flavor)
        return register_package(
            store, name, root, run_id=run_id, description=description, tags=tags
        )
