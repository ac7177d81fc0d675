"""The web UI's registry, dataset and monitor pages on both stores, in-process: every page
answers 200 with what it should show (data made through the Python API on the served
store), unknown names are 404 HTML pages, and hostile names and values are shown as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pandas as pd
import pytest

from tests.helpers import UI_FEATURES as FEATURES
from tests.helpers import UI_HOSTILE as HOSTILE
from tests.helpers import UI_T0 as T0
from tests.helpers import seed_monitor, seed_registry

HOUR = timedelta(hours=1)


@pytest.fixture
def registry(lw):
    """``credit-risk`` v1 trained in a run on ``loans``, v2 promoted to champion with a
    per-slice evaluation (one slice value hostile), a refused promotion of v1."""
    return seed_registry(lw)


def html_of(response, status: int = 200) -> str:
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    return response.text


def test_nav_links_every_section(client):
    page = html_of(client.get("/"))
    for href in ("/models", "/datasets", "/endpoints", "/monitors"):
        assert f'href="{href}"' in page


def test_models_pages(registry, client, store):
    from loopwise.registry import models as model_service

    model_service.update_model(store, "credit-risk", tags={"team": "<risk>"})
    model_service.update_version(store, "models:/credit-risk/1", tags={"validated": "yes"})
    listed = html_of(client.get("/models"))
    assert 'href="/models/credit-risk"' in listed
    assert "champion → v2" in listed

    model = html_of(client.get("/models/credit-risk"))
    assert "<th>team</th><td>&lt;risk&gt;</td>" in model  # tags shown, escaped
    assert 'href="/models/credit-risk/versions/1"' in model
    assert "promoted by policy" in model  # the alias timeline
    assert "threshold:roc_auc" in model
    assert "refused" in model
    assert "failed" in model
    assert "passed" in model

    version = html_of(client.get("/models/credit-risk/versions/1"))
    assert "<th>validated</th><td>yes</td>" in version
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
    assert 'src="/monitors/mon/report"' in page
    report = client.get("/monitors/mon/report")
    assert report.status_code == 200
    assert report.headers["content-security-policy"] == "sandbox"
    assert "slow" in report.text
    assert "<script" not in report.text.lower()
    early = client.get("/monitors/mon/report", params={"end": (T0 + HOUR).isoformat()})
    assert early.status_code == 200
    assert len(early.text) < len(report.text)
    none = client.get("/monitors/mon/report", params={"start": (T0 + 30 * HOUR).isoformat()})
    assert none.status_code == 404
    assert "no stored windows" in none.json()["error"]["message"]


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


def test_endpoint_charts_count_requests_and_latency_per_bucket(lw, client):
    """Traffic counts each request once (its first row) per variant and bucket; latency is
    p50/p95 per bucket; an hour's range gets 30-second buckets."""

    def log(variant: str, request_id: str, at: datetime, rows: int, latency: float) -> None:
        frame = pd.DataFrame(
            {
                "request_id": [request_id] * rows,
                "row": list(range(rows)),
                "timestamp": [at] * rows,
                "x": [1.0] * rows,
                "prediction": [1] * rows,
                "latency_ms": [latency] * rows,
            }
        )
        lw.log_predictions("charted", frame, variant=variant)

    log("a", "r1", T0, rows=3, latency=10.0)
    log("b", "r2", T0 + timedelta(seconds=40), rows=1, latency=30.0)
    log("a", "r3", T0 + timedelta(seconds=45), rows=2, latency=50.0)
    log("a", "late", T0 + 2 * HOUR, rows=1, latency=1.0)  # outside the range
    window = {"start": T0.isoformat(), "end": (T0 + HOUR).isoformat()}

    traffic = client.get("/endpoints/charted/charts/traffic", params=window)
    assert traffic.status_code == 200, traffic.text
    body = traffic.json()
    assert body["bucket_s"] == 30
    assert len(body["step"]) == 120
    assert body["step"][0] == T0.timestamp()
    counts = {s["label"]: s["values"] for s in body["series"]}
    assert set(counts) == {"a", "b"}
    assert counts["a"][:3] == [1, 1, 0]
    assert counts["b"][:3] == [0, 1, 0]
    assert sum(counts["a"]) + sum(counts["b"]) == 3

    latency = client.get("/endpoints/charted/charts/latency", params=window).json()
    lines = {s["label"]: s["values"] for s in latency["series"]}
    assert set(lines) == {"p50 ms", "p95 ms"}
    assert lines["p50 ms"][0] == lines["p95 ms"][0] == 10.0
    assert 30.0 <= lines["p50 ms"][1] <= lines["p95 ms"][1] <= 50.0
    assert lines["p50 ms"][2] is None  # no request, no point

    quiet = {"start": (T0 + 5 * HOUR).isoformat(), "end": (T0 + 6 * HOUR).isoformat()}
    assert client.get("/endpoints/charted/charts/traffic", params=quiet).json()["series"] == []

    assert client.get("/endpoints/charted/charts/nope", params=window).status_code == 404
    assert client.get("/endpoints/nope/charts/traffic", params=window).status_code == 404
    reversed_ = {"start": window["end"], "end": window["start"]}
    assert client.get("/endpoints/charted/charts/traffic", params=reversed_).status_code == 400
    too_long = {"start": T0.isoformat(), "end": (T0 + timedelta(days=40)).isoformat()}
    refused = client.get("/endpoints/charted/charts/latency", params=too_long)
    assert refused.status_code == 400
    assert "31 days" in refused.json()["error"]["message"]

    page = html_of(client.get("/endpoints/charted", params=window))
    assert "/endpoints/charted/charts/traffic?" in page
    assert "/endpoints/charted/charts/latency?" in page
    long_page = html_of(client.get("/endpoints/charted", params=too_long))
    assert "narrow the range to see them" in long_page
