"""``loopwise serve`` as a real process: it answers on loopback and refuses public binds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from sklearn.linear_model import LogisticRegression

from loopwise import context

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(store_url: str, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LOOPWISE_STORE_URL=store_url,
        LOOPWISE_ARTIFACTS_URL=str(tmp_path / "artifacts"),
        LOOPWISE_CACHE_DIR=str(tmp_path / "cache"),
        PYTHONPATH=SRC + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


def test_serve_answers_predictions(lw, store_url, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    lw.log_model(LogisticRegression().fit(X, y), name="served", input_example=X[:5])
    lw.set_alias("served", "champion", 1)
    context.get_store().db.engine.dispose()
    port = _free_port()
    cmd = [sys.executable, "-m", "loopwise", "serve", "models:/served@champion"]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], env=_env(store_url, tmp_path), stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError((tmp_path / "serve.log").read_text())
        answer = httpx.post(
            f"http://127.0.0.1:{port}/predict",
            json={"inputs": [{"f0": 1.0, "f1": 0.0, "f2": 0.0}]},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "served/1"
        bad = httpx.post(f"http://127.0.0.1:{port}/predict", content=b"{nope", timeout=10)
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid_json"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_public_bind_needs_public_flag(store_url, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "loopwise", "serve", "models:/x@champion", "--host",
         "0.0.0.0"],
        env=_env(store_url, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "--public" in proc.stderr
