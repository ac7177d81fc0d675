"""Server: `loopwise server` against `mlflow server`, both on SQLite, over real HTTP.

Four figures (see bench/README.md):

1. ``server_start_s``: process start to the first ``GET /health`` answered 200.
2. ``runs_page_ms``: the first page (100 rows) of a filtered, sorted run search, p95 of
   repeated requests: loopwise ``POST /api/v1/runs/search`` against MLflow's
   ``POST /api/2.0/mlflow/runs/search``.
3. ``history_downsample_ms``: one metric of 1,000,000 points cut to 1,000 over HTTP
   (min/max/last per step bucket): loopwise ``GET /api/v1/runs/{id}/metrics/{key}/history``
   against MLflow's chart endpoint ``get-history-bulk-interval`` (the sampling its UI uses).
4. ``remote_log_metric_calls_per_s``: single ``log_metric`` calls from Python through each
   tool's remote client (loopwise with ``tracking_url``; MLflow with its tracking URI at
   ``mlflow server``), until every point is on the server (loopwise's ``flush()``).

Each server runs in its own process on a fresh SQLite database in its own folder; the
runs and points are written beforehand (not timed): loopwise's through its service layer
in bulk, MLflow's with its client straight to its database.

    python bench/server.py [--quick] [--only NAME] [--workdir DIR]
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import Results, exit_code, parse_args, progress, run_figures, timed, work_folder

FIGURES = (
    "server_start_s",
    "runs_page_ms",
    "history_downsample_ms",
    "remote_log_metric_calls_per_s",
)
SEARCH_FILTER = "metrics.m0 > 0.5 and params.p1 = 'a'"
SEARCH_ORDER = ["metrics.m1 DESC"]
PAGE = 100
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Sizes:
    lw_runs: int  # figure 2, loopwise
    ml_runs: int  # figure 2, MLflow (written one client call at a time: slow to set up)
    requests: int  # figure 2, timed requests per tool
    lw_points: int  # figure 3, loopwise
    ml_points: int  # figure 3, MLflow
    history_requests: int
    lw_remote_calls: int = 100_000  # figure 4, loopwise
    ml_remote_calls: int = 300  # figure 4, MLflow (one request per call)


FULL = Sizes(100_000, 10_000, 50, 1_000_000, 1_000_000, 20)
QUICK = Sizes(2_000, 2_000, 20, 1_000_000, 100_000, 10, 100_000, 100)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(cmd: list[str], port: int, log: Path) -> Iterator[tuple[str, float]]:
    """Start ``cmd``; yield its base URL and the seconds until /health answered 200."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "GIT_PYTHON_REFRESH": "quiet"}
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    sys.exit(f"{cmd[0]} exited early; see {log}:\n{log.read_text()[-2000:]}")
                if time.perf_counter() - start > START_TIMEOUT_S:
                    sys.exit(f"{' '.join(cmd[:3])} did not answer /health in {START_TIMEOUT_S}s")
                time.sleep(0.01)
            yield base, time.perf_counter() - start
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def p95_ms(fn: Any, n: int, warmup: int = 2) -> tuple[float, float, Any]:
    """p95 and median milliseconds of ``n`` calls after ``warmup`` untimed ones; last result."""
    value = None
    for _ in range(warmup):
        value = fn()
    times = []
    for _ in range(n):
        seconds, value = timed(fn)
        times.append(seconds * 1000.0)
    return float(np.percentile(times, 95)), statistics.median(times), value


class Bench:
    def __init__(self, folder: Path, sizes: Sizes) -> None:
        self.sizes = sizes
        self.folder = folder
        self.results = Results("server")
        self.failed_checks: list[str] = []
        self.rng = np.random.default_rng(20261207)
        self.lw_dir, self.ml_dir = folder / "loopwise", folder / "mlflow"
        self.lw_dir.mkdir()
        self.ml_dir.mkdir()
        self.lw_url = f"sqlite:///{self.lw_dir / 'lw.db'}"
        self.ml_url = f"sqlite:///{self.ml_dir / 'mlflow.db'}"
        bin_dir = Path(sys.executable).parent
        self.lw_cmd = [sys.executable, "-m", "loopwise", "server", "--store-url", self.lw_url]
        self.lw_cmd += ["--artifacts-url", str(self.lw_dir / "art")]
        mlflow_bin = bin_dir / "mlflow"
        self.ml_cmd = [str(mlflow_bin) if mlflow_bin.exists() else "mlflow", "server"]
        self.ml_cmd += ["--backend-store-uri", self.ml_url, "--workers", "1"]
        self.ml_cmd += ["--default-artifact-root", (self.ml_dir / "art").as_uri()]
        self.lw_store = self._lw_store()
        self.ml_client = self._ml_client()
        self.runs_written = False
        self.history_written: tuple[str, str] | None = None

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.failed_checks.append(message)
            print(f"CHECK FAILED: {message}", file=sys.stderr, flush=True)

    def _lw_store(self) -> Any:
        from loopwise.config import load_settings
        from loopwise.store import Store

        store = Store(
            settings=load_settings(store_url=self.lw_url, artifacts_url=str(self.lw_dir / "art"))
        )
        seconds, _ = timed(store.db.ensure_schema)  # MLflow's database is made beforehand too
        progress(f"loopwise database ready in {seconds:.1f}s")
        return store

    def _ml_client(self) -> Any:
        import logging
        import warnings

        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
        warnings.filterwarnings("ignore", module=r"alembic(\.|$)")
        try:
            from mlflow import MlflowClient
        except ImportError:
            sys.exit("MLflow is not installed here: pip install -e '.[bench]' (or `make bench`).")
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.ERROR)
        client = MlflowClient(tracking_uri=self.ml_url)
        seconds, _ = timed(client.search_experiments)  # creates and migrates the database
        progress(f"MLflow database ready in {seconds:.1f}s")
        return client

    def lw_server(self) -> Any:
        port = free_port()
        return server([*self.lw_cmd, "--port", str(port)], port, self.folder / "loopwise.log")

    def ml_server(self) -> Any:
        port = free_port()
        cmd = [*self.ml_cmd, "--host", "127.0.0.1", "--port", str(port)]
        return server(cmd, port, self.folder / "mlflow.log")

    # -- 1. start ---------------------------------------------------------------------------

    def server_start(self) -> None:
        with self.lw_server() as (_, lw_s):
            pass
        with self.ml_server() as (_, ml_s):
            pass
        self.results.add(
            "server_start_s",
            lw_s,
            ml_s,
            higher_is_better=False,
            unit="s",
            note="process start to the first GET /health answered 200, each on its own SQLite",
        )

    # -- 2. first page of a search ----------------------------------------------------------

    def _write_runs(self) -> list[str]:
        """The same runs for both tools; the names of the expected first page."""
        from mlflow.entities import Metric, Param

        from loopwise.tracking import runs as lw_runs
        from loopwise.tracking.log_batch import log_batch

        s, rng = self.sizes, self.rng
        n = max(s.lw_runs, s.ml_runs)
        names = [f"run-{i:06d}" for i in range(n)]
        p1 = np.where(rng.random(n) < 0.6, "a", "b")
        others = rng.integers(0, 10, size=(n, 10))
        values = rng.random((n, 10))

        def params(i: int) -> dict[str, str]:
            return {f"p{j}": str(p1[i]) if j == 1 else f"v{others[i, j]}" for j in range(10)}

        start = time.perf_counter()
        ts = time.time_ns() // 1000
        for i in range(s.lw_runs):
            run_id = lw_runs.create_run(self.lw_store, "search", name=names[i])
            metrics = [(f"m{j}", float(values[i, j]), 0, ts) for j in range(10)]
            log_batch(self.lw_store, run_id, params=params(i), metrics=metrics)
            lw_runs.end_run(self.lw_store, run_id)
            if (i + 1) % 10_000 == 0:
                progress(f"loopwise setup: {i + 1:,}/{s.lw_runs:,} runs")
        progress(f"loopwise setup: {s.lw_runs:,} runs in {time.perf_counter() - start:.1f}s")

        eid = self.ml_client.create_experiment("search")
        start, ts_ms = time.perf_counter(), int(time.time() * 1000)
        for i in range(s.ml_runs):
            run_id = self.ml_client.create_run(eid, run_name=names[i]).info.run_id
            self.ml_client.log_batch(
                run_id,
                metrics=[Metric(f"m{j}", float(values[i, j]), ts_ms, 0) for j in range(10)],
                params=[Param(k, v) for k, v in params(i).items()],
            )
            self.ml_client.set_terminated(run_id)
            if (i + 1) % 1000 == 0:
                progress(f"MLflow setup: {i + 1:,}/{s.ml_runs:,} runs")
        progress(f"MLflow setup: {s.ml_runs:,} runs in {time.perf_counter() - start:.1f}s")
        self.ml_experiment = eid

        def expected(count: int) -> list[str]:
            match = np.flatnonzero((values[:count, 0] > 0.5) & (p1[:count] == "a"))
            top = match[np.argsort(-values[match, 1], kind="stable")][:PAGE]
            return [names[i] for i in top]

        return [expected(s.lw_runs), expected(s.ml_runs)]

    def runs_page(self) -> None:
        s = self.sizes
        lw_expected, ml_expected = self._write_runs()
        lw_body = {
            "experiments": ["search"],
            "filter": SEARCH_FILTER,
            "order_by": SEARCH_ORDER,
            "max_results": PAGE,
        }
        with self.lw_server() as (base, _), httpx.Client(base_url=base, timeout=60) as http:

            def lw_page() -> Any:
                answer = http.post("/api/v1/runs/search", json=lw_body)
                answer.raise_for_status()
                return answer.json()

            lw_p95, lw_median, lw_answer = p95_ms(lw_page, s.requests)
        ml_body = {
            "experiment_ids": [self.ml_experiment],
            "filter": SEARCH_FILTER,
            "order_by": SEARCH_ORDER,
            "max_results": PAGE,
        }
        with self.ml_server() as (base, _), httpx.Client(base_url=base, timeout=120) as http:

            def ml_page() -> Any:
                answer = http.post("/api/2.0/mlflow/runs/search", json=ml_body)
                answer.raise_for_status()
                return answer.json()

            ml_p95, ml_median, ml_answer = p95_ms(ml_page, s.requests)
        lw_names = [r["name"] for r in lw_answer["runs"]]
        ml_names = [r["info"]["run_name"] for r in ml_answer.get("runs", [])]
        self.check(lw_names == lw_expected, "loopwise returned other runs or another order")
        self.check(ml_names == ml_expected, "MLflow returned other runs or another order")
        self.check(lw_answer["next_page_token"] is not None, "loopwise gave no next page token")
        self.results.add(
            "runs_page_ms",
            lw_p95,
            ml_p95,
            higher_is_better=False,
            unit="ms",
            note=(
                f"p95 of {s.requests} requests (medians {lw_median:.1f} / {ml_median:.1f} ms): "
                f"first {PAGE} rows of {SEARCH_FILTER!r} ordered {SEARCH_ORDER[0]!r}; loopwise "
                f"over {s.lw_runs:,} runs, MLflow over {s.ml_runs:,} runs (10 params, 10 "
                f"metrics each); both returned the expected {len(lw_names)}/{len(ml_names)} rows"
            ),
        )

    # -- 3. downsampled history -------------------------------------------------------------

    def history_downsample(self) -> None:
        from mlflow.entities import Metric

        from loopwise.tracking import runs as lw_runs
        from loopwise.tracking.log_batch import log_batch

        s = self.sizes
        values = self.rng.normal(size=s.lw_points).cumsum()
        peak_step = s.lw_points * 2 // 3
        values[peak_step] = values.max() + 1000.0  # one spike that stride sampling would miss
        run_id = lw_runs.create_run(self.lw_store, "history", name="history")
        ts = time.time_ns() // 1000
        start = time.perf_counter()
        points = list(
            zip(
                ["loss"] * s.lw_points,
                values.tolist(),
                range(s.lw_points),
                range(ts, ts + s.lw_points),
                strict=True,
            )
        )
        log_batch(self.lw_store, run_id, metrics=points)
        lw_runs.end_run(self.lw_store, run_id)
        progress(f"loopwise setup: {s.lw_points:,} points in {time.perf_counter() - start:.1f}s")

        eid = self.ml_client.create_experiment("history")
        ml_run = self.ml_client.create_run(eid, run_name="history").info.run_id
        start, ts_ms = time.perf_counter(), int(time.time() * 1000)
        ml_values = values[: s.ml_points].tolist()
        for first in range(0, s.ml_points, 1000):
            self.ml_client.log_batch(
                ml_run,
                metrics=[
                    Metric("loss", ml_values[i], ts_ms + i, i)
                    for i in range(first, min(first + 1000, s.ml_points))
                ],
            )
        self.ml_client.set_terminated(ml_run)
        progress(f"MLflow setup: {s.ml_points:,} points in {time.perf_counter() - start:.1f}s")

        path = f"/api/v1/runs/{run_id}/metrics/loss/history"
        with self.lw_server() as (base, _), httpx.Client(base_url=base, timeout=60) as http:

            def lw_history() -> Any:
                answer = http.get(path, params={"max_points": 1000})
                answer.raise_for_status()
                return answer.json()

            _, lw_ms, lw_answer = p95_ms(lw_history, s.history_requests)
        ml_path = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
        ml_params = {"run_ids": ml_run, "metric_key": "loss", "max_results": 1000}
        with self.ml_server() as (base, _), httpx.Client(base_url=base, timeout=120) as http:

            def ml_history() -> Any:
                answer = http.get(ml_path, params=ml_params)
                answer.raise_for_status()
                return answer.json()

            _, ml_ms, ml_answer = p95_ms(ml_history, s.history_requests)
        kept = len(lw_answer["step"])
        self.check(0 < kept <= 1000, f"loopwise returned {kept} points, not 1..1000")
        self.check(peak_step in lw_answer["step"], "loopwise lost the spike")
        ml_steps = [m.get("step", 0) for m in ml_answer.get("metrics", [])]
        ml_spike = peak_step in ml_steps if s.ml_points > peak_step else None
        self.results.add(
            "history_downsample_ms",
            lw_ms,
            ml_ms,
            higher_is_better=False,
            unit="ms",
            note=(
                f"median of {s.history_requests} requests for 1,000 points: loopwise from "
                f"{s.lw_points:,} points (min/max/last per step bucket, {kept} kept, spike "
                f"kept), MLflow get-history-bulk-interval from {s.ml_points:,} points "
                f"({len(ml_steps)} returned"
                + ("" if ml_spike is None else f", spike {'kept' if ml_spike else 'lost'}")
                + ")"
            ),
        )

    # -- 4. remote log_metric -----------------------------------------------------------------

    def remote_log_metric(self) -> None:
        import mlflow

        import loopwise as lw
        from loopwise import context
        from loopwise.tracking import runs as lw_runs

        s = self.sizes
        with self.lw_server() as (base, _):
            lw.configure(tracking_url=base, store_url=f"sqlite:///{self.folder / 'unused.db'}")
            with lw.start_run(experiment="remote") as run:
                writer = context.remote_tracking().writer
                start = time.perf_counter()
                for i in range(s.lw_remote_calls):
                    lw.log_metric("loss", i * 0.001)
                lw.flush()
                lw_seconds = time.perf_counter() - start
                requests = writer.requests
            lw.configure(store_url=self.lw_url, artifacts_url=str(self.lw_dir / "art"))
        stored = len(lw_runs.metric_history(self.lw_store, run.id, "loss"))
        self.check(stored == s.lw_remote_calls, f"loopwise stored {stored} remote points")
        with self.ml_server() as (base, _):
            mlflow.set_tracking_uri(base)
            mlflow.set_experiment("remote")
            with mlflow.start_run():
                start = time.perf_counter()
                for i in range(s.ml_remote_calls):
                    mlflow.log_metric("loss", i * 0.001, step=i)
                ml_seconds = time.perf_counter() - start
        lw_rate, ml_rate = s.lw_remote_calls / lw_seconds, s.ml_remote_calls / ml_seconds
        self.results.add(
            "remote_log_metric_calls_per_s",
            lw_rate,
            ml_rate,
            higher_is_better=True,
            unit="calls/s",
            note=(
                f"loopwise: {s.lw_remote_calls:,} lw.log_metric calls until flushed to "
                f"`loopwise server` ({requests} log-batch requests); MLflow: "
                f"{s.ml_remote_calls:,} mlflow.log_metric calls against `mlflow server` "
                "(one request each); both servers on SQLite"
            ),
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], FIGURES, argv)
    sizes = QUICK if args.quick else FULL
    figures = [args.only] if args.only else list(FIGURES)
    mode = "quick" if args.quick else "full"
    print(f"bench server ({mode}): {', '.join(figures)}", flush=True)
    with work_folder(args.workdir, "bench-server-") as folder:
        bench = Bench(folder, sizes)
        steps = {
            "server_start_s": bench.server_start,
            "runs_page_ms": bench.runs_page,
            "history_downsample_ms": bench.history_downsample,
            "remote_log_metric_calls_per_s": bench.remote_log_metric,
        }
        run_figures(figures, lambda figure: steps[figure]())
        bench.lw_store.db.engine.dispose()
        bench.results.print_results()
    return exit_code(bench.failed_checks)


if __name__ == "__main__":
    sys.exit(main())
