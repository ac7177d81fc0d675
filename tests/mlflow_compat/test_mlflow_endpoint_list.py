"""docs/mlflow.md lists every endpoint of MLflow's server (its own route table) with what
loopwise answers; each row is called on the app, under both of MLflow's prefixes, and held
to the table: a supported endpoint is routed to a handler (whatever it then says of the
sample arguments), an unsupported one answers 501 NOT_IMPLEMENTED or 404
ENDPOINT_NOT_FOUND in MLflow's shape -- never a 5xx, never a silent 200."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loopwise.server.app import create_server_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "mlflow.md"
ROW = re.compile(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \| (.+) \|$")


def _rows() -> list[tuple[str, str, str]]:
    text = DOC.read_text().split("## Every endpoint of MLflow", 1)[1]
    return [m.groups() for line in text.splitlines() if (m := ROW.match(line))]


def test_the_table_lists_mlflows_route_table():
    rows = _rows()
    assert len(rows) >= 180
    assert ("POST", "/api/2.0/mlflow/runs/log-batch", "yes") in rows


@pytest.fixture
def client(store):
    with TestClient(create_server_app(store), raise_server_exceptions=False) as c:
        yield c


def test_every_listed_endpoint_answers_as_the_table_says(client):
    for method, template, answer in _rows():
        # sample arguments: an artifact path has a run's shape, anything else is "x"
        path = re.sub(r"<path:[^>]+>", "0/x/artifacts/f.txt", template)
        path = re.sub(r"<[^>]+>", "x", path)
        paths = [path]
        if path.startswith("/api/2.0/mlflow/"):
            paths.append(path.replace("/api/2.0/", "/ajax-api/2.0/", 1))
        for url in paths:
            body = {} if method in ("POST", "PATCH") else None
            # (a listing names its folder: the store's root is not listed)
            query = {"path": "0/x/artifacts"} if url.endswith("mlflow-artifacts/artifacts") else {}
            got = client.request(method, url, json=body, params=query)
            where = f"{method} {url}: {got.status_code} {got.text[:200]}"
            assert got.status_code < 500 or got.status_code == 501, where
            code = got.json().get("error_code") if got.status_code >= 400 else None
            if answer == "yes":
                assert code not in ("ENDPOINT_NOT_FOUND", "NOT_IMPLEMENTED"), where
            elif "501" in answer:
                assert (got.status_code, code) == (501, "NOT_IMPLEMENTED"), where
            else:
                assert (got.status_code, code) == (404, "ENDPOINT_NOT_FOUND"), where


def test_a_known_path_under_another_method_is_mlflows_404_and_head_reads_as_get(client):
    got = client.put("/api/2.0/mlflow/runs/search", json={})
    assert (got.status_code, got.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    got = client.head("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "no"})
    assert got.status_code == 404
    assert got.content == b""
    got = client.get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "no"})
    assert got.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # loopwise's own API and pages are still the app's
    assert client.get("/api/v1/experiments").status_code == 200
    got = client.put("/version")  # only GET /version is MLflow's: the app says what it has
    assert (got.status_code, got.json()["error"]["code"]) == (404, "not_found")


def test_behind_a_proxy_prefix_the_mlflow_paths_are_still_answered(store):
    # uvicorn --root-path: the scope's path holds the prefix, and root_path names it
    with TestClient(create_server_app(store), root_path="/tracking") as client:
        got = client.get(
            "/tracking/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "no"}
        )
        assert (got.status_code, got.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
        assert client.get("/tracking/version").text == "3.17.2"
