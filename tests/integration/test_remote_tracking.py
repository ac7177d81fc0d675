"""The tracking API through a real ``loopwise server`` process (the remote client), on
SQLite and PostgreSQL: what the client logs is read back through the local API on the
same store, and the server's refusals come back as the local error classes."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

import loopwise
from loopwise import context
from loopwise.auth.tokens import create_token
from loopwise.config import load_settings
from loopwise.errors import (
    ConfigurationError,
    InvalidFilter,
    InvalidInput,
    NotFound,
    ParamConflict,
    StoreUnavailable,
    Unauthorized,
)
from loopwise.store import Store
from loopwise.tracking import runs as run_service


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(store_url: str, tmp_path: Path, *, token: bool = False):
    """A ``loopwise server`` process on a fresh store, and that store opened locally
    (with a ``write`` token made first when ``token``; the secret is the third item)."""
    artifacts = str(tmp_path / "artifacts")
    store = Store(settings=load_settings(store_url=store_url, artifacts_url=artifacts))
    secret = create_token(store, "ci", "write")[1] if token else None
    port = _free_port()
    cmd = [
        sys.executable, "-m", "loopwise", "server", "--port", str(port),
        "--store-url", store_url, "--artifacts-url", artifacts,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    try:
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() - start < 30, "the server did not answer /health in 30 s"
            time.sleep(0.1)
        yield base, store, secret
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        store.db.engine.dispose()


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[tuple[str, Store]]:
    with running_server(store_url, tmp_path) as (base, store, _):
        yield base, store


@pytest.fixture
def remote(server: tuple[str, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``loopwise`` configured to track through the server; yields (module, local store)."""
    base, store = server
    monkeypatch.chdir(tmp_path)
    loopwise.configure(tracking_url=base, store_url=f"sqlite:///{tmp_path}/unused.db")
    yield loopwise, store
    while loopwise.active_run() is not None:
        loopwise.end_run()
    context.reset()


def test_runs_logged_through_the_server_read_back_locally(remote, tmp_path):
    lw, store = remote
    with lw.start_run(experiment="churn", name="rf-1", tags={"team": "risk"}) as run:
        lw.log_params({"lr": 0.1, "depth": 6})
        lw.log_param("model", "rf")
        lw.set_tag("stage", "dev")
        lw.set_tags({"owner": "ana"})
        for i in range(10_000):
            lw.log_metric("loss", 1.0 / (i + 1))
        lw.log_metric("weird", math.nan)
        lw.log_metric("weird", math.inf)
        lw.log_metric("weird", -math.inf)
        lw.log_metrics({"auc": 0.91, "f1": 0.8}, step=3)
        lw.log_text("hello", "notes/readme.txt")
        lw.log_dict({"a": 1}, "config.json")
        folder = tmp_path / "out"
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "x.bin").write_bytes(b"\x00\x01" * 1000)
        lw.log_artifact(folder, "model")
        assert run.info.metrics["auc"] == 0.91  # reads flush this process's points first

    local = run_service.get_run(store, run.id)
    assert local.status == "FINISHED"
    assert local.experiment == "churn"
    assert local.name == "rf-1"
    assert local.params == {"lr": "0.1", "depth": "6", "model": "rf"}
    assert local.tags["team"] == "risk"
    assert local.tags["stage"] == "dev"
    assert local.tags["owner"] == "ana"
    history = loopwise.tracking.runs.metric_history(store, run.id, "loss")
    assert len(history) == 10_000
    assert history["step"].tolist() == list(range(10_000))
    assert history["value"].iloc[-1] == pytest.approx(1e-4)
    weird = loopwise.tracking.runs.metric_history(store, run.id, "weird")["value"].tolist()
    assert math.isnan(weird[0])
    assert weird[1:] == [math.inf, -math.inf]

    # ... and the same through the client
    remote_run = lw.get_run(run.id)
    assert remote_run.params == local.params
    assert remote_run.tags == local.tags
    assert remote_run.metrics["weird"] == -math.inf
    assert remote_run.status == "FINISHED"
    remote_history = lw.get_metric_history(run.id, "loss")
    assert remote_history["step"].tolist() == history["step"].tolist()
    assert remote_history["value"].tolist() == history["value"].tolist()
    assert (remote_history["timestamp"] == history["timestamp"]).all()
    paths = [a.path for a in lw.list_artifacts(run.id)]
    assert paths == ["config.json", "model/sub/x.bin", "notes/readme.txt"]
    got = lw.download_artifacts(run.id, "model", tmp_path / "dl")
    assert (got / "sub" / "x.bin").read_bytes() == b"\x00\x01" * 1000
    assert (lw.download_artifacts(run.id, dst=tmp_path / "all") / "config.json").exists()
    assert [e.name for e in lw.list_experiments()] == ["churn"]


def test_search_through_the_server_matches_the_local_search(remote):
    lw, store = remote
    for i in range(5):
        with lw.start_run(experiment="grid", name=f"r{i}"):
            lw.log_param("i", i)
            lw.log_metric("auc", i / 10)
            lw.set_tag("even", str(i % 2 == 0))
    with lw.start_run(experiment="other"):
        lw.log_metric("auc", 0.99)
    query = {
        "experiment": "grid",
        "filter": "metrics.auc > 0.1 and tags.even = 'True'",
        "order_by": "metrics.auc DESC",
    }
    found = lw.search_runs(**query)
    local = loopwise.tracking.search.search_runs(store, **query)
    assert found["name"].tolist() == ["r4", "r2"] == local["name"].tolist()
    assert list(found.columns) == list(local.columns)
    for column in found.columns:
        assert found[column].tolist() == local[column].tolist(), column
    assert found["start_time"].dtype == local["start_time"].dtype
    assert len(lw.search_runs(max_results=3)) == 3
    assert len(lw.search_runs(max_results=None)) == 6
    with pytest.raises(InvalidFilter):
        lw.search_runs(filter="metrics.auc >>> 1")


def test_search_pages_beyond_one_thousand_runs(remote):
    lw, store = remote
    experiment = loopwise.tracking.runs.get_or_create_experiment(store, "many").name
    for _ in range(1_205):
        loopwise.tracking.runs.create_run(store, experiment)
    found = lw.search_runs(experiment="many", max_results=None)
    assert len(found) == 1_205
    assert found["run_id"].is_unique
    assert len(lw.search_runs(experiment="many", max_results=1_100)) == 1_100


def test_errors_come_back_as_the_local_classes(remote):
    lw, _ = remote
    with pytest.raises(NotFound):
        lw.get_run("no-such-run")
    with pytest.raises(NotFound):
        lw.get_metric_history("no-such-run", "loss")
    with lw.start_run(experiment="e"):
        lw.log_param("lr", 0.1)
        with pytest.raises(ParamConflict):
            lw.log_param("lr", 0.2)


def test_a_hundred_thousand_log_metric_calls_go_in_a_few_batches(remote):
    lw, store = remote
    with lw.start_run(experiment="fast") as run:
        writer = context.remote_tracking().writer
        before = writer.requests
        start = time.perf_counter()
        for i in range(100_000):
            lw.log_metric("loss", float(i), step=i)
        logged = time.perf_counter() - start
        lw.flush()
        flushed = time.perf_counter() - start
    requests = writer.requests - before
    print(
        f"100,000 log_metric calls: {100_000 / logged:,.0f} calls/s to log, "
        f"{100_000 / flushed:,.0f} calls/s until flushed, {requests} log-batch requests"
    )
    assert 10 <= requests <= 20  # 10,000 points a request at most
    assert len(loopwise.tracking.runs.metric_history(store, run.id, "loss")) == 100_000


def test_server_down_is_store_unavailable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loopwise.configure(tracking_url=f"http://127.0.0.1:{_free_port()}")
    try:
        with pytest.raises(StoreUnavailable, match="Cannot reach the loopwise server at http"):
            loopwise.start_run(experiment="x")
    finally:
        context.reset()


def test_a_bad_token_is_unauthorized_and_a_good_one_works(store_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with running_server(store_url, tmp_path, token=True) as (base, store, secret):
        monkeypatch.setenv("LOOPWISE_TRACKING_URL", base)
        monkeypatch.setenv("LOOPWISE_TRACKING_TOKEN", "lw_not-a-real-token")
        context.reset()
        try:
            with pytest.raises(Unauthorized):
                loopwise.start_run(experiment="x")
            loopwise.configure(tracking_token=secret)
            with loopwise.start_run(experiment="x") as run:
                loopwise.log_metric("m", 1.0)
            assert run_service.get_run(store, run.id).metrics == {"m": 1.0}
        finally:
            context.reset()


def test_the_tracking_url_is_checked(monkeypatch):
    for bad in ("localhost:5000", "ftp://host", "http://", "http://host:port"):
        with pytest.raises(ConfigurationError, match="tracking_url"):
            load_settings(tracking_url=bad)
    assert load_settings(tracking_url="http://host:5000/").tracking_url == "http://host:5000"
    monkeypatch.setenv("LOOPWISE_TRACKING_TOKEN", "lw_secret")
    assert "lw_secret" not in repr(load_settings())


def test_monitors_refuse_while_tracking_goes_to_a_server(tmp_path, monkeypatch):
    """Monitors run next to the store, not through the server: with a tracking URL they
    refuse instead of writing to a local store nobody reads."""
    import loopwise

    loopwise.configure(
        tracking_url=f"http://127.0.0.1:{_free_port()}", store_url=f"sqlite:///{tmp_path}/x.db"
    )
    try:
        for call in (
            lambda: loopwise.list_alerts(),
            lambda: loopwise.monitor_results("m"),
        ):
            with pytest.raises(loopwise.ConfigurationError, match="TRACKING_URL points at"):
                call()
    finally:
        context.reset()


_KILLED_CLIENT = """
import sys, time
import loopwise as lw
lw.configure(tracking_url=sys.argv[1], store_url="sqlite:///" + sys.argv[2])
run = lw.start_run(experiment="crash")
print(run.id, flush=True)
while True:
    lw.log_metric("loss", 1.0)
    time.sleep(0.01)
"""


def test_a_killed_remote_client_leaves_its_run_lost_not_running(server, tmp_path):
    base, store = server
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CLIENT, base, str(tmp_path / "unused.db")],
        stdout=subprocess.PIPE,
    )
    try:
        run_id = child.stdout.readline().decode().strip()
        found = run_service.get_run(store, run_id)
        # The run names the client's process, not the server's.
        assert (found.host, found.pid) == (socket.gethostname(), child.pid)
        assert found.status == "RUNNING"
    finally:
        child.kill()
        child.wait(timeout=20)
    assert run_service.get_run(store, run_id).status == "LOST"


def test_a_remote_run_is_kept_alive_by_its_heartbeats(server, tmp_path, monkeypatch):
    from sqlalchemy import select, update

    from loopwise.store.tables import runs as runs_table

    base, store = server
    monkeypatch.chdir(tmp_path)
    loopwise.configure(
        tracking_url=base, store_url=f"sqlite:///{tmp_path}/unused.db", heartbeat_interval=0.2
    )
    try:
        with loopwise.start_run(experiment="alive") as run:
            # As if it ran on another host and its last beat were long ago: LOST ...
            with store.db.write() as conn:
                conn.execute(
                    update(runs_table)
                    .where(runs_table.c.id == run.id)
                    .values(host="elsewhere", heartbeat_at=1)
                )
            assert run_service.get_run(store, run.id).status == "LOST"

            # ... until the client's next heartbeat brings it back.
            def beat() -> int:
                with store.db.read() as conn:
                    return conn.execute(
                        select(runs_table.c.heartbeat_at).where(runs_table.c.id == run.id)
                    ).scalar_one()

            deadline = time.monotonic() + 10
            while beat() == 1 or run_service.get_run(store, run.id).end_time:
                assert time.monotonic() < deadline, "no heartbeat reached the server"
                time.sleep(0.05)
            assert run_service.get_run(store, run.id).status == "RUNNING"
            env = loopwise.get_run(run.id).environment
            assert env["python"]["version"]  # captured by the client, sent to the server
        assert run_service.get_run(store, run.id).status == "FINISHED"
    finally:
        context.reset()


def test_the_cli_reads_runs_through_the_server(remote, tmp_path):
    import json

    from typer.testing import CliRunner

    from loopwise.cli.main import app

    lw, _ = remote
    with lw.start_run(experiment="cli", name="first") as run:
        lw.log_param("C", 0.5)
        for step in range(5):
            lw.log_metric("loss", 1.0 / (step + 1))
    with lw.start_run(experiment="cli", name="second") as other:
        lw.log_param("C", 2.0)
    url = lw.context.settings().tracking_url
    context.reset()
    runner = CliRunner()

    def cli(*args: str) -> str:
        # The local store is an empty folder: every answer below comes from the server.
        result = runner.invoke(app, ["--tracking-url", url, *args], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "cli" in [e["name"] for e in json.loads(cli("experiments", "list", "--json"))]
    listed = json.loads(cli("runs", "list", "-e", "cli", "--json"))
    assert {r["name"] for r in listed} == {"first", "second"}
    shown = json.loads(cli("runs", "show", "first", "--json"))
    assert shown["id"] == run.id
    assert shown["params"] == {"C": "0.5"}
    history = json.loads(cli("runs", "metric", run.id, "loss", "--json"))
    assert history["run_id"] == run.id
    assert [p["value"] for p in history["history"]] == [1.0 / (s + 1) for s in range(5)]
    assert "second" in cli("runs", "compare", run.id, other.id)
    assert not (tmp_path / ".loopwise").exists() or not list(
        (tmp_path / ".loopwise").glob("**/*.parquet")
    )


def test_the_cli_reads_and_moves_models_and_datasets_through_the_server(remote, tmp_path):
    import json

    from typer.testing import CliRunner

    from loopwise.cli.main import app
    from tests.helpers import seed_registry

    lw, store = remote
    seed_registry(lw)  # v1 trained on loans, v2 promoted to champion, a refused promotion
    # descriptions and tags through the server, as on a local store
    lw.update_model("credit-risk", description="scores loans", tags={"team": "risk", "t": 1})
    model = lw.update_model("credit-risk", delete_tags=["t"])
    assert (model.description, model.tags) == ("scores loans", {"team": "risk"})
    version = lw.update_model_version("models:/credit-risk/1", tags={"a": 1, "b": 2})
    version = lw.update_model_version(version.uri, delete_tags=["a"])
    assert version.tags == {"b": "2"}
    assert version.updated_at is not None
    with pytest.raises(InvalidInput, match="1 to 250"):
        lw.update_model("credit-risk", tags={"": "x"})
    url = lw.context.settings().tracking_url
    context.reset()
    runner = CliRunner()

    def cli(*args: str) -> str:
        # The local store is an empty folder: every answer below comes from the server.
        result = runner.invoke(app, ["--tracking-url", url, *args], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.stdout

    listed = json.loads(cli("models", "list", "--json"))
    assert [(m["name"], m["aliases"]) for m in listed] == [("credit-risk", {"champion": 2})]
    versions = json.loads(cli("models", "versions", "credit-risk", "--json"))
    assert [v["version"] for v in versions] == [1, 2]
    shown = json.loads(cli("models", "show", "models:/credit-risk/2", "--json"))
    assert shown["promotions"][0]["passed"] is True
    assert shown["evaluations"][0]["task"] == "classification"
    assert "accuracy" in cli("models", "show", "models:/credit-risk/2")
    first = json.loads(cli("models", "show", "models:/credit-risk/1", "--json"))
    assert first["datasets"][0]["uri"] == "datasets:/loans/1"
    history = json.loads(cli("models", "history", "credit-risk", "--json"))
    assert [e["kind"] for e in history].count("refused") == 1

    cli("models", "alias", "set", "credit-risk", "shadow", "1", "--reason", "try it")
    assert registry_alias(store, "shadow") == 1  # moved on the server's store
    cli("models", "alias", "set", "credit-risk", "shadow", "2")
    cli("models", "rollback", "credit-risk", "--alias", "shadow")
    assert registry_alias(store, "shadow") == 1
    cli("models", "alias", "delete", "credit-risk", "shadow")
    assert registry_alias(store, "shadow") is None
    when = datetime.now(UTC).isoformat()
    assert "version 2" in cli("models", "at", "credit-risk", "--alias", "champion", "--time", when)

    datasets = json.loads(cli("datasets", "list", "--json"))
    # the frames given to promote through a server were logged there as the data decided on
    assert {d["name"]: d["versions"] for d in datasets} == {
        "loans": 1,
        "credit-risk-promotion-data": 2,
    }
    version = json.loads(cli("datasets", "show", "loans", "--json"))
    assert version["rows"] == 300
    assert "age" in cli("datasets", "show", "datasets:/loans/1")


def registry_alias(store: Store, alias: str) -> int | None:
    from loopwise.registry import models as model_service

    (model,) = [m for m in model_service.list_models(store) if m.name == "credit-risk"]
    return model.aliases.get(alias)
