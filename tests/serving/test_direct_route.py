"""The direct route for POST /predict: it skips Starlette's layers, answers exactly as the
FastAPI route does, and steps aside when middleware is added to the app."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from loopwise.serving.app import create_app
from loopwise.serving.live_model import LiveModel
from loopwise.serving.server import ServerThread
from tests.helpers import assert_error, register_credit_risk, training_data


@pytest.fixture
def live(lw) -> Iterator[LiveModel]:
    register_credit_risk(lw)
    model = LiveModel(
        "models:/credit-risk@champion", store=lw.get_store(), poll_interval=60
    ).start()
    yield model
    model.stop()


def predict_body(n: int = 3) -> dict:
    X, _ = training_data()
    return {"inputs": X[:n].to_dict("records"), "proba": True}


def without_volatile(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "request_id"}


def test_predict_bypasses_starlette_but_other_routes_do_not(live, monkeypatch):
    app = create_app(live)
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        expected = client.post("/predict", json=predict_body()).json()

        async def broken(self, scope, receive, send):  # Starlette's whole stack
            raise RuntimeError("the router was reached")

        monkeypatch.setattr(FastAPI, "__call__", broken)
        direct = client.post("/predict", json=predict_body())
        assert direct.status_code == 200, direct.text
        assert without_volatile(direct.json()) == without_volatile(expected)
        assert direct.headers["content-type"] == "application/json"
        assert int(direct.headers["content-length"]) == len(direct.content)
        # GET /health goes through the (broken) stack: uvicorn answers its bare 500
        assert client.get("/health").status_code == 500


def test_added_middleware_sees_predict_and_answers_are_the_same(live):
    plain = create_app(live)
    wrapped = create_app(live)
    seen: list[str] = []

    @wrapped.middleware("http")
    async def record(request, call_next):
        seen.append(request.url.path)
        response = await call_next(request)
        response.headers["x-seen"] = "1"
        return response

    body = predict_body()
    with ServerThread(plain) as a, ServerThread(wrapped) as b:
        direct = httpx.post(f"{a.url}/predict", json=body, timeout=10)
        routed = httpx.post(f"{b.url}/predict", json=body, timeout=10)
        assert direct.status_code == routed.status_code == 200
        assert without_volatile(direct.json()) == without_volatile(routed.json())
        assert routed.headers["x-seen"] == "1"
        assert seen == ["/predict"]
        for url in (a.url, b.url):  # mistakes are the same 4xx either way
            assert_error(
                httpx.post(f"{url}/predict", content=b"{", headers=JSON, timeout=10),
                400,
                "invalid_json",
            )
            assert_error(
                httpx.post(f"{url}/predict", json={"rows": []}, timeout=10),
                400,
                "invalid_request",
                '"inputs"',
            )


def test_limit_holds_on_the_direct_route_declared_and_streamed(live):
    app = create_app(live, max_body_bytes=2_000)

    def chunks() -> Iterator[bytes]:  # no content-length: refused once it grows too large
        yield b'{"inputs": ['
        for _ in range(200):
            yield b'{"income": 1.0, "debt": 2.0, "age": 3.0},'

    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        big = {"inputs": [{"income": 1.0, "debt": 2.0, "age": 3.0}] * 100}
        assert_error(client.post("/predict", json=big), 413, "payload_too_large", "2000")
        assert_error(
            client.post("/predict", content=chunks(), headers=JSON),
            413,
            "payload_too_large",
            "over the limit",
        )
        streamed_ok = client.post(
            "/predict", content=iter([b'{"inputs": [', _ROW, b"]}"]), headers=JSON
        )
        assert streamed_ok.status_code == 200, streamed_ok.text
        assert len(streamed_ok.json()["predictions"]) == 1


_ROW = b'{"income": 1.0, "debt": 2.0, "age": 3.0}'
JSON = {"content-type": "application/json"}


def test_direct_route_under_a_root_path(live):
    outer = FastAPI()
    outer.mount("/models/credit", create_app(live))
    with ServerThread(outer) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        answer = client.post("/models/credit/predict", json=predict_body(2))
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == 2
        assert client.get("/models/credit/health").json() == {"status": "ok"}
