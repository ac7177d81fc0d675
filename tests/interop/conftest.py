"""Real MLflow data for the importer's tests: MLflow (``.venv-mlflow-server``, the full
package with its tracking database and ``mlflow server``) runs as a subprocess and logs
what a user's script logs (``mlflow_log.py``); loopwise then imports it.

Without that environment these tests skip, except under CI (``CI=true``), where that is
a failure. MLflow's sources are made once per test process where a test only reads them
(logging one takes MLflow ~20 s); a test that changes its source logs a fresh one.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MLFLOW_ENV = ROOT / ".venv-mlflow-server"


def require_mlflow() -> Path:
    python = MLFLOW_ENV / "bin" / "python"
    if python.exists():
        return python
    message = f"the MLflow environment is missing ({python}; `make test` makes it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI it must be there.")
    pytest.skip(message)


def _env(folder: Path, tracking_uri: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(folder),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_ENABLE_TELEMETRY": "false",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
        "DO_NOT_TRACK": "true",
        "GIT_PYTHON_REFRESH": "quiet",
    }


def log_mlflow(folder: Path, tracking_uri: str, phase: str) -> dict[str, Any]:
    """Run ``mlflow_log.py <phase>`` in ``folder`` against ``tracking_uri``; its JSON."""
    python = require_mlflow()
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [str(python), str(HERE / "mlflow_log.py"), phase],
        env=_env(folder, tracking_uri),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Source:
    """An MLflow source: its folder, database file and what the script logged."""

    folder: Path
    db: Path
    logged: dict[str, Any]

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"


def new_source(folder: Path) -> Source:
    """A database source of its own (local artifact folders under ``folder``)."""
    db = folder / "mlflow.db"
    logged = log_mlflow(folder, f"sqlite:///{db}", "initial")
    return Source(folder, db, logged)


def clone_source(source: Source, folder: Path) -> Source:
    """A copy of ``source`` in ``folder``, its artifact locations moved along, so a test
    may change it."""
    shutil.copytree(source.folder, folder)
    db = folder / "mlflow.db"
    old, new = str(source.folder), str(folder)
    with sqlite3.connect(db) as conn:
        for table, column in (
            ("runs", "artifact_uri"),
            ("experiments", "artifact_location"),
            ("logged_models", "artifact_location"),
            ("model_versions", "storage_location"),
        ):
            conn.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (old, new))
    return Source(folder, db, source.logged)


@pytest.fixture(scope="session")
def shared_source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """A database source tests only read (made once per test process)."""
    require_mlflow()
    return new_source(tmp_path_factory.mktemp("mlflow-shared") / "source")


@dataclass(frozen=True)
class Served:
    """A running ``mlflow server`` and what was logged through it."""

    url: str
    db: Path
    artifacts: Path
    logged: dict[str, Any]


@pytest.fixture(scope="session")
def served_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``mlflow server`` (a SQLite database, proxied artifacts in a folder) with the
    initial phase logged through it; it runs for the whole test process."""
    python = require_mlflow()
    folder = tmp_path_factory.mktemp("mlflow-served")
    db, artifacts = folder / "mlflow.db", folder / "artifacts"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(
        [
            str(python),
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=_env(folder, url),
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((folder / "server.log").read_text()[-6000:])
            time.sleep(0.3)
        logged = log_mlflow(folder / "client", url, "initial")
        yield Served(url, db, artifacts, logged)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
