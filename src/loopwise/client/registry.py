"""The registry calls through a ``loopwise server``: what ``lw.log_model``,
``lw.load_model``, aliases, lineage, ``lw.evaluate`` and ``lw.promote`` do when
``tracking_url`` is set.

Each call answers what the local service answers: the same
:class:`~loopwise.registry.records.ModelVersion`, ``RegisteredModel``, ``AliasMove``,
:class:`~loopwise.registry.lineage.ModelLineage`,
:class:`~loopwise.registry.promotion.Decision` and
:class:`~loopwise.evaluation.evaluate.Evaluation` records, and the same errors.

Where the work happens, and why:

- ``log_model`` packages the model here, where the object lives, with the packaging code
  of a local call (signature inferred from ``input_example``, the example run through the
  saved model), and uploads the folder as a tar archive; the server checks it and
  registers it as the next version, linked to the run and its input datasets.
- ``load_model`` resolves the reference with the server (one request), then loads the
  version from this process's memory, or from ``cache_dir`` by version id, or downloads
  the package once: a warm ``load_model("models:/x@champion")`` costs one request.
- ``evaluate`` scores here, with the model and data loaded through the server, and stores
  the result there when a registered model, a dataset version or a run is involved.
- ``promote`` runs on the server, on its own models and data, so the decision and the
  alias move happen in one place and name the caller's token.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from loopwise.client.datasets import RemoteDatasets
from loopwise.client.http import HttpClient
from loopwise.client.tracking import _run as run_record
from loopwise.clock import to_datetime, to_us
from loopwise.config import Settings
from loopwise.errors import InvalidInput
from loopwise.evaluation.evaluate import Evaluation
from loopwise.evaluation.policy import Policy
from loopwise.refs import parse_ref
from loopwise.registry import loading, saving
from loopwise.registry import models as model_service
from loopwise.registry.archive import archive_folder, extract_archive
from loopwise.registry.evaluations import StoredEvaluation
from loopwise.registry.lineage import ModelLineage
from loopwise.registry.models import check_alias
from loopwise.registry.promotion import Decision
from loopwise.registry.promotion_history import PromotionRecord
from loopwise.registry.records import AliasMove, ModelVersion, RegisteredModel

#: Items per listing request (the server's largest page).
LIST_PAGE = 1000
#: The most a downloaded package may unpack to (a server is trusted, not blindly).
MAX_DOWNLOAD_BYTES = 1024**4
#: Suffix of the dataset a frame given to ``promote`` is logged as: ``<model>-promotion-data``.
PROMOTION_DATA = "-promotion-data"
_CHUNK = 1024 * 1024


def _model_path(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"a model name is non-empty text, got {name!r}.")
    return "/models/" + quote(name, safe="")


def _policy_document(policy: Any) -> dict[str, Any]:
    """The policy as the JSON document the server reads (checked here first, so a typo
    fails before anything is sent)."""
    if isinstance(policy, Policy):
        if type(policy) is not Policy:
            raise InvalidInput(
                f"policy is a {type(policy).__name__}, a subclass of Policy: its Python code "
                "cannot travel to the server, which applies only the declarative rules. Put "
                "the rules in a plain Policy (or a dict or YAML file), or run the custom "
                "check yourself before promoting."
            )
        rules = policy
    elif isinstance(policy, Mapping):
        rules = Policy.from_dict(policy)
    elif isinstance(policy, str | os.PathLike):
        rules = Policy.load(policy)
    else:
        raise InvalidInput(
            f"policy must be a Policy, a dict or the path of a YAML policy file; got a "
            f"{type(policy).__name__}. Python callables cannot travel to the server: express "
            "the check as policy rules (thresholds, slices, smoke_tests ...)."
        )
    document = rules.to_dict()
    try:
        json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidInput(
            f"the policy holds a value JSON cannot carry to the server ({e}); use plain "
            "numbers, text, lists and dicts in its rules."
        ) from None
    return document


class RemoteRegistry:
    """The registry services of one server, over its HTTP connection; packages are cached
    under ``settings.cache_dir``."""

    def __init__(self, http: HttpClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings
        self.datasets = RemoteDatasets(http)

    def __repr__(self) -> str:
        return f"<RemoteRegistry {self.http.url}>"

    def _pages(self, route: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            answer = self.http.get(route, max_results=LIST_PAGE, page_token=token, **params)
            yield from answer[key]
            token = answer.get("next_page_token")
            if not token:
                return

    # -- versions ---------------------------------------------------------------------------

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        run_id: str | None = None,
        input_example: Any = None,
        signature: Any = None,
        flavor: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Package ``model`` here and upload it as the next version of ``name``."""
        path = _model_path(name) + "/versions"
        query: dict[str, Any] = {"run_id": run_id, "description": description}
        if tags:
            if not isinstance(tags, Mapping):
                raise InvalidInput(f"tags must be a dict of key -> value, got {tags!r}.")
            query["tags"] = json.dumps({str(k): str(v) for k, v in tags.items()})
        with tempfile.TemporaryDirectory(prefix="loopwise-model-") as tmp:
            root = Path(tmp) / "package"
            saving.build_package(
                model, root, input_example=input_example, signature=signature, flavor=flavor
            )
            length, chunks = archive_folder(root)
            answer = self.http.request(
                "POST",
                path,
                params={k: v for k, v in query.items() if v is not None},
                content=chunks,
                headers={"Content-Type": "application/x-tar", "Content-Length": str(length)},
            )
        return ModelVersion.from_dict(answer)

    def get_model_version(self, uri: str) -> ModelVersion:
        """The version ``models:/name/3``, ``models:/name@alias`` or ``@latest`` names."""
        ref = parse_ref(uri, kind="models")
        if ref.version is not None:
            route = f"{_model_path(ref.name)}/versions/{ref.version}"
        else:
            route = f"{_model_path(ref.name)}/aliases/{quote(ref.alias or 'latest', safe='')}"
        return ModelVersion.from_dict(self.http.get(route))

    def _number(self, uri: str) -> tuple[str, int]:
        """(name, version number) of ``uri``, asking the server only for an alias."""
        ref = parse_ref(uri, kind="models")
        if ref.version is not None:
            return ref.name, ref.version
        return ref.name, self.get_model_version(uri).version

    def load_version(self, version: ModelVersion) -> Any:
        """The loaded model of ``version``: from memory, from ``cache_dir``, or downloaded
        once into it."""

        def fetch(staging: Path) -> None:
            route = f"{_model_path(version.name)}/versions/{version.version}/package"
            handle, temp = tempfile.mkstemp(prefix="loopwise-package-", suffix=".tar")
            try:
                with os.fdopen(handle, "wb") as out, self.http.stream(route) as answer:
                    for chunk in answer.iter_bytes(_CHUNK):
                        out.write(chunk)
                extract_archive(Path(temp), staging, max_bytes=MAX_DOWNLOAD_BYTES)
            finally:
                os.unlink(temp)

        return loading.load_cached(
            version, lambda: loading.cached_package_dir(self.settings.cache_dir, version, fetch)
        )

    def load_model(self, uri: str) -> Any:
        """The loaded model for ``uri`` (one request when it was loaded before)."""
        return self.load_version(self.get_model_version(uri))

    def list_models(self) -> list[RegisteredModel]:
        return [RegisteredModel.from_dict(m) for m in self._pages("/models", "models")]

    def update_model(
        self,
        name: str,
        *,
        description: Any = model_service.UNCHANGED,
        tags: Mapping[str, Any] | None = None,
        delete_tags: list[str] | tuple[str, ...] | None = None,
    ) -> RegisteredModel:
        body = _changes(f"model {name!r}", tags, delete_tags)
        if not isinstance(description, model_service.Unchanged):
            body["description"] = description
        answer = self.http.request("PATCH", _model_path(name), json=body)
        return RegisteredModel.from_dict(answer)

    def update_model_version(
        self,
        uri: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        delete_tags: list[str] | tuple[str, ...] | None = None,
    ) -> ModelVersion:
        name, number = self._number(uri)
        body = _changes(uri, tags, delete_tags)
        if description is not None:
            body["description"] = description
        route = f"{_model_path(name)}/versions/{number}"
        return ModelVersion.from_dict(self.http.request("PATCH", route, json=body))

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        versions = self._pages(f"{_model_path(name)}/versions", "versions")
        return [ModelVersion.from_dict(v) for v in versions]

    # -- aliases ----------------------------------------------------------------------------

    def _alias_path(self, name: str, alias: str) -> str:
        check_alias(alias)
        return f"{_model_path(name)}/aliases/{alias}"

    def set_alias(
        self, name: str, alias: str, version: int, *, reason: str | None = None
    ) -> AliasMove:
        path = self._alias_path(name, alias)
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidInput(f"version must be an integer version number, got {version!r}.")
        body: dict[str, Any] = {"version": version, "reason": reason}
        return AliasMove.from_dict(self.http.request("PUT", path, json=body))

    def delete_alias(self, name: str, alias: str, *, reason: str | None = None) -> AliasMove:
        path = self._alias_path(name, alias)
        params = {} if reason is None else {"reason": reason}
        return AliasMove.from_dict(self.http.request("DELETE", path, params=params))

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        if alias is not None:
            check_alias(alias)
        moves = self._pages(f"{_model_path(name)}/alias-history", "moves", alias=alias)
        return [AliasMove.from_dict(m) for m in moves]

    def version_at(self, name: str, alias: str, at: datetime | float) -> int | None:
        check_alias(alias)
        when = to_datetime(to_us(at, what="at")).isoformat()
        return self.http.get(f"{_model_path(name)}/version-at", alias=alias, at=when)["version"]

    def rollback(self, name: str, alias: str, *, reason: str | None = None) -> AliasMove:
        path = self._alias_path(name, alias) + "/rollback"
        return AliasMove.from_dict(self.http.post(path, {"reason": reason}))

    # -- lineage, evaluation, promotion -----------------------------------------------------

    def promotion_history(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> list[PromotionRecord]:
        """The promotion decisions stored for the model, oldest first."""
        if alias is not None:
            check_alias(alias)
        decisions = self._pages(
            f"{_model_path(name)}/promotions", "decisions", version=version, alias=alias
        )
        return [PromotionRecord.from_dict(d) for d in decisions]

    def stored_evaluations(self, uri: str) -> list[StoredEvaluation]:
        """The distinct evaluation results stored for the version ``uri`` names."""
        name, number = self._number(uri)
        found = self._pages(f"{_model_path(name)}/versions/{number}/evaluations", "evaluations")
        return [StoredEvaluation.from_dict(e) for e in found]

    def model_lineage(self, uri: str) -> ModelLineage:
        """The lineage of the version, with the full run and dataset version records (read
        from their own routes: the lineage document holds summaries of them)."""
        name, number = self._number(uri)
        answer = self.http.get(f"{_model_path(name)}/versions/{number}/lineage")
        run = None
        if answer.get("run") is not None:
            run = run_record(self.http.get("/runs/" + quote(answer["run"]["id"], safe="")))
        datasets = [self.datasets.get_dataset_version(d["uri"]) for d in answer["datasets"]]
        parent = None
        if answer.get("parent_run") is not None:
            parent = run_record(
                self.http.get("/runs/" + quote(answer["parent_run"]["id"], safe=""))
            )
        return ModelLineage.from_dict(answer, run=run, datasets=datasets, parent_run=parent)

    def evaluate(
        self, model_or_uri: Any, data: Any, *, run_id: str | None, **kwargs: Any
    ) -> Evaluation:
        """Evaluate here (the model and data loaded through the server) and store the
        result on the server when a registered model, a dataset version or a run is
        involved, as ``lw.evaluate`` does on a store."""
        from loopwise.evaluation.evaluate import evaluate as compute
        from loopwise.registry.evaluations import LenientModel

        version = dataset = None
        model = model_or_uri
        if isinstance(model_or_uri, str):
            version = self.get_model_version(model_or_uri)
            model = LenientModel(self.load_version(version))
        if isinstance(data, str) and data.startswith("datasets:/"):
            dataset = self.datasets.get_dataset_version(data)  # pins @latest
            data = self.datasets.load_dataset(dataset.uri, as_="polars")
        result = compute(model, data, **kwargs)
        if version is not None or dataset is not None or run_id is not None:
            body = {
                "evaluation": result.to_dict(),
                "dataset": None if dataset is None else dataset.uri,
                "run_id": run_id,
            }
            route = "/evaluations"
            if version is not None:
                route = f"{_model_path(version.name)}/versions/{version.version}/evaluations"
            self.http.post(route, body)
        return result

    def promote(
        self,
        uri: str,
        alias: str,
        *,
        policy: Any,
        data: Any,
        target: str,
        run_id: str | None = None,
    ) -> Decision:
        """Run the promotion on the server. ``data`` as a ``datasets:/`` reference goes as
        it is; anything else (a frame, a file) is first logged as a version of dataset
        ``<model>-promotion-data`` (not as an input of the run), so the decision names the
        data it was taken on."""
        path = self._alias_path(parse_ref(uri, kind="models").name, alias) + "/promote"
        document = _policy_document(policy)
        name, number = self._number(uri)
        if isinstance(data, str) and data.startswith("datasets:/"):
            reference = data
        else:
            holdout = name[: 250 - len(PROMOTION_DATA)] + PROMOTION_DATA
            reference = self.datasets.log_dataset(data, holdout).uri
        body = {
            "version": number,
            "policy": document,
            "data": reference,
            "target": target,
            "run_id": run_id,
        }
        return Decision.from_dict(self.http.post(path, body))


__all__ = ["RemoteRegistry"]


def _changes(what: str, tags: Mapping[str, Any] | None, delete_tags: Any) -> dict[str, Any]:
    """The tag part of a PATCH body, checked here as the store would check it."""
    body: dict[str, Any] = {}
    if tags:
        body["tags"] = model_service.check_tags(tags, what)
    if delete_tags:
        if isinstance(delete_tags, str):
            raise InvalidInput(f"delete_tags of {what} must be a list of tag keys.")
        body["delete_tags"] = list(delete_tags)
    return body
