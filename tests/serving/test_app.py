"""The prediction app over real HTTP (uvicorn on loopback): answers and every 4xx."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from loopwise.errors import InvalidInput
from loopwise.serving.app import create_app
from loopwise.serving.live_model import LiveModel
from loopwise.serving.server import ServerThread, is_loopback, serve
from tests.helpers import COLUMNS, assert_error, register_credit_risk, training_data

JSON = {"content-type": "application/json"}


@pytest.fixture
def live(lw) -> Iterator[LiveModel]:
    register_credit_risk(lw)
    model = LiveModel(
        "models:/credit-risk@champion", store=lw.get_store(), poll_interval=0.2
    ).start()
    yield model
    model.stop()


@pytest.fixture
def server(live: LiveModel) -> Iterator[ServerThread]:
    with ServerThread(create_app(live, max_body_bytes=10_000)) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def test_predict_records_and_columns_agree(client):
    X, _ = training_data()
    rows = X[:4].to_dict("records")
    by_rows = client.post("/predict", json={"inputs": rows})
    by_cols = client.post("/predict", json={"inputs": X[:4].to_dict("list")})
    assert by_rows.status_code == by_cols.status_code == 200, by_rows.text
    body = by_rows.json()
    assert body["model"] == "credit-risk/1"
    assert len(body["request_id"]) == 26
    assert body["request_id"] != by_cols.json()["request_id"]
    assert body["predictions"] == by_cols.json()["predictions"]
    assert len(body["predictions"]) == 4
    assert set(body["predictions"]) <= {0, 1}
    assert "probabilities" not in body


def test_predict_matches_in_process_model_and_gives_probabilities(lw, client):
    X, _ = training_data()
    model = lw.load_model("models:/credit-risk/1")
    body = client.post("/predict", json={"inputs": X[:3].to_dict("records"), "proba": True})
    assert body.status_code == 200, body.text
    assert body.json()["predictions"] == model.predict(X[:3]).tolist()
    np.testing.assert_allclose(body.json()["probabilities"], model.predict_proba(X[:3]))


def test_predict_single_row_object(client):
    body = client.post("/predict", json={"inputs": {"income": 2.0, "debt": 0.0, "age": 1}})
    assert body.status_code == 200, body.text
    assert body.json()["predictions"] == [1]


@pytest.mark.parametrize(
    ("payload", "type_", "needles"),
    [
        ({"rows": []}, "invalid_request", ['"inputs"']),
        ([1, 2], "invalid_request", ['"inputs"']),
        ({"inputs": []}, "invalid_request", ["non-empty"]),
        ({"inputs": "income"}, "invalid_request", ["records"]),
        ({"inputs": [1, 2, 3]}, "invalid_request", ["records"]),
        (
            {"inputs": [{"income": 1.0, "debt": 2.0}]},
            "invalid_input",
            ["missing columns", "age", "The model takes: income (float)"],
        ),
        (
            {"inputs": [{"income": "high", "debt": 2.0, "age": 3.0}]},
            "invalid_input",
            ["column 'income' should be float but is string"],
        ),
        (
            {"inputs": [{"income": 1.0, "debt": 2.0, "age": 3.0, "zip": 1}]},
            "invalid_input",
            ["unexpected columns", "zip"],
        ),
        (
            {"inputs": {"income": [1.0, 2.0], "debt": [1.0], "age": [1.0, 2.0]}},
            "invalid_input",
            ["different lengths"],
        ),
        (
            {"inputs": [{"income": None, "debt": 2.0, "age": 3.0}]},
            "invalid_input",
            ["the model rejected the input", "NaN"],
        ),
        (
            {"inputs": [{"income": 1.0, "debt": 2.0, "age": 3.0}], "proba": "yes"},
            "invalid_request",
            ['"proba" must be true or false'],
        ),
    ],
)
def test_bad_requests_are_400_with_a_clear_message(client, payload, type_, needles):
    response = client.post("/predict", json=payload)
    error = assert_error(response, 400, type_, *needles)
    assert len(error["request_id"]) == 26


def test_malformed_json_is_400(client):
    response = client.post(
        "/predict", content=b'{"inputs": [', headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_json", "not valid JSON")
    assert_error(client.post("/predict", content=b"\xff\xfe", headers=JSON), 400, "invalid_json")


def test_body_too_large_is_413(client):
    rows = [{"income": 1.0, "debt": 2.0, "age": 3.0}] * 1000
    assert_error(client.post("/predict", json={"inputs": rows}), 413, "payload_too_large", "10000")

    def chunks() -> Iterator[bytes]:  # no content-length: the limit holds while streaming
        yield b'{"inputs": ['
        for _ in range(1000):
            yield b'{"income": 1.0, "debt": 2.0, "age": 3.0},'

    assert_error(client.post("/predict", content=chunks(), headers=JSON), 413, "payload_too_large")


def test_unknown_route_and_wrong_method_are_json(client):
    assert_error(client.get("/nope"), 404, "not_found", "/nope", "/predict")
    assert_error(client.get("/predict"), 405, "method_not_allowed")


def test_health_ready_model_and_docs(client, live):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["model"] == "credit-risk/1"
    info = client.get("/model").json()
    assert info["uri"] == "models:/credit-risk@champion"
    assert (info["name"], info["version"]) == ("credit-risk", 1)
    assert info["version_id"] == live.current.version.id
    assert info["loaded_at"].endswith("+00:00")
    assert [c["name"] for c in info["signature"]["inputs"]] == COLUMNS
    assert info["last_error"] is None
    assert info["failed_loads"] == 0
    openapi = client.get("/openapi.json").json()
    description = openapi["paths"]["/predict"]["post"]["description"]
    assert "`income`: float" in description
    assert client.get("/docs").status_code == 200


def test_metrics_count_requests(client):
    X, _ = training_data()
    client.post("/predict", json={"inputs": X[:2].to_dict("records")})
    client.post("/predict", json={"inputs": [{"income": 1.0}]})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    ok = 'loopwise_predict_requests_total{model="credit-risk/1",outcome="ok",variant="default"}'
    assert f"{ok} 1.0" in text
    bad = ok.replace('"ok"', '"client_error"')
    assert f"{bad} 1.0" in text
    assert 'loopwise_predict_errors_total{type="invalid_input"} 1.0' in text
    bucket = 'loopwise_predict_latency_seconds_bucket{le="0.001",model="credit-risk/1",variant='
    assert bucket in text
    assert "loopwise_predict_in_flight 0.0" in text
    assert 'loopwise_model_loads_total{variant="default"} 1.0' in text
    assert 'loopwise_model_load_failures_total{variant="default"} 0.0' in text
    assert "loopwise_model_enabled 1.0" in text


def test_two_apps_have_separate_metrics(live):
    first, second = create_app(live), create_app(live)
    assert first.state.metrics.registry is not second.state.metrics.registry


def test_ready_is_503_before_a_model_is_loaded(lw):
    register_credit_risk(lw)
    idle = LiveModel("models:/credit-risk@champion", store=lw.get_store())  # never started
    with ServerThread(create_app(idle)) as running, httpx.Client(base_url=running.url) as c:
        assert c.get("/health").status_code == 200
        assert_error(c.get("/ready"), 503, "not_ready")
        assert_error(c.post("/predict", json={"inputs": [{"income": 1}]}), 503, "not_ready")


class Exploding:
    """A pyfunc model whose predict fails unless told not to (importable from here)."""

    armed = False

    def predict(self, X: np.ndarray) -> np.ndarray:
        if Exploding.armed:
            raise RuntimeError("secret internal detail")
        return np.zeros(len(X))


def test_model_crash_is_a_generic_500(lw, monkeypatch):
    X, _ = training_data()
    lw.log_model(Exploding(), "boom", input_example=X[:5])
    with (
        LiveModel("models:/boom/1", store=lw.get_store()) as live,
        ServerThread(create_app(live)) as running,
    ):
        monkeypatch.setattr(Exploding, "armed", True)
        with httpx.Client(base_url=running.url) as c:
            response = c.post("/predict", json={"inputs": X[:1].to_dict("records")})
            error = assert_error(response, 500, "internal_error", "server log")
            assert "secret" not in response.text
            assert error["request_id"] in error["message"]
            metrics = c.get("/metrics").text
    line = (
        'loopwise_predict_requests_total{model="boom/1",outcome="server_error",variant="default"}'
    )
    assert f"{line} 1.0" in metrics


def test_proba_on_a_model_without_it_is_400(lw):
    X, _ = training_data()
    lw.log_model(Exploding(), "plain", input_example=X[:5])
    with (
        LiveModel("models:/plain/1", store=lw.get_store()) as live,
        ServerThread(create_app(live)) as running,
    ):
        response = httpx.post(
            f"{running.url}/predict", json={"inputs": X[:1].to_dict("records"), "proba": True}
        )
    assert_error(response, 400, "invalid_input", "predict_proba")


def test_serve_refuses_a_public_host_without_public(lw):
    with pytest.raises(InvalidInput, match="--public"):
        serve("models:/credit-risk@champion", store=lw.get_store(), host="0.0.0.0")
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("example.com")


def test_live_model_rejects_bad_arguments(lw):
    with pytest.raises(InvalidInput, match="models:/"):
        LiveModel("credit-risk", store=lw.get_store())
    with pytest.raises(InvalidInput, match="poll_interval"):
        LiveModel("models:/credit-risk@champion", store=lw.get_store(), poll_interval=0)


def test_error_bodies_are_plain_json(client):
    response = client.post("/predict", content=b"null", headers=JSON)
    assert json.loads(response.content)["error"]["type"] == "invalid_request"
