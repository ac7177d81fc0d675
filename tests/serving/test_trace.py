"""Tracing a logged prediction back to its model version, run, data, alias move and
promotion decision: a real flow (a tracked run on a versioned dataset, a promotion, a
server answering and logging, batch rows with ids of their own, feedback), on SQLite and
PostgreSQL (and ``lw.trace_prediction`` through a server: the remote client), through the
service function, ``lw.trace_prediction`` and the CLI."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from loopwise import context
from loopwise.errors import InvalidInput, NotFound
from loopwise.ids import new_id
from loopwise.predictions import tracing as trace_module
from loopwise.predictions.tracing import PredictionTrace, trace_prediction
from loopwise.serving.app import create_app
from loopwise.serving.endpoint_config import EndpointConfig
from loopwise.serving.flags import set_model_flag
from loopwise.serving.server import ServerThread, build_endpoint
from tests.helpers import COLUMNS, training_data, wait_for

pytestmark = pytest.mark.remote_conformance

ENDPOINT = "credit-risk"
CONFIG = {
    "name": ENDPOINT,
    "variants": [{"name": "main", "model": "models:/credit-risk@champion"}],
    "shadows": [{"name": "tree", "model": "models:/credit-risk/2"}],
    "fallback": 0,
    "poll_interval": 0.1,
    "log": {"flush_interval": 0.2},
}
POLICY = {"task": "classification", "thresholds": {"accuracy": 0.7}}
STRICT = {"task": "classification", "thresholds": {"accuracy": 0.9999}}
CHALLENGER_REASON = "tree as challenger, ticket RISK-12"
_MINUTE = timedelta(minutes=1)


@dataclass
class Flow:
    """What the flow made: ids to trace and the objects they must trace to."""

    v1: object
    v2: object
    run_id: str
    commit: str
    served: str  # answered by v1 through the server, labelled, with a shadow answer
    fallback: str  # answered by the fallback while the model flag was off
    refused: str  # a 400 from the model's signature check
    malformed: str  # a 400 before any model: the body is not JSON
    rows: list[dict]


def _git(tmp_path: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, cwd=tmp_path, check=True, capture_output=True, text=True).stdout


def _train(lw, tmp_path: Path) -> tuple[object, object, str, str]:
    """v1 (logistic regression) and v2 (a tree), each trained in a run on ``loans``, in a
    git work tree with an uncommitted change (the run records the commit, dirty)."""
    _git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text("print('train')\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "commit", "-q", "-m", "train")
    (tmp_path / "train.py").write_text("print('train v2')\n")
    commit = _git(tmp_path, "rev-parse", "HEAD").strip()
    X, y = training_data()
    with lw.start_run(experiment="credit", name="logreg") as run:
        lw.log_dataset(X.assign(y=y), name="loans")
        lw.log_params({"C": 0.5, "max_iter": 300})
        model = LogisticRegression(C=0.5, max_iter=300).fit(X, y)
        lw.log_metric("train_accuracy", float(model.score(X, y)))
        v1 = lw.log_model(model, "credit-risk", input_example=X[:5])
    with lw.start_run(experiment="credit", name="tree"):
        lw.log_dataset(X.assign(y=y), name="loans")
        lw.log_params({"max_depth": 3})
        tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
        v2 = lw.log_model(tree, "credit-risk", input_example=X[:5])
    return v1, v2, run.id, commit


@pytest.fixture
def flow(lw, tmp_path: Path) -> Flow:
    v1, v2, run_id, commit = _train(lw, tmp_path)
    X, y = training_data()
    holdout = X.assign(y=y)
    assert lw.promote(v1.uri, alias="champion", policy=POLICY, data=holdout, target="y").passed
    refused = lw.promote(v2.uri, alias="champion", policy=STRICT, data=holdout, target="y")
    assert not refused.passed
    lw.set_alias("credit-risk", "challenger", 2, reason=CHALLENGER_REASON)
    store = context.get_store()
    rows = X[:3].to_dict("records")
    endpoint = build_endpoint(EndpointConfig.from_dict(CONFIG), store).start()
    try:
        with (
            ServerThread(create_app(endpoint)) as server,
            httpx.Client(base_url=server.url, timeout=10) as client,
        ):
            served = client.post("/predict", json={"inputs": rows, "proba": True}).json()
            feedback = {"request_id": served["request_id"], "label": 1}
            assert client.post("/feedback", json=feedback).status_code == 200
            bad = client.post("/predict", json={"inputs": [{"income": 1}]})
            assert bad.status_code == 400
            malformed = client.post(
                "/predict", content=b'{"inputs": [', headers={"content-type": "application/json"}
            )
            assert malformed.status_code == 400
            set_model_flag(store, ENDPOINT, False, reason="incident 42")
            wait_for(lambda: not endpoint.model_enabled)
            fallback = client.post("/predict", json={"inputs": rows[:1]}).json()
            assert fallback["variant"] == "fallback"
            wait_for(lambda: endpoint.shadow_counters.answered)
    finally:
        endpoint.stop()  # writes the log
    # Later moves must not change what was live at the request's time.
    time.sleep(0.01)
    lw.set_alias("credit-risk", "champion", 2, reason="tree wins")
    return Flow(
        v1, v2, run_id, commit, served["request_id"], fallback["request_id"],
        bad.json()["error"]["request_id"], malformed.json()["error"]["request_id"], rows,
    )  # fmt: skip


def test_a_served_request_traces_to_its_version_run_data_alias_and_promotion(lw, flow):
    trace = lw.trace_prediction(ENDPOINT, flow.served)
    assert isinstance(trace, lw.PredictionTrace)
    assert (trace.endpoint, trace.request_id, trace.variant) == (ENDPOINT, flow.served, "main")
    assert trace.model == "credit-risk/1"
    assert trace.version.id == flow.v1.id
    assert not trace.fallback
    assert trace.error is None
    # the rows: inputs, prediction, probabilities, the feedback label
    assert list(trace.rows["row"]) == [0, 1, 2]
    assert trace.labels == [1, 1, 1]
    assert [r["input.income"] for r in trace.rows.to_dict("records")] == pytest.approx(
        [r["income"] for r in flow.rows]
    )
    expected = lw.load_model(flow.v1.uri).predict(pd.DataFrame(flow.rows)).tolist()
    assert trace.predictions == expected
    assert all(len(p) == 2 for p in trace.rows["probabilities"])
    assert not trace.rows["shadow"].any()
    # the shadow's rows are kept apart
    assert len(trace.shadows) == 3
    assert set(trace.shadows["model"]) == {"credit-risk/2"}
    assert set(trace.shadows["variant"]) == {"tree"}
    # lineage: run, params, metrics, code, data
    lineage = trace.lineage
    assert lineage.run.id == flow.run_id
    assert lineage.run.name == "logreg"
    assert lineage.run.params == {"C": "0.5", "max_iter": "300"}
    assert "train_accuracy" in lineage.run.metrics
    assert lineage.code_version["commit"] == flow.commit
    assert lineage.code_version["dirty"]
    assert [d.uri for d in lineage.datasets] == ["datasets:/loans/1"]
    # live through @champion, moved by the promotion; the later move to v2 is not it
    assert trace.aliases == ("champion",)
    (event,) = trace.alias_events
    assert (event.alias, event.from_version, event.to_version) == ("champion", None, 1)
    assert event.reason.startswith("promoted by policy")
    assert event.moved_by
    assert event.moved_at <= trace.timestamp
    (decision,) = trace.promotions
    assert decision.passed
    assert decision.alias == "champion"
    assert decision.candidate_version == 1
    assert decision.policy["thresholds"] == {"accuracy": 0.7}
    assert decision.checks
    assert decision.reasons == []
    assert trace.notes == ()
    text = str(trace)
    for needle in (flow.served, "models:/credit-risk/1", "logreg", flow.commit[:12], "dirty"):
        assert needle in text
    assert "datasets:/loans/1" in text
    assert "shadow tree" in text
    assert "@champion" in text


def test_to_dict_is_plain_json(lw, flow):
    trace = lw.trace_prediction(ENDPOINT, flow.served)
    data = json.loads(json.dumps(trace.to_dict(), allow_nan=False))
    assert data["model_version"]["uri"] == "models:/credit-risk/1"
    assert [r["label"] for r in data["rows"]] == [1, 1, 1]
    assert data["rows"][0]["timestamp"] == trace.timestamp.isoformat()
    assert len(data["rows"][0]["probabilities"]) == 2
    assert len(data["shadows"]) == 3
    assert data["lineage"]["run"]["params"]["C"] == "0.5"
    assert data["lineage"]["datasets"][0]["uri"] == "datasets:/loans/1"
    assert data["alias_events"][0]["to_version"] == 1
    assert data["promotions"][0]["passed"] is True


def test_fallback_and_failed_requests_say_so_without_a_version(lw, flow):
    fallback = lw.trace_prediction(ENDPOINT, flow.fallback)
    assert fallback.fallback
    assert fallback.version is None
    assert fallback.lineage is None
    assert (fallback.variant, fallback.predictions) == ("fallback", [0])
    assert len(fallback.shadows) == 0  # the fallback's answers are not mirrored
    assert "fallback" in fallback.notes[0]
    assert fallback.alias_events == ()
    assert fallback.promotions == ()
    refused = lw.trace_prediction(ENDPOINT, flow.refused)  # the model that refused it
    assert refused.error == "invalid_input"
    assert refused.version.id == flow.v1.id
    assert refused.predictions == [None]
    assert "failed: invalid_input" in str(refused)
    malformed = lw.trace_prediction(ENDPOINT, flow.malformed)
    assert malformed.error == "invalid_json"
    assert malformed.model is None
    assert malformed.version is None
    assert malformed.variant is None
    assert "failed (invalid_json) before a model answered" in malformed.notes[0]


def test_ids_of_their_own_are_found_by_a_scan_or_in_a_range(lw, flow):
    store = context.get_store()
    X, _ = training_data()
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    batch = X[:2].assign(request_id=["order-17", "order-18"], prediction=[1, 0])
    lw.log_predictions(ENDPOINT, batch, model=flow.v2)  # now: v2 holds @challenger
    old = X[2:3].assign(request_id=["legacy-7"], prediction=[1])
    lw.log_predictions(ENDPOINT, old, model=flow.v2, timestamp=three_hours_ago)
    lw.log_feedback(ENDPOINT, pd.DataFrame({"request_id": ["order-17"], "label": [0]}))

    order = trace_prediction(store, ENDPOINT, "order-17")  # scans the whole log
    assert (order.variant, order.predictions, order.labels) == ("batch", [1], [0])
    assert order.version.id == flow.v2.id
    assert order.lineage.run.params == {"max_depth": "3"}
    assert order.aliases == ("challenger", "champion")  # both point at v2 by then
    challenger = next(e for e in order.alias_events if e.alias == "challenger")
    assert challenger.reason == CHALLENGER_REASON
    assert challenger.to_version == 2
    (refused,) = order.promotions
    assert not refused.passed
    assert refused.current_version == 1
    assert refused.reasons[0].startswith("accuracy is ")
    assert "below the floor 0.9999" in refused.reasons[0]

    window = {"start": three_hours_ago - timedelta(minutes=5), "end": three_hours_ago + _MINUTE}
    legacy = trace_prediction(store, ENDPOINT, "legacy-7", **window)
    assert legacy.version.id == flow.v2.id
    assert legacy.predictions == [1]
    assert legacy.aliases == ()
    assert legacy.alias_events == ()
    assert "no alias pointed at models:/credit-risk/2 before this request" in legacy.notes[0]
    with pytest.raises(NotFound, match=r"between .* and .*Widen start= and end="):
        trace_prediction(store, ENDPOINT, "order-17", **window)

    # an id of its own logged again, for another model: the trace follows the first
    again = X[1:2].assign(request_id=["order-18"], prediction=[1])
    lw.log_predictions(ENDPOINT, again, model=flow.v1)
    reused = trace_prediction(store, ENDPOINT, "order-18")
    assert reused.model == "credit-risk/2"
    assert reused.predictions == [0]
    assert "1 more row(s) of this request id were logged for credit-risk/1" in reused.notes[0]


def test_unknown_ids_name_what_was_searched(lw, flow):
    store = context.get_store()
    with pytest.raises(NotFound) as e:
        trace_prediction(store, ENDPOINT, new_id())
    message = str(e.value)
    assert "in the hours its id was made in" in message
    assert " UTC, " in message
    assert "pass start= and end=" in message
    with pytest.raises(NotFound, match=r"searched the whole log: \d+ rows, from .* It is not a"):
        trace_prediction(store, ENDPOINT, "no-such-order")
    with pytest.raises(NotFound, match="endpoints with a log: 'credit-risk'"):
        trace_prediction(store, "fraud", flow.served)


def _record_reads(monkeypatch) -> list[tuple]:
    """Record (start, end, columns, feedback) of every read of the log a trace makes."""
    reads: list[tuple] = []
    real = trace_module.read_predictions_frame

    def recording(store, endpoint, start, end, *, columns=None, feedback=True):
        labels = feedback if isinstance(feedback, bool) else "read_feedback"
        reads.append((start, end, columns, labels))
        return real(store, endpoint, start, end, columns=columns, feedback=feedback)

    monkeypatch.setattr(trace_module, "read_predictions_frame", recording)
    return reads


def test_a_loopwise_id_is_searched_in_its_hour_and_the_nearest_one_only(lw, monkeypatch):
    """Rows stamped just after the hour their id names are found; rows far from it only
    with start/end; and only those hours are read."""
    store = context.get_store()
    boundary = datetime(2024, 5, 1, 11, tzinfo=UTC)
    near = new_id(int((boundary - timedelta(seconds=1)).timestamp() * 1000))
    far = new_id(int((boundary - timedelta(minutes=50)).timestamp() * 1000))  # 10:10
    X, _ = training_data()
    for rid, at in ((near, boundary + _MINUTE), (far, boundary + 5 * _MINUTE)):
        frame = X[:2].assign(request_id=rid, prediction=[0, 1])
        lw.log_predictions(ENDPOINT, frame, model="credit-risk/9", timestamp=at)
    lw.log_predictions(ENDPOINT, X[:1].assign(prediction=[1]), timestamp=boundary + 10 * _MINUTE)
    reads = _record_reads(monkeypatch)
    found = trace_prediction(store, ENDPOINT, near)
    assert found.predictions == [0, 1]
    assert list(found.rows["row"]) == [0, 1]
    assert reads == [
        (boundary - timedelta(hours=1), boundary + timedelta(hours=1), ["request_id"], False),
        (boundary, boundary + timedelta(hours=1), None, True),
    ]
    # a version missing from the registry: the label is kept, and the trace says so
    assert found.model == "credit-risk/9"
    assert found.version is None
    assert "models:/credit-risk/9 is not in this store" in found.notes[0]
    assert set(c.removeprefix("input.") for c in found.rows.columns if "." in c) == set(COLUMNS)
    with pytest.raises(NotFound, match="2024-05-01 09:00 to 2024-05-01 11:00 UTC"):
        trace_prediction(store, ENDPOINT, far)
    window = {"start": boundary, "end": boundary + timedelta(hours=1)}
    assert trace_prediction(store, ENDPOINT, far, **window).predictions == [0, 1]


def test_a_request_logged_in_several_hours_is_read_whole(lw, monkeypatch):
    """An id that is not a loopwise id: the keys of the whole log are read, then each
    hour holding the request, with the feedback read once for both."""
    store = context.get_store()
    X, _ = training_data()
    start = datetime(2024, 5, 1, 8, tzinfo=UTC)
    frame = X[:2].assign(
        request_id="job-5",
        row=[0, 1],
        prediction=[1, 0],
        timestamp=[start, start + timedelta(hours=3)],
    )
    lw.log_predictions(ENDPOINT, frame, model="x/1")
    lw.log_feedback(ENDPOINT, pd.DataFrame({"request_id": ["job-5"], "row": [1], "label": [1]}))
    reads = _record_reads(monkeypatch)
    trace = trace_prediction(store, ENDPOINT, "job-5")
    assert reads == [
        (None, None, ["request_id"], False),
        (start, start + timedelta(hours=1), None, "read_feedback"),
        (start + timedelta(hours=3), start + timedelta(hours=4), None, "read_feedback"),
    ]
    assert list(trace.rows["row"]) == [0, 1]
    assert trace.labels == [None, 1]
    assert trace.timestamp == start
    assert "models:/x/1 is not in this store" in trace.notes[0]


def test_a_registered_again_version_is_not_taken_for_the_one_that_answered(lw, flow):
    other = SimpleNamespace(name="credit-risk", version=1, id=new_id())
    X, _ = training_data()
    lw.log_predictions(ENDPOINT, X[:1].assign(request_id="r-1", prediction=[1]), model=other)
    trace = lw.trace_prediction(ENDPOINT, "r-1")
    assert trace.model == "credit-risk/1"
    assert trace.version is None
    assert f"is not the version that answered (id {other.id})" in trace.notes[0]


def test_a_version_served_after_its_alias_moved_on_says_so(lw, flow):
    X, _ = training_data()
    lw.log_predictions(ENDPOINT, X[:1].assign(request_id="late-1", prediction=[1]), model=flow.v1)
    trace = lw.trace_prediction(ENDPOINT, "late-1")
    assert trace.version.id == flow.v1.id
    assert trace.aliases == ()
    (event,) = trace.alias_events  # the move that had made it live
    assert (event.alias, event.to_version) == ("champion", 1)
    assert "@champion had moved on from models:/credit-risk/1 to version 2" in trace.notes[0]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"endpoint": 3}, "'endpoint' parameter of trace_prediction"),
        ({"request_id": ""}, "'request_id' parameter of trace_prediction"),
        ({"request_id": 17}, "'request_id' parameter of trace_prediction"),
        ({"start": datetime(2024, 5, 1)}, "'start' parameter of trace_prediction"),
        ({"end": "2024-05-01"}, "'end' parameter of trace_prediction"),
        (
            {"start": datetime(2024, 5, 2, tzinfo=UTC), "end": datetime(2024, 5, 1, tzinfo=UTC)},
            "must be after start",
        ),
        ({"store": "sqlite:///x.db"}, "'store' parameter of trace_prediction"),
    ],
)
def test_bad_arguments_are_invalid_input(store, kwargs, needle):
    call = {"store": store, "endpoint": ENDPOINT, "request_id": "r-1"} | kwargs
    start, end = call.pop("start", None), call.pop("end", None)
    with pytest.raises(InvalidInput, match=needle):
        trace_prediction(call["store"], call["endpoint"], call["request_id"], start=start, end=end)


def test_the_trace_is_frozen(lw, flow):
    trace = lw.trace_prediction(ENDPOINT, flow.served)
    assert isinstance(trace, PredictionTrace)
    with pytest.raises(AttributeError):
        trace.model = "other/1"  # type: ignore[misc]


# -- the CLI ----------------------------------------------------------------------------------


def test_cli_trace_prints_request_run_data_alias_and_promotion(flow, invoke):
    result = invoke("endpoints", "trace", ENDPOINT, flow.served)
    assert result.exit_code == 0, result.output
    out = result.output
    for needle in (
        f"Request {flow.served} of credit-risk",
        "models:/credit-risk/1",
        "@champion",
        "logreg",
        flow.run_id,
        flow.commit[:12],
        "dirty",
        "C=0.5",
        "max_iter=300",
        "train_accuracy=",
        "datasets:/loans/1",
        "How it became live",
        "promoted by policy",
        "Promotion decisions",
        "passed",
        "Shadows",
        "credit-risk/2",
    ):
        assert needle in out, needle
    data = json.loads(invoke("endpoints", "trace", ENDPOINT, flow.served, "--json").output)
    assert data["model_version"]["version"] == 1
    assert data["alias_events"][0]["reason"].startswith("promoted by policy")
    assert [r["label"] for r in data["rows"]] == [1, 1, 1]


def test_cli_trace_fallback_range_and_errors(flow, invoke):
    fallback = invoke("endpoints", "trace", ENDPOINT, flow.fallback)
    assert fallback.exit_code == 0, fallback.output
    assert "the fallback (no model version)" in fallback.output
    assert "No model version: no run" in fallback.output
    missing = invoke("endpoints", "trace", ENDPOINT, "order-404", "--start", "-2h", "--end", "now")
    assert missing.exit_code == 1
    assert "Error: request 'order-404' is not in the prediction log" in missing.output
    assert "Widen start= and end=" in missing.output
    bad = invoke("endpoints", "trace", ENDPOINT, "order-404", "--start", "yesterday")
    assert bad.exit_code == 1
    assert "--start must be an ISO 8601 time" in bad.output
    unknown = invoke("endpoints", "trace", "fraud", flow.served)
    assert unknown.exit_code == 1
    assert "endpoints with a log: 'credit-risk'" in unknown.output


def test_cli_list_names_the_endpoints_with_a_log(flow, invoke):
    listed = invoke("endpoints", "list")
    assert listed.exit_code == 0
    assert "credit-risk" in listed.output
    assert json.loads(invoke("endpoints", "list", "--json").output) == [ENDPOINT]


def test_cli_list_with_no_log(invoke):
    result = invoke("endpoints", "list")
    assert result.exit_code == 0
    assert "No endpoint has a prediction log yet" in result.output
    assert json.loads(invoke("endpoints", "list", "--json").output) == []
