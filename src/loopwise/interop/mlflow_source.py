"""Reading an MLflow tracking store: its database directly, or a server through its REST API.

One small interface, :class:`MlflowSource`, with two implementations chosen by the URL
(:func:`open_source`): ``sqlite:///``, ``postgresql://`` and ``mysql://`` name MLflow's
tracking database, read with SQLAlchemy (fast: a few queries per experiment, and the
metric points of a run in one); ``http(s)://`` names an MLflow server, read with httpx
through the endpoints MLflow's own client calls (searches paged with ``page_token``,
metric histories paged, artifacts through the server's ``mlflow-artifacts`` proxy).

The importer sees plain records (:class:`SourceRun`, :class:`SourceVersion`, ...) and
never which kind of source it reads. Artifacts are addressed by MLflow's artifact URIs;
a local path, ``file://`` and any fsspec protocol (``s3://`` with s3fs installed) are read
alike from both sources, ``mlflow-artifacts:/`` from the server's proxy, or from the
folder the server stores them in (``artifacts_root``) when the database is read directly.

Every mistake a user can make here (a file that is no MLflow database, an MLflow schema
this code does not know, an unreachable server, a refused token, a missing artifacts
root) is a :class:`~loopwise.errors.LoopwiseError` that says what to do.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from loopwise.errors import (
    ConfigurationError,
    InvalidInput,
    NotFound,
    StoreUnavailable,
    Unauthorized,
)
from loopwise.interop.mlflow_inputs import DatasetInput

#: MLflow's schema revisions (alembic), oldest first: 3500859a5d39 (MLflow 2.3, model
#: aliases) is the oldest this reader supports, dc11669786a5 (MLflow 3.17) the newest.
_OLDER_REVISIONS = (  # noqa: SIM905 (ids as lines of text: a compact table)
    "451aebb31d03 90e64c465722 181f10493468 df50e92ffc5e 7ac759974ad8 89d4b8295536 "
    "2b4d017a5e9b cfd24bdc0731 0a8213491aaa 728d730b5ebd 27a6a02d2cf1 84291f40a231 "
    "a8c4a736bde6 39d1c3be5f05 c48cb773bb87 bd07f7e963c5 0c779009ac13 cc1f77228345 "
    "97727af70f4d"
).split()
SUPPORTED_REVISIONS = (  # noqa: SIM905
    "3500859a5d39 7f2a7d5fae7d 2d6e25af4d3e acf3f17fdcc7 867495a8f9d4 5b0e9adcef9c "
    "4465047574b1 f5a4f2784254 0584bdc529eb 400f98739977 6953534de441 bda7b8c39065 "
    "cbc13b556ace 770bee3ae1dd a1b2c3d4e5f6 de4033877273 1a0cddfcaa16 534353b11cbc "
    "71994744cf8e 3da73c924c2f bf29a5ff90ea 1bd49d398cd23 b7c8d9e0f1a2 5d2d30f0abce "
    "c9d4e5f6a7b8 2c33131f4dae d3e4f5a6b7c8 d0e1f2a3b4c5 c8d9e0f1a2b3 1b5f0d9ad7c1 "
    "e1f2a3b4c5d6 76601a5f987d c3d6457b6d8a a5b4c3d2e1f0 ae8bbe7743c9 7d34483879f0 "
    "da6fb0208061 89d3d66ed43f b7e4c1a90f23 a8b9c0d1e2f3 c1d2e3f4a5b6 c3d9e7f1a2b4 "
    "6f8d9c3b2a1e 1971f2d9a75b 17e22815139b b7e2c1a4d9f3 75868b020152 dc11669786a5"
).split()
SUPPORTED_MLFLOW = "MLflow 2.3 to 3.17"
#: MLflow writes +-inf as the largest double (its SQL store cannot hold inf): read back as inf.
_DOUBLE_MAX = sys.float_info.max
DELETED = "deleted"
_DB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql")


@dataclass(frozen=True)
class SourceExperiment:
    """An MLflow experiment: its id ("0" is MLflow's Default), name and lifecycle."""

    id: str
    name: str
    lifecycle_stage: str


@dataclass(frozen=True)
class SourceRun:
    """An MLflow run with its params, tags and latest metric points (not its history)."""

    id: str
    experiment_id: str
    name: str | None
    user: str | None
    status: str
    start_ms: int | None
    end_ms: int | None
    artifact_uri: str | None
    lifecycle_stage: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    #: (key, step, timestamp ms, value) of each metric's latest point.
    latest: tuple[tuple[str, int, int, float], ...] = ()
    #: The datasets logged as the run's inputs: (MLflow's Dataset fields, input tags).
    inputs: tuple[DatasetInput, ...] = ()


@dataclass(frozen=True)
class SourceModel:
    """An MLflow registered model, its aliases (alias -> MLflow version number) and tags."""

    name: str
    description: str | None
    aliases: dict[str, int]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceVersion:
    """An MLflow model version; ``artifact_uri`` is the folder its files are in."""

    name: str
    version: int
    source: str
    run_id: str | None
    status: str
    stage: str
    description: str | None
    tags: dict[str, str]
    artifact_uri: str | None


#: A metric's points as arrays: steps (int64), timestamps (ms, int64), values (float64).
Columns = tuple[Any, Any, Any]


def metric_value(value: Any, is_nan: bool = False) -> float:
    """An MLflow metric value as the float it stands for: NaN when flagged (MLflow's SQL
    store keeps 0 and a flag), inf for the largest double (what it writes for inf), and
    the JSON spellings ``"NaN"``, ``"Infinity"`` of its REST API."""
    if is_nan or value is None:
        return math.nan
    number = float(value)
    if abs(number) == _DOUBLE_MAX:
        return math.copysign(math.inf, number)
    return number


def _wire(value: Any) -> float:
    """A value of MLflow's JSON (``"NaN"``, ``"Infinity"`` are strings there)."""
    return math.nan if value is None else float(value)


def columns_of(rows: list[Any]) -> dict[str, Columns]:
    """Rows of (key, step, timestamp ms, value, is_nan) as arrays per key, values read as
    :func:`metric_value` does, column-wise (a run can hold millions of points)."""
    import numpy as np

    if not rows:
        return {}
    keys = np.array([r[0] for r in rows], dtype=object)
    steps = np.array([r[1] or 0 for r in rows], dtype=np.int64)
    stamps = np.array([r[2] or 0 for r in rows], dtype=np.int64)
    values = np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64)
    flagged = np.array([bool(r[4]) for r in rows], dtype=bool)
    values[flagged] = np.nan
    values[values == _DOUBLE_MAX] = np.inf
    values[values == -_DOUBLE_MAX] = -np.inf
    out = {}
    for key in sorted(set(keys.tolist())):
        mask = keys == key
        out[key] = (steps[mask], stamps[mask], values[mask])
    return out


class MlflowSource(ABC):
    """What the importer reads of an MLflow tracking store: :class:`DatabaseSource` reads
    its database, :class:`ServerSource` its REST API. ``url`` is the source's name without
    secrets, the same for every import of it (imported records keep it)."""

    url: str

    @abstractmethod
    def experiments(self) -> list[SourceExperiment]:
        """Every experiment (deleted ones too)."""

    @abstractmethod
    def runs(self, experiment_ids: list[str]) -> list[SourceRun]:
        """Every run (deleted ones too) of the experiments, with params, tags, latest."""

    @abstractmethod
    def metric_history(self, run: SourceRun) -> dict[str, Columns]:
        """Every metric point of ``run``, per key, as arrays (:data:`Columns`)."""

    @abstractmethod
    def artifact_files(self, uri: str) -> list[tuple[str, int]]:
        """(path relative to ``uri``, size) of every file under the artifact folder ``uri``
        (an empty list when there is none)."""

    @abstractmethod
    def fetch_artifact(self, uri: str, path: str, scratch: Path) -> Path:
        """A local file with the bytes of ``uri``/``path`` (maybe written under
        ``scratch``, which the caller removes)."""

    @abstractmethod
    def registered_models(self) -> list[SourceModel]:
        """Every registered model, with its aliases and tags."""

    @abstractmethod
    def model_versions(self, name: str) -> list[SourceVersion]:
        """Every version of registered model ``name``."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


# -- artifact URIs ---------------------------------------------------------------------------


def _join(uri: str, path: str) -> str:
    return uri.rstrip("/") + "/" + path.lstrip("/") if path else uri


class _Files:
    """Artifact folders named by local paths, ``file://`` or any fsspec URI; and
    ``mlflow-artifacts:/`` under ``root`` (the MLflow server's artifacts destination)."""

    def __init__(self, root: str | None) -> None:
        self.root = root

    def resolve(self, uri: str) -> str:
        scheme = urlsplit(uri).scheme
        if scheme == "mlflow-artifacts":
            if self.root is None:
                raise ConfigurationError(
                    f"Artifacts at {uri[:200]} live in the MLflow server's artifacts "
                    "destination, and no artifacts root was given: pass the folder (or URL) "
                    "the server was started with as --artifacts-destination (the CLI's "
                    "--artifacts-root), or import from the server's http:// URL instead."
                )
            return _join(self.root, urlsplit(uri).path.lstrip("/"))
        if scheme == "file":
            return unquote(urlsplit(uri).path)
        return uri

    def _fs(self, uri: str) -> tuple[Any, str]:
        import fsspec

        target = self.resolve(uri)
        try:
            return fsspec.core.url_to_fs(target)
        except (ImportError, ValueError) as e:
            scheme = urlsplit(target).scheme
            raise ConfigurationError(
                f"Cannot read MLflow artifacts at {target[:200]}: fsspec has no {scheme!r} "
                f"protocol here ({e}). Install the package that provides it (s3fs for s3://, "
                "gcsfs for gs://, adlfs for abfs://) and import again."
            ) from e

    def files(self, uri: str) -> list[tuple[str, int]]:
        fs, root = self._fs(uri)
        root = root.rstrip("/")
        try:
            if not fs.exists(root):
                return []
            found = fs.find(root, detail=True)
        except OSError as e:
            raise StoreUnavailable(f"Cannot list MLflow artifacts at {uri[:200]}: {e}") from e
        out = []
        for name, info in found.items():
            if info.get("type") == "directory":
                continue
            relative = name[len(root) :].lstrip("/") if name.startswith(root) else name
            out.append((relative, int(info.get("size") or 0)))
        return sorted(out)

    def fetch(self, uri: str, path: str, scratch: Path) -> Path:
        fs, root = self._fs(uri)
        remote = _join(root, path)
        from fsspec.implementations.local import LocalFileSystem

        if isinstance(fs, LocalFileSystem):
            return Path(remote)  # read in place, no copy
        local = scratch / path
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            fs.get_file(remote, str(local))
        except OSError as e:
            raise StoreUnavailable(f"Cannot read MLflow artifact {remote[:200]}: {e}") from e
        return local


# -- the database ----------------------------------------------------------------------------


class DatabaseSource(MlflowSource):
    """MLflow's tracking database, read with SQLAlchemy Core (tables named, not mapped:
    MLflow's ORM is not a dependency)."""

    def __init__(self, url: str, *, artifacts_root: str | None = None) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            parsed = make_url(url)
        except ArgumentError as e:
            raise InvalidInput(f"{url[:200]!r} is not a database URL: {e}.") from e
        self.url = parsed.render_as_string(hide_password=True).replace("***", "")
        if parsed.get_backend_name() == "sqlite":
            path = Path(parsed.database or "")
            if not parsed.database or not path.is_file():
                raise NotFound(
                    f"No MLflow database at {parsed.database or url!r}: no such file. Give the "
                    "path of the file MLflow's --backend-store-uri names (sqlite:///mlflow.db)."
                )
            self.url = f"sqlite:///{path.resolve()}"
        try:
            self.engine = create_engine(parsed)
        except (NoSuchModuleError, ImportError) as e:
            raise ConfigurationError(
                f"Cannot open {self.url}: the database driver is not installed ({e}). "
                "Install it (psycopg for postgresql://, pymysql for mysql+pymysql://)."
            ) from e
        self.files = _Files(artifacts_root)
        self._check_schema()
        self._columns = self._table_columns()

    def _check_schema(self) -> None:
        from sqlalchemy import inspect, text
        from sqlalchemy.exc import DatabaseError, OperationalError

        try:
            with self.engine.connect() as conn:
                names = set(inspect(conn).get_table_names())
                if not {"experiments", "runs", "metrics", "alembic_version"} <= names:
                    raise InvalidInput(
                        f"{self.url} is not an MLflow tracking database (it has no MLflow "
                        "experiments, runs and metrics tables). Give the URL MLflow's "
                        "--backend-store-uri names."
                    )
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except OperationalError as e:
            raise StoreUnavailable(f"Cannot read the MLflow database {self.url}: {e.orig}") from e
        except DatabaseError as e:
            raise InvalidInput(
                f"{self.url} is not an MLflow tracking database ({e.orig}). Give the URL "
                "MLflow's --backend-store-uri names."
            ) from e
        if revision in SUPPORTED_REVISIONS:
            return
        if revision in _OLDER_REVISIONS:
            raise ConfigurationError(
                f"The MLflow database {self.url} is at schema revision {revision}, older than "
                f"loopwise reads ({SUPPORTED_MLFLOW}, revisions {SUPPORTED_REVISIONS[0]} to "
                f"{SUPPORTED_REVISIONS[-1]}). Upgrade it first with `mlflow db upgrade "
                f"{self.url}` (back it up before)."
            )
        raise ConfigurationError(
            f"The MLflow database {self.url} is at schema revision {revision!r}, which "
            f"loopwise does not know: it reads {SUPPORTED_MLFLOW} (revisions "
            f"{SUPPORTED_REVISIONS[0]} to {SUPPORTED_REVISIONS[-1]}). A newer MLflow wrote it: "
            "import from its server's http:// URL instead, which reads MLflow's REST API."
        )

    def _table_columns(self) -> dict[str, set[str]]:
        from sqlalchemy import inspect

        with self.engine.connect() as conn:
            inspector = inspect(conn)
            return {
                name: {c["name"] for c in inspector.get_columns(name)}
                for name in inspector.get_table_names()
            }

    def _rows(self, table_name: str, names: list[str], **where: Any) -> list[Any]:
        """``SELECT names FROM table_name WHERE k = v / k IN (...)``, names quoted per
        dialect (``key`` and ``timestamp`` are reserved words in MySQL)."""
        from sqlalchemy import column, select, table

        t = table(table_name, *[column(n) for n in {*names, *where}])
        query = select(*[t.c[n] for n in names])
        for key, value in where.items():
            if isinstance(value, list | tuple):
                query = query.where(t.c[key].in_(list(value)))
            else:
                query = query.where(t.c[key] == value)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def experiments(self) -> list[SourceExperiment]:
        rows = self._rows("experiments", ["experiment_id", "name", "lifecycle_stage"])
        return [
            SourceExperiment(str(r.experiment_id), r.name, r.lifecycle_stage or "active")
            for r in sorted(rows, key=lambda r: int(r.experiment_id))
        ]

    def runs(self, experiment_ids: list[str]) -> list[SourceRun]:
        if not experiment_ids:
            return []
        ids = [int(i) for i in experiment_ids]
        rows = self._rows(
            "runs",
            [
                "run_uuid",
                "experiment_id",
                "name",
                "user_id",
                "status",
                "start_time",
                "end_time",
                "artifact_uri",
                "lifecycle_stage",
            ],
            experiment_id=ids,
        )
        run_ids = [r.run_uuid for r in rows]
        params: dict[str, dict[str, str]] = {i: {} for i in run_ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in run_ids}
        latest: dict[str, list[tuple[str, int, int, float]]] = {i: [] for i in run_ids}
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start : start + 500]
            for r in self._rows("params", ["run_uuid", "key", "value"], run_uuid=chunk):
                params[r.run_uuid][r.key] = r.value or ""
            for r in self._rows("tags", ["run_uuid", "key", "value"], run_uuid=chunk):
                tags[r.run_uuid][r.key] = r.value or ""
            names = ["run_uuid", "key", "value", "timestamp", "step", "is_nan"]
            for r in self._rows("latest_metrics", names, run_uuid=chunk):
                value = metric_value(r.value, bool(r.is_nan))
                latest[r.run_uuid].append((r.key, int(r.step), int(r.timestamp), value))
        inputs = self._dataset_inputs(run_ids)
        return [
            SourceRun(
                id=r.run_uuid,
                experiment_id=str(r.experiment_id),
                name=r.name,
                user=r.user_id,
                status=r.status or "RUNNING",
                start_ms=r.start_time,
                end_ms=r.end_time,
                artifact_uri=r.artifact_uri,
                lifecycle_stage=r.lifecycle_stage or "active",
                params=params[r.run_uuid],
                tags=tags[r.run_uuid],
                latest=tuple(sorted(latest[r.run_uuid])),
                inputs=tuple(inputs.get(r.run_uuid, ())),
            )
            for r in rows
        ]

    def _dataset_inputs(self, run_ids: list[str]) -> dict[str, list[DatasetInput]]:
        """The dataset inputs of runs ``run_ids`` (MLflow 2.4+: tables ``inputs``,
        ``datasets``, ``input_tags``), by run."""
        if not {"inputs", "datasets", "input_tags"} <= set(self._columns):
            return {}
        links = []
        for start in range(0, len(run_ids), 500):
            links += self._rows(
                "inputs",
                ["input_uuid", "source_id", "destination_id"],
                source_type="DATASET",
                destination_type="RUN",
                destination_id=run_ids[start : start + 500],
            )
        if not links:
            return {}
        fields = {
            "name": "name",
            "digest": "digest",
            "source_type": "dataset_source_type",
            "source": "dataset_source",
            "schema": "dataset_schema",
            "profile": "dataset_profile",
        }
        datasets, tags = {}, {}
        for start in range(0, len(links), 500):
            chunk = links[start : start + 500]
            for r in self._rows(
                "datasets",
                ["dataset_uuid", *fields.values()],
                dataset_uuid=[link.source_id for link in chunk],
            ):
                row = r._mapping
                datasets[r.dataset_uuid] = {
                    k: row[c] for k, c in fields.items() if row[c] is not None
                }
            for r in self._rows(
                "input_tags",
                ["input_uuid", "name", "value"],
                input_uuid=[link.input_uuid for link in chunk],
            ):
                tags.setdefault(r.input_uuid, []).append({"key": r.name, "value": r.value or ""})
        found: dict[str, list[DatasetInput]] = {}
        for link in links:
            if link.source_id in datasets:
                found.setdefault(link.destination_id, []).append(
                    (datasets[link.source_id], tags.get(link.input_uuid, []))
                )
        return found

    def metric_history(self, run: SourceRun) -> dict[str, Columns]:
        from sqlalchemy import column, select, table

        names = ("run_uuid", "key", "value", "timestamp", "step", "is_nan")
        t = table("metrics", *[column(n) for n in names])
        query = select(t.c.key, t.c.step, t.c.timestamp, t.c.value, t.c.is_nan).where(
            t.c.run_uuid == run.id
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return columns_of(rows)

    def artifact_files(self, uri: str) -> list[tuple[str, int]]:
        return self.files.files(uri)

    def fetch_artifact(self, uri: str, path: str, scratch: Path) -> Path:
        return self.files.fetch(uri, path, scratch)

    def registered_models(self) -> list[SourceModel]:
        if "registered_models" not in self._columns:
            return []
        aliases: dict[str, dict[str, int]] = {}
        if "registered_model_aliases" in self._columns:
            for r in self._rows("registered_model_aliases", ["name", "alias", "version"]):
                aliases.setdefault(r.name, {})[r.alias] = int(r.version)
        tags: dict[str, dict[str, str]] = {}
        if "registered_model_tags" in self._columns:
            for r in self._rows("registered_model_tags", ["name", "key", "value"]):
                tags.setdefault(r.name, {})[r.key] = r.value or ""
        rows = self._rows("registered_models", ["name", "description"])
        return [
            SourceModel(
                r.name, r.description or None, aliases.get(r.name, {}), tags.get(r.name, {})
            )
            for r in sorted(rows, key=lambda r: r.name)
        ]

    def model_versions(self, name: str) -> list[SourceVersion]:
        columns = self._columns.get("model_versions", set())
        wanted = ["version", "source", "run_id", "status", "current_stage", "description"]
        located = "storage_location" in columns
        rows = self._rows(
            "model_versions", wanted + (["storage_location"] if located else []), name=name
        )
        tags: dict[int, dict[str, str]] = {}
        for r in self._rows("model_version_tags", ["version", "key", "value"], name=name):
            tags.setdefault(int(r.version), {})[r.key] = r.value or ""
        return [
            SourceVersion(
                name=name,
                version=int(r.version),
                source=r.source or "",
                run_id=r.run_id or None,
                status=r.status or "READY",
                stage=r.current_stage or "None",
                description=r.description or None,
                tags=tags.get(int(r.version), {}),
                artifact_uri=(r.storage_location if located else None) or self._locate(r.source),
            )
            for r in sorted(rows, key=lambda r: int(r.version))
        ]

    def _locate(self, source: str | None) -> str | None:
        """The artifact folder a version's ``source`` names (``models:/m-<id>``: the MLflow
        3 logged model's location; ``runs:/<run>/<path>``: a folder of the run's)."""
        if not source:
            return None
        if source.startswith("models:/m-") and "logged_models" in self._columns:
            model_id = source.removeprefix("models:/").split("/", 1)[0]
            found = self._rows("logged_models", ["artifact_location"], model_id=model_id)
            return found[0].artifact_location if found else None
        if source.startswith("runs:/"):
            run_id, _, path = source.removeprefix("runs:/").partition("/")
            found = self._rows("runs", ["artifact_uri"], run_uuid=run_id)
            return _join(found[0].artifact_uri, path) if found and found[0].artifact_uri else None
        return source

    def close(self) -> None:
        self.engine.dispose()


# -- the server ------------------------------------------------------------------------------


class ServerSource(MlflowSource):
    """An MLflow tracking server, read through the REST API MLflow's client uses."""

    PAGE = 1000

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 60.0) -> None:
        import httpx

        parts = urlsplit(url)
        if not parts.hostname:
            raise InvalidInput(f"{url[:200]!r} names no host; give http://host:port.")
        port = f":{parts.port}" if parts.port else ""
        path = parts.path.rstrip("/")
        self.url = f"{parts.scheme}://{parts.hostname.lower()}{port}{path}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self.files = _Files(None)
        self._call("GET", "/api/2.0/mlflow/experiments/search", params={"max_results": 1})

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise StoreUnavailable(
                f"Cannot reach the MLflow server at {self.url} ({type(e).__name__}: {e}). "
                "Check the URL and that the server is running (mlflow server --port ...)."
            ) from e
        if response.status_code in (401, 403):
            raise Unauthorized(
                f"The MLflow server at {self.url} refused the request ({response.status_code}"
                f" on {path}). Give a token with access: set MLFLOW_TRACKING_TOKEN or pass "
                "--token."
            )
        if response.status_code == 404 and "mlflow" in path:
            raise NotFound(
                f"{self.url}{path} does not exist: {self.url} is not an MLflow tracking "
                "server, or one too old to have this endpoint."
            )
        if response.status_code >= 400:
            raise StoreUnavailable(
                f"The MLflow server at {self.url} answered {response.status_code} to {path}: "
                f"{response.text[:300]}"
            )
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._call(method, path, **kwargs)
        try:
            found = response.json()
        except ValueError as e:
            raise InvalidInput(
                f"{self.url}{path} did not answer JSON: {self.url} is not an MLflow server."
            ) from e
        if not isinstance(found, dict):
            raise InvalidInput(f"{self.url}{path} answered {type(found).__name__}, not an object.")
        return found

    def _pages(self, method: str, path: str, field_name: str, **body: Any) -> Iterator[Any]:
        token = None
        while True:
            message = {**body, **({"page_token": token} if token else {})}
            if method == "GET":
                page = self._json(method, path, params=message)
            else:
                page = self._json(method, path, json=message)
            yield from page.get(field_name) or []
            token = page.get("next_page_token")
            if not token:
                return

    def experiments(self) -> list[SourceExperiment]:
        found = self._pages(
            "POST",
            "/api/2.0/mlflow/experiments/search",
            "experiments",
            max_results=self.PAGE,
            view_type="ALL",
        )
        out = [
            SourceExperiment(str(e["experiment_id"]), e["name"], e.get("lifecycle_stage", "active"))
            for e in found
        ]
        return sorted(out, key=lambda e: (len(e.id), e.id))

    def runs(self, experiment_ids: list[str]) -> list[SourceRun]:
        out = []
        for start in range(0, len(experiment_ids), 100):
            for run in self._pages(
                "POST",
                "/api/2.0/mlflow/runs/search",
                "runs",
                experiment_ids=experiment_ids[start : start + 100],
                run_view_type="ALL",
                max_results=self.PAGE,
            ):
                out.append(self._run(run))
        return out

    @staticmethod
    def _run(message: dict[str, Any]) -> SourceRun:
        info, data = message.get("info", {}), message.get("data", {})
        latest = tuple(
            sorted(
                (
                    m["key"],
                    int(m.get("step", 0)),
                    int(m.get("timestamp", 0)),
                    metric_value(m.get("value")),
                )
                for m in data.get("metrics", [])
            )
        )
        return SourceRun(
            id=info["run_id"],
            experiment_id=str(info["experiment_id"]),
            name=info.get("run_name") or None,
            user=info.get("user_id") or None,
            status=info.get("status", "RUNNING"),
            start_ms=_int(info.get("start_time")),
            end_ms=_int(info.get("end_time")),
            artifact_uri=info.get("artifact_uri"),
            lifecycle_stage=info.get("lifecycle_stage", "active"),
            params={p["key"]: p.get("value", "") for p in data.get("params", [])},
            tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
            latest=latest,
            inputs=tuple(
                (dict(d.get("dataset", {})), list(d.get("tags", [])))
                for d in message.get("inputs", {}).get("dataset_inputs", [])
            ),
        )

    def metric_history(self, run: SourceRun) -> dict[str, Columns]:
        rows: list[tuple[str, int, int, float, bool]] = []
        for key in sorted({m[0] for m in run.latest}):
            rows += [
                (
                    key,
                    int(m.get("step", 0)),
                    int(m.get("timestamp", 0)),
                    _wire(m.get("value")),
                    False,
                )
                for m in self._pages(
                    "GET",
                    "/api/2.0/mlflow/metrics/get-history",
                    "metrics",
                    run_id=run.id,
                    metric_key=key,
                    max_results=25_000,
                )
            ]
        return columns_of(rows)

    def _proxied(self, uri: str) -> str | None:
        """The path of ``uri`` in the server's artifact proxy (None: not a proxied URI)."""
        parts = urlsplit(uri)
        return parts.path.strip("/") if parts.scheme == "mlflow-artifacts" else None

    def artifact_files(self, uri: str) -> list[tuple[str, int]]:
        root = self._proxied(uri)
        if root is None:
            return self.files.files(uri)
        out: list[tuple[str, int]] = []
        folders = [""]
        while folders:
            folder = folders.pop()
            listing = self._json(
                "GET",
                "/api/2.0/mlflow-artifacts/artifacts",
                params={"path": _join(root, folder) if folder else root},
            )
            for entry in listing.get("files") or []:
                path = _join(folder, entry["path"]) if folder else entry["path"]
                if entry.get("is_dir"):
                    folders.append(path)
                else:
                    out.append((path, int(entry.get("file_size") or 0)))
        return sorted(out)

    def fetch_artifact(self, uri: str, path: str, scratch: Path) -> Path:
        root = self._proxied(uri)
        if root is None:
            return self.files.fetch(uri, path, scratch)
        local = scratch / path
        local.parent.mkdir(parents=True, exist_ok=True)
        address = "/api/2.0/mlflow-artifacts/artifacts/" + quote(_join(root, path))
        import httpx

        try:
            with self.client.stream("GET", address) as response:
                if response.status_code >= 400:
                    self._call("GET", address)  # the error, in this class's terms
                with open(local, "wb") as out:
                    shutil.copyfileobj(_Reader(response.iter_bytes()), out)
        except httpx.HTTPError as e:
            raise StoreUnavailable(f"Cannot download {uri}/{path} from {self.url}: {e}") from e
        return local

    def registered_models(self) -> list[SourceModel]:
        found = self._pages(
            "GET", "/api/2.0/mlflow/registered-models/search", "registered_models", max_results=1000
        )
        return sorted(
            (
                SourceModel(
                    m["name"],
                    m.get("description") or None,
                    {a["alias"]: int(a["version"]) for a in m.get("aliases", [])},
                    {t["key"]: t.get("value", "") for t in m.get("tags", [])},
                )
                for m in found
            ),
            key=lambda m: m.name,
        )

    def model_versions(self, name: str) -> list[SourceVersion]:
        escaped = name.replace("'", "\\'")
        found = self._pages(
            "GET",
            "/api/2.0/mlflow/model-versions/search",
            "model_versions",
            filter=f"name = '{escaped}'",
            max_results=1000,
        )
        out = []
        for v in found:
            number = int(v["version"])
            stage = v.get("current_stage") or "None"
            uri = None
            if stage != "Deleted_Internal":
                uri = self._json(
                    "GET",
                    "/api/2.0/mlflow/model-versions/get-download-uri",
                    params={"name": name, "version": str(number)},
                ).get("artifact_uri")
            out.append(
                SourceVersion(
                    name=name,
                    version=number,
                    source=v.get("source", ""),
                    run_id=v.get("run_id") or None,
                    status=v.get("status", "READY"),
                    stage=stage,
                    description=v.get("description") or None,
                    tags={t["key"]: t.get("value", "") for t in v.get("tags", [])},
                    artifact_uri=uri,
                )
            )
        return sorted(out, key=lambda v: v.version)

    def close(self) -> None:
        self.client.close()


class _Reader:
    """An iterator of byte chunks as a file-like object for ``shutil.copyfileobj``."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.rest = chunks, b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.rest) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.rest += chunk
        if size < 0:
            out, self.rest = self.rest, b""
        else:
            out, self.rest = self.rest[:size], self.rest[size:]
        return out


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def open_source(
    url: str, *, artifacts_root: str | os.PathLike[str] | None = None, token: str | None = None
) -> MlflowSource:
    """The MLflow source ``url`` names: a tracking database (``sqlite:///mlflow.db``,
    ``postgresql://...``, ``mysql://...``) or a server (``http://host:5000``).

    ``artifacts_root`` is where the server stores ``mlflow-artifacts:/`` URIs (its
    ``--artifacts-destination``), needed only to read such artifacts from a database;
    ``token`` is sent as ``Authorization: Bearer`` to a server.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(f"The MLflow source must be a URL, got {url!r}.")
    scheme = urlsplit(url).scheme.split("+", 1)[0].lower()
    root = None if artifacts_root is None else os.fspath(artifacts_root)
    if root is not None and len(urlsplit(root).scheme) <= 1:  # a path (C: is a drive)
        if not Path(root).is_dir():
            raise NotFound(
                f"The artifacts root {root!r} is not a folder: give the folder the MLflow "
                "server stores artifacts in (its --artifacts-destination)."
            )
        root = str(Path(root).resolve())
    if scheme in ("http", "https"):
        return ServerSource(url, token=token)
    if scheme in _DB_SCHEMES:
        return DatabaseSource(url, artifacts_root=root)
    raise InvalidInput(
        f"{url[:200]!r} is not an MLflow source loopwise reads: give the tracking database's "
        "URL (sqlite:///mlflow.db, postgresql://..., mysql://...) or the server's "
        "(http://host:5000)."
    )


__all__ = [
    "SUPPORTED_MLFLOW",
    "SUPPORTED_REVISIONS",
    "Columns",
    "DatabaseSource",
    "MlflowSource",
    "ServerSource",
    "SourceExperiment",
    "SourceModel",
    "SourceRun",
    "SourceVersion",
    "columns_of",
    "metric_value",
    "open_source",
]
