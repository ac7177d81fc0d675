"""The metadata database: migrations, SQLite settings, URLs and concurrent first opens."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from loopwise.errors import ConfigurationError, StoreUnavailable
from loopwise.store.database import HEAD_REVISION, Database, normalize_store_url
from loopwise.store.tables import metadata


def test_first_open_applies_migrations(store_url):
    db = Database(store_url)
    assert db.current_revision() is None
    db.ensure_schema()
    assert db.current_revision() == HEAD_REVISION
    db.upgrade()  # idempotent
    assert db.current_revision() == HEAD_REVISION
    db.engine.dispose()


def test_migrations_match_the_tables(store_url):
    db = Database(store_url)
    db.ensure_schema()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    db.engine.dispose()


def test_sqlite_runs_in_wal_mode_with_busy_timeout(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/x.db")
    with db.read() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 30000
    db.engine.dispose()


def test_opening_a_new_sqlite_file_waits_for_a_transaction_in_progress(tmp_path):
    """Switching a new file to WAL needs a lock SQLite does not wait for while another
    connection is inside a transaction; a store opened then waits instead of failing."""
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE held (x)")  # the file is still in rollback mode
    db = Database(f"sqlite:///{path}")
    outcome: list[object] = []

    def open_store() -> None:
        try:
            with db.read() as conn:
                outcome.append(conn.execute(text("PRAGMA journal_mode")).scalar())
        except Exception as e:
            outcome.append(e)

    opener = threading.Thread(target=open_store)
    opener.start()
    time.sleep(0.3)
    assert outcome == []  # waiting, not failed
    other.execute("COMMIT")
    other.close()
    opener.join(10)
    assert outcome == ["wal"]
    db.engine.dispose()


def test_relative_sqlite_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert normalize_store_url("sqlite:///./.loopwise/a.db") == (
        f"sqlite:///{tmp_path}/.loopwise/a.db"
    )
    assert normalize_store_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_store_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"


def test_bad_urls_get_clear_errors():
    with pytest.raises(ConfigurationError, match="not a database URL"):
        Database("not a url")
    with pytest.raises(ConfigurationError, match="supports sqlite and postgresql"):
        Database("mysql://root@localhost/test")


def test_unreachable_postgres_is_store_unavailable():
    db = Database("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")
    with pytest.raises(StoreUnavailable, match=r"Cannot connect .*127\.0\.0\.1:1"):
        db.ensure_schema()


def _open(url: str) -> str | None:
    db = Database(url)
    db.ensure_schema()
    return db.current_revision()


def test_processes_opening_a_new_store_at_once_do_not_race(store_url):
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        revisions = pool.map(_open, [store_url] * 4)
    assert revisions == [HEAD_REVISION] * 4


def test_upgrading_an_older_store_keeps_its_data(store_url):
    db = Database(store_url)
    db.upgrade("0001")
    assert db.current_revision() == "0001"
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO experiments (id, name, created_at) "
                "VALUES ('01aaaaaaaaaaaaaaaaaaaaaaaa', 'old', 1)"
            )
        )
    db.ensure_schema()  # a newer loopwise opening the old store migrates it
    assert db.current_revision() == HEAD_REVISION
    with db.read() as conn:
        assert conn.execute(text("SELECT name FROM experiments")).scalar() == "old"
        assert conn.execute(text("SELECT count(*) FROM dataset_versions")).scalar() == 0
    db.engine.dispose()
