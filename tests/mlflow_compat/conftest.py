"""A real `loopwise server` process and MLflow's client in its own environment.

The client runs from ``.venv-mlflow`` (``make test`` creates it: mlflow-skinny pinned, with
scikit-learn and pandas), never from loopwise's environment, so the tests see MLflow
exactly as a user's script does. Without that environment these tests skip, except
under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import free_port, serve_env

ROOT = Path(__file__).resolve().parents[2]
#: The MLflow clients the tests run, each from its environment (see the Makefile).
CLIENTS = {"mlflow3": ".venv-mlflow", "mlflow2": ".venv-mlflow2"}
HERE = Path(__file__).resolve().parent


def require_mlflow_client(client: str) -> Path:
    python = ROOT / CLIENTS[client] / "bin" / "python"
    if python.exists():
        return python
    message = f"the {client} client environment is missing ({python}; `make test` makes it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI it must be there.")
    pytest.skip(message)


@pytest.fixture(params=list(CLIENTS))
def mlflow_client(request: pytest.FixtureRequest) -> str:
    """Each MLflow client version in turn."""
    return request.param


@pytest.fixture
def loopwise_server(store_url: str, tmp_path: Path) -> Iterator[str]:
    """``loopwise server`` as its own process on the test's store; yields its URL."""
    port = free_port()
    env = serve_env(store_url, tmp_path)
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopwise", "server", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((tmp_path / "server.log").read_text())
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    server_log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in server_log, server_log  # no request ended in a server error


def run_client(
    script: str, url: str, tmp_path: Path, client: str = "mlflow3", **env: str
) -> dict[str, Any]:
    """Run ``script`` (a file of this folder) in ``client``'s environment against ``url``;
    the JSON line it prints."""
    python = require_mlflow_client(client)
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # a 5xx fails the test at once
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
        "MLFLOW_ENABLE_TELEMETRY": "false",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
        "DO_NOT_TRACK": "true",
        **env,
    }
    done = subprocess.run(
        [str(python), str(HERE / script)],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
