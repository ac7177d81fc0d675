"""Server: `loopwise server` against `mlflow server`, both on SQLite, over real HTTP.

Five figures (see bench/README.md):

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
5. ``ui_runs_page_ms``: each web UI's runs page of the experiment of figure 2 in headless
   Chromium (Playwright driving the system's ``/usr/bin/chromium``), p95 of repeated loads
   from navigation start to the first page's newest run drawn: loopwise's
   ``/experiments/{id}`` (a server-rendered table) against MLflow's
   ``#/experiments/{id}/runs`` (its React app, which then searches the runs).

Each server runs in its own process on a fresh SQLite database in its own folder; the
runs and points are written beforehand (not timed). Figure 2's runs are the same for
both tools, written in bulk into each tool's own tables (loopwise's through its metric
chunk writer, :func:`loopwise.tracking.metric_store.write_points`; MLflow's rows modelled
on a first run its client wrote), a few transactions of :data:`BULK_RUNS` runs each:
through the service calls, 100,000 runs took 4-5 minutes for loopwise and far longer for
MLflow. Figure 3's points go through loopwise's service layer and MLflow's client.

    python bench/server.py [--quick] [--only NAME] [--workdir DIR]
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
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
    "ui_runs_page_ms",
)
SEARCH_FILTER = "metrics.m0 > 0.5 and params.p1 = 'a'"
SEARCH_ORDER = ["metrics.m1 DESC"]
PAGE = 100
START_TIMEOUT_S = 120.0
#: Runs written per transaction when figure 2's runs are written in bulk.
BULK_RUNS = 10_000
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: The longest a page may take to draw its table (MLflow's at 100,000 runs included).
PAGE_TIMEOUT_MS = 300_000


@dataclass(frozen=True)
class Sizes:
    lw_runs: int  # figures 2 and 5, loopwise
    ml_runs: int  # figures 2 and 5, MLflow (at most lw_runs)
    requests: int  # figure 2, timed requests per tool
    lw_points: int  # figure 3, loopwise
    ml_points: int  # figure 3, MLflow
    history_requests: int
    lw_remote_calls: int = 100_000  # figure 4, loopwise
    ml_remote_calls: int = 300  # figure 4, MLflow (one request per call)
    ui_loads: int = 20  # figure 5, timed page loads per tool


# MLflow searches 100,000 runs in minutes a request (its answers timed out at 120 s here),
# so it gets 10,000: the ratio understates loopwise's lead.
FULL = Sizes(100_000, 10_000, 50, 1_000_000, 1_000_000, 20)
QUICK = Sizes(2_000, 2_000, 20, 1_000_000, 100_000, 10, 100_000, 100, 10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(
    cmd: list[str], port: int, log: Path, started: list[subprocess.Popen[bytes]] | None = None
) -> Iterator[tuple[str, float]]:
    """Start ``cmd``; yield its base URL and the seconds until /health answered 200. The
    process is appended to ``started`` when given (to pause it: bench/mlflow_compat.py)."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "GIT_PYTHON_REFRESH": "quiet"}
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        if started is not None:
            started.append(proc)
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


def page_ms(page: Any, url: str, selector: str) -> float:
    """Milliseconds from navigation start to ``selector`` visible, in the page's own clock
    (``performance.now()`` counts from the navigation's start); from a blank page, so each
    load is a navigation of its own (a URL that differs only by its #fragment would not
    be), with the browser's cache warm."""
    page.goto("about:blank")
    page.goto(url, wait_until="commit")
    page.wait_for_selector(selector, timeout=PAGE_TIMEOUT_MS)
    return float(page.evaluate("() => performance.now()"))


def p95_of(fn: Callable[[], float], n: int, warmup: int = 2) -> tuple[float, float]:
    """p95 and median of ``n`` figures ``fn()`` returns, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    figures = [fn() for _ in range(n)]
    return float(np.percentile(figures, 95)), statistics.median(figures)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium (the system's, never a download) driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("Playwright is not installed here: pip install -e '.[bench]' (or `make bench`).")
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if executable is None:
        sys.exit(f"No Chromium at {CHROMIUM}: apt-get install chromium (as `make test` does).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


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
        self.expected_pages: list[list[str]] | None = None
        self.names: list[str] = []

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

    def _write_runs(self) -> list[list[str]]:
        """The same runs for both tools (once); the names of each tool's expected first
        page of the search."""
        if self.expected_pages is not None:
            return self.expected_pages
        s, rng = self.sizes, self.rng
        n = max(s.lw_runs, s.ml_runs)
        self.names = [f"run-{i:06d}" for i in range(n)]
        p1 = np.where(rng.random(n) < 0.6, "a", "b")
        others = rng.integers(0, 10, size=(n, 10))
        values = rng.random((n, 10))

        def params(i: int) -> dict[str, str]:
            return {f"p{j}": str(p1[i]) if j == 1 else f"v{others[i, j]}" for j in range(10)}

        start = time.perf_counter()
        self._write_lw_runs(s.lw_runs, params, values)
        progress(f"loopwise setup: {s.lw_runs:,} runs in {time.perf_counter() - start:.1f}s")
        start = time.perf_counter()
        self._write_ml_runs(s.ml_runs, params, values)
        progress(f"MLflow setup: {s.ml_runs:,} runs in {time.perf_counter() - start:.1f}s")

        def expected(count: int) -> list[str]:
            match = np.flatnonzero((values[:count, 0] > 0.5) & (p1[:count] == "a"))
            top = match[np.argsort(-values[match, 1], kind="stable")][:PAGE]
            return [self.names[i] for i in top]

        self.expected_pages = [expected(s.lw_runs), expected(s.ml_runs)]
        return self.expected_pages

    def _write_lw_runs(
        self, count: int, params: Callable[[int], dict[str, str]], values: np.ndarray
    ) -> None:
        """Finished runs with their params and one point per metric, as ``create_run``,
        ``log_batch`` and ``end_run`` write them, :data:`BULK_RUNS` per transaction."""
        from loopwise.identity import current_user
        from loopwise.ids import new_id
        from loopwise.store.tables import run_params, runs
        from loopwise.tracking.metric_store import write_points
        from loopwise.tracking.runs import HOST, get_or_create_experiment

        self.lw_experiment = get_or_create_experiment(self.lw_store, "search").id
        user, pid = current_user(), os.getpid()
        ts = time.time_ns() // 1000
        step, stamp = np.zeros(1, np.int64), np.full(1, ts, np.int64)
        for first in range(0, count, BULK_RUNS):
            run_rows, param_rows, series = [], [], {}
            for i in range(first, min(count, first + BULK_RUNS)):
                run_id, started = new_id(), ts + i * 1000  # created a millisecond apart
                run_rows.append(
                    {
                        "id": run_id,
                        "experiment_id": self.lw_experiment,
                        "name": self.names[i],
                        "status": "FINISHED",
                        "start_time": started,
                        "end_time": started + 500,
                        "heartbeat_at": started + 500,
                        "host": HOST,
                        "pid": pid,
                        "username": user,
                    }
                )
                param_rows += [
                    {"run_id": run_id, "key": k, "value": v} for k, v in params(i).items()
                ]
                for j in range(10):
                    series[(run_id, f"m{j}")] = (step, stamp, values[i, j : j + 1])
            with self.lw_store.db.write() as conn:
                conn.execute(runs.insert(), run_rows)
                conn.execute(run_params.insert(), param_rows)
                write_points(conn, series, {})
            progress(f"loopwise setup: {first + len(run_rows):,}/{count:,} runs")

    def _write_ml_runs(
        self, count: int, params: Callable[[int], dict[str, str]], values: np.ndarray
    ) -> None:
        """The same runs in MLflow's tables: the first through its client (create_run,
        log_batch, set_terminated), the others as copies of the rows it wrote (run, its
        ``mlflow.runName`` tag, params, metrics and latest metrics), in bulk."""
        import sqlalchemy as sa
        from mlflow.entities import Metric, Param
        from mlflow.store.tracking.dbmodels.models import (
            SqlLatestMetric,
            SqlMetric,
            SqlParam,
            SqlRun,
            SqlTag,
        )

        ts_ms = int(time.time() * 1000)
        eid = self.ml_client.create_experiment("search")
        self.ml_experiment = eid
        first_id = self.ml_client.create_run(eid, run_name=self.names[0]).info.run_id
        self.ml_client.log_batch(
            first_id,
            metrics=[Metric(f"m{j}", float(values[0, j]), ts_ms, 0) for j in range(10)],
            params=[Param(k, v) for k, v in params(0).items()],
        )
        self.ml_client.set_terminated(first_id)
        engine = sa.create_engine(self.ml_url)
        run_table = SqlRun.__table__
        try:
            with engine.connect() as conn:
                template = dict(
                    conn.execute(sa.select(run_table).where(run_table.c.run_uuid == first_id))
                    .mappings()
                    .one()
                )
            for first in range(1, count, BULK_RUNS):
                rows: dict[Any, list[dict[str, Any]]] = {
                    t: [] for t in (SqlRun, SqlTag, SqlParam, SqlMetric, SqlLatestMetric)
                }
                for i in range(first, min(count, first + BULK_RUNS)):
                    run_id, started = uuid.uuid4().hex, template["start_time"] + i
                    rows[SqlRun].append(
                        template
                        | {
                            "run_uuid": run_id,
                            "name": self.names[i],
                            "start_time": started,
                            "end_time": started + 1,
                            "artifact_uri": template["artifact_uri"].replace(first_id, run_id),
                        }
                    )
                    rows[SqlTag].append(
                        {"key": "mlflow.runName", "value": self.names[i], "run_uuid": run_id}
                    )
                    rows[SqlParam] += [
                        {"key": k, "value": v, "run_uuid": run_id} for k, v in params(i).items()
                    ]
                    points = [
                        {
                            "key": f"m{j}",
                            "value": float(values[i, j]),
                            "timestamp": ts_ms,
                            "step": 0,
                            "is_nan": False,
                            "run_uuid": run_id,
                        }
                        for j in range(10)
                    ]
                    rows[SqlMetric] += points
                    rows[SqlLatestMetric] += points
                with engine.begin() as conn:
                    for model, table_rows in rows.items():
                        conn.execute(model.__table__.insert(), table_rows)
                progress(f"MLflow setup: {first + len(rows[SqlRun]):,}/{count:,} runs")
        finally:
            engine.dispose()

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

    # -- 5. the web UI's runs page -----------------------------------------------------------

    def ui_runs_page(self) -> None:
        s = self.sizes
        self._write_runs()
        lw_newest, ml_newest = self.names[s.lw_runs - 1], self.names[s.ml_runs - 1]
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            with self.lw_server() as (base, _):
                url = f"{base}/experiments/{self.lw_experiment}"
                selector = f"table.runs tbody tr:first-child >> text={lw_newest}"
                lw_p95, lw_median = p95_of(lambda: page_ms(page, url, selector), s.ui_loads)
                rows = page.locator("table.runs tbody tr").count()
            ml_url = None
            with self.ml_server() as (base, _):
                # MLflow 3 opens an experiment on its GenAI overview; this is its runs table
                url = (
                    f"{base}/#/experiments/{self.ml_experiment}/runs?workflowType=machine_learning"
                )
                selector = f"text={ml_newest}"
                ml_p95, ml_median = p95_of(lambda: page_ms(page, url, selector), s.ui_loads)
                ml_url = page.url
            page.close()
        self.check(rows == PAGE, f"loopwise's runs page drew {rows} rows, not {PAGE}")
        self.check("/runs" in (ml_url or ""), f"MLflow's UI left its runs page for {ml_url}")
        self.results.add(
            "ui_runs_page_ms",
            lw_p95,
            ml_p95,
            higher_is_better=False,
            unit="ms",
            note=(
                f"p95 of {s.ui_loads} loads in headless Chromium (medians {lw_median:.0f} / "
                f"{ml_median:.0f} ms), navigation start to the newest run's row visible, "
                f"browser cache warm: loopwise's runs page over {s.lw_runs:,} runs "
                f"({rows} rows drawn), MLflow's runs page over {s.ml_runs:,} runs"
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
            "ui_runs_page_ms": bench.ui_runs_page,
        }
        run_figures(figures, lambda figure: steps[figure]())
        bench.lw_store.db.engine.dispose()
        bench.results.print_results()
    return exit_code(bench.failed_checks)


if __name__ == "__main__":
    sys.exit(main())
