"""MLflow model folders as loopwise packages of the ``mlflow`` flavor.

One implementation for the two ways an MLflow model reaches loopwise: an MLflow client
registering a version through ``loopwise server`` (:mod:`loopwise.server.mlflow.registry`)
and ``loopwise import mlflow`` copying a registered version (:mod:`.mlflow_import`). Both
hand over the model folder's files as blobs already in the store, so the package (its
manifest, its signature, whether it has ``predict_proba``) comes out the same either way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopwise.errors import InvalidInput
from loopwise.registry.packaging import FORMAT_VERSION, MANIFEST_FILE, MODEL_DIR
from loopwise.store import Store

#: One file of a model folder: its path in the folder, its size and the sha256 of its blob.
ModelFile = tuple[str, int, str]


def package_mlflow_model(
    store: Store, files: list[ModelFile], folder: Path, what: str, origin: dict[str, Any]
) -> dict[str, Any]:
    """Write an MLflow model folder's ``files`` (blobs in ``store``) as a loopwise package
    under ``folder``; return its manifest. ``what`` names the folder in errors, ``origin``
    goes into the manifest's metadata.

    :class:`InvalidInput` when the files hold no ``MLmodel``: the folder is not an MLflow
    model (or its upload did not complete).
    """
    from loopwise.registry.flavors import mlflow as flavor

    if not any(path == flavor.MLMODEL for path, _, _ in files):
        raise InvalidInput(
            f"{what} has no MLmodel file: it is not an MLflow model, or its upload did not "
            "complete. Log the model again."
        )
    for path, _, sha in files:
        store.artifacts.get_blob(sha, folder / MODEL_DIR / path)
    try:
        proba = flavor.has_predict_proba(flavor.load(folder / MODEL_DIR))
    except ImportError:
        proba = False  # this process cannot load it (a library is missing): serve says so
    manifest = {
        "format_version": FORMAT_VERSION,
        "flavor": flavor.name,
        "signature": mlflow_signature(folder / MODEL_DIR),
        "requirements": {},
        "created_at": datetime.now(UTC).isoformat(),
        "files": [
            {"path": f"{MODEL_DIR}/{path}", "size": size, "sha256": sha}
            for path, size, sha in files
        ],
        "has_predict_proba": proba,
        "metadata": {
            **origin,
            "mlflow_flavors": sorted(flavor.mlmodel(folder / MODEL_DIR)["flavors"]),
        },
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    return manifest


def mlflow_signature(folder: Path) -> dict[str, Any] | None:
    """The MLflow model folder's signature as loopwise's, checked by loopwise's own rules
    (None if it has none, or if it cannot be one)."""
    from loopwise.registry.flavors import mlflow as flavor
    from loopwise.registry.signature import Signature

    document = flavor.signature(folder)
    if document is None:
        return None
    try:
        return Signature.from_dict(document).to_dict()
    except InvalidInput:
        return None


__all__ = ["ModelFile", "mlflow_signature", "package_mlflow_model"]
