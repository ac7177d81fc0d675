"""MLflow's routes as a hostile client uses them, in-process on SQLite and PostgreSQL: every
mistake is a 4xx in MLflow's error shape (``error_code``, ``message``) -- the MLflow client
retries a 5xx for minutes -- and nothing wrong is stored."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient

from loopwise.server.app import create_server_app
from loopwise.tracking import runs as run_service

API = "/api/2.0/mlflow"


@pytest.fixture
def client(store):
    with TestClient(create_server_app(store), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def run_id(client) -> str:
    answer = client.post(f"{API}/runs/create", json={"experiment_id": "0", "run_name": "r"})
    assert answer.status_code == 200, answer.text
    return answer.json()["run"]["info"]["run_id"]


def refused(answer, status: int, code: str = "INVALID_PARAMETER_VALUE") -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error_code"] == code, body
    assert body["message"]
    return body["message"]


def batch(client, run_id: str, **fields):
    return client.post(f"{API}/runs/log-batch", json={"run_id": run_id, **fields})


def test_numbers_past_their_range_and_non_finite_spellings(client, run_id, store):
    point = {"key": "m", "timestamp": 1, "step": 0}
    ok = batch(client, run_id, metrics=[{**point, "value": v} for v in ("NaN", "Infinity")])
    assert ok.status_code == 200, ok.text
    raw = f'{{"run_id": "{run_id}", "metrics": [{{"key": "m", "value": 1e400, "timestamp": 1}}]}}'
    message = refused(
        client.post(
            f"{API}/runs/log-batch",
            content=raw,
            headers={"content-type": "application/json"},
        ),
        400,
    )
    assert "too large" in message
    for bad in (
        {**point, "value": "1e400"},  # spelled out past a double's range
        {**point, "value": 10**400},
        {**point, "value": 1, "timestamp": 10**30},
        {**point, "value": 1, "step": 2**70},
        {**point, "value": 1, "timestamp": -5},
        {**point, "value": "lots"},
        {**point, "value": True},
        {**point, "value": {"a": 1}},
        {"key": "m", "value": 1},  # no timestamp
    ):
        refused(batch(client, run_id, metrics=[bad]), 400)
    run = run_service.get_run(store, run_id)
    assert list(run.metrics) == ["m"]  # only the two good points were stored
    assert run.metrics["m"] == math.inf  # the later of the tied points, read back as sent
    history = run_service.metric_history(store, run_id, "m")["value"].tolist()
    assert math.isnan(history[0])
    assert history[1] == math.inf


def test_bodies_of_the_wrong_shape_kind_or_size(client, run_id):
    deep = f'{{"run_id": "{run_id}", "x": ' + '{"a": ' * 1000 + "1" + "}" * 1001
    refused(client.post(f"{API}/runs/log-batch", content=deep, headers=_json()), 400)
    refused(client.post(f"{API}/runs/log-batch", content=b"[1, 2]", headers=_json()), 400)
    refused(client.post(f"{API}/runs/log-batch", content=b"{nope", headers=_json()), 400)
    form = client.post(
        f"{API}/runs/create",
        content=b'{"experiment_id": "0"}',
        headers={"content-type": "text/plain"},
    )
    refused(form, 415)
    refused(batch(client, run_id, metrics="m"), 400)
    refused(batch(client, run_id, params=[{"key": 3, "value": "x"}]), 400)
    refused(batch(client, run_id, params=[{"key": "p", "value": "x" * 6001}]), 400)
    refused(batch(client, run_id, params=[{"key": "p\x00", "value": "x"}]), 400)
    many = [{"key": f"m{i}", "value": 1, "timestamp": 1} for i in range(1001)]
    refused(batch(client, run_id, metrics=many), 400)
    huge = b'{"run_id": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    refused(client.post(f"{API}/runs/log-batch", content=huge, headers=_json()), 400)


def _json() -> dict[str, str]:
    return {"content-type": "application/json"}


def test_ids_that_do_not_exist_and_params_that_change(client, run_id):
    refused(
        client.get(f"{API}/runs/get", params={"run_id": "z" * 26}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    refused(client.get(f"{API}/runs/get"), 400)
    refused(
        client.get(f"{API}/experiments/get", params={"experiment_id": "9" * 40}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    refused(
        batch(client, "z" * 26, params=[{"key": "a", "value": "1"}]), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert batch(client, run_id, params=[{"key": "a", "value": "1"}]).status_code == 200
    assert batch(client, run_id, params=[{"key": "a", "value": "1"}]).status_code == 200
    refused(batch(client, run_id, params=[{"key": "a", "value": "2"}]), 400)
    refused(
        client.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "filter": "metrics.a >>"}),
        400,
    )
    refused(client.post(f"{API}/runs/search", json={"experiment_ids": []}), 400)
    refused(
        client.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "page_token": "garbage"}),
        400,
    )
    refused(
        client.post(f"{API}/runs/update", json={"run_id": run_id, "status": "EXPLODED"}),
        400,
    )


def test_what_loopwise_does_not_do_is_501_or_404_never_a_silent_200(client, run_id):
    refused(
        client.post(f"{API}/experiments/search", json={"filter": "name = 'x'"}),
        501,
        "NOT_IMPLEMENTED",
    )
    refused(
        client.post(f"{API}/experiments/create", json={"name": "x", "artifact_location": "s3://b"}),
        501,
        "NOT_IMPLEMENTED",
    )
    refused(
        client.post(
            f"{API}/runs/search", json={"experiment_ids": ["0"], "filter": "datasets.name = 'a'"}
        ),
        501,
        "NOT_IMPLEMENTED",
    )
    refused(client.get(f"{API}/no/such/endpoint"), 404, "ENDPOINT_NOT_FOUND")
    refused(
        client.post("/ajax-api/2.0/mlflow/experiments/search", json={"filter": "name = 'x'"}),
        501,
        "NOT_IMPLEMENTED",
    )


def test_artifact_paths_stay_inside_their_run(client, run_id):
    root = f"/api/2.0/mlflow-artifacts/artifacts/0/{run_id}/artifacts"
    assert client.put(f"{root}/a/b.txt", content=b"data").status_code == 200
    assert client.get(f"{root}/a/b.txt").content == b"data"
    # (encoded dots: an HTTP client removes plain ones before sending)
    refused(client.put(f"{root}/a/%2E%2E/%2E%2E/x", content=b"evil"), 400)
    refused(
        client.put(f"/api/2.0/mlflow-artifacts/artifacts/0/{run_id}/other/x", content=b"x"),
        501,
        "NOT_IMPLEMENTED",
    )
    other = "01" + "z" * 24
    refused(
        client.put(f"/api/2.0/mlflow-artifacts/artifacts/0/{other}/artifacts/x", content=b"x"),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    refused(
        client.put(f"/api/2.0/mlflow-artifacts/artifacts/123/{run_id}/artifacts/x", content=b"x"),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    refused(client.get(f"{root}/missing.txt"), 404, "RESOURCE_DOES_NOT_EXIST")
    refused(client.get("/api/2.0/mlflow-artifacts/artifacts"), 501, "NOT_IMPLEMENTED")
    listed = client.get(
        "/api/2.0/mlflow-artifacts/artifacts", params={"path": f"0/{run_id}/artifacts"}
    )
    assert listed.json() == {"files": [{"path": "a", "is_dir": True}]}


def test_tokens_guard_the_mlflow_routes(store):
    from loopwise.auth.tokens import create_token

    _, writer = create_token(store, "ci", role="writer")
    _, reader = create_token(store, "viewer", role="reader")
    with TestClient(
        create_server_app(store, token_refresh_s=0.01), raise_server_exceptions=False
    ) as client:
        refused(
            client.get(f"{API}/experiments/get", params={"experiment_id": "0"}),
            401,
            "UNAUTHENTICATED",
        )
        refused(
            client.get(
                f"{API}/experiments/get",
                params={"experiment_id": "0"},
                headers={"authorization": "Bearer lw_wrong"},
            ),
            401,
            "UNAUTHENTICATED",
        )
        as_reader = {"authorization": f"Bearer {reader}"}
        assert (
            client.get(
                f"{API}/experiments/get", params={"experiment_id": "0"}, headers=as_reader
            ).status_code
            == 200
        )
        refused(
            client.post(f"{API}/runs/create", json={"experiment_id": "0"}, headers=as_reader),
            403,
            "PERMISSION_DENIED",
        )
        as_writer = {"authorization": f"Bearer {writer}"}
        made = client.post(f"{API}/runs/create", json={"experiment_id": "0"}, headers=as_writer)
        assert made.status_code == 200, made.text


def test_mlflow_writes_are_audited_and_its_searches_are_not(client, run_id, store):
    from loopwise.auth.audit import list_audit_events

    assert batch(client, run_id, params=[{"key": "a", "value": "1"}]).status_code == 200
    refused(batch(client, run_id, params=[{"key": "a", "value": "2"}]), 400)
    client.post(f"{API}/runs/search", json={"experiment_ids": ["0"]})
    events = [(e.method, e.path, e.status) for e in list_audit_events(store).events]
    assert ("POST", f"{API}/runs/create", 200) in events
    assert ("POST", f"{API}/runs/log-batch", 200) in events
    assert ("POST", f"{API}/runs/log-batch", 400) in events
    assert not [e for e in events if e[1].endswith("/runs/search")]


def test_model_calls_with_bad_sources_and_documents(client, run_id):
    refused(client.post(f"{API}/runs/log-model", json={"run_id": run_id, "model_json": "{"}), 400)
    refused(client.post(f"{API}/runs/log-model", json={"run_id": run_id, "model_json": "[1]"}), 400)
    create = f"{API}/model-versions/create"
    refused(
        client.post(create, json={"name": "nope", "source": "runs:/x/model"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert client.post(f"{API}/registered-models/create", json={"name": "m"}).status_code == 200
    refused(
        client.post(create, json={"name": "m", "source": "s3://bucket/model"}),
        501,
        "NOT_IMPLEMENTED",
    )
    refused(client.post(create, json={"name": "m", "source": f"runs:/{run_id}/a/../b"}), 400)
    refused(client.post(create, json={"name": "m", "source": f"runs:/{run_id}"}), 400)
    # a folder without an MLmodel file is not an MLflow model
    root = f"/api/2.0/mlflow-artifacts/artifacts/0/{run_id}/artifacts"
    assert client.put(f"{root}/model/model.pkl", content=b"not a model").status_code == 200
    message = refused(
        client.post(create, json={"name": "m", "source": f"runs:/{run_id}/model"}), 400
    )
    assert "MLmodel" in message
    refused(
        client.post(create, json={"name": "m", "source": "models:/m-000000000000000000000000"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    refused(client.get(f"{API}/model-versions/get", params={"name": "m", "version": "0"}), 400)
    refused(client.get(f"{API}/model-versions/get", params={"name": "m", "version": "x"}), 400)
    refused(
        client.post(
            f"{API}/registered-models/alias",
            json={"name": "m", "alias": "bad alias!", "version": "1"},
        ),
        400,
    )


def test_an_artifact_past_the_upload_limit_is_refused_and_not_kept(client, run_id, store):
    from loopwise.tracking.run_artifacts import list_artifacts

    client.app.state.max_upload_bytes = 10
    root = f"/api/2.0/mlflow-artifacts/artifacts/0/{run_id}/artifacts"
    refused(client.put(f"{root}/big.bin", content=b"x" * 100), 413)
    chunks = (b"x" * 8 for _ in range(4))  # no Content-Length: cut off while streaming
    refused(client.put(f"{root}/streamed.bin", content=chunks), 413)
    assert client.put(f"{root}/small.bin", content=b"x" * 10).status_code == 200
    assert [a.path for a in list_artifacts(store, run_id)] == ["small.bin"]


def test_deleting_renaming_and_tagging_with_hostile_inputs(client, run_id):
    far_future = "7zzzzzzzzzzzzzzzzzzzzzzzzz"  # a well-formed id of the year 10889
    for path in ("runs/delete", "runs/restore"):
        for bad in ("z" * 26, far_future, "x" * 300):
            answer = client.post(f"{API}/{path}", json={"run_id": bad})
            assert answer.status_code in (400, 404), answer.text
            assert answer.json()["error_code"] in (
                "RESOURCE_DOES_NOT_EXIST",
                "INVALID_PARAMETER_VALUE",
            )
        refused(client.post(f"{API}/{path}", json={}), 400)
    refused(
        client.post(f"{API}/runs/update", json={"run_id": run_id, "run_name": "x" * 10_000}), 400
    )
    refused(
        client.post(f"{API}/runs/update", json={"run_id": run_id, "run_name": "x" * 10_001}), 400
    )
    refused(client.post(f"{API}/runs/update", json={"run_id": run_id, "run_name": 5}), 400)
    refused(
        client.post(
            f"{API}/runs/set-tag", json={"run_id": run_id, "key": "mlflow.runName", "value": " "}
        ),
        400,
    )
    assert client.post(f"{API}/runs/delete", json={"run_id": run_id}).status_code == 200
    message = refused(batch(client, run_id, params=[{"key": "a", "value": "1"}]), 400)
    assert "must be in the 'active' state" in message
    refused(client.post(f"{API}/runs/update", json={"run_id": run_id, "status": "FINISHED"}), 400)
    search = f"{API}/runs/search"
    for view in ("SOMETIMES", 7, "NaN", True):
        refused(client.post(search, json={"experiment_ids": ["0"], "run_view_type": view}), 400)
    found = client.post(search, json={"experiment_ids": ["0"], "run_view_type": "DELETED_ONLY"})
    assert [r["info"]["run_id"] for r in found.json()["runs"]] == [run_id]
    assert found.json()["runs"][0]["info"]["lifecycle_stage"] == "deleted"
    refused(
        client.post(
            search,
            json={
                "experiment_ids": ["0"],
                "filter": "lifecycle_stage = 'deleted' or metrics.a > 1",
            },
        ),
        501,
        "NOT_IMPLEMENTED",
    )
    none = client.post(
        search, json={"experiment_ids": ["0"], "filter": "attributes.lifecycle_stage = 'deleted'"}
    )
    assert none.json() == {"runs": []}  # ACTIVE_ONLY and deleted: nothing, as in MLflow

    experiment = client.post(f"{API}/experiments/create", json={"name": "hostile"}).json()
    eid = experiment["experiment_id"]
    for path in ("experiments/delete", "experiments/restore", "experiments/update"):
        for bad in ("9" * 40, far_future):
            refused(
                client.post(f"{API}/{path}", json={"experiment_id": bad, "new_name": "n"}),
                404,
                "RESOURCE_DOES_NOT_EXIST",
            )
    refused(
        client.post(
            f"{API}/experiments/update", json={"experiment_id": eid, "new_name": "x" * 251}
        ),
        400,
    )
    refused(
        client.post(
            f"{API}/experiments/create", json={"name": "t", "tags": [{"key": "k", "value": 1.5}]}
        ),
        400,
    )
    refused(
        client.post(
            f"{API}/experiments/set-experiment-tag",
            json={"experiment_id": eid, "key": "k", "value": "v" * 8001},
        ),
        400,
    )
    refused(
        client.post(
            f"{API}/experiments/set-experiment-tag",
            json={"experiment_id": eid, "key": "x" * 10_000, "value": "v"},
        ),
        400,
    )
    refused(client.post(f"{API}/experiments/delete", json={"experiment_id": "0"}), 400)
    refused(
        client.post(f"{API}/experiments/search", json={"view_type": "NaN"}),
        400,
    )


def test_registry_searches_with_hostile_filters(client):
    assert client.post(f"{API}/registered-models/create", json={"name": "m"}).status_code == 200
    models = f"{API}/registered-models/search"
    versions = f"{API}/model-versions/search"
    assert client.get(models, params={"filter": "name = 'nope'"}).json() == {
        "registered_models": []
    }
    for bad in (
        "tags.a > 'b'",
        "tags.a IN ('b')",
        "name > 'a'",
        "name = 'a' OR name = 'b'",
        "x" * 10_000,
    ):
        refused(client.get(models, params={"filter": bad}), 501, "NOT_IMPLEMENTED")
    # a tag filter: a model without the tag passes no test of it, != either (as in MLflow)
    assert client.get(models, params={"filter": "tags.a != 'b'"}).json() == {
        "registered_models": []
    }
    for bad in ("version_number = 1", "run_id LIKE 'a%'", "name = "):
        refused(client.get(versions, params={"filter": bad}), 501, "NOT_IMPLEMENTED")
    for bad in ("NaN", "0", "-1", "1e400", str(2**70)):
        refused(client.get(models, params={"max_results": bad}), 400)
    refused(client.get(models, params={"page_token": "garbage"}), 400)
    refused(client.get(models, params={"order_by": "owner ASC"}), 501, "NOT_IMPLEMENTED")
    refused(client.get(models, params={"order_by": "name SIDEWAYS"}), 400)
    assert client.get(versions, params={"filter": "name = 'm'"}).json() == {"model_versions": []}
    assert client.get(
        versions, params={"filter": "run_id = '7zzzzzzzzzzzzzzzzzzzzzzzzz'"}
    ).json() == {"model_versions": []}


def test_registry_tags_and_updates_with_hostile_inputs(client, store):
    from loopwise.registry import models as model_service

    create = client.post(
        f"{API}/registered-models/create", json={"name": "m", "tags": [{"key": "a", "value": "1"}]}
    )
    assert create.status_code == 200, create.text
    for body in (
        {"name": "m", "key": "k", "value": 3},
        {"name": "m", "key": "", "value": "v"},
        {"name": "m", "key": "k" * 251, "value": "v"},
        {"name": "m", "key": "k", "value": "v" * 10_001},
        {"name": "m", "key": "k\u0000", "value": "v"},
        {"name": "m", "value": "v"},
        {"key": "k", "value": "v"},
    ):
        refused(client.post(f"{API}/registered-models/set-tag", json=body), 400)
    refused(
        client.post(f"{API}/registered-models/set-tag", json={"name": "x", "key": "k"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    refused(
        client.request(
            "DELETE", f"{API}/registered-models/delete-tag", json={"name": "m", "key": "z"}
        ),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    refused(
        client.patch(f"{API}/registered-models/update", json={"name": "m", "description": 3}), 400
    )
    for tags in ([{"key": "k", "value": 3}], [{"value": "v"}], "k=v", [{"key": "", "value": ""}]):
        refused(
            client.post(f"{API}/registered-models/create", json={"name": "n", "tags": tags}), 400
        )
    assert model_service.get_model(store, "n") is None  # a refused create leaves nothing
    many = [{"key": f"k{i}", "value": "v"} for i in range(1001)]
    refused(client.post(f"{API}/registered-models/create", json={"name": "n", "tags": many}), 400)
    latest = f"{API}/registered-models/get-latest-versions"
    assert client.post(latest, json={"name": "m"}).json() == {"model_versions": []}
    refused(client.post(latest, json={"name": "m", "stages": {"a": 1}}), 400)
    refused(client.post(latest, json={"name": "x"}), 404, "RESOURCE_DOES_NOT_EXIST")
    for route, body in (
        ("model-versions/set-tag", {"name": "m", "version": "1", "key": "k", "value": "v"}),
        ("model-versions/update", {"name": "m", "version": "1", "description": "d"}),
        ("model-versions/set-tag", {"name": "m", "version": str(2**70), "key": "k"}),
        ("model-versions/set-tag", {"name": "m", "version": "NaN", "key": "k"}),
    ):
        method = "PATCH" if route.endswith("update") else "POST"
        answer = client.request(method, f"{API}/{route}", json=body)
        assert answer.status_code in (400, 404), answer.text
        assert answer.json()["error_code"]
    # what loopwise does not do says so, with the reason, after checking the token's scope
    for method, route in (
        ("DELETE", "registered-models/delete"),
        ("DELETE", "model-versions/delete"),
        ("POST", "registered-models/rename"),
        ("POST", "model-versions/transition-stage"),
    ):
        message = refused(
            client.request(method, f"{API}/{route}", json={"name": "m", "version": "1"}),
            501,
            "NOT_IMPLEMENTED",
        )
        assert "docs/mlflow.md" in message
    assert model_service.get_model(store, "m").tags == {"a": "1"}
    # experiment and logged-model tag deletes name what is missing
    refused(
        client.post(
            f"{API}/experiments/delete-experiment-tag", json={"experiment_id": "0", "key": "k"}
        ),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    refused(
        client.post(
            f"{API}/experiments/delete-experiment-tag",
            json={"experiment_id": "7zzzzzzzzzzzzzzzzzzzzzzzzz", "key": "k"},
        ),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    refused(client.delete(f"{API}/logged-models/m-nope/tags/k"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_run_inputs_with_hostile_fields(client, run_id):
    route = f"{API}/runs/log-inputs"
    good = {"name": "loans", "digest": "abc123", "source_type": "s3", "source": "{}"}
    for dataset in (
        {**good, "name": ""},
        {**good, "digest": "x" * 37},
        {**good, "source": 5},
        {**good, "name": "a\u0000b"},
        {k: v for k, v in good.items() if k != "digest"},
        {**good, "schema": "s" * 1_048_577},
    ):
        refused(
            client.post(route, json={"run_id": run_id, "datasets": [{"dataset": dataset}]}), 400
        )
    for entry in (
        {"dataset": "loans"},
        {"dataset": good, "tags": [{"key": "k", "value": "v" * 501}]},
        {"dataset": good, "tags": [{"key": "", "value": "v"}]},
        {"dataset": good, "tags": "k=v"},
    ):
        refused(client.post(route, json={"run_id": run_id, "datasets": [entry]}), 400)
    refused(client.post(route, json={"run_id": run_id, "datasets": {"a": 1}}), 400)
    refused(
        client.post(route, json={"run_id": run_id, "models": [{"model_id": "m-nope"}]}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    refused(
        client.post(route, json={"run_id": "7zzzzzzzzzzzzzzzzzzzzzzzzz", "datasets": []}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    # nothing refused was kept; the same dataset twice in one call is one input
    run = client.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["inputs"] == {"dataset_inputs": []}
    twice = [{"dataset": good, "tags": [{"key": "n", "value": str(i)}]} for i in range(2)]
    ok = client.post(route, json={"run_id": run_id, "datasets": twice})
    assert ok.status_code == 200, ok.text
    run = client.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["inputs"]["dataset_inputs"] == [
        {"tags": [{"key": "n", "value": "1"}], "dataset": good}
    ]
    # a deleted run takes no inputs, as in MLflow
    assert client.post(f"{API}/runs/delete", json={"run_id": run_id}).status_code == 200
    refused(client.post(route, json={"run_id": run_id, "datasets": twice}), 400)
