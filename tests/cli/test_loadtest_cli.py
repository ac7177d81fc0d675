"""``loopwise loadtest`` through CliRunner against a real uvicorn on loopback."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from loopwise.cli.main import app
from loopwise.serving.app import create_app
from loopwise.serving.live_model import LiveModel
from loopwise.serving.server import ServerThread
from tests.helpers import register_credit_risk


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["loadtest", *args], env={"COLUMNS": "200"})


@pytest.fixture
def url(lw) -> Iterator[str]:
    """An endpoint following credit-risk@champion (v1; v2 registered too)."""
    register_credit_risk(lw)
    live = LiveModel(
        "models:/credit-risk@champion", store=lw.get_store(), poll_interval=0.2
    ).start()
    try:
        with ServerThread(create_app(live)) as server:
            yield server.url
    finally:
        live.stop()


def test_json_report(url):
    result = invoke(url, "--concurrency", "2", "--duration", "0.8", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["requests"] == report["ok"] > 0
    assert report["failed"] == 0
    assert report["models"] == {"credit-risk/1": report["ok"]}
    assert set(report["latency_ms"]) == {"p50", "p95", "p99", "max", "mean"}
    assert report["swap"] is None


def test_table_report_with_a_swap(lw, url):
    result = invoke(url, "-c", "2", "-d", "1.5", "--swap-to", "2", "--swap-at", "0.3")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for needle in ("latency p99", "throughput", "credit-risk/1", "credit-risk/2"):
        assert needle in out
    assert "Alias champion of credit-risk: 1 → 2" in out
    assert "new version first answered at" in out
    assert "did not answer" not in out
    assert lw.get_model_version("models:/credit-risk@champion").version == 2


def test_errors_are_listed(url, tmp_path):
    payload = tmp_path / "bad.json"
    payload.write_text(json.dumps({"inputs": [{"wrong": 1}]}))
    result = invoke(url, "-c", "1", "-d", "0.3", "--payload", str(payload))
    assert result.exit_code == 0, result.output
    assert "400 invalid_input" in result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_url_is_an_error():
    result = invoke(f"http://127.0.0.1:{_free_port()}", "-d", "1")
    assert result.exit_code == 1
    assert "Error: nothing answers at" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--concurrency", "0"], "'concurrency'"),
        (["--duration", "0"], "'duration'"),
        (["--payload", "/no/such.json"], "cannot read the payload file"),
        (["--swap-to", "1"], "already serves credit-risk/1"),
        (["--swap-to", "7"], "7"),
    ],
)
def test_bad_options_are_errors(url, args, needle):
    result = invoke(url, *args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ")
    assert needle in result.stderr


def test_a_fixed_version_cannot_be_swapped(lw):
    register_credit_risk(lw)
    live = LiveModel("models:/credit-risk/1", store=lw.get_store()).start()
    try:
        with ServerThread(create_app(live)) as server:
            result = invoke(server.url, "-d", "1", "--swap-to", "2")
    finally:
        live.stop()
    assert result.exit_code == 1
    assert "fixed version" in result.stderr


def test_not_a_loopwise_endpoint():
    from fastapi import FastAPI

    with ServerThread(FastAPI()) as server:
        result = invoke(server.url, "-d", "1")
    assert result.exit_code == 1
    assert "is not a loopwise endpoint" in result.stderr
