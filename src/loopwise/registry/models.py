"""The model registry in the metadata store: models, versions, aliases and their history.

Versions are immutable and numbered per model. Package files are content-addressed blobs
in the artifact store, named per version in the ``artifacts`` table, so a re-registered
identical model costs no space. Every alias move is an ``alias_events`` row (who, when,
from which version to which, why), which answers "what held ``champion`` at time T" and
makes rollback a walk back through that history. Moves of one model's aliases are
serialised (SQLite's write lock, a row lock on PostgreSQL), so concurrent promotions
leave a consistent history: each move's ``from_version`` is the version it replaced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select, update

from loopwise.clock import now_us, to_datetime, to_us
from loopwise.errors import Conflict, InvalidInput, NotFound
from loopwise.identity import current_user
from loopwise.ids import new_id
from loopwise.refs import parse_ref
from loopwise.registry.records import AliasMove, ModelVersion, RegisteredModel
from loopwise.store import Store
from loopwise.store.lineage import Node, add_edge
from loopwise.store.locks import lock_rows
from loopwise.store.numbering import next_version
from loopwise.store.tables import (
    alias_events,
    artifacts,
    model_aliases,
    model_versions,
    registered_models,
)
from loopwise.store.upsert import insert_on_conflict
from loopwise.tracking.naming import naming_rule

ENTITY = "model_version"
PRODUCED_BY = "produced_by"
TRAINED_ON = "trained_on"
_ALIAS = re.compile(r"[a-z][a-z0-9_-]{0,62}")
RESERVED_ALIASES = {"latest"}


def check_model_name(store: Store, name: str) -> None:
    """Model names follow the ``model_name_rule`` setting (kebab-case by default)."""
    naming_rule(store.settings.model_name_rule).check(
        name, kind="Model name", setting="LOOPWISE_MODEL_NAME_RULE"
    )


def check_alias(alias: str) -> None:
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or alias in RESERVED_ALIASES:
        raise InvalidInput(
            f"Alias {alias!r} is not valid: use lower-case letters, digits, '-' and '_', "
            "starting with a letter (e.g. 'champion'); 'latest' is reserved for the newest "
            "version."
        )


def resolve_model_id(conn: Connection, name: str, *, lock: bool = False) -> str:
    query = select(registered_models.c.id).where(registered_models.c.name == name)
    if lock:
        query = lock_rows(conn, query)
    model_id = conn.execute(query).scalar()
    if model_id is None:
        known = [r[0] for r in conn.execute(select(registered_models.c.name).limit(20))]
        raise NotFound(
            f"No model named {name!r}. Known models: {', '.join(known) or 'none yet'}. "
            "Register one with lw.log_model(model, name=...)."
        )
    return model_id


# -- registering -----------------------------------------------------------------------------


def register_version(
    store: Store,
    name: str,
    package_dir: Path,
    manifest: Mapping[str, Any],
    *,
    run_id: str | None = None,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    dataset_version_ids: list[str] | None = None,
) -> ModelVersion:
    """Store a saved package as the next version of model ``name``."""
    check_model_name(store, name)
    files = [(f["path"], package_dir / f["path"]) for f in manifest["files"]]
    files.append(("loopwise_model.json", package_dir / "loopwise_model.json"))
    blobs = [(path, store.artifacts.put_file(local)) for path, local in files]
    size = sum(blob.size for _, blob in blobs)
    now = now_us()
    version_id = new_id()
    with store.db.write() as conn:
        insert_on_conflict(
            conn,
            registered_models,
            [{"id": new_id(), "name": name, "description": None, "created_at": now}],
            keys=["name"],
        )
        model_id = resolve_model_id(conn, name, lock=True)
        number = next_version(conn, model_versions.c.version, model_versions.c.model_id, model_id)
        conn.execute(
            model_versions.insert().values(
                id=version_id,
                model_id=model_id,
                version=number,
                run_id=run_id,
                flavor=manifest["flavor"],
                manifest=json.dumps(manifest, default=str),
                size=size,
                description=description,
                tags=json.dumps({k: str(v) for k, v in (tags or {}).items()}),
                created_at=now,
                created_by=current_user(),
            )
        )
        conn.execute(
            artifacts.insert(),
            [
                {
                    "entity_type": ENTITY,
                    "entity_id": version_id,
                    "path": path,
                    "sha256": blob.sha256,
                    "size": blob.size,
                    "created_at": now,
                }
                for path, blob in blobs
            ],
        )
        node = Node(ENTITY, version_id)
        if run_id is not None:
            add_edge(conn, node, PRODUCED_BY, Node("run", run_id))
        for dataset_version_id in dataset_version_ids or []:
            add_edge(conn, node, TRAINED_ON, Node("dataset_version", dataset_version_id))
    return get_model_version(store, f"models:/{name}/{number}")


# -- reading ---------------------------------------------------------------------------------


def _version_from_row(row: Any, aliases: list[str]) -> ModelVersion:
    return ModelVersion(
        id=row.id,
        name=row.name,
        version=row.version,
        run_id=row.run_id,
        flavor=row.flavor,
        created_at=to_datetime(row.created_at),
        aliases=aliases,
        size=row.size,
        description=row.description,
        tags=json.loads(row.tags) if row.tags else {},
        created_by=row.created_by,
        manifest=json.loads(row.manifest),
        updated_at=None if row.updated_at is None else to_datetime(row.updated_at),
    )


def _versions_query() -> Any:
    return select(model_versions, registered_models.c.name).join(
        registered_models, registered_models.c.id == model_versions.c.model_id
    )


def _aliases_of(conn: Connection, version_ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if version_ids:
        for version_id, alias in conn.execute(
            select(model_aliases.c.version_id, model_aliases.c.alias)
            .where(model_aliases.c.version_id.in_(version_ids))
            .order_by(model_aliases.c.alias)
        ):
            found.setdefault(version_id, []).append(alias)
    return found


def version_id(store: Store, uri: str) -> str | None:
    """The id of the version ``uri`` names now, in one query; None when there is none.

    For pollers (a served model following its alias): the cheap question "has it moved?",
    asked every few seconds; :func:`get_model_version` gives the whole version, or the
    error that explains why there is none.
    """
    ref = parse_ref(uri, kind="models")
    v = model_versions.c
    query = (
        select(v.id)
        .join(registered_models, registered_models.c.id == v.model_id)
        .where(registered_models.c.name == ref.name)
    )
    if ref.version is not None:
        query = query.where(v.version == ref.version)
    elif ref.alias is None or ref.alias == "latest":
        query = query.order_by(v.version.desc()).limit(1)
    else:
        query = query.join(
            model_aliases,
            (model_aliases.c.version_id == v.id) & (model_aliases.c.alias == ref.alias),
        )
    with store.db.read() as conn:
        return conn.execute(query).scalar()


def get_model_version(store: Store, uri: str) -> ModelVersion:
    """The version named by ``models:/name/3``, ``models:/name@alias`` or ``@latest``."""
    ref = parse_ref(uri, kind="models")
    with store.db.read() as conn:
        model_id = resolve_model_id(conn, ref.name)
        query = _versions_query().where(model_versions.c.model_id == model_id)
        if ref.version is not None:
            query = query.where(model_versions.c.version == ref.version)
        elif ref.alias is None or ref.alias == "latest":
            query = query.order_by(model_versions.c.version.desc()).limit(1)
        else:
            query = query.join(
                model_aliases,
                (model_aliases.c.version_id == model_versions.c.id)
                & (model_aliases.c.alias == ref.alias),
            )
        row = conn.execute(query).first()
        if row is None:
            if ref.alias not in (None, "latest"):
                aliases = [
                    r[0]
                    for r in conn.execute(
                        select(model_aliases.c.alias).where(model_aliases.c.model_id == model_id)
                    )
                ]
                raise NotFound(
                    f"Model {ref.name!r} has no alias {ref.alias!r}; its aliases: "
                    f"{', '.join(sorted(aliases)) or 'none'}. Set one with "
                    f"lw.set_alias({ref.name!r}, {ref.alias!r}, version=N)."
                )
            raise NotFound(
                f"Model {ref.name!r} has no version {ref.version}"
                if ref.version is not None
                else f"Model {ref.name!r} has no versions yet."
            )
        aliases = _aliases_of(conn, [row.id]).get(row.id, [])
    return _version_from_row(row, aliases)


def list_models(store: Store, *, name: str | None = None) -> list[RegisteredModel]:
    """Every registered model (or only the one called ``name``) with its number of versions
    and current aliases."""
    only = [] if name is None else [registered_models.c.name == name]
    with store.db.read() as conn:
        models = conn.execute(
            select(registered_models).where(*only).order_by(registered_models.c.name)
        ).all()
        ids = [m.id for m in models]
        of_models = [] if name is None else [model_versions.c.model_id.in_(ids)]
        counts = {
            model_id: (n, latest)
            for model_id, n, latest in conn.execute(
                select(
                    model_versions.c.model_id,
                    func.count(),
                    func.max(model_versions.c.version),
                )
                .where(*of_models)
                .group_by(model_versions.c.model_id)
            )
        }
        aliases: dict[str, dict[str, int]] = {}
        for model_id, alias, version in conn.execute(
            select(model_aliases.c.model_id, model_aliases.c.alias, model_versions.c.version)
            .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
            .where(*of_models)
        ):
            aliases.setdefault(model_id, {})[alias] = version
    return [
        RegisteredModel(
            name=m.name,
            created_at=to_datetime(m.created_at),
            description=m.description,
            versions=counts.get(m.id, (0, None))[0],
            latest_version=counts.get(m.id, (0, None))[1],
            aliases=aliases.get(m.id, {}),
            tags=json.loads(m.tags) if m.tags else {},
            updated_at=None if m.updated_at is None else to_datetime(m.updated_at),
        )
        for m in models
    ]


def get_model(store: Store, name: str) -> RegisteredModel | None:
    """The registered model called ``name`` with its versions' count and aliases (None if
    there is none: each caller says so in its own terms)."""
    found = list_models(store, name=name)
    return found[0] if found else None


def list_versions(store: Store, name: str) -> list[ModelVersion]:
    """Every version of model ``name``, oldest first."""
    with store.db.read() as conn:
        model_id = resolve_model_id(conn, name)
        rows = conn.execute(
            _versions_query()
            .where(model_versions.c.model_id == model_id)
            .order_by(model_versions.c.version)
        ).all()
        aliases = _aliases_of(conn, [r.id for r in rows])
    return [_version_from_row(r, aliases.get(r.id, [])) for r in rows]


def package_files(store: Store, version_id: str) -> list[tuple[str, str]]:
    """(relative path, sha256) of every file of a version's package."""
    with store.db.read() as conn:
        return [
            (path, sha)
            for path, sha in conn.execute(
                select(artifacts.c.path, artifacts.c.sha256)
                .where(artifacts.c.entity_type == ENTITY)
                .where(artifacts.c.entity_id == version_id)
                .order_by(artifacts.c.path)
            )
        ]


# -- aliases ---------------------------------------------------------------------------------


def current_holder(conn: Connection, model_id: str, alias: str) -> int | None:
    return conn.execute(
        select(model_versions.c.version)
        .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
        .where(model_aliases.c.model_id == model_id)
        .where(model_aliases.c.alias == alias)
    ).scalar()


def move_alias(
    conn: Connection,
    model_id: str,
    name: str,
    alias: str,
    version: int | None,
    *,
    kind: str,
    reason: str | None,
) -> AliasMove:
    """Point ``alias`` at ``version`` (None removes it) and record the move."""
    before = current_holder(conn, model_id, alias)
    now = now_us()
    if version is None:
        conn.execute(
            model_aliases.delete()
            .where(model_aliases.c.model_id == model_id)
            .where(model_aliases.c.alias == alias)
        )
    else:
        version_id = conn.execute(
            select(model_versions.c.id)
            .where(model_versions.c.model_id == model_id)
            .where(model_versions.c.version == version)
        ).scalar()
        if version_id is None:
            raise NotFound(
                f"Model {name!r} has no version {version}; cannot point {alias!r} at it."
            )
        insert_on_conflict(
            conn,
            model_aliases,
            [{"model_id": model_id, "alias": alias, "version_id": version_id, "updated_at": now}],
            keys=["model_id", "alias"],
            update=["version_id", "updated_at"],
        )
    user = current_user()
    conn.execute(
        alias_events.insert().values(
            model_id=model_id,
            alias=alias,
            kind=kind,
            from_version=before,
            to_version=version,
            moved_at=now,
            moved_by=user,
            reason=reason,
        )
    )
    return AliasMove(name, alias, kind, before, version, to_datetime(now), user, reason)


def set_alias(
    store: Store, name: str, alias: str, version: int, *, reason: str | None = None
) -> AliasMove:
    """Point ``alias`` of model ``name`` at ``version`` and record who, when and why."""
    check_alias(alias)
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidInput(f"version must be an integer version number, got {version!r}.")
    with store.db.write() as conn:
        model_id = resolve_model_id(conn, name, lock=True)
        return move_alias(conn, model_id, name, alias, version, kind="set", reason=reason)


def delete_alias(store: Store, name: str, alias: str, *, reason: str | None = None) -> AliasMove:
    """Remove an alias (recorded in its history)."""
    with store.db.write() as conn:
        model_id = resolve_model_id(conn, name, lock=True)
        if current_holder(conn, model_id, alias) is None:
            raise NotFound(f"Model {name!r} has no alias {alias!r}.")
        return move_alias(conn, model_id, name, alias, None, kind="delete", reason=reason)


def _events(conn: Connection, model_id: str, alias: str | None) -> list[Any]:
    query = select(alias_events).where(alias_events.c.model_id == model_id)
    if alias is not None:
        query = query.where(alias_events.c.alias == alias)
    return conn.execute(query.order_by(alias_events.c.id)).all()


def alias_history(store: Store, name: str, alias: str | None = None) -> list[AliasMove]:
    """Every recorded move of the model's aliases (or of one alias), oldest first."""
    with store.db.read() as conn:
        model_id = resolve_model_id(conn, name)
        rows = _events(conn, model_id, alias)
    return [
        AliasMove(
            name,
            r.alias,
            r.kind,
            r.from_version,
            r.to_version,
            to_datetime(r.moved_at),
            r.moved_by,
            r.reason,
        )
        for r in rows
    ]


def version_at(store: Store, name: str, alias: str, at: datetime | float) -> int | None:
    """The version that held ``alias`` at moment ``at`` (None if none did)."""
    moment = to_us(at, what="at")
    with store.db.read() as conn:
        model_id = resolve_model_id(conn, name)
        row = conn.execute(
            select(alias_events.c.to_version)
            .where(alias_events.c.model_id == model_id)
            .where(alias_events.c.alias == alias)
            .where(alias_events.c.moved_at <= moment)
            .order_by(alias_events.c.moved_at.desc(), alias_events.c.id.desc())
            .limit(1)
        ).first()
    return row[0] if row is not None else None


def _holders(events: list[Any]) -> list[int | None]:
    """The stack of holders after replaying events: a rollback pops the current one."""
    stack: list[int | None] = []
    for event in events:
        if event.kind == "rollback":
            if stack:
                stack.pop()
        elif event.kind == "delete":
            stack.append(None)
        else:
            stack.append(event.to_version)
    return stack


def rollback(store: Store, name: str, alias: str, *, reason: str | None = None) -> AliasMove:
    """Move ``alias`` back to the version that held it before the current one.

    Rollbacks stack: rolling back twice from 3 (after 1 → 2 → 3) lands on 1.
    """
    with store.db.write() as conn:
        model_id = resolve_model_id(conn, name, lock=True)
        stack = _holders(_events(conn, model_id, alias))
        if len(stack) < 2 or stack[-2] is None:
            raise Conflict(
                f"Alias {alias!r} of model {name!r} has no earlier holder to roll back to. "
                f"See its history with `loopwise models history {name}`."
            )
        return move_alias(
            conn,
            model_id,
            name,
            alias,
            stack[-2],
            kind="rollback",
            reason=reason or f"rollback from version {stack[-1]}",
        )


def create_model(
    store: Store,
    name: str,
    *,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> bool:
    """Register model ``name`` with no version yet (an MLflow client registers the name
    before its first version); False when it already exists, which changes nothing."""
    check_model_name(store, name)
    checked = check_tags(tags, f"model {name!r}")
    with store.db.write() as conn:
        held = conn.execute(
            select(registered_models.c.id).where(registered_models.c.name == name)
        ).first()
        row = {"id": new_id(), "name": name, "description": description, "created_at": now_us()}
        if checked:
            row["tags"] = json.dumps(checked)
        insert_on_conflict(conn, registered_models, [row], keys=["name"])
    return held is None


#: Tags of one model or version at most, and the longest tag key and value.
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 1000, 250, 10_000


class Unchanged:
    """The default of a field an update leaves as it is (None would clear it)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = Unchanged()


def check_tags(tags: Mapping[str, Any] | None, what: str) -> dict[str, str]:
    """``tags`` as text (numbers and booleans are written as text), each key 1 to 250
    characters and each value at most 10,000, without NUL; a mistake names the tag."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidInput(
            f"The tags of {what} must be a dict of key -> value, got {type(tags).__name__}."
        )
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"{what} is given {len(tags):,} tags; at most {MAX_TAGS:,}.")
    checked = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_TAG_KEY or "\x00" in key:
            raise InvalidInput(
                f"Tag key {str(key)[:100]!r} of {what} must be text of 1 to {MAX_TAG_KEY} "
                "characters, without NUL."
            )
        if value is None or isinstance(value, dict | list | tuple | set):
            raise InvalidInput(
                f"Tag {key!r} of {what} must have a text value, got {type(value).__name__}; "
                "delete a tag with delete_tags=[key]."
            )
        text = str(value)
        if len(text) > MAX_TAG_VALUE or "\x00" in text:
            raise InvalidInput(
                f"Tag {key!r} of {what} must have a value of at most {MAX_TAG_VALUE:,} "
                "characters, without NUL."
            )
        checked[key] = text
    return checked


def _retagged(
    held: str | None, tags: Mapping[str, Any] | None, delete_tags: Any, what: str
) -> str | None:
    """The stored JSON of tags ``held`` with ``tags`` merged in and ``delete_tags`` removed
    (None when nothing changes); more than 1,000 tags is refused."""
    new = check_tags(tags, what)
    if isinstance(delete_tags, str) or not all(isinstance(k, str) for k in delete_tags or ()):
        raise InvalidInput(
            f"delete_tags of {what} must be a list of tag keys, got {delete_tags!r:.100}."
        )
    gone = set(delete_tags or ())
    if not new and not gone:
        return None
    merged = {**(json.loads(held) if held else {}), **new}
    for key in gone - set(new):
        merged.pop(key, None)
    if len(merged) > MAX_TAGS:
        raise InvalidInput(f"{what} would have {len(merged):,} tags; at most {MAX_TAGS:,}.")
    return json.dumps(merged)


def _change(
    conn: Connection,
    table: Any,
    row_id: str,
    changes: dict[str, Any],
    tags: Mapping[str, Any] | None,
    delete_tags: Any,
    what: str,
) -> None:
    """Write ``changes`` and the tags of row ``row_id`` of ``table`` (a model or a
    version) merged with ``tags`` and without ``delete_tags``, stamped ``updated_at``;
    nothing when nothing changes. Inside the caller's transaction, its lock held."""
    held = conn.execute(select(table.c.tags).where(table.c.id == row_id)).scalar()
    retagged = _retagged(held, tags, delete_tags, what)
    if retagged is not None:
        changes = {**changes, "tags": retagged}
    if changes:
        conn.execute(
            update(table).where(table.c.id == row_id).values(**changes, updated_at=now_us())
        )


def _description(description: Any, what: str) -> None:
    if description is not None and not isinstance(description, str | Unchanged):
        raise InvalidInput(
            f"The description of {what} must be text or None. "
            f"Got {type(description).__name__} {description!r:.100}."
        )


def update_model(
    store: Store,
    name: str,
    *,
    description: str | Unchanged | None = UNCHANGED,
    tags: Mapping[str, Any] | None = None,
    delete_tags: list[str] | tuple[str, ...] | None = None,
) -> RegisteredModel:
    """Set (or, with None, clear) the description of model ``name`` -- what it is for --
    merge ``tags`` into its tags and remove the keys in ``delete_tags``. One transaction
    with the model's row locked: two writers' tags are both kept."""
    what = f"model {name!r}"
    _description(description, what)
    changes = {} if isinstance(description, Unchanged) else {"description": description}
    with store.db.write() as conn:
        model_id = resolve_model_id(conn, name, lock=True)
        _change(conn, registered_models, model_id, changes, tags, delete_tags, what)
    found = get_model(store, name)
    if found is None:  # resolved above: only a concurrent delete could remove it
        raise NotFound(f"Model {name!r} no longer exists.")
    return found


def update_version(
    store: Store,
    uri: str,
    *,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    delete_tags: list[str] | tuple[str, ...] | None = None,
) -> ModelVersion:
    """Change a version's description (None leaves it), merge ``tags`` into its tags and
    remove the keys in ``delete_tags``; the package itself never changes. The model's row
    is locked for the change, so concurrent taggers do not lose each other's tags."""
    version = get_model_version(store, uri)
    what = f"version {version.uri}"
    _description(description, what)
    changes = {} if description is None else {"description": description}
    with store.db.write() as conn:
        resolve_model_id(conn, version.name, lock=True)
        _change(conn, model_versions, version.id, changes, tags, delete_tags, what)
    return get_model_version(store, version.uri)
