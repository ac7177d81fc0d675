"""Datasets over HTTP: datasets, versions (by number and ``latest``), profiles, schemas and
validation reports, on both stores; hostile paths and queries are 4xx JSON, never a 500.

The data is logged with the Python API (the ``lw`` fixture) on the store the client serves.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from loopwise.auth.tokens import create_token

API = "/api/v1"


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
    ):
        assert path in paths


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


def test_dataset_routes_are_read_only_and_need_read(loans, store, client):
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
