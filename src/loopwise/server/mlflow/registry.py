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
    items,
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
#: Version tags loopwise keeps for itself (where an MLflow client downloads the version
#: from): not shown to MLflow, and not set or deleted through it.
RESERVED_TAGS = (SOURCE_TAG, MODEL_ID_TAG, DOWNLOAD_TAG)


def _model(store: Store, name: str) -> Any:
    found = registry.get_model(store, name)
    if found is None:
        raise NotFound(f"Registered Model with name={name} not found")
    return found


def _ms(at: Any) -> int | None:
    return None if at is None else entities.ms(int(at.timestamp() * 1_000_000))


def _version_message(store: Store, version: ModelVersion) -> dict[str, Any]:
    created = _ms(version.created_at)
    return {
        "name": version.name,
        "version": str(version.version),
        "creation_timestamp": created,
        "last_updated_timestamp": _ms(version.updated_at) or created,
        "current_stage": "None",
        "description": version.description or "",
        "source": version.tags.get(SOURCE_TAG, f"models:/{version.name}/{version.version}"),
        "run_id": version.run_id or "",
        "status": "READY",
        "run_link": "",
        "aliases": list(version.aliases),
        "tags": [{"key": k, "value": v} for k, v in sorted(_shown_tags(version).items())],
        **({"model_id": version.tags[MODEL_ID_TAG]} if MODEL_ID_TAG in version.tags else {}),
    }


def _model_message(store: Store, name: str, model: Any = None) -> dict[str, Any]:
    model = model if model is not None else _model(store, name)
    created = _ms(model.created_at)
    latest = []
    if model.latest_version is not None:
        version = registry.get_model_version(store, f"models:/{name}/{model.latest_version}")
        latest = [_version_message(store, version)]
    return {
        "name": model.name,
        "creation_timestamp": created,
        "last_updated_timestamp": _ms(model.updated_at) or created,
        "description": model.description or "",
        "latest_versions": latest,
        "tags": [{"key": k, "value": v} for k, v in sorted(model.tags.items())],
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
    tags = _tag_list(message, f"model {name!r}")
    description = text(message, "description", required=False, limit=10_000)
    if not registry.create_model(store, name, description=description, tags=tags):
        raise MlflowApiError(
            "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists.", 400
        )
    return {"registered_model": _model_message(store, name)}


def _tag_list(message: dict[str, Any], what: str, *, version: bool = False) -> dict[str, str]:
    """A message's ``tags`` (MLflow's list of key/value objects) as a checked dict."""
    pairs = {}
    for entry in items(message, "tags", limit=registry.MAX_TAGS):
        key, value = entry.get("key"), entry.get("value", "")
        if not isinstance(key, str) or not isinstance(value, str):
            raise invalid(f"Each tag of {what} must have a text key and a text value.")
        pairs[_tag_key(key, version=version)] = value
    return registry.check_tags(pairs, what)


def _tag_key(key: str, *, version: bool) -> str:
    if version and key in RESERVED_TAGS:
        raise invalid(
            f"The version tag {key!r} is loopwise's record of where the version's files "
            "come from; use another key."
        )
    return key


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
    own_tags = _tag_list(message, f"a version of {name!r}", version=True)
    files, run_id, tags, what = _source_files(request, store, message, source)
    tags = {**own_tags, **tags}
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


# -- descriptions, tags, latest versions -------------------------------------------------


def _changed_description(message: dict[str, Any]) -> Any:
    """The description a PATCH sets ("" clears it), or UNCHANGED when it sends none."""
    if "description" not in message:
        return registry.UNCHANGED
    return text(message, "description", required=False, limit=10_000)


@endpoint("write")
def update_registered_model(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    store = store_of(request)
    name = _name(request, message)
    registry.update_model(store, name, description=_changed_description(message))
    return {"registered_model": _model_message(store, name)}


@endpoint("write")
def set_registered_model_tag(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    name = _name(request, message)
    key = text(message, "key", limit=registry.MAX_TAG_KEY)
    value = message.get("value", "")
    if not isinstance(value, str):
        raise invalid(f"Parameter 'value' must be a string, got {type(value).__name__}.")
    registry.update_model(store_of(request), name, tags={key: value})
    return {}


@endpoint("write")
def delete_registered_model_tag(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    name = _name(request, message)
    key = text(message, "key", limit=registry.MAX_TAG_KEY)
    store = store_of(request)
    if key not in _model(store, name).tags:
        raise NotFound(f"No tag with key {key!r} on registered model {name!r}.")
    registry.update_model(store, name, delete_tags=[key])
    return {}


@endpoint("write")
def update_model_version(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    store = store_of(request)
    version = _version(request, message)
    description = _changed_description(message)
    if not isinstance(description, registry.Unchanged):
        # loopwise's update_version leaves a None description: "" clears it
        version = registry.update_version(store, version.uri, description=description or "")
    return {"model_version": _version_message(store, version)}


@endpoint("write")
def set_model_version_tag(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    version = _version(request, message)
    key = _tag_key(text(message, "key", limit=registry.MAX_TAG_KEY), version=True)
    value = message.get("value", "")
    if not isinstance(value, str):
        raise invalid(f"Parameter 'value' must be a string, got {type(value).__name__}.")
    registry.update_version(store_of(request), version.uri, tags={key: value})
    return {}


@endpoint("write")
def delete_model_version_tag(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    version = _version(request, message)
    key = _tag_key(text(message, "key", limit=registry.MAX_TAG_KEY), version=True)
    if key not in version.tags:
        raise NotFound(f"No tag with key {key!r} on {version.uri}.")
    registry.update_version(store_of(request), version.uri, delete_tags=[key])
    return {}


#: The stage every loopwise version is in, to MLflow (loopwise has aliases, not stages).
NO_STAGE = "None"


@endpoint("read")
def get_latest_versions(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    """MLflow's newest version per stage: every loopwise version is in stage "None", so
    the newest version, or nothing when ``stages`` leaves "None" out."""
    store = store_of(request)
    name = _name(request, message)
    stages = message.get("stages") or []
    if isinstance(stages, str):
        stages = [stages]
    if not isinstance(stages, list) or not all(isinstance(s, str) for s in stages):
        raise invalid("stages must be a list of stage names.")
    model = _model(store, name)
    if model.latest_version is None or (
        stages and NO_STAGE.lower() not in {s.lower() for s in stages}
    ):
        return {"model_versions": []}
    version = registry.get_model_version(store, f"models:/{name}/{model.latest_version}")
    return {"model_versions": [_version_message(store, version)]}


def _refused(what: str, instead: str) -> Any:
    """A handler answering 501 for an MLflow call loopwise does not take, saying why and
    what to do instead (MLflow's client shows the message)."""

    @endpoint("write")
    def refuse(request: Request, message: dict[str, Any]) -> dict[str, Any]:
        name = text(message, "name", required=False, limit=250)
        if name is not None:
            check_model(request, name)  # a token scoped to other models learns nothing
        raise MlflowApiError(
            "NOT_IMPLEMENTED",
            f"{what} is not supported by loopwise's MLflow API: {instead} "
            "(docs/mlflow.md lists what is supported).",
            501,
        )

    refuse.__name__ = what.lower().replace(" ", "_")
    return refuse


# -- search ----------------------------------------------------------------------------------

#: One clause of MLflow's registry filter: ``name = 'x'``, ``name LIKE 'x%'``,
#: ``name ILIKE 'x%'``, ``run_id = 'x'``, ``run_id IN ('a', 'b')``, ``tags.team = 'x'``,
#: ``tags.`a key` LIKE 'x%'`` (keys may be backquoted).
_CLAUSE = re.compile(
    r"""\s*(?P<key>tags?\.(?:`(?:[^`]|``)+`|[\w.\-]+)|`?[a-z_]+`?)\s*"""
    r"""(?P<op>=|!=|LIKE|ILIKE|IN)\s*"""
    r"""(?P<value>'(?:[^']|'')*'|"(?:[^"]|"")*"|\((?:\s*'(?:[^']|'')*'\s*,?)+\))\s*""",
    re.IGNORECASE,
)
#: The clause MLflow 3's client adds to every search to leave prompts out.
_NOT_PROMPT = re.compile(r"\s*tags?\.`?mlflow\.prompt\.is_prompt`?\s*!=\s*'true'\s*", re.IGNORECASE)
_STRING = re.compile(r"'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\"")
#: The operators each key takes.
_OPERATORS = {
    "name": ("=", "!=", "LIKE", "ILIKE"),
    "run_id": ("=", "!=", "IN"),
    "tags": ("=", "!=", "LIKE", "ILIKE"),
}


def _clause_key(key: str) -> str:
    """``name``, ``run_id``, or ``tags.<key>`` with its key unquoted."""
    _, dot, rest = key.partition(".")
    if not dot:
        return key.strip("`").lower()
    if rest.startswith("`"):
        rest = rest[1:-1].replace("``", "`")
    return f"tags.{rest}"


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
                + ", name LIKE '...%', tags.<key> = '...' joined by AND)"
            )
        key, op = _clause_key(found["key"]), found["op"].upper()
        kind = "tags" if key.startswith("tags.") else key
        if kind not in (*keys, "tags") or op not in _OPERATORS[kind]:
            raise unsupported(f"Searching by {key[:200]} {op}")
        values = [
            a.replace("''", "'") if a or not b else b for a, b in _STRING.findall(found["value"])
        ]
        clauses.append((key, op, values))
    return clauses


def _like(pattern: str, value: str, *, case: bool) -> bool:
    """SQL's LIKE (``%`` any text, ``_`` one character) on ``value``."""
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, 0 if case else re.IGNORECASE | re.DOTALL) is not None


def _passes(
    clauses: list[tuple[str, str, list[str]]], fields: dict[str, str], tags: dict[str, str]
) -> bool:
    """Whether an entity with ``fields`` and ``tags`` passes every clause; as in MLflow, a
    tag clause needs the tag (an absent tag passes no test of it, ``!=`` either)."""
    for key, op, values in clauses:
        value = tags.get(key[5:]) if key.startswith("tags.") else fields.get(key)
        if value is None:
            return False
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


@endpoint("read", body=False)
def search_registered_models(request: Request, message: dict[str, Any]) -> dict[str, Any]:
    """``registered-models/search``: MLflow's ``name`` filters, order by name or time,
    paged; over :func:`loopwise.registry.models.list_models`."""
    store = store_of(request)
    clauses = _registry_filter(text(message, "filter", required=False), ("name",))
    found = [
        m
        for m in registry.list_models(store)
        if _passes(clauses, {"name": m.name}, m.tags) and _may_read(request, m.name)
    ]
    by = {
        "name": lambda m: m.name,
        "timestamp": lambda m: m.created_at,
        "creation_timestamp": lambda m: m.created_at,
        "last_updated_timestamp": lambda m: m.updated_at or m.created_at,
    }
    found = _ordered(found, message, by, ["name ASC"])
    page, token = _page(message, found, 100, 1000)
    answer: dict[str, Any] = {"registered_models": [_model_message(store, m.name, m) for m in page]}
    if token:
        answer["next_page_token"] = token
    return answer


def _shown_tags(version: ModelVersion) -> dict[str, str]:
    """A version's tags as MLflow sees them (loopwise's own are left out)."""
    return {k: v for k, v in version.tags.items() if k not in RESERVED_TAGS}


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
    of_model = [c for c in clauses if c[0] == "name"]
    of_version = [c for c in clauses if c[0] != "name"]
    found = []
    for name in names:
        if not _may_read(request, name) or not _passes(of_model, {"name": name}, {}):
            continue
        for version in registry.list_versions(store, name):
            fields = {"run_id": version.run_id or ""}
            if _passes(of_version, fields, _shown_tags(version)):
                found.append(version)
    by = {
        "name": lambda v: v.name,
        "version_number": lambda v: v.version,
        "version": lambda v: v.version,
        "creation_timestamp": lambda v: v.created_at,
        "timestamp": lambda v: v.created_at,
        "last_updated_timestamp": lambda v: v.updated_at or v.created_at,
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
    ("PATCH", "registered-models/update", update_registered_model),
    ("POST", "registered-models/set-tag", set_registered_model_tag),
    ("DELETE", "registered-models/delete-tag", delete_registered_model_tag),
    ("PATCH", "model-versions/update", update_model_version),
    ("POST", "model-versions/set-tag", set_model_version_tag),
    ("DELETE", "model-versions/delete-tag", delete_model_version_tag),
    ("POST", "registered-models/get-latest-versions", get_latest_versions),
    ("GET", "registered-models/get-latest-versions", get_latest_versions),
    (
        "POST",
        "model-versions/transition-stage",
        _refused(
            "Moving a version between stages",
            "loopwise has aliases instead of stages; set one with "
            "set_registered_model_alias(name, 'champion', version)",
        ),
    ),
    (
        "POST",
        "registered-models/rename",
        _refused(
            "Renaming a registered model",
            "serving endpoints, monitors and the lineage of predictions name a model by "
            "its name, which therefore never changes",
        ),
    ),
    (
        "DELETE",
        "registered-models/delete",
        _refused(
            "Deleting a registered model",
            "its versions are kept so every prediction stays traceable to the model "
            "behind it; delete its aliases to take it out of use",
        ),
    ),
    (
        "DELETE",
        "model-versions/delete",
        _refused(
            "Deleting a model version",
            "versions are kept so every prediction stays traceable to the model behind "
            "it; delete its aliases to take it out of use",
        ),
    ),
]

__all__ = ["ROUTES"]
