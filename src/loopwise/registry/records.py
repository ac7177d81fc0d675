"""What the registry returns: model versions, models and alias moves.

Each record has ``to_dict`` (what the REST API answers) and ``from_dict`` (what the remote
client builds from that answer), so a call through a server returns the same classes,
with the same fields and types, as a call on the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ModelVersion:
    """One immutable, packaged version of a registered model."""

    id: str
    name: str
    version: int
    run_id: str | None
    flavor: str
    created_at: datetime
    aliases: list[str] = field(default_factory=list)
    size: int = 0
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    created_by: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    #: When the description or a tag last changed (None: never since it was registered).
    updated_at: datetime | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def signature(self) -> dict[str, Any] | None:
        return self.manifest.get("signature")

    def to_dict(self, *, with_manifest: bool = False) -> dict[str, Any]:
        """The version as JSON; ``with_manifest`` adds the whole package manifest (files,
        requirements, metadata), which the REST API's version routes answer."""
        data = {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "run_id": self.run_id,
            "flavor": self.flavor,
            "aliases": list(self.aliases),
            "size": self.size,
            "description": self.description,
            "tags": dict(self.tags),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "updated_at": _iso(self.updated_at),
            "signature": self.signature,
        }
        if with_manifest:
            data["manifest"] = self.manifest
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelVersion:
        """The version :meth:`to_dict` described (without a manifest, only its signature)."""
        manifest = data.get("manifest")
        if manifest is None:
            manifest = {} if data.get("signature") is None else {"signature": data["signature"]}
        return cls(
            id=data["id"],
            name=data["name"],
            version=data["version"],
            run_id=data.get("run_id"),
            flavor=data["flavor"],
            created_at=datetime.fromisoformat(data["created_at"]),
            aliases=list(data.get("aliases") or []),
            size=data.get("size", 0),
            description=data.get("description"),
            tags=dict(data.get("tags") or {}),
            created_by=data.get("created_by"),
            manifest=dict(manifest),
            updated_at=_parsed(data.get("updated_at")),
        )


@dataclass(frozen=True)
class RegisteredModel:
    """A named model with its versions and current aliases."""

    name: str
    created_at: datetime
    description: str | None
    versions: int
    latest_version: int | None
    aliases: dict[str, int]
    tags: dict[str, str] = field(default_factory=dict)
    #: When the description or a tag last changed (None: never since it was created).
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "description": self.description,
            "versions": self.versions,
            "latest_version": self.latest_version,
            "aliases": dict(self.aliases),
            "tags": dict(self.tags),
            "updated_at": _iso(self.updated_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegisteredModel:
        return cls(
            name=data["name"],
            created_at=datetime.fromisoformat(data["created_at"]),
            description=data.get("description"),
            versions=data["versions"],
            latest_version=data.get("latest_version"),
            aliases=dict(data.get("aliases") or {}),
            tags=dict(data.get("tags") or {}),
            updated_at=_parsed(data.get("updated_at")),
        )


@dataclass(frozen=True)
class AliasMove:
    """One recorded move of an alias: who moved it, when, from which version to which, why."""

    model: str
    alias: str
    kind: str  # "set", "rollback" or "delete"
    from_version: int | None
    to_version: int | None
    moved_at: datetime
    moved_by: str | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "kind": self.kind,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "moved_at": self.moved_at.isoformat(),
            "moved_by": self.moved_by,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AliasMove:
        return cls(
            model=data["model"],
            alias=data["alias"],
            kind=data["kind"],
            from_version=data.get("from_version"),
            to_version=data.get("to_version"),
            moved_at=datetime.fromisoformat(data["moved_at"]),
            moved_by=data.get("moved_by"),
            reason=data.get("reason"),
        )


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _parsed(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
