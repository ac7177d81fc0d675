"""No overlap and cooldown of alert actions, on SQLite and PostgreSQL.

Each test fires one per-slice rule in several slices (one alert each, all of one rule), so
the second firing meets the first one's stored action record. Commands are real: a "gated"
command waits until the test creates its gate file, so "still running" lasts exactly as
long as the test needs; stale and old records are written into the store directly.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from loopwise.errors import InvalidInput
from loopwise.monitoring.alerting.alerts import (
    alerts_frame,
    evaluate_alerts,
    get_alert,
    list_alerts,
    wait_for_actions,
)
from loopwise.monitoring.alerting.gate import STALE_MARGIN_S
from loopwise.monitoring.alerting.rules import parse_rules
from loopwise.monitoring.config import Monitor
from loopwise.monitoring.results import WindowResult
from loopwise.store import Store
from loopwise.store.tables import alerts
from tests import helpers

T0 = datetime(2026, 12, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
stepped = helpers.stepped  # the fixture: a clock the tests step
SLICES = ("region=south", "region=north", "region=east", "region=west")


def window(i: int, *slices: str, monitor: str = "credit-mon") -> WindowResult:
    """Window ``i`` (hour i after T0) where each of ``slices`` breaks the rule below."""
    return WindowResult(
        monitor=monitor,
        endpoint="credit-risk",
        start=T0 + i * HOUR,
        end=T0 + (i + 1) * HOUR,
        model="credit-risk/3",
        model_version_id=None,
        rows=1000,
        labelled=500,
        values={(slice, "perf.f1"): 0.5 for slice in slices},
    )


def rule(command: list[str], **action) -> dict:
    return {
        "name": "retrain",
        "metric": "perf.f1",
        "below": 0.7,
        "per_slice": True,
        "action": {"command": command, "timeout": 30, **action},
    }


def fire(store: Store, rules: list[dict], i: int, slice: str, **kwargs):
    """Evaluate window ``i`` with ``slice`` breaking the rule: the one fired event."""
    (event,) = evaluate_alerts(
        store, "credit-mon", "credit-risk", rules, [window(i, slice)], {}, **kwargs
    )
    assert event.kind == "fired"
    return event


@pytest.fixture
def gated(tmp_path: Path):
    """A command that notes its alert id in ``started``, then waits for ``gate`` to exist."""
    started, gate = tmp_path / "started.txt", tmp_path / "gate"
    code = (
        "import os, sys, time\n"
        f"open({str(started)!r}, 'a').write(sys.argv[1] + '\\n')\n"
        f"while not os.path.exists({str(gate)!r}):\n"
        "    time.sleep(0.02)\n"
    )
    command = [sys.executable, "-c", code, "{alert_id}"]

    class Gated:
        def __init__(self) -> None:
            self.command = command

        def started(self) -> list[str]:
            return started.read_text().split() if started.exists() else []

        def wait_started(self, count: int = 1) -> None:
            deadline = time.monotonic() + 20
            while len(self.started()) < count:
                assert time.monotonic() < deadline, "the gated command did not start"
                time.sleep(0.02)

        def open(self) -> None:
            gate.touch()

    g = Gated()
    yield g
    g.open()  # never leave a command waiting
    assert wait_for_actions(30)


def set_action(store: Store, alert_id: str, record: dict) -> None:
    with store.db.write() as conn:
        values = {"action": json.dumps(record)}
        conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))


def utc(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


QUICK = [sys.executable, "-c", "pass"]


# -- no overlap --------------------------------------------------------------------------------


def test_a_firing_while_the_rules_action_runs_is_skipped_then_not_after_it_finished(store, gated):
    rules = [rule(gated.command)]
    first = fire(store, rules, 0, SLICES[0])
    assert first.alert.action["status"] == "queued"
    queued = fire(store, rules, 1, SLICES[3]).wait(1)  # before its thread took it up, or not
    assert (queued["status"], queued["blocked_by"]) == ("skipped", first.alert.id)
    gated.wait_started()
    second = fire(store, rules, 2, SLICES[1])  # another slice, same rule: still running
    skipped = second.wait(1)
    assert skipped == get_alert(store, second.alert.id).action
    assert second.alert.action == skipped
    assert (skipped["status"], skipped["cause"]) == ("skipped", "overlap")
    assert skipped["blocked_by"] == first.alert.id
    assert (skipped["kind"], skipped["summary"]) == ("command", " ".join(gated.command))
    running = get_alert(store, first.alert.id).action
    assert skipped["reason"] == (
        f"the action of alert {first.alert.id} (perf.f1 on region=south) is still running "
        f"(started {utc(datetime.fromisoformat(running['started_at']))}); one action of rule "
        "'retrain' runs at a time."
    )
    assert datetime.fromisoformat(skipped["skipped_at"]) <= datetime.now(UTC)
    gated.open()
    done = first.wait(30)
    assert done["status"] == "succeeded"
    third = fire(store, rules, 3, SLICES[2])  # the first finished: this one starts
    assert third.alert.action["status"] == "queued"
    assert third.wait(30)["status"] == "succeeded"
    assert gated.started() == [first.alert.id, third.alert.id]  # the skipped one never ran


def test_two_slices_firing_in_one_window_start_one_action(store, gated):
    both = window(0, *SLICES[:2])
    events = evaluate_alerts(store, "credit-mon", "credit-risk", [rule(gated.command)], [both], {})
    assert [e.alert.slice for e in events] == ["region=north", "region=south"]  # slice order
    assert events[1].wait(1)["blocked_by"] == events[0].alert.id
    gated.open()
    assert events[0].wait(30)["status"] == "succeeded"
    assert gated.started() == [events[0].alert.id]


def test_other_rules_and_monitors_do_not_block(store, gated):
    rules = [rule(gated.command), rule(QUICK) | {"name": "retrain-too"}]
    first = fire(store, rules[:1], 0, SLICES[0])
    assert fire(store, rules, 0, SLICES[0]).wait(30)["status"] == "succeeded"
    moved = window(0, SLICES[0], monitor="other-mon")
    (elsewhere,) = evaluate_alerts(store, "other-mon", "credit-risk", [rule(QUICK)], [moved], {})
    assert elsewhere.wait(30)["status"] == "succeeded"
    gated.open()
    assert first.wait(30)["status"] == "succeeded"


@pytest.mark.parametrize("status", ["running", "queued"])
def test_a_record_older_than_its_timeout_no_longer_counts(store, status):
    """A process that died leaves ``running`` (or ``queued``) behind: it blocks only until
    start + timeout + STALE_MARGIN_S."""
    rules = [rule(QUICK, timeout=10)]
    dead = fire(store, rules, 0, SLICES[0], deliver=False)  # stored, no action
    at = "started_at" if status == "running" else "queued_at"
    now = datetime.now(UTC)

    def left(age: float, **extra) -> None:
        moment = (now - timedelta(seconds=age)).isoformat()
        set_action(store, dead.alert.id, {"kind": "command", "status": status, at: moment} | extra)

    left(10 + STALE_MARGIN_S - 5)  # within timeout + margin: still counts
    blocked = fire(store, rules, 1, SLICES[1]).wait(1)
    assert (blocked["status"], blocked["blocked_by"]) == ("skipped", dead.alert.id)
    assert f"is still {status} (" in blocked["reason"]
    left(10 + STALE_MARGIN_S + 5)  # past it: the action has been killed or its process is gone
    assert fire(store, rules, 2, SLICES[2]).wait(30)["status"] == "succeeded"
    # the record's own timeout wins over the rule's current one
    left(10 + STALE_MARGIN_S + 5, timeout=3600)
    assert fire(store, rules, 3, SLICES[3]).wait(1)["status"] == "skipped"


def test_deliver_false_records_and_runs_nothing(store, gated):
    event = fire(store, [rule(gated.command)], 0, SLICES[0], deliver=False)
    assert (event.action, get_alert(store, event.alert.id).action) == (None, None)
    assert fire(store, [rule(QUICK)], 1, SLICES[1]).wait(30)["status"] == "succeeded"
    assert gated.started() == []


def test_processes_firing_at_once_start_one_action(store, store_url, tmp_path, gated, monkeypatch):
    """Four stores (as four ``monitor watch`` processes would have) fire the rule at once.

    Each decision waits (up to 0.5 s) for the others to have decided too before it is
    written: without the rule's lock all four would decide on an empty store and start.
    """
    from loopwise.config import load_settings
    from loopwise.monitoring.alerting import alerts as alerting

    settings = load_settings(store_url=store_url, artifacts_url=str(tmp_path / "artifacts"))
    stores = [Store(settings=settings) for _ in SLICES]
    for own in stores:  # connected and migrated before the race, as running processes are
        own.db.ensure_schema()
    start, decided, events = threading.Barrier(len(SLICES)), threading.Barrier(len(SLICES)), []
    admit = alerting.admit

    def admit_together(*args, **kwargs):
        found = admit(*args, **kwargs)
        # broken after 0.5 s when the others wait for the lock this transaction holds
        with contextlib.suppress(threading.BrokenBarrierError):
            decided.wait(0.5)
        return found

    monkeypatch.setattr(alerting, "admit", admit_together)

    def evaluate(own: Store, slice: str) -> None:
        start.wait()
        events.append(fire(own, [rule(gated.command)], 0, slice))

    pairs = zip(stores, SLICES, strict=True)
    threads = [threading.Thread(target=evaluate, args=pair) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(events) == len(SLICES)
    records = {e.alert.id: get_alert(store, e.alert.id).action for e in events}
    (winner,) = [i for i, r in records.items() if r["status"] != "skipped"]
    assert records[winner]["status"] in ("queued", "running")
    assert {r.get("blocked_by") for i, r in records.items() if i != winner} == {winner}
    gated.open()
    assert wait_for_actions(30)
    assert len(gated.started()) == 1
    for own in stores:
        own.db.engine.dispose()


# -- cooldown ----------------------------------------------------------------------------------


def test_cooldown_skips_a_firing_within_it_and_allows_one_after(store):
    rules = [rule(QUICK, cooldown="1h")]
    first = fire(store, rules, 0, SLICES[0])
    started = datetime.fromisoformat(first.wait(30)["started_at"])
    second = fire(store, rules, 1, SLICES[1]).wait(1)  # finished, but 1h has not passed
    ends = started + HOUR
    assert second == {
        "kind": "command",
        "summary": " ".join(QUICK),
        "status": "skipped",
        "skipped_at": second["skipped_at"],
        "cause": "cooldown",
        "blocked_by": first.alert.id,
        "last_started_at": started.isoformat(),
        "cooldown_s": 3600.0,
        "cooldown_ends_at": ends.isoformat(),
        "reason": (
            f"the last action of rule 'retrain' (alert {first.alert.id}) started "
            f"{utc(started)}, within its cooldown of 1h; the cooldown ends {utc(ends)}."
        ),
    }
    # an hour later (the stored start moved back): the skipped firing did not restart it
    earlier = get_alert(store, first.alert.id).action
    earlier["started_at"] = (started - HOUR - timedelta(seconds=1)).isoformat()
    set_action(store, first.alert.id, earlier)
    third = fire(store, rules, 2, SLICES[2])
    assert third.wait(30)["status"] == "succeeded"
    fourth = fire(store, rules, 3, SLICES[3]).wait(1)
    assert (fourth["cause"], fourth["blocked_by"]) == ("cooldown", third.alert.id)


def test_a_cooldown_in_seconds_ends(store, stepped):
    rules = [rule(QUICK, cooldown=2)]
    assert fire(store, rules, 0, SLICES[0]).wait(30)["status"] == "succeeded"
    assert fire(store, rules, 1, SLICES[1]).wait(1)["status"] == "skipped"
    stepped.advance(2.05)
    assert fire(store, rules, 2, SLICES[2]).wait(30)["status"] == "succeeded"


def test_without_a_cooldown_finished_actions_do_not_block(store):
    rules = [rule(QUICK)]
    for i, slice in enumerate(SLICES[:3]):
        assert fire(store, rules, i, slice).wait(30)["status"] == "succeeded"


# -- config ------------------------------------------------------------------------------------

COOLDOWNS = [("30m", 1800.0), ("6h", 21600.0), ("1d", 86400.0), (90, 90.0), (1.5, 1.5)]


@pytest.mark.parametrize(("value", "seconds"), COOLDOWNS)
def test_cooldown_is_a_duration_or_seconds(value, seconds):
    (parsed,) = parse_rules([rule(QUICK, cooldown=value)])
    assert parsed.action.cooldown == seconds
    assert parse_rules([parsed.to_dict()]) == (parsed,)
    assert parse_rules([rule(QUICK)])[0].action.cooldown is None


BAD_COOLDOWNS = ["soon", "1.5h", "0s", 0, -60, True, float("inf"), [60], "6 hours"]


@pytest.mark.parametrize("value", BAD_COOLDOWNS, ids=repr)
def test_a_bad_cooldown_names_the_key_path(value):
    expected = (
        "alerts[0].action.cooldown: must be a duration such as 30m, 6h or 1d, or seconds as "
        f"a number > 0 (leave the key out for no cooldown); got {value!r}."
    )
    with pytest.raises(InvalidInput) as e:
        parse_rules([rule(QUICK, cooldown=value)])
    assert str(e.value) == expected
    with pytest.raises(InvalidInput) as e:  # when the monitor's config is read
        Monitor.from_dict({"endpoint": "credit-risk", "alerts": [rule(QUICK, cooldown=value)]})
    assert str(e.value) == expected


def test_a_misspelt_cooldown_is_refused():
    with pytest.raises(InvalidInput, match=r"alerts\[0\].action.cooldwn: unknown key 'cooldwn' "):
        parse_rules([rule(QUICK, cooldwn="1h")])


# -- shown -------------------------------------------------------------------------------------


def test_skipped_actions_read_clearly_in_the_cli_and_frame(store, invoke):
    rules = [rule(QUICK, cooldown="1d")]
    first = fire(store, rules, 0, SLICES[0])
    first.wait(30)
    second = fire(store, rules, 1, SLICES[1])
    record = second.wait(1)
    table = invoke("monitor", "alerts", "credit-risk", env={"COLUMNS": "1000"})  # no folds
    assert table.exit_code == 0, table.output
    ends = datetime.fromisoformat(record["cooldown_ends_at"]).astimezone()
    assert f"skipped: cooldown until {ends:%Y-%m-%d %H:%M:%S}" in table.stdout
    assert "succeeded" in table.stdout
    listed = json.loads(invoke("monitor", "alerts", "credit-risk", "--json").stdout)
    assert [a["action"]["status"] for a in listed] == ["succeeded", "skipped"]
    assert listed[1]["action"]["reason"] == record["reason"]
    frame = alerts_frame(list_alerts(store))
    assert json.loads(frame["action"][1]) == record


def test_monitor_run_says_which_actions_were_skipped(lw, invoke, tmp_path):
    import polars as pl

    start = datetime(2024, 5, 1, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "timestamp": [start + timedelta(minutes=m) for m in range(0, 60, 5)],
            "region": ["south", "north"] * 6,
            "x": [float(m) for m in range(12)],
            "prediction": [0, 1] * 6,
        }
    )
    lw.log_predictions("ep", frame, model="m/1")
    config = tmp_path / "monitor.yaml"
    config.write_text(
        "endpoint: ep\nslices: [region]\nmin_rows: 1\n"
        "checks: {schema: false, feature_drift: false, prediction_drift: false, "
        "performance: false}\n"
        "alerts:\n  - name: busy\n    metric: rows\n    above: 0\n    per_slice: true\n"
        f"    action: {{command: [{sys.executable!r}, -c, pass], cooldown: 1d}}\n"
    )
    result = invoke(
        "monitor", "run", str(config), "--start", "2024-05-01T00:00Z", "--end", "2024-05-01T01:00Z"
    )
    assert wait_for_actions(30)
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())  # as read, whatever the terminal's width
    assert out.count("alert fired: rows") == 3  # the whole window and its two slices
    (whole,) = [a for a in lw.list_alerts(endpoint="ep") if a.slice == ""]
    started = whole.id
    assert whole.action["status"] == "succeeded"
    skipped = out.split("action skipped: ")[1:]
    assert len(skipped) == 2
    for line in skipped:  # still under way, or (a quick command) finished but cooling down
        overlap = f"the action of alert {started} (rows) is still "
        cooldown = f"the last action of rule 'busy' (alert {started}) started "
        assert line.startswith((overlap, cooldown)), line
