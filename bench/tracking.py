"""Tracking: loopwise against MLflow on the same generated work, both on SQLite.

Four figures (see bench/README.md):

1. ``log_metric_calls_per_s`` (and ``log_metric_calls_per_s_async``): single log_metric
   calls in one run, timed until the points are in the database.
2. ``log_metrics_points_per_s``: metric points through each tool's fastest bulk path.
3. ``search_runs_ms``: a filtered, ordered search over many runs with params and metrics.
4. ``metric_history_ms``: reading the full history of one metric of 100,000 steps.

Both tools run in this one process, each on a fresh SQLite database in its own folder
under one parent. Setup (creating runs to search, points to read) is not timed. loopwise's
background writer is flushed before every MLflow timing, so the two never overlap.

    python bench/tracking.py [--quick] [--only NAME] [--workdir DIR]
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    Results,
    exit_code,
    median_ms,
    parse_args,
    progress,
    run_figures,
    timed,
    work_folder,
)

FIGURES = (
    "log_metric_calls_per_s",
    "log_metrics_points_per_s",
    "search_runs_ms",
    "metric_history_ms",
)
SEARCH_FILTER = "metrics.m0 > 0.5 and params.p1 = 'a'"
SEARCH_ORDER = ["metrics.m1 DESC"]
SEARCH_MAX = 100
MLFLOW_BATCH = 1000  # MLflow's limit of metrics per log_batch call
POOL = 1000  # distinct metric dicts cycled through by the log_metrics figure


@dataclass(frozen=True)
class Sizes:
    lw_calls: int  # figure 1, loopwise
    mlflow_calls: int  # figure 1, MLflow sync and async (~150-300 calls/s)
    lw_points: int  # figure 2, loopwise (10 keys per call)
    mlflow_points: int  # figure 2, MLflow log_batch
    runs: int  # figure 3, both
    history: int  # figure 4, both


FULL = Sizes(100_000, 1_000, 1_000_000, 50_000, 10_000, 100_000)
QUICK = Sizes(100_000, 300, 200_000, 20_000, 1_000, 100_000)


class Bench:
    def __init__(self, folder: Path, sizes: Sizes) -> None:
        self.sizes = sizes
        self.results = Results("tracking")
        self.failed_checks: list[str] = []
        self.rng = np.random.default_rng(20240611)

        lw_dir = folder / "loopwise"
        ml_dir = folder / "mlflow"
        lw_dir.mkdir()
        ml_dir.mkdir()

        import loopwise as lw
        from loopwise.context import get_store
        from loopwise.tracking.fluent import writer_for

        self.lw = lw
        lw.configure(store_url=f"sqlite:///{lw_dir / 'lw.db'}", artifacts_url=str(lw_dir / "art"))
        self.store = get_store()
        self.writer = writer_for(self.store)

        self.mlflow, self.client = _open_mlflow(ml_dir)
        self.ml_artifacts = (ml_dir / "artifacts").as_uri()

    # -- helpers ----------------------------------------------------------------------------

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.failed_checks.append(message)
            print(f"CHECK FAILED: {message}", file=sys.stderr, flush=True)

    def ml_experiment(self, name: str) -> str:
        return self.client.create_experiment(name, artifact_location=self.ml_artifacts)

    def lw_settle(self) -> None:
        """Write everything loopwise still buffers, so MLflow's timings run alone."""
        self.lw.flush()

    # -- 1. single log_metric calls ---------------------------------------------------------

    def log_metric_calls(self) -> None:
        lw, mlflow, s = self.lw, self.mlflow, self.sizes
        values = self.rng.random(s.lw_calls).tolist()

        with lw.start_run(experiment="log_metric", name="calls") as run:
            lw.flush()  # the run's environment capture finishes before the clock starts
            start = time.perf_counter()
            for step, value in enumerate(values):
                lw.log_metric("loss", value, step=step)
            lw.flush()
            lw_seconds = time.perf_counter() - start
        stored = len(lw.get_metric_history(run.id, "loss"))
        self.check(stored == s.lw_calls, f"loopwise stored {stored} of {s.lw_calls} points")
        lw_rate = s.lw_calls / lw_seconds
        self.lw_settle()

        eid = self.ml_experiment("log_metric")
        n = s.mlflow_calls
        with mlflow.start_run(experiment_id=eid, run_name="sync") as ml_run:
            start = time.perf_counter()
            for step, value in enumerate(values[:n]):
                mlflow.log_metric("loss", value, step=step)
            sync_seconds = time.perf_counter() - start
        stored = len(self.client.get_metric_history(ml_run.info.run_id, "loss"))
        self.check(stored == n, f"MLflow (sync) stored {stored} of {n} points")

        with mlflow.start_run(experiment_id=eid, run_name="async") as ml_run:
            start = time.perf_counter()
            for step, value in enumerate(values[:n]):
                mlflow.log_metric("loss", value, step=step, synchronous=False)
            mlflow.flush_async_logging()
            async_seconds = time.perf_counter() - start
        stored = len(self.client.get_metric_history(ml_run.info.run_id, "loss"))
        self.check(stored == n, f"MLflow (async) stored {stored} of {n} points")

        note = f"loopwise: {s.lw_calls:,} calls incl. flush; MLflow: {n:,} calls"
        self.results.add(
            "log_metric_calls_per_s",
            lw_rate,
            n / sync_seconds,
            higher_is_better=True,
            unit="calls/s",
            note=note + " (synchronous)",
        )
        self.results.add(
            "log_metric_calls_per_s_async",
            lw_rate,
            n / async_seconds,
            higher_is_better=True,
            unit="calls/s",
            note=note + " (synchronous=False, then mlflow.flush_async_logging())",
        )

    # -- 2. bulk metric points --------------------------------------------------------------

    def log_metrics_points(self) -> None:
        lw, s = self.lw, self.sizes
        from mlflow.entities import Metric

        keys = [f"k{j}" for j in range(10)]
        pool = [dict(zip(keys, row, strict=True)) for row in self.rng.random((POOL, 10)).tolist()]
        calls = s.lw_points // len(keys)

        with lw.start_run(experiment="log_metrics", name="points") as run:
            lw.flush()  # environment capture done before the clock starts
            start = time.perf_counter()
            for step in range(calls):
                lw.log_metrics(pool[step % POOL], step=step)
            lw.flush()
            lw_seconds = time.perf_counter() - start
        stored = sum(len(lw.get_metric_history(run.id, key)) for key in keys)
        self.check(stored == s.lw_points, f"loopwise stored {stored} of {s.lw_points} points")
        self.lw_settle()

        eid = self.ml_experiment("log_metrics")
        run_id = self.client.create_run(eid, run_name="points").info.run_id
        steps_per_batch = MLFLOW_BATCH // len(keys)
        ml_steps = s.mlflow_points // len(keys)
        start = time.perf_counter()
        for first in range(0, ml_steps, steps_per_batch):
            ts = int(time.time() * 1000)
            batch = [
                Metric(key, value, ts, step)
                for step in range(first, min(first + steps_per_batch, ml_steps))
                for key, value in pool[step % POOL].items()
            ]
            self.client.log_batch(run_id, metrics=batch)
        ml_seconds = time.perf_counter() - start
        self.client.set_terminated(run_id)
        stored = sum(len(self.client.get_metric_history(run_id, key)) for key in keys)
        self.check(stored == s.mlflow_points, f"MLflow stored {stored} of {s.mlflow_points}")

        self.results.add(
            "log_metrics_points_per_s",
            s.lw_points / lw_seconds,
            s.mlflow_points / ml_seconds,
            higher_is_better=True,
            unit="points/s",
            note=(
                f"loopwise: {s.lw_points:,} points as {calls:,} lw.log_metrics calls of 10 keys, "
                f"incl. flush; MLflow: {s.mlflow_points:,} points, MlflowClient.log_batch "
                f"of {MLFLOW_BATCH}"
            ),
        )

    # -- 3. search_runs ---------------------------------------------------------------------

    def search_runs(self) -> None:
        lw, mlflow, n = self.lw, self.mlflow, self.sizes.runs
        from mlflow.entities import Metric, Param

        from loopwise.tracking import runs as lw_runs

        rng = self.rng
        names = [f"run-{i:05d}" for i in range(n)]
        p1 = np.where(rng.random(n) < 0.6, "a", "b")
        others = rng.integers(0, 10, size=(n, 10))
        params = [
            {f"p{j}": (str(p1[i]) if j == 1 else f"v{others[i, j]}") for j in range(10)}
            for i in range(n)
        ]
        metric_values = rng.random((n, 10))
        metrics = [{f"m{j}": float(metric_values[i, j]) for j in range(10)} for i in range(n)]
        matching = np.flatnonzero((metric_values[:, 0] > 0.5) & (p1 == "a"))
        top = matching[np.argsort(-metric_values[matching, 1], kind="stable")][:SEARCH_MAX]
        expected = [names[i] for i in top]
        progress(f"search_runs: {len(matching):,} of {n:,} runs match ({len(matching) / n:.0%})")

        # loopwise setup, through the service layer (no per-run environment capture).
        start = time.perf_counter()
        ts = time.time_ns() // 1000
        for i in range(n):
            run_id = lw_runs.create_run(self.store, "search", name=names[i])
            lw_runs.log_params(self.store, run_id, params[i])
            for key, value in metrics[i].items():
                self.writer.add(run_id, key, 0, ts, value)
            lw_runs.end_run(self.store, run_id)
            if (i + 1) % 2000 == 0:
                progress(f"loopwise setup: {i + 1:,}/{n:,} runs")
        self.writer.flush()
        progress(f"loopwise setup: {n:,} runs in {time.perf_counter() - start:.1f}s")
        self.lw_settle()

        def lw_search():
            return lw.search_runs(
                experiment="search",
                filter=SEARCH_FILTER,
                order_by=SEARCH_ORDER,
                max_results=SEARCH_MAX,
            )

        lw_ms, lw_frame = median_ms(lw_search)

        # MLflow setup: one create_run + one log_batch (params and metrics) per run.
        eid = self.ml_experiment("search")
        start = time.perf_counter()
        ts = int(time.time() * 1000)
        for i in range(n):
            run_id = self.client.create_run(eid, run_name=names[i]).info.run_id
            self.client.log_batch(
                run_id,
                metrics=[Metric(k, v, ts, 0) for k, v in metrics[i].items()],
                params=[Param(k, v) for k, v in params[i].items()],
            )
            self.client.set_terminated(run_id)
            if (i + 1) % 500 == 0:
                elapsed = time.perf_counter() - start
                eta = elapsed / (i + 1) * (n - i - 1)
                progress(
                    f"MLflow setup: {i + 1:,}/{n:,} runs, {elapsed / (i + 1) * 1000:.1f} ms/run, "
                    f"about {eta:.0f}s left"
                )
        progress(f"MLflow setup: {n:,} runs in {time.perf_counter() - start:.1f}s")

        def ml_search():
            return mlflow.search_runs(
                experiment_ids=[eid],
                filter_string=SEARCH_FILTER,
                order_by=SEARCH_ORDER,
                max_results=SEARCH_MAX,
            )

        ml_ms, ml_frame = median_ms(ml_search)

        self.check(
            len(lw_frame) == len(ml_frame) == len(expected),
            f"row counts differ: loopwise {len(lw_frame)}, MLflow {len(ml_frame)}, "
            f"expected {len(expected)}",
        )
        self.check(list(lw_frame["name"]) == expected, "loopwise returned other runs/order")
        self.check(
            list(ml_frame["tags.mlflow.runName"]) == expected, "MLflow returned other runs/order"
        )
        self.results.add(
            "search_runs_ms",
            lw_ms,
            ml_ms,
            higher_is_better=False,
            unit="ms",
            note=(
                f"{n:,} runs x 10 params x 10 metrics, filter {SEARCH_FILTER!r}, "
                f"order {SEARCH_ORDER[0]!r}, max_results={SEARCH_MAX}; both returned "
                f"{len(lw_frame)}/{len(ml_frame)} rows; median of 5 after a warm-up"
            ),
        )

    # -- 4. metric history ------------------------------------------------------------------

    def metric_history(self) -> None:
        lw, n = self.lw, self.sizes.history
        from mlflow.entities import Metric

        from loopwise.tracking import runs as lw_runs

        values = self.rng.random(n).tolist()

        run_id = lw_runs.create_run(self.store, "history", name="history")
        ts = time.time_ns() // 1000
        for step, value in enumerate(values):
            self.writer.add(run_id, "loss", step, ts + step, value)
        self.writer.flush()
        lw_runs.end_run(self.store, run_id)
        self.lw_settle()
        lw_ms, lw_frame = median_ms(lambda: lw.get_metric_history(run_id, "loss"))

        eid = self.ml_experiment("history")
        ml_run_id = self.client.create_run(eid, run_name="history").info.run_id
        ts = int(time.time() * 1000)
        start = time.perf_counter()
        for first in range(0, n, MLFLOW_BATCH):
            self.client.log_batch(
                ml_run_id,
                metrics=[
                    Metric("loss", values[step], ts + step, step)
                    for step in range(first, min(first + MLFLOW_BATCH, n))
                ],
            )
        self.client.set_terminated(ml_run_id)
        progress(f"MLflow setup: {n:,} points in {time.perf_counter() - start:.1f}s")
        ml_ms, ml_points = median_ms(lambda: self.client.get_metric_history(ml_run_id, "loss"))

        self.check(len(lw_frame) == n, f"loopwise returned {len(lw_frame)} of {n} points")
        self.check(len(ml_points) == n, f"MLflow returned {len(ml_points)} of {n} points")
        self.results.add(
            "metric_history_ms",
            lw_ms,
            ml_ms,
            higher_is_better=False,
            unit="ms",
            note=(
                f"{n:,} steps of one metric: lw.get_metric_history (DataFrame) vs "
                "MlflowClient.get_metric_history (list of Metric); median of 5 after a warm-up"
            ),
        )


def _open_mlflow(folder: Path) -> tuple[Any, Any]:
    """Import MLflow quietly and point it at a fresh SQLite database in ``folder``."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("MLFLOW_ENABLE_ASYNC_LOGGING", None)
    warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
    warnings.filterwarnings("ignore", module=r"alembic(\.|$)")
    try:
        import mlflow
        from mlflow import MlflowClient
    except ImportError:
        sys.exit("MLflow is not installed here: pip install -e '.[bench]' (or `make bench`).")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    # The first use creates and migrates the database (a few seconds, not timed).
    seconds, client = timed(lambda: _ready(MlflowClient(tracking_uri=uri)))
    progress(f"MLflow {mlflow.__version__}: database ready in {seconds:.1f}s")
    return mlflow, client


def _ready(client: Any) -> Any:
    client.search_experiments()
    return client


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], FIGURES, argv)
    sizes = QUICK if args.quick else FULL
    figures = [args.only] if args.only else list(FIGURES)
    mode = "quick" if args.quick else "full"
    print(f"bench tracking ({mode}): {', '.join(figures)}", flush=True)
    with work_folder(args.workdir, "bench-tracking-") as folder:
        bench = Bench(folder, sizes)
        steps = {
            "log_metric_calls_per_s": bench.log_metric_calls,
            "log_metrics_points_per_s": bench.log_metrics_points,
            "search_runs_ms": bench.search_runs,
            "metric_history_ms": bench.metric_history,
        }
        run_figures(figures, lambda figure: steps[figure]())
        from loopwise import context

        context.reset()  # flush and let go of the store before its folder is removed
        bench.results.print_results()
    return exit_code(bench.failed_checks)


if __name__ == "__main__":
    sys.exit(main())
