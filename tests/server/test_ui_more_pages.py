"""The web UI's registry, dataset and monitor pages on both stores, in-process: every page
answers 200 with what it should show (data made through the Python API on the served
store), unknown names are 404 HTML pages, and hostile names and values are shown as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from loopwise.monitoring.alerting.alerts import evaluate_alerts
from loopwise.monitoring.results import WindowResult
from loopwise.monitoring.storage import save_window

HOSTILE = "<script>alert(1)</script>"
FEATURES = ["age", "income"]
T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
SLOW = {"name": "slow", "metric": "latency_p95_ms", "above": 50}


def _frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 80, n), "income": rng.normal(50, 15, n)})
    frame["region"] = rng.choice(["north", HOSTILE], n)
    frame["y"] = ((frame["age"] - 45) / 15 + rng.normal(0, 0.5, n) > 0).astype(int)
    return frame


@pytest.fixture
def registry(lw):
    """``credit-risk`` v1 trained in a run on ``loans``, v2 promoted to champion with a
    per-slice evaluation (one slice value hostile), a refused promotion of v1."""
    frame = _frame()
    model = LogisticRegression().fit(frame[FEATURES], frame["y"])
    with lw.start_run(experiment="credit", name="train"):
        lw.log_params({"C": 1.0})
        lw.log_dataset(frame, name="loans")
        lw.log_model(model, name="credit-risk", input_example=frame[FEATURES][:3])
    lw.log_model(model, name="credit-risk", input_example=frame[FEATURES][:3])
    lw.set_alias("credit-risk", "champion", 1, reason="first")
    policy = {"thresholds": {"accuracy": 0.1}, "slices": {"columns": ["region"]}}
    lw.promote("models:/credit-risk/2", "champion", policy=policy, data=frame, target="y")
    strict = {"thresholds": {"roc_auc": 0.9999}}
    lw.promote(
        "models:/credit-risk/1",
        "challenger",
        policy=strict,
        data=frame[[*FEATURES, "y"]],
        target="y",
    )
    return frame


def html_of(response, status: int = 200) -> str:
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    return response.text


def test_nav_links_every_section(client):
    page = html_of(client.get("/"))
    for href in ("/models", "/datasets", "/endpoints", "/monitors"):
        assert f'href="{href}"' in page


def test_models_pages(registry, client):
    listed = html_of(client.get("/models"))
    assert 'href="/models/credit-risk"' in listed
    assert "champion → v2" in listed

    model = html_of(client.get("/models/credit-risk"))
    assert 'href="/models/credit-risk/versions/1"' in model
    assert "promoted by policy" in model  # the alias timeline
    assert "threshold:roc_auc" in model
    assert "refused" in model
    assert "failed" in model
    assert "passed" in model

    version = html_of(client.get("/models/credit-risk/versions/1"))
    assert 'class="run-link"' in version
    assert ">train</a>" in version
    assert 'href="/datasets/loans/versions/1"' in version
    second = html_of(client.get("/models/credit-risk/versions/2"))
    assert "<svg" in second
    assert "accuracy by region" in second
    assert HOSTILE not in second
    assert "&lt;script&gt;" in second


def test_dataset_pages(registry, client):
    assert 'href="/datasets/loans"' in html_of(client.get("/datasets"))
    assert 'href="/datasets/loans/versions/1"' in html_of(client.get("/datasets/loans"))
    version = html_of(client.get("/datasets/loans/versions/1"))
    assert "<svg" in version  # a histogram from the profile
    assert ">age</th>" in version
    assert "Int64" in version
    assert HOSTILE not in version
    assert html_of(client.get("/datasets/loans/versions/latest")) == version


def test_hostile_names_are_text(lw, client):
    frame = pd.DataFrame({HOSTILE: [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    lw.log_dataset(frame, name="odd")
    page = html_of(client.get("/datasets/odd/versions/1"))
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    named = "<script>alert(1)"  # no slash: a slash would split the path
    refused = html_of(client.get(f"/models/{quote(named)}"), 400)
    assert named not in refused
    assert "&lt;script&gt;alert(1)" in refused


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/models/nope", 404),
        ("/models/nope/versions/1", 404),
        ("/models/nope/versions/0", 400),
        ("/models/nope/versions/99999999999999999999", 400),
        ("/datasets/nope", 404),
        ("/datasets/nope/versions/1", 404),
        ("/datasets/nope/versions/x", 404),
        ("/monitors/nope", 404),
        ("/endpoints/nope", 404),
        ("/endpoints/nope/trace/abc", 404),
    ],
)
def test_unknown_names_are_4xx_pages(client, path, status):
    assert "error" in html_of(client.get(path), status).lower()


def _window(i: int, latency: float) -> WindowResult:
    return WindowResult(
        monitor="mon",
        endpoint="ep",
        start=T0 + i * HOUR,
        end=T0 + (i + 1) * HOUR,
        model="m/1",
        model_version_id=None,
        rows=100,
        labelled=10,
        values={("", "latency_p95_ms"): latency},
    )


def seed_monitor(store) -> None:
    """Four windows of monitor "mon"; the "slow" alert fires at hour 1 and still fires."""
    results = [_window(i, v) for i, v in enumerate([10.0, 60.0, 70.0, 80.0])]
    for r in results:
        save_window(store, [r])
    evaluate_alerts(store, "mon", "ep", [SLOW], results, {}, deliver=False)


def test_monitor_pages(store, client):
    seed_monitor(store)
    listed = html_of(client.get("/monitors"))
    assert 'href="/monitors/mon"' in listed
    page = html_of(client.get("/monitors/mon"))
    assert "state-firing" in page
    assert "slow" in page
    assert "/monitors/mon/series?metric=latency_p95_ms" in page
    series = client.get("/monitors/mon/series", params={"metric": "latency_p95_ms", "model": "m/1"})
    assert series.status_code == 200
    assert series.json()["value"] == [10.0, 60.0, 70.0, 80.0]
    assert series.json()["step"][0] == T0.timestamp()


def test_empty_lists(client):
    assert "No models yet" in html_of(client.get("/models"))
    assert "No datasets yet" in html_of(client.get("/datasets"))
    assert "No monitor has stored windows" in html_of(client.get("/monitors"))
    assert "No endpoint has a prediction log" in html_of(client.get("/endpoints"))


def test_endpoint_and_trace_pages(registry, lw, client):
    """The endpoint page lists the last hour's predictions with a link to each request's
    trace, and the trace page links back to the model version and its run."""
    frame = registry[FEATURES][:5].assign(prediction=[0, 1, 0, 1, 1])
    logged = lw.log_predictions("scoring", frame, model="credit-risk/1")
    endpoints = html_of(client.get("/endpoints"))
    assert "scoring" in endpoints
    page = html_of(client.get("/endpoints/scoring"))
    assert logged.request_id in page
    trace_link = f"/endpoints/scoring/trace/{logged.request_id}"
    assert trace_link in page
    trace = html_of(client.get(trace_link))
    assert "/models/credit-risk/versions/1" in trace
    since = (datetime.now(UTC) - HOUR).isoformat()
    ranged = client.get("/endpoints/scoring", params={"start": since})
    assert logged.request_id in html_of(ranged)
    zoneless = client.get("/endpoints/scoring", params={"start": "2026-01-01T00:00"})
    assert "zone" in html_of(zoneless, 400)
