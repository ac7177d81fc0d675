"""Pipeline schedules and the scheduler, on SQLite and PostgreSQL: cron ticks run once each
(also across restarts and between two scheduler processes), a downtime runs only its
latest tick, new dataset versions start one run each, and the CLI's commands and errors.

Runs are real child processes (``python -m loopwise pipelines run``), of a one-step
pipeline written to a file, so that each costs an interpreter start and nothing more.
The cron tests step a fake clock by passing ``now`` to :meth:`Scheduler.tick`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import update

from loopwise.clock import to_us
from loopwise.data.datasets import log_dataset
from loopwise.errors import InvalidInput, NotFound
from loopwise.pipelines import records
from loopwise.pipelines.scheduler import MAX_MISSED_RECORDED, Scheduler, claim_tick
from loopwise.pipelines.schedules import (
    create_schedule,
    cron_trigger,
    delete_schedule,
    get_schedule,
    list_schedules,
    list_ticks,
    new_data_trigger,
    parse_cron,
    set_enabled,
)
from loopwise.store.tables import pipeline_schedules

FLOW = '''
"""A one-step pipeline: notes its parameters (and the rows of its input dataset)."""
import time

import loopwise as lw


@lw.step(cache=False)
def note(tag: str, data: str | None, nap: float) -> dict:
    time.sleep(nap)
    rows = len(lw.load_dataset(data)) if data is not None else None
    return {"tag": tag, "data": data, "rows": rows}


@lw.pipeline(name="nightly")
def nightly(tag: str = "x", data: str | None = None, nap: float = 0.0):
    return note(tag, data, nap)
'''

SECOND = timedelta(seconds=1)


@pytest.fixture
def flow(tmp_path: Path) -> str:
    """The entrypoint of the pipeline ``nightly``."""
    path = tmp_path / "flow.py"
    path.write_text(FLOW)
    return f"{path}:nightly"


def finished(store, tick) -> records.PipelineRun:
    """The pipeline run a finished tick started."""
    assert tick.state == "succeeded", tick
    run = records.get_pipeline_run(store, tick.run_id)
    assert run.status.value == "FINISHED"
    return run


def ticks_by_state(store, schedule_id: str) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for tick in list_ticks(store, schedule_id):
        found.setdefault(tick.state, []).append(tick.key)
    return {state: sorted(keys) for state, keys in found.items()}


# -- cron -------------------------------------------------------------------------------------


def test_a_cron_tick_runs_once_also_after_a_restart(store, flow):
    schedule = create_schedule(
        store, flow, cron="0 3 * * *", params={"tag": "daily"}, timezone="UTC"
    )
    assert (schedule.pipeline, schedule.kind, schedule.spec) == ("nightly", "cron", "0 3 * * *")
    first = schedule.next_tick(schedule.created_at)
    assert (first.hour, first.minute) == (3, 0)
    scheduler = Scheduler(store)
    assert scheduler.tick(first - SECOND) == []  # not due yet

    (tick,) = scheduler.tick(first + 5 * SECOND)
    assert (tick.key, tick.state) == (to_us(first), "running")
    assert tick.trigger == cron_trigger(schedule.id, first)
    assert scheduler.tick(first + 6 * SECOND) == []  # claimed: not again, even while running
    assert scheduler.wait(120)
    (done,) = list_ticks(store, schedule.id)
    run = finished(store, done)
    assert run.trigger == f"cron:{schedule.id}@{first.isoformat()}"
    assert run.params == {"tag": "daily", "data": None, "nap": 0.0}
    assert run.output() == {"tag": "daily", "data": None, "rows": None}
    assert get_schedule(store, schedule.id).last_tick == to_us(first)

    # a restarted scheduler (a new object, a new holder) does not run the done tick again
    restarted = Scheduler(store, holder="after-restart")
    assert restarted.tick(first + 30 * SECOND) == []
    assert restarted.tick(first + timedelta(hours=23)) == []
    # the next day's tick runs, once
    (second,) = restarted.tick(first + timedelta(days=1, seconds=2))
    assert second.claimed_by == "after-restart"
    assert restarted.tick(first + timedelta(days=1, seconds=3)) == []
    assert restarted.wait(120)
    assert ticks_by_state(store, schedule.id) == {
        "succeeded": [to_us(first), to_us(first + timedelta(days=1))]
    }
    assert len(records.list_pipeline_runs(store, "nightly")) == 2


def test_after_a_downtime_only_the_latest_tick_runs(store, flow):
    schedule = create_schedule(store, flow, cron="0 * * * *")
    ticks = [schedule.next_tick(schedule.created_at)]
    for _ in range(2):
        ticks.append(schedule.next_tick(ticks[-1]))
    # the scheduler was down over three hourly ticks
    scheduler = Scheduler(store)
    (tick,) = scheduler.tick(ticks[-1] + timedelta(minutes=20))
    assert tick.key == to_us(ticks[-1])
    assert scheduler.wait(120)
    by_state = ticks_by_state(store, schedule.id)
    assert by_state == {"missed": [to_us(ticks[0]), to_us(ticks[1])], "succeeded": [tick.key]}
    missed = [t for t in list_ticks(store, schedule.id) if t.state == "missed"]
    assert all(t.run_id is None and t.finished_at is not None for t in missed)
    # another scheduler, and this one again: nothing more to run
    assert Scheduler(store).tick(ticks[-1] + timedelta(minutes=21)) == []
    assert scheduler.tick(ticks[-1] + timedelta(minutes=50)) == []
    assert len(records.list_pipeline_runs(store, "nightly")) == 1


def test_a_long_downtime_records_a_bounded_number_of_missed_ticks(store, flow):
    schedule = create_schedule(store, flow, cron="* * * * *")
    scheduler = Scheduler(store)
    (tick,) = scheduler.tick(schedule.created_at + timedelta(days=3))
    assert scheduler.wait(120)
    assert len(list_ticks(store, schedule.id, limit=1000)) == MAX_MISSED_RECORDED + 1
    assert tick.state == "running"


def test_a_tick_is_claimed_by_exactly_one_of_many_writers(store):
    """The claim itself: concurrent inserts of one tick's row, one winner."""
    with store.db.write() as conn:
        conn.execute(
            pipeline_schedules.insert().values(
                id="s1",
                pipeline="p",
                kind="cron",
                spec="* * * * *",
                params="{}",
                timezone="UTC",
                executor="inprocess",
                enabled=True,
                created_at=0,
            )
        )
    wins: list[bool] = []
    barrier = threading.Barrier(6)

    def claim(i: int) -> None:
        barrier.wait()
        with store.db.write() as conn:
            wins.append(claim_tick(conn, "s1", 60_000_000, "cron:s1@x", f"w{i}"))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 5 + [True]
    with store.db.write() as conn:  # the same key later: still taken
        assert not claim_tick(conn, "s1", 60_000_000, "cron:s1@x", "late")


def test_two_scheduler_processes_start_one_run_of_a_due_tick(store, store_url, flow, tmp_path):
    now = datetime.now(UTC)
    minute = (now - timedelta(minutes=2)).minute  # due two minutes ago, next in ~58
    schedule = create_schedule(store, flow, cron=f"{minute} * * * *")
    with store.db.write() as conn:  # made an hour ago: the tick two minutes ago is due
        conn.execute(
            update(pipeline_schedules)
            .where(pipeline_schedules.c.id == schedule.id)
            .values(created_at=to_us(now - timedelta(hours=1, minutes=5)))
        )
    command = [
        sys.executable, "-m", "loopwise",
        "--store-url", store_url, "--artifacts-url", str(tmp_path / "artifacts"),
        "scheduler", "--once", "--json",
    ]  # fmt: skip
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outputs]
    started = [tick for out, _ in outputs for tick in json.loads(out)]
    assert len(started) == 1, outputs
    assert started[0]["state"] == "succeeded"
    runs = records.list_pipeline_runs(store, "nightly")
    assert [r.id for r in runs] == [started[0]["run_id"]]
    assert runs[0].trigger == started[0]["trigger"]
    by_state = ticks_by_state(store, schedule.id)
    assert by_state["succeeded"] == [started[0]["key"]]
    assert set(by_state) <= {"succeeded", "missed"}


def test_a_paused_schedule_does_not_run_and_resumes_from_the_next_tick(store, flow):
    schedule = create_schedule(store, flow, cron="*/5 * * * *")
    set_enabled(store, schedule.id, False)
    scheduler = Scheduler(store)
    assert scheduler.tick(schedule.created_at + timedelta(hours=1)) == []
    resumed = set_enabled(store, schedule.id, True)
    assert resumed.enabled
    assert resumed.last_tick >= to_us(schedule.created_at)


def test_shutdown_interrupts_the_runs_still_going_after_the_grace(store, flow, monkeypatch):
    import loopwise.pipelines.scheduler as scheduler_module

    monkeypatch.setattr(scheduler_module, "INTERRUPT_WAIT_S", 3.0)
    schedule = create_schedule(store, flow, cron="0 3 * * *", params={"nap": 30})
    scheduler = Scheduler(store, grace_s=0.5)
    (tick,) = scheduler.tick(schedule.next_tick(schedule.created_at) + SECOND)
    deadline = time.monotonic() + 60
    while not records.list_pipeline_runs(store, "nightly"):  # the child has started the run
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)  # (and its step)
    started = time.monotonic()
    scheduler.shutdown()
    assert time.monotonic() - started < 20
    assert scheduler.running() == 0
    (done,) = list_ticks(store, schedule.id)
    assert done.state == "interrupted", done
    run = records.get_pipeline_run(store, done.run_id)
    # KILLED when the child's main thread got the KeyboardInterrupt; the runner waits on
    # its steps' futures without a timeout, which a SIGINT handled on another thread does
    # not wake, so it may stay RUNNING (killed after INTERRUPT_WAIT_S): a runner matter.
    assert run.status.value in {"KILLED", "RUNNING"}
    assert run.trigger == tick.trigger
    assert scheduler.tick(schedule.next_tick(schedule.created_at) + 2 * SECOND) == []


# -- new data ---------------------------------------------------------------------------------


def test_each_new_dataset_version_starts_one_run_with_it_as_input(store, flow):
    log_dataset(store, pd.DataFrame({"x": [1, 2]}), "loans")
    schedule = create_schedule(
        store, flow, on_new_data="datasets:/loans", input_param="data", params={"tag": "fresh"}
    )
    assert (schedule.kind, schedule.spec, schedule.last_tick) == ("new_data", "loans", 1)
    scheduler = Scheduler(store)
    assert scheduler.tick() == []  # version 1 was there before the schedule

    log_dataset(store, pd.DataFrame({"x": [1, 2, 3]}), "loans")
    (tick,) = scheduler.tick()
    assert (tick.key, tick.trigger) == (2, new_data_trigger("loans", 2))
    assert tick.trigger == "new_data:datasets:/loans/2"
    assert scheduler.tick() == []
    assert scheduler.wait(120)
    (done,) = list_ticks(store, schedule.id)
    run = finished(store, done)
    assert run.trigger == "new_data:datasets:/loans/2"
    assert run.output() == {"tag": "fresh", "data": "datasets:/loans/2", "rows": 3}

    # two more versions while no scheduler ran: each runs, once, in order
    log_dataset(store, pd.DataFrame({"x": [1]}), "loans")
    log_dataset(store, pd.DataFrame({"x": [5, 6, 7, 8]}), "loans")
    log_dataset(store, pd.DataFrame({"x": [0] * 9}), "other")  # another dataset: no run
    started = Scheduler(store, holder="second").tick()
    assert [t.key for t in started] == [3, 4]
    assert scheduler.tick() == []
    assert Scheduler(store).wait(1)
    deadline = time.monotonic() + 120
    while {t.state for t in list_ticks(store, schedule.id)} != {"succeeded"}:
        assert time.monotonic() < deadline, list_ticks(store, schedule.id)
        time.sleep(0.2)
    rows = {t.key: finished(store, t).output()["rows"] for t in list_ticks(store, schedule.id)}
    assert rows == {2: 3, 3: 1, 4: 4}


# -- checks -----------------------------------------------------------------------------------


def test_bad_schedules_get_clear_errors(store, flow):
    with pytest.raises(InvalidInput, match=r"the minute field '61' is not valid; it takes 0-59"):
        create_schedule(store, flow, cron="61 3 * * *")
    with pytest.raises(InvalidInput, match=r"has 6 field\(s\); write 5: minute hour"):
        parse_cron("0 0 3 * * *")
    with pytest.raises(InvalidInput, match=r"day-of-month '31' does not occur in month '2'"):
        parse_cron("0 0 31 2 *")
    with pytest.raises(InvalidInput, match=r"Unknown time zone 'Mars/Base'"):
        create_schedule(store, flow, cron="0 3 * * *", timezone="Mars/Base")
    with pytest.raises(NotFound, match=r"No pipeline named 'nightly-typo'"):
        create_schedule(store, "nightly-typo", cron="0 3 * * *")
    with pytest.raises(InvalidInput, match=r"Pipeline 'nightly' got wrong parameters"):
        create_schedule(store, flow, cron="0 3 * * *", params={"tga": "x"})
    with pytest.raises(NotFound, match=r"No dataset named 'loans' \(there are no datasets yet\)"):
        create_schedule(store, "nightly", on_new_data="datasets:/loans")
    log_dataset(store, pd.DataFrame({"x": [1]}), "loans")
    with pytest.raises(NotFound, match=r"No dataset named 'lons' — did you mean 'loans'\?"):
        create_schedule(store, "nightly", on_new_data="datasets:/lons")
    with pytest.raises(InvalidInput, match=r"not one version"):
        create_schedule(store, "nightly", on_new_data="datasets:/loans/1")
    with pytest.raises(InvalidInput, match=r"no parameter 'frame' to receive the new version"):
        create_schedule(store, "nightly", on_new_data="loans", input_param="frame")
    with pytest.raises(InvalidInput, match=r"exactly one trigger"):
        create_schedule(store, "nightly")
    assert list_schedules(store) == []
    assert parse_cron("@daily").latest(datetime(2024, 5, 1, 3, tzinfo=UTC)) == datetime(
        2024, 5, 1, tzinfo=UTC
    )


def test_a_cron_in_a_time_zone_follows_it(store, flow):
    schedule = create_schedule(store, flow, cron="30 2 * * *", timezone="Europe/Paris")
    summer = schedule.next_tick(datetime(2024, 7, 1, tzinfo=UTC))
    winter = schedule.next_tick(datetime(2024, 12, 1, tzinfo=UTC))
    assert (summer.hour, winter.hour) == (0, 1)  # 02:30 in Paris: UTC+2, then UTC+1


def test_deleting_a_schedule_stops_it(store, flow):
    schedule = create_schedule(store, flow, cron="* * * * *")
    delete_schedule(store, schedule.id)
    assert Scheduler(store).tick(schedule.created_at + timedelta(hours=1)) == []
    with pytest.raises(NotFound, match=r"loopwise pipelines schedules"):
        get_schedule(store, schedule.id)


# -- the CLI ----------------------------------------------------------------------------------


def test_the_cli_schedules_lists_and_unschedules(invoke, flow):
    made = invoke("pipelines", "schedule", flow, "--cron", "0 3 * * *", "-p", "tag=cli", "--json")
    assert made.exit_code == 0, made.output
    body = json.loads(made.stdout)
    assert (body["pipeline"], body["spec"], body["params"]) == (
        "nightly",
        "0 3 * * *",
        {"tag": "cli"},
    )
    assert body["next_tick"].endswith("T03:00:00+00:00")
    shown = invoke("pipelines", "schedule", "nightly", "--cron", "@hourly")
    assert shown.exit_code == 0, shown.output
    assert "Scheduled nightly (cron @hourly (UTC)): schedule" in shown.stdout

    listed = invoke("pipelines", "schedules")
    assert listed.exit_code == 0, listed.output
    assert body["id"] in listed.stdout
    assert "cron 0 3 * * * (UTC)" in listed.stdout
    assert "tag=cli" in listed.stdout
    as_json = json.loads(invoke("pipelines", "schedules", "--json").stdout)
    assert [s["spec"] for s in as_json] == ["0 3 * * *", "@hourly"]

    removed = invoke("pipelines", "unschedule", body["id"])
    assert removed.exit_code == 0, removed.output
    assert f"Removed schedule {body['id']} of nightly" in removed.stdout
    assert [s["spec"] for s in json.loads(invoke("pipelines", "schedules", "--json").stdout)] == [
        "@hourly"
    ]
    again = invoke("pipelines", "unschedule", body["id"])
    assert again.exit_code == 1
    assert f"Error: No pipeline schedule '{body['id']}'" in again.stderr


def test_the_cli_explains_bad_schedules(invoke, flow):
    cases = [
        (["--cron", "0 25 * * *"], "the hour field '25' is not valid; it takes 0-23"),
        (["--cron", "0 3 * *"], "has 4 field(s); write 5"),
        (["--on-new-data", "datasets:/loans"], "No dataset named 'loans'"),
        ([], "Give exactly one of --cron"),
        (["--cron", "0 3 * * *", "--as", "data"], "--as names the parameter of --on-new-data"),
        (["--cron", "0 3 * * *", "-p", "tag"], "--param 'tag' is not key=value"),
    ]
    for options, message in cases:
        result = invoke("pipelines", "schedule", flow, *options)
        assert result.exit_code == 1, (options, result.output)
        assert "Error: " in result.stderr, result.stderr
        assert message in result.stderr, result.stderr
    unknown = invoke("pipelines", "schedule", "churn-train", "--cron", "0 3 * * *")
    assert unknown.exit_code == 1
    assert "Error: No pipeline named 'churn-train'" in unknown.stderr
    assert "Traceback" not in unknown.output


def test_the_scheduler_stops_cleanly_on_sigterm(store_url, tmp_path):
    command = [
        sys.executable, "-m", "loopwise",
        "--store-url", store_url, "--artifacts-url", str(tmp_path / "artifacts"),
        "scheduler", "--poll-interval", "0.2",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    out = ""
    while "polling every" not in out:  # its first log line
        assert time.monotonic() < deadline, proc.communicate()
        assert proc.poll() is None, proc.communicate()
        out += os.read(proc.stderr.fileno(), 4096).decode()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
