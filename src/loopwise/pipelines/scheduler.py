"""The scheduler: starts the runs that pipeline schedules (:mod:`.schedules`) call for.

Every poll, :meth:`Scheduler.tick` reads the enabled schedules and, for each one that is
due, *claims* its tick before starting anything: it inserts the tick's row into
``pipeline_ticks``, whose primary key is (schedule, tick key), with ``ON CONFLICT DO
NOTHING``. The database lets exactly one insert of a key win, whichever process and
database (SQLite or PostgreSQL) it is, so of two schedulers sharing a store only one starts
the run, and a restarted scheduler finds the row and does not start it again. The
schedule's ``last_tick`` moves forward in the same transaction; it is what makes an idle
poll a read, not a write.

A cron schedule's due tick is the latest time of its expression at or before now that is
later than ``last_tick`` (or than the schedule's creation). When several passed while no
scheduler ran, only that latest one runs, once; the others are recorded ``missed`` (the
100 latest, so a long downtime of a minutely schedule costs 100 rows, not thousands). A
new-data schedule's ticks are the versions of its dataset numbered above ``last_tick``:
each one runs once, in order.

Why each run is a child process (``python -m loopwise pipelines run NAME --trigger ...``,
with Ctrl-C's handler restored: :data:`CHILD_MAIN`)
rather than a thread of the scheduler: the scheduler lives for weeks, and a thread would
run the pipeline's code as it was when first imported (modules stay in ``sys.modules``),
while a child loads the code as it is at the tick, as a person running it would. A child
can also be interrupted on shutdown (a thread cannot), cannot take the scheduler down with
it (a crash, a leak, a ``sys.exit``, a changed working directory), and returns its memory
when it ends. Its cost, about a second of interpreter start, is nothing next to a
scheduled pipeline. The run id is read from the child's ``--json`` output (or found by
the run's trigger text) and recorded on the tick when the child ends.

Shutdown (SIGTERM or SIGINT in :meth:`Scheduler.run_forever`): no new tick is claimed;
runs in progress get ``grace_s`` seconds to finish, then are interrupted (SIGINT: the
pipeline run is recorded KILLED, and ``loopwise pipelines resume`` can finish it) and
their ticks recorded ``interrupted``. A second signal skips the grace. Ticks are claimed
at most once, so a run that was interrupted, or whose scheduler died, is not run again by
the next scheduler: exactly once is "never twice", and what did not finish is visible in
its tick's state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.exc import IntegrityError

from loopwise.clock import now as clock_now
from loopwise.clock import now_us, require_zone, to_datetime, to_us
from loopwise.pipelines.schedules import (
    CLAIMED,
    CRON,
    ERROR,
    FAILED,
    INTERRUPTED,
    MISSED,
    NEW_DATA,
    RUNNING,
    SUCCEEDED,
    Schedule,
    Tick,
    cron_trigger,
    list_schedules,
    new_data_trigger,
    tick_from_row,
)
from loopwise.store import Store
from loopwise.store.tables import (
    dataset_versions,
    datasets,
    pipeline_runs,
    pipeline_schedules,
    pipeline_ticks,
)
from loopwise.store.upsert import insert_if_absent

log = logging.getLogger("loopwise.scheduler")

#: ``python -m loopwise``, with Python's Ctrl-C handler installed first: a child inherits
#: an ignored SIGINT (a scheduler started in the background of a shell ignores it), and
#: Python then never turns SIGINT into the KeyboardInterrupt that records the run KILLED.
CHILD_MAIN = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('loopwise', run_name='__main__', alter_sys=True)"
)
#: How many missed ticks of one downtime are recorded (the latest ones).
MAX_MISSED_RECORDED = 100
#: Seconds an interrupted run gets to record itself KILLED before it is killed.
INTERRUPT_WAIT_S = 15.0
TAIL_BYTES = 4096


def claim_tick(
    conn: Connection,
    schedule_id: str,
    key: int,
    trigger: str,
    holder: str,
    *,
    state: str = CLAIMED,
) -> bool:
    """Insert the row of tick ``key`` of ``schedule_id``; True when this call inserted it,
    False when the row was there (another scheduler, or an earlier run of this one, has
    it). The claim every exactly-once guarantee rests on."""
    now = now_us()
    row = {
        "schedule_id": schedule_id,
        "tick_key": key,
        "state": state,
        "trigger": trigger,
        "claimed_by": holder,
        "claimed_at": now,
        "finished_at": now if state == MISSED else None,
    }
    return insert_if_absent(conn, pipeline_ticks, row, keys=["schedule_id", "tick_key"])


@dataclass
class _Launch:
    """A run this scheduler started: its tick and its child process."""

    schedule: Schedule
    tick: Tick
    proc: subprocess.Popen[bytes]
    stdout: Any
    stderr: Any
    interrupted: bool = False
    thread: threading.Thread | None = field(default=None, repr=False)


class Scheduler:
    """Claims due ticks of the schedules in ``store`` and runs their pipelines.

    ``max_runs`` bounds the runs this scheduler has going at once: a due tick beyond it is
    left unclaimed for the next poll (or another scheduler). ``grace_s`` is how long
    shutdown waits for runs before interrupting them. ``python`` and ``cwd`` are the
    interpreter and working directory of the runs (default: this one's), which must
    import the pipelines' entrypoints.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_runs: int = 4,
        grace_s: float = 30.0,
        python: str | None = None,
        cwd: str | None = None,
        holder: str | None = None,
    ) -> None:
        if max_runs < 1:
            raise ValueError("max_runs must be at least 1")
        self.store = store
        self.max_runs = max_runs
        self.grace_s = grace_s
        self.python = python or sys.executable
        self.cwd = cwd
        self.holder = (holder or f"{socket.gethostname()}:{os.getpid()}")[:128]
        self._launches: dict[tuple[str, int], _Launch] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._hurry = threading.Event()

    # -- one poll ---------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[Tick]:
        """Claim the ticks due at ``now`` (default: the clock) and start their runs; the
        ticks started. Returns once they started: :meth:`wait` waits for them to end."""
        if self._stop.is_set():
            return []
        now = require_zone(now, "now") if now is not None else clock_now()
        started: list[Tick] = []
        for schedule in list_schedules(self.store, enabled_only=True):
            free = self.max_runs - self.running()
            if free <= 0:
                break
            try:
                if schedule.kind == CRON:
                    claimed = self._claim_cron(schedule, now)
                else:
                    claimed = self._claim_new_data(schedule, free)
            except IntegrityError:  # deleted while being claimed: nothing to run
                continue
            except Exception:  # one broken schedule must not stop the others
                log.exception("schedule %s (%s): could not claim", schedule.id, schedule.pipeline)
                continue
            started.extend(self._start(schedule, tick) for tick in claimed)
        return started

    def _claim_cron(self, schedule: Schedule, now: datetime) -> list[Tick]:
        cron = schedule.cron
        due = cron.latest(now)
        if due is None:
            return []
        due_us = to_us(due)
        floor = schedule.last_tick if schedule.last_tick is not None else to_us(schedule.created_at)
        if due_us <= floor:  # the common case: nothing due, and no write
            return []
        s = pipeline_schedules.c
        with self.store.db.write() as conn:
            row = conn.execute(
                select(s.enabled, s.last_tick, s.created_at).where(s.id == schedule.id)
            ).first()
            if row is None or not row.enabled:
                return []
            floor = row.last_tick if row.last_tick is not None else row.created_at
            if due_us <= floor:  # another scheduler got here first
                return []
            since = to_datetime(floor)
            assert since is not None
            missed = cron.before(due, since, MAX_MISSED_RECORDED)
            for moment in missed:
                trigger = cron_trigger(schedule.id, moment)
                claim_tick(conn, schedule.id, to_us(moment), trigger, self.holder, state=MISSED)
            trigger = cron_trigger(schedule.id, due)
            won = claim_tick(conn, schedule.id, due_us, trigger, self.holder)
            conn.execute(
                update(pipeline_schedules)
                .where(s.id == schedule.id, or_(s.last_tick.is_(None), s.last_tick < due_us))
                .values(last_tick=due_us)
            )
            tick = self._read_tick(conn, schedule.id, due_us) if won else None
        if missed:
            more = "at least " if len(missed) == MAX_MISSED_RECORDED else ""
            log.warning(
                "schedule %s (%s): %s%d tick(s) passed while no scheduler ran, from %s; "
                "recorded missed, only the latest (%s) runs",
                schedule.id, schedule.pipeline, more, len(missed),
                missed[-1].isoformat(), due.isoformat(),
            )  # fmt: skip
        return [tick] if tick is not None else []

    def _claim_new_data(self, schedule: Schedule, limit: int) -> list[Tick]:
        floor = schedule.last_tick or 0
        v = dataset_versions.c
        query = (
            select(v.version)
            .join(datasets, datasets.c.id == v.dataset_id)
            .where(datasets.c.name == schedule.spec, v.version > floor)
            .order_by(v.version)
            .limit(limit)
        )
        with self.store.db.read() as conn:
            versions = list(conn.execute(query).scalars())
        if not versions:
            return []
        s = pipeline_schedules.c
        claimed: list[Tick] = []
        with self.store.db.write() as conn:
            row = conn.execute(select(s.enabled).where(s.id == schedule.id)).first()
            if row is None or not row.enabled:
                return []
            for version in versions:
                trigger = new_data_trigger(schedule.spec, version)
                if claim_tick(conn, schedule.id, version, trigger, self.holder):
                    claimed.append(self._read_tick(conn, schedule.id, version))
            conn.execute(
                update(pipeline_schedules)
                .where(s.id == schedule.id, or_(s.last_tick.is_(None), s.last_tick < versions[-1]))
                .values(last_tick=versions[-1])
            )
        return claimed

    @staticmethod
    def _read_tick(conn: Connection, schedule_id: str, key: int) -> Tick:
        t = pipeline_ticks.c
        row = conn.execute(
            select(pipeline_ticks).where(t.schedule_id == schedule_id, t.tick_key == key)
        ).one()
        return tick_from_row(row)

    # -- runs -------------------------------------------------------------------------------

    def argv(self, schedule: Schedule, tick: Tick) -> list[str]:
        """The command that runs ``tick`` of ``schedule``."""
        params = dict(schedule.params)
        if schedule.kind == NEW_DATA:
            assert schedule.input_param is not None
            params[schedule.input_param] = f"datasets:/{schedule.spec}/{tick.key}"
        argv = [self.python, "-c", CHILD_MAIN, "pipelines", "run", schedule.pipeline]
        argv += ["--trigger", tick.trigger, "--executor", schedule.executor, "--json"]
        for key, value in params.items():  # as JSON, which --param reads back exactly
            argv += ["--param", f"{key}={json.dumps(value)}"]
        return argv

    def _env(self) -> dict[str, str]:
        """The child's environment: this one's, on this scheduler's store. The URLs go in
        the environment, not the command line, where ``ps`` would show a password."""
        env = dict(os.environ)
        env.pop("LOOPWISE_TRACKING_URL", None)  # the scheduler works on the store itself
        env["LOOPWISE_STORE_URL"] = self.store.settings.store_url
        env["LOOPWISE_ARTIFACTS_URL"] = str(self.store.settings.artifacts_url)
        return env

    def _start(self, schedule: Schedule, tick: Tick) -> Tick:
        argv = self.argv(schedule, tick)
        # (closed by the watcher once the child ended)
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=self._env(),
                cwd=self.cwd,
                start_new_session=os.name == "posix",  # a terminal's Ctrl-C is ours to pass on
            )
        except OSError as e:
            out.close()
            err.close()
            error = f"could not start {argv[0]!r}: {e.strerror or e}"
            log.error("schedule %s: tick %s: %s", schedule.id, tick.trigger, error)
            return self._finish(tick, ERROR, None, error)
        log.info("schedule %s (%s): started %s", schedule.id, schedule.pipeline, tick.trigger)
        launch = _Launch(schedule, tick, proc, out, err)
        launch.thread = threading.Thread(
            target=self._watch, args=(launch,), name="loopwise-scheduled-run", daemon=True
        )
        with self._lock:
            self._launches[(tick.schedule_id, tick.key)] = launch
        try:
            return self._finish(tick, RUNNING, None, None, final=False)
        finally:  # (the child runs either way: watch it)
            launch.thread.start()

    def _watch(self, launch: _Launch) -> None:
        """Wait for the child, then record the tick's outcome and the run id."""
        tick = launch.tick
        try:
            code = launch.proc.wait()
            stdout = _read_all(launch.stdout)
            stderr = _tail(launch.stderr)
            run = _last_json(stdout)
            run_id = run.get("id") if run else None
            if run_id is None:
                run_id = self._run_by_trigger(tick.trigger)
            if launch.interrupted:
                state = INTERRUPTED
            elif code == 0:
                state = SUCCEEDED
            else:
                state = FAILED if run_id is not None else ERROR
            error = None if code == 0 else (stderr.strip() or f"exit code {code}")
            self._finish(tick, state, run_id, error)
            log.log(
                logging.INFO if state == SUCCEEDED else logging.WARNING,
                "schedule %s (%s): %s %s (run %s)",
                tick.schedule_id, launch.schedule.pipeline, tick.trigger, state, run_id,
            )  # fmt: skip
        except Exception:
            log.exception("schedule %s: could not record the end of %s", tick.schedule_id, tick)
        finally:
            launch.stdout.close()
            launch.stderr.close()
            with self._lock:
                self._launches.pop((tick.schedule_id, tick.key), None)

    def _run_by_trigger(self, trigger: str) -> str | None:
        r = pipeline_runs.c
        with self.store.db.read() as conn:
            return conn.execute(
                select(r.run_id).where(r.trigger == trigger).order_by(r.created_at.desc()).limit(1)
            ).scalar()

    def _finish(
        self, tick: Tick, state: str, run_id: str | None, error: str | None, *, final: bool = True
    ) -> Tick:
        t = pipeline_ticks.c
        values: dict[str, Any] = {"state": state, "run_id": run_id, "error": error}
        if final:
            values["finished_at"] = now_us()
        with self.store.db.write() as conn:
            conn.execute(
                update(pipeline_ticks)
                .where(t.schedule_id == tick.schedule_id, t.tick_key == tick.key)
                .values(values)
            )
            row = conn.execute(
                select(pipeline_ticks).where(
                    t.schedule_id == tick.schedule_id, t.tick_key == tick.key
                )
            ).first()
        return tick_from_row(row) if row is not None else tick

    def running(self) -> int:
        """How many runs this scheduler has going."""
        with self._lock:
            return len(self._launches)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the runs this scheduler started; True when all have ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                threads = [launch.thread for launch in self._launches.values() if launch.thread]
            if not threads:
                return True
            for thread in threads:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(left)
            if deadline is not None and time.monotonic() >= deadline:
                return self.running() == 0

    # -- the loop ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming ticks (a second call: stop waiting for the runs too)."""
        if self._stop.is_set():
            self._hurry.set()
        self._stop.set()

    def run_forever(self, poll_interval: float = 5.0) -> None:
        """Poll every ``poll_interval`` seconds until :meth:`stop`, SIGTERM or SIGINT, then
        shut down (see the module doc). A poll that fails (the store is down) is logged and
        the next one tried."""
        restore = self._handle_signals()
        log.info("scheduler %s: polling every %g s", self.holder, poll_interval)
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception:
                    log.exception("scheduler %s: poll failed; trying again", self.holder)
                self._stop.wait(poll_interval)
        finally:
            restore()
            self.shutdown()

    def _handle_signals(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: self.stop())

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def shutdown(self, grace_s: float | None = None) -> None:
        """Claim nothing more; give the runs ``grace_s`` seconds (default: the scheduler's)
        to end, then interrupt them (their ticks: ``interrupted``)."""
        self._stop.set()
        grace = self.grace_s if grace_s is None else grace_s
        deadline = time.monotonic() + grace
        while self.running() and time.monotonic() < deadline and not self._hurry.is_set():
            self.wait(0.2)
        with self._lock:
            left = list(self._launches.values())
        for launch in left:
            launch.interrupted = True
            log.warning("interrupting %s (pid %d)", launch.tick.trigger, launch.proc.pid)
            _signal(launch.proc, signal.SIGINT)
        if left and not self.wait(INTERRUPT_WAIT_S):
            with self._lock:
                for launch in self._launches.values():
                    _signal(launch.proc, signal.SIGKILL)
            self.wait(10)


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.name == "posix":
            os.killpg(proc.pid, sig)
        else:
            proc.terminate()


def _read_all(f: Any) -> str:
    f.seek(0)
    return f.read().decode("utf-8", errors="replace")


def _tail(f: Any) -> str:
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - TAIL_BYTES))
    text = f.read().decode("utf-8", errors="replace")
    return ("…" + text) if size > TAIL_BYTES else text


def _last_json(text: str) -> dict[str, Any] | None:
    """The JSON object that ends ``text`` (what ``--json`` printed last; the steps may have
    printed before it)."""
    end = text.rstrip()
    start = len(end)
    while True:
        start = end.rfind("{", 0, start)
        if start < 0:
            return None
        if start == 0 or end[start - 1] == "\n":
            try:
                found = json.loads(end[start:])
            except ValueError:
                pass
            else:
                return found if isinstance(found, dict) else None


__all__ = ["MAX_MISSED_RECORDED", "Scheduler", "claim_tick"]
