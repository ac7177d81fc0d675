"""The runs routes on both stores: create, read, end, search with keyset pages and column
selection, batch logging, downsampled history and artifacts; hostile inputs are JSON 4xx."""

from __future__ import annotations

import math

import pytest

from loopwise.ids import new_id
from loopwise.tracking import runs as run_service
from loopwise.tracking.log_batch import log_batch

API = "/api/v1"


def error_of(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    return body["error"]


def make_run(client, **body):
    answer = client.post(f"{API}/runs", json={"experiment": "exp", **body})
    assert answer.status_code == 200, answer.text
    return answer.json()


# -- runs ------------------------------------------------------------------------------------


def test_create_get_and_end_a_run(client):
    parent = make_run(client, name="parent")
    run = make_run(client, name="child", tags={"team": "risk", "n": 3}, parent_run_id="parent")
    assert run["status"] == "RUNNING"
    assert run["experiment"] == "exp"
    assert run["tags"] == {"team": "risk", "n": "3"}
    assert run["parent_run_id"] == parent["id"]
    assert run["start_time"].endswith("+00:00")
    assert client.get(f"{API}/runs/{run['id']}").json()["name"] == "child"
    assert client.get(f"{API}/runs/child").json()["id"] == run["id"]  # by unique name too
    ended = client.patch(f"{API}/runs/{run['id']}", json={"status": "FAILED"})
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "FAILED"
    assert ended.json()["end_time"] is not None
    wrong = client.patch(f"{API}/runs/{run['id']}", json={"status": "RUNNING"})
    assert "status" in error_of(wrong, 400)["message"]


def test_params_metrics_and_tags_of_a_run(client):
    run = make_run(client)
    batch = {
        "params": {"lr": 0.1, "model": "rf", "deep": True},
        "tags": {"stage": "dev"},
        "metrics": [
            {"key": "loss", "value": 1.0, "step": 0},
            {"key": "loss", "value": 0.5, "step": 1, "timestamp": "2026-01-01T00:00:00+02:00"},
            {"key": "auc", "value": "NaN"},
            {"key": "gap", "value": "-Infinity"},
            {"key": "bad", "value": None},
        ],
    }
    answer = client.post(f"{API}/runs/{run['id']}/log-batch", json=batch)
    assert answer.status_code == 200, answer.text
    assert answer.json()["metrics"] == 5
    rid = run["id"]
    assert client.get(f"{API}/runs/{rid}/params").json() == {
        "params": {"lr": "0.1", "model": "rf", "deep": "True"}
    }
    assert client.get(f"{API}/runs/{rid}/tags").json() == {"tags": {"stage": "dev"}}
    metrics = client.get(f"{API}/runs/{rid}/metrics").json()["metrics"]
    assert metrics == {"auc": "NaN", "bad": "NaN", "gap": "-Infinity", "loss": 0.5}
    assert client.get(f"{API}/runs/{rid}").json()["metrics"]["gap"] == "-Infinity"
    history = client.get(f"{API}/runs/{rid}/metrics/loss/history").json()
    assert history["step"] == [0, 1]
    assert history["value"] == [1.0, 0.5]
    assert history["timestamp"][1] == "2025-12-31T22:00:00.000000+00:00"
    assert history["downsampled"] is False
    assert history["total_points"] == 2


def test_a_batch_is_all_or_nothing(client, store):
    run = make_run(client)
    rid = run["id"]
    client.post(f"{API}/runs/{rid}/log-batch", json={"params": {"lr": 0.1}})
    conflict = client.post(
        f"{API}/runs/{rid}/log-batch",
        json={
            "params": {"lr": 0.2},
            "tags": {"t": "x"},
            "metrics": [{"key": "loss", "value": 1.0}],
        },
    )
    assert "lr" in error_of(conflict, 409)["message"]
    after = run_service.get_run(store, rid)
    assert after.tags == {}
    assert after.metrics == {}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"metrics": [{"key": "m", "value": "1.5"}]}, "metrics.0.value"),
        ({"metrics": [{"key": "m", "value": "nan"}]}, "metrics.0.value"),
        ({"metrics": [{"key": "m", "value": True}]}, "metrics.0.value"),
        ({"metrics": [{"key": "m", "value": 1, "step": 1.5}]}, "metrics.0.step"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": "2026-01-01T00:00"}]}, "time zone"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": "yesterday"}]}, "ISO 8601"),
        ({"metrics": [{"key": "", "value": 1}]}, "metrics.0.key"),
        ({"metrics": [{"key": "m", "value": 1}] * 10_001}, "10000"),
        ({"params": {"p": {"nested": 1}}}, "params.p"),
        ({"params": {"p": "x" * 9000}}, "8000"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_batches_are_400(client, body, fragment):
    run = make_run(client)
    answer = client.post(f"{API}/runs/{run['id']}/log-batch", json=body)
    assert fragment in error_of(answer, 400)["message"]


def test_unknown_and_hostile_run_ids_are_404(client):
    far_future = "zzzzzzzzzzzzzzzzzzzzzzzzzz"
    for run_id in (new_id(), far_future, "nope", "runs:/x", "%2e%2e"):
        assert error_of(client.get(f"{API}/runs/{run_id}"), 404)["code"] == "not_found"
    for path in ("params", "metrics", "tags", "metrics/loss/history", "artifacts"):
        error_of(client.get(f"{API}/runs/{far_future}/{path}"), 404)
    error_of(client.post(f"{API}/runs/{far_future}/log-batch", json={}), 404)
    error_of(client.patch(f"{API}/runs/{far_future}", json={"status": "KILLED"}), 404)
    error_of(client.post(f"{API}/runs", json={"parent_run_id": far_future}), 404)
    error_of(client.put(f"{API}/runs/{far_future}/artifacts/a.txt", content=b"x"), 404)


def test_a_nul_byte_anywhere_is_a_400(client):
    run = make_run(client)
    for answer in (
        client.get(f"{API}/runs/a%00b"),
        client.get(f"{API}/runs/{run['id']}/metrics/a%00b/history"),
        client.get(f"{API}/runs/{run['id']}/artifacts", params={"path": "a\x00b"}),
        client.post(f"{API}/runs/search", json={"filter": "params.a = 'x\u0000'"}),
        client.post(f"{API}/runs/{run['id']}/log-batch", json={"tags": {"t\u0000": "x"}}),
    ):
        assert "NUL" in error_of(answer, 400)["message"]


# -- search ----------------------------------------------------------------------------------


def populate(store, n=25):
    ids = []
    for i in range(n):
        rid = run_service.create_run(store, "search", name=f"run-{i:02d}")
        points = [] if i % 5 == 4 else [("acc", float(i % 7), 0, 0), ("loss", float(i), 0, 0)]
        if i == 3:
            points = [("acc", math.nan, 0, 0), ("loss", 3.0, 0, 0)]
        log_batch(store, rid, params={"p": "a" if i % 2 else "b", "i": i}, metrics=points)
        ids.append(rid)
    return ids


@pytest.mark.parametrize(
    "order_by",
    [None, ["metrics.acc DESC"], ["metrics.acc ASC", "params.i DESC"], ["name"], ["tags.none"]],
)
def test_keyset_pages_walk_the_whole_search_once(client, store, order_by):
    populate(store)
    body = {"experiments": ["search"], "order_by": order_by, "max_results": 1000}
    everything = client.post(f"{API}/runs/search", json=body).json()
    assert everything["next_page_token"] is None
    expected = [r["name"] for r in everything["runs"]]
    assert len(expected) == 25
    seen, token = [], None
    while True:
        page = client.post(
            f"{API}/runs/search", json={**body, "max_results": 4, "page_token": token}
        ).json()
        assert len(page["runs"]) <= 4
        seen += [r["name"] for r in page["runs"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == expected


def test_search_filters_orders_and_selects_columns(client, store):
    populate(store)
    answer = client.post(
        f"{API}/runs/search",
        json={
            "filter": "params.p = 'a' and metrics.loss >= 10",
            "order_by": ["metrics.loss DESC"],
            "columns": {"params": ["p"], "metrics": [], "tags": None},
        },
    )
    assert answer.status_code == 200, answer.text
    rows = answer.json()["runs"]
    assert [r["name"] for r in rows] == ["run-23", "run-21", "run-17", "run-15", "run-13", "run-11"]
    assert all(r["params"] == {"p": "a"} and r["metrics"] == {} for r in rows)
    assert rows[0]["start_time"].endswith("+00:00")
    nan = client.post(f"{API}/runs/search", json={"filter": "metrics.acc = nan"}).json()
    assert [r["name"] for r in nan["runs"]] == ["run-03"]
    assert nan["runs"][0]["metrics"]["acc"] == "NaN"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"max_results": 0}, 400, "max_results"),
        ({"max_results": 10**9}, 400, "max_results"),
        ({"max_results": "ten"}, 400, "max_results"),
        ({"filter": "metrics.acc >"}, 400, "filter"),
        ({"filter": "attributes.start_time > '2026-01-01T00:00'"}, 400, "time zone"),
        ({"order_by": ["metrics.acc SIDEWAYS"]}, 400, "order_by"),
        ({"experiments": ["no-such-experiment"]}, 404, "no-such-experiment"),
        ({"page_token": "not a token!"}, 400, "page_token"),
        ({"page_token": "eyJxIjoiMTIzIiwiayI6W119"}, 400, "page_token"),
        ({"columns": {"params": "all"}}, 400, "columns.params"),
        ({"surprise": True}, 400, "surprise"),
    ],
)
def test_bad_searches_are_4xx(client, store, body, status, fragment):
    populate(store, n=3)
    answer = client.post(f"{API}/runs/search", json=body)
    assert fragment in error_of(answer, status)["message"]


def test_a_token_is_tied_to_its_search_and_cannot_be_edited(client, store):
    populate(store, n=6)
    first = client.post(f"{API}/runs/search", json={"max_results": 2}).json()
    token = first["next_page_token"]
    other = client.post(
        f"{API}/runs/search",
        json={"max_results": 2, "page_token": token, "filter": "params.p = 'a'"},
    )
    assert "another filter" in error_of(other, 400)["message"]
    import base64
    import json

    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    data["k"][0] = "not a time"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    answer = client.post(f"{API}/runs/search", json={"max_results": 2, "page_token": forged})
    assert "wrong type" in error_of(answer, 400)["message"]
    data["k"][0] = 2**70
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    answer = client.post(f"{API}/runs/search", json={"max_results": 2, "page_token": forged})
    assert "wrong type" in error_of(answer, 400)["message"]


# -- metric history --------------------------------------------------------------------------


def test_history_is_downsampled_above_max_points(client, store):
    rid = run_service.create_run(store, "h")
    n = 20_000
    points = [("train/loss", 1.0 / (i + 1), i, i) for i in range(n)]
    points[7_777] = ("train/loss", 99.0, 7_777, 7_777)
    points[15_000] = ("train/loss", math.inf, 15_000, 15_000)
    log_batch(store, rid, metrics=points[:10_000])
    log_batch(store, rid, metrics=points[10_000:])
    answer = client.get(f"{API}/runs/{rid}/metrics/train/loss/history?max_points=500")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["key"] == "train/loss"
    assert body["downsampled"]
    assert body["total_points"] == n
    assert len(body["step"]) <= 500
    assert body["step"][0] == 0
    assert body["step"][-1] == n - 1
    assert 7_777 in body["step"]
    assert 99.0 in body["value"]
    assert body["value"][body["step"].index(15_000)] == "Infinity"
    assert body["timestamp"][0] == "1970-01-01T00:00:00.000000+00:00"
    whole = client.get(f"{API}/runs/{rid}/metrics/train/loss/history?max_points=1000000")
    assert len(whole.json()["step"]) == n


@pytest.mark.parametrize("max_points", ["0", "4", "1000001", "10**9", "abc", "-1", "1e3"])
def test_bad_max_points_are_400(client, store, max_points):
    rid = run_service.create_run(store, "h")
    log_batch(store, rid, metrics=[("loss", 1.0, 0, 0)])
    answer = client.get(f"{API}/runs/{rid}/metrics/loss/history?max_points={max_points}")
    assert "max_points" in error_of(answer, 400)["message"]


def test_an_unknown_metric_is_404_naming_the_known_ones(client, store):
    rid = run_service.create_run(store, "h")
    log_batch(store, rid, metrics=[("loss", 1.0, 0, 0)])
    message = error_of(client.get(f"{API}/runs/{rid}/metrics/acc/history"), 404)["message"]
    assert "acc" in message
    assert "loss" in message


# -- artifacts -------------------------------------------------------------------------------


def test_artifacts_upload_download_and_list(client):
    rid = make_run(client)["id"]
    data = bytes(range(256)) * 10_000
    up = client.put(f"{API}/runs/{rid}/artifacts/model/weights.bin", content=data)
    assert up.status_code == 200, up.text
    assert up.json()["path"] == "model/weights.bin"
    assert up.json()["size"] == len(data)
    client.put(f"{API}/runs/{rid}/artifacts/report.html", content=b"<h1>hi</h1>")
    client.put(f"{API}/runs/{rid}/artifacts/notes.txt", content=b"hello")
    down = client.get(f"{API}/runs/{rid}/artifacts/model/weights.bin")
    assert down.status_code == 200
    assert down.content == data
    html = client.get(f"{API}/runs/{rid}/artifacts/report.html")
    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["content-security-policy"] == "sandbox"
    assert (
        client.get(f"{API}/runs/{rid}/artifacts/notes.txt")
        .headers["content-type"]
        .startswith("text/plain")
    )
    listed = client.get(f"{API}/runs/{rid}/artifacts").json()["artifacts"]
    assert [a["path"] for a in listed] == ["model/weights.bin", "notes.txt", "report.html"]
    folder = client.get(f"{API}/runs/{rid}/artifacts", params={"path": "model"}).json()
    assert [a["path"] for a in folder["artifacts"]] == ["model/weights.bin"]
    error_of(client.get(f"{API}/runs/{rid}/artifacts/missing.txt"), 404)


@pytest.mark.parametrize("path", ["%2e%2e/escape.txt", "a/%2e%2e/%2e%2e/b", "%2Fetc%2Fpasswd"])
def test_artifact_paths_stay_inside_the_run(client, path):
    rid = make_run(client)["id"]
    up = client.put(f"{API}/runs/{rid}/artifacts/{path}", content=b"x")
    assert "relative" in error_of(up, 400)["message"]
    error_of(client.get(f"{API}/runs/{rid}/artifacts/{path}"), 400)
    listed = client.get(f"{API}/runs/{rid}/artifacts", params={"path": "../x"})
    error_of(listed, 400)


def test_an_upload_over_the_limit_is_413(client):
    rid = make_run(client)["id"]
    client.app.state.max_upload_bytes = 1000
    try:
        answer = client.put(f"{API}/runs/{rid}/artifacts/big.bin", content=b"x" * 5000)
        assert "1,000 bytes" in error_of(answer, 413)["message"]

        def chunks():
            yield b"x" * 600
            yield b"x" * 600

        streamed = client.put(f"{API}/runs/{rid}/artifacts/big.bin", content=chunks())
        assert error_of(streamed, 413)["code"] == "payload_too_large"
    finally:
        del client.app.state.max_upload_bytes
    assert client.get(f"{API}/runs/{rid}/artifacts").json()["artifacts"] == []


def test_openapi_lists_the_routes(client):
    paths = client.get(f"{API}/openapi.json").json()["paths"]
    for path in (
        "/api/v1/runs",
        "/api/v1/runs/search",
        "/api/v1/runs/{run_id}",
        "/api/v1/runs/{run_id}/log-batch",
        "/api/v1/runs/{run_id}/metrics/{key}/history",
        "/api/v1/runs/{run_id}/artifacts/{path}",
        "/api/v1/runs/{run_id}/artifacts",
    ):
        assert path in paths, path
