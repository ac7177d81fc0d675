"""Several processes on one store, and processes that die: nothing lost, nothing corrupt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

WRITER = textwrap.dedent(
    """
    import sys
    import loopwise as lw
    url, artifacts, worker, points = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    lw.configure(store_url=url, artifacts_url=artifacts)
    with lw.start_run(experiment="concurrent", name=f"worker-{worker}") as run:
        lw.log_param("worker", worker)
        for step in range(points):
            lw.log_metric("loss", step * 0.5, step=step)
            lw.log_metrics({"a": float(step), "b": -float(step)}, step=step)
            if step % 5000 == 0:
                lw.set_tag("progress", step)
    print(run.id)
    """
)

KILLED = textwrap.dedent(
    """
    import sys, time
    import loopwise as lw
    lw.configure(store_url=sys.argv[1], artifacts_url=sys.argv[2], flush_interval=0.2,
                 heartbeat_interval=0.2)
    run = lw.start_run(experiment="doomed", name="victim")
    print(run.id, flush=True)
    step = 0
    while True:
        lw.log_metric("loss", 1.0 / (step + 1), step=step)
        step += 1
        if step % 1000 == 0:
            time.sleep(0.01)
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_concurrent_writers_lose_nothing(store_url, tmp_path, lw):
    workers, points = 4, 20_000
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, store_url, str(tmp_path / "a"), str(i), str(points)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for i in range(workers)
    ]
    run_ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        run_ids.append(out.strip())
    frame = lw.search_runs(experiment="concurrent")
    assert set(frame["run_id"]) == set(run_ids)
    assert set(frame["status"]) == {"FINISHED"}
    for run_id in run_ids:
        for key, sign in (("loss", 0.5), ("a", 1.0), ("b", -1.0)):
            history = lw.get_metric_history(run_id, key)
            assert history["step"].tolist() == list(range(points))
            assert history["value"].tolist() == [sign * s for s in range(points)]


def test_sigkill_keeps_flushed_points_and_run_becomes_lost(store_url, tmp_path, lw):
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, store_url, str(tmp_path / "a")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read()
    time.sleep(2.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    # The store opens and is intact; the dead process's run is LOST, not RUNNING.
    run = lw.get_run(run_id)
    assert run.status == lw.RunStatus.LOST
    assert run.end_time is not None
    history = lw.get_metric_history(run_id, "loss")
    assert len(history) > 100
    # Flushed points form an unbroken prefix: every step from 0 to the last one.
    assert history["step"].tolist() == list(range(len(history)))
    assert history["value"].tolist() == [1.0 / (s + 1) for s in range(len(history))]


def test_stale_heartbeat_from_another_host_is_lost(store, monkeypatch):
    from sqlalchemy import update

    from loopwise.store.tables import runs as runs_table
    from loopwise.tracking import runs as run_service

    run_id = run_service.create_run(store, "remote")
    with store.db.write() as conn:
        conn.execute(
            update(runs_table)
            .where(runs_table.c.id == run_id)
            .values(host="elsewhere", heartbeat_at=1)
        )
    assert run_service.get_run(store, run_id).status == "LOST"
    # A heartbeat from the (still alive) owner brings it back.
    run_service.heartbeat(store, [run_id])
    assert run_service.get_run(store, run_id).status == "RUNNING"


def test_fresh_remote_run_stays_running(store):
    from sqlalchemy import update

    from loopwise.store.tables import runs as runs_table
    from loopwise.tracking import runs as run_service

    run_id = run_service.create_run(store, "remote")
    with store.db.write() as conn:
        conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(host="elsewhere"))
    assert run_service.get_run(store, run_id).status == "RUNNING"


@pytest.mark.parametrize("how", ["exit", "exception"])
def test_run_left_open_is_ended_at_exit(store_url, tmp_path, lw, how):
    body = "raise RuntimeError('boom')" if how == "exception" else "pass"
    script = textwrap.dedent(
        f"""
        import sys
        import loopwise as lw
        lw.configure(store_url=sys.argv[1], artifacts_url=sys.argv[2])
        run = lw.start_run(experiment="open")
        print(run.id, flush=True)
        for i in range(1000):
            lw.log_metric("m", float(i))
        {body}
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, store_url, str(tmp_path / "a")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    run_id = proc.stdout.strip()
    run = lw.get_run(run_id)
    assert run.status == ("FAILED" if how == "exception" else "FINISHED")
    assert len(lw.get_metric_history(run_id, "m")) == 1000
