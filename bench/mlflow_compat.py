"""MLflow compatibility: one unchanged MLflow client script against `loopwise server` and
against `mlflow server`, both on SQLite, in one run (see bench/README.md):

1. ``mlflow_client_log_batch_s``: 10,000 metrics of one run through
   ``MlflowClient.log_batch`` in batches of 100 (100 requests), median of a few rounds.
2. ``mlflow_client_search_ms``: ``search_runs`` over 2,000 runs with a filter and an
   order, first 100 rows, median of N (both answers checked against each other).
3. ``mlflow_client_history_ms``: ``get_metric_history`` of a 10,000-point metric, median
   of N.

The 2,000 runs are written through the same client against each server beforehand (not
timed): ``create_run``, one ``log_batch`` of 10 params and 10 metrics, ``set_terminated``.

Both servers run for the whole script, and their timings alternate in rounds: a machine
whose speed drifts (a shared VM's does, by 30-50% within minutes) then slows both sides
alike instead of whichever was timed second. While one side is timed, the other's
processes are stopped (SIGSTOP: MLflow's server keeps job consumers polling in the
background), so neither takes CPU from the other.

    python bench/mlflow_compat.py [--quick] [--only NAME] [--workdir DIR]
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
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
#: Rounds of the log_batch figure (each side logs its 10,000 metrics once per round), and
#: calls per side in one round of a read figure.
BATCH_ROUNDS = {FULL: 3, QUICK: 2}
CALLS_PER_ROUND = 2


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
    """One server (or the client-floor stub) under the same client script, with the
    processes to stop while another side is timed."""

    def __init__(
        self, name: str, base: str, proc: subprocess.Popen[bytes], experiment: str | None = None
    ) -> None:
        self.name, self.base, self.proc = name, base, proc
        self.client = client_for(base)
        self.experiment = experiment or self.client.create_experiment(f"bench-{time.time_ns()}")
        self.times: list[float] = []

    def processes(self) -> list[psutil.Process]:
        """The server's process and its children (MLflow's workers and job consumers),
        listed anew each time: a server may start children late."""
        top = psutil.Process(self.proc.pid)
        return [top, *top.children(recursive=True)]

    def log_batch(self, count: int, run_id: str | None = None) -> float:
        """Seconds of ``count`` metrics in batches of 100 into a new run (or ``run_id``)."""
        from mlflow.entities import Metric

        run_id = run_id or self.client.create_run(self.experiment).info.run_id
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


def settle(sides: list[Side], limit_s: float = 180.0) -> None:
    """Wait until no side's processes use more than a tenth of a core: MLflow's server
    answers /health while its eight job consumers are still importing (~30 s of CPU)."""
    deadline = time.monotonic() + limit_s

    def cpu() -> float:
        total = 0.0
        for side in sides:
            for proc in side.processes():
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = proc.cpu_times()
                    total += times.user + times.system
        return total

    before = cpu()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu()
        if now - before < 0.1:
            return
        before = now
    progress(f"the servers were still busy after {limit_s:.0f}s; timing anyway")


def pause(side: Side) -> None:
    for proc in side.processes():
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.suspend()


def resume(side: Side) -> None:
    for proc in side.processes():
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.resume()


@contextlib.contextmanager
def alone(side: Side, sides: list[Side]) -> Iterator[Side]:
    """``side`` running and every other side stopped, for as long as the block runs."""
    for other in sides:
        if other is not side:
            pause(other)
    resume(side)
    try:
        yield side
    finally:
        for other in sides:
            resume(other)


def alternate(sides: list[Side], call: Callable[[Side], Any], rounds: int, per_round: int) -> Any:
    """``per_round`` timed calls of each side in turn (the first side changes each round),
    for ``rounds`` rounds, into each side's ``times`` (ms); returns each side's last
    answer by name."""
    answers: dict[str, Any] = {}
    for side in sides:
        side.times = []
        with alone(side, sides):
            answers[side.name] = call(side)  # warm-up, untimed
    for r in range(rounds):
        for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
            with alone(side, sides):
                for _ in range(per_round):
                    seconds, answers[side.name] = timed(lambda side=side: call(side))
                    side.times.append(seconds * 1000)
    return answers


def measure(sides: list[Side], figure: str, sizes: Sizes, folder: Path) -> dict[str, Any]:
    """Time one figure on both servers in alternating rounds (each side's times in
    ``side.times``); for the read figures also the client's floor (``FLOORS``). Returns
    what to check: each side's answer."""
    if figure == "mlflow_client_log_batch_s":
        for side in sides:
            with alone(side, sides):
                side.log_batch(1000)  # warm-up (a fresh server's first requests are slower)
            side.times = []
        answer = folder / "log_batch.json"
        answer.write_bytes(b"{}")  # MLflow's (and loopwise's) answer to a log-batch
        with replay_stub(answer, sides[0].experiment) as floor:
            everyone = [*sides, floor]
            for r in range(BATCH_ROUNDS[sizes]):  # seconds of the batches alone (not the
                for side in everyone[r % 3 :] + everyone[: r % 3]:  # run's creation)
                    with alone(side, everyone):
                        run_id = "0" * 32 if side is floor else None
                        side.times.append(side.log_batch(sizes.batch_metrics, run_id))
            FLOORS[figure] = statistics.median(floor.times)
        return {side.name: None for side in sides}
    if figure == "mlflow_client_search_ms":
        for side in sides:
            with alone(side, sides):
                side.write_runs(sizes.runs, np.random.default_rng(1))  # the same runs
        call: Callable[[Side], Any] = lambda side: side.search()  # noqa: E731
        requests = {s.name: ("POST", "runs/search", _search_body(s.experiment)) for s in sides}
    else:
        runs: dict[str, str] = {}
        for side in sides:
            with alone(side, sides):
                runs[side.name] = side.history_run(sizes.history_points)

        def call(side: Side) -> Any:
            return len(side.client.get_metric_history(runs[side.name], "loss"))

        requests = {
            s.name: (
                "GET",
                "metrics/get-history",
                {"run_id": runs[s.name], "metric_key": "loss", "max_results": 25_000},
            )
            for s in sides
        }
    lw = sides[0]
    with alone(lw, sides):
        answer = record(lw, requests[lw.name], folder / f"{figure}.json")
    with replay_stub(answer, lw.experiment) as floor:
        if figure == "mlflow_client_history_ms":
            runs["floor"] = runs[lw.name]
        rounds = max(1, sizes.repeats // CALLS_PER_ROUND)
        answers = alternate([*sides, floor], call, rounds, CALLS_PER_ROUND)
        FLOORS[figure] = statistics.median(floor.times)
    return answers


#: The MLflow client's own floor per figure (in the figure's unit): the same calls against
#: a stub that answers loopwise's recorded answer at once (bench/_replay.py).
FLOORS: dict[str, float] = {}


def _search_body(experiment: str) -> dict[str, Any]:
    return {
        "experiment_ids": [experiment],
        "filter": SEARCH_FILTER,
        "order_by": SEARCH_ORDER,
        "max_results": 100,
        "run_view_type": "ACTIVE_ONLY",
    }


def record(side: Side, request: tuple[str, str, dict[str, Any]], answer: Path) -> Path:
    """Write the server's answer to ``request`` (method, MLflow route, fields) to
    ``answer``, for the stub to replay."""
    method, route, fields = request
    url = f"{side.base}/api/2.0/mlflow/{route}"
    got = (
        httpx.post(url, json=fields, timeout=60)
        if method == "POST"
        else httpx.get(url, params=fields, timeout=60)
    )
    got.raise_for_status()
    answer.write_bytes(got.content)
    return answer


@contextlib.contextmanager
def replay_stub(answer: Path, experiment: str) -> Iterator[Side]:
    """The side "floor": bench/_replay.py answering ``answer`` at once, under the client
    of the loopwise side's ``experiment``. What the client alone costs -- sending the
    request, reading and parsing the answer -- below any server."""
    port = free_port()
    stub = [sys.executable, str(Path(__file__).with_name("_replay.py")), str(port), str(answer)]
    proc = subprocess.Popen(stub, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield Side("floor", f"http://127.0.0.1:{port}", proc, experiment=experiment)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


NOTES = {
    "mlflow_client_log_batch_s": "median of {rounds} alternating rounds: {batch:,} metrics, "
    "MlflowClient.log_batch in batches of 100",
    "mlflow_client_search_ms": "median of {repeats}, alternating rounds: search_runs over {runs:,} "
    'runs, filter "' + SEARCH_FILTER + '", order ' + str(SEARCH_ORDER) + ", 100 rows",
    "mlflow_client_history_ms": "median of {repeats}, alternating rounds: get_metric_history of "
    "{points:,} points",
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], FIGURES, argv)
    sizes = QUICK if args.quick else FULL
    figures = [args.only] if args.only else list(FIGURES)
    print(f"bench mlflow_compat ({'quick' if args.quick else 'full'}): {', '.join(figures)}")
    results = Results("mlflow_compat")
    failed: list[str] = []
    measured: dict[str, dict[str, tuple[float, Any]]] = {"loopwise": {}, "MLflow": {}}
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
        lw_proc: list[subprocess.Popen[bytes]] = []
        ml_proc: list[subprocess.Popen[bytes]] = []
        with (
            server(lw_cmd, lw_port, folder / "loopwise.log", lw_proc) as (lw_base, _),
            server(ml_cmd, ml_port, folder / "mlflow.log", ml_proc) as (ml_base, _),
        ):
            sides = [Side("loopwise", lw_base, lw_proc[0]), Side("MLflow", ml_base, ml_proc[0])]
            settle(sides)
            try:
                for figure in figures:
                    progress(f"{figure} ...")
                    answers = measure(sides, figure, sizes, folder)
                    for side in sides:
                        value = statistics.median(side.times)
                        measured[side.name][figure] = (value, answers[side.name])
            finally:
                for side in sides:
                    resume(side)  # a stopped server cannot be told to stop

    def run_one(figure: str) -> None:
        (lw, lw_check), (ml, ml_check) = measured["loopwise"][figure], measured["MLflow"][figure]
        if lw_check != ml_check or (figure == "mlflow_client_search_ms" and len(lw_check) != 100):
            failed.append(f"{figure}: the servers answered differently ({lw_check} / {ml_check})")
        unit = "s" if figure.endswith("_s") else "ms"
        note = NOTES[figure].format(
            batch=sizes.batch_metrics, repeats=sizes.repeats, runs=sizes.runs,
            points=sizes.history_points, rounds=BATCH_ROUNDS[sizes],
        )  # fmt: skip
        results.add(figure, lw, ml, higher_is_better=False, unit=unit, note=note)
        if figure in FLOORS:
            floor = FLOORS[figure]
            print(
                f"  client floor (a stub answering loopwise's recorded answer at once): "
                f"{floor:.2f} {unit}; the best ratio any server could reach: {ml / floor:.2f}x; "
                f"the servers' parts: loopwise {lw - floor:.2f} {unit}, MLflow {ml - floor:.2f} "
                f"{unit}"
            )

    run_figures(figures, run_one)
    results.print_results()
    return exit_code(failed)


if __name__ == "__main__":
    raise SystemExit(main())
