"""The prediction app against a hostile client, over real HTTP: values the model could not
see as sent are refused (never a 200 on a different value), answers are strict JSON,
bodies nested too deep or not declared as JSON are 4xx, feedback is checked against the
request it labels, and every 500 is logged."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest

from loopwise import context
from loopwise.errors import InvalidInput, NotFound
from loopwise.serving.app import create_app
from loopwise.serving.endpoint_config import EndpointConfig
from loopwise.serving.server import ServerThread, build_endpoint
from tests.helpers import assert_error

ROW = {"income": 1.5, "age": 30}


def strict_json(text: str) -> object:
    """Parse as a strict JSON parser does: bare NaN and Infinity are refused."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def register_models(lw) -> None:
    """``scorer`` (a classifier on a float and an integer column) and ``amount`` (a
    regressor doubling ``x``), each with alias champion."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"income": rng.normal(size=200), "age": rng.integers(18, 90, size=200)})
    y = (X["income"] > 0).astype(int)
    lw.log_model(LogisticRegression().fit(X, y), "scorer", input_example=X[:5])
    lw.set_alias("scorer", "champion", 1)
    x = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    lw.log_model(LinearRegression().fit(x, 2 * x["x"]), "amount", input_example=x[:2])
    lw.set_alias("amount", "champion", 1)


def serve(name: str, **config) -> Iterator[tuple[object, httpx.Client]]:
    document = {
        "name": name,
        "variants": [{"name": "main", "model": f"models:/{name}@champion"}],
        "poll_interval": 0.2,
        "log": {"flush_interval": 0.2},
    } | config
    endpoint = build_endpoint(EndpointConfig.from_dict(document), context.get_store()).start()
    try:
        with (
            ServerThread(create_app(endpoint)) as server,
            httpx.Client(base_url=server.url, timeout=10) as client,
        ):
            yield endpoint, client
    finally:
        endpoint.stop()


@pytest.fixture
def scorer(lw) -> Iterator[tuple[object, httpx.Client]]:
    register_models(lw)
    yield from serve("scorer")


@pytest.fixture
def amount(lw) -> Iterator[tuple[object, httpx.Client]]:
    register_models(lw)
    yield from serve("amount")


def post(client: httpx.Client, path: str, text: str, **headers: str) -> httpx.Response:
    """POST ``text`` as it is (Python's json.dumps would refuse some of these bodies)."""
    return client.post(
        path, content=text.encode(), headers={"content-type": "application/json", **headers}
    )


@pytest.mark.parametrize(
    ("value", "needles"),
    [
        ("Infinity", ["'age', row 1", "Infinity is not a finite number"]),
        ("-Infinity", ["'age', row 1", "-Infinity is not a finite number"]),
        (str(10**30), ["'age', row 1", "out of range", "int64"]),
        (str(2**63), ["'age', row 1", "out of range"]),
        (str(-(2**63) - 1), ["'age', row 1", "out of range"]),
        ("1e30", ["'age', row 1", "out of range"]),
    ],
)
def test_values_an_integer_column_cannot_hold_are_400(lw, scorer, value, needles):
    endpoint, client = scorer
    body = '{"inputs": [{"income": 1.5, "age": 30}, {"income": 1.5, "age": ' + value + "}]}"
    error = assert_error(post(client, "/predict", body), 400, "invalid_input", *needles)
    endpoint.stop()
    logged = lw.read_predictions("scorer")
    assert list(logged["request_id"]) == [error["request_id"]]  # an error row, no answer
    assert logged["error"].tolist() == ["invalid_input"]


def test_edges_of_the_integer_range_are_answered(scorer):
    _, client = scorer
    for age in (2**63 - 1, -(2**63), 0):
        response = post(client, "/predict", '{"inputs": [{"income": 1.5, "age": ' + f"{age}}}]}}")
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("value", "needles"),
    [
        (str(10**400), ["'income', row 0", "an integer of 401 digits", "out of range"]),
        ("Infinity", ["'income', row 0", "Infinity is not a finite number"]),
        ("-1e999", ["'income', row 0", "-Infinity"]),  # json reads 1e999 as an infinity
    ],
)
def test_numbers_past_the_float_range_are_400(scorer, value, needles):
    _, client = scorer
    body = '{"inputs": {"income": [' + value + '], "age": [30]}}'
    assert_error(post(client, "/predict", body), 400, "invalid_input", *needles)


def test_a_missing_value_is_still_a_missing_value(scorer):
    _, client = scorer  # NaN means missing (the model then refuses it, as documented)
    response = post(client, "/predict", '{"inputs": [{"income": NaN, "age": 30}]}')
    assert_error(response, 400, "invalid_input", "the model rejected the input")


def test_a_prediction_that_is_not_finite_is_null_flagged_and_counted(lw, amount):
    endpoint, client = amount
    response = post(client, "/predict", '{"inputs": {"x": [1.0, 1e308, 3.0]}}')
    assert response.status_code == 200, response.text
    body = strict_json(response.text)
    assert body["predictions"][0] == pytest.approx(2.0)
    assert body["predictions"][1] is None
    assert body["non_finite_rows"] == [1]
    fine = strict_json(post(client, "/predict", '{"inputs": {"x": [1.0]}}').text)
    assert "non_finite_rows" not in fine
    metrics = client.get("/metrics").text
    assert 'loopwise_predict_non_finite_total{model="amount/1",variant="main"} 1.0' in metrics
    endpoint.stop()
    logged = lw.read_predictions("amount")
    answered = logged[logged["request_id"] == body["request_id"]].sort_values("row")
    assert answered["prediction"].isna().tolist() == [False, True, False]


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@pytest.mark.parametrize("path", ["/predict", "/feedback"])
@pytest.mark.parametrize("depth", [40, 1_000, 100_000])
def test_deeply_nested_bodies_are_400(scorer, caplog, path, depth):
    _, client = scorer
    body = f'{{"inputs": {nested(depth)}, "request_id": {nested(depth)}}}'
    with caplog.at_level(logging.ERROR):
        assert_error(post(client, path, body), 400, "invalid_json", "deeper than 32 levels")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_far_future_request_id_is_400_not_500(scorer):
    _, client = scorer
    body = {"request_id": "z" * 26, "label": 1}
    assert_error(client.post("/feedback", json=body), 400, "invalid_request", "request_id")
    distant = {"request_id": "7" + "z" * 25, "label": 1}  # year ~10,900: past any datetime
    assert_error(client.post("/feedback", json=distant), 404, "unknown_request")
    old = {"request_id": "0" * 26, "label": 1}  # 1970: a time, but nothing was logged then
    assert_error(client.post("/feedback", json=old), 404, "unknown_request")


def test_every_500_is_logged(scorer, caplog, monkeypatch):
    endpoint, client = scorer
    answered = client.post("/predict", json={"inputs": [ROW]}).json()

    def broken(request_id: str) -> int:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(endpoint.log, "request_rows", broken)
    with caplog.at_level(logging.ERROR, logger="loopwise.serving.app"):
        response = client.post("/feedback", json={"request_id": answered["request_id"], "label": 1})
    assert_error(response, 500, "internal_error", "see the server log")
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures
    assert "the disk is on fire" in str(failures[0].exc_info[1])


@pytest.mark.parametrize("path", ["/predict", "/feedback"])
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"],
)
def test_a_body_not_declared_as_json_is_415(scorer, path, content_type):
    _, client = scorer
    body = json.dumps({"inputs": [ROW], "request_id": "0" * 26, "label": 1}).encode()
    headers = {} if content_type is None else {"content-type": content_type}
    request = client.build_request("POST", path, content=body, headers=headers)
    assert request.headers.get("content-type") == content_type
    response = client.send(request)
    assert_error(response, 415, "unsupported_media_type", "application/json")


def test_json_content_types_with_parameters_are_taken(scorer):
    _, client = scorer
    body = json.dumps({"inputs": [ROW]})
    for content_type in ("application/json; charset=utf-8", "Application/JSON"):
        assert post(client, "/predict", body, **{"content-type": content_type}).status_code == 200


def test_no_cors_unless_configured(lw):
    register_models(lw)
    preflight = {
        "origin": "https://evil.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    for _, client in serve("scorer"):
        response = client.options("/predict", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
        answer = client.post(
            "/predict", json={"inputs": [ROW]}, headers={"origin": preflight["origin"]}
        )
        assert "access-control-allow-origin" not in answer.headers
    for _, client in serve("scorer", cors_origins=["https://app.example"]):
        allowed = client.options("/predict", headers=preflight | {"origin": "https://app.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        refused = client.options("/predict", headers=preflight)
        assert "access-control-allow-origin" not in refused.headers
        answer = client.post(
            "/predict", json={"inputs": [ROW]}, headers={"origin": "https://app.example"}
        )
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://app.example"


def test_cors_origins_are_checked():
    base = {"name": "x", "fallback": 0}
    with pytest.raises(Exception, match=r"cors_origins\[0\].*origin such as"):
        EndpointConfig.from_dict(base | {"cors_origins": ["https://app.example/path"]})
    with pytest.raises(Exception, match="must be a list"):
        EndpointConfig.from_dict(base | {"cors_origins": "*"})


@pytest.mark.parametrize(
    ("label", "needle"),
    [
        ("NaN", "got NaN"),
        ("Infinity", "got Infinity"),
        (str(10**400), "an integer of 401 digits"),
        ('""', "text of 0 characters"),
        ('"%s"' % ("a" * 900_000), "text of 900000 characters"),
    ],
)
def test_labels_that_cannot_be_stored_are_400(scorer, label, needle):
    _, client = scorer
    answered = client.post("/predict", json={"inputs": [ROW]}).json()
    body = f'{{"request_id": "{answered["request_id"]}", "label": {label}}}'
    assert_error(post(client, "/feedback", body), 400, "invalid_request", '"label"', needle)


def test_feedback_rows_are_checked_against_the_logged_request(lw, scorer):
    endpoint, client = scorer
    one = client.post("/predict", json={"inputs": [ROW]}).json()
    three = client.post("/predict", json={"inputs": [ROW] * 3}).json()
    past_end = {"request_id": one["request_id"], "label": 1, "row": 99}
    assert_error(client.post("/feedback", json=past_end), 404, "unknown_row", "had 1 row", "0..0")
    last = {"request_id": three["request_id"], "label": 1, "row": 2}
    assert client.post("/feedback", json=last).status_code == 200
    endpoint.stop()
    # After a restart the request is found in the log's files, rows and all
    for restarted, again in serve("scorer"):
        assert restarted.log.request_rows(three["request_id"]) == 3
        beyond = {"request_id": three["request_id"], "label": 1, "row": 3}
        assert_error(again.post("/feedback", json=beyond), 404, "unknown_row", "had 3 row")
        ok = {"request_id": three["request_id"], "label": 0, "row": 1}
        assert again.post("/feedback", json=ok).status_code == 200


def test_trace_on_a_route_is_405_with_allow(scorer):
    _, client = scorer
    for path, allowed in (("/predict", "POST"), ("/feedback", "POST"), ("/health", "GET")):
        response = client.request("TRACE", path)
        assert_error(response, 405, "method_not_allowed", allowed)
        assert allowed in response.headers["allow"]


def test_inputs_parquet_cannot_store_do_not_stop_the_log(lw):
    """An empty object in the inputs (Arrow: a struct without fields) once failed every
    flush of the log, which then dropped every later prediction."""
    from loopwise.predictions.log import PredictionLog

    strange = [[{"a": {}}], [{"a": [{}]}], [{"a": {"b": {}}}], [{"a": 1}]]
    with PredictionLog(context.get_store(), "odd", flush_interval=60) as log:
        for i, inputs in enumerate(strange):
            log.log_request(
                request_id=f"{i:026d}",
                timestamp_us=1_765_000_000_000_000 + i,
                variant="main",
                model="m/1",
                model_version_id=None,
                inputs=inputs,
                outputs=[0],
                probabilities=None,
                latency_ms=1.0,
            )
            log.flush()  # one flush per shape: a flush of mixed shapes is text anyway
        assert log.flush_failures == 0
        assert log.rows_written == 4
    logged = lw.read_predictions("odd").sort_values("request_id")
    assert logged["input.a"].tolist() == ["{}", "[{}]", '{"b": {}}', "1"]


def test_a_huge_integer_label_is_stored_as_a_float(lw, amount):
    endpoint, client = amount
    answered = client.post("/predict", json={"inputs": [{"x": 1.0}]}).json()
    body = f'{{"request_id": "{answered["request_id"]}", "label": {10**30}}}'
    assert post(client, "/feedback", body).status_code == 200
    text = {"request_id": answered["request_id"], "label": "1e30"}
    assert_error(client.post("/feedback", json=text), 400, "invalid_request", "answers numbers")
    endpoint.stop()
    assert lw.read_predictions("amount")["label"].tolist() == [1e30]


def test_feedback_labels_are_written_as_the_model_answers(lw):
    """1 for a Yes/No model was stored as the text "1", matching no prediction."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"income": rng.normal(size=100), "age": rng.integers(18, 90, size=100)})
    y = np.where(X["income"] > 0, "Yes", "No")
    lw.log_model(LogisticRegression().fit(X, y), "yes-no", input_example=X[:5])
    lw.set_alias("yes-no", "champion", 1)
    register_models(lw)
    for endpoint, client in serve("yes-no"):
        answered = client.post("/predict", json={"inputs": [ROW, ROW]}).json()
        rid = answered["request_id"]
        refused = client.post("/feedback", json={"request_id": rid, "label": 1})
        assert_error(refused, 400, "invalid_request", "is none of the labels", '"No", "Yes"')
        ok = client.post("/feedback", json={"request_id": rid, "label": "Yes", "row": 0})
        assert ok.status_code == 200, ok.text
        endpoint.stop()
    for endpoint, client in serve("scorer"):  # a 0/1 model: "1" and true are its 1
        answered = client.post("/predict", json={"inputs": [ROW, ROW]}).json()
        for row, label in ((0, "1"), (1, True)):
            body = {"request_id": answered["request_id"], "label": label, "row": row}
            assert client.post("/feedback", json=body).status_code == 200
        endpoint.stop()
    labels = lw.read_predictions("yes-no").sort_values("row")["label"]
    assert labels.iloc[0] == "Yes"
    assert pd.isna(labels.iloc[1])
    stored = lw.read_predictions("scorer").sort_values("row")["label"].tolist()
    assert stored == [1, 1]
    assert all(type(v) is int for v in stored)


def test_the_models_own_message_is_not_sent(scorer):
    _, client = scorer
    response = client.post("/predict", json={"inputs": [{"income": None, "age": 30}]})
    error = assert_error(response, 400, "invalid_input", "cannot take missing values")
    assert "LogisticRegression" not in error["message"]
    assert "sklearn" not in error["message"].lower()


def test_log_predictions_checks_the_model_it_names(lw):
    register_models(lw)
    frame = pd.DataFrame({"income": [1.0], "age": [30], "prediction": [1]})
    with pytest.raises(InvalidInput, match="'name/version'"):
        lw.log_predictions("batch", frame, model="nonsense")
    with pytest.raises(NotFound, match="no version 9"):
        lw.log_predictions("batch", frame, model="scorer/9")
    with pytest.raises(NotFound, match="did you mean 'scorer'"):
        lw.log_predictions("batch", frame, model="scorre/1")
    logged = lw.log_predictions("batch", frame, model="scorer/1")
    assert logged.rows == 1
    lw.log_predictions("batch", frame, model="vendor-model/4")  # served elsewhere
    read = lw.read_predictions("batch")
    assert sorted(read["model"]) == ["scorer/1", "vendor-model/4"]
    assert read.set_index("model")["model_version_id"]["scorer/1"] is not None
