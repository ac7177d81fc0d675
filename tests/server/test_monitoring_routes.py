"""Monitors, window figures and alerts over the REST API, on both stores: windows stored
and alerts evaluated with the monitoring services on the client's store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loopwise.ids import new_id
from loopwise.monitoring.alerting.alerts import evaluate_alerts, list_alerts
from loopwise.monitoring.results import WindowResult
from loopwise.monitoring.storage import save_baseline, save_window
from tests.helpers import refused

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
SLOW = {"name": "slow", "metric": "latency_p95_ms", "above": 50}


def window(i: int, latency: float | None, *, model: str = "m/1", monitor: str = "mon"):
    return WindowResult(
        monitor=monitor,
        endpoint="ep",
        start=T0 + i * HOUR,
        end=T0 + (i + 1) * HOUR,
        model=model,
        model_version_id=None,
        rows=100,
        labelled=10,
        values={("", "latency_p95_ms"): latency, ("region=north", "rows"): 40.0},
    )


@pytest.fixture
def monitored(store):
    """Six hourly windows of "mon" (the third with two model versions, one figure missing),
    a baseline, a second monitor, and the "slow" alert fired at hour 1 and resolved at 4."""
    latencies = [10.0, 60.0, None, 70.0, 20.0, 15.0]
    results = [window(i, v) for i, v in enumerate(latencies)]
    for r in results:
        save_window(
            store, [r] + ([window(2, 5.0, model="m/2")] if r.start == T0 + 2 * HOUR else [])
        )
    save_baseline(store, window(0, 12.0))
    save_window(store, [window(0, 1.0, monitor="other")])
    evaluate_alerts(store, "mon", "ep", [SLOW], results, {}, deliver=False)
    return results


def test_monitors_are_listed_without_baselines(store, client, monitored):
    monitors = client.get("/api/v1/monitors").json()["monitors"]
    assert monitors == [
        {
            "name": "mon",
            "endpoint": "ep",
            "windows": 6,
            "first_window_start": T0.isoformat(),
            "last_window_end": (T0 + 6 * HOUR).isoformat(),
        },
        {
            "name": "other",
            "endpoint": "ep",
            "windows": 1,
            "first_window_start": T0.isoformat(),
            "last_window_end": (T0 + HOUR).isoformat(),
        },
    ]


def test_window_figures_a_page_at_a_time(store, client, monitored):
    url = "/api/v1/monitors/mon/windows"
    first = client.get(url, params={"max_results": 4}).json()
    assert first["monitor"] == "mon"
    starts = [w["start"] for w in first["windows"]]
    # four window starts, the third with two model versions
    assert starts == [(T0 + i * HOUR).isoformat() for i in (0, 1, 2, 2, 3)]
    assert [w["model"] for w in first["windows"]][2:4] == ["m/1", "m/2"]
    missing = first["windows"][2]
    assert {v["metric"]: v["value"] for v in missing["values"]}["latency_p95_ms"] is None
    second = client.get(url, params={"max_results": 4, "page_token": first["next_page_token"]})
    assert [w["start"] for w in second.json()["windows"]] == [
        (T0 + i * HOUR).isoformat() for i in (4, 5)
    ]
    assert second.json()["next_page_token"] is None
    ranged = client.get(
        url,
        params={
            "start": "2026-11-01T02:00:00Z",
            "end": "2026-11-01T04:00:00+00:00",
            "model": "m/2",
        },
    ).json()
    assert [(w["start"], w["model"]) for w in ranged["windows"]] == [
        ((T0 + 2 * HOUR).isoformat(), "m/2")
    ]
    one = ranged["windows"][0]
    assert (one["rows"], one["labelled"], one["end"]) == (100, 10, (T0 + 3 * HOUR).isoformat())


def test_alerts_one_alert_and_its_history(store, client, monitored):
    (stored,) = list_alerts(store)
    listed = client.get("/api/v1/alerts").json()
    assert listed["truncated"] is False
    (alert,) = listed["alerts"]
    assert (alert["id"], alert["rule"], alert["state"]) == (stored.id, "slow", "resolved")
    assert alert["fired_at"] == (T0 + 2 * HOUR).isoformat()
    for params, count in [
        ({"state": "resolved"}, 1),
        ({"state": "firing"}, 0),
        ({"monitor": "mon"}, 1),
        ({"monitor": "other"}, 0),
        ({"endpoint": "ep"}, 1),
        ({"endpoint": "elsewhere"}, 0),
        ({"rule": "slow"}, 1),
        ({"start": "2026-11-02T00:00:00Z"}, 0),
        ({"end": "2026-11-01T01:00:00Z"}, 0),
    ]:
        assert len(client.get("/api/v1/alerts", params=params).json()["alerts"]) == count, params
    one = client.get(f"/api/v1/alerts/{stored.id}").json()
    assert one == alert
    history = client.get(f"/api/v1/alerts/{stored.id}/history").json()
    assert history["alert_id"] == stored.id
    assert history["changes"] == [
        {"at": (T0 + 2 * HOUR).isoformat(), "kind": "fired", "value": 60.0},
        {"at": (T0 + 5 * HOUR).isoformat(), "kind": "resolved", "value": 70.0},
    ]
    assert history["action"] is None


def test_alerts_are_bounded_newest_kept(store, client):
    results = [window(i, 60.0 if i % 2 else 10.0) for i in range(8)]  # fires 4 times
    for r in results:
        save_window(store, [r])
    evaluate_alerts(store, "mon", "ep", [SLOW], results, {}, deliver=False)
    answer = client.get("/api/v1/alerts", params={"max_results": 3}).json()
    assert answer["truncated"] is True
    everything = list_alerts(store)
    assert len(everything) == 4
    assert [a["id"] for a in answer["alerts"]] == [a.id for a in everything[1:]]


def test_hostile_monitoring_reads_are_json_4xx(store, client, monitored):
    refused(client.get("/api/v1/monitors/nope/windows"), 404, "not_found", "nope", "'mon'")
    refused(client.get("/api/v1/monitors/mon.baseline/windows"), 404, "not_found")
    refused(client.get("/api/v1/monitors/" + "m" * 200 + "/windows"), 404, "not_found")
    url = "/api/v1/monitors/mon/windows"
    refused(
        client.get(url, params={"start": "2026-11-01T00:00:00"}), 400, "invalid_input", "time zone"
    )
    backwards = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}
    refused(client.get(url, params=backwards), 400, "invalid_input", "not after start")
    refused(client.get(url, params={"max_results": 10**20}), 400, "invalid_input", "max_results")
    refused(client.get(url, params={"page_token": "x"}), 400, "invalid_input", "page_token")
    first = client.get(url, params={"max_results": 1}).json()["next_page_token"]
    refused(client.get(url, params={"page_token": first, "model": "m/2"}), 400, "invalid_input")
    wide = {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"}
    assert len(client.get(url, params=wide).json()["windows"]) == 7
    refused(
        client.get("/api/v1/alerts", params={"state": "burning"}), 400, "invalid_input", "state"
    )
    refused(
        client.get("/api/v1/alerts", params={"end": "2026-11-01"}),
        400,
        "invalid_input",
        "time zone",
    )
    refused(client.get("/api/v1/alerts", params=backwards), 400, "invalid_input")
    refused(
        client.get("/api/v1/alerts", params={"monitor": "a\u0000b"}), 400, "invalid_input", "NUL"
    )
    refused(client.get("/api/v1/alerts", params={"max_results": 0}), 400, "invalid_input")
    refused(client.get(f"/api/v1/alerts/{new_id()}"), 404, "not_found")
    refused(client.get("/api/v1/alerts/7zzzzzzzzzzzzzzzzzzzzzzzzz"), 404, "not_found")
    refused(client.get("/api/v1/alerts/not-an-id/history"), 404, "not_found", "not-an-id")
    refused(client.get("/api/v1/alerts/" + "x" * 100), 400, "invalid_input")
