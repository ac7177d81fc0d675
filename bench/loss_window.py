"""The loss window: how much of a tight metric-logging loop a SIGKILL takes away.

loopwise buffers metric points in memory and a background thread writes them; a process
killed with SIGKILL loses what was not committed yet. This script measures that window
on each backend, as a user sees it (no alternative tool runs here):

1. A child process (this script with ``--child``) starts a run and calls
   ``lw.log_metric("t", time.time(), step=step)`` in a tight loop, so a point's value is
   the moment it was logged.
2. At a random moment (uniform, 1 to 4 s after the loop started) this process notes the
   time and kills the child with SIGKILL. Until then it polls the run's latest stored
   value every 20 ms: the age of the newest committed point is what a kill at that
   moment would lose (``worst_moment``, the largest age seen).
3. It reads the series back: the loss is the kill time minus the newest stored point's
   value (when it was logged), in seconds. The stored steps must be 0, 1, 2, ... with no
   gap (a transaction is all or nothing, and points are committed in the order they were
   logged).

The child collects garbage once before its loop. Otherwise the interpreter's first full
collection, over the objects the imports made, comes in the loop's first second and
stalls every thread for 0.1 s of CPU (0.3 to 0.9 s with a load average of 7 to 10):
a one-off that any program importing pandas and SQLAlchemy pays, whatever it logs.

Repeated ``--trials`` times per backend (6 with ``--quick``, 30 otherwise), each in a new
child; printed as median, p95 (nearest rank) and max against the bound docs/tracking.md
states (``flush_interval``, 1 s by default). PostgreSQL runs in a fresh schema of
``--pg-url`` (dropped afterwards) and is skipped, with a note, when it is not reachable.

    python bench/loss_window.py [--quick] [--only NAME] [--workdir DIR] [--trials N]
                                [--pg-url URL]
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from _common import Results, exit_code, fmt, make_parser, progress, run_figures, work_folder

FIGURES = ("loss_s_sqlite", "loss_s_postgresql")
DEFAULT_PG_URL = os.environ.get("LOOPWISE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
CHILD_FLAG = "--child"  # internal: be the logging process (see child_main)
KILL_AFTER_S = (1.0, 4.0)  # the kill moment, uniform in this range after the loop starts
POLL_S = 0.02
BOUND_S = 1.0  # what docs/tracking.md promises: the last flush_interval (default 1 s)
KEY = "t"


def child_main(store_url: str, artifacts_url: str) -> None:
    """Log the time as fast as possible until killed; print the run id once ready."""
    import gc

    import loopwise as lw

    lw.configure(store_url=store_url, artifacts_url=artifacts_url)
    run = lw.start_run(experiment="loss-window")
    run.wait_for_environment()
    lw.flush()
    gc.collect()  # the imports' first full collection, before the loop: see the docstring
    print(run.id, time.time(), flush=True)
    log_metric, now = lw.log_metric, time.time
    step = 0
    while True:
        log_metric(KEY, now(), step=step)
        step += 1


@dataclass(frozen=True)
class Trial:
    loss: float  # seconds of points the kill took away
    worst_moment: float  # the largest age of the newest stored point seen while polling
    points_per_s: float  # how fast the child logged (0 when nothing was stored)


def one_trial(store_url: str, artifacts_url: str, rng: random.Random) -> Trial:
    """Start a logging child, watch what it has stored, kill it, and measure the loss."""
    import numpy as np

    import loopwise as lw

    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, store_url, artifacts_url],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready = child.stdout.readline().split()
        if len(ready) != 2:
            raise RuntimeError(f"the logging child exited early (code {child.wait()})")
        run_id, started_at = ready[0], float(ready[1])
        worst = 0.0
        kill_at = time.monotonic() + rng.uniform(*KILL_AFTER_S)
        while time.monotonic() < kill_at:
            newest = lw.get_run(run_id).metrics.get(KEY, started_at)
            worst = max(worst, time.time() - newest)
            time.sleep(max(0.0, min(POLL_S, kill_at - time.monotonic())))
        killed_at = time.time()
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:  # an error above: do not leave the child logging
            child.kill()
            child.wait()
    try:
        history = lw.get_metric_history(run_id, KEY)
    except lw.NotFound:  # not one transaction committed: all since the loop began is lost
        return Trial(killed_at - started_at, max(worst, killed_at - started_at), 0.0)
    steps = history["step"].to_numpy()
    if not (steps == np.arange(len(steps))).all():
        raise AssertionError(f"run {run_id}: the stored steps are not 0..{len(steps) - 1}")
    logged = history["value"].to_numpy()
    span = logged[-1] - logged[0]
    loss = killed_at - logged[-1]
    return Trial(loss, max(worst, loss), (len(steps) - 1) / span if span > 0 else 0.0)


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def pg_schema(url: str) -> tuple[str, str] | None:
    """A fresh schema in ``url`` and a store URL whose tables go there; None if unreachable."""
    import psycopg

    schema = f"lw_bench_loss_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as e:
        progress(f"PostgreSQL at {url} is not reachable, skipped: {str(e).strip()}")
        return None
    return schema, f"{url}?options=-csearch_path%3D{schema}"


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class Bench:
    def __init__(self, folder: Path, trials: int, pg_url: str) -> None:
        self.folder = folder
        self.trials = trials
        self.pg_url = pg_url
        self.results = Results("loss_window")
        self.failed_checks: list[str] = []
        self.rng = random.Random(20261207)

    def run(self, figure: str) -> None:
        backend = figure.removeprefix("loss_s_")
        artifacts = str(self.folder / f"{backend}-artifacts")
        if backend == "sqlite":
            self.measure(figure, f"sqlite:///{self.folder / 'loss.db'}", artifacts)
            return
        made = pg_schema(self.pg_url)
        if made is None:
            return
        schema, url = made
        try:
            self.measure(figure, url, artifacts)
        finally:
            from loopwise import context

            store = context.reset()  # close the pool before the schema goes
            if store is not None:
                store.db.engine.dispose()
            drop_schema(self.pg_url, schema)

    def measure(self, figure: str, store_url: str, artifacts_url: str) -> None:
        import loopwise as lw

        lw.configure(store_url=store_url, artifacts_url=artifacts_url)
        lw.search_runs()  # open the store here first, so watching costs a query and no more
        trials: list[Trial] = []
        for i in range(self.trials):
            try:
                trial = one_trial(store_url, artifacts_url, self.rng)
            except (AssertionError, RuntimeError) as e:
                self.failed_checks.append(f"{figure}, trial {i + 1}: {e}")
                continue
            trials.append(trial)
            progress(
                f"{figure} trial {i + 1}: lost {trial.loss:.3f} s, worst moment "
                f"{trial.worst_moment:.3f} s ({trial.points_per_s:,.0f} points/s)"
            )
        if not trials:
            return
        losses = [t.loss for t in trials]
        median, p95, worst = nearest_rank(losses, 0.5), nearest_rank(losses, 0.95), max(losses)
        worst_moment = max(t.worst_moment for t in trials)
        rates = [t.points_per_s for t in trials if t.points_per_s]
        rate = nearest_rank(rates, 0.5) if rates else 0.0
        met = "met" if max(worst, worst_moment) <= BOUND_S else "NOT met"
        print(
            f"{figure}: median {fmt(median)} s | p95 {fmt(p95)} s | max {fmt(worst)} s over "
            f"{len(trials)} kills; worst moment {fmt(worst_moment)} s | bound {BOUND_S} s: {met}"
            f"\n    a tight lw.log_metric loop, {rate:,.0f} points/s (median)",
            flush=True,
        )
        self.results.rows.append(
            {
                "bench": "loss_window",
                "metric": figure,
                "loopwise": median,
                "p95": p95,
                "max": worst,
                "worst_moment": worst_moment,
                "bound": BOUND_S,
                "ratio": BOUND_S / max(worst, worst_moment),
                "trials": len(trials),
                "points_per_s": rate,
            }
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CHILD_FLAG]:
        child_main(*argv[1:3])
        return 0
    parser = make_parser(__doc__.splitlines()[0], FIGURES)
    parser.add_argument("--trials", type=int, help="kills per backend (6 with --quick, else 30)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL database to use")
    args = parser.parse_args(argv)
    trials = args.trials or (6 if args.quick else 30)
    figures = [args.only] if args.only else list(FIGURES)
    mode = "quick" if args.quick else "full"
    print(f"bench loss_window ({mode}, {trials} kills each): {', '.join(figures)}", flush=True)
    with work_folder(args.workdir, "bench-loss-window-") as folder:
        bench = Bench(folder, trials, args.pg_url)
        run_figures(figures, bench.run)
    bench.results.print_results()
    return exit_code(bench.failed_checks)


if __name__ == "__main__":
    sys.exit(main())
