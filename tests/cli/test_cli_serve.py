"""``loopwise serve`` as a real process: it answers on loopback and refuses public binds."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def running(args: list[str], env: dict[str, str], tmp_path: Path, port: int) -> Iterator[str]:
    """``loopwise serve ARGS`` as a process, until it answers /ready; yields its URL."""
    out = tmp_path / f"serve-{port}.log"
    with out.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loopwise", "serve", *args, "--port", str(port)],
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            else:
                raise AssertionError(out.read_text())
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.send_signal(signal.SIGTERM)  # a clean shutdown: uvicorn stops the endpoint
            proc.wait(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert proc.returncode in (0, -signal.SIGTERM), out.read_text()


def register(lw) -> np.ndarray:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    lw.log_model(LogisticRegression().fit(X, y), name="served", input_example=X[:5])
    lw.log_model(LogisticRegression(C=0.01).fit(X, y), name="served", input_example=X[:5])
    lw.set_alias("served", "champion", 1)
    context.get_store().db.engine.dispose()
    return X


ROW = {"f0": 1.0, "f1": 0.0, "f2": 0.0}


def test_serve_answers_predictions_and_logs_them_on_shutdown(lw, store_url, tmp_path):
    register(lw)
    with running(
        ["models:/served@champion"], _env(store_url, tmp_path), tmp_path, _free_port()
    ) as url:
        answer = httpx.post(f"{url}/predict", json={"inputs": [ROW, ROW]}, timeout=10)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["model"], body["variant"]) == ("served/1", "default")
        bad = httpx.post(
            f"{url}/predict",
            content=b"{nope",
            headers={"content-type": "application/json"},
            timeout=10,
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid_json"
        feedback = {"request_id": body["request_id"], "label": 1}
        assert httpx.post(f"{url}/feedback", json=feedback, timeout=10).status_code == 200
        unknown = {"request_id": "0" * 26, "label": 1}
        assert httpx.post(f"{url}/feedback", json=unknown, timeout=10).status_code == 404
    logged = lw.read_predictions("served")
    ok = logged[logged["error"].isna()]
    assert list(ok["request_id"]) == [body["request_id"]] * 2
    assert list(ok["label"]) == [1, 1]
    assert (logged["error"] == "invalid_json").sum() == 1


def test_skeleton_serves_a_constant(store_url, tmp_path):
    with running(["--skeleton", "0.5"], _env(store_url, tmp_path), tmp_path, _free_port()) as url:
        answer = httpx.post(f"{url}/predict", json={"inputs": [{"x": 1}]}, timeout=10).json()
        assert (answer["predictions"], answer["variant"]) == ([0.5], "fallback")


def test_workers_follow_the_alias_and_the_flag(lw, store_url, tmp_path):
    register(lw)
    config = tmp_path / "endpoint.yaml"
    config.write_text(
        "name: served\n"
        "variants: [{name: main, model: 'models:/served@champion'}]\n"
        "fallback: -1\n"
        "poll_interval: 0.3\n"
    )
    args = ["--config", str(config), "--workers", "2"]
    env = _env(store_url, tmp_path)
    with running(args, env, tmp_path, _free_port()) as url, httpx.Client(base_url=url) as c:
        assert c.post("/predict", json={"inputs": [ROW]}).json()["model"] == "served/1"
        lw.set_alias("served", "champion", 2)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # every worker (connection) on version 2
            answers = [
                httpx.post(f"{url}/predict", json={"inputs": [ROW]}).json()["model"]
                for _ in range(20)
            ]
            if set(answers) == {"served/2"}:
                break
            time.sleep(0.2)
        assert set(answers) == {"served/2"}
        flip = subprocess.run(
            [sys.executable, "-m", "loopwise", "endpoints", "flag", "served", "off",
             "--reason", "incident"],
            env=_env(store_url, tmp_path), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert flip.returncode == 0, flip.stderr
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            answers = [
                httpx.post(f"{url}/predict", json={"inputs": [ROW]}).json() for _ in range(20)
            ]
            if {a["variant"] for a in answers} == {"fallback"}:
                break
            time.sleep(0.2)
        assert {tuple(a["predictions"]) for a in answers} == {(-1,)}


def test_public_bind_needs_public_flag_or_tokens(lw, store_url, tmp_path):
    register(lw)
    env = _env(store_url, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "loopwise", "serve", "models:/served@champion", "--host",
         "0.0.0.0"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "--public" in proc.stderr
    assert "loopwise tokens create" in proc.stderr
    from loopwise.serving.tokens import create_token

    _, secret = create_token(context.get_store(), "client", "predict")
    context.get_store().db.engine.dispose()
    args = ["models:/served@champion", "--host", "0.0.0.0"]
    with running(args, env, tmp_path, _free_port()) as url:
        refused = httpx.post(f"{url}/predict", json={"inputs": [ROW]}, timeout=10)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        auth = {"Authorization": f"Bearer {secret}"}
        allowed = httpx.post(f"{url}/predict", json={"inputs": [ROW]}, headers=auth, timeout=10)
        assert allowed.status_code == 200, allowed.text
        assert httpx.get(f"{url}/model", headers=auth, timeout=10).status_code == 403


def test_emit_dockerfile_pins_the_model_requirements(lw, store_url, tmp_path):
    import sklearn

    register(lw)
    target = tmp_path / "Dockerfile"
    proc = subprocess.run(
        [sys.executable, "-m", "loopwise", "serve", "models:/served@champion",
         "--emit-dockerfile", str(target)],
        env=_env(store_url, tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = target.read_text()
    assert f'"scikit-learn=={sklearn.__version__}"' in text
    assert "models:/served@champion" in text
    assert '"--host", "0.0.0.0"' in text
    assert store_url not in text


def test_serve_needs_exactly_one_source(store_url, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "loopwise", "serve", "models:/x@champion", "--skeleton", "1"],
        env=_env(store_url, tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "exactly one of" in proc.stderr
