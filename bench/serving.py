"""Serving: loopwise's endpoint against `mlflow models serve` and BentoML, same model.

One scikit-learn model (a 50-tree RandomForestClassifier on 10 float features, fitted on
a DataFrame) is served three ways, each a subprocess with one worker on 127.0.0.1:

- loopwise: registered in a temporary store, ``loopwise serve models:/bench-forest@champion``
  (the real CLI), ``POST /predict`` with ``{"inputs": [row]}``;
- MLflow: ``mlflow.sklearn.save_model`` then ``mlflow models serve -m DIR --env-manager
  local -w 1``, ``POST /invocations`` with ``{"dataframe_records": [row]}``;
- BentoML (``pip install bentoml`` in .venv-bench beside MLflow installs cleanly; it only
  moves opentelemetry 1.45.2 to 1.45.1, and MLflow still works): a hand-written
  ``@bentoml.service(workers=1)`` whose ``predict`` turns the records into a NumPy array,
  ``POST /predict`` with ``{"inputs": [row]}``. Its figures go in the RESULT lines as
  extra fields (``bentoml``, ``bentoml_ratio``); the ratio is against MLflow.

The servers run one at a time, so they never compete for the two cores with each other.
For the concurrency-1 runs (and the loopback round trip) the server is pinned to the last
core and the load generator to the first, for every server alike; the throughput runs
share all cores. The load generator (:func:`loopwise.loadtest.generator.drive`, a
keep-alive HTTP/1.1 client on asyncio, 0.03-0.09 ms of CPU per request) shares the machine
with the server under test.
A script without MLflow or BentoML installed reports their figures as not measured.
Each measured run follows an untimed warm-up run. Figures (see bench/README.md):

1. ``predict_floor_ms``: in-process one-row predict, median: loopwise's loaded model on a
   record (signature check included) against MLflow's pyfunc on a one-row DataFrame; the
   estimator's own ``predict`` on a NumPy row (the floor) in the note.
2. ``p50_c1_ms``, ``p99_c1_ms``: latency at concurrency 1 (one request at a time).
3. ``throughput_c8_rps``: answers per second at concurrency 8.
4. ``swap_failed_requests``: 10 alias moves under load at concurrency 8 (``run_loadtest``
   with ``swap_to``, versions 2..11 of the same model); failed requests in all (MLflow's
   server has no alias to follow: a new version is a restart, so it is not measured).

A check fails (exit 1) when a server answers otherwise than the in-process model, when a
run has failed requests, or when a swap is not seen answering before its run ends.

    python bench/serving.py [--quick] [--only NAME] [--workdir DIR]
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import pickle
import signal
import socket
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import Results, exit_code, fmt, make_parser, progress, run_figures, work_folder

FIGURES = (
    "predict_floor_ms",
    "p50_c1_ms",
    "p99_c1_ms",
    "throughput_c8_rps",
    "swap_failed_requests",
)
ECHO_FLAG = "--echo-server"  # internal: a minimal HTTP server, for the loopback round trip
MODEL = "bench-forest"
COLUMNS = [f"f{i}" for i in range(10)]
TREES = 50
SWAPS = 10
SWAP_CONCURRENCY = 8
FEATURE_WARNING = "X does not have valid feature names"


@dataclass(frozen=True)
class Sizes:
    seconds: float  # one measured run
    warmup: float  # the untimed run before it
    swap_run: float  # one run with one alias move
    swap_at: float
    poll_interval: float  # loopwise serve --poll-interval
    predict_calls: int  # in-process predicts timed (median)


FULL = Sizes(
    seconds=20.0, warmup=3.0, swap_run=4.0, swap_at=0.5, poll_interval=2.0, predict_calls=500
)
QUICK = Sizes(
    seconds=5.0, warmup=1.0, swap_run=2.0, swap_at=0.4, poll_interval=0.5, predict_calls=100
)


# -- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server subprocess in a session of its own (so its workers stop with it)."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        port: int,
        ready: str,
        log: Path,
    ) -> None:
        self.name, self.cmd, self.env, self.cwd = name, cmd, env, cwd
        self.url = f"http://127.0.0.1:{port}"
        self.port, self.ready, self.log = port, ready, log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        start = time.perf_counter()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if get(self.port, self.ready)[0] == 200:
                progress(f"{self.name} ready in {time.perf_counter() - start:.1f}s ({self.url})")
                return self
            time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-2000:]
        self.__exit__()
        raise RuntimeError(f"{self.name} did not start; its log ends with:\n{tail}")

    def cpu_seconds(self) -> float:
        """CPU time of the server and its workers so far."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def pin(self, cpus: set[int]) -> None:
        """Every thread of the server and its workers on ``cpus`` (threads it starts later
        inherit it from their parent thread)."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in procs:
            for tid in os.listdir(f"/proc/{proc.pid}/task"):
                try:
                    os.sched_setaffinity(int(tid), cpus)
                except (ProcessLookupError, PermissionError):
                    continue

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # the group this script started
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@contextmanager
def separate_cores(server: Server, on: bool) -> Iterator[None]:
    """With ``on`` (the concurrency-1 runs), the server on the last core and this thread
    (the load generator) on the first, so that a latency figure is the server's and not
    the two processes preempting each other; everything back on every core afterwards.
    The throughput runs share all cores, as a server under load would."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not on or len(cores) < 2:
        yield
        return
    server.pin({cores[-1]})
    os.sched_setaffinity(0, {cores[0]})
    try:
        yield
    finally:
        os.sched_setaffinity(0, set(cores))
        server.pin(set(cores))


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", parts.path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw


def echo_main(port: int) -> int:
    """A keep-alive HTTP/1.1 server that answers every request with a small JSON body at
    once: the loopback round trip of the load generator, without a framework or a model."""
    body = b'{"predictions": [0], "model": "echo/1"}'
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    answer += b"content-length: %d\r\n\r\n%s" % (len(body), body)

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport, self.buf = transport, b""
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while (end := self.buf.find(b"\r\n\r\n")) >= 0:
                head = self.buf[:end].lower()
                at = head.find(b"content-length:")
                size = int(head[at + 15 :].split(b"\r\n")[0]) if at >= 0 else 0
                if len(self.buf) < end + 4 + size:
                    return
                self.buf = self.buf[end + 4 + size :]
                self.transport.write(answer)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(main())
    return 0


# -- the bench --------------------------------------------------------------------------------


class Bench:
    def __init__(self, folder: Path, sizes: Sizes, figures: list[str]) -> None:
        self.folder, self.sizes, self.figures = folder, sizes, figures
        self.results = Results("serving")
        self.failed_checks: list[str] = []
        self.bin = Path(sys.executable).parent
        rng = np.random.default_rng(20241202)
        import pandas as pd
        from sklearn.ensemble import RandomForestClassifier

        X = pd.DataFrame(rng.normal(size=(5_000, len(COLUMNS))), columns=COLUMNS)
        y = (X["f0"] + X["f1"] - X["f2"] + 0.3 * rng.normal(size=len(X)) > 0).astype(int)
        self.model = RandomForestClassifier(n_estimators=TREES, random_state=0).fit(X, y)
        self.X = X
        self.row = {c: float(v) for c, v in X.iloc[0].items()}
        self.expected = int(self.model.predict(X.iloc[:1])[0])
        self.lw_uri = f"models:/{MODEL}@champion"
        self.c1: dict[str, Any] = {}
        self.c8: dict[str, Any] = {}
        self.swap: dict[str, Any] | None = None
        self.rtt: Any = None
        self.floor_ms: float | None = None

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.failed_checks.append(message)
            progress(f"CHECK FAILED: {message}")

    # -- in process ---------------------------------------------------------------------------

    def sklearn_floor(self) -> float:
        """Median ms of the estimator's own predict on a one-row NumPy array."""
        if self.floor_ms is None:
            array = np.array([[self.row[c] for c in COLUMNS]])
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=FEATURE_WARNING)
                fns = {"floor": lambda: self.model.predict(array)}
                self.floor_ms = medians_interleaved(fns, self.sizes.predict_calls)["floor"]
        return self.floor_ms

    def floor(self) -> None:
        import pandas as pd

        from loopwise.registry.signature import check_input

        n = self.sizes.predict_calls
        array = np.array([[self.row[c] for c in COLUMNS]])
        frame = pd.DataFrame([self.row], columns=COLUMNS)
        loaded = self.lw.load_model(self.lw_uri)
        self.check(
            int(loaded.predict([self.row])[0]) == self.expected, "loopwise predicts otherwise"
        )
        fns = {
            "loopwise": lambda: loaded.predict([self.row]),
            "check_input": lambda: check_input(loaded.signature, [self.row]),
            "sklearn_ndarray": lambda: self.model.predict(array),
            "sklearn_dataframe": lambda: self.model.predict(frame),
        }
        mlflow = quiet_mlflow()
        if mlflow is not None:
            pyfunc = mlflow.pyfunc.load_model(str(self.mlflow_model()))
            self.check(
                int(np.asarray(pyfunc.predict(frame))[0]) == self.expected,
                "MLflow's pyfunc predicts otherwise",
            )
            fns["mlflow"] = lambda: pyfunc.predict(frame)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=FEATURE_WARNING)
            ms = medians_interleaved(fns, n)
        self.floor_ms = sk_array = ms["sklearn_ndarray"]
        sk_frame, lw_ms, ml_ms = ms["sklearn_dataframe"], ms["loopwise"], ms.get("mlflow")
        check_us = ms["check_input"] * 1000
        self.results.add_against(
            "predict_floor_ms",
            lw_ms,
            "mlflow",
            ml_ms,
            higher_is_better=False,
            unit="ms",
            note=(
                f"one row, median of {n} rounds in this process, each calling every variant "
                f"once: loopwise LoadedModel.predict "
                f"(record; signature check {check_us:,.0f} us) vs MLflow pyfunc.predict "
                f"(one-row DataFrame)\n"
                f"    the estimator alone: {fmt(sk_array)} ms on a NumPy row (the floor), "
                f"{fmt(sk_frame)} ms on a one-row DataFrame"
            ),
            extra={
                "sklearn_ndarray_ms": round(sk_array, 3),
                "sklearn_dataframe_ms": round(sk_frame, 3),
                "loopwise_check_input_us": round(check_us, 1),
            },
        )

    # -- the servers --------------------------------------------------------------------------

    def setup_loopwise(self) -> None:
        import loopwise as lw

        folder = self.folder / "loopwise"
        folder.mkdir()
        self.lw_env = {
            "LOOPWISE_STORE_URL": f"sqlite:///{folder / 'lw.db'}",
            "LOOPWISE_ARTIFACTS_URL": str(folder / "artifacts"),
            "LOOPWISE_CACHE_DIR": str(folder / "server-cache"),
        }
        lw.configure(
            store_url=self.lw_env["LOOPWISE_STORE_URL"],
            artifacts_url=self.lw_env["LOOPWISE_ARTIFACTS_URL"],
            cache_dir=str(folder / "cache"),
            capture_environment=False,
        )
        for _ in range(1 + SWAPS):  # the same model as versions 1..11, for the swaps
            lw.log_model(self.model, MODEL, input_example=self.X[:5])
        lw.set_alias(MODEL, "champion", 1)
        self.lw = lw

    def mlflow_model(self) -> Path:
        path = self.folder / "mlflow" / "model"
        if not path.exists():
            mlflow = quiet_mlflow()
            path.parent.mkdir(exist_ok=True)
            mlflow.sklearn.save_model(
                self.model,
                str(path),
                input_example=self.X[:5],
                skops_trusted_types=["sklearn.tree._tree.Tree"],
            )
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"  # mlflow runs `uvicorn`
        env.update(MLFLOW_DISABLE_TELEMETRY="true", BENTOML_DO_NOT_TRACK="true", **extra)
        return env

    def loopwise_server(self) -> Server:
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "loopwise",
            "serve",
            self.lw_uri,
            "--port",
            str(port),
            "--poll-interval",
            str(self.sizes.poll_interval),
        ]
        return Server(
            "loopwise serve",
            cmd,
            env=self.env(**self.lw_env),
            cwd=self.folder,
            port=port,
            ready="/ready",
            log=self.folder / "loopwise.log",
        )

    def mlflow_server(self) -> Server | None:
        if quiet_mlflow() is None or not (self.bin / "mlflow").exists():
            progress("MLflow is not installed here: use .venv-bench (make .venv-bench/...)")
            return None
        port = free_port()
        cmd = [
            str(self.bin / "mlflow"),
            "models",
            "serve",
            "-m",
            str(self.mlflow_model()),
            "--env-manager",
            "local",
            "-w",
            "1",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ]
        return Server(
            "mlflow models serve",
            cmd,
            env=self.env(),
            cwd=self.folder / "mlflow",
            port=port,
            ready="/ping",
            log=self.folder / "mlflow.log",
        )

    def bentoml_server(self) -> Server | None:
        if not (self.bin / "bentoml").exists():
            progress("BentoML is not installed here: its figures are left out")
            return None
        folder = self.folder / "bentoml"
        folder.mkdir(exist_ok=True)
        with open(folder / "forest.pkl", "wb") as f:
            pickle.dump(self.model, f, protocol=5)
        (folder / "bench_service.py").write_text(BENTO_SERVICE)
        port = free_port()
        cmd = [
            str(self.bin / "bentoml"),
            "serve",
            "bench_service:Forest",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        env = self.env(BENTOML_HOME=str(folder / "home"), BENCH_MODEL=str(folder / "forest.pkl"))
        return Server(
            "bentoml serve",
            cmd,
            env=env,
            cwd=folder,
            port=port,
            ready="/readyz",
            log=self.folder / "bentoml.log",
        )

    def serve_and_load(self, tool: str, server: Server | None, path: str, body: dict) -> None:
        """Check one answer, then the c1 and c8 runs this invocation needs."""
        if server is None:
            return
        from loopwise.loadtest.generator import drive

        url = server.url + path
        status, answer = post(url, body)
        predictions = answer.get("predictions") if isinstance(answer, dict) else answer
        self.check(
            status == 200 and list(predictions) == [self.expected],
            f"{tool} answered {status} {str(answer)[:200]}, expected [{self.expected}]",
        )
        raw = json.dumps(body).encode()
        wanted = {"p50_c1_ms", "p99_c1_ms", "throughput_c8_rps"} & set(self.figures)
        runs = ([1] if wanted & {"p50_c1_ms", "p99_c1_ms"} else []) + (
            [8] if "throughput_c8_rps" in wanted else []
        )
        for concurrency in runs:
            with separate_cores(server, concurrency == 1):
                drive(url, raw, concurrency=concurrency, duration=self.sizes.warmup)
                cpu = server.cpu_seconds()
                report = drive(url, raw, concurrency=concurrency, duration=self.sizes.seconds)
                cpu = server.cpu_seconds() - cpu
            self.check(report.failed == 0, f"{tool} at concurrency {concurrency}: {report.errors}")
            progress(
                f"{tool} c{concurrency}: {report.throughput_rps:,.1f} req/s, p50 "
                f"{report.p50_ms:.2f} ms, p99 {report.p99_ms:.2f} ms, server CPU "
                f"{cpu * 1000 / max(report.requests, 1):.2f} ms/request, client CPU "
                f"{report.client_cpu_ms_per_request:.3f} ms/request"
            )
            store = self.c1 if concurrency == 1 else self.c8
            store[tool] = (report, cpu * 1000 / max(report.requests, 1))

    def round_trip(self) -> None:
        """p50 of a loopback round trip to a server that does nothing."""
        from loopwise.loadtest.generator import drive

        port = free_port()
        cmd = [sys.executable, str(Path(__file__).resolve()), ECHO_FLAG, str(port)]
        with Server(
            "echo server",
            cmd,
            env=self.env(),
            cwd=self.folder,
            port=port,
            ready="/",
            log=self.folder / "echo.log",
        ) as echo:
            body = json.dumps({"inputs": [self.row]}).encode()
            with separate_cores(echo, True):  # as the latency runs it is added to
                self.rtt = drive(f"{echo.url}/predict", body, concurrency=1, duration=2.0)

    def swaps(self, server: Server) -> None:
        from loopwise.loadtest.generator import run_loadtest

        failed, observed, pickups, gaps, requests = 0, 0, [], [], 0
        for i in range(SWAPS):
            report = run_loadtest(
                server.url,
                store=self.lw.get_store(),
                concurrency=SWAP_CONCURRENCY,
                duration=self.sizes.swap_run,
                swap_to=2 + i,
                swap_at=self.sizes.swap_at,
            )
            swap = report.swap
            failed += report.failed
            requests += report.requests
            observed += swap.observed
            gaps.append(report.longest_gap_ms or 0.0)
            if swap.pickup_s is not None:
                pickups.append(swap.pickup_s)
            self.check(swap.observed, f"swap {i + 1}: version {2 + i} never answered")
            self.check(report.failed == 0, f"swap {i + 1}: failed requests {report.errors}")
        progress(f"{SWAPS} swaps: {failed} failed of {requests:,} requests")
        self.swap = {
            "failed": failed,
            "requests": requests,
            "observed": observed,
            "pickup_max_s": max(pickups) if pickups else None,
            "pickup_median_s": statistics.median(pickups) if pickups else None,
            "gap_max_ms": max(gaps),
            "gap_median_ms": statistics.median(gaps),
        }

    def servers(self) -> None:
        body = {"inputs": [self.row]}
        if any(f != "predict_floor_ms" for f in self.figures):
            with self.loopwise_server() as server:
                self.serve_and_load("loopwise", server, "/predict", body)
                if "swap_failed_requests" in self.figures:
                    self.swaps(server)
        if not {"p50_c1_ms", "p99_c1_ms", "throughput_c8_rps"} & set(self.figures):
            return
        ml = self.mlflow_server()
        if ml is not None:
            with ml:
                self.serve_and_load("mlflow", ml, "/invocations", {"dataframe_records": [self.row]})
        bento = self.bentoml_server()
        if bento is not None:
            with bento:
                self.serve_and_load("bentoml", bento, "/predict", body)
        if {"p50_c1_ms", "p99_c1_ms"} & set(self.figures):
            self.round_trip()

    # -- figures ------------------------------------------------------------------------------

    def latency(self, metric: str, attr: str) -> None:
        if "loopwise" not in self.c1:
            return
        lw_report, lw_cpu = self.c1["loopwise"]
        ml = self.c1.get("mlflow")
        bento = self.c1.get("bentoml")
        lw_value = getattr(lw_report, attr)
        ml_value = None if ml is None else getattr(ml[0], attr)
        extra = extra_for("bentoml", bento, attr, ml_value, higher_is_better=False)
        note = (
            f"concurrency 1 for {self.sizes.seconds:g}s after a {self.sizes.warmup:g}s warm-up; "
            f"loopwise {lw_report.requests:,} requests"
        )
        if ml is not None:
            note += f", MLflow {ml[0].requests:,}"
        if bento is not None:
            note += f", BentoML {bento[0].requests:,} ({fmt(getattr(bento[0], attr))} ms)"
        if attr == "p99_ms" and self.rtt is not None:
            floor = self.sklearn_floor()
            target = floor + self.rtt.p50_ms + 1.0
            met = "met" if lw_value <= target else "MISSED"
            note += (
                f"\n    target: <= floor {fmt(floor)} + loopback round trip "
                f"{fmt(self.rtt.p50_ms)} (p50; p99 {fmt(self.rtt.p99_ms)}) + 1 ms = "
                f"{fmt(target)} ms: {met}"
            )
            extra["round_trip_p50_ms"] = round(self.rtt.p50_ms, 3)
            extra["round_trip_p99_ms"] = round(self.rtt.p99_ms, 3)
        elif attr == "p50_ms":
            extra["loopwise_server_cpu_ms"] = round(lw_cpu, 3)
            if ml is not None:
                extra["mlflow_server_cpu_ms"] = round(ml[1], 3)
        self.results.add_against(
            metric,
            lw_value,
            "mlflow",
            ml_value,
            higher_is_better=False,
            unit="ms",
            note=note,
            extra=extra,
        )

    def throughput(self) -> None:
        if "loopwise" not in self.c8:
            return
        lw_report, lw_cpu = self.c8["loopwise"]
        ml = self.c8.get("mlflow")
        bento = self.c8.get("bentoml")
        ml_value = None if ml is None else ml[0].throughput_rps
        extra = extra_for("bentoml", bento, "throughput_rps", ml_value, higher_is_better=True)
        extra["loopwise_p99_ms"] = round(lw_report.p99_ms, 3)
        extra["loopwise_server_cpu_ms"] = round(lw_cpu, 3)
        extra["client_cpu_ms"] = round(lw_report.client_cpu_ms_per_request, 4)
        lines = [
            f"concurrency 8 for {self.sizes.seconds:g}s after a warm-up: p99 / server CPU "
            f"per request: loopwise {fmt(lw_report.p99_ms)} ms / {fmt(lw_cpu)} ms"
        ]
        for name, got in (("MLflow", ml), ("BentoML", bento)):
            if got is not None:
                lines.append(f"{name} {fmt(got[0].p99_ms)} ms / {fmt(got[1])} ms")
                extra[f"{name.lower()}_p99_ms"] = round(got[0].p99_ms, 3)
                extra[f"{name.lower()}_server_cpu_ms"] = round(got[1], 3)
        if bento is not None:
            lines[-1] += f"; BentoML {fmt(bento[0].throughput_rps)} req/s"
        target = ""
        if ml_value is not None:
            met = lw_report.throughput_rps >= 3 * ml_value
            target = f"\n    target >= 3x MLflow: {'met' if met else 'MISSED'}"
        self.results.add_against(
            "throughput_c8_rps",
            lw_report.throughput_rps,
            "mlflow",
            ml_value,
            higher_is_better=True,
            unit="req/s",
            note=", ".join(lines) + target,
            extra=extra,
        )

    def swap_figure(self) -> None:
        if self.swap is None:
            return
        s = self.swap
        note = (
            f"{SWAPS} alias moves (versions 2..{SWAPS + 1}), each in a "
            f"{self.sizes.swap_run:g}s run at concurrency {SWAP_CONCURRENCY}, the server "
            f"polling every {self.sizes.poll_interval:g}s: {s['requests']:,} requests, new "
            f"version seen answering {s['observed']}/{SWAPS}; pick-up after the move median "
            f"{s['pickup_median_s']:.2f}s (max {s['pickup_max_s']:.2f}s); longest gap between "
            f"answers median {fmt(s['gap_median_ms'])} ms (max {fmt(s['gap_max_ms'])} ms); "
            f"target 0: {'met' if s['failed'] == 0 else 'MISSED'}\n"
            "    MLflow's server serves a fixed model: a new version is a restart"
        )
        self.results.add_against(
            "swap_failed_requests",
            float(s["failed"]),
            "mlflow",
            None,
            higher_is_better=False,
            unit="requests",
            note=note,
            extra={k: (round(v, 3) if isinstance(v, float) else v) for k, v in s.items()},
        )

    def run(self, figure: str) -> None:
        {
            "predict_floor_ms": self.floor,
            "p50_c1_ms": lambda: self.latency("p50_c1_ms", "p50_ms"),
            "p99_c1_ms": lambda: self.latency("p99_c1_ms", "p99_ms"),
            "throughput_c8_rps": self.throughput,
            "swap_failed_requests": self.swap_figure,
        }[figure]()


def extra_for(
    name: str, got: Any, attr: str, ml_value: float | None, *, higher_is_better: bool
) -> dict[str, Any]:
    """The third tool's figure and its ratio against MLflow, for the RESULT line."""
    if got is None:
        return {}
    value = getattr(got[0], attr)
    out: dict[str, Any] = {name: round(value, 3)}
    if ml_value:
        out[f"{name}_ratio"] = round(value / ml_value if higher_is_better else ml_value / value, 3)
    return out


def medians_interleaved(fns: dict[str, Any], n: int) -> dict[str, float]:
    """Median milliseconds of each function over ``n`` rounds (after 10 untimed ones) that
    call every function once in turn, so a slow spell of the machine hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(10 + n):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if i >= 10:
                times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: statistics.median(values) for name, values in times.items()}


_mlflow: Any = False


def quiet_mlflow() -> Any:
    """MLflow, imported quietly (None when it is not installed)."""
    global _mlflow
    if _mlflow is False:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
        warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
        try:
            import logging

            import mlflow
            import mlflow.pyfunc
            import mlflow.sklearn

            logging.getLogger("mlflow").setLevel(logging.ERROR)
            _mlflow = mlflow
        except ImportError:
            _mlflow = None
    return _mlflow


BENTO_SERVICE = '''\
"""bench/serving.py's BentoML service: the pickled forest, one worker."""

import os
import pickle
import warnings

import bentoml
import numpy as np

COLUMNS = [f"f{i}" for i in range(10)]
warnings.filterwarnings("ignore", message="X does not have valid feature names")


@bentoml.service(workers=1)
class Forest:
    def __init__(self) -> None:
        with open(os.environ["BENCH_MODEL"], "rb") as f:
            self.model = pickle.load(f)

    @bentoml.api
    def predict(self, inputs: list[dict[str, float]]) -> list[int]:
        X = np.array([[row[c] for c in COLUMNS] for row in inputs], dtype=np.float64)
        return self.model.predict(X).tolist()
'''


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [ECHO_FLAG]:
        return echo_main(int(argv[1]))
    args = make_parser(__doc__.splitlines()[0], FIGURES).parse_args(argv)
    sizes = QUICK if args.quick else FULL
    figures = [args.only] if args.only else list(FIGURES)
    mode = "quick" if args.quick else "full"
    print(f"bench serving ({mode}): {', '.join(figures)}", flush=True)
    with work_folder(args.workdir, "bench-serving-") as folder:
        bench = Bench(folder, sizes, figures)
        bench.setup_loopwise()
        progress("servers ...")
        bench.servers()
        run_figures(figures, bench.run)
        from loopwise import context

        context.reset()
        bench.results.print_results()
    return exit_code(bench.failed_checks)


if __name__ == "__main__":
    sys.exit(main())
