"""Endpoints, the prediction log, a request's trace and feedback over the REST API, on
both stores: data logged with the services on the client's store, read back over HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from loopwise.auth.tokens import create_token
from loopwise.predictions.log import log_feedback, log_predictions, read_predictions
from tests.helpers import refused, rid_at

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
RANGE = {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"}


def log_rows(store, times: list[datetime], *, endpoint: str = "ep", prefix: str = "r") -> None:
    n = len(times)
    frame = pl.DataFrame(
        {
            "request_id": [f"{prefix}{i}" for i in range(n)],
            "timestamp": pl.Series(times, dtype=pl.Datetime("us", "UTC")),
            "x": np.arange(n, dtype=float),
            "prediction": [i % 2 for i in range(n)],
            "latency_ms": [float("nan") if i == 0 else 1.5 for i in range(n)],
        }
    )
    log_predictions(store, endpoint, frame, model="m/1")


def pages(client, endpoint: str, params: dict, max_results: int) -> tuple[list[dict], int]:
    """Every row of a range, following the tokens; and how many pages it took."""
    rows, token, count = [], None, 0
    while True:
        query = params | {"max_results": max_results}
        if token:
            query["page_token"] = token
        answer = client.get(f"/api/v1/endpoints/{endpoint}/predictions", params=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        rows += body["predictions"]
        count += 1
        token = body["next_page_token"]
        if token is None:
            return rows, count
        assert count < 100


def test_endpoints_are_listed(store, client):
    assert client.get("/api/v1/endpoints").json() == {"endpoints": []}
    log_rows(store, [T0])
    log_rows(store, [T0], endpoint="other")
    names = [e["name"] for e in client.get("/api/v1/endpoints").json()["endpoints"]]
    assert names == ["ep", "other"]


def test_a_range_comes_a_page_at_a_time_in_order_with_feedback(store, client):
    # 3 hours, two rows sharing each timestamp: pages must cut between equal times too
    times = [T0 + timedelta(minutes=20 * (i // 2)) for i in range(18)]
    log_rows(store, times)
    log_feedback(store, "ep", pl.DataFrame({"request_id": ["r3"], "label": [1]}))
    rows, count = pages(client, "ep", RANGE, max_results=5)
    assert count == 4
    expected = read_predictions(store, "ep", T0, T0 + timedelta(hours=4))
    assert [r["request_id"] for r in rows] == sorted(
        expected["request_id"], key=lambda r: (times[int(r[1:])], r)
    )
    assert len({r["request_id"] for r in rows}) == 18
    first = rows[0]
    assert first["latency_ms"] is None  # NaN is null in JSON
    assert first["timestamp"] == T0.isoformat()
    assert first["input.x"] == 0.0
    assert {r["request_id"]: r["label"] for r in rows if r["label"] is not None} == {"r3": 1}
    # the same range in one page
    one = client.get("/api/v1/endpoints/ep/predictions", params=RANGE | {"max_results": 1000})
    assert one.json()["next_page_token"] is None
    assert [r["request_id"] for r in one.json()["predictions"]] == [r["request_id"] for r in rows]


def test_a_long_sparse_range_is_read_a_week_per_page(store, client):
    times = [T0, T0 + timedelta(days=20), T0 + timedelta(days=20, hours=1)]
    log_rows(store, times)
    params = {"start": "2024-05-01T00:00:00Z", "end": "2024-06-15T00:00:00+00:00"}
    rows, count = pages(client, "ep", params, max_results=1000)
    assert [r["request_id"] for r in rows] == ["r0", "r1", "r2"]
    assert count == 7  # 45 days, a week per page
    # an offset with a + written as %2B, or left as a space by a careless client
    for start in ("2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00 02:00"):
        answer = client.get(
            "/api/v1/endpoints/ep/predictions",
            params={"start": start, "end": "2024-05-02T00:00:00Z"},
        )
        assert [r["request_id"] for r in answer.json()["predictions"]] == ["r0"]


def test_hostile_reads_are_json_4xx(store, client):
    log_rows(store, [T0])
    url = "/api/v1/endpoints/ep/predictions"
    refused(
        client.get("/api/v1/endpoints/nope/predictions", params=RANGE), 404, "not_found", "nope"
    )
    refused(
        client.get("/api/v1/endpoints/NOT%20A%20NAME/predictions", params=RANGE), 404, "not_found"
    )
    naive = {"start": "2024-05-01T00:00:00", "end": "2024-05-02T00:00:00Z"}
    refused(client.get(url, params=naive), 400, "invalid_input", "no time zone", "Z (UTC)")
    backwards = {"start": RANGE["end"], "end": RANGE["start"]}
    refused(client.get(url, params=backwards), 400, "invalid_input", "not after start")
    refused(client.get(url, params={"start": RANGE["start"]}), 400, "invalid_input", "both")
    refused(
        client.get(url, params={"start": "yesterday", "end": RANGE["end"]}), 400, "invalid_input"
    )
    for n in ("0", "1001", str(10**30), "lots"):
        refused(
            client.get(url, params=RANGE | {"max_results": n}), 400, "invalid_input", "max_results"
        )
    refused(
        client.get(url, params=RANGE | {"page_token": "garbage!"}),
        400,
        "invalid_input",
        "page_token",
    )
    first = client.get(url, params=RANGE | {"max_results": 1}).json()
    # r0 alone: the next page of this range is empty; the token belongs to this range only
    other = {"start": "2024-05-01T01:00:00Z", "end": RANGE["end"]}
    token = first["next_page_token"] or "eyJ4Ijox"
    refused(client.get(url, params=other | {"page_token": token}), 400, "invalid_input")
    overflow = {"start": "9999-12-31T23:00:00-05:00", "end": "9999-12-31T23:30:00-05:00"}
    refused(client.get(url, params=overflow), 400, "invalid_input", "9999")
    # times before 2000 or near 9999 hold no predictions: read as the log's own bounds
    wide = {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"}
    answer = client.get(url, params=wide)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == []  # a week from 2000 on: nothing yet
    last_week = {"start": "9999-12-25T00:00:00Z", "end": "9999-12-31T23:59:59.999999Z"}
    answer = client.get(url, params=last_week)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"endpoint": "ep", "predictions": [], "next_page_token": None}


def test_trace_of_a_request(store, client):
    rid = rid_at(T0)  # a loopwise id: looked for in the hours it names
    frame = pl.DataFrame(
        {
            "request_id": [rid, "ext-7"],
            "timestamp": pl.Series([T0, T0 + timedelta(hours=5)], dtype=pl.Datetime("us", "UTC")),
            "x": [1.0, float("inf")],
            "prediction": [1, 0],
        }
    )
    log_predictions(store, "ep", frame, model="m/1")
    trace = client.get(f"/api/v1/endpoints/ep/trace/{rid}").json()
    assert trace["request_id"] == rid
    assert trace["model"] == "m/1"
    assert [r["prediction"] for r in trace["rows"]] == [1]
    other = client.get("/api/v1/endpoints/ep/trace/ext-7").json()
    assert other["rows"][0]["input.x"] is None  # inf is null in JSON
    ranged = client.get(
        "/api/v1/endpoints/ep/trace/ext-7",
        params={"start": "2024-05-01T14:00:00Z", "end": "2024-05-01T16:00:00Z"},
    )
    assert ranged.status_code == 200, ranged.text


def test_hostile_traces_are_json_4xx(store, client):
    log_rows(store, [T0])
    base = "/api/v1/endpoints/ep/trace"
    refused(client.get("/api/v1/endpoints/nope/trace/r0"), 404, "not_found", "nope")
    refused(client.get(f"{base}/missing"), 404, "not_found", "missing")
    refused(client.get(f"{base}/7zzzzzzzzzzzzzzzzzzzzzzzzz"), 404, "not_found", "outside")
    refused(client.get(f"{base}/00000000000000000000000000"), 404, "not_found", "outside")
    near_end = rid_at(datetime(9999, 12, 31, 23, 30, tzinfo=UTC))
    refused(client.get(f"{base}/{near_end}"), 404, "not_found")
    refused(
        client.get(f"{base}/r0", params={"start": "2024-05-01T10:00:00"}),
        400,
        "invalid_input",
        "time zone",
    )
    refused(client.get(f"{base}/{'x' * 300}"), 400, "invalid_input")
    wide = {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"}
    assert client.get(f"{base}/r0", params=wide).status_code == 200  # no bound: all the log
    long = {"start": "2001-01-01T00:00:00Z", "end": "2024-12-31T00:00:00Z"}
    refused(client.get(f"{base}/r0", params=long), 400, "invalid_input", "366 days")


def test_feedback_is_logged_and_joined(store, client):
    log_rows(store, [T0, T0 + timedelta(minutes=1)])
    body = {
        "labels": [
            {"request_id": "r0", "label": 1},
            {"request_id": "r1", "label": 0, "row": 0, "timestamp": "2024-05-01T12:00:00+02:00"},
        ]
    }
    answer = client.post("/api/v1/endpoints/ep/feedback", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"endpoint": "ep", "rows": 2}
    rows = client.get("/api/v1/endpoints/ep/predictions", params=RANGE).json()["predictions"]
    assert [(r["request_id"], r["label"]) for r in rows] == [("r0", 1), ("r1", 0)]
    assert rows[1]["feedback_timestamp"] == "2024-05-01T10:00:00+00:00"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"labels": []}, "labels"),
        ({"labels": [{"request_id": "r0"}]}, "label"),
        ({"labels": [{"request_id": "r0", "label": None}]}, "label"),
        ({"labels": [{"request_id": "r0", "label": 1, "row": -1}]}, "row"),
        ({"labels": [{"request_id": "r0", "label": 1, "row": 2**40}]}, "row"),
        ({"labels": [{"request_id": "", "label": 1}]}, "request_id"),
        ({"labels": [{"request_id": "r0", "label": 1, "extra": 1}]}, "extra"),
        (
            {"labels": [{"request_id": "r0", "label": 1, "timestamp": "2024-05-01T10:00"}]},
            "time zone",
        ),
        ({"labels": [{"request_id": "r0", "label": 1, "timestamp": "1999-01-01T00:00Z"}]}, "2000"),
        ({"labels": [{"request_id": "r\u0000", "label": 1}]}, "NUL"),
        ({"labels": [{"request_id": "r0", "label": [1, 2]}]}, "label"),
    ],
)
def test_hostile_feedback_is_a_json_400(store, client, body, needle):
    log_rows(store, [T0])
    answer = client.post("/api/v1/endpoints/ep/feedback", json=body)
    refused(answer, 400, "invalid_input", needle)


def test_feedback_needs_a_known_endpoint_and_a_feedback_or_write_token(store, client):
    body = {"labels": [{"request_id": "r0", "label": 1}]}
    refused(client.post("/api/v1/endpoints/nope/feedback", json=body), 404, "not_found", "nope")
    log_rows(store, [T0])
    secrets = {role: create_token(store, role, role)[1] for role in ("read", "predict", "write")}
    time.sleep(0.5)  # the authenticator refreshes every 0.2 s
    url = "/api/v1/endpoints/ep/feedback"
    refused(client.post(url, json=body), 401, "unauthorized")
    as_reader = {"authorization": f"Bearer {secrets['read']}"}
    refused(client.post(url, json=body, headers=as_reader), 403, "forbidden", "'predict', 'write'")
    for role in ("predict", "write"):
        headers = {"authorization": f"Bearer {secrets[role]}"}
        assert client.post(url, json=body, headers=headers).status_code == 200
    listed = client.get("/api/v1/endpoints", headers=as_reader)
    assert listed.status_code == 200
