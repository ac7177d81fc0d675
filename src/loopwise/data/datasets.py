"""Dataset versions: immutable, content-addressed Parquet in the artifact store.

``log_dataset`` turns any supported input into a Polars frame, writes it as Parquet with
fixed writer settings, and hashes the file: the same data logged twice is the same
version, not a copy. A new version gets the next number for its name, a profile and the
column types, optionally the schema it was validated against and the report; and when a
run is active, a lineage edge ``run --input--> dataset_version``.

The hash is over the Parquet bytes that loopwise writes, so it is stable for a given
loopwise/Polars version; upgrading Polars may make identical data a new version.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import func, select

from loopwise.clock import now_us, to_datetime
from loopwise.data.frames import DataLike, to_polars
from loopwise.data.profiles import Profile
from loopwise.errors import InvalidInput, NotFound
from loopwise.ids import new_id
from loopwise.refs import parse_ref
from loopwise.store import Store
from loopwise.store.lineage import Node, add_edge
from loopwise.store.numbering import next_version
from loopwise.store.tables import dataset_versions, datasets
from loopwise.store.upsert import insert_on_conflict

INPUT_RELATION = "input"
_NAME_MAX = 250


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a dataset."""

    id: str
    name: str
    version: int
    sha256: str
    size: int
    rows: int
    columns: int
    column_types: dict[str, str]
    created_at: datetime
    run_id: str | None
    source: str | None
    profile: Profile | None
    schema: dict[str, Any] | None
    validation: dict[str, Any] | None

    @property
    def uri(self) -> str:
        return f"datasets:/{self.name}/{self.version}"

    def __repr__(self) -> str:
        # one line: the profile, schema and column types stay in to_dict(with_profile=True)
        return (
            f"DatasetVersion({self.uri}, rows={self.rows}, columns={self.columns}, id={self.id!r})"
        )

    def to_dict(self, *, with_profile: bool = False) -> dict[str, Any]:
        data = {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "sha256": self.sha256,
            "size": self.size,
            "rows": self.rows,
            "columns": self.columns,
            "column_types": self.column_types,
            "created_at": self.created_at.isoformat(),
            "run_id": self.run_id,
            "source": self.source,
            "validation_ok": None if self.validation is None else self.validation.get("ok"),
        }
        if with_profile:
            data["profile"] = self.profile.to_dict() if self.profile else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetVersion:
        """A version from its JSON form (a server's answer): :meth:`to_dict` with
        ``profile``, plus ``schema`` and ``validation`` when they were kept."""
        profile = data.get("profile")
        return cls(
            id=data["id"],
            name=data["name"],
            version=int(data["version"]),
            sha256=data["sha256"],
            size=int(data["size"]),
            rows=int(data["rows"]),
            columns=int(data["columns"]),
            column_types=dict(data["column_types"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            run_id=data.get("run_id"),
            source=data.get("source"),
            profile=Profile.from_dict(profile) if profile else None,
            schema=data.get("schema"),
            validation=data.get("validation"),
        )


@dataclass(frozen=True)
class DatasetInfo:
    """A named dataset and a summary of its versions."""

    name: str
    versions: int
    latest_version: int | None
    latest_rows: int | None
    created_at: datetime
    description: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": self.versions,
            "latest_version": self.latest_version,
            "latest_rows": self.latest_rows,
            "created_at": self.created_at.isoformat(),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        """A dataset summary from its JSON form (a server's answer)."""
        return cls(
            name=data["name"],
            versions=int(data["versions"]),
            latest_version=data.get("latest_version"),
            latest_rows=data.get("latest_rows"),
            created_at=datetime.fromisoformat(data["created_at"]),
            description=data.get("description"),
        )


def check_name(name: str) -> None:
    """Refuse a name a dataset reference (``datasets:/name/3``) cannot hold."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > _NAME_MAX
        or not all(ch.isalnum() or ch in "_-." for ch in name)
        or not name[0].isalnum()
    ):
        raise InvalidInput(
            f"Dataset name {name!r} is not valid: use letters, digits, '_', '-' and '.', "
            f"starting with a letter or digit, at most {_NAME_MAX} characters (e.g. 'loans')."
        )


def check_columns(frame: pl.DataFrame, name: str) -> None:
    """Refuse a frame without columns: there is nothing to version."""
    if frame.width == 0:
        raise InvalidInput(f"Dataset {name!r} has no columns; there is nothing to version.")


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    # Fixed settings so identical data gives identical bytes (and the same version).
    frame.write_parquet(path, compression="zstd", compression_level=3, statistics=True)


def source_of(data: DataLike) -> str:
    """Where ``data`` came from, as a version records it: a file's absolute path, or the
    kind of frame (``<pandas.DataFrame>``)."""
    if isinstance(data, str | os.PathLike):
        return str(Path(data).resolve())
    return f"<{type(data).__module__.split('.')[0]}.{type(data).__name__}>"


def log_dataset(
    store: Store,
    data: DataLike,
    name: str,
    *,
    description: str | None = None,
    run_id: str | None = None,
    schema: Any = None,
    validation: Any = None,
    source: str | None = None,
) -> DatasetVersion:
    """Store ``data`` as a version of dataset ``name`` (or find the identical version).

    ``schema`` (a :class:`~loopwise.data.schema.Schema`) and ``validation`` (its
    :class:`~loopwise.data.validation.ValidationReport`) are recorded with a new version.
    ``source`` says where the data came from when ``data`` cannot (an upload: the
    client's file or frame kind); by default it is :func:`source_of` ``data``.
    """
    check_name(name)
    frame = to_polars(data, what=f"dataset {name!r}")
    check_columns(frame, name)
    with tempfile.TemporaryDirectory(prefix="loopwise-ds-") as tmp:
        path = Path(tmp) / "data.parquet"
        _write_parquet(frame, path)
        blob = store.artifacts.put_file(path)
    existing = _find_by_hash(store, name, blob.sha256)
    if existing is None:
        from loopwise.data.profiling import profile as compute_profile

        profile_doc = json.dumps(compute_profile(frame).to_dict(), allow_nan=False)
        existing = _insert_version(
            store,
            name,
            description=description,
            sha256=blob.sha256,
            size=blob.size,
            frame=frame,
            source=source if source is not None else source_of(data),
            profile=profile_doc,
            schema=json.dumps(schema.to_dict()) if schema is not None else None,
            validation=json.dumps(validation.to_dict()) if validation is not None else None,
            run_id=run_id,
        )
    if run_id is not None:
        with store.db.write() as conn:
            add_edge(
                conn, Node("run", run_id), INPUT_RELATION, Node("dataset_version", existing.id)
            )
    return existing


def _find_by_hash(store: Store, name: str, sha256: str) -> DatasetVersion | None:
    with store.db.read() as conn:
        row = conn.execute(
            _version_query()
            .where(datasets.c.name == name)
            .where(dataset_versions.c.sha256 == sha256)
        ).first()
    return _version_from_row(row) if row is not None else None


def _insert_version(
    store: Store, name: str, *, description: str | None, frame: pl.DataFrame, **values: Any
) -> DatasetVersion:
    now = now_us()
    with store.db.write() as conn:
        insert_on_conflict(
            conn,
            datasets,
            [{"id": new_id(), "name": name, "description": description, "created_at": now}],
            keys=["name"],
        )
        dataset_id = conn.execute(select(datasets.c.id).where(datasets.c.name == name)).scalar()
        # next_version locks the dataset's row first: of two writers of the same content,
        # the second finds the first's version here and adds none.
        number = next_version(
            conn, dataset_versions.c.version, dataset_versions.c.dataset_id, dataset_id
        )
        again = conn.execute(
            select(dataset_versions.c.id)
            .where(dataset_versions.c.dataset_id == dataset_id)
            .where(dataset_versions.c.sha256 == values["sha256"])
        ).scalar()
        if again is None:
            version_id = new_id()
            conn.execute(
                dataset_versions.insert().values(
                    id=version_id,
                    dataset_id=dataset_id,
                    version=number,
                    rows=frame.height,
                    columns=frame.width,
                    format="parquet",
                    column_types=json.dumps({c: str(t) for c, t in frame.schema.items()}),
                    created_at=now,
                    **values,
                )
            )
        row = conn.execute(
            _version_query()
            .where(dataset_versions.c.dataset_id == dataset_id)
            .where(dataset_versions.c.sha256 == values["sha256"])
        ).one()
    return _version_from_row(row)


def _version_query() -> Any:
    return select(dataset_versions, datasets.c.name).join(
        datasets, datasets.c.id == dataset_versions.c.dataset_id
    )


def _version_from_row(row: Any) -> DatasetVersion:
    return DatasetVersion(
        id=row.id,
        name=row.name,
        version=row.version,
        sha256=row.sha256,
        size=row.size,
        rows=row.rows,
        columns=row.columns,
        column_types=json.loads(row.column_types),
        created_at=to_datetime(row.created_at),
        run_id=row.run_id,
        source=row.source,
        profile=Profile.from_dict(json.loads(row.profile)) if row.profile else None,
        schema=json.loads(row.schema) if row.schema else None,
        validation=json.loads(row.validation) if row.validation else None,
    )


def parse_dataset_ref(ref: str) -> tuple[str, int | None]:
    """(name, version) of ``datasets:/name/3``; the version is None for
    ``datasets:/name@latest`` and a bare ``name`` (the latest version)."""
    if isinstance(ref, str) and not ref.startswith("datasets:/"):
        ref = f"datasets:/{ref}@latest"
    parsed = parse_ref(ref, kind="datasets")
    if parsed.version is None and parsed.alias not in (None, "latest"):
        raise NotFound(
            f"Datasets have no alias {parsed.alias!r} (in {ref}); use a version number or "
            f"@latest, e.g. datasets:/{parsed.name}@latest."
        )
    return parsed.name, parsed.version


def get_dataset_version(store: Store, ref: str) -> DatasetVersion:
    """The version named by ``datasets:/name/3``, ``datasets:/name@latest`` or ``name``."""
    name, number = parse_dataset_ref(ref)
    query = _version_query().where(datasets.c.name == name)
    if number is not None:
        query = query.where(dataset_versions.c.version == number)
    else:
        query = query.order_by(dataset_versions.c.version.desc()).limit(1)
    with store.db.read() as conn:
        row = conn.execute(query).first()
        if row is None:
            known = [
                r[0]
                for r in conn.execute(
                    select(dataset_versions.c.version)
                    .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
                    .where(datasets.c.name == name)
                    .order_by(dataset_versions.c.version)
                )
            ]
    if row is None:
        if not known:
            raise NotFound(
                f"No dataset named {name!r}. Log one with "
                f"lw.log_dataset(data, name={name!r}) or list them with "
                "`loopwise datasets list`."
            )
        raise NotFound(
            f"Dataset {name!r} has no version {number}; "
            f"its versions are {', '.join(map(str, known))}."
        )
    return _version_from_row(row)


def check_format(as_: str) -> None:
    """Refuse a frame kind :func:`load_dataset` does not give."""
    if as_ not in ("pandas", "polars", "arrow"):
        raise InvalidInput(f"as_ must be 'pandas', 'polars' or 'arrow', got {as_!r}.")


def frame_as(frame: pl.DataFrame, as_: str) -> Any:
    """A loaded version's frame as ``"pandas"``, ``"polars"`` or ``"arrow"``."""
    check_format(as_)
    if as_ == "polars":
        return frame
    if as_ == "arrow":
        return frame.to_arrow()
    return frame.to_pandas()


def load_dataset(store: Store, ref: str, *, as_: str = "pandas") -> Any:
    """The data of a version as ``"pandas"`` (default), ``"polars"`` or ``"arrow"``."""
    check_format(as_)
    version = get_dataset_version(store, ref)
    import io

    return frame_as(pl.read_parquet(io.BytesIO(store.artifacts.read_blob(version.sha256))), as_)


def list_datasets(store: Store) -> list[DatasetInfo]:
    """Every dataset with its number of versions and latest version, by name."""
    latest = (
        select(
            dataset_versions.c.dataset_id,
            func.count().label("n"),
            func.max(dataset_versions.c.version).label("latest"),
        )
        .group_by(dataset_versions.c.dataset_id)
        .subquery()
    )
    with store.db.read() as conn:
        rows = conn.execute(
            select(datasets, latest.c.n, latest.c.latest)
            .outerjoin(latest, latest.c.dataset_id == datasets.c.id)
            .order_by(datasets.c.name)
        ).all()
        row_counts = {
            (r.dataset_id, r.version): r.rows
            for r in conn.execute(
                select(
                    dataset_versions.c.dataset_id,
                    dataset_versions.c.version,
                    dataset_versions.c.rows,
                )
            )
        }
    return [
        DatasetInfo(
            name=row.name,
            versions=row.n or 0,
            latest_version=row.latest,
            latest_rows=row_counts.get((row.id, row.latest)),
            created_at=to_datetime(row.created_at),
            description=row.description,
        )
        for row in rows
    ]


def list_versions(store: Store, name: str) -> list[DatasetVersion]:
    """Every version of dataset ``name``, oldest first."""
    with store.db.read() as conn:
        rows = conn.execute(
            _version_query().where(datasets.c.name == name).order_by(dataset_versions.c.version)
        ).all()
    if not rows:
        raise NotFound(f"No dataset named {name!r}; list them with `loopwise datasets list`.")
    return [_version_from_row(row) for row in rows]


def dataset_inputs(store: Store, run_id: str) -> list[DatasetVersion]:
    """The dataset versions a run used as inputs (through lineage)."""
    from loopwise.store.lineage import edges

    with store.db.read() as conn:
        ids = [
            e.dst.id
            for e in edges(conn, Node("run", run_id), direction="out", relation=INPUT_RELATION)
        ]
        if not ids:
            return []
        rows = conn.execute(_version_query().where(dataset_versions.c.id.in_(ids))).all()
    return [_version_from_row(row) for row in rows]


__all__ = [
    "DatasetInfo",
    "DatasetVersion",
    "check_columns",
    "check_format",
    "check_name",
    "dataset_inputs",
    "frame_as",
    "get_dataset_version",
    "list_datasets",
    "list_versions",
    "load_dataset",
    "log_dataset",
    "parse_dataset_ref",
    "source_of",
]
