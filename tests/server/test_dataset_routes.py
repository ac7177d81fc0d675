"""Datasets over HTTP: datasets, versions (by number and ``latest``), profiles, schemas and
validation reports, uploads and downloads of a version's data, on both stores; hostile
paths, queries and bodies are 4xx JSON, never a 500.

The data is logged with the Python API (the ``lw`` fixture) on the store the client serves,
or uploaded as Parquet.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pandas as pd
import polars as pl
import pytest

from loopwise.auth.tokens import create_token
from loopwise.data.frames import to_polars

API = "/api/v1"
PARQUET = "application/vnd.apache.parquet"


def error_of(answer) -> dict:
    body = answer.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    return body["error"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, n)
    income[::7] = np.nan  # missing values: the profile and report keep them as counts
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": income,
            "region": rng.choice(["north", "south"], n),
        }
    )


@pytest.fixture
def loans(lw):
    """``loans`` v1 (logged against a schema: schema and report kept), v2 (without), and a
    second dataset ``zeta``."""
    first = _frame(200, 0)
    lw.log_dataset(first, name="loans", schema=lw.infer_schema(first))
    lw.log_dataset(_frame(100, 1), name="loans", description="ignored for an existing name")
    lw.log_dataset(pd.DataFrame({"x": [1.0, float("inf"), 3.0]}), name="zeta")


def test_datasets_listed_paged_and_one(loans, client):
    listed = client.get(f"{API}/datasets").json()
    assert [d["name"] for d in listed["datasets"]] == ["loans", "zeta"]
    assert listed["next_page_token"] is None
    loans_info = listed["datasets"][0]
    assert (loans_info["versions"], loans_info["latest_version"]) == (2, 2)
    assert loans_info["latest_rows"] == 100
    assert client.get(f"{API}/datasets/loans").json() == loans_info

    first = client.get(f"{API}/datasets", params={"max_results": 1}).json()
    assert [d["name"] for d in first["datasets"]] == ["loans"]
    rest = client.get(
        f"{API}/datasets", params={"max_results": 1, "page_token": first["next_page_token"]}
    ).json()
    assert [d["name"] for d in rest["datasets"]] == ["zeta"]
    assert rest["next_page_token"] is None


def test_versions_by_number_and_latest(loans, client):
    versions = client.get(f"{API}/datasets/loans/versions").json()
    assert [v["version"] for v in versions["versions"]] == [1, 2]
    assert "profile" not in versions["versions"][0]
    first = client.get(f"{API}/datasets/loans/versions", params={"max_results": 1}).json()
    second = client.get(
        f"{API}/datasets/loans/versions",
        params={"max_results": 1, "page_token": first["next_page_token"]},
    ).json()
    assert first["versions"] + second["versions"] == versions["versions"]

    one = client.get(f"{API}/datasets/loans/versions/1").json()
    assert one["uri"] == "datasets:/loans/1"
    assert one["rows"] == 200
    assert one["validation_ok"] is True
    assert set(one["column_types"]) == {"age", "income", "region"}
    latest = client.get(f"{API}/datasets/loans/versions/latest").json()
    assert latest == versions["versions"][1]
    assert latest["validation_ok"] is None


def test_profile_schema_and_validation_reports(loans, client):
    profile = client.get(f"{API}/datasets/loans/versions/1/profile")
    assert profile.status_code == 200, profile.text
    body = profile.json()
    assert body["dataset_version"] == "datasets:/loans/1"
    columns = {c["name"]: c for c in body["profile"]["columns"]}
    assert columns["income"]["nulls"] == 29
    assert body["profile"]["rows"] == 200
    assert client.get(f"{API}/datasets/zeta/versions/latest/profile").status_code == 200

    schema = client.get(f"{API}/datasets/loans/versions/1/schema").json()
    assert schema["dataset_version"] == "datasets:/loans/1"
    assert schema["schema"]["columns"]
    no_schema = client.get(f"{API}/datasets/loans/versions/2/schema")
    assert no_schema.status_code == 404
    assert "without a schema" in error_of(no_schema)["message"]

    reports = client.get(f"{API}/datasets/loans/versions/1/validation-reports").json()
    (report,) = reports["reports"]
    assert report["ok"] is True
    assert report["rows"] == 200
    assert "format_version" in report
    none = client.get(f"{API}/datasets/loans/versions/latest/validation-reports").json()
    assert none == {"dataset_version": "datasets:/loans/2", "reports": []}


def test_openapi_lists_the_dataset_routes(client):
    paths = client.get(f"{API}/openapi.json").json()["paths"]
    for path in (
        "/api/v1/datasets",
        "/api/v1/datasets/{name}/versions/{version}",
        "/api/v1/datasets/{name}/versions/{version}/profile",
        "/api/v1/datasets/{name}/versions/{version}/schema",
        "/api/v1/datasets/{name}/versions/{version}/validation-reports",
        "/api/v1/datasets/{name}/versions/{version}/data",
    ):
        assert path in paths
    upload = paths["/api/v1/datasets/{name}/versions"]["post"]
    assert PARQUET in upload["requestBody"]["content"]


HOSTILE = [
    ("/datasets/nope", 404),
    ("/datasets/nope/versions", 404),
    ("/datasets/nope/versions/1", 404),
    ("/datasets/nope/versions/latest", 404),
    ("/datasets/nope/versions/latest/profile", 404),
    ("/datasets/loans/versions/3", 404),
    (f"/datasets/{'a' * 5000}/versions/latest", 404),
    ("/datasets/loans/versions/3/schema", 404),
    ("/datasets/loans/versions/3/validation-reports", 404),
    ("/datasets/loans/versions/2147483647", 404),
    ("/datasets/loans/versions/0", 400),
    ("/datasets/loans/versions/-1", 400),
    ("/datasets/loans/versions/2147483648", 400),
    (f"/datasets/loans/versions/{10**30}", 400),
    (f"/datasets/loans/versions/{10**30}/profile", 400),
    ("/datasets/loans/versions/1.5", 400),
    ("/datasets/loans/versions/newest", 400),
    ("/datasets/loans/versions/%00", 400),
    ("/datasets/bad%20name/versions", 400),
    ("/datasets/a%40b/versions/1", 400),
    ("/datasets/a%00b", 400),
    ("/datasets/%2E%2E/versions", 400),
    ("/datasets?max_results=0", 400),
    ("/datasets?max_results=-5", 400),
    (f"/datasets?max_results={10**30}", 400),
    ("/datasets?page_token=!!!", 400),
    ("/datasets?page_token=WzEsMiwzXQ", 400),  # [1,2,3]
    ("/datasets/loans/versions?page_token=WyJkYXRhc2V0cyIsImxvYW5zIl0", 400),  # another list's
    ("/datasets/loans/versions?page_token=WyJkYXRhc2V0LXZlcnNpb25zIiwiMSJd", 400),  # "1" not 1
]


def test_hostile_paths_are_4xx_json(loans, client):
    for path, status in HOSTILE:
        answer = client.get(f"{API}{path}")
        assert answer.status_code == status, (path, answer.text)
        error = error_of(answer)
        expected = {"not_found"} if status == 404 else {"invalid_input", "invalid_reference"}
        assert error["code"] in expected, (path, error)
        assert error["message"], path


def test_messages_name_the_problem(loans, client):
    unknown = error_of(client.get(f"{API}/datasets/nope/versions"))["message"]
    assert "nope" in unknown
    missing = error_of(client.get(f"{API}/datasets/loans/versions/3"))["message"]
    assert "1, 2" in missing  # the versions that exist
    out_of_range = error_of(client.get(f"{API}/datasets/loans/versions/99999999999"))["message"]
    assert "2147483647" in out_of_range
    bad_name = error_of(client.get(f"{API}/datasets/bad%20name/versions"))["message"]
    assert "letters, digits" in bad_name


def test_dataset_routes_need_read(loans, store, client):
    assert client.post(f"{API}/datasets", json={}).status_code == 405
    assert client.delete(f"{API}/datasets/loans").status_code == 405
    _, reader = create_token(store, "viewer", "read")
    time.sleep(0.5)  # the authenticator refreshes every 0.2 s
    assert client.get(f"{API}/datasets").status_code == 401
    ok = client.get(
        f"{API}/datasets/loans/versions/1", headers={"authorization": f"Bearer {reader}"}
    )
    assert ok.status_code == 200


def test_no_datasets_yet(client):
    assert client.get(f"{API}/datasets").json() == {"datasets": [], "next_page_token": None}


# -- uploads and downloads -------------------------------------------------------------------


def parquet(frame, schema=None) -> bytes:
    """``frame`` as the remote client uploads it: Parquet, the schema in its metadata."""
    out = io.BytesIO()
    metadata = None if schema is None else {"loopwise.schema": json.dumps(schema.to_dict())}
    to_polars(frame).write_parquet(out, metadata=metadata)
    return out.getvalue()


def upload(client, name, body, *, headers=None, **params):
    return client.post(
        f"{API}/datasets/{name}/versions",
        content=body,
        params=params,
        headers={"content-type": PARQUET} | (headers or {}),
    )


def _zoned() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "at": pd.date_range("2024-10-27", periods=6, freq="h", tz="Europe/London"),
            "kind": pd.Categorical(["a", "b", "c"] * 2),
            "text": ["x\x00y", "日本", None, "🙂", "", "z"],
        }
    )


def test_upload_then_download_round_trip(client):
    frame = _zoned()
    answer = upload(client, "zoned", parquet(frame), description="six rows", source="a.csv")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["uri"], body["rows"], body["columns"]) == ("datasets:/zoned/1", 6, 3)
    assert body["source"] == "a.csv"
    assert body["profile"]["rows"] == 6
    assert (body["schema"], body["validation"], body["validation_ok"]) == (None, None, None)
    full = client.get(f"{API}/datasets/zoned/versions/1", params={"full": True}).json()
    assert full == body
    assert client.get(f"{API}/datasets/zoned").json()["description"] == "six rows"

    data = client.get(f"{API}/datasets/zoned/versions/latest/data")
    assert data.status_code == 200, data.text
    assert data.headers["content-type"] == PARQUET
    assert data.headers["etag"] == f'"{body["sha256"]}"'
    assert int(data.headers["content-length"]) == body["size"] == len(data.content)
    back = pl.read_parquet(io.BytesIO(data.content))
    assert back.schema == to_polars(frame).schema
    assert back.equals(to_polars(frame))

    some = client.get(f"{API}/datasets/zoned/versions/1/data?columns=text&columns=at&columns=at")
    assert some.status_code == 200, some.text
    assert pl.read_parquet(io.BytesIO(some.content)).columns == ["text", "at"]


def test_identical_data_is_the_same_version(lw, client):
    frame = _zoned()
    logged = lw.log_dataset(frame, name="zoned")  # logged locally, then uploaded
    first = upload(client, "zoned", parquet(frame)).json()
    again = upload(client, "zoned", parquet(pl.from_pandas(frame))).json()
    assert first["id"] == again["id"] == logged.id
    assert first["sha256"] == logged.sha256
    changed = upload(client, "zoned", parquet(frame.iloc[:3])).json()
    assert changed["version"] == 2
    listed = client.get(f"{API}/datasets/zoned/versions").json()["versions"]
    assert [v["version"] for v in listed] == [1, 2]


def test_a_schema_is_checked_by_the_server(lw, client):
    clean = _frame(300, 0)
    schema = lw.infer_schema(clean)
    ok = upload(client, "checked", parquet(clean, schema))
    assert ok.status_code == 200, ok.text
    assert ok.json()["validation_ok"] is True
    assert ok.json()["schema"]["columns"]
    stored = client.get(f"{API}/datasets/checked/versions/1/schema").json()["schema"]
    assert stored == ok.json()["schema"]

    broken = clean.assign(region="west", age=-5)
    refused = upload(client, "checked", parquet(broken, schema))
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "data_validation_error"
    assert "dataset 'checked' failed validation" in error["message"]
    assert "region" in error["message"]
    report = error["report"]
    assert report["ok"] is False
    kinds = {(a["kind"], a["column"]) for a in report["anomalies"]}
    assert ("new_value", "region") in kinds
    assert ("out_of_range", "age") in kinds
    listed = client.get(f"{API}/datasets/checked/versions").json()["versions"]
    assert [v["version"] for v in listed] == [1]  # nothing stored


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        (b"{not json", "not a schema document"),
        (b'{"format_version": 1, "columns": [{"name": "a", "type": "weird"}]}', "not valid"),
        (b'{"format_version": 1, "columns": "a"}', "not valid"),
        (b'{"format_version": 1, "columns": [], "keys": 5}', "not a schema document"),
        (b"[" * 100_000, "not a schema document"),
        (b"\xff\xfe", "not a schema document"),
    ],
)
def test_a_bad_schema_document_is_a_400(client, document, needle):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # the document as raw bytes in the metadata (PyArrow writes any bytes there)
    table = pa.table({"a": [1, 2]}).replace_schema_metadata({b"loopwise.schema": document})
    out = io.BytesIO()
    pq.write_table(table, out)
    answer = upload(client, "bad-schema", out.getvalue())
    assert answer.status_code == 400, answer.text
    error = error_of(answer)
    assert "loopwise.schema" in error["message"]
    assert needle in error["message"]


def test_wrong_media_types_are_415(client):
    body = parquet(_zoned())
    for kind in ("application/octet-stream", "application/json", "text/csv", ""):
        answer = upload(client, "zoned", body, headers={"content-type": kind})
        assert answer.status_code == 415, (kind, answer.text)
        error = error_of(answer)
        assert error["code"] == "unsupported_media_type"
        assert PARQUET in error["message"]
    charset = upload(client, "zoned", body, headers={"content-type": f"{PARQUET}; x=1"})
    assert charset.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not parquet at all",
        b"a,b\n1,2\n",
        b"PAR1" + b"\x00" * 32 + b"PAR1",
        parquet(pd.DataFrame({"a": range(100)}))[:-40],
        parquet(pd.DataFrame({"a": range(100)}))[40:],
    ],
)
def test_junk_bytes_are_a_400(client, body):
    answer = upload(client, "junk", body)
    assert answer.status_code == 400, answer.text
    error = error_of(answer)
    assert error["code"] == "invalid_input"
    assert "not a readable Parquet file" in error["message"]
    assert client.get(f"{API}/datasets/junk").status_code == 404


def test_flipped_bytes_never_a_500(client):
    good = parquet(pd.DataFrame({"a": range(200), "b": ["x"] * 200, "c": [1.5] * 200}))
    rng = np.random.default_rng(7)
    statuses = set()
    for _ in range(60):
        damaged = bytearray(good)
        for at in rng.integers(0, len(good), 4):
            damaged[at] = int(rng.integers(0, 256))
        answer = upload(client, "flipped", bytes(damaged))
        statuses.add(answer.status_code)
        assert answer.status_code in (200, 400), answer.text
    assert 400 in statuses


def test_a_frame_without_columns_is_a_400(client):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.table({}), out)
    answer = upload(client, "empty", out.getvalue())
    assert answer.status_code == 400, answer.text
    assert "no columns" in error_of(answer)["message"]


def test_over_the_upload_limit_is_413(client):
    client.app.state.max_upload_bytes = 100
    answer = upload(client, "big", parquet(_zoned()))
    assert answer.status_code == 413, answer.text
    error = error_of(answer)
    assert error["code"] == "payload_too_large"
    assert "100 bytes" in error["message"]

    def chunks():  # no content-length: refused while it streams in
        yield parquet(_zoned())

    streamed = client.post(
        f"{API}/datasets/big/versions", content=chunks(), headers={"content-type": PARQUET}
    )
    assert streamed.status_code == 413
    assert client.get(f"{API}/datasets/big").status_code == 404


def test_unknown_versions_datasets_and_columns(loans, client):
    assert client.get(f"{API}/datasets/loans/versions/9/data").status_code == 404
    missing = client.get(f"{API}/datasets/nope/versions/latest/data")
    assert missing.status_code == 404
    assert "nope" in error_of(missing)["message"]
    assert client.get(f"{API}/datasets/loans/versions/0/data").status_code == 400
    column = client.get(f"{API}/datasets/loans/versions/1/data", params={"columns": "salary"})
    assert column.status_code == 400
    message = error_of(column)["message"]
    assert "'salary'" in message
    assert "'age'" in message


def test_hostile_queries_and_names_are_4xx(client):
    body = parquet(_zoned())
    for name, params, status in [
        ("bad%20name", {}, 400),
        ("a" * 300, {}, 400),
        ("zoned", {"description": "d" * 10_001}, 400),
        ("zoned", {"source": "s" * 5000}, 400),
        ("zoned", {"run_id": "no-such-run"}, 404),
        ("zoned", {"run_id": "x" * 400}, 400),
    ]:
        answer = upload(client, name, body, **params)
        assert answer.status_code == status, (name, params, answer.text)
        error_of(answer)
    assert client.get(f"{API}/datasets/zoned").status_code == 404


def test_a_reader_cannot_upload(loans, store, client):
    _, reader = create_token(store, "viewer", "reader")
    _, writer = create_token(store, "ci", "writer")
    time.sleep(0.5)  # the authenticator refreshes every 0.2 s
    body = parquet(_zoned())
    assert upload(client, "zoned", body).status_code == 401
    refused = upload(client, "zoned", body, headers={"authorization": f"Bearer {reader}"})
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "forbidden"
    read = client.get(
        f"{API}/datasets/loans/versions/1/data", headers={"authorization": f"Bearer {reader}"}
    )
    assert read.status_code == 200
    done = upload(client, "zoned", body, headers={"authorization": f"Bearer {writer}"})
    assert done.status_code == 200, done.text
    from loopwise.auth.audit import list_audit_events

    (event,) = list_audit_events(store, actor="ci").events
    assert (event.method, event.status, event.entity) == ("POST", 200, "datasets:/zoned/1")


def test_the_producing_run_is_scope_checked(store, client):
    runs = {}
    for experiment in ("churn-a", "fraud-b"):
        made = client.post(f"{API}/runs", json={"experiment": experiment})
        runs[experiment] = made.json()["id"]
    _, writer = create_token(store, "ci", "writer", experiments=["churn-*"])
    time.sleep(0.5)
    headers = {"authorization": f"Bearer {writer}"}
    body = parquet(_zoned())
    refused = upload(client, "zoned", body, headers=headers, run_id=runs["fraud-b"])
    assert refused.status_code == 403, refused.text
    assert "'churn-*'" in error_of(refused)["message"]
    assert client.get(f"{API}/datasets/zoned", headers=headers).status_code == 404
    done = upload(client, "zoned", body, headers=headers, run_id=runs["churn-a"])
    assert done.status_code == 200, done.text
    assert done.json()["run_id"] == runs["churn-a"]
    from loopwise.data.datasets import dataset_inputs

    assert [v.id for v in dataset_inputs(store, runs["churn-a"])] == [done.json()["id"]]
