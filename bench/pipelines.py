"""Pipelines: loopwise's per-step overhead and cache against Prefect 3, same chains.

Figures (see bench/README.md):

1. ``step_overhead_ms``: per step, a chain of 100 trivial steps (each adds 1), uncached
   (``cache=False``) on a fresh SQLite store, in process; against Prefect's flow of 100
   chained tasks (``cache_policy=NO_CACHE``), per task. Target <= 2 ms.
2. ``cache_hit_ms``: per step, the same chain run again, every step from the cache;
   against the same Prefect flow with task caching (``INPUTS + TASK_SOURCE``, results
   persisted), run again. Target <= 5 ms.
3. ``pipeline_100_steps_s``: the whole uncached 100-step run against the whole Prefect
   flow run. Target >= 10x faster.
4. ``fan_out_s``: one step feeding 50 parallel steps feeding one (52 steps), uncached,
   loopwise's thread executor against Prefect's ``.submit`` on its thread pool runner.
5. ``frame_chain_s``: a chain of 10 steps (5 with --quick) each taking and returning a
   100,000-row pandas frame, uncached. loopwise stores every frame as a dataset version
   (Parquet, content fingerprint); Prefect keeps them in memory (no result persistence).

Beside figure 1 the floor is printed: the same 100 function calls with the least
recording one could do, one SQLite row each in WAL mode (``synchronous=NORMAL``, as
loopwise), one transaction per call (what survives a crash step by step) and all in one.

Prefect runs locally, in a child process of this script (its settings are read at import):
``PREFECT_HOME`` is a fresh folder and no ``PREFECT_API_URL`` is set, so Prefect starts its
ephemeral API server on SQLite. Every timing is the median of several runs after a warm-up
run (which also starts Prefect's server).

    python bench/pipelines.py [--quick] [--only NAME] [--workdir DIR]
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import Results, exit_code, make_parser, progress, run_figures, work_folder

FIGURES = (
    "step_overhead_ms",
    "cache_hit_ms",
    "pipeline_100_steps_s",
    "fan_out_s",
    "frame_chain_s",
)
CHILD_FLAG = "--child"  # internal: the Prefect side, in a fresh process (see child_main)
CHILD_PREFIX = "CHILD "
LENGTH = 100  # steps of the chain
WIDTH = 50  # parallel steps of the fan-out
FRAME_ROWS = 100_000
FRAME_STEPS = {True: 5, False: 10}  # by --quick
REPEAT = {True: 3, False: 7}  # timed runs (median), by --quick
TARGETS = {"step_overhead_ms": 2.0, "cache_hit_ms": 5.0, "pipeline_100_steps_s": 10.0}


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def median_s(fn, repeat: int, warmup: int = 1) -> tuple[float, list[float], Any]:
    """Median seconds of ``repeat`` calls of ``fn(i)`` after ``warmup`` untimed ones, every
    timing, and the last result. ``i`` numbers the calls, so each may take new inputs."""
    value = None
    for i in range(warmup):
        value = fn(i)
    times = []
    for i in range(warmup, warmup + repeat):
        start = time.perf_counter()
        value = fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, value


def make_frame(rows: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "y": rng.integers(0, 1000, rows),
            "label": rng.choice(["a", "b", "c"], rows),
        }
    )


# -- loopwise's side --------------------------------------------------------------------------

import loopwise as lw  # noqa: E402 (after the helpers: the child process does not need it)


@lw.step
def inc(x: int) -> int:
    return x + 1


@lw.pipeline(name="bench-chain")
def chain(length: int = LENGTH, start: int = 0):
    x = inc(start)
    for _ in range(length - 1):
        x = inc(x)
    return x


@lw.step
def spread(x: int, i: int) -> int:
    return x + i


@lw.step
def gather(values: list) -> int:
    return sum(values)


@lw.pipeline(name="bench-fan-out")
def fan_out(width: int = WIDTH, start: int = 0):
    first = inc(start)
    return gather([spread(first, i) for i in range(width)])


@lw.step
def shift(frame):  # a pandas frame in, a new one out
    return frame.assign(x=frame["x"] + 1.0)


@lw.step
def frame_of(rows: int, salt: int):
    frame = make_frame(rows)
    return frame.assign(y=frame["y"] + salt)


@lw.pipeline(name="bench-frames")
def frames(steps: int = 10, rows: int = FRAME_ROWS, salt: int = 0):
    frame = frame_of(rows, salt)
    for _ in range(steps - 1):
        frame = shift(frame)
    return frame


def floor_s(folder: Path, repeat: int) -> dict[str, float]:
    """The hand-written floor: 100 calls of ``x + 1`` with one SQLite row written per call,
    a commit per call or one for all (WAL, synchronous=NORMAL, like loopwise's store)."""
    db = sqlite3.connect(folder / "floor.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE steps (run INTEGER, step INTEGER, value INTEGER, at REAL)")

    def plain(run: int) -> int:
        x = 0
        for _ in range(LENGTH):
            x = x + 1
        return x

    def commit_each(run: int) -> int:
        x = 0
        for i in range(LENGTH):
            x = x + 1
            db.execute("BEGIN")
            db.execute("INSERT INTO steps VALUES (?, ?, ?, ?)", (run, i, x, time.time()))
            db.execute("COMMIT")
        return x

    def one_transaction(run: int) -> int:
        x = 0
        db.execute("BEGIN")
        for i in range(LENGTH):
            x = x + 1
            db.execute("INSERT INTO steps VALUES (?, ?, ?, ?)", (run, i, x, time.time()))
        db.execute("COMMIT")
        return x

    found = {}
    for name, fn in (("calls", plain), ("commit_each", commit_each), ("one_txn", one_transaction)):
        found[name], _, value = median_s(fn, max(repeat, 5))
        assert value == LENGTH
    db.close()
    return found


class Bench:
    def __init__(self, folder: Path, quick: bool) -> None:
        self.folder = folder
        self.quick = quick
        self.repeat = REPEAT[quick]
        self.results = Results("pipelines")
        self.failed_checks: list[str] = []
        self.store = folder / "loopwise"
        lw.configure(
            store_url=f"sqlite:///{self.store}/lw.db", artifacts_url=str(self.store / "artifacts")
        )
        self._prefect: dict[str, Any] | None = None
        self._lw: dict[str, Any] = {}

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.failed_checks.append(message)
            progress(f"CHECK FAILED: {message}")

    # -- measurements, each once -----------------------------------------------------------

    def lw_chain(self) -> dict[str, Any]:
        """Uncached and cached runs of the 100-step chain, a 1-step run (the fixed cost of a
        run) and the floor."""
        if "chain" in self._lw:
            return self._lw["chain"]

        def uncached(i: int) -> int:
            run = lw.run_pipeline(chain, params={"length": LENGTH}, cache=False)
            return run.output()

        def one_step(i: int) -> int:
            return lw.run_pipeline(chain, params={"length": 1}, cache=False).output()

        progress("loopwise: 100-step chain, uncached")
        seconds, times, value = median_s(uncached, self.repeat)
        self.check(value == LENGTH, f"loopwise's chain answered {value}, not {LENGTH}")
        single, _, _ = median_s(one_step, self.repeat)

        def cached(i: int) -> lw.PipelineRun:
            return lw.run_pipeline(chain, params={"length": LENGTH, "start": 1000})

        progress("loopwise: the same chain from the cache")
        lw.run_pipeline(chain, params={"length": LENGTH, "start": 1000}, cache=False)  # fills it
        hit, hit_times, run = median_s(cached, self.repeat)
        self.check(all(s.cached for s in run.steps), "loopwise's second run was not all cached")
        self.check(run.output() == 1000 + LENGTH, "loopwise's cached chain answered otherwise")
        progress("floor: 100 calls + 100 SQLite rows")
        found = {
            "seconds": seconds,
            "times": times,
            "one_step_s": single,
            "cached_s": hit,
            "cached_times": hit_times,
            "floor": floor_s(self.folder, self.repeat),
        }
        self._lw["chain"] = found
        return found

    def prefect(self) -> dict[str, Any]:
        """Every Prefect figure, measured once in a child process."""
        if self._prefect is None:
            spec = {
                "home": str(self.folder / "prefect-home"),
                "repeat": self.repeat,
                "frame_steps": FRAME_STEPS[self.quick],
            }
            progress("prefect: starting a child process (ephemeral API server on SQLite)")
            env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
            env.update(
                PREFECT_HOME=spec["home"],
                PREFECT_LOGGING_LEVEL="WARNING",
                PREFECT_SERVER_EPHEMERAL_ENABLED="true",
                # its server's start takes over the default 20 s on a busy 2-core machine
                PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
                PREFECT_SERVER_ANALYTICS_ENABLED="false",
                DO_NOT_TRACK="1",
            )
            done = subprocess.run(
                [sys.executable, __file__, CHILD_FLAG, json.dumps(spec)],
                env=env,
                capture_output=True,
                text=True,
                timeout=3600,
            )
            lines = [x for x in done.stdout.splitlines() if x.startswith(CHILD_PREFIX)]
            if done.returncode != 0 or not lines:
                progress(f"prefect failed:\n{done.stderr[-4000:]}")
                self.check(False, "the Prefect child process failed")
                self._prefect = {}
            else:
                self._prefect = json.loads(lines[-1][len(CHILD_PREFIX) :])
        return self._prefect

    # -- figures ------------------------------------------------------------------------------

    def step_overhead(self) -> None:
        ours = self.lw_chain()
        theirs = self.prefect().get("chain")
        per_step = ours["seconds"] * 1000 / LENGTH
        floor = ours["floor"]
        marginal = (ours["seconds"] - ours["one_step_s"]) * 1000 / (LENGTH - 1)
        target = TARGETS["step_overhead_ms"]
        self.results.add_against(
            "step_overhead_ms",
            per_step,
            "prefect",
            None if theirs is None else theirs["seconds"] * 1000 / LENGTH,
            higher_is_better=False,
            unit="ms",
            note=(
                f"a {LENGTH}-step chain of `x + 1`, cache=False, in process, median of "
                f"{self.repeat} runs: loopwise {ours['seconds']:.3f} s a run (a 1-step run "
                f"{ours['one_step_s'] * 1000:.1f} ms, so {marginal:.2f} ms per added step)\n"
                f"    floor: the calls alone {floor['calls'] * 1e6 / LENGTH:.2f} us a step; "
                f"+ one SQLite row a step, a commit each {floor['commit_each'] * 1000 / LENGTH:.3f}"
                f" ms a step, one commit for all {floor['one_txn'] * 1000 / LENGTH:.3f} ms a "
                f"step; loopwise is {per_step / (floor['commit_each'] * 1000 / LENGTH):.0f}x the "
                f"commit-each floor\n"
                f"    target <= {target:.0f} ms a step: {_met(per_step <= target)}"
            ),
            extra={
                "loopwise_run_s": round(ours["seconds"], 4),
                "loopwise_one_step_run_ms": round(ours["one_step_s"] * 1000, 2),
                "loopwise_marginal_step_ms": round(marginal, 3),
                "floor_calls_us": round(floor["calls"] * 1e6 / LENGTH, 3),
                "floor_commit_each_ms": round(floor["commit_each"] * 1000 / LENGTH, 4),
                "floor_one_txn_ms": round(floor["one_txn"] * 1000 / LENGTH, 4),
                "target": target,
            },
        )

    def cache_hit(self) -> None:
        ours = self.lw_chain()
        theirs = self.prefect().get("cached")
        per_step = ours["cached_s"] * 1000 / LENGTH
        target = TARGETS["cache_hit_ms"]
        self.results.add_against(
            "cache_hit_ms",
            per_step,
            "prefect",
            None if theirs is None else theirs["seconds"] * 1000 / LENGTH,
            higher_is_better=False,
            unit="ms",
            note=(
                f"the same {LENGTH}-step chain again, every step from the cache, median of "
                f"{self.repeat} runs (loopwise records each as a child run pointing at the "
                "cached one; Prefect: cache_policy=INPUTS+TASK_SOURCE, persist_result=True)\n"
                f"    target <= {target:.0f} ms a step: {_met(per_step <= target)}"
            ),
            extra={"loopwise_run_s": round(ours["cached_s"], 4), "target": target},
        )

    def pipeline_100(self) -> None:
        ours = self.lw_chain()
        theirs = self.prefect().get("chain")
        value = None if theirs is None else theirs["seconds"]
        target = TARGETS["pipeline_100_steps_s"]
        ratio = None if value is None else value / ours["seconds"]
        self.results.add_against(
            "pipeline_100_steps_s",
            ours["seconds"],
            "prefect",
            value,
            higher_is_better=False,
            unit="s",
            note=(
                f"the whole uncached {LENGTH}-step run against Prefect's flow of {LENGTH} "
                "chained tasks (NO_CACHE; its task runs and states recorded through its "
                "ephemeral API server)\n"
                f"    runs: loopwise {', '.join(f'{t:.3f}' for t in ours['times'])} s; prefect "
                + ("-" if theirs is None else ", ".join(f"{t:.3f}" for t in theirs["times"]))
                + f" s; target >= {target:.0f}x faster: "
                + ("not measured" if ratio is None else _met(ratio >= target))
            ),
            extra={"target_ratio": target},
        )

    def fan_out(self) -> None:
        def run(i: int) -> int:
            return lw.run_pipeline(fan_out, params={"start": i}, cache=False).output()

        progress("loopwise: fan-out 1 -> 50 -> 1")
        seconds, _times, value = median_s(run, self.repeat)
        expected = sum(self.repeat + 1 + i for i in range(WIDTH))  # the last run's start
        self.check(value == expected, f"loopwise's fan-out answered {value}, not {expected}")
        theirs = self.prefect().get("fan_out")
        steps = WIDTH + 2
        self.results.add_against(
            "fan_out_s",
            seconds,
            "prefect",
            None if theirs is None else theirs["seconds"],
            higher_is_better=False,
            unit="s",
            note=(
                f"1 step -> {WIDTH} parallel steps -> 1 ({steps} steps), uncached: loopwise "
                f"{seconds * 1000 / steps:.2f} ms a step (thread executor, 4 workers); "
                "Prefect: .submit() on its default thread pool task runner"
            ),
        )

    def frame_chain(self) -> None:
        n = FRAME_STEPS[self.quick]

        def run(i: int):
            return lw.run_pipeline(
                frames, params={"steps": n, "rows": FRAME_ROWS, "salt": i}, cache=False
            ).output()

        progress(f"loopwise: {n} steps passing a {FRAME_ROWS:,}-row frame")
        seconds, _, value = median_s(run, self.repeat)
        self.check(len(value) == FRAME_ROWS, "loopwise's frame chain lost rows")
        theirs = self.prefect().get("frames")
        self.results.add_against(
            "frame_chain_s",
            seconds,
            "prefect",
            None if theirs is None else theirs["seconds"],
            higher_is_better=False,
            unit="s",
            note=(
                f"{n} steps, each taking and returning a {FRAME_ROWS:,}-row frame (3 columns), "
                f"uncached: loopwise {seconds * 1000 / n:.1f} ms a step, storing each frame as "
                "a dataset version (Parquet, content fingerprint); Prefect passes them in "
                "memory (no result persistence)"
            ),
        )


# -- Prefect's side, in the child process --------------------------------------------------


def child_main(spec: dict[str, Any]) -> int:
    """Prefect's flows, each timed as loopwise's are; one ``CHILD {json}`` line."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("prefect").setLevel(logging.WARNING)
    from prefect import flow, task
    from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

    repeat = spec["repeat"]

    @task(cache_policy=NO_CACHE)
    def p_inc(x: int) -> int:
        return x + 1

    @task(cache_policy=INPUTS + TASK_SOURCE, persist_result=True)
    def p_inc_cached(x: int) -> int:
        return x + 1

    @flow
    def p_chain(length: int, start: int) -> int:
        x = start
        for _ in range(length):
            x = p_inc(x)
        return x

    @flow
    def p_chain_cached(length: int, start: int) -> int:
        x = start
        for _ in range(length):
            x = p_inc_cached(x)
        return x

    @task(cache_policy=NO_CACHE)
    def p_spread(x: int, i: int) -> int:
        return x + i

    @task(cache_policy=NO_CACHE)
    def p_gather(values: list) -> int:
        return sum(values)

    @flow
    def p_fan_out(width: int, start: int) -> int:
        first = p_inc(start)
        futures = [p_spread.submit(first, i) for i in range(width)]
        return p_gather([f.result() for f in futures])

    @task(cache_policy=NO_CACHE)
    def p_frame_of(rows: int, salt: int):
        frame = make_frame(rows)
        return frame.assign(y=frame["y"] + salt)

    @task(cache_policy=NO_CACHE)
    def p_shift(frame):
        return frame.assign(x=frame["x"] + 1.0)

    @flow
    def p_frames(steps: int, rows: int, salt: int):
        frame = p_frame_of(rows, salt)
        for _ in range(steps - 1):
            frame = p_shift(frame)
        return frame

    found: dict[str, Any] = {}
    start = time.perf_counter()
    assert p_chain(1, 0) == 1  # starts the ephemeral server
    found["first_flow_s"] = time.perf_counter() - start

    seconds, times, value = median_s(lambda i: p_chain(LENGTH, 0), repeat)
    assert value == LENGTH, value
    found["chain"] = {"seconds": seconds, "times": times}

    p_chain_cached(LENGTH, 1000)  # fills the cache
    seconds, times, value = median_s(lambda i: p_chain_cached(LENGTH, 1000), repeat)
    assert value == 1000 + LENGTH, value
    found["cached"] = {"seconds": seconds, "times": times}

    seconds, times, value = median_s(lambda i: p_fan_out(WIDTH, i), repeat)
    found["fan_out"] = {"seconds": seconds, "times": times}

    n = spec["frame_steps"]
    seconds, times, value = median_s(lambda i: p_frames(n, FRAME_ROWS, i), repeat)
    assert len(value) == FRAME_ROWS
    found["frames"] = {"seconds": seconds, "times": times}
    print(CHILD_PREFIX + json.dumps(found), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CHILD_FLAG]:
        return child_main(json.loads(argv[1]))
    args = make_parser(__doc__.splitlines()[0], FIGURES).parse_args(argv)
    figures = [args.only] if args.only else list(FIGURES)
    mode = "quick" if args.quick else "full"
    print(f"bench pipelines ({mode}): {', '.join(figures)}", flush=True)
    with work_folder(args.workdir, "bench-pipelines-") as folder:
        bench = Bench(folder, args.quick)
        steps = {
            "step_overhead_ms": bench.step_overhead,
            "cache_hit_ms": bench.cache_hit,
            "pipeline_100_steps_s": bench.pipeline_100,
            "fan_out_s": bench.fan_out,
            "frame_chain_s": bench.frame_chain,
        }
        run_figures(figures, lambda figure: steps[figure]())
        from loopwise import context

        context.reset()  # let go of the store before its folder is removed
        bench.results.print_results()
    return exit_code(bench.failed_checks)


if __name__ == "__main__":
    sys.exit(main())
