"""The audit log: every write through the server recorded (who, what, when), refused ones
too, read back by admins over ``GET /api/v1/audit``; the service's filters and pages."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from loopwise.auth.audit import ANONYMOUS, list_audit_events, record_audit_event
from loopwise.auth.tokens import create_token
from loopwise.errors import InvalidInput
from loopwise.predictions.log import log_predictions
from loopwise.server import audit_log
from loopwise.server.audit_log import path_entity
from tests.helpers import refused

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def audited(client, headers=None, **params) -> list[dict]:
    answer = client.get("/api/v1/audit", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["events"]


def test_every_write_is_recorded_refused_ones_too(store, client):
    log_predictions(store, "ep", pl.DataFrame({"request_id": ["r0"], "prediction": [1]}))
    assert client.post("/api/v1/experiments", json={"name": "churn"}).status_code == 200
    labels = {"labels": [{"request_id": "r0", "label": 1}]}
    assert client.post("/api/v1/endpoints/ep/feedback", json=labels).status_code == 200
    bad = client.post(
        "/api/v1/experiments", content=b"{", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400
    assert client.delete("/api/v1/experiments").status_code == 405
    assert client.post("/api/v1/no-such-route", json={}).status_code == 404
    client.get("/api/v1/experiments")  # reads are not audited
    client.post("/health")  # nor anything outside /api/v1
    events = audited(client)
    assert [(e["method"], e["path"], e["status"], e["entity"]) for e in events] == [
        ("POST", "/api/v1/no-such-route", 404, "no-such-route"),
        ("DELETE", "/api/v1/experiments", 405, "experiments"),
        ("POST", "/api/v1/experiments", 400, "experiments"),
        ("POST", "/api/v1/endpoints/ep/feedback", 200, "endpoints:/ep"),  # the route named it
        ("POST", "/api/v1/experiments", 200, "experiments"),
    ]
    assert {e["actor"] for e in events} == {ANONYMOUS}
    assert {e["token_id"] for e in events} == {None}
    times = [datetime.fromisoformat(e["at"]) for e in events]
    assert times == sorted(times, reverse=True)
    assert all(t.utcoffset() == timedelta(0) for t in times)


def test_who_is_the_token_and_only_admins_read_the_log(store, client):
    admin, admin_secret = create_token(store, "root", "admin")
    writer, writer_secret = create_token(store, "ci", "write")
    time.sleep(0.5)  # the authenticator refreshes every 0.2 s
    as_admin = {"authorization": f"Bearer {admin_secret}"}
    as_writer = {"authorization": f"Bearer {writer_secret}"}
    made = client.post("/api/v1/experiments", json={"name": "x"}, headers=as_writer)
    assert made.status_code == 200
    refused(client.post("/api/v1/experiments", json={"name": "y"}), 401, "unauthorized")
    refused(client.get("/api/v1/audit"), 401, "unauthorized")
    refused(client.get("/api/v1/audit", headers=as_writer), 403, "forbidden", "admin")
    events = audited(client, as_admin)
    assert [(e["actor"], e["token_id"], e["status"]) for e in events] == [
        (ANONYMOUS, None, 401),
        ("ci", writer.id, 200),
    ]
    assert [e["actor"] for e in audited(client, as_admin, actor="ci")] == ["ci"]
    assert admin.id not in {e["token_id"] for e in events}  # reading is not a write


def test_pages_and_filters(store, client):
    made = []
    for i in range(7):
        at = T0 + timedelta(minutes=i // 2)  # pairs share a time: pages cut between them
        made.append(
            record_audit_event(
                store,
                actor="ci" if i % 2 else "bot",
                method="DELETE" if i == 3 else "POST",
                path=f"/api/v1/runs/{i}",
                status=200,
                entity=f"runs/{i}",
                at=at,
            )
        )
    newest_first = sorted(made, key=lambda e: (e.at, e.id), reverse=True)
    seen, token = [], None
    while True:
        params = {"max_results": 3} | ({"page_token": token} if token else {})
        body = client.get("/api/v1/audit", params=params).json()
        seen += body["events"]
        token = body["next_page_token"]
        if token is None:
            break
    assert [e["id"] for e in seen] == [e.id for e in newest_first]
    assert [e["path"] for e in audited(client, method="DELETE")] == ["/api/v1/runs/3"]
    assert [e["path"] for e in audited(client, entity="runs/4")] == ["/api/v1/runs/4"]
    assert len(audited(client, actor="ci")) == 3
    window = {"start": "2026-12-01T00:01:00Z", "end": "2026-12-01T01:02:00+01:00"}
    in_window = [e.path for e in newest_first if e.at == T0 + timedelta(minutes=1)]
    assert sorted(in_window) == ["/api/v1/runs/2", "/api/v1/runs/3"]
    assert [e["path"] for e in audited(client, **window)] == in_window
    page = list_audit_events(store, max_results=7)
    assert page.next_page_token is None
    assert [e.id for e in page.events] == [e.id for e in newest_first]


def test_hostile_audit_reads_are_json_4xx(client):
    url = "/api/v1/audit"
    refused(
        client.get(url, params={"start": "2026-12-01T00:00:00"}), 400, "invalid_input", "time zone"
    )
    backwards = {"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}
    refused(client.get(url, params=backwards), 400, "invalid_input", "not after start")
    refused(client.get(url, params={"max_results": 10**19}), 400, "invalid_input", "max_results")
    refused(client.get(url, params={"method": "GET"}), 400, "invalid_input", "method")
    refused(client.get(url, params={"page_token": "nonsense"}), 400, "invalid_input", "page_token")
    refused(client.get(url, params={"actor": "a\u0000"}), 400, "invalid_input", "NUL")
    far = {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"}
    assert client.get(url, params=far).json()["events"] == []


def test_the_service_checks_its_parameters(store):
    with pytest.raises(InvalidInput, match="status"):
        record_audit_event(store, actor="a", method="POST", path="/x", status=42)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        record_audit_event(
            store, actor="a", method="POST", path="/x", status=200, at=T0.replace(tzinfo=None)
        )
    with pytest.raises(InvalidInput, match="max_results"):
        list_audit_events(store, max_results=0)
    with pytest.raises(InvalidInput, match="end"):
        list_audit_events(store, start=T0, end=T0)
    long = record_audit_event(store, actor="a", method="post", path="/" + "p" * 5000, status=201)
    assert (long.method, len(long.path)) == ("POST", 2048)
    assert path_entity("/api/v1/endpoints/ep/feedback") == "endpoints/ep"
    assert path_entity("/api/v1/") is None


def test_a_failed_record_leaves_the_answer_alone(client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("the audit table is gone")

    monkeypatch.setattr(audit_log, "record_audit_event", broken)
    caplog.set_level(logging.ERROR, logger="loopwise.server.audit_log")
    assert client.post("/api/v1/experiments", json={"name": "churn"}).status_code == 200
    assert "cannot record the audit event of POST /api/v1/experiments" in caplog.text
