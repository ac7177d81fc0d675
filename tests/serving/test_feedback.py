"""The prediction log and feedback through a real server: every answer (and shadow answer)
is logged, nothing is lost on a clean shutdown under load, feedback joins by request id,
and every malformed feedback request is a 4xx with a clear body."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from loopwise import context
from loopwise.serving.app import create_app
from loopwise.serving.endpoint_config import EndpointConfig
from loopwise.serving.server import ServerThread, build_endpoint
from tests.helpers import assert_error, register_credit_risk, training_data

CONFIG = {
    "name": "credit-risk",
    "variants": [{"name": "main", "model": "models:/credit-risk@champion"}],
    "shadows": [{"name": "tree", "model": "models:/credit-risk/2"}],
    "poll_interval": 0.2,
    "log": {"flush_interval": 0.2},
}


@pytest.fixture
def rows(lw) -> list[dict]:
    register_credit_risk(lw)
    return training_data()[0][:3].to_dict("records")


@pytest.fixture
def served(rows) -> Iterator[tuple[object, httpx.Client]]:
    endpoint = build_endpoint(EndpointConfig.from_dict(CONFIG), context.get_store()).start()
    try:
        with (
            ServerThread(create_app(endpoint, max_body_bytes=10_000)) as server,
            httpx.Client(base_url=server.url, timeout=10) as client,
        ):
            yield endpoint, client
    finally:
        endpoint.stop()


def test_every_answer_is_logged_and_feedback_joins(lw, served, rows):
    endpoint, client = served
    first = client.post("/predict", json={"inputs": rows}).json()
    second = client.post("/predict", json={"inputs": rows[:1], "proba": True}).json()
    assert client.post("/predict", json={"inputs": [{"income": 1}]}).status_code == 400
    ok = client.post("/feedback", json={"request_id": first["request_id"], "label": 1})
    assert ok.status_code == 200, ok.text
    row = {"request_id": second["request_id"], "label": 0, "row": 0}
    assert client.post("/feedback", json=row).status_code == 200
    endpoint.stop()
    logged = lw.read_predictions("credit-risk")
    mine = logged[~logged["shadow"] & logged["error"].isna()]
    assert sorted(mine["request_id"]) == sorted([first["request_id"]] * 3 + [second["request_id"]])
    by_id = mine.set_index(["request_id", "row"])
    assert list(by_id.loc[first["request_id"], "prediction"]) == first["predictions"]
    assert list(by_id.loc[first["request_id"], "label"]) == [1, 1, 1]
    assert by_id.loc[(second["request_id"], 0), "label"] == 0
    assert list(by_id.loc[(second["request_id"], 0), "probabilities"]) == pytest.approx(
        second["probabilities"][0]
    )
    assert set(mine["model"]) == {"credit-risk/1"}
    assert set(mine["variant"]) == {"main"}
    shadow = logged[logged["shadow"]]
    assert set(shadow["model"]) == {"credit-risk/2"}
    assert len(shadow) == 4
    assert (logged["error"] == "invalid_input").sum() == 1
    assert {"input.income", "input.debt", "input.age"} <= set(logged.columns)


def test_nothing_is_lost_on_a_clean_shutdown_under_load(lw, served, rows):
    endpoint, client = served
    ids: list[str] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=10) as c:
            for _ in range(n):
                answer = c.post("/predict", json={"inputs": rows[:1]}).json()
                with lock:
                    ids.append(answer["request_id"])

    threads = [threading.Thread(target=send, args=(50,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    endpoint.stop()  # what the server's shutdown does
    logged = lw.read_predictions("credit-risk")
    assert sorted(logged.loc[~logged["shadow"], "request_id"]) == sorted(ids)


def test_feedback_is_accepted_after_a_restart(lw, served, rows):
    endpoint, client = served
    answer = client.post("/predict", json={"inputs": rows[:1]}).json()
    endpoint.stop()
    again = build_endpoint(EndpointConfig.from_dict(CONFIG), context.get_store()).start()
    try:
        with (
            ServerThread(create_app(again)) as server,
            httpx.Client(base_url=server.url, timeout=10) as c,
        ):
            sent = c.post("/feedback", json={"request_id": answer["request_id"], "label": 1})
            assert sent.status_code == 200, sent.text
    finally:
        again.stop()
    logged = lw.read_predictions("credit-risk")
    assert list(logged.loc[~logged["shadow"], "label"]) == [1]


@pytest.mark.parametrize(
    ("body", "status", "type_", "needle"),
    [
        (b"{nope", 400, "invalid_json", "not valid JSON"),
        (b"[1, 2]", 400, "invalid_request", "request_id"),
        (b'{"request_id": "x"}', 400, "invalid_request", "label"),
        (b'{"request_id": 3, "label": 1}', 400, "invalid_request", "request_id"),
        (b'{"request_id": "01jd", "label": 1}', 400, "invalid_request", "request_id"),
        (b'{"request_id": "%s", "label": [1]}' % (b"0" * 26), 400, "invalid_request", "label"),
        (
            b'{"request_id": "%s", "label": 1, "row": -1}' % (b"0" * 26),
            400,
            "invalid_request",
            "row",
        ),
        (
            b'{"request_id": "%s", "label": 1, "who": 2}' % (b"0" * 26),
            400,
            "invalid_request",
            "who",
        ),
        (b'{"request_id": "%s", "label": 1}' % (b"0" * 26), 404, "unknown_request", "request_id"),
        (
            b'{"request_id": "x", "label": "%s"}' % (b"a" * 20_000),
            413,
            "payload_too_large",
            "limit",
        ),
    ],
)
def test_bad_feedback_is_a_clear_4xx(served, body, status, type_, needle):
    _, client = served
    response = client.post("/feedback", content=body, headers={"content-type": "application/json"})
    assert_error(response, status, type_, needle)
