"""The pipeline routes on SQLite and PostgreSQL, over real pipeline runs of
``tests/pipelines/steps.py``: a churn run, the same run again from the cache, a failed run
of ``breakable`` and its resume, and a cron schedule with a tick. Every route's JSON, paging,
the JSON 404s and 400s, tokens scoped to another experiment, and the routes in the OpenAPI
document (fuzzed by schemathesis: no generated request gets a 5xx)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loopwise.auth.tokens import create_token
from loopwise.clock import now_us
from loopwise.pipelines.scheduler import claim_tick
from loopwise.pipelines.schedules import MISSED, create_schedule
from tests.pipelines import steps

API = "/api/v1"
ROOT = Path(__file__).resolve().parents[2]


def error_of(answer) -> dict:
    body = answer.json()
    assert set(body) == {"error"}, body
    return body["error"]


def _bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


@pytest.fixture
def ran(lw, store, tmp_path):
    """Two churn runs (the second from the cache), a failed breakable run and its resume,
    a cron schedule of churn-train with one (missed) tick."""
    first = lw.run_pipeline(steps.churn, params={"rows": 120})
    cached = lw.run_pipeline(steps.churn, params={"rows": 120})
    flag = tmp_path / "flag"
    flag.write_text("up")
    failed = lw.run_pipeline(steps.breakable, params={"flag": str(flag)}, cache=False)
    flag.unlink()
    resumed = lw.resume_pipeline(failed.id)
    schedule = create_schedule(store, "churn-train", cron="0 3 * * *", params={"rows": 50})
    with store.db.write() as conn:
        claim_tick(conn, schedule.id, now_us(), "cron:test", "tests", state=MISSED)
    return {
        "first": first,
        "cached": cached,
        "failed": failed,
        "resumed": resumed,
        "schedule": schedule,
    }


def test_pipelines_are_listed_with_their_last_run_and_schedules(ran, client):
    answer = client.get(f"{API}/pipelines")
    assert answer.status_code == 200, answer.text
    found = {p["name"]: p for p in answer.json()["pipelines"]}
    assert set(found) == {"churn-train", "breakable"}
    churn = found["churn-train"]
    assert churn["runs"] == 2
    assert churn["entrypoint"].endswith(":churn")
    assert churn["last_run"]["id"] == ran["cached"].id
    assert churn["last_status"] == "FINISHED"
    (schedule,) = churn["schedules"]
    assert schedule["id"] == ran["schedule"].id
    assert schedule["kind"] == "cron"
    assert schedule["description"] == "cron 0 3 * * * (UTC)"
    assert schedule["next_tick"].endswith("T03:00:00+00:00")
    breakable = found["breakable"]
    assert breakable["runs"] == 2
    assert breakable["last_run"]["id"] == ran["resumed"].id
    assert breakable["last_run"]["resumed_from"] == ran["failed"].id
    assert breakable["schedules"] == []


def test_a_pipelines_runs_newest_first_a_page_at_a_time(ran, client):
    answer = client.get(f"{API}/pipelines/churn-train/runs")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["pipeline"] == "churn-train"
    assert [r["id"] for r in body["runs"]] == [ran["cached"].id, ran["first"].id]
    assert body["next_page_token"] is None
    newest, oldest = body["runs"]
    assert newest["params"]["rows"] == 120
    assert newest["params_artifact"] is None
    assert newest["step_counts"]["cached"] == 3
    assert oldest["step_counts"] == {
        "SUCCEEDED": 3,
        "FAILED": 0,
        "SKIPPED": 0,
        "RUNNING": 0,
        "cached": 0,
    }
    assert newest["experiment"] == "churn-train"
    assert newest["status"] == "FINISHED"
    assert newest["duration_s"] >= 0

    first = client.get(f"{API}/pipelines/churn-train/runs", params={"max_results": 1}).json()
    assert [r["id"] for r in first["runs"]] == [ran["cached"].id]
    assert first["next_page_token"] is not None
    second = client.get(
        f"{API}/pipelines/churn-train/runs",
        params={"max_results": 1, "page_token": first["next_page_token"]},
    ).json()
    assert [r["id"] for r in second["runs"]] == [ran["first"].id]
    assert second["next_page_token"] is None
    # a token of another pipeline's listing is refused
    other = client.get(
        f"{API}/pipelines/breakable/runs",
        params={"max_results": 1, "page_token": first["next_page_token"]},
    )
    assert other.status_code == 400
    assert error_of(other)["code"] == "invalid_input"


def test_a_failed_run_with_its_steps(ran, client):
    failed = ran["failed"]
    answer = client.get(f"{API}/pipeline-runs/{failed.id}")
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["id"] == failed.id
    assert run["status"] == "FAILED"
    assert run["pipeline"] == "breakable"
    assert run["params"] == {"flag": failed.params["flag"]}
    assert run["trigger"] is None
    assert run["resumed_from"] is None
    steps_ = {s["name"]: s for s in run["steps"]}
    assert set(steps_) == {"divide", "fragile", "divide-2", "add"}
    fragile = steps_["fragile"]
    assert fragile["status"] == "FAILED"
    assert "RuntimeError: flag" in fragile["error"]
    assert "Traceback" in fragile["error"]
    assert fragile["inputs"] == {"x": ["divide"]}
    assert steps_["add"]["status"] == "SKIPPED"
    assert steps_["add"]["run_id"] is None
    divide = steps_["divide"]
    assert divide["status"] == "SUCCEEDED"
    assert divide["outputs"] == {"kind": "value", "ref": "2.0"}
    assert divide["attempts"] == 1
    assert divide["duration_s"] >= 0
    assert divide["started_at"] is not None

    resumed = client.get(f"{API}/pipeline-runs/runs:/{ran['resumed'].id}").json()
    assert resumed["resumed_from"] == failed.id
    assert resumed["status"] == "FINISHED"
    reused = {s["name"]: s for s in resumed["steps"]}["divide"]
    assert reused["cached"] is True
    assert reused["cached_from"] == divide["run_id"]


def test_a_cached_run_names_the_runs_it_reused(ran, client):
    first = client.get(f"{API}/pipeline-runs/{ran['first'].id}").json()
    cached = client.get(f"{API}/pipeline-runs/{ran['cached'].id}").json()
    assert [s["name"] for s in cached["steps"]] == ["load", "train", "score"]
    by_name = {s["name"]: s for s in first["steps"]}
    for step in cached["steps"]:
        assert step["cached"] is True
        assert step["cached_from"] == by_name[step["name"]]["run_id"]
        assert step["outputs"] == by_name[step["name"]]["outputs"]
    kinds = {s["name"]: s["outputs"]["kind"] for s in first["steps"]}
    assert kinds == {"load": "dataset:pandas", "train": "model", "score": "value"}
    assert by_name["load"]["outputs"]["ref"] == "datasets:/churn-train.load/1"
    assert by_name["train"]["outputs"]["ref"] == "models:/churn-train-train/1"
    assert by_name["train"]["inputs"] == {"frame": ["load"]}


def test_schedules_with_their_latest_ticks(ran, client):
    answer = client.get(f"{API}/pipelines/churn-train/schedules")
    assert answer.status_code == 200, answer.text
    (schedule,) = answer.json()["schedules"]
    assert schedule["id"] == ran["schedule"].id
    assert schedule["params"] == {"rows": 50}
    assert schedule["enabled"] is True
    (tick,) = schedule["ticks"]
    assert tick["state"] == "missed"
    assert tick["trigger"] == "cron:test"
    none = client.get(f"{API}/pipelines/churn-train/schedules", params={"ticks": 0}).json()
    assert none["schedules"][0]["ticks"] == []
    assert client.get(f"{API}/pipelines/breakable/schedules").json()["schedules"] == []


def test_unknown_names_and_bad_values_are_json_4xx(ran, client):
    unknown = client.get(f"{API}/pipelines/churm/runs")
    assert unknown.status_code == 404
    error = error_of(unknown)
    assert error["code"] == "not_found"
    assert "'churm'" in error["message"]
    assert "'churn-train'" in error["message"]
    assert client.get(f"{API}/pipelines/churm/schedules").status_code == 404
    missing = client.get(f"{API}/pipeline-runs/01aaaaaaaaaaaaaaaaaaaaaaaa")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    # a run that is not a pipeline run: a step's child run
    child = ran["first"].steps[0].run_id
    not_pipeline = client.get(f"{API}/pipeline-runs/{child}")
    assert not_pipeline.status_code == 404
    assert "not a pipeline run" in error_of(not_pipeline)["message"]
    for params in (
        {"max_results": 0},
        {"max_results": 1001},
        {"max_results": "x"},
        {"page_token": "garbage"},
        {"page_token": "W10"},
    ):
        answer = client.get(f"{API}/pipelines/churn-train/runs", params=params)
        assert answer.status_code == 400, (params, answer.text)
        assert error_of(answer)["code"] == "invalid_input"
    for bad in ("a%00b", "x" * 300, "%00", "é" * 50, "a%2Fb"):
        for path in (f"/pipelines/{bad}/runs", f"/pipelines/{bad}/schedules"):
            answer = client.get(API + path)
            assert answer.status_code in (400, 404), (path, answer.text)
            assert "error" in answer.json()
        answer = client.get(f"{API}/pipeline-runs/{bad}")
        assert 400 <= answer.status_code < 500, (bad, answer.text)
    ticks = client.get(f"{API}/pipelines/churn-train/schedules", params={"ticks": 101})
    assert ticks.status_code == 400


def test_an_empty_store_has_no_pipelines(client):
    assert client.get(f"{API}/pipelines").json() == {"pipelines": []}
    answer = client.get(f"{API}/pipelines/churn-train/runs")
    assert answer.status_code == 404
    assert "none yet" in error_of(answer)["message"]


def test_tokens_and_scopes(ran, lw, store, client):
    """A token scoped to ``churn-*`` sees churn-train (its runs are in experiment
    churn-train) and not breakable; without a token: 401."""
    _, scoped = create_token(store, "ci", "reader", experiments=["churn-*"])
    _, other = create_token(store, "fraud", "reader", experiments=["fraud-*"])
    _, admin = create_token(store, "root", "admin")
    time.sleep(0.5)  # the authenticator refreshes every 0.2 s
    assert client.get(f"{API}/pipelines").status_code == 401
    assert client.get(f"{API}/pipeline-runs/{ran['first'].id}").status_code == 401

    every = client.get(f"{API}/pipelines", headers=_bearer(admin)).json()["pipelines"]
    assert {p["name"] for p in every} == {"churn-train", "breakable"}
    mine = client.get(f"{API}/pipelines", headers=_bearer(scoped)).json()["pipelines"]
    assert [p["name"] for p in mine] == ["churn-train"]
    assert client.get(f"{API}/pipelines", headers=_bearer(other)).json() == {"pipelines": []}

    reach = client.get(f"{API}/pipelines/churn-train/runs", headers=_bearer(scoped))
    assert reach.status_code == 200
    assert len(reach.json()["runs"]) == 2
    for path in (
        "/pipelines/churn-train/runs",
        "/pipelines/churn-train/schedules",
        f"/pipeline-runs/{ran['first'].id}",
    ):
        refused = client.get(API + path, headers=_bearer(other))
        assert refused.status_code == 403, path
        error = error_of(refused)
        assert error["code"] == "forbidden"
        assert "'fraud-*'" in error["message"]
    refused = client.get(f"{API}/pipeline-runs/{ran['failed'].id}", headers=_bearer(scoped))
    assert refused.status_code == 403
    assert "'breakable'" in error_of(refused)["message"]
    assert client.get(f"{API}/pipelines/breakable/runs", headers=_bearer(scoped)).status_code == 403
    ok = client.get(f"{API}/pipeline-runs/{ran['first'].id}", headers=_bearer(scoped))
    assert ok.status_code == 200
    # unknown stays 404 for a scoped token too
    assert client.get(f"{API}/pipelines/nope/runs", headers=_bearer(scoped)).status_code == 404


def test_a_run_in_another_experiment_counts_only_for_tokens_reaching_it(lw, store, client):
    lw.run_pipeline(steps.churn, params={"rows": 80})
    lw.run_pipeline(steps.churn, params={"rows": 80}, experiment="fraud-x")
    _, scoped = create_token(store, "ci", "reader", experiments=["churn-*"])
    time.sleep(0.5)
    (churn,) = client.get(f"{API}/pipelines", headers=_bearer(scoped)).json()["pipelines"]
    assert churn["runs"] == 1
    assert churn["last_run"]["experiment"] == "churn-train"
    runs = client.get(f"{API}/pipelines/churn-train/runs", headers=_bearer(scoped)).json()
    assert [r["experiment"] for r in runs["runs"]] == ["churn-train"]


def test_the_openapi_document_lists_the_routes(client):
    paths = client.get(f"{API}/openapi.json").json()["paths"]
    for path in (
        "/api/v1/pipelines",
        "/api/v1/pipelines/{name}/runs",
        "/api/v1/pipeline-runs/{run_id}",
        "/api/v1/pipelines/{name}/schedules",
    ):
        assert "get" in paths[path], path
        assert paths[path]["get"]["tags"] == ["pipelines"]


def test_schemathesis_finds_no_server_error_on_the_pipeline_routes(ran, store, tmp_path):
    """The suite's fuzz run (tests/server/test_openapi_fuzz.py) covers every route on a store
    without pipelines; this one fuzzes the pipeline routes over real pipeline runs."""
    from loopwise.server.app import create_server_app
    from loopwise.serving.server import ServerThread

    with ServerThread(create_server_app(store)) as server:
        command = [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{server.url}/api/v1/openapi.json",
            "--checks",
            "not_a_server_error",
            "--include-tag",
            "pipelines",
            "--max-examples",
            os.environ.get("LOOPWISE_SCHEMATHESIS_EXAMPLES", "30"),
            "--seed",
            os.environ.get("LOOPWISE_SCHEMATHESIS_SEED", "20261207"),
            "--no-color",
        ]
        result = subprocess.run(
            command,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    tested = re.search(r"Tested: (\d+)", report)
    assert tested is not None, report[-3000:]
    assert int(tested.group(1)) == 4, report[-3000:]
