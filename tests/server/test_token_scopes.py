"""Scoped tokens over HTTP: a token limited to ``churn-*`` reaches churn experiments, their
runs and churn models, and is refused (403 naming its patterns) everywhere else; lists
are filtered to the scope, and a search naming an out-of-scope experiment is refused."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from loopwise.auth.tokens import create_token

API = "/api/v1"


def error_of(answer) -> dict:
    body = answer.json()
    assert set(body) == {"error"}, body
    return body["error"]


def _bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


@pytest.fixture
def scoped(store, client):
    """Runs in churn-a and fraud-b (made before any token), then a writer scoped to
    ``churn-*`` for experiments and models, and an unscoped admin."""
    runs = {}
    for experiment in ("churn-a", "fraud-b"):
        answer = client.post(f"{API}/runs", json={"experiment": experiment})
        assert answer.status_code == 200, answer.text
        runs[experiment] = answer.json()["id"]
    _, writer = create_token(store, "ci", "writer", experiments=["churn-*"], models=["churn-*"])
    _, admin = create_token(store, "root", "admin")
    time.sleep(0.5)  # the authenticator refreshes every 0.2 s
    return runs, _bearer(writer), _bearer(admin)


def test_a_scoped_writer_logs_to_churn_and_not_to_fraud(scoped, client):
    runs, writer, _ = scoped
    batch = {"params": {"lr": 0.1}, "metrics": [{"key": "auc", "value": 0.9}]}
    done = client.post(f"{API}/runs/{runs['churn-a']}/log-batch", json=batch, headers=writer)
    assert done.status_code == 200, done.text
    refused = client.post(f"{API}/runs/{runs['fraud-b']}/log-batch", json=batch, headers=writer)
    assert refused.status_code == 403
    error = error_of(refused)
    assert error["code"] == "forbidden"
    assert "'churn-*'" in error["message"]
    assert "'fraud-b'" in error["message"]
    for path in ("", "/params", "/metrics", "/tags", "/artifacts", "/metrics/auc/history"):
        assert client.get(f"{API}/runs/{runs['churn-a']}{path}", headers=writer).status_code == 200
        answer = client.get(f"{API}/runs/{runs['fraud-b']}{path}", headers=writer)
        assert answer.status_code == 403, path
    upload = client.put(
        f"{API}/runs/{runs['fraud-b']}/artifacts/x.txt", content=b"x", headers=writer
    )
    assert upload.status_code == 403
    ended = client.patch(f"{API}/runs/{runs['fraud-b']}", json={"status": "FAILED"}, headers=writer)
    assert ended.status_code == 403
    assert client.get(f"{API}/runs/{runs['fraud-b']}").status_code == 401


def test_a_scoped_writer_creates_only_in_scope(scoped, client):
    _, writer, _ = scoped
    assert client.post(f"{API}/runs", json={"experiment": "churn-new"}, headers=writer).is_success
    refused = client.post(f"{API}/runs", json={"experiment": "fraud-new"}, headers=writer)
    assert refused.status_code == 403
    assert "'churn-*'" in error_of(refused)["message"]
    experiment = client.post(f"{API}/experiments", json={"name": "fraud-c"}, headers=writer)
    assert experiment.status_code == 403
    assert client.get(f"{API}/experiments/fraud-b", headers=writer).status_code == 403
    assert client.get(f"{API}/experiments/churn-a", headers=writer).status_code == 200


def test_lists_and_searches_are_filtered_to_the_scope(scoped, client):
    runs, writer, admin = scoped
    listed = client.get(f"{API}/experiments", headers=writer).json()["experiments"]
    assert [e["name"] for e in listed] == ["churn-a"]
    everything = client.get(f"{API}/experiments", headers=admin).json()["experiments"]
    assert {e["name"] for e in everything} >= {"churn-a", "fraud-b"}

    found = client.post(f"{API}/runs/search", json={}, headers=writer).json()
    assert [r["id"] for r in found["runs"]] == [runs["churn-a"]]
    named = client.post(f"{API}/runs/search", json={"experiments": ["churn-a"]}, headers=writer)
    assert [r["id"] for r in named.json()["runs"]] == [runs["churn-a"]]
    refused = client.post(
        f"{API}/runs/search", json={"experiments": ["churn-a", "fraud-b"]}, headers=writer
    )
    assert refused.status_code == 403
    assert "'fraud-b'" in error_of(refused)["message"]
    all_runs = client.post(f"{API}/runs/search", json={}, headers=admin).json()["runs"]
    assert {r["id"] for r in all_runs} == set(runs.values())


def test_a_scope_matching_no_experiment_searches_nothing(store, client):
    client.post(f"{API}/runs", json={"experiment": "fraud-b"})
    _, secret = create_token(store, "models-only", "reader", models=["churn-*"])
    time.sleep(0.5)
    found = client.post(f"{API}/runs/search", json={}, headers=_bearer(secret))
    assert found.json() == {"runs": [], "next_page_token": None}
    assert client.get(f"{API}/experiments", headers=_bearer(secret)).json() == {"experiments": []}


def test_models_out_of_scope_are_refused_and_unlisted(lw, store, client):
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(x, [0, 0, 1, 1])
    for name in ("churn-model", "fraud-model"):
        lw.log_model(model, name=name)
    _, secret = create_token(store, "ci", "reader", experiments=["*"], models=["churn-*"])
    time.sleep(0.5)
    reader = _bearer(secret)
    listed = client.get(f"{API}/models", headers=reader).json()["models"]
    assert [m["name"] for m in listed] == ["churn-model"]
    assert client.get(f"{API}/models/churn-model", headers=reader).status_code == 200
    assert client.get(f"{API}/models/churn-model/versions/1", headers=reader).status_code == 200
    for path in ("", "/versions", "/versions/1", "/aliases/champion", "/alias-history"):
        refused = client.get(f"{API}/models/fraud-model{path}", headers=reader)
        assert refused.status_code == 403, path
        assert "'churn-*'" in error_of(refused)["message"]
        assert "'fraud-model'" in error_of(refused)["message"]


def test_an_unscoped_token_and_former_role_names_reach_everything(scoped, store, client):
    runs, _, _ = scoped
    _, old_writer = create_token(store, "old-ci", "write")
    time.sleep(0.5)
    for run_id in runs.values():
        batch = {"params": {"k": 1}}
        answer = client.post(
            f"{API}/runs/{run_id}/log-batch", json=batch, headers=_bearer(old_writer)
        )
        assert answer.status_code == 200
