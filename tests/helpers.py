"""Helpers shared by several test modules: data makers, a registered model, a served process,
waiting, a prediction-log row, a monitor's logged traffic, and a clock tests step.

Test modules import them from here instead of from each other, so a test file holds tests
and the fixtures only it uses.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
import pandas as pd
import polars as pl
import pytest

from loopwise import clock
from loopwise.ids import new_id

if TYPE_CHECKING:
    from loopwise.predictions.log import PredictionLog

SRC = str(Path(__file__).resolve().parents[1] / "src")

# -- a clock tests step -----------------------------------------------------------------------


class SteppedClock:
    """The time loopwise reads while installed (:func:`stepped_clock`): it starts at
    ``start`` and moves only when a test calls :meth:`advance`, plus one microsecond per
    reading, so two stamps are distinct and ordered as they were taken."""

    def __init__(self, start: datetime) -> None:
        self._us = clock.exact_us(start)

    def __call__(self) -> int:
        self._us += 1
        return self._us

    def now(self) -> datetime:
        """The current time (a reading: the clock moves on by a microsecond)."""
        return clock.EPOCH + timedelta(microseconds=self())

    def advance(self, seconds: float) -> None:
        """Move the time on by ``seconds``: what a test slept for before."""
        self._us += round(seconds * 1_000_000)


@contextmanager
def stepped_clock(start: datetime | None = None) -> Iterator[SteppedClock]:
    """Install a :class:`SteppedClock` (from ``start``, default the real time now)."""
    stepped = SteppedClock(start or datetime.now(UTC))
    with clock.use_clock(stepped):
        yield stepped


@pytest.fixture
def stepped() -> Iterator[SteppedClock]:
    """A :class:`SteppedClock` installed for the test (import it into a test module)."""
    with stepped_clock() as stepped_now:
        yield stepped_now


# -- waiting ----------------------------------------------------------------------------------


def wait_for(condition, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# -- a registered model -----------------------------------------------------------------------

COLUMNS = ["income", "debt", "age"]


def training_data(n: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    """Three normal features and a label that follows income - debt."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=COLUMNS)
    y = (X["income"] - X["debt"] + 0.1 * rng.normal(size=n) > 0).astype(int).to_numpy()
    return X, y


def register_credit_risk(lw) -> pd.DataFrame:
    """credit-risk v1 (logistic regression) and v2 (a decision tree); champion -> v1."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X, y = training_data()
    lw.log_model(LogisticRegression().fit(X, y), "credit-risk", input_example=X[:5])
    lw.log_model(
        DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y),
        "credit-risk",
        input_example=X[:5],
    )
    lw.set_alias("credit-risk", "champion", 1)
    return X


def assert_error(response: httpx.Response, status: int, type_: str, *needles: str) -> dict:
    """A JSON error answer with ``status`` and ``type_`` whose message holds ``needles``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] == type_
    for needle in needles:
        assert needle in error["message"]
    return error


# -- ``loopwise serve`` as a process ----------------------------------------------------------


@contextmanager
def server_in_thread(store_url: str, artifacts_url: str) -> Iterator[str]:
    """A real ``loopwise server`` (uvicorn, HTTP on a loopback port) on ``store_url`` in a
    thread of this process; yields its URL and stops it on exit."""
    import threading

    import uvicorn

    from loopwise.config import load_settings
    from loopwise.server.app import create_server_app
    from loopwise.store import Store

    store = Store(settings=load_settings(store_url=store_url, artifacts_url=artifacts_url))
    app = create_server_app(store, token_refresh_s=0.2)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the in-process loopwise server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
        store.db.engine.dispose()


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_env(store_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a ``loopwise`` process on the test's store."""
    env = dict(os.environ)
    env.update(
        LOOPWISE_STORE_URL=store_url,
        LOOPWISE_ARTIFACTS_URL=str(tmp_path / "artifacts"),
        LOOPWISE_CACHE_DIR=str(tmp_path / "cache"),
        PYTHONPATH=SRC + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


@contextmanager
def running(args: list[str], env: dict[str, str], tmp_path: Path, port: int) -> Iterator[str]:
    """``loopwise serve ARGS`` as a process, until it answers /ready; yields its URL. Its
    stdout and stderr go to :func:`output` files."""
    out, err = _output_files(tmp_path, port)
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loopwise", "serve", *args, "--port", str(port)],
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            else:
                raise AssertionError(err.read_text())
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.send_signal(signal.SIGTERM)  # a clean shutdown: uvicorn stops the endpoint
            proc.wait(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert proc.returncode in (0, -signal.SIGTERM), err.read_text()


def _output_files(tmp_path: Path, port: int) -> tuple[Path, Path]:
    return tmp_path / f"serve-{port}.out", tmp_path / f"serve-{port}.err"


def output(tmp_path: Path, port: int) -> tuple[str, str]:
    """What the server on ``port`` has written so far: (stdout, stderr)."""
    out, err = _output_files(tmp_path, port)
    return out.read_text(), err.read_text()


def wait_for_line(tmp_path: Path, port: int, pattern: str, *, count: int = 1) -> list[str]:
    """The first ``count`` stderr lines of the server on ``port`` matching ``pattern``."""
    deadline = time.monotonic() + 30
    while True:
        stderr = output(tmp_path, port)[1]
        lines = [line for line in stderr.splitlines() if re.search(pattern, line)]
        if len(lines) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(lines) >= count, f"no line matching {pattern!r} in:\n{output(tmp_path, port)[1]}"
    return lines[:count]


# -- data -------------------------------------------------------------------------------------


def make_customers(n: int, seed: int) -> pl.DataFrame:
    """Customers as they arrive: ids, normal and lognormal numbers, categories, a label."""
    rng = np.random.default_rng(seed)
    tenure = np.abs(rng.normal(24, 6, n))  # months: never negative
    missing = rng.random(n) < 0.1
    return pl.DataFrame(
        {
            "customer_id": [f"c{seed:03d}-{i:06d}" for i in range(n)],
            "account_no": np.arange(n, dtype=np.int64) + seed * 10 * n,
            "age": rng.integers(18, 90, n),
            "income": rng.lognormal(10, 1, n),
            "score": rng.normal(0, 1, n),
            "tenure": [None if m else float(t) for m, t in zip(missing, tenure, strict=True)],
            "visits": rng.poisson(3, n),
            "country": rng.choice(["GB", "US", "FR", "DE", "ES"], n, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.6, 0.3, 0.1]),
            "note": [f"free text {x}" for x in rng.integers(0, 10**9, n)],
            "active": rng.random(n) < 0.7,
            "signup": [
                dt.date(2020, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 1000, n)
            ],
            "churned": rng.choice(["no", "yes"], n, p=[0.85, 0.15]),
        }
    )


# -- the prediction log -----------------------------------------------------------------------

LOG_T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def us(when: datetime) -> int:
    """Microseconds since the epoch of ``when``."""
    return clock.exact_us(when)


def rid_at(when: datetime) -> str:
    """A request id made at ``when`` (as the app makes one per request)."""
    return new_id(us(when) // 1000)


def log_one(plog: PredictionLog, when: datetime = LOG_T0, *, rid: str | None = None, **kw) -> str:
    """Log one request of one row at ``when``; its request id."""
    rid = rid or rid_at(when)
    args = {
        "request_id": rid,
        "timestamp_us": us(when),
        "variant": "a",
        "model": "credit-risk/1",
        "model_version_id": "mv1",
        "inputs": [{"income": 1.0, "city": "paris"}],
        "outputs": [1],
        "probabilities": None,
        "latency_ms": 2.5,
    }
    plog.log_request(**(args | kw))
    return rid


# -- a monitored endpoint ---------------------------------------------------------------------

MONITOR_T0 = datetime(2024, 5, 1, tzinfo=UTC)
#: ``--start/--end`` of the three hours :func:`logged` fills.
RANGE = ("--start", "2024-05-01T00:00:00Z", "--end", "2024-05-01T03:00:00+00:00")


@pytest.fixture
def logged(lw) -> pl.DataFrame:
    """Three hours of predictions of endpoint "ep" (model m/1), x drifting in the third,
    with feedback for every row; the reference logged as dataset "ref"."""
    rng = np.random.default_rng(0)
    n = 3 * 1500
    seconds = np.sort(np.repeat(np.arange(3), 1500) * 3600 + rng.uniform(0, 3600, n))
    x = rng.normal(size=n) + 2.0 * (seconds >= 7200)
    frame = pl.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "timestamp": pl.Series(
                (MONITOR_T0.timestamp() * 1e6 + seconds * 1e6).astype(np.int64)
            ).cast(pl.Datetime("us", "UTC")),
            "x": x,
            "prediction": (x > 0).astype(np.int64),
            "latency_ms": rng.gamma(2.0, 5.0, n),
        }
    )
    lw.log_predictions("ep", frame, model="m/1")
    lw.log_feedback("ep", frame.select("request_id", label=pl.col("prediction")))
    lw.log_dataset(pl.DataFrame({"x": rng.normal(size=4000)}), name="ref")
    return frame


def refused(response, status: int, code: str, *needles: str) -> str:
    """The REST API's JSON error of a refused request (``{"error": {"code", "message"}}``
    with ``status`` and ``code``, its message holding each of ``needles``); the message."""
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    for needle in needles:
        assert needle in error["message"], error["message"]
    return error["message"]


def seed_runs(store, runs: int = 3, points: int = 50) -> list[str]:
    """``runs`` runs in experiment ``exp`` with params, a loss curve and artifacts (the
    web UI's tests), written through the services."""
    import json

    from loopwise.clock import now_us
    from loopwise.tracking import run_artifacts
    from loopwise.tracking import runs as run_service
    from loopwise.tracking.log_batch import log_batch

    ids = []
    stamp = now_us()
    for i in range(runs):
        run_id = run_service.create_run(store, "exp", name=f"run-{i}", tags={"team": "risk"})
        curve = [("loss", 1.0 / (s + 1 + i), s, stamp + s) for s in range(points)]
        log_batch(
            store,
            run_id,
            params={"lr": 0.1 * (i + 1), "model": "rf"},
            metrics=[*curve, ("auc", 0.7 + i / 100, 0, stamp)],
        )
        run_service.end_run(store, run_id, "FINISHED")
        ids.append(run_id)
    first = ids[0]
    run_artifacts.log_bytes(store, first, b"hello log line\n", "logs/train.log")
    run_artifacts.log_bytes(store, first, json.dumps({"a": [1, 2]}).encode(), "summary.json")
    run_artifacts.log_bytes(store, first, b"<html><body>report</body></html>", "report.html")
    run_artifacts.log_bytes(store, first, b"\x89PNG\r\n\x1a\n", "plot.png")
    return ids


# -- the web UI's registry, dataset and monitor pages: what they show -------------------------

UI_HOSTILE = "<script>alert(1)</script>"
UI_FEATURES = ["age", "income"]
UI_T0 = datetime(2026, 11, 1, tzinfo=UTC)
UI_SLOW = {"name": "slow", "metric": "latency_p95_ms", "above": 50}


def ui_frame(n: int = 300) -> pd.DataFrame:
    """Loans with a hostile slice value (the pages must show it as text)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 80, n), "income": rng.normal(50, 15, n)})
    frame["region"] = rng.choice(["north", UI_HOSTILE], n)
    frame["y"] = ((frame["age"] - 45) / 15 + rng.normal(0, 0.5, n) > 0).astype(int)
    return frame


def seed_registry(lw) -> pd.DataFrame:
    """``credit-risk`` v1 trained in a run on ``loans``, v2 promoted to champion with a
    per-slice evaluation (one slice value hostile), a refused promotion of v1."""
    from sklearn.linear_model import LogisticRegression

    frame = ui_frame()
    model = LogisticRegression().fit(frame[UI_FEATURES], frame["y"])
    with lw.start_run(experiment="credit", name="train"):
        lw.log_params({"C": 1.0})
        lw.log_dataset(frame, name="loans")
        lw.log_model(model, name="credit-risk", input_example=frame[UI_FEATURES][:3])
    lw.log_model(model, name="credit-risk", input_example=frame[UI_FEATURES][:3])
    lw.set_alias("credit-risk", "champion", 1, reason="first")
    policy = {"thresholds": {"accuracy": 0.1}, "slices": {"columns": ["region"]}}
    lw.promote("models:/credit-risk/2", "champion", policy=policy, data=frame, target="y")
    strict = {"thresholds": {"roc_auc": 0.9999}}
    lw.promote(
        "models:/credit-risk/1",
        "challenger",
        policy=strict,
        data=frame[[*UI_FEATURES, "y"]],
        target="y",
    )
    return frame


def seed_monitor(store, start: datetime = UI_T0) -> None:
    """Four hourly windows of monitor "mon" from ``start``; the "slow" alert fires at the
    second and still fires."""
    from loopwise.monitoring.alerting.alerts import evaluate_alerts
    from loopwise.monitoring.results import WindowResult
    from loopwise.monitoring.storage import save_window

    hour = timedelta(hours=1)
    results = [
        WindowResult(
            monitor="mon",
            endpoint="ep",
            start=start + i * hour,
            end=start + (i + 1) * hour,
            model="m/1",
            model_version_id=None,
            rows=100,
            labelled=10,
            values={("", "latency_p95_ms"): latency},
        )
        for i, latency in enumerate([10.0, 60.0, 70.0, 80.0])
    ]
    for r in results:
        save_window(store, [r])
    evaluate_alerts(store, "mon", "ep", [UI_SLOW], results, {}, deliver=False)


# -- the web UI in a browser ---------------------------------------------------------------

UI_SCREENSHOTS = Path(__file__).resolve().parent / "artifacts" / "ui"


@contextmanager
def ui_tab(browser, *, failed_requests: bool = False) -> Iterator:
    """A 1280x900 tab whose ``errors`` collects script errors (and, with
    ``failed_requests``, every answer of 400 or more: "<status> <url>")."""
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    if failed_requests:
        tab.on(
            "response",
            lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
    tab.errors = errors
    try:
        yield tab
    finally:
        tab.close()


def ui_screenshot(page, name: str) -> None:
    """Keep a full-page screenshot with the test's outputs (tests/artifacts/ui/)."""
    UI_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = UI_SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot of the {name} page: {path}")
