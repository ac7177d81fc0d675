"""``loopwise serve`` as a real process: it answers on loopback and refuses public binds."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from sklearn.linear_model import LogisticRegression

from loopwise import context
from tests.helpers import free_port, output, running, serve_env, wait_for_line


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
        ["models:/served@champion"], serve_env(store_url, tmp_path), tmp_path, free_port()
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
    with running(
        ["--skeleton", "0.5"], serve_env(store_url, tmp_path), tmp_path, free_port()
    ) as url:
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
    env, port = serve_env(store_url, tmp_path), free_port()
    with running(args, env, tmp_path, port) as url, httpx.Client(base_url=url) as c:
        assert c.post("/predict", json={"inputs": [ROW]}).json()["model"] == "served/1"
        # the banner once (from the parent), then a line from each worker, with its pid
        wait_for_line(tmp_path, port, r"served: worker ready \(main serves served/1\)", count=2)
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
            env=serve_env(store_url, tmp_path), capture_output=True, text=True, timeout=60,
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
    stderr = output(tmp_path, port)[1]
    assert stderr.count("listening on") == 1, stderr
    assert f"listening on http://127.0.0.1:{port} with 2 worker processes" in stderr
    swapped = r"\[pid (\d+)\] served: main now serves served/2 \(was /1\)"
    assert len(set(re.findall(swapped, stderr))) == 2, stderr  # each worker swaps, once
    ready = set(re.findall(r"\[pid (\d+)\] served: worker ready", stderr))
    assert ready == set(re.findall(swapped, stderr))


def test_public_bind_needs_public_flag_or_tokens(lw, store_url, tmp_path):
    register(lw)
    env = serve_env(store_url, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "loopwise", "serve", "models:/served@champion", "--host",
         "0.0.0.0"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "--public" in proc.stderr
    assert "loopwise tokens create" in proc.stderr
    from loopwise.auth.tokens import create_token

    _, secret = create_token(context.get_store(), "client", "predict")
    context.get_store().db.engine.dispose()
    args = ["models:/served@champion", "--host", "0.0.0.0"]
    with running(args, env, tmp_path, free_port()) as url:
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
        env=serve_env(store_url, tmp_path), capture_output=True, text=True, timeout=60,
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
        env=serve_env(store_url, tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "exactly one of" in proc.stderr


# -- what serve writes: banner, hot swaps, access log, --log-level -----------------------------


def _smoke_checked(tmp_path: Path, *extra: str) -> Path:
    """An endpoint following served@champion whose versions must answer 1 for ROW."""
    config = tmp_path / "endpoint.yaml"
    config.write_text(
        "name: served\n"
        "variants: [{name: default, model: 'models:/served@champion'}]\n"
        "smoke_tests: [{input: {f0: 1.0, f1: 0.0, f2: 0.0}, expect: 1}]\n"
        "poll_interval: 0.3\n" + "".join(extra)
    )
    return config


def test_serve_prints_where_it_listens_what_it_serves_and_each_swap(lw, store_url, tmp_path):
    from loopwise import __version__

    X = register(lw)
    port = free_port()
    args = ["--config", str(_smoke_checked(tmp_path))]
    with running(args, serve_env(store_url, tmp_path), tmp_path, port) as url:
        stdout, stderr = output(tmp_path, port)
        assert f"loopwise {__version__}: endpoint 'served' from store" in stderr
        assert "served: variant default serves models:/served@champion = served/1" in stderr
        assert f"served: listening on {url}\n" in stderr
        assert f"served: API docs at {url}/docs\n" in stderr
        assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO ", stderr, re.M)
        assert httpx.post(f"{url}/predict", json={"inputs": [ROW]}, timeout=10).is_success
        lw.set_alias("served", "champion", 2)
        wait_for_line(tmp_path, port, r"INFO +served: default now serves served/2 \(was /1\)$")
        # a version failing the endpoint's smoke test: a warning, and version 2 serves on
        y = (X[:, 0] <= 0).astype(int)
        lw.log_model(LogisticRegression().fit(X, y), name="served", input_example=X[:5])
        lw.set_alias("served", "champion", 3)
        context.get_store().db.engine.dispose()
        (failed,) = wait_for_line(tmp_path, port, "did not swap")
        assert re.search(r"WARNING +served: default did not swap to served/3, still serves "
                         r"served/2: .*smoke test 1", failed), failed  # fmt: skip
        answer = httpx.post(f"{url}/predict", json={"inputs": [ROW]}, timeout=10).json()
        assert answer["model"] == "served/2"
        stdout, stderr = output(tmp_path, port)
    assert stdout == ""  # stdout stays clean: every line is on stderr
    assert "Traceback" not in stderr
    assert "/predict" not in stderr  # no access log unless asked for


def test_access_log_has_a_line_per_request_on_both_routes(lw, store_url, tmp_path):
    register(lw)
    port = free_port()
    args = ["models:/served@champion", "--access-log"]
    with running(args, serve_env(store_url, tmp_path), tmp_path, port) as url:
        ok = httpx.post(f"{url}/predict", json={"inputs": [ROW, ROW]}, timeout=10).json()
        bad = httpx.post(f"{url}/predict", json={"inputs": [{"f0": "x"}]}, timeout=10)
        assert bad.status_code == 400
        typed = {"content-type": "application/json"}
        httpx.post(f"{url}/predict", content=b"{nope", headers=typed, timeout=10)
        feedback = {"request_id": ok["request_id"], "label": 1}
        assert httpx.post(f"{url}/feedback", json=feedback, timeout=10).status_code == 200
        httpx.get(f"{url}/nowhere%0Aforged", timeout=10)  # a line break, once decoded
        ms = r"\d+\.\d\d ms"
        # the direct route (POST /predict): who answered, also when the model refused
        wait_for_line(tmp_path, port, rf"INFO +POST /predict 200 {ms} default served/1$")
        wait_for_line(tmp_path, port, rf"INFO +POST /predict 400 {ms} default served/1$")
        wait_for_line(tmp_path, port, rf"INFO +POST /predict 400 {ms}$")  # not even routed
        # the routed ones
        wait_for_line(tmp_path, port, rf"INFO +POST /feedback 200 {ms}$")
        wait_for_line(tmp_path, port, rf"INFO +GET /nowhere%0Aforged 404 {ms}$")
        stderr = output(tmp_path, port)[1]
        assert "served: access log on" in stderr
        assert not re.search("^forged", stderr, re.M)
    assert output(tmp_path, port)[0] == ""


def test_log_level_warning_hides_the_info_lines(lw, store_url, tmp_path):
    register(lw)
    port = free_port()
    args = ["models:/served@champion", "--access-log", "--log-level", "warning"]
    with running(args, serve_env(store_url, tmp_path), tmp_path, port) as url:
        assert httpx.post(f"{url}/predict", json={"inputs": [ROW]}, timeout=10).is_success
        lw.set_alias("served", "champion", 2)
        context.get_store().db.engine.dispose()
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/ready", timeout=10).json()["model"] != "served/2":
            assert time.monotonic() < deadline, "version 2 was never swapped in"
            time.sleep(0.2)
        assert httpx.post(f"{url}/predict", json={"inputs": [ROW]}, timeout=10).is_success
    stdout, stderr = output(tmp_path, port)
    assert stdout == ""
    assert " INFO " not in stderr, stderr  # no banner, no swap line, no access log
    assert "listening on" not in stderr


def test_a_bad_log_level_is_a_clear_error(store_url, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "loopwise", "serve", "--skeleton", "1", "--log-level", "loud"],
        env=serve_env(store_url, tmp_path) | {"COLUMNS": "200"},  # the message on one line
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "'loud' is not one of 'debug', 'info', 'warning', 'error'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_port_in_use_is_a_clear_error(store_url, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "loopwise", "serve", "--skeleton", "1", "--port", str(port)],
            env=serve_env(store_url, tmp_path), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 1
    assert f"Error: cannot listen on 127.0.0.1:{port}: Address already in use" in proc.stderr
    assert "choose another port" in proc.stderr
    assert "Traceback" not in proc.stderr
