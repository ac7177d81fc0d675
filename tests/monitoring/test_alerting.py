"""Alert rules, states, delivery and actions, on SQLite and PostgreSQL.

Windows are crafted :class:`WindowResult` sequences (hourly from T0); webhooks go to a real
HTTP receiver on 127.0.0.1; actions run real commands with this Python.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from loopwise.clock import to_us
from loopwise.errors import InvalidInput
from loopwise.ids import new_id
from loopwise.monitoring.alerting import delivery as alerting_delivery
from loopwise.monitoring.alerting.alerts import (
    alert_history,
    alerts_frame,
    evaluate_alerts,
    get_alert,
    list_alerts,
    wait_for_actions,
)
from loopwise.monitoring.alerting.delivery import mask_url, parse_webhooks
from loopwise.monitoring.alerting.rules import PERF_METRICS, parse_rules
from loopwise.monitoring.results import WindowResult
from loopwise.store.tables import alerts, monitor_values, monitor_windows

T0 = datetime(2026, 12, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
MODEL = "credit-risk/3"
BASE = {"perf.precision": 0.74, "perf.f1": 0.8, "prediction.std": 0.2}
SOUTH, NORTH = "region=south", "region=north"


def window(i: int, values: dict, *, model: str = MODEL, rows: int = 1000, labelled: int = 500):
    """Window ``i`` (hour i after T0); keys are metrics (whole window) or (slice, metric)."""
    figures = {(k if isinstance(k, tuple) else ("", k)): v for k, v in values.items()}
    return WindowResult(
        monitor="credit-mon",
        endpoint="credit-risk",
        start=T0 + i * HOUR,
        end=T0 + (i + 1) * HOUR,
        model=model,
        model_version_id=None,
        rows=rows,
        labelled=labelled,
        values=figures,
    )


def series(metric: str, values: list, start: int = 0) -> list[WindowResult]:
    return [window(start + i, {metric: v}) for i, v in enumerate(values)]


def run(store, rules, results, baselines=BASE, **kwargs):
    return evaluate_alerts(store, "credit-mon", "credit-risk", rules, results, baselines, **kwargs)


def kinds(events) -> list[tuple[str, int]]:
    """(kind, window index) of each event."""
    return [(e.kind, int((e.window_start - T0) / HOUR)) for e in events]


def at(hours: int) -> datetime:
    return T0 + hours * HOUR


SLOW = {"name": "slow", "metric": "latency_p95_ms", "above": 50}


# -- conditions and states ---------------------------------------------------------------------

CONDITIONS = [
    ({"metric": "drift.share", "above": 0.3}, [0.1, 0.5, 0.4, 0.2], 0.3),
    ({"metric": "perf.precision", "below": 0.7}, [0.8, 0.6, 0.65, 0.75], 0.7),
    ({"metric": "perf.precision", "below_baseline": 0.1}, [0.74, 0.6, 0.62, 0.7], 0.666),
    ({"metric": "latency_p95_ms", "above_baseline": 0.5}, [40, 70, 80, 50], 60.0),
    # |v - 0.2| > 0.1: the bound crossed last (0.05 is below 0.1) is the threshold
    ({"metric": "prediction.std", "change_from_baseline": 0.5}, [0.2, 0.35, 0.05, 0.25], 0.1),
]


@pytest.mark.parametrize(
    ("rule", "values", "threshold"), CONDITIONS, ids=[next(iter(c[0].values())) for c in CONDITIONS]
)
def test_each_condition_fires_and_resolves(store, rule, values, threshold):
    baselines = BASE | {"latency_p95_ms": 40.0}
    events = run(store, [{"name": "r", **rule}], series(rule["metric"], values), baselines)
    assert kinds(events) == [("fired", 1), ("resolved", 3)]
    assert [e.alert.state for e in events] == ["firing", "resolved"]
    (alert,) = list_alerts(store)
    assert {alert.id} == {e.alert.id for e in events}
    assert (alert.state, alert.rule, alert.metric, alert.slice) == (
        "resolved",
        "r",
        rule["metric"],
        "",
    )
    # window times: the run began at 1h; fired at the end of that window, last held at 3h,
    # resolved at the end of window 3
    assert (alert.window_start, alert.fired_at) == (at(1), at(2))
    assert (alert.last_seen_at, alert.resolved_at) == (at(3), at(4))
    assert alert.value == values[2]  # the latest figure while firing
    assert alert.threshold == pytest.approx(threshold)
    assert (alert.severity, alert.model) == ("critical", MODEL)


def test_message_says_what_where_how_much_and_what_to_do(store):
    rule = {"name": "precision-drop", "metric": "perf.precision", "below_baseline": 0.1}
    rule |= {"per_slice": True, "runbook": "https://wiki/retrain"}
    w = window(14, {"perf.precision": 0.72, (SOUTH, "perf.precision"): 0.61})
    (event,) = run(store, [rule], [w])
    assert event.alert.slice == SOUTH
    assert event.text == (
        "perf.precision on region=south fell to 0.61, 18% below the overall training baseline "
        "(region=south has none of its own) 0.74 (limit 10%) in window 2026-12-01 14:00–15:00 "
        "UTC for credit-risk/3. Check the feedback of recent windows; retrain on recent data "
        "if it lasts. Runbook: https://wiki/retrain"
    )
    assert event.alert.message == event.text
    (event,) = run(store, [rule], [window(15, {(SOUTH, "perf.precision"): 0.7})])
    assert event.kind == "resolved"
    assert event.text.startswith("Resolved: perf.precision on region=south is back to 0.7 ")


def test_not_repeated_while_firing(store, caplog):
    caplog.set_level(logging.INFO, logger="loopwise.alerts")
    rule = SLOW | {"severity": "warning"}
    events = run(store, [rule], series("latency_p95_ms", [60, 70, 80, 90, 55]))
    assert kinds(events) == [("fired", 0)]
    (alert,) = list_alerts(store, state="firing")
    assert (alert.value, alert.last_seen_at, alert.severity) == (55, at(5), "warning")
    records = [r for r in caplog.records if r.name == "loopwise.alerts"]
    assert [(r.alert_event, r.levelno) for r in records] == [("fired", logging.WARNING)]
    assert [d["target"] for d in alert.deliveries] == ["log"]


def test_for_windows_needs_consecutive_windows(store):
    rule = {"name": "drop2", "metric": "perf.f1", "below_baseline": 0.1, "for_windows": 2}
    # bad, ok, bad, no labels yet (None: skipped), bad, bad, ok
    events = run(store, [rule], series("perf.f1", [0.5, 0.8, 0.5, None, 0.5, 0.5, 0.9]))
    assert kinds(events) == [("fired", 4), ("resolved", 6)]
    alert = events[0].alert
    assert (alert.window_start, alert.fired_at) == (at(2), at(5))
    assert "2 windows in a row" in alert.message


def _store_window(store, w: WindowResult) -> None:
    """What the engine does with every evaluated window."""
    wid = new_id()
    row = {"id": wid, "monitor": w.monitor, "endpoint": w.endpoint, "model": w.model}
    row |= {"window_start": to_us(w.start), "window_end": to_us(w.end), "rows": w.rows}
    row |= {"model_version_id": None, "labelled": w.labelled, "computed_at": to_us(w.end)}
    values = [
        {"window_id": wid, "slice": s, "metric": m, "value": v} for (s, m), v in w.values.items()
    ]
    with store.db.write() as conn:
        conn.execute(insert(monitor_windows), [row])
        conn.execute(insert(monitor_values), values)


def test_for_windows_counts_stored_windows_of_earlier_calls(store):
    rule = {"name": "drop2", "metric": "perf.f1", "below_baseline": 0.1, "for_windows": 2}
    assert run(store, [rule], series("perf.f1", [0.5], start=0)) == []
    # Without stored figures a new call cannot know that window 0 held...
    assert run(store, [rule], series("perf.f1", [0.5], start=1)) == []
    # ...with them (the engine stores every window) the run continues across calls.
    _store_window(store, window(2, {"perf.f1": 0.5}))
    events = run(store, [rule], series("perf.f1", [0.5], start=3))
    assert kinds(events) == [("fired", 3)]
    assert events[0].alert.window_start == at(2)


def test_per_slice_and_feature_wildcards(store):
    rule = {"name": "drifting", "metric": "drift.*", "above": 0.2, "per_slice": True}
    first = {"drift.age": 0.1, "drift.income": 0.3, "drift.share": 0.5}
    first |= {(NORTH, "drift.age"): 0.4, (NORTH, "drift.income"): 0.1}
    second = {"drift.age": 0.1, "drift.income": 0.1, "drift.share": 0.0}
    second |= {(NORTH, "drift.age"): 0.5, (NORTH, "drift.income"): 0.1}
    events = run(store, [rule], [window(0, first), window(1, second)])
    assert [(e.kind, e.alert.slice, e.alert.metric) for e in events] == [
        ("fired", "", "drift.income"),
        ("fired", NORTH, "drift.age"),
        ("resolved", "", "drift.income"),
    ]  # drift.share is not a feature: drift.* leaves it out
    assert "Compare recent values of feature income" in events[0].text
    assert [a.metric for a in list_alerts(store, state="firing")] == ["drift.age"]
    # without per_slice only the whole window is watched
    whole = {"name": "missing-any", "metric": "missing.*", "above": 0.05}
    w = window(2, {"missing.income": 0.2, (NORTH, "missing.age"): 0.9})
    assert [(e.kind, e.alert.slice, e.alert.metric) for e in run(store, [whole], [w])] == [
        ("resolved", NORTH, "drift.age"),  # "drifting" is no longer among the rules
        ("fired", "", "missing.income"),
    ]


def test_none_and_missing_baselines_neither_fire_nor_resolve(store, caplog):
    rule = {"name": "drop", "metric": "perf.precision", "below_baseline": 0.1}
    assert run(store, [rule], series("perf.precision", [None, None])) == []
    events = run(store, [rule], series("perf.precision", [0.5, None, None], start=2))
    assert kinds(events) == [("fired", 2)]
    assert list_alerts(store)[0].state == "firing"
    # a model version without a baseline: skipped (and said in the log); still firing
    v4 = "credit-risk/4"
    with caplog.at_level(logging.WARNING, logger="loopwise.alerts"):
        w = window(5, {"perf.precision": 0.9}, model=v4)
        assert run(store, [rule], [w], {MODEL: BASE}) == []
    assert "no training baseline for perf.precision of model 'credit-risk/4'" in caplog.text
    assert list_alerts(store)[0].state == "firing"
    # with its own baselines: 0.85 < 0.9 (1.0 - 10%) still holds, 0.9 > 0.81 resolves
    w = window(6, {"perf.precision": 0.85}, model=v4)
    assert run(store, [rule], [w], {v4: {"perf.precision": 1.0}}) == []
    assert list_alerts(store)[0].value == 0.85
    w = window(7, {"perf.precision": 0.9}, model=v4)
    events = run(store, [rule], [w], {v4: {"perf.precision": 0.9}})
    assert kinds(events) == [("resolved", 7)]


def test_min_rows_skips_small_windows(store):
    rule = {"name": "drop", "metric": "perf.precision", "below": 0.7, "min_rows": 100}
    # perf.* counts labelled rows
    assert run(store, [rule], [window(0, {"perf.precision": 0.1}, labelled=20)]) == []
    figures = {(SOUTH, "perf.precision"): 0.1, (SOUTH, "labelled"): 5}
    figures |= {(NORTH, "perf.precision"): 0.1, (NORTH, "labelled"): 300}
    events = run(store, [rule | {"per_slice": True}], [window(1, figures)])
    assert [e.alert.slice for e in events] == [NORTH]


def test_re_evaluating_the_same_windows_creates_and_delivers_nothing_twice(store, receiver):
    hooks = [{"url": receiver.url + "/hook"}]
    windows = series("latency_p95_ms", [10, 60, 70, 20, 80, 90])
    first = run(store, [SLOW], windows, webhooks=hooks)
    assert kinds(first) == [("fired", 1), ("resolved", 3), ("fired", 4)]
    assert run(store, [SLOW], windows, webhooks=hooks) == []
    assert run(store, [SLOW], windows[2:5], webhooks=hooks) == []  # overlapping
    assert len(receiver.bodies) == 3
    assert [(a.state, a.value) for a in list_alerts(store)] == [("resolved", 70), ("firing", 90)]
    with store.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(alerts)).scalar() == 2


def test_state_survives_a_new_call_with_later_windows(store):
    (fired,) = run(store, [SLOW], series("latency_p95_ms", [10, 60, 70]))
    assert run(store, [SLOW], series("latency_p95_ms", [80], start=3)) == []
    (alert,) = list_alerts(store)
    assert (alert.id, alert.value, alert.last_seen_at) == (fired.alert.id, 80, at(4))
    (resolved,) = run(store, [SLOW], series("latency_p95_ms", [20], start=4))
    assert (resolved.kind, resolved.alert.id) == ("resolved", fired.alert.id)
    assert resolved.alert.resolved_at == at(5)


def test_alerts_of_a_removed_rule_are_resolved_once_and_delivered(store, receiver):
    hooks = [{"url": receiver.url + "/hook"}]
    drift = {"name": "drift", "metric": "drift.share", "above": 0.3}
    windows = [window(i, {"latency_p95_ms": 60, "drift.share": 0.5}) for i in range(2)]
    fired = run(store, [SLOW, drift], windows, webhooks=hooks)
    assert sorted(e.alert.rule for e in fired) == ["drift", "slow"]
    later = [window(2, {"latency_p95_ms": 70, "drift.share": 0.6})]
    (gone,) = run(store, [SLOW], later, webhooks=hooks)  # "drift" taken out of the config
    assert (gone.kind, gone.alert.rule, gone.alert.state) == ("resolved", "drift", "resolved")
    assert gone.alert.resolved_at == at(3)
    assert "no longer in the config of monitor 'credit-mon'" in gone.text
    assert run(store, [SLOW], [window(3, {"latency_p95_ms": 80})], webhooks=hooks) == []
    states = {a.rule: a.state for a in list_alerts(store)}
    assert states == {"slow": "firing", "drift": "resolved"}
    assert len(receiver.bodies) == 3  # two firings, one resolution
    (last,) = run(store, [], [window(4, {"latency_p95_ms": 90})], webhooks=hooks)  # no rules
    assert (last.alert.rule, last.kind) == ("slow", "resolved")
    assert list_alerts(store, state="firing") == []


def test_concurrent_evaluations_store_one_alert(store):
    windows = series("latency_p95_ms", [60, 70])
    barrier, found = threading.Barrier(3), []

    def evaluate():
        barrier.wait()
        found.extend(run(store, [SLOW], windows))

    threads = [threading.Thread(target=evaluate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert kinds(found) == [("fired", 0)]
    assert len(list_alerts(store)) == 1


def test_deliver_false_stores_states_only(store, receiver, tmp_path):
    marker = tmp_path / "ran"
    action = {"command": [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]}
    hooks = [{"url": receiver.url}]
    windows = series("latency_p95_ms", [60])
    (event,) = run(store, [SLOW | {"action": action}], windows, webhooks=hooks, deliver=False)
    assert (event.deliveries, event.action) == ([], None)
    assert run(store, [SLOW | {"action": action}], windows, webhooks=hooks) == []
    assert receiver.bodies == []
    assert not marker.exists()
    assert list_alerts(store)[0].deliveries == []


def test_model_versions_have_their_own_baselines(store):
    rule = {"name": "drop", "metric": "perf.precision", "below_baseline": 0.1}
    baselines = {MODEL: {"perf.precision": 0.74}, "credit-risk/4": {"perf.precision": 0.9}}
    w0 = window(0, {"perf.precision": 0.7})  # 0.7 >= 0.666
    w1 = window(1, {"perf.precision": 0.7}, model="credit-risk/4")  # 0.7 < 0.81
    (event,) = run(store, [rule], [w0, w1], baselines)
    assert (event.kind, event.alert.model) == ("fired", "credit-risk/4")
    assert "for credit-risk/4" in event.text


def test_a_slice_is_compared_with_its_own_baseline_when_it_has_one(store):
    # the case: overall baseline 0.9507, slices 0.9426 and 0.9522; a 10% drop from
    # the overall one (0.8556) was the threshold of both slices
    rule = {"name": "drop", "metric": "perf.accuracy", "below_baseline": 0.1, "per_slice": True}
    baselines = {
        MODEL: {
            "perf.accuracy": 0.9507,
            ("student=No", "perf.accuracy"): 0.9426,
            ("student=Yes", "perf.accuracy"): 0.9522,
        }
    }
    figures = {
        "perf.accuracy": 0.90,
        ("student=No", "perf.accuracy"): 0.85,  # >= 0.9426 * 0.9 = 0.8483 (the overall: fires)
        ("student=Yes", "perf.accuracy"): 0.856,  # < 0.9522 * 0.9 = 0.8570 (overall: does not)
        (SOUTH, "perf.accuracy"): 0.80,  # no baseline of its own: the overall one
    }
    events = run(store, [rule], [window(0, figures)], baselines)
    fired = {e.alert.slice: e.alert for e in events}
    assert set(fired) == {"student=Yes", SOUTH}
    assert fired["student=Yes"].threshold == pytest.approx(0.9522 * 0.9)
    assert "below the training baseline of student=Yes 0.9522 (limit 10%)" in (
        fired["student=Yes"].message
    )
    assert fired[SOUTH].threshold == pytest.approx(0.9507 * 0.9)
    assert "the overall training baseline (region=south has none of its own) 0.9507" in (
        fired[SOUTH].message
    )
    # the whole window keeps the overall baseline: 0.90 >= 0.8556
    assert "" not in fired


def test_stored_slice_baselines_are_read_for_alerts(store):
    from loopwise.monitoring import storage

    base = WindowResult(
        "credit-mon", "credit-risk", T0, T0, MODEL, None, 100, 100,
        {("", "perf.f1"): 0.8, (SOUTH, "perf.f1"): 0.9, (NORTH, "perf.f1"): None},
    )  # fmt: skip
    storage.save_baseline(store, base)
    assert storage.baselines(store, "credit-mon") == {MODEL: {"perf.f1": 0.8}}
    assert storage.baselines(store, "credit-mon", slices=True) == {
        MODEL: {"perf.f1": 0.8, (SOUTH, "perf.f1"): 0.9}
    }


def test_an_alert_keeps_the_value_that_fired_it_and_the_latest(store):
    (event,) = run(store, [SLOW], series("latency_p95_ms", [80, 60, 55]))
    assert event.alert.fired_value == event.alert.value == 80
    (alert,) = list_alerts(store)
    assert (alert.fired_value, alert.value) == (80, 55)
    assert "rose to 80" in alert.message
    assert alert.to_dict()["fired_value"] == 80
    assert list(alerts_frame([alert])["fired_value"]) == [80]


# -- queries -----------------------------------------------------------------------------------


def test_list_alerts_filters_history_and_frame(store):
    errors = {"name": "errors", "metric": "error_rate", "above": 0.01}
    figures = [(60, 0), (10, 0.05), (70, 0.05)]
    windows = [
        window(i, {"latency_p95_ms": v, "error_rate": e}) for i, (v, e) in enumerate(figures)
    ]
    run(store, [SLOW, errors], windows)
    everything = list_alerts(store)
    assert [(a.rule, a.state) for a in everything] == [
        ("slow", "resolved"),
        ("errors", "firing"),
        ("slow", "firing"),
    ]
    assert [a.rule for a in list_alerts(store, state="firing", rule="slow")] == ["slow"]
    assert list_alerts(store, endpoint="other") == []
    assert list_alerts(store, monitor="nope") == []
    # start: alerts active at or after it (the first slow alert resolved at 2h)
    assert len(list_alerts(store, start=at(2))) == 3
    later = list_alerts(store, start=at(2) + timedelta(minutes=1))
    assert [a.fired_at for a in later] == [at(2), at(3)]
    assert [(a.rule, a.fired_at) for a in list_alerts(store, limit=1)] == [("slow", at(3))]
    assert [(c.kind, c.alert.rule, c.at) for c in alert_history(store)] == [
        ("fired", "slow", at(1)),
        ("resolved", "slow", at(2)),
        ("fired", "errors", at(2)),
        ("fired", "slow", at(3)),
    ]
    frame = alerts_frame(everything)
    assert list(frame["rule"]) == ["slow", "errors", "slow"]
    assert {"deliveries", "action", "fired_at"} <= set(frame.columns)
    assert get_alert(store, everything[0].id) == everything[0]
    assert json.loads(json.dumps(everything[0].to_dict()))["fired_at"] == at(1).isoformat()
    with pytest.raises(InvalidInput, match="'state' parameter of list_alerts"):
        list_alerts(store, state="open")


def test_list_alerts_end_keeps_alerts_of_windows_begun_before_it(store):
    errors = {"name": "errors", "metric": "error_rate", "above": 0.01}
    figures = [(60, 0), (10, 0.05), (70, 0.05)]
    windows = [
        window(i, {"latency_p95_ms": v, "error_rate": e}) for i, (v, e) in enumerate(figures)
    ]
    run(store, [SLOW, errors], windows)
    # windows 0 and 1: the alerts they fired, including the one fired by window 1 at its end
    assert [(a.rule, a.fired_at) for a in list_alerts(store, end=at(2))] == [
        ("slow", at(1)),
        ("errors", at(2)),
    ]
    # window 2: the first slow alert, resolved at its start, is still active at it
    assert len(list_alerts(store, start=at(2), end=at(3))) == 3
    # from the middle of window 2: it is not
    assert [a.fired_at for a in list_alerts(store, start=at(2) + HOUR / 2, end=at(3))] == [
        at(2),
        at(3),
    ]
    assert list_alerts(store, end=T0) == []
    with pytest.raises(InvalidInput, match="'end' parameter of list_alerts must be after"):
        list_alerts(store, start=at(2), end=at(1))


def test_alert_history_keeps_the_changes_in_start_end(store):
    errors = {"name": "errors", "metric": "error_rate", "above": 0.01}
    figures = [(60, 0), (10, 0.05), (70, 0.05)]
    windows = [
        window(i, {"latency_p95_ms": v, "error_rate": e}) for i, (v, e) in enumerate(figures)
    ]
    run(store, [SLOW, errors], windows)
    changes = [(c.kind, c.alert.rule, c.at) for c in alert_history(store, start=at(2))]
    assert changes == [
        ("resolved", "slow", at(2)),
        ("fired", "errors", at(2)),
        ("fired", "slow", at(3)),
    ]
    assert [(c.kind, c.at) for c in alert_history(store, start=at(1), end=at(2))] == [
        ("fired", at(1))
    ]
    # since: the former name of start, warns
    with pytest.warns(DeprecationWarning, match=r"alert_history\(since=...\) is deprecated; use"):
        old = alert_history(store, since=at(2))
    assert [(c.kind, c.alert.rule, c.at) for c in old] == changes
    with pytest.raises(InvalidInput, match="'start' or its deprecated name 'since', not both"):
        alert_history(store, start=at(2), since=at(2))


def test_public_list_alerts_is_a_list_of_alerts_like_other_list_functions(lw):
    errors = {"name": "errors", "metric": "error_rate", "above": 0.01}
    figures = [(60, 0), (10, 0.05), (70, 0.05)]
    windows = [
        window(i, {"latency_p95_ms": v, "error_rate": e}) for i, (v, e) in enumerate(figures)
    ]
    run(lw.get_store(), [SLOW, errors], windows)
    found = lw.list_alerts(endpoint="credit-risk")
    assert type(found) is list
    assert all(isinstance(a, lw.Alert) for a in found)
    assert [(a.rule, a.state) for a in found] == [
        ("slow", "resolved"),
        ("errors", "firing"),
        ("slow", "firing"),
    ]
    assert [a.rule for a in lw.list_alerts(state="firing", rule="slow")] == ["slow"]
    # start / end as datetimes or ISO 8601 text; relative times count back from now
    assert [a.fired_at for a in lw.list_alerts(start=at(2) + HOUR / 2)] == [at(2), at(3)]
    assert len(lw.list_alerts(end=at(2).isoformat())) == 2
    assert len(lw.list_alerts(start="-1d")) == 2  # both still firing
    # since: the former name of start, warns
    with pytest.warns(DeprecationWarning, match=r"use list_alerts\(start=\.\.\.\)"):
        old = lw.list_alerts(since=at(2) + HOUR / 2)
    assert old == lw.list_alerts(start=at(2) + HOUR / 2)
    with pytest.raises(InvalidInput, match="'start' or its deprecated name 'since', not both"):
        lw.list_alerts(start=at(1), since=at(1))
    with pytest.raises(InvalidInput, match="no time zone"):
        lw.list_alerts(end=datetime(2026, 12, 1))


def test_public_wait_for_actions_lets_a_script_read_the_result(lw):
    action = {"command": [sys.executable, "-c", "import time; time.sleep(0.5); print('done')"]}
    run(lw.get_store(), [{**SLOW, "action": action}], series("latency_p95_ms", [80]))
    assert lw.wait_for_actions(timeout=30) is True
    (alert,) = lw.list_alerts()
    assert alert.action["status"] == "succeeded"
    assert alert.action["stdout"].strip() == "done"


def test_an_alerts_repr_is_one_short_line(store):
    action = {"command": [sys.executable, "-c", "print('x' * 5000)"]}
    (event,) = run(store, [{**SLOW, "action": action}], series("latency_p95_ms", [80, 60]))
    event.wait(30)
    (alert,) = list_alerts(store)
    assert len(alert.action["stdout"]) > 4000  # the output the repr leaves out
    text = repr(alert)
    assert "\n" not in text
    assert len(text) < 250, text
    for part in ("'slow' firing", "latency_p95_ms", "fired_value=80", "value=60", alert.id):
        assert part in text, text
    assert "action succeeded" in text


# -- webhooks ----------------------------------------------------------------------------------


class Receiver:
    """A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                owner.bodies.append(json.loads(self.rfile.read(length)))
                owner.paths.append(self.path)
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_webhooks_get_json_and_slack_bodies(store, receiver, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)  # every logger: no secret may show anywhere
    slack_path = "/services/T0ABC/B0DEF/sEcReTtOkEn99"
    monkeypatch.setenv("LW_TEST_SLACK", receiver.url + slack_path)
    hooks = [
        {"url": receiver.url + "/hook?token=s3cr3t-value", "format": "json"},
        {"url_env": "LW_TEST_SLACK", "format": "slack"},
    ]
    events = run(store, [SLOW], series("latency_p95_ms", [60, 10]), webhooks=hooks)
    assert kinds(events) == [("fired", 0), ("resolved", 1)]
    assert receiver.paths == ["/hook?token=s3cr3t-value", slack_path] * 2
    fired, slack, resolved, slack_resolved = receiver.bodies
    assert (fired["event"], fired["format_version"], fired["text"]) == ("fired", 1, events[0].text)
    assert fired["alert"]["id"] == events[0].alert.id
    assert (fired["alert"]["state"], fired["alert"]["value"]) == ("firing", 60)
    assert fired["alert"]["fired_at"] == at(1).isoformat()
    assert (resolved["event"], resolved["alert"]["state"]) == ("resolved", "resolved")
    assert slack["text"].startswith("[FIRING] latency_p95_ms rose to 60, above the limit 50")
    header, section, context = slack["blocks"]
    assert header["type"] == "header"
    assert header["text"]["text"] == "[FIRING] slow (critical) · credit-risk"
    assert section["text"]["type"] == "mrkdwn"
    assert "rose to 60" in section["text"]["text"]
    assert events[0].alert.id in context["elements"][0]["text"]
    assert slack_resolved["text"].startswith("[RESOLVED] Resolved:")
    (alert,) = list_alerts(store)
    masked = f"{receiver.url}/hook?token=***"
    assert [(d["target"], d["event"], d["status"]) for d in alert.deliveries] == [
        ("log", "fired", "delivered"),
        (masked, "fired", "delivered"),
        ("$LW_TEST_SLACK", "fired", "delivered"),
        ("log", "resolved", "delivered"),
        (masked, "resolved", "delivered"),
        ("$LW_TEST_SLACK", "resolved", "delivered"),
    ]
    assert alert.deliveries[1]["http_status"] == 200
    stored = json.dumps([a.to_dict() for a in list_alerts(store)])
    for secret in ("s3cr3t", "sEcReT", "T0ABC"):
        assert secret not in caplog.text
        assert secret not in stored


def test_unreachable_and_failing_webhooks_are_recorded_not_raised(
    store, receiver, monkeypatch, caplog
):
    monkeypatch.setattr(alerting_delivery.time, "sleep", lambda s: None)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook?key=topsecret"
    receiver.status = 503
    hooks = [{"url": dead, "retries": 1, "timeout": 2}, {"url": receiver.url, "retries": 2}]
    events = run(store, [SLOW], series("latency_p95_ms", [60, 10]), webhooks=hooks)
    log_record, down, busy = events[0].deliveries
    assert log_record["status"] == "delivered"
    assert (down["status"], down["attempts"], down["http_status"]) == ("failed", 2, None)
    assert "refused" in down["error"]
    assert down["target"].endswith("/hook?key=***")
    assert (busy["status"], busy["attempts"], busy["http_status"]) == ("failed", 3, 503)
    assert len(receiver.bodies) == 3
    # the later event of the same evaluation does not wait on webhooks that failed
    _, down_again, busy_again = events[1].deliveries
    assert (down_again["attempts"], busy_again["attempts"]) == (0, 0)
    assert "failed for an earlier event" in down_again["error"]
    assert len(receiver.bodies) == 3
    assert "topsecret" not in caplog.text
    assert "topsecret" not in json.dumps(list_alerts(store)[0].deliveries)
    # a 4xx is not retried; an unset url_env is a failed delivery too
    receiver.status = 404
    monkeypatch.delenv("LW_TEST_UNSET", raising=False)
    hooks = [hooks[1], {"url_env": "LW_TEST_UNSET"}]
    (event,) = run(store, [SLOW], series("latency_p95_ms", [70], start=2), webhooks=hooks)
    _, not_found, unset = event.deliveries
    assert (not_found["attempts"], not_found["http_status"]) == (1, 404)
    assert unset["error"] == "environment variable LW_TEST_UNSET is not set"


def test_mask_url():
    assert mask_url("https://hooks.slack.com/services/T000/B000/XXXX") == (
        "https://hooks.slack.com/services/***/***/***"
    )
    assert mask_url("http://user:pw@example.com:8080/api/v1/hook?token=abc&x=") == (
        "http://***@example.com:8080/api/v1/hook?token=***&x=***"
    )
    assert mask_url("https://example.com/webhooks/0123456789abcdef0123") == (
        "https://example.com/webhooks/***"
    )


# -- actions -----------------------------------------------------------------------------------

RETRAIN = """\
import json, os, sys
with open(sys.argv[1], "w") as f:
    json.dump({"argv": sys.argv[2:], "alert": json.loads(os.environ["LOOPWISE_ALERT"])}, f)
print("retrained")
"""


def test_action_runs_a_command_with_placeholders(store, tmp_path):
    script, out = tmp_path / "retrain.py", tmp_path / "action.json"
    script.write_text(RETRAIN)
    placeholders = ["{rule}", "{monitor}", "{endpoint}", "{slice}", "{metric}", "{value:.2f}"]
    placeholders += ["{model}", "{alert_id}", "{{literal}}"]
    command = [sys.executable, str(script), str(out), "--reason", *placeholders]
    rule = {"name": "retrain-on-drop", "metric": "perf.f1", "below_baseline": 0.1}
    rule |= {"per_slice": True, "action": {"command": command, "timeout": 60}}
    windows = [window(0, {(SOUTH, "perf.f1"): 0.5}), window(1, {(SOUTH, "perf.f1"): 0.4})]
    (event,) = run(store, [rule], windows)  # fires once, not again while firing
    result = event.wait(60)
    assert (result["status"], result["exit_code"]) == ("succeeded", 0)
    written = json.loads(out.read_text())
    assert written["argv"] == [
        "--reason",
        "retrain-on-drop",
        "credit-mon",
        "credit-risk",
        SOUTH,
        "perf.f1",
        "0.50",
        MODEL,
        event.alert.id,
        "{literal}",
    ]
    assert (written["alert"]["id"], written["alert"]["state"]) == (event.alert.id, "firing")
    stored = get_alert(store, event.alert.id).action
    assert stored == result
    assert (stored["kind"], stored["stdout"], stored["stderr"]) == ("command", "retrained\n", "")
    assert stored["command"][-2] == event.alert.id
    assert stored["started_at"] <= stored["finished_at"]
    assert "On firing, this rule runs:" in event.text
    assert wait_for_actions(10)


FAILURES = [
    ("import sys; sys.stderr.write('boom'); sys.exit(3)", 60, "failed", 3, "boom"),
    ("import time; time.sleep(30)", 0.5, "timed_out", -9, "killed after the timeout of 0.5 s"),
]


@pytest.mark.parametrize(
    ("code", "timeout", "status", "exit_code", "needle"), FAILURES, ids=["exit-code", "timeout"]
)
def test_failing_commands_are_recorded(store, code, timeout, status, exit_code, needle):
    action = {"command": [sys.executable, "-c", code], "timeout": timeout}
    rule = {"name": "retrain", "metric": "perf.f1", "below": 0.7, "action": action}
    (event,) = run(store, [rule], series("perf.f1", [0.5]))
    result = event.wait(60)
    assert (result["status"], result["exit_code"]) == (status, exit_code)
    assert needle in result["stderr"] + result.get("error", "")
    assert get_alert(store, event.alert.id).action == result


def test_a_missing_program_is_recorded(store):
    action = {"command": ["/nonexistent/retrain", "{rule}"]}
    rule = {"name": "retrain", "metric": "perf.f1", "below": 0.7, "action": action}
    (event,) = run(store, [rule], series("perf.f1", [0.5]))
    result = event.wait(60)
    assert (result["status"], result["exit_code"]) == ("error", None)
    assert result["error"].startswith("could not start '/nonexistent/retrain'")
    assert get_alert(store, event.alert.id).action == result


def test_long_output_keeps_the_tail(store):
    code = "import sys; sys.stdout.write('x' * 100000 + 'END')"
    rule = {"name": "r", "metric": "perf.f1", "below": 0.7}
    rule["action"] = {"command": [sys.executable, "-c", code]}
    (event,) = run(store, [rule], series("perf.f1", [0.5]))
    out = event.wait(60)["stdout"]
    assert out.endswith("END")
    assert len(out.encode()) <= alerting_delivery.TAIL_BYTES + len("…".encode())


# -- malformed rules and webhooks --------------------------------------------------------------

RULE = {"name": "r", "metric": "perf.precision", "below_baseline": 0.1}
NO_CONDITION = {"name": "r", "metric": "perf.precision"}


def command(*args: str) -> dict:
    return RULE | {"action": {"command": list(args)}}


BAD_RULES = [
    ([RULE | {"thresold": 1}], "alerts[0].thresold: unknown key 'thresold'"),
    ([NO_CONDITION], "alerts[0]: a rule needs exactly one condition of above, below, "),
    ([RULE | {"above": 1}], "rule 'r' gives 2 (above, below_baseline)"),
    (
        [RULE | {"metric": "perf.precison"}],
        "alerts[0].metric: unknown metric 'perf.precison' — did you mean 'perf.precision'?",
    ),
    ([RULE | {"metric": "latency_p95"}], "did you mean 'latency_p95_ms'?"),
    ([RULE | {"metric": "drift.inc*"}], "a wildcard stands for a whole name (drift.*)"),
    ([RULE | {"below_baseline": 10}], "alerts[0].below_baseline: is a fraction in [0, 1)"),
    ([RULE | {"below_baseline": "10%"}], "alerts[0].below_baseline: must be a finite number"),
    (
        [RULE | {"severity": "critcal"}],
        "alerts[0].severity: unknown severity 'critcal' — did you mean 'critical'?",
    ),
    ([RULE | {"for_windows": 0}], "alerts[0].for_windows: must be an integer [1, 1000]"),
    ([RULE | {"per_slice": "yes"}], "alerts[0].per_slice: must be true or false"),
    ([RULE | {"min_rows": -1}], "alerts[0].min_rows: must be an integer >= 0"),
    ([RULE, RULE], "alerts[1].name: rule name 'r' is used twice"),
    ([RULE | {"name": "has space"}], "alerts[0].name: is required"),
    (
        [RULE | {"action": {"command": "python retrain.py"}}],
        "alerts[0].action.command: must be a list of arguments",
    ),
    (
        [command("x", "{rul}")],
        "alerts[0].action.command[1]: unknown placeholder {rul} — did you mean 'rule'?",
    ),
    ([command("x", "{value:zz}")], "alerts[0].action.command[1]: '{value:zz}' does not format"),
    (
        [RULE | {"action": {"command": ["x"], "timout": 5}}],
        "alerts[0].action.timout: unknown key 'timout' — did you mean 'timeout'?",
    ),
    (
        [RULE | {"action": {"script": "retrain"}}],
        "alerts[0].action: name exactly one action kind (command, pipeline)",
    ),
    ("precision-drop", "alerts: must be a list of rules"),
    ([["r"]], "alerts[0]: must be a mapping"),
]


@pytest.mark.parametrize(("rules", "message"), BAD_RULES, ids=[m[:40] for _, m in BAD_RULES])
def test_malformed_rules_name_the_key_path(rules, message):
    with pytest.raises(InvalidInput) as e:
        parse_rules(rules)
    assert message in str(e.value)


HTTP = "http://x/h"
BAD_HOOKS = [
    (
        [{"url": "ftp://example.com/x?token=zzsecret"}],
        "webhooks[0].url: must be an http:// or https:// URL; got ftp://example.com/x?token=***",
    ),
    (
        [{"url": HTTP, "format": "slak"}],
        "webhooks[0].format: unknown format 'slak' — did you mean 'slack'?",
    ),
    ([{"url": HTTP, "url_env": "X"}], "webhooks[0]: give exactly one of url"),
    ([{"url": HTTP, "retries": 9}], "webhooks[0].retries: must be an integer in [0, 5]"),
    (
        [{"url": HTTP, "timeot": 9}],
        "webhooks[0].timeot: unknown key 'timeot' — did you mean 'timeout'?",
    ),
    ([{"url_env": "not a name"}], "webhooks[0].url_env: must be an environment variable name"),
    ({"url": HTTP}, "webhooks: must be a list"),
]


@pytest.mark.parametrize(("hooks", "message"), BAD_HOOKS, ids=[m[:40] for _, m in BAD_HOOKS])
def test_malformed_webhooks_name_the_key_path(hooks, message):
    with pytest.raises(InvalidInput) as e:
        parse_webhooks(hooks)
    assert message in str(e.value)
    assert "zzsecret" not in str(e.value)


def test_rules_round_trip_and_webhooks_hide_secrets():
    rules = parse_rules([command("x", "{rule}") | {"per_slice": True, "for_windows": 3}])
    assert parse_rules([rules[0].to_dict()]) == rules
    (hook,) = parse_webhooks([{"url": "https://h.example.com/services/T0/B0/SECRETX"}])
    assert "SECRETX" not in repr(hook)
    assert "SECRETX" not in str(hook.to_dict())
    assert hook.to_dict(secrets=True)["url"].endswith("SECRETX")


def test_bad_baselines_and_results_are_refused(store):
    windows = series("perf.precision", [0.5])
    with pytest.raises(InvalidInput, match="mixes"):
        run(store, [RULE], windows, {"perf.f1": 0.8, MODEL: {}})
    with pytest.raises(InvalidInput, match=r"baselines\[perf.f1\] must be a number"):
        run(store, [RULE], windows, {"perf.f1": "high"})
    with pytest.raises(InvalidInput, match=r"a key is a metric name or a \(slice, metric\)"):
        run(store, [RULE], windows, {MODEL: {("a", "b", "c"): 0.5}})
    other = WindowResult("other-mon", "credit-risk", T0, T0 + HOUR, MODEL, None, 1, 1)
    with pytest.raises(InvalidInput, match="WindowResults of monitor 'credit-mon'"):
        run(store, [RULE], [other])


def test_perf_metric_names_match_evaluation():
    from loopwise.evaluation import metrics

    known = {*metrics.LABEL_METRICS, *metrics.PROBABILITY_METRICS, *metrics.REGRESSION_METRICS}
    assert set(PERF_METRICS) == known


def test_docs_example_parses():
    import yaml

    text = (Path(__file__).parents[2] / "docs" / "alerts.md").read_text(encoding="utf-8")
    document = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert len(parse_rules(document["alerts"])) == 6
    assert len(parse_webhooks(document["webhooks"])) == 2
