"""MLflow compatibility: one unchanged MLflow client script against `loopwise server` and
against `mlflow server`, both on SQLite, in one run (see bench/README.md):

1. ``mlflow_client_log_batch_s``: 10,000 metrics of one run through
   ``MlflowClient.log_batch`` in batches of 100 (100 requests).
2. ``mlflow_client_search_ms``: ``search_runs`` over 2,000 runs with a filter and an
   order, first 100 rows, median of N (both answers checked against each other).
3. ``mlflow_client_history_ms``: ``get_metric_history`` of a 10,000-point metric, median
   of N.

The 2,000 runs are written through the same client against each server beforehand (not
timed): ``create_run``, one ``log_batch`` of 10 params and 10 metrics, ``set_terminated``.

    python bench/mlflow_compat.py [--quick] [--only NAME] [--workdir DIR]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import Results, exit_code, parse_args, progress, run_figures, timed, work_folder

from server import free_port, server  # bench/server.py: the same server start for both

FIGURES = ("mlflow_client_log_batch_s", "mlflow_client_search_ms", "mlflow_client_history_ms")
SEARCH_FILTER = "metrics.m0 > 0.5 and params.p1 = 'a'"
SEARCH_ORDER = ["metrics.m1 DESC"]


@dataclass(frozen=True)
class Sizes:
    batch_metrics: int
    runs: int
    history_points: int
    repeats: int


FULL = Sizes(10_000, 2_000, 10_000, 20)
QUICK = Sizes(10_000, 300, 10_000, 10)


def client_for(url: str) -> Any:
    import logging
    import warnings

    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    try:
        from mlflow import MlflowClient
    except ImportError:
        sys.exit("MLflow is not installed here: pip install -e '.[bench]' (or `make bench`).")
    return MlflowClient(tracking_uri=url)


class Side:
    """One server under the same client script."""

    def __init__(self, name: str, base: str) -> None:
        self.name, self.client = name, client_for(base)
        self.experiment = self.client.create_experiment(f"bench-{time.time_ns()}")

    def log_batch(self, count: int) -> float:
        from mlflow.entities import Metric

        run_id = self.client.create_run(self.experiment).info.run_id
        stamp = int(time.time() * 1000)
        seconds, _ = timed(
            lambda: [
                self.client.log_batch(
                    run_id,
                    metrics=[Metric(f"m{i % 50}", float(i), stamp, i) for i in range(s, s + 100)],
                )
                for s in range(0, count, 100)
            ]
        )
        return seconds

    def write_runs(self, count: int, rng: np.random.Generator) -> None:
        from mlflow.entities import Metric, Param

        stamp = int(time.time() * 1000)
        p1 = np.where(rng.random(count) < 0.6, "a", "b")
        values = rng.random((count, 10))
        start = time.perf_counter()
        for i in range(count):
            run_id = self.client.create_run(self.experiment, run_name=f"run-{i:05d}").info.run_id
            self.client.log_batch(
                run_id,
                metrics=[Metric(f"m{j}", float(values[i, j]), stamp, 0) for j in range(10)],
                params=[Param("p1", str(p1[i]))] + [Param(f"p{j}", f"v{j}") for j in range(2, 11)],
            )
            self.client.set_terminated(run_id)
        progress(f"{self.name}: {count:,} runs in {time.perf_counter() - start:.1f}s")

    def search(self) -> list[str]:
        found = self.client.search_runs(
            [self.experiment], filter_string=SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=100
        )
        return [r.info.run_name for r in found]

    def history_run(self, count: int) -> str:
        from mlflow.entities import Metric

        run_id = self.client.create_run(self.experiment).info.run_id
        stamp = int(time.time() * 1000)
        for s in range(0, count, 1000):
            points = [Metric("loss", 1.0 / (i + 1), stamp, i) for i in range(s, s + 1000)]
            self.client.log_batch(run_id, metrics=points)
        return run_id


def median_ms(fn: Callable[[], Any], n: int) -> tuple[float, Any]:
    value = fn()  # warm-up
    times = []
    for _ in range(n):
        seconds, value = timed(fn)
        times.append(seconds * 1000)
    return statistics.median(times), value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], FIGURES, argv)
    sizes = QUICK if args.quick else FULL
    figures = [args.only] if args.only else list(FIGURES)
    print(f"bench mlflow_compat ({'quick' if args.quick else 'full'}): {', '.join(figures)}")
    results = Results("mlflow_compat")
    failed: list[str] = []
    with work_folder(args.workdir, "bench-mlflow-compat-") as folder:
        lw_dir, ml_dir = folder / "loopwise", folder / "mlflow"
        lw_dir.mkdir()
        ml_dir.mkdir()
        lw_port, ml_port = free_port(), free_port()
        lw_cmd = [sys.executable, "-m", "loopwise", "server", "--port", str(lw_port)]
        lw_cmd += ["--store-url", f"sqlite:///{lw_dir / 'lw.db'}"]
        lw_cmd += ["--artifacts-url", str(lw_dir / "art")]
        mlflow_bin = Path(sys.executable).parent / "mlflow"
        ml_cmd = [str(mlflow_bin) if mlflow_bin.exists() else "mlflow", "server"]
        ml_cmd += ["--backend-store-uri", f"sqlite:///{ml_dir / 'mlflow.db'}", "--workers", "1"]
        ml_cmd += ["--host", "127.0.0.1", "--port", str(ml_port)]
        ml_cmd += ["--artifacts-destination", (ml_dir / "art").as_uri()]
        with (
            server(lw_cmd, lw_port, folder / "loopwise.log") as (lw_base, _),
            server(ml_cmd, ml_port, folder / "mlflow.log") as (ml_base, _),
        ):
            sides = [Side("loopwise", lw_base), Side("MLflow", ml_base)]

            def run_one(figure: str) -> None:
                if figure == "mlflow_client_log_batch_s":
                    lw, ml = (s.log_batch(sizes.batch_metrics) for s in sides)
                    results.add(
                        figure,
                        lw,
                        ml,
                        higher_is_better=False,
                        unit="s",
                        note=f"{sizes.batch_metrics:,} metrics, MlflowClient.log_batch "
                        "in batches of 100",
                    )
                elif figure == "mlflow_client_search_ms":
                    for side, seed in zip(sides, (1, 1), strict=True):
                        side.write_runs(sizes.runs, np.random.default_rng(seed))
                    (lw, lw_names), (ml, ml_names) = (
                        median_ms(s.search, sizes.repeats) for s in sides
                    )
                    if lw_names != ml_names or len(lw_names) != 100:
                        failed.append("the two servers answered the search differently")
                    results.add(
                        figure,
                        lw,
                        ml,
                        higher_is_better=False,
                        unit="ms",
                        note=f"median of {sizes.repeats}: search_runs over {sizes.runs:,} "
                        f'runs, filter "{SEARCH_FILTER}", order {SEARCH_ORDER}, 100 rows '
                        f"(the same {len(lw_names)} runs from both)",
                    )
                else:
                    timings = []
                    for side in sides:
                        run_id = side.history_run(sizes.history_points)
                        ms, points = median_ms(
                            lambda s=side, r=run_id: s.client.get_metric_history(r, "loss"),
                            sizes.repeats,
                        )
                        if len(points) != sizes.history_points:
                            failed.append(f"{side.name} returned {len(points)} points")
                        timings.append(ms)
                    results.add(
                        figure,
                        timings[0],
                        timings[1],
                        higher_is_better=False,
                        unit="ms",
                        note=f"median of {sizes.repeats}: get_metric_history of "
                        f"{sizes.history_points:,} points",
                    )

            run_figures(figures, run_one)
    results.print_results()
    return exit_code(failed)


if __name__ == "__main__":
    raise SystemExit(main())
