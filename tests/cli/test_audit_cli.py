"""``loopwise audit`` through CliRunner, on SQLite and PostgreSQL: events written by a server
app on the same store, listed newest first, filtered, as a table and as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from loopwise.auth.audit import record_audit_event
from loopwise.server.app import create_server_app

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_lists_what_the_server_recorded(store, invoke):
    with TestClient(create_server_app(store)) as client:
        assert client.post("/api/v1/experiments", json={"name": "churn"}).status_code == 200
        assert client.delete("/api/v1/experiments").status_code == 405
    result = invoke("audit", "--json")
    assert result.exit_code == 0, result.output
    events = json.loads(result.stdout)
    assert [(e["method"], e["status"], e["actor"]) for e in events] == [
        ("DELETE", 405, "anonymous"),
        ("POST", 200, "anonymous"),
    ]
    table = invoke("audit")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["time", "actor", "method", "path", "status", "entity"]
    assert lines[2].split()[-4:] == ["DELETE", "/api/v1/experiments", "405", "experiments"]
    assert "POST" in lines[3]


def test_filters_limit_and_time_range(store, invoke):
    for i in range(5):
        record_audit_event(
            store,
            actor="ci" if i % 2 else "bot",
            method="POST",
            path=f"/api/v1/runs/{i}",
            status=200,
            entity=f"runs/{i}",
            at=T0 + timedelta(hours=i),
        )

    def paths(*args: str) -> list[str]:
        result = invoke("audit", "--json", *args)
        assert result.exit_code == 0, result.output
        return [e["path"].rsplit("/", 1)[-1] for e in json.loads(result.stdout)]

    assert paths() == ["4", "3", "2", "1", "0"]
    assert paths("--actor", "ci") == ["3", "1"]
    assert paths("--entity", "runs/2") == ["2"]
    assert paths("--limit", "2") == ["4", "3"]
    assert paths("--start", "2026-12-01T01:00:00Z", "--end", "2026-12-01T03:00:00Z") == ["2", "1"]
    limited = invoke("audit", "-n", "2")
    assert "raise --limit" in limited.stderr


def test_mistakes_are_errors_not_tracebacks(invoke):
    naive = invoke("audit", "--start", "2026-12-01T00:00:00")
    assert naive.exit_code == 1
    assert "no time zone" in naive.stderr
    method = invoke("audit", "--method", "GET")
    assert method.exit_code == 1
    assert "POST" in method.stderr
    empty = invoke("audit")
    assert empty.exit_code == 0
    assert "No writes through the server" in empty.stderr
