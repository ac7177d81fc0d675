"""The load generator against a real uvicorn on loopback: counts, errors, the swap, refusals."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from loopwise.errors import InvalidInput, NotFound
from loopwise.loadtest.generator import _parse_response, drive, run_loadtest
from loopwise.serving.app import create_app
from loopwise.serving.live_model import LiveModel
from loopwise.serving.server import ServerThread
from tests.helpers import register_credit_risk


@pytest.fixture
def served(lw) -> Iterator[tuple[LiveModel, ServerThread]]:
    register_credit_risk(lw)
    live = LiveModel(
        "models:/credit-risk@champion", store=lw.get_store(), poll_interval=0.2
    ).start()
    try:
        with ServerThread(create_app(live)) as server:
            yield live, server
    finally:
        live.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_short_run_reports_sane_counts(served):
    _, server = served
    ticks: list[tuple[float, int, int]] = []
    report = run_loadtest(
        server.url, concurrency=3, duration=1.0, progress=lambda *t: ticks.append(t)
    )
    assert report.requests > 20
    assert report.ok == report.requests
    assert (report.failed, report.errors) == (0, {})
    assert report.models == {"credit-risk/1": report.ok}
    assert 0 < report.p50_ms <= report.p95_ms <= report.p99_ms <= report.max_ms
    assert 1.0 <= report.duration_s < 3.0
    assert report.throughput_rps == pytest.approx(report.requests / report.duration_s)
    assert 0 < report.longest_gap_ms <= 1000 * report.duration_s
    assert report.swap is None
    assert len(ticks) >= 3
    assert [t[0] for t in ticks] == sorted(t[0] for t in ticks)
    assert ticks[-1][1:] == (report.requests, 0)  # the last tick has the totals

    data = json.loads(json.dumps(report.to_dict()))
    assert data["requests"] == report.requests
    assert data["latency_ms"]["p99"] == round(report.p99_ms, 3)
    assert data["url"] == f"{server.url}/predict"


def test_default_payload_uses_the_input_example_or_zeros(served, monkeypatch):
    from loopwise.loadtest import generator as loadtest

    info = {"uri": "models:/m@champion", "signature": {"inputs": [
        {"name": "a", "type": "float"}, {"name": "b", "type": "integer"},
        {"name": "c", "type": "boolean"}, {"name": "d", "type": "string"},
    ]}}  # fmt: skip
    assert loadtest._default_row(info) == {"a": 0.0, "b": 0, "c": False, "d": ""}
    example = {**info, "input_example": [{"a": 1.5, "b": 2, "c": True, "d": "x"}]}
    assert loadtest._default_row(example) == {"a": 1.5, "b": 2, "c": True, "d": "x"}
    tensor = {"uri": "models:/m/1", "signature": {"inputs": [{"name": "input", "type": "tensor"}]}}
    with pytest.raises(InvalidInput, match="--payload"):
        loadtest._default_row(tensor)


def test_payload_file_and_inputs_alone(served, tmp_path):
    _, server = served
    path = tmp_path / "payload.json"
    path.write_text(json.dumps([{"income": 1.0, "debt": 0.5, "age": 40}]))
    report = run_loadtest(server.url, concurrency=1, duration=0.3, payload=path)
    assert report.ok == report.requests > 0
    columns = {"inputs": {"income": [1.0, 2.0], "debt": [0.0, 0.0], "age": [30, 40]}}
    assert run_loadtest(server.url, concurrency=1, duration=0.3, payload=columns).failed == 0


def test_4xx_answers_are_counted_as_errors(served):
    _, server = served
    report = run_loadtest(
        server.url, concurrency=2, duration=0.5, payload={"inputs": [{"wrong": 1.0}]}
    )
    assert report.requests > 5
    assert report.ok == 0
    assert report.failed == report.requests
    assert report.errors == {"400 invalid_input": report.requests}
    assert report.models == {}
    assert report.longest_gap_ms is None
    assert report.p50_ms is not None  # an error answer still has a latency


def test_swap_moves_the_alias_without_a_failed_request(lw, served):
    live, server = served
    report = run_loadtest(
        server.url, store=lw.get_store(), concurrency=4, duration=2.0, swap_to=2, swap_at=0.4
    )
    assert report.failed == 0, report.errors
    assert set(report.models) == {"credit-risk/1", "credit-risk/2"}
    swap = report.swap
    assert (swap.model, swap.alias, swap.from_version, swap.to_version) == (
        "credit-risk",
        "champion",
        1,
        2,
    )
    assert swap.error is None
    assert swap.observed
    assert 0.4 <= swap.requested_at_s <= swap.moved_at_s < swap.first_answer_s < 2.5
    assert swap.pickup_s == pytest.approx(swap.first_answer_s - swap.moved_at_s)
    assert swap.moved_at.endswith("+00:00")
    assert lw.get_model_version("models:/credit-risk@champion").version == 2
    assert live.current.version.version == 2
    assert lw.alias_history("credit-risk", "champion")[-1].reason == "loopwise loadtest"
    assert report.to_dict()["swap"]["observed"] is True


def test_swap_is_refused_for_a_fixed_version(lw):
    register_credit_risk(lw)
    live = LiveModel("models:/credit-risk/1", store=lw.get_store()).start()
    try:
        with (
            ServerThread(create_app(live)) as server,
            pytest.raises(InvalidInput, match="fixed version"),
        ):
            run_loadtest(server.url, store=lw.get_store(), duration=1.0, swap_to=2)
    finally:
        live.stop()
    assert lw.get_model_version("models:/credit-risk@champion").version == 1


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"swap_to": 9}, "9"),  # no such version
        ({"swap_to": 1}, "already serves"),
        ({"swap_to": 2, "swap_at": 5.0}, "'swap_at'"),
        ({"swap_to": 2, "store": None}, "'store' parameter of run_loadtest must be a Store"),
        ({"swap_at": 0.5}, "needs swap_to"),
        ({"concurrency": 0}, "'concurrency' parameter of run_loadtest must be an int >= 1"),
        ({"duration": -1}, "'duration'"),
        ({"timeout": float("nan")}, "'timeout'"),
        ({"payload": []}, "payload must be"),
        ({"payload": "/no/such/file.json"}, "cannot read the payload file"),
        ({"token": " "}, "'token'"),
    ],
)
def test_bad_arguments_are_refused_before_any_load(lw, served, kwargs, needle):
    _, server = served
    with pytest.raises((InvalidInput, NotFound), match=needle):
        run_loadtest(server.url, **{"duration": 1.0, "store": lw.get_store(), **kwargs})
    assert lw.get_model_version("models:/credit-risk@champion").version == 1


def test_unreachable_url_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NotFound, match=r"nothing answers at .*connection refused"):
        run_loadtest(url, duration=1.0)
    with pytest.raises(NotFound, match="nothing answers"):
        drive(f"{url}/invocations", b"{}", duration=1.0)
    with pytest.raises(InvalidInput, match="not an endpoint URL"):
        run_loadtest("127.0.0.1:8000", duration=1.0)


def test_an_endpoint_that_is_not_loopwise_is_refused():
    other = FastAPI()

    @other.get("/model")
    async def model() -> dict:
        return {"name": "something else"}

    with ServerThread(other) as server, pytest.raises(InvalidInput, match="not a loopwise"):
        run_loadtest(server.url, duration=1.0)
    with ServerThread(FastAPI()) as server, pytest.raises(InvalidInput, match="answered 404"):
        run_loadtest(server.url, duration=1.0)


def test_drive_counts_server_errors_of_any_endpoint():
    other = FastAPI()

    @other.post("/invocations")
    async def invocations() -> dict:
        return {"predictions": [1]}

    with ServerThread(other) as server:
        report = drive(f"{server.url}/invocations", b'{"inputs": []}', concurrency=2, duration=0.3)
        assert report.ok == report.requests > 0
        assert report.models == {}  # no "model" field in these answers
        broken = drive(f"{server.url}/nope", b"{}", concurrency=1, duration=0.3)
        assert broken.errors == {"404": broken.requests}


CHUNKED = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
CLOSE = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


def test_a_failing_progress_callback_is_raised():
    other = FastAPI()

    @other.post("/invocations")
    async def invocations() -> dict:
        return {}

    def progress(elapsed: float, requests: int, failed: int) -> None:
        raise RuntimeError("the progress bar broke")

    with ServerThread(other) as server, pytest.raises(RuntimeError, match="bar broke"):
        drive(f"{server.url}/invocations", b"{}", duration=0.5, progress=progress)


@pytest.mark.parametrize(
    ("answer", "tail", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", b"HTTP/1.1", (200, b"ok", True)),
        (CHUNKED, b"", (500, b"abcde", True)),
        (CLOSE, b"", (200, b"", False)),
        (b"HTTP/1.0 204 No Content\r\n\r\n", b"", (204, b"", False)),
    ],
)
def test_response_parsing(answer, tail, expected):
    status, body, keep_alive = expected
    assert _parse_response(bytearray(answer + tail)) == (status, body, len(answer), keep_alive)
    assert _parse_response(bytearray(answer[:-1])) is None  # not whole yet


def test_a_body_without_length_ends_with_the_connection():
    raw = bytearray(b"HTTP/1.0 200 OK\r\n\r\n{}")
    assert _parse_response(raw) is None
    assert _parse_response(raw, eof=True) == (200, b"{}", 21, False)


def test_an_endpoint_with_tokens_needs_one(lw):
    from loopwise import context
    from loopwise.auth.tokens import TokenAuthenticator, create_token
    from loopwise.serving.endpoint import Endpoint

    register_credit_risk(lw)
    store = context.get_store()
    _, admin = create_token(store, "load", "admin")
    _, predictor = create_token(store, "client", "predict")
    live = LiveModel("models:/credit-risk@champion", store=lw.get_store())
    endpoint = Endpoint.single(live, authenticator=TokenAuthenticator(store)).start()
    try:
        with ServerThread(create_app(endpoint)) as server:
            with pytest.raises(InvalidInput, match=r"refused GET /model \(401.*--token"):
                run_loadtest(server.url, duration=0.3)
            with pytest.raises(InvalidInput, match=r"\(403"):
                run_loadtest(server.url, duration=0.3, token=predictor)
            report = run_loadtest(server.url, concurrency=2, duration=0.3, token=admin)
            assert report.ok == report.requests > 0
    finally:
        endpoint.stop()
