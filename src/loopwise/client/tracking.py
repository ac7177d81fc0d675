"""The tracking calls through a ``loopwise server``: what ``lw.start_run``, ``lw.get_run``,
``lw.search_runs`` ... do when ``tracking_url`` is set.

Each method is one (or, for search and artifact folders, a few) REST calls, and answers
with what the local service answers: :class:`~loopwise.tracking.records.Run` and
:class:`~loopwise.tracking.records.Experiment` records, the same DataFrame columns and
types, the same errors. Metric points go through :class:`RemoteMetricWriter`; reads flush
it first, so a process reads back what it logged.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from loopwise.client.http import HttpClient
from loopwise.client.writer import RemoteMetricWriter
from loopwise.config import Settings
from loopwise.errors import InvalidInput, NotFound
from loopwise.tracking.records import Experiment, Run, RunStatus
from loopwise.tracking.run_artifacts import ArtifactInfo, clean_artifact_path, dict_bytes
from loopwise.tracking.runs import check_experiment_name, value_text
from loopwise.tracking.search import check_max_results

if TYPE_CHECKING:
    import pandas as pd

#: Rows per search request (the server's largest page).
SEARCH_PAGE = 1000
#: The most points a history request asks for; longer series come back downsampled.
HISTORY_POINTS = 1_000_000
HOST = socket.gethostname()
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_RUN_COLUMNS = ("run_id", "name", "experiment", "status", "start_time", "end_time", "parent_run_id")


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, str):
        return _NON_FINITE[value]
    return float(value)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _run(data: Mapping[str, Any]) -> Run:
    """A run record from the server's answer (``GET /runs/{id}``)."""
    return Run(
        id=data["id"],
        name=data["name"],
        experiment_id=data["experiment_id"],
        experiment=data["experiment"],
        status=RunStatus(data["status"]),
        start_time=datetime.fromisoformat(data["start_time"]),
        end_time=_time(data.get("end_time")),
        parent_run_id=data.get("parent_run_id"),
        params=dict(data.get("params") or {}),
        metrics={k: _number(v) for k, v in (data.get("metrics") or {}).items()},
        tags=dict(data.get("tags") or {}),
        environment=data.get("environment"),
        host=data.get("host"),
        pid=data.get("pid"),
        user=data.get("user"),
        heartbeat_at=_time(data.get("heartbeat_at")),
    )


def _texts(values: Mapping[str, Any], kind: str, run_id: str) -> dict[str, str]:
    if not isinstance(values, Mapping):
        raise InvalidInput(
            f"{kind}s of run {run_id} must be a dict of key -> value, got {type(values).__name__}."
        )
    return {key: value_text(v, what=f"{kind} '{key}' of run {run_id}") for key, v in values.items()}


def _path(run_id: str) -> str:
    return "/runs/" + quote(run_id, safe="")


def _artifact_route(run_id: str, path: str) -> str:
    """The upload route of the run's file ``path``, checked here as the server checks it:
    a URL would resolve a ``..`` before the server could refuse it."""
    return f"{_path(run_id)}/artifacts/{quote(clean_artifact_path(path, run_id=run_id))}"


class RemoteTracking:
    """The tracking services of one server: one HTTP connection and one metric writer."""

    def __init__(self, settings: Settings) -> None:
        if not settings.tracking_url:
            raise InvalidInput("RemoteTracking needs settings with a tracking_url.")
        self.settings = settings
        self.http = HttpClient(settings.tracking_url, settings.tracking_token)
        self.writer = RemoteMetricWriter(
            self.http,
            flush_interval=settings.flush_interval,
            max_points=settings.buffer_max_points,
            heartbeat_interval=settings.heartbeat_interval,
        )

    def __repr__(self) -> str:
        return f"<RemoteTracking {self.http.url}>"

    @property
    def url(self) -> str:
        return self.http.url

    def close(self) -> None:
        """Send buffered points, then close the connection."""
        try:
            self.writer.close()
        finally:
            self.http.close()

    # -- runs -----------------------------------------------------------------------------

    def create_run(
        self,
        experiment: str,
        *,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        """A new RUNNING run in ``experiment`` (created if missing)."""
        check_experiment_name(experiment)
        body: dict[str, Any] = {"experiment": experiment}
        if name is not None:
            body["name"] = name
        if tags:
            body["tags"] = _texts(tags, "Tag", "(new)")
        if parent_run_id is not None:
            body["parent_run_id"] = parent_run_id
        # The run is executed here, not by the server: its heartbeat and LOST check follow
        # this process.
        body["host"] = HOST
        body["pid"] = os.getpid()
        return _run(self.http.post("/runs", body))

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        """Mark runs alive now (a LOST one becomes RUNNING again)."""
        self.http.post("/runs/heartbeat", {"run_ids": list(run_ids)})

    def set_environment(self, run_id: str, environment: Mapping[str, Any]) -> None:
        """Record the environment this process captured for its run."""
        self.http.request(
            "PUT",
            _path(run_id) + "/environment",
            json={"environment": json.loads(json.dumps(environment, default=str))},
        )

    def get_run(self, run: str) -> Run:
        """A run by id, unique name or ``runs:/`` reference (flushes this process's points
        first, so it shows what was logged)."""
        self.writer.flush()
        return _run(self.http.get(_path(run)))

    def end_run(self, run_id: str, status: RunStatus | str) -> Run:
        """Send the run's buffered points, then end it with ``status``."""
        self.writer.flush()
        final = RunStatus.final(status)
        return _run(self.http.request("PATCH", _path(run_id), json={"status": final.value}))

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        if params:
            self.http.post(
                _path(run_id) + "/log-batch", {"params": _texts(params, "Param", run_id)}
            )

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        if tags:
            self.http.post(_path(run_id) + "/log-batch", {"tags": _texts(tags, "Tag", run_id)})

    def list_experiments(self) -> list[Experiment]:
        """Every experiment with its number of runs."""
        return [
            Experiment(
                id=e["id"],
                name=e["name"],
                created_at=datetime.fromisoformat(e["created_at"]),
                description=e.get("description"),
                run_count=e.get("run_count"),
            )
            for e in self.http.get("/experiments")["experiments"]
        ]

    # -- queries --------------------------------------------------------------------------

    def search_runs(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str | None = None,
        order_by: str | Sequence[str] | None = None,
        max_results: int | None = 1000,
    ) -> pd.DataFrame:
        """The DataFrame ``lw.search_runs`` gives, built from ``/runs/search`` pages."""
        import numpy as np
        import pandas as pd

        check_max_results(max_results)
        self.writer.flush()
        body: dict[str, Any] = {}
        if experiment is not None:
            body["experiments"] = [experiment] if isinstance(experiment, str) else list(experiment)
        if filter:
            body["filter"] = filter
        if order_by:
            body["order_by"] = [order_by] if isinstance(order_by, str) else list(order_by)
        rows: list[dict[str, Any]] = []
        token = None
        while max_results is None or len(rows) < max_results:
            want = SEARCH_PAGE if max_results is None else min(SEARCH_PAGE, max_results - len(rows))
            page = self.http.post(
                "/runs/search", {**body, "max_results": want, "page_token": token}
            )
            rows.extend(page["runs"])
            token = page["next_page_token"]
            if token is None:
                break
        n = len(rows)
        data: dict[str, Any] = {
            "run_id": [r["id"] for r in rows],
            "name": [r["name"] for r in rows],
            "experiment": [r["experiment"] for r in rows],
            "status": [r["status"] for r in rows],
            "start_time": pd.to_datetime([r["start_time"] for r in rows], utc=True),
            "end_time": pd.to_datetime([r["end_time"] for r in rows], utc=True),
            "parent_run_id": [r["parent_run_id"] for r in rows],
        }
        params: dict[str, list[Any]] = {}
        metrics: dict[str, Any] = {}
        tags: dict[str, list[Any]] = {}
        for i, r in enumerate(rows):
            for key, value in r["params"].items():
                params.setdefault(key, [None] * n)[i] = value
            for key, value in r["metrics"].items():
                if key not in metrics:
                    metrics[key] = np.full(n, np.nan)
                metrics[key][i] = _number(value)
            for key, value in r["tags"].items():
                tags.setdefault(key, [None] * n)[i] = value
        for key in sorted(params):
            data[f"params.{key}"] = params[key]
        for key in sorted(metrics):
            data[f"metrics.{key}"] = metrics[key]
        for key in sorted(tags):
            data[f"tags.{key}"] = tags[key]
        return pd.DataFrame(data, index=pd.RangeIndex(n))

    def metric_history(self, run: str, key: str) -> pd.DataFrame:
        """Every point of metric ``key`` (up to ``HISTORY_POINTS``; a longer series comes
        back downsampled by the server, keeping each step bucket's min, max and last)."""
        import numpy as np
        import pandas as pd

        self.writer.flush()
        answer = self.http.get(
            f"{_path(run)}/metrics/{quote(key, safe='')}/history", max_points=HISTORY_POINTS
        )
        return pd.DataFrame(
            {
                "step": np.asarray(answer["step"], dtype="int64"),
                "timestamp": pd.to_datetime(answer["timestamp"], utc=True, format="ISO8601"),
                "value": np.asarray([_number(v) for v in answer["value"]], dtype="float64"),
            }
        )

    # -- artifacts ------------------------------------------------------------------------

    def log_bytes(self, run_id: str, data: bytes, artifact_path: str) -> ArtifactInfo:
        """Upload ``data`` as the run's file ``artifact_path``."""
        answer = self.http.request(
            "PUT",
            _artifact_route(run_id, artifact_path),
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return _artifact(answer)

    def log_dict(self, run_id: str, data: Any, artifact_file: str) -> ArtifactInfo:
        return self.log_bytes(run_id, dict_bytes(data, artifact_file), artifact_file)

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[str]:
        """Upload a file, or every file under a folder, as the local service lays them out;
        each file is streamed from disk."""
        source = Path(local_path)
        if not source.exists():
            raise NotFound(f"Cannot log artifact {str(source)!r} for run {run_id}: no such file.")
        if source.is_dir():
            files = sorted(p for p in source.rglob("*") if p.is_file())
            names = [p.relative_to(source).as_posix() for p in files]
        else:
            files, names = [source], [source.name]
        prefix = artifact_path.strip("/") if artifact_path else ""
        stored = []
        for file, name in zip(files, names, strict=True):
            path = f"{prefix}/{name}" if prefix else name
            with open(file, "rb") as stream:
                answer = self.http.request(
                    "PUT",
                    _artifact_route(run_id, path),
                    content=stream,
                    headers={"Content-Type": "application/octet-stream"},
                )
            stored.append(answer["path"])
        return stored

    def list_artifacts(self, run: str, path: str = "") -> list[ArtifactInfo]:
        answer = self.http.get(f"{_path(run)}/artifacts", path=path or None)
        return [_artifact(a) for a in answer["artifacts"]]

    def download_artifacts(
        self, run: str, path: str = "", dst: str | os.PathLike[str] = "."
    ) -> Path:
        """Copy a run's file (or folder, or everything) into ``dst``; return the local path.
        Each file is written to a temporary name and moved into place."""
        answer = self.http.get(f"{_path(run)}/artifacts", path=path or None)
        found = answer["artifacts"]
        run_id = answer["run_id"]
        if not found:
            raise NotFound(
                f"Run {run_id} has no artifact {path!r}. "
                f"List them with lw.list_artifacts({run_id!r})."
            )
        root = Path(dst)
        for info in found:
            target = root / info["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            source = f"{_path(run_id)}/artifacts/{quote(info['path'])}"
            with self.http.stream(source) as reply, open(partial, "wb") as out:
                for chunk in reply.iter_bytes():
                    out.write(chunk)
            os.replace(partial, target)
        return root / path.strip("/") if path else root


def _artifact(data: Mapping[str, Any]) -> ArtifactInfo:
    return ArtifactInfo(
        path=data["path"],
        size=data["size"],
        sha256=data["sha256"],
        created_at=datetime.fromisoformat(data["created_at"]),
    )


__all__ = ["RemoteTracking"]
