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
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
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
QUICK = Sizes(10_000, 500, 10_000, 10)


def client_for(url: str) -> Any:
    import logging
    import warnings

    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
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
        self.name, self.base, self.client = name, base, client_for(base)
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


def measure(side: Side, figure: str, sizes: Sizes, folder: Path) -> tuple[float, Any]:
    """One figure of one side: (its value, what to check). For loopwise's read figures
    also the client's floor, kept in :data:`FLOORS`."""
    if figure == "mlflow_client_log_batch_s":
        side.log_batch(1000)  # warm-up, untimed (a fresh server's first requests are slower)
        return side.log_batch(sizes.batch_metrics), None
    if figure == "mlflow_client_search_ms":
        side.write_runs(sizes.runs, np.random.default_rng(1))  # the same runs for both
        found = median_ms(side.search, sizes.repeats)
        call, request = side.search, ("POST", "runs/search", _search_body(side.experiment))
    else:
        run_id = side.history_run(sizes.history_points)
        params = {"run_id": run_id, "metric_key": "loss", "max_results": 25_000}
        ms, points = median_ms(
            lambda: side.client.get_metric_history(run_id, "loss"), sizes.repeats
        )
        found = (ms, len(points))
        call = lambda: side.client.get_metric_history(run_id, "loss")  # noqa: E731
        request = ("GET", "metrics/get-history", params)
    if side.name == "loopwise":
        FLOORS[figure] = client_floor(side, call, request, folder / f"{figure}.json", sizes)
    return found


#: The MLflow client's own floor per read figure (ms): the same call against a stub that
#: answers loopwise's recorded answer at once (bench/_replay.py).
FLOORS: dict[str, float] = {}


def _search_body(experiment: str) -> dict[str, Any]:
    return {
        "experiment_ids": [experiment],
        "filter": SEARCH_FILTER,
        "order_by": SEARCH_ORDER,
        "max_results": 100,
        "run_view_type": "ACTIVE_ONLY",
    }


def client_floor(
    side: Side,
    call: Callable[[], Any],
    request: tuple[str, str, dict[str, Any]],
    answer: Path,
    sizes: Sizes,
) -> float:
    """The median time of ``call`` with the client pointed at a stub answering what the
    server answered to ``request``: what the client alone costs, below any server."""
    method, route, fields = request
    url = f"{side.base}/api/2.0/mlflow/{route}"
    got = (
        httpx.post(url, json=fields, timeout=60)
        if method == "POST"
        else httpx.get(url, params=fields, timeout=60)
    )
    got.raise_for_status()
    answer.write_bytes(got.content)
    port = free_port()
    stub = [sys.executable, str(Path(__file__).with_name("_replay.py")), str(port), str(answer)]
    proc = subprocess.Popen(stub, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        stub_base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(stub_base, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        real = side.client
        side.client = client_for(stub_base)
        try:
            return median_ms(call, sizes.repeats)[0]
        finally:
            side.client = real
    finally:
        proc.terminate()
        proc.wait(timeout=10)


NOTES = {
    "mlflow_client_log_batch_s": "{batch:,} metrics, MlflowClient.log_batch in batches of 100",
    "mlflow_client_search_ms": "median of {repeats}: search_runs over {runs:,} runs, filter "
    '"' + SEARCH_FILTER + '", order ' + str(SEARCH_ORDER) + ", 100 rows",
    "mlflow_client_history_ms": "median of {repeats}: get_metric_history of {points:,} points",
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], FIGURES, argv)
    sizes = QUICK if args.quick else FULL
    figures = [args.only] if args.only else list(FIGURES)
    print(f"bench mlflow_compat ({'quick' if args.quick else 'full'}): {', '.join(figures)}")
    results = Results("mlflow_compat")
    failed: list[str] = []
    measured: dict[str, dict[str, tuple[float, Any]]] = {}
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
        # One server at a time, so neither competes with the other's start-up work for CPU.
        for name, cmd, port in (("loopwise", lw_cmd, lw_port), ("MLflow", ml_cmd, ml_port)):
            with server(cmd, port, folder / f"{name.lower()}.log") as (base, _):
                time.sleep(3)  # let the server settle after its start
                side = Side(name, base)
                measured[name] = {}
                for figure in figures:
                    progress(f"{name}: {figure} ...")
                    measured[name][figure] = measure(side, figure, sizes, folder)

    def run_one(figure: str) -> None:
        (lw, lw_check), (ml, ml_check) = measured["loopwise"][figure], measured["MLflow"][figure]
        if lw_check != ml_check or (figure == "mlflow_client_search_ms" and len(lw_check) != 100):
            failed.append(f"{figure}: the servers answered differently ({lw_check} / {ml_check})")
        unit = "s" if figure.endswith("_s") else "ms"
        note = NOTES[figure].format(
            batch=sizes.batch_metrics, repeats=sizes.repeats, runs=sizes.runs,
            points=sizes.history_points,
        )  # fmt: skip
        results.add(figure, lw, ml, higher_is_better=False, unit=unit, note=note)
        if figure in FLOORS:
            floor = FLOORS[figure]
            print(
                f"  client floor (a stub answering loopwise's recorded answer at once): "
                f"{floor:.1f} ms; the best ratio any server could reach: {ml / floor:.2f}x; "
                f"the servers' parts: loopwise {lw - floor:.1f} ms, MLflow {ml - floor:.1f} ms"
            )

    run_figures(figures, run_one)
    results.print_results()
    return exit_code(failed)


if __name__ == "__main__":
    raise SystemExit(main())
