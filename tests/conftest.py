"""Shared fixtures: every store-touching test runs on SQLite and on PostgreSQL.

Modules marked ``pytestmark = pytest.mark.remote_conformance`` run their ``lw`` tests a
third time, through the remote client: ``lw`` is then configured with the ``tracking_url``
of a real HTTP server (uvicorn in a thread) on a SQLite store, and with that same store
as its local one, so a test that reads the store directly sees what the client wrote.

PostgreSQL tests get a schema of their own (dropped afterwards), so they are isolated
from each other and from anything else in the ``test`` database. Without a reachable
PostgreSQL they skip, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

PG_URL = os.environ.get("LOOPWISE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

_pg_checked: bool | None = None


def _postgres_reachable() -> bool:
    global _pg_checked
    if _pg_checked is None:
        import psycopg

        try:
            with psycopg.connect(PG_URL, connect_timeout=3):
                _pg_checked = True
        except psycopg.OperationalError:
            _pg_checked = False
    return _pg_checked


def require_postgres() -> None:
    if not _postgres_reachable():
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable under CI; start it (.ci/run does).")
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL store URL whose tables live in a fresh schema."""
    require_postgres()
    import psycopg

    schema = f"lw_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


BACKENDS = ["sqlite", "postgresql"]
#: The third backend of the modules marked remote_conformance: a server over SQLite.
REMOTE = "remote"


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A parametrize mark (not metafunc.parametrize) takes precedence over the fixture's
    # own params; it must be added before pytest reads the marks.
    if (
        metafunc.definition.get_closest_marker("remote_conformance") is not None
        and "lw" in metafunc.fixturenames
    ):
        metafunc.definition.add_marker(
            pytest.mark.parametrize("store_url", [*BACKENDS, REMOTE], indirect=True)
        )


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL for each backend (the remote backend's server runs on SQLite)."""
    if request.param in ("sqlite", REMOTE):
        return f"sqlite:///{tmp_path}/loopwise.db"
    return request.getfixturevalue("pg_url")


def _backend(request: pytest.FixtureRequest) -> str:
    callspec = getattr(request.node, "callspec", None)
    return callspec.params.get("store_url", "") if callspec is not None else ""


@pytest.fixture
def store(store_url: str, tmp_path: Path):
    """A fresh :class:`loopwise.Store` on each backend, artifacts in a temp folder."""
    from loopwise.config import load_settings
    from loopwise.store import Store

    s = Store(
        settings=load_settings(store_url=store_url, artifacts_url=str(tmp_path / "artifacts"))
    )
    yield s
    s.db.engine.dispose()


@pytest.fixture
def lw(
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
):
    """The ``loopwise`` module configured on a fresh store of each backend (and, in the
    modules marked remote_conformance, through a server on that store)."""
    import loopwise
    from loopwise import context

    monkeypatch.chdir(tmp_path)
    artifacts = str(tmp_path / "artifacts")
    with ExitStack() as stack:
        remote: dict[str, Any] = {}
        if _backend(request) == REMOTE:
            from tests.helpers import server_in_thread

            remote["tracking_url"] = stack.enter_context(server_in_thread(store_url, artifacts))
        loopwise.configure(
            store_url=store_url,
            artifacts_url=artifacts,
            heartbeat_interval=0.5,
            heartbeat_timeout=3.0,
            cache_dir=str(tmp_path / "cache"),
            **remote,
        )
        yield loopwise
        while loopwise.active_run() is not None:
            loopwise.end_run()
        store = context.reset()  # sends the remote client's points before the server stops
        if store is not None:
            store.db.engine.dispose()


@pytest.fixture
def invoke(store_url: str, tmp_path: Path) -> Iterator[Any]:
    """Run ``loopwise --store-url <store> --artifacts-url <tmp>/artifacts ARGS...`` through
    Typer's CliRunner: the store and artifacts the ``lw`` fixture configures too, so data
    it logs is seen."""
    from typer.testing import CliRunner

    from loopwise import context
    from loopwise.cli.main import app

    runner = CliRunner()
    artifacts = str(tmp_path / "artifacts")
    base_env = {"COLUMNS": "200", "LOOPWISE_CACHE_DIR": str(tmp_path / "cli-cache")}

    def run(*args: str, env: dict[str, str] | None = None) -> Any:
        return runner.invoke(
            app,
            ["--store-url", store_url, "--artifacts-url", artifacts, *args],
            env=base_env | (env or {}),
        )

    yield run
    old = context.reset()  # before the store_url fixture drops a PostgreSQL schema
    if old is not None:
        old.db.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module: Playwright's sync API runs its own event
    loop in this thread while it is open, so a second ``sync_playwright()`` fails, and so
    does ``asyncio.run`` in any other test of the process. Module scope closes it before
    the process moves on to another file (the suite runs a file per worker at a time)."""
    import shutil

    from tests.reports.conftest import CHROMIUM, CHROMIUM_ARGS, _require_browser

    _require_browser()
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
