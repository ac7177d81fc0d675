"""MLflow's model registry on loopwise's: ``register_model``,
``set_registered_model_alias``, ``get_model_version_by_alias`` and what
``mlflow.pyfunc.load_model("models:/name@alias")`` asks.

A registered model is a loopwise registered model and a model version a loopwise model
version. ``model-versions/create`` from an MLflow 3 logged model (``source`` =
``models:/<model id>``) copies the logged model's files into a loopwise package whose flavor
is ``mlflow`` (:mod:`loopwise.registry.flavors.mlflow`), linked to the logged model's run
and that run's input datasets: it is servable by ``loopwise serve``, gated by
``lw.promote`` and in the lineage graph like any version. Versions answer ``READY`` at
once (the copy is done when the call returns). An MLflow client downloads a version from
its logged model's artifact location (``model-versions/get-download-uri``); a version
loopwise logged itself has no MLflow model folder, so that call is NOT_IMPLEMENTED for it.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from fastapi import Request

from loopwise.errors import NotFound
from loopwise.interop.mlflow_models import package_mlflow_model
from loopwise.registry import models as registry
from loopwise.registry.records import ModelVersion
from loopwise.server.access import check_experiment, check_model, check_run, store_of, token_of
from loopwise.server.mlflow import entities
from loopwise.server.mlflow import models as logged
from loopwise.server.mlflow.protocol import (
    MlflowApiError,
    endpoint,
    integer,
    invalid,
    text,
    unsupported,
)
from loopwise.server.mlflow.tracking import _offset, _token
from loopwise.store import Store
from loopwise.tracking import run_artifacts

SOURCE_TAG = "mlflow.source"
MODEL_ID_TAG = "mlflow.model_id"
#: The artifact URI an MLflow 2 client downloads a version from (a folder of its run).
DOWNLOAD_TAG = "mlflow.download_uri"


def _model(store: Store, name: str) -> Any:
    found = registry.get_model(store, name)
    if found is None:
        raise NotFound(f"Registered Model with name={name} not found")
    return found


def _version_message(store: Store, version: ModelVersion) -> dict[str, Any]:
    created = entities.ms(int(version.created_at.timestamp() * 1_000_000))
    return {
        "name": version.name,
        "version": str(version.version),
        "creation_timestamp": created,
        "last_updated_timestamp": created,
        "current_stage": "None",
        "description": version.description or "",
        "source": version.tags.get(SOURCE_TAG, f"models:/{version.name}/{version.version}"),
        "run_id": version.run_id or "",
        "status": "READY",
        "run_link": "",
        "aliases": list(version.aliases),
        "tags": [
            {"key": k, "value": v}
            for k, v in sorted(version.tags.items())
            if k not in (SOURCE_TAG, MODEL_ID_TAG, DOWNLOAD_TAG)
        ],
        **({"model_id": version.tags[MODEL_ID_TAG]} if MODEL_ID_TAG in version.tags else {}),
    }


def _model_message(store: Store, name: str, model: Any = None) -> dict[str, Any]:
    model = model if model is not None else _model(store, name)
    created = entities.ms(int(model.created_at.timestamp() * 1_000_000))
    latest = []
    if model.latest_version is not None:
        version = registry.get_model_version(store, f"models:/{name}/{model.latest_version}")
        latest = [_version_message(store, version)]
    return {
        "name": model.name,
        "creation_timestamp": created,
        "last_updated_timestamp": created,
        "description": model.description or "",
        "latest_versions": latest,
        "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(model.aliases.items())],
    }


def _name(request: Request, message: dict[str, Any]) -> str:
    name = text(message, "name", limit=250)
    check_model(request, name)
    return name


def _number(message: dict[str, Any]) -> int:
    version = integer(message, "version")
    if version is None:
        raise invalid("Missing value for required parameter 'version'.")
    if not 1 <= version <= 2**31 - 1:
        raise invalid(f"Parameter 'version' must be a version number, got {version}.")
    return version


@endpoint("write")
def create_registered_model(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    store = store_of(request)
    name = _name(request, message)
    if message.get("tags"):
        raise unsupported("Registered model tags")
    description = text(message, "description", required=False, limit=10_000)
    if not registry.create_model(store, name, description=description):
        raise MlflowApiError(
            "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists.", 400
        )
    return {"registered_model": _model_message(store, name)}


@endpoint("read", body=False)
def get_registered_model(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    store = store_of(request)
    return {"registered_model": _model_message(store, _name(request, message))}


def _run_folder(store: Store, source: str, run_id: str | None) -> tuple[str, str]:
    """(run id, folder) of an MLflow 2 source: ``runs:/<run>/<folder>``, or the folder's
    artifact URI ``mlflow-artifacts:/<experiment>/<run>/artifacts/<folder>``."""
    if source.startswith("runs:/"):
        found_run, _, folder = source.removeprefix("runs:/").partition("/")
    elif source.startswith("mlflow-artifacts:/"):
        parts = [p for p in source.removeprefix("mlflow-artifacts:").split("/") if p]
        if len(parts) < 4 or parts[2] != "artifacts":
            raise unsupported(f"Registering a version from {source[:200]!r}")
        found_run, folder = parts[1], "/".join(parts[3:])
    else:
        raise unsupported(
            f"Registering a version from {source[:200]!r} (sources loopwise takes: "
            "models:/<logged model id>, runs:/<run>/<folder>, mlflow-artifacts:/...)"
        )
    if run_id and run_id != found_run:
        raise invalid(f"run_id {run_id!r} is not the run of source {source[:200]!r}.")
    if not folder or ".." in folder.split("/"):
        raise invalid(f"Source {source[:200]!r} names no model folder in its run.")
    return found_run, folder.strip("/")


def _source_files(
    request: Request, store: Store, message: dict[str, Any], source: str
) -> tuple[list[tuple[str, int, str]], str | None, dict[str, str], str]:
    """The files of the model folder ``source`` names, its run, the version's tags and how
    to name it in errors: an MLflow 3 logged model, or (MLflow 2) a folder of a run."""
    model_id = text(message, "model_id", required=False, limit=64)
    if model_id is None and source.startswith("models:/m-"):
        model_id = source.removeprefix("models:/").split("/", 1)[0]
    run_id = text(message, "run_id", required=False, limit=64)
    if model_id is not None:
        row = logged.model_row(store, model_id)
        check_experiment(request, row.experiment_name)
        if row.status != "LOGGED_MODEL_READY":
            raise invalid(f"Logged model {model_id} is {row.status}, not LOGGED_MODEL_READY.")
        files = [(f.path, f.size, f.sha256) for f in logged.files_of(store, row.id)]
        tags = {SOURCE_TAG: source, MODEL_ID_TAG: model_id}
        return files, run_id or row.source_run_id, tags, f"Logged model {model_id}"
    run_id, folder = _run_folder(store, source, run_id)
    run = entities.run_row(store, run_id)
    wire = entities.wire_experiment_id(run.experiment_name, run.experiment_id)
    files = [
        (a.path[len(folder) + 1 :], a.size, a.sha256)
        for a in run_artifacts.list_artifacts(store, run.id, folder)
        if a.path.startswith(folder + "/")
    ]
    uri = f"{entities.artifact_uri(wire, run.id)}/{folder}"
    return (
        files,
        run.id,
        {SOURCE_TAG: source, DOWNLOAD_TAG: uri},
        f"Folder {folder!r} of run {run.id}",
    )


@endpoint("write")
def create_model_version(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    store = store_of(request)
    name = _name(request, message)
    _model(store, name)  # MLflow registers the name first
    source = text(message, "source", limit=2000)
    files, run_id, tags, what = _source_files(request, store, message, source)
    if run_id:
        run_id = entities.run_row(store, run_id).id
        check_run(request, run_id)
    from loopwise.data.datasets import dataset_inputs

    origin = {"mlflow_source": source}
    with tempfile.TemporaryDirectory(prefix="loopwise-mlflow-version-") as tmp:
        manifest = package_mlflow_model(store, files, Path(tmp), what, origin)
        version = registry.register_version(
            store,
            name,
            Path(tmp),
            manifest,
            run_id=run_id,
            description=text(message, "description", required=False, limit=10_000),
            tags=tags,
            dataset_version_ids=[d.id for d in dataset_inputs(store, run_id)] if run_id else [],
        )
    return {"model_version": _version_message(store, version)}


def _version(request: Request, message: dict[str, Any]) -> ModelVersion:
    name = _name(request, message)
    number = _number(message)
    return registry.get_model_version(store_of(request), f"models:/{name}/{number}")


@endpoint("read", body=False)
def get_model_version(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    store = store_of(request)
    return {"model_version": _version_message(store, _version(request, message))}


@endpoint("read", body=False)
def get_download_uri(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    store = store_of(request)
    version = _version(request, message)
    model_id = version.tags.get(MODEL_ID_TAG)
    if model_id is not None:
        return {"artifact_uri": logged.artifact_uri(logged.model_row(store, model_id))}
    if DOWNLOAD_TAG in version.tags:
        return {"artifact_uri": version.tags[DOWNLOAD_TAG]}
    raise unsupported(
        f"Downloading {version.uri} with an MLflow client (loopwise logged it: load it "
        "with lw.load_model)"
    )


def _alias(message: dict[str, Any]) -> str:
    alias = text(message, "alias", limit=256)
    registry.check_alias(alias)
    return alias


@endpoint("write")
def set_alias(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    name = _name(request, message)
    registry.set_alias(store_of(request), name, _alias(message), _number(message))
    return {}


@endpoint("write")
def delete_alias(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    name = _name(request, message)
    registry.delete_alias(store_of(request), name, _alias(message))
    return {}


@endpoint("read", body=False)
def get_by_alias(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    name = _name(request, message)
    alias = _alias(message)
    store = store_of(request)
    version = registry.get_model_version(store, f"models:/{name}@{alias}")
    return {"model_version": _version_message(store, version)}


# -- search ----------------------------------------------------------------------------------

#: One clause of MLflow's registry filter: ``name = 'x'``, ``name LIKE 'x%'``,
#: ``name ILIKE 'x%'``, ``run_id = 'x'``, ``run_id IN ('a', 'b')`` (keys may be backquoted).
_CLAUSE = re.compile(
    r"""\s*`?(?P<key>[a-z_]+)`?\s*(?P<op>=|!=|LIKE|ILIKE|IN)\s*"""
    r"""(?P<value>'(?:[^']|'')*'|"(?:[^"]|"")*"|\((?:\s*'(?:[^']|'')*'\s*,?)+\))\s*""",
    re.IGNORECASE,
)
#: The clause MLflow 3's client adds to every search to leave prompts out.
_NOT_PROMPT = re.compile(r"\s*tags?\.`?mlflow\.prompt\.is_prompt`?\s*!=\s*'true'\s*", re.IGNORECASE)
_STRING = re.compile(r"'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\"")


def _registry_filter(
    filter_text: str | None, keys: tuple[str, ...]
) -> list[tuple[str, str, list[str]]]:
    """MLflow's registry ``filter`` as (key, operator, values) clauses joined by AND; a key
    or form loopwise does not take is NOT_IMPLEMENTED naming it, never a wrong answer."""
    if not filter_text or not filter_text.strip():
        return []
    clauses = []
    for part in re.split(r"\s+AND\s+(?=(?:[^']*'[^']*')*[^']*$)", filter_text, flags=re.I):
        if _NOT_PROMPT.fullmatch(part):
            continue  # MLflow 3 leaves prompts out so; loopwise's registry has none
        found = _CLAUSE.fullmatch(part)
        if found is None:
            raise unsupported(
                f"The registry filter {part.strip()[:200]!r} (loopwise takes "
                + ", ".join(f"{k} = '...'" for k in keys)
                + (", name LIKE '...%'" if "name" in keys else "")
                + " joined by AND)"
            )
        key, op = found["key"].lower(), found["op"].upper()
        if key not in keys or (key != "name" and op not in ("=", "IN")):
            raise unsupported(f"Searching by {key} {op}")
        values = [
            a.replace("''", "'") if a or not b else b for a, b in _STRING.findall(found["value"])
        ]
        clauses.append((key, op, values))
    return clauses


def _like(pattern: str, value: str, *, case: bool) -> bool:
    """SQL's LIKE (``%`` any text, ``_`` one character) on ``value``."""
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, 0 if case else re.IGNORECASE | re.DOTALL) is not None


def _passes(clauses: list[tuple[str, str, list[str]]], fields: dict[str, str]) -> bool:
    for key, op, values in clauses:
        value = fields[key]
        if op == "=" and value != values[0]:
            return False
        if op == "!=" and value == values[0]:
            return False
        if op == "IN" and value not in values:
            return False
        if op in ("LIKE", "ILIKE") and not _like(values[0], value, case=op == "LIKE"):
            return False
    return True


def _ordered(
    found: list[Any], message: dict[str, Any], fields: dict[str, Any], default: list[str]
) -> list[Any]:
    """``found`` sorted by MLflow's ``order_by`` (``field [ASC|DESC]``; stable sorts, the
    last key first), after ``default``."""
    order = message.get("order_by") or []
    if isinstance(order, str):
        order = [order]
    if not isinstance(order, list) or not all(isinstance(o, str) for o in order):
        raise invalid("order_by must be a list of strings.")
    keys = []
    for item in [*order[:10], *default]:
        parts = item.replace("`", "").split()
        if (
            not parts
            or len(parts) > 2
            or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC"))
        ):
            raise invalid(f"Invalid order_by clause {item[:100]!r}.")
        if parts[0] not in fields:
            raise unsupported(f"Ordering by {parts[0][:100]!r}")
        keys.append((fields[parts[0]], len(parts) == 2 and parts[1].upper() == "DESC"))
    for key, descending in reversed(keys):
        found = sorted(found, key=key, reverse=descending)
    return found


def _page(
    message: dict[str, Any], found: list[Any], default: int, most: int
) -> tuple[list[Any], str | None]:
    size = integer(message, "max_results", default=default)
    if size is None or not 1 <= size <= most:
        raise invalid(f"max_results must be between 1 and {most}.")
    offset = _offset(message)
    end = offset + size
    return found[offset:end], (_token(end) if end < len(found) else None)


def _stamp(at: Any) -> int:
    return int(at.timestamp() * 1000)


@endpoint("read", body=False)
def search_registered_models(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    """``registered-models/search``: MLflow's ``name`` filters, order by name or time,
    paged; over :func:`loopwise.registry.models.list_models`."""
    store = store_of(request)
    clauses = _registry_filter(text(message, "filter", required=False), ("name",))
    found = [
        m
        for m in registry.list_models(store)
        if _passes(clauses, {"name": m.name}) and _may_read(request, m.name)
    ]
    by = {
        "name": lambda m: m.name,
        "timestamp": lambda m: m.created_at,
        "creation_timestamp": lambda m: m.created_at,
        "last_updated_timestamp": lambda m: m.created_at,
    }
    found = _ordered(found, message, by, ["name ASC"])
    page, token = _page(message, found, 100, 1000)
    answer: dict[str, Any] = {"registered_models": [_model_message(store, m.name, m) for m in page]}
    if token:
        answer["next_page_token"] = token
    return answer


def _may_read(request: Request, name: str) -> bool:
    """Whether the caller's token scope lets it see model ``name`` (left out if not)."""
    token = token_of(request)
    return token is None or token.allows_model(name)


@endpoint("read", body=False)
def search_model_versions(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    """``model-versions/search``: by ``name`` (=, LIKE, ILIKE) and ``run_id`` (=, IN),
    order by name, version or time, paged; over :func:`loopwise.registry.models.list_versions`."""
    store = store_of(request)
    clauses = _registry_filter(text(message, "filter", required=False), ("name", "run_id"))
    names = [m.name for m in registry.list_models(store)]
    exact = [v[0] for k, op, v in clauses if k == "name" and op == "="]
    if exact:
        names = [n for n in names if n == exact[0]]
    found = []
    for name in names:
        if not _may_read(request, name) or not _passes(
            [c for c in clauses if c[0] == "name"], {"name": name}
        ):
            continue
        for version in registry.list_versions(store, name):
            if _passes([c for c in clauses if c[0] == "run_id"], {"run_id": version.run_id or ""}):
                found.append(version)
    by = {
        "name": lambda v: v.name,
        "version_number": lambda v: v.version,
        "version": lambda v: v.version,
        "creation_timestamp": lambda v: v.created_at,
        "timestamp": lambda v: v.created_at,
        "last_updated_timestamp": lambda v: v.created_at,
    }
    found = _ordered(found, message, by, ["name ASC", "version_number DESC"])
    page, token = _page(message, found, 10_000, 200_000)
    answer: dict[str, Any] = {"model_versions": [_version_message(store, v) for v in page]}
    if token:
        answer["next_page_token"] = token
    return answer


ROUTES = [
    ("GET", "registered-models/search", search_registered_models),
    ("GET", "model-versions/search", search_model_versions),
    ("POST", "registered-models/create", create_registered_model),
    ("GET", "registered-models/get", get_registered_model),
    ("POST", "model-versions/create", create_model_version),
    ("GET", "model-versions/get", get_model_version),
    ("GET", "model-versions/get-download-uri", get_download_uri),
    ("POST", "registered-models/alias", set_alias),
    ("DELETE", "registered-models/alias", delete_alias),
    ("GET", "registered-models/alias", get_by_alias),
]

__all__ = ["ROUTES"]
