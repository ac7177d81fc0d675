"""Endpoints, the prediction log, a request's trace and feedback over the REST API, on
both stores: data logged with the services on the client's store, read back over HTTP."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
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
    logged = answer.json()
    assert (logged["endpoint"], logged["rows"], logged["request_id"]) == ("ep", 2, None)
    assert len(logged["files"]) == 2  # one per hour: now, and 10:00 on May 1st
    assert all(f.startswith("feedback/ep/date=") for f in logged["files"])
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


# -- frames as Parquet, compaction, scoped tokens ----------------------------------------------

PARQUET = {"content-type": "application/vnd.apache.parquet"}


def parquet(frame: pl.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.write_parquet(sink)
    return sink.getvalue()


def batch(n: int = 4, prefix: str = "b") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "request_id": [f"{prefix}{i}" for i in range(n)],
            "x": np.arange(n, dtype=float),
            "city": ["paris", None, "oslo", "rome"][:n],
            "prediction": [i % 2 for i in range(n)],
            "probabilities": [[0.5, 0.5]] * n,
        }
    )


def upload(client, frame: pl.DataFrame, endpoint: str = "ep", headers=None, **params):
    return client.post(
        f"/api/v1/endpoints/{endpoint}/predictions",
        content=parquet(frame),
        params=params,
        headers=PARQUET | (headers or {}),
    )


def download(client, endpoint: str = "ep", headers=None, **params) -> pl.DataFrame:
    answer = client.get(
        f"/api/v1/endpoints/{endpoint}/predictions.parquet", params=params, headers=headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/vnd.apache.parquet"
    return pl.read_parquet(io.BytesIO(answer.content))


def test_a_parquet_frame_is_logged_and_read_back_as_the_local_read(store, client):
    answer = upload(
        client, batch(), model="m/1", variant="nightly", timestamp="2024-05-01T12:00:00+02:00"
    )
    assert answer.status_code == 200, answer.text
    logged = answer.json()
    assert (logged["endpoint"], logged["rows"], logged["request_id"]) == ("ep", 4, None)
    assert logged["files"][0].startswith("predictions/ep/date=2024-05-01/hour=10/")
    log_feedback(store, "ep", pl.DataFrame({"request_id": ["b2"], "label": [1]}))
    local = read_predictions(store, "ep")
    back = download(client).to_pandas()
    pd.testing.assert_frame_equal(back, local)
    assert back["variant"].tolist() == ["nightly"] * 4
    assert back["model"].tolist() == ["m/1"] * 4
    assert back["label"].tolist()[2] == 1
    # a range, bounded on one side or both; an empty one keeps the columns
    ranged = download(client, start="2024-05-01T10:00:00Z", end="2024-05-01T11:00:00Z")
    assert ranged.height == 4
    assert download(client, start="2024-05-01T10:00:01Z").height == 0
    empty = download(client, end="2024-05-01T09:00:00Z")
    assert empty.height == 0
    assert "request_id" in empty.columns
    # without a request_id column the rows are one request's rows 0..n-1
    answer = upload(client, batch().drop("request_id"), timestamp="2024-05-01T11:00:00Z")
    assert answer.json()["request_id"] is not None
    assert download(client, start="2024-05-01T11:00:00Z")["row"].to_list() == [0, 1, 2, 3]


def test_hostile_uploads_are_json_4xx(store, client):
    url = "/api/v1/endpoints/ep/predictions"
    body = parquet(batch())
    for kind in ("application/json", "text/csv", None):
        headers = {"content-type": kind} if kind else {}
        refused(client.post(url, content=body, headers=headers), 415, "unsupported_media_type",
                "application/vnd.apache.parquet")  # fmt: skip
    refused(client.post(url, content=b"PAR1 junk", headers=PARQUET), 400, "invalid_input",
            "not a readable Parquet")  # fmt: skip
    refused(client.post(url, content=b"", headers=PARQUET), 400, "invalid_input", "Parquet")
    truncated = body[: len(body) // 2] + body[-8:]
    refused(client.post(url, content=truncated, headers=PARQUET), 400, "invalid_input", "Parquet")
    no_prediction = batch().drop("prediction")
    refused(upload(client, no_prediction), 400, "invalid_input", "'prediction'")
    refused(upload(client, batch().with_columns(model=pl.lit("x"))), 400, "invalid_input", "model")
    refused(upload(client, batch(), endpoint="Not-A-Name"), 400, "invalid_input", "endpoint")
    refused(
        upload(client, batch(), timestamp="2024-05-01T10:00:00"), 400, "invalid_input", "time zone"
    )
    refused(upload(client, batch(), variant=""), 400, "invalid_input", "variant")
    refused(upload(client, batch(), model="not a label"), 400, "invalid_input", "name/version")
    refused(upload(client, batch(), model="x" * 400), 400, "invalid_input", "model")
    timed = batch().with_columns(timestamp=pl.lit(T0))
    refused(upload(client, timed, timestamp="2024-05-01T10:00:00Z"), 400, "invalid_input",
            "timestamp")  # fmt: skip
    assert client.get("/api/v1/endpoints").json() == {"endpoints": []}  # nothing was written
    client.app.state.max_upload_bytes = 100
    refused(upload(client, batch()), 413, "payload_too_large", "100 bytes")

    def chunked():  # no content-length: refused while streaming
        yield body[:50]
        yield body[50:]

    refused(client.post(url, content=chunked(), headers=PARQUET), 413, "payload_too_large")


def test_hostile_downloads_are_json_4xx(store, client):
    upload(client, batch(), timestamp="2024-05-01T10:00:00Z")
    url = "/api/v1/endpoints/ep/predictions.parquet"
    refused(client.get("/api/v1/endpoints/nope/predictions.parquet"), 404, "not_found", "'ep'")
    backwards = {"start": "2024-05-02T00:00:00Z", "end": "2024-05-01T00:00:00Z"}
    refused(client.get(url, params=backwards), 400, "invalid_input", "before start")
    refused(client.get(url, params={"start": "2024-05-01"}), 400, "invalid_input", "time zone")
    refused(client.get(url, params={"end": "10000-01-01T00:00:00Z"}), 400, "invalid_input")


def test_a_request_id_with_a_slash_is_traced(store, client):
    upload(
        client, batch().with_columns(request_id=pl.lit("order/7")), timestamp="2024-05-01T10:00:00Z"
    )
    answer = client.get("/api/v1/endpoints/ep/trace/order%2F7")
    assert answer.status_code == 200, answer.text
    assert answer.json()["request_id"] == "order/7"
    assert len(answer.json()["rows"]) == 4


def test_compaction_merges_closed_hours(store, client):
    for i in range(3):
        upload(client, batch(prefix=f"p{i}-"), timestamp=f"2024-05-01T10:0{i}:00Z")
    for label in (0, 1):
        labels = {
            "request_id": ["p0-1"],
            "label": [label],
            "timestamp": [T0 + timedelta(minutes=5)],
        }
        log_feedback(store, "ep", pl.DataFrame(labels))
    before = read_predictions(store, "ep")
    url = "/api/v1/endpoints/ep/compact"
    answer = client.post(url, json={"start": "2024-05-01T00:00:00Z", "settle": 0})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "endpoint": "ep", "hours": 2, "files_before": 5, "files_after": 2, "rows": 14,
        "open_hours": 0, "busy_hours": 0,
    }  # fmt: skip
    pd.testing.assert_frame_equal(read_predictions(store, "ep"), before)
    again = client.post(url, json={"settle": "1h"})
    assert again.json()["hours"] == 0  # one file per hour already
    refused(client.post("/api/v1/endpoints/nope/compact", json={}), 404, "not_found", "nope")
    for body, needle in [
        ({"settle": -1}, "settle"),
        ({"settle": 1e300}, "settle"),
        ({"settle": "soon"}, "settle"),
        ({"settle": True}, "settle"),
        ({"settle": "x" * 100}, "settle"),
        ({"start": "2024-05-02T00:00:00Z", "end": "2024-05-01T00:00:00Z"}, "end"),
        ({"start": "2024-05-01"}, "time zone"),
        ({"extra": 1}, "extra"),
    ]:
        refused(client.post(url, json=body), 400, "invalid_input", needle)


def test_a_reader_token_cannot_log_or_compact(store, client):
    upload(client, batch(), timestamp="2024-05-01T10:00:00Z")
    secrets = {role: create_token(store, role, role)[1] for role in ("reader", "writer")}
    time.sleep(0.5)  # the authenticator refreshes every 0.2 s
    reader = {"authorization": f"Bearer {secrets['reader']}"}
    writer = {"authorization": f"Bearer {secrets['writer']}"}
    refused(upload(client, batch()), 401, "unauthorized")
    refused(upload(client, batch(), headers=reader), 403, "forbidden", "write")
    compact = "/api/v1/endpoints/ep/compact"
    refused(client.post(compact, json={}, headers=reader), 403, "forbidden", "write")
    assert download(client, headers=reader).height == 4
    assert upload(client, batch(), headers=writer).status_code == 200
    assert client.post(compact, json={}, headers=writer).status_code == 200


def test_a_model_scoped_token_reaches_only_its_models_rows(store, client):
    upload(client, batch(prefix="c"), model="churn-a/1", timestamp="2024-05-01T10:00:00Z")
    upload(client, batch(prefix="n"), timestamp="2024-05-01T10:00:00Z")  # no model
    upload(client, batch(prefix="f"), endpoint="fraud", model="fraud-b/2",
           timestamp="2024-05-01T10:00:00Z")  # fmt: skip
    _, scoped = create_token(store, "ci", "writer", experiments=["*"], models=["churn-*"])
    _, open_ = create_token(store, "all", "writer", experiments=["*"], models=["*"])
    time.sleep(0.5)
    churn = {"authorization": f"Bearer {scoped}"}
    every = {"authorization": f"Bearer {open_}"}
    assert download(client, headers=churn).height == 8
    rows = client.get("/api/v1/endpoints/ep/predictions", params=RANGE, headers=churn)
    assert rows.status_code == 200, rows.text
    assert client.get("/api/v1/endpoints/ep/trace/c1", headers=churn).status_code == 200
    for answer in (
        client.get("/api/v1/endpoints/fraud/predictions.parquet", headers=churn),
        client.get("/api/v1/endpoints/fraud/predictions", params=RANGE, headers=churn),
        client.get("/api/v1/endpoints/fraud/trace/f1", headers=churn),
        upload(client, batch(), model="fraud-b/2", headers=churn),
    ):
        refused(answer, 403, "forbidden", "'churn-*'", "'fraud-b'")
    assert upload(client, batch(prefix="c2-"), model="churn-a/1", headers=churn).status_code == 200
    labels = {"labels": [{"request_id": "c1", "label": 1}]}
    for url, body in (("feedback", labels), ("compact", {})):
        answer = client.post(f"/api/v1/endpoints/ep/{url}", json=body, headers=churn)
        refused(answer, 403, "forbidden", "'churn-*'", "'*'")
        assert (
            client.post(f"/api/v1/endpoints/ep/{url}", json=body, headers=every).status_code == 200
        )
    assert download(client, "fraud", headers=every).height == 4
