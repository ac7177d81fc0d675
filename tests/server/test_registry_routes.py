"""The registry over HTTP: models, versions, aliases and their history, lineage,
evaluations and promotion decisions, on both stores; hostile paths and queries are 4xx
JSON, never a 500.

The data is made with the Python API (the ``lw`` fixture) on the store the client serves.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from loopwise.auth.tokens import create_token

API = "/api/v1"
FEATURES = ["age", "income"]
EASY = {"thresholds": {"accuracy": 0.1}}
STRICT = {"thresholds": {"roc_auc": 0.9999}}


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.integers(18, 80, n), "income": rng.normal(50, 15, n)})
    frame["y"] = ((frame["age"] - 45) / 15 + rng.normal(0, 0.5, n) > 0).astype(int)
    return frame


def error_of(answer) -> dict:
    body = answer.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    return body["error"]


@pytest.fixture
def registry(lw):
    """``credit-risk`` v1 (trained in a run on ``loans``) and v2; champion moved 1 -> 2 by a
    passed promotion; a refused promotion of v1 to challenger."""
    frame = _frame()
    model = LogisticRegression().fit(frame[FEATURES], frame["y"])
    with lw.start_run(experiment="credit", name="train"):
        lw.log_params({"C": 1.0})
        lw.log_metric("auc", 0.9)
        lw.log_metric("overflow", float("inf"))
        lw.log_dataset(frame, name="loans")
        lw.log_model(model, name="credit-risk", input_example=frame[FEATURES][:3])
    lw.log_model(model, name="credit-risk", description="second", tags={"team": "risk"})
    lw.set_alias("credit-risk", "champion", 1, reason="first")
    lw.promote("models:/credit-risk/2", "champion", policy=EASY, data=frame, target="y")
    lw.promote("models:/credit-risk/1", "challenger", policy=STRICT, data=frame, target="y")


def test_models_list_get_and_update(registry, client):
    listed = client.get(f"{API}/models").json()
    assert listed["next_page_token"] is None
    (model,) = listed["models"]
    assert model["name"] == "credit-risk"
    assert model["versions"] == 2
    assert model["aliases"] == {"champion": 2}
    assert client.get(f"{API}/models/credit-risk").json() == model

    updated = client.patch(f"{API}/models/credit-risk", json={"description": "scores loans"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["description"] == "scores loans"
    assert client.get(f"{API}/models/credit-risk").json()["description"] == "scores loans"
    cleared = client.patch(f"{API}/models/credit-risk", json={"description": None})
    assert cleared.json()["description"] is None


def test_model_and_version_tags_merged_and_deleted(registry, client):
    client.patch(f"{API}/models/credit-risk", json={"description": "scores loans"})
    tagged = client.patch(f"{API}/models/credit-risk", json={"tags": {"team": "risk", "t": "1"}})
    assert tagged.status_code == 200, tagged.text
    # a tags-only change leaves the description; updated_at says when it changed
    assert tagged.json()["description"] == "scores loans"
    assert tagged.json()["tags"] == {"team": "risk", "t": "1"}
    assert tagged.json()["updated_at"] is not None
    trimmed = client.patch(f"{API}/models/credit-risk", json={"delete_tags": ["t"]}).json()
    assert trimmed["tags"] == {"team": "risk"}
    assert client.get(f"{API}/models").json()["models"][0]["tags"] == {"team": "risk"}
    version = client.patch(
        f"{API}/models/credit-risk/versions/2", json={"delete_tags": ["team"], "tags": {"x": "1"}}
    ).json()
    assert version["tags"] == {"x": "1"}
    for bad in (
        {"tags": {"k": 3}},
        {"tags": {"": "x"}},
        {"delete_tags": "t"},
        {"tags": {"k": "x" * 10_001}},
        {"colour": "red"},
    ):
        for route in ("models/credit-risk", "models/credit-risk/versions/2"):
            answer = client.patch(f"{API}/{route}", json=bad)
            assert answer.status_code in (400, 422), (bad, answer.text)
            assert answer.json()["error"]["message"]
    assert client.get(f"{API}/models/credit-risk").json()["tags"] == {"team": "risk"}


def test_versions_paged_one_by_number_and_by_alias(registry, client):
    first = client.get(f"{API}/models/credit-risk/versions", params={"max_results": 1}).json()
    assert [v["version"] for v in first["versions"]] == [1]
    token = first["next_page_token"]
    assert token
    second = client.get(
        f"{API}/models/credit-risk/versions", params={"max_results": 1, "page_token": token}
    ).json()
    assert [v["version"] for v in second["versions"]] == [2]
    assert second["next_page_token"] is None

    v2 = client.get(f"{API}/models/credit-risk/versions/2").json()
    assert v2["uri"] == "models:/credit-risk/2"
    assert v2["description"] == "second"
    assert v2["tags"] == {"team": "risk"}
    assert v2["aliases"] == ["champion"]
    assert client.get(f"{API}/models/credit-risk/aliases/champion").json() == v2
    assert client.get(f"{API}/models/credit-risk/aliases/latest").json()["version"] == 2
    assert client.get(f"{API}/models/credit-risk/versions/1").json()["signature"] is not None


def test_update_a_version(registry, client):
    answer = client.patch(
        f"{API}/models/credit-risk/versions/1",
        json={"description": "baseline", "tags": {"stage": "old"}},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["description"] == "baseline"
    assert answer.json()["tags"] == {"stage": "old"}
    merged = client.patch(f"{API}/models/credit-risk/versions/1", json={"tags": {"b": "2"}}).json()
    assert merged["tags"] == {"stage": "old", "b": "2"}
    assert merged["description"] == "baseline"


def test_alias_set_delete_history_version_at_and_rollback(registry, client):
    before_any = datetime(2000, 1, 1, tzinfo=UTC).isoformat()
    moved = client.put(
        f"{API}/models/credit-risk/aliases/staging", json={"version": 1, "reason": "try"}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["to_version"] == 1
    assert moved.json()["reason"] == "try"
    time.sleep(0.01)
    client.put(f"{API}/models/credit-risk/aliases/staging", json={"version": 2})
    assert client.get(f"{API}/models/credit-risk/aliases/staging").json()["version"] == 2

    back = client.post(f"{API}/models/credit-risk/aliases/staging/rollback", json={"reason": "bad"})
    assert back.status_code == 200, back.text
    assert (back.json()["kind"], back.json()["from_version"], back.json()["to_version"]) == (
        "rollback",
        2,
        1,
    )
    no_earlier = client.post(f"{API}/models/credit-risk/aliases/staging/rollback")
    assert no_earlier.status_code == 409
    assert error_of(no_earlier)["code"] == "conflict"

    history = client.get(
        f"{API}/models/credit-risk/alias-history", params={"alias": "staging"}
    ).json()
    assert [m["kind"] for m in history["moves"]] == ["set", "set", "rollback"]
    assert [m["to_version"] for m in history["moves"]] == [1, 2, 1]
    everything = client.get(f"{API}/models/credit-risk/alias-history").json()["moves"]
    assert {m["alias"] for m in everything} == {"champion", "staging"}
    paged, token = [], None
    while True:
        params = {"max_results": 2, **({"page_token": token} if token else {})}
        answer = client.get(f"{API}/models/credit-risk/alias-history", params=params).json()
        paged += answer["moves"]
        token = answer["next_page_token"]
        if token is None:
            break
    assert paged == everything

    now = datetime.now(UTC).isoformat()
    at = client.get(
        f"{API}/models/credit-risk/version-at", params={"alias": "champion", "at": now}
    ).json()
    assert at["version"] == 2
    none = client.get(
        f"{API}/models/credit-risk/version-at", params={"alias": "champion", "at": before_any}
    ).json()
    assert none["version"] is None
    future = client.get(
        f"{API}/models/credit-risk/version-at",
        params={"alias": "champion", "at": "9999-12-31T23:59:59+00:00"},
    )
    assert future.status_code == 200
    assert future.json()["version"] == 2

    # a + left unencoded in a URL arrives as a space; it is read as the zone it was
    spaced = client.get(
        f"{API}/models/credit-risk/version-at?alias=champion&at=9999-01-01T00:00:00+02:00"
    )
    assert spaced.status_code == 200, spaced.text
    assert spaced.json()["at"] == "9999-01-01T00:00:00+02:00"

    deleted = client.delete(f"{API}/models/credit-risk/aliases/staging", params={"reason": "done"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["kind"] == "delete"
    gone = client.get(f"{API}/models/credit-risk/aliases/staging")
    assert gone.status_code == 404
    assert "staging" in error_of(gone)["message"]
    again = client.delete(f"{API}/models/credit-risk/aliases/staging")
    assert again.status_code == 404


def test_lineage_evaluations_and_promotions(registry, client):
    lineage = client.get(f"{API}/models/credit-risk/versions/1/lineage")
    assert lineage.status_code == 200, lineage.text
    body = lineage.json()
    assert body["model_version"]["uri"] == "models:/credit-risk/1"
    assert body["run"]["name"] == "train"
    assert body["run"]["params"] == {"C": "1.0"}
    assert body["run"]["metrics"]["auc"] == 0.9
    assert body["run"]["metrics"]["overflow"] == "Infinity"  # as the run routes spell it
    assert [d["uri"] for d in body["datasets"]] == ["datasets:/loans/1"]
    assert body["evaluations"]  # the refused promotion scored it

    evaluations = client.get(f"{API}/models/credit-risk/versions/2/evaluations").json()
    (evaluation,) = evaluations["evaluations"]
    assert evaluation["count"] == 1
    assert "accuracy" in evaluation["metrics"]

    decisions = client.get(f"{API}/models/credit-risk/promotions").json()["decisions"]
    assert [(d["alias"], d["candidate_version"], d["passed"]) for d in decisions] == [
        ("champion", 2, True),
        ("challenger", 1, False),
    ]
    refused = decisions[1]
    assert refused["checks"]
    assert refused["failed_checks"][0]["name"] == "threshold:roc_auc"
    assert refused["reasons"]
    only = client.get(f"{API}/models/credit-risk/promotions", params={"alias": "challenger"})
    assert [d["candidate_version"] for d in only.json()["decisions"]] == [1]
    by_version = client.get(f"{API}/models/credit-risk/promotions", params={"version": 2})
    assert [d["alias"] for d in by_version.json()["decisions"]] == ["champion"]
    first = client.get(f"{API}/models/credit-risk/promotions", params={"max_results": 1}).json()
    rest = client.get(
        f"{API}/models/credit-risk/promotions",
        params={"max_results": 1, "page_token": first["next_page_token"]},
    ).json()
    assert first["decisions"] + rest["decisions"] == decisions
    assert rest["next_page_token"] is None


def test_openapi_lists_the_registry(client):
    paths = client.get(f"{API}/openapi.json").json()["paths"]
    for path in (
        "/api/v1/models",
        "/api/v1/models/{name}/versions/{version}",
        "/api/v1/models/{name}/aliases/{alias}",
        "/api/v1/models/{name}/version-at",
        "/api/v1/models/{name}/promotions",
    ):
        assert path in paths


HOSTILE_READS = [
    ("/models/nope", 404),
    ("/models/nope/versions", 404),
    ("/models/nope/versions/1", 404),
    ("/models/nope/aliases/champion", 404),
    ("/models/nope/alias-history", 404),
    ("/models/nope/promotions", 404),
    ("/models/nope/version-at?alias=champion&at=2026-01-01T00:00Z", 404),
    ("/models/credit-risk/versions/3", 404),
    (f"/models/{'a' * 5000}/versions", 404),
    ("/models/credit-risk/versions/2147483647", 404),
    ("/models/credit-risk/versions/0", 400),
    ("/models/credit-risk/versions/-1", 400),
    ("/models/credit-risk/versions/1.5", 400),
    ("/models/credit-risk/versions/abc", 400),
    (f"/models/credit-risk/versions/{10**30}", 400),
    ("/models/credit-risk/versions/2147483648", 400),
    (f"/models/credit-risk/versions/{10**30}/lineage", 400),
    ("/models/credit-risk/versions/0/evaluations", 400),
    ("/models/credit-risk/versions/9/evaluations", 404),
    ("/models/credit-risk/versions/9/lineage", 404),
    ("/models/bad%20name", 400),
    ("/models/a%40b/versions", 400),
    ("/models/a%00b/versions", 400),
    ("/models/%2E%2E/versions", 400),
    ("/models/credit-risk/aliases/no-such", 404),
    ("/models/credit-risk/aliases/bad%20alias", 400),
    ("/models/credit-risk/aliases/a%00b", 400),
    ("/models/credit-risk/alias-history?alias=Bad!", 400),
    ("/models/credit-risk/alias-history?alias=a%00", 400),
    ("/models/credit-risk/version-at?alias=champion&at=2026-01-01T00:00", 400),
    ("/models/credit-risk/version-at?alias=champion&at=2026-01-01", 400),
    ("/models/credit-risk/version-at?alias=champion&at=yesterday", 400),
    ("/models/credit-risk/version-at?alias=champion&at=%00", 400),
    ("/models/credit-risk/version-at?alias=champion&at=0001-01-01T00:00%2B14:00", 400),
    (f"/models/credit-risk/version-at?alias=champion&at={'9' * 100}", 400),
    ("/models/credit-risk/version-at?alias=champion", 400),
    ("/models/credit-risk/version-at?alias=B%20A%20D&at=2026-01-01T00:00Z", 400),
    ("/models/credit-risk/promotions?version=0", 400),
    (f"/models/credit-risk/promotions?version={10**30}", 400),
    ("/models/credit-risk/promotions?alias=UP", 400),
    ("/models?max_results=0", 400),
    ("/models?max_results=1001", 400),
    (f"/models?max_results={10**30}", 400),
    ("/models?page_token=garbage", 400),
    ("/models?page_token=%00", 400),
    ("/models/credit-risk/versions?page_token=WyJtb2RlbHMiLCJ4Il0", 400),  # a models token
    ("/models/credit-risk/alias-history?page_token=WyJ4Il0", 400),
]


def test_hostile_reads_are_4xx_json(registry, client):
    for path, status in HOSTILE_READS:
        answer = client.get(f"{API}{path}")
        assert answer.status_code == status, (path, answer.text)
        error = error_of(answer)
        expected = {"not_found"} if status == 404 else {"invalid_input", "invalid_reference"}
        assert error["code"] in expected, (path, error)
        assert error["message"], path


def test_messages_say_what_is_wrong(registry, client):
    unknown = error_of(client.get(f"{API}/models/nope/versions"))["message"]
    assert "nope" in unknown
    no_zone = error_of(
        client.get(
            f"{API}/models/credit-risk/version-at",
            params={"alias": "champion", "at": "2026-01-01T00:00"},
        )
    )["message"]
    assert "no time zone" in no_zone
    assert "2026-01-01T00:00Z" in no_zone
    bad_alias = error_of(client.put(f"{API}/models/credit-risk/aliases/Bad!", json={"version": 1}))
    assert "lower-case" in bad_alias["message"]
    token = error_of(client.get(f"{API}/models", params={"page_token": "garbage"}))["message"]
    assert "next_page_token" in token


HOSTILE_WRITES = [
    ("put", "/models/credit-risk/aliases/champion", {"version": 0}, 400),
    ("put", "/models/credit-risk/aliases/champion", {"version": -1}, 400),
    ("put", "/models/credit-risk/aliases/champion", {"version": 2**40}, 400),
    ("put", "/models/credit-risk/aliases/champion", {"version": 10**30}, 400),
    ("put", "/models/credit-risk/aliases/champion", {"version": "2"}, 400),
    ("put", "/models/credit-risk/aliases/champion", {"version": 1.5}, 400),
    ("put", "/models/credit-risk/aliases/champion", {"version": 7}, 404),
    ("put", "/models/credit-risk/aliases/champion", {"version": 1, "extra": 1}, 400),
    ("put", "/models/credit-risk/aliases/champion", {"version": 1, "reason": "a\u0000"}, 400),
    ("put", "/models/credit-risk/aliases/latest", {"version": 1}, 400),
    ("put", "/models/credit-risk/aliases/Bad!", {"version": 1}, 400),
    ("put", "/models/nope/aliases/champion", {"version": 1}, 404),
    ("put", "/models/credit-risk/aliases/champion", None, 400),
    ("delete", "/models/credit-risk/aliases/never-set", None, 404),
    ("delete", "/models/credit-risk/aliases/UPPER", None, 400),
    ("delete", "/models/nope/aliases/champion", None, 404),
    ("post", "/models/credit-risk/aliases/never-set/rollback", None, 409),
    ("post", "/models/nope/aliases/champion/rollback", None, 404),
    ("post", "/models/credit-risk/aliases/champion/rollback", {"why": "x"}, 400),
    ("patch", "/models/nope", {"description": "x"}, 404),
    ("patch", "/models/credit-risk", {"description": 3}, 400),
    ("patch", "/models/credit-risk", {"description": "a\u0000b"}, 400),
    ("patch", "/models/credit-risk", {"tags": {"k": 1}}, 400),
    ("patch", "/models/credit-risk", {"delete_tags": [None]}, 400),
    ("patch", "/models/credit-risk/versions/9", {"description": "x"}, 404),
    ("patch", "/models/credit-risk/versions/0", {"description": "x"}, 400),
    ("patch", "/models/credit-risk/versions/1", {"tags": {"k": 1}}, 400),
    ("patch", "/models/credit-risk/versions/1", {"tags": {"k": "v\u0000"}}, 400),
    ("patch", "/models/credit-risk/versions/1", {"tags": ["k"]}, 400),
]


def test_hostile_writes_are_4xx_json(registry, client):
    for method, path, body, status in HOSTILE_WRITES:
        answer = client.request(method, f"{API}{path}", json=body)
        assert answer.status_code == status, (method, path, body, answer.text)
        assert error_of(answer)["message"], path
    # nothing moved: champion is still on 2, with the history of the fixture only
    assert client.get(f"{API}/models/credit-risk/aliases/champion").json()["version"] == 2
    moves = client.get(f"{API}/models/credit-risk/alias-history").json()["moves"]
    assert [(m["alias"], m["to_version"]) for m in moves] == [("champion", 1), ("champion", 2)]


def test_writes_need_the_write_role(registry, store, client):
    _, reader = create_token(store, "viewer", "read")
    _, writer = create_token(store, "ci", "write")
    time.sleep(0.5)  # the authenticator refreshes every 0.2 s
    as_reader = {"authorization": f"Bearer {reader}"}
    assert client.get(f"{API}/models", headers=as_reader).status_code == 200
    assert client.get(f"{API}/models").status_code == 401
    for method, path, body in [
        ("put", "/models/credit-risk/aliases/staging", {"version": 1}),
        ("delete", "/models/credit-risk/aliases/champion", None),
        ("post", "/models/credit-risk/aliases/champion/rollback", None),
        ("patch", "/models/credit-risk", {"description": "x"}),
        ("patch", "/models/credit-risk/versions/1", {"description": "x"}),
    ]:
        refused = client.request(method, f"{API}{path}", json=body, headers=as_reader)
        assert refused.status_code == 403, (method, path, refused.text)
        assert error_of(refused)["code"] == "forbidden"
    as_writer = {"authorization": f"Bearer {writer}"}
    moved = client.put(
        f"{API}/models/credit-risk/aliases/staging", json={"version": 1}, headers=as_writer
    )
    assert moved.status_code == 200, moved.text


def test_an_empty_registry(client):
    assert client.get(f"{API}/models").json() == {"models": [], "next_page_token": None}
    # a well-formed token of this listing on an empty list is an empty page, not an error
    token = "WyJtb2RlbHMiLCJ4Il0"  # ["models","x"]
    answer = client.get(f"{API}/models", params={"page_token": token})
    assert answer.json() == {"models": [], "next_page_token": None}
    at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    missing = client.get(f"{API}/models/x/version-at", params={"alias": "champion", "at": at})
    assert missing.status_code == 404
