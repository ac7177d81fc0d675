"""The server's contract before any route: JSON errors, strict bodies, tokens per route."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from loopwise.auth.tokens import create_token
from loopwise.errors import ConfigurationError
from loopwise.server.run import check_exposure, is_loopback


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    return body["error"]


def test_health_and_openapi(client):
    assert client.get("/health").json()["status"] == "ok"
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/experiments" in spec["paths"]


def test_experiments_round_trip(client):
    made = client.post("/api/v1/experiments", json={"name": "churn"})
    assert made.status_code == 200, made.text
    again = client.post("/api/v1/experiments", json={"name": "churn"}).json()
    assert again["id"] == made.json()["id"]  # the same experiment, not a second one
    assert client.get("/api/v1/experiments/churn").json()["id"] == again["id"]
    assert [e["name"] for e in client.get("/api/v1/experiments").json()["experiments"]] == ["churn"]


def test_unknown_things_are_json_404s(client):
    missing = client.get("/api/v1/experiments/nope")
    assert missing.status_code == 404
    error = error_of(missing)
    assert error["code"] == "not_found"
    assert "nope" in error["message"]
    route = client.get("/api/v1/no-such-route")
    assert route.status_code == 404
    assert error_of(route)["code"] == "not_found"


def test_a_wrong_method_is_a_json_405_with_allow(client):
    answer = client.delete("/api/v1/experiments")
    assert answer.status_code == 405
    assert error_of(answer)["code"] == "method_not_allowed"
    assert "GET" in answer.headers["allow"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"name": NaN}', "NaN is not JSON"),
        (b'{"name": Infinity}', "Infinity is not JSON"),
        (b'{"name": 1e400}', "too large for a float"),
        (b'{"name": 100000000000000000000}', "64-bit"),
        (b'{"name": ' + b"[" * 1000 + b"]" * 1000 + b"}", "deeper than"),
        (b'{"name": ', "not valid JSON"),
    ],
)
def test_bodies_are_strict_json(client, body, fragment):
    answer = client.post(
        "/api/v1/experiments", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    error = error_of(answer)
    assert error["code"] == "invalid_input"
    assert fragment in error["message"]


def test_a_body_that_is_not_json_is_415(client):
    answer = client.post(
        "/api/v1/experiments", content=b"name=x", headers={"content-type": "text/plain"}
    )
    assert answer.status_code == 415
    assert error_of(answer)["code"] == "unsupported_media_type"


def test_a_huge_body_is_413(client):
    answer = client.post(
        "/api/v1/experiments",
        content=b" " * 10,
        headers={"content-type": "application/json", "content-length": str(2**40)},
    )
    assert answer.status_code == 413
    assert error_of(answer)["code"] == "payload_too_large"


def test_a_body_of_the_wrong_shape_names_the_field(client):
    answer = client.post("/api/v1/experiments", json={"name": "", "extra": 1})
    assert answer.status_code == 400
    message = error_of(answer)["message"]
    assert "name" in message
    assert "extra" in message


def test_tokens_gate_each_route_once_one_exists(store, client):
    assert client.get("/api/v1/experiments").status_code == 200  # no token: open (loopback)
    _, reader = create_token(store, "viewer", "read")
    _, writer = create_token(store, "ci", "write")
    time.sleep(0.5)  # the authenticator refreshes every 0.2 s
    anonymous = client.get("/api/v1/experiments")
    assert anonymous.status_code == 401
    assert error_of(anonymous)["code"] == "unauthorized"
    as_reader = {"authorization": f"Bearer {reader}"}
    assert client.get("/api/v1/experiments", headers=as_reader).status_code == 200
    refused = client.post("/api/v1/experiments", json={"name": "x"}, headers=as_reader)
    assert refused.status_code == 403
    assert "write" in error_of(refused)["message"]
    as_writer = {"authorization": f"Bearer {writer}"}
    made = client.post("/api/v1/experiments", json={"name": "x"}, headers=as_writer)
    assert made.status_code == 200


def test_exposure_rule(store):
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("example.com")
    check_exposure(store, "127.0.0.1", public=False)
    check_exposure(store, "0.0.0.0", public=True)
    with pytest.raises(ConfigurationError, match="no API token"):
        check_exposure(store, "0.0.0.0", public=False)
    create_token(store, "admin", "admin")
    check_exposure(store, "0.0.0.0", public=False)


def test_the_cli_starts_a_real_server(tmp_path, store_url):
    """`loopwise server` in its own process: /health answers, an experiment made over HTTP
    is in the store, and the process stops cleanly on SIGTERM."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable, "-m", "loopwise", "server", "--port", str(port),
        "--store-url", store_url, "--artifacts-url", str(tmp_path / "art"),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        start = time.monotonic()
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() - start < 30, "the server did not answer /health in 30 s"
            time.sleep(0.1)
        made = httpx.post(f"{base}/api/v1/experiments", json={"name": "remote"}, timeout=5)
        assert made.status_code == 200, made.text
        listed = httpx.get(f"{base}/api/v1/experiments", timeout=5).json()
        assert [e["name"] for e in listed["experiments"]] == ["remote"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert json.loads(made.text)["name"] == "remote"


def test_without_the_serve_extra_the_command_says_what_to_install(invoke, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if it were not installed
    result = invoke("server", "--port", "0")
    assert result.exit_code == 1
    assert "pip install 'loopwise[serve]'" in result.output
    assert "Traceback" not in result.output


def test_writes_through_the_server_name_the_token_not_the_server_user(lw, client):
    """Alias moves and runs made over HTTP record the caller's token name; two callers in
    turn are told apart (the name is per request, it never carries over)."""
    from sklearn.linear_model import LogisticRegression

    x = [[0.0], [1.0], [2.0], [3.0]]
    for _ in range(2):
        lw.log_model(LogisticRegression().fit(x, [0, 1, 0, 1]), "who-model")
    store = lw.get_store()
    _, alice = create_token(store, "alice", "writer")
    _, bob = create_token(store, "bob", "writer")
    time.sleep(0.5)  # the authenticator refreshes every 0.2 s
    for secret, version in ((alice, 1), (bob, 2)):
        moved = client.put(
            "/api/v1/models/who-model/aliases/champion",
            json={"version": version},
            headers={"authorization": f"Bearer {secret}"},
        )
        assert moved.status_code == 200, moved.text
    history = lw.alias_history("who-model", "champion")
    assert [m.moved_by for m in history[-2:]] == ["alice", "bob"]
    made = client.post(
        "/api/v1/runs", json={"experiment": "who"}, headers={"authorization": f"Bearer {bob}"}
    )
    assert made.status_code == 200, made.text
    assert lw.get_run(made.json()["id"]).user == "bob"
