"""The metadata database: engine, transactions and schema upgrades.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every write
transaction starts with ``BEGIN IMMEDIATE`` so that several processes writing one file
queue for the lock instead of failing with "database is locked" halfway through.
PostgreSQL (psycopg 3) is used as is. Both get their schema from Alembic migrations,
applied on first open under a lock, so two processes opening a new store at once do not
race each other.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from loopwise.errors import ConfigurationError, StoreUnavailable

HEAD_REVISION = "0018"
_PG_MIGRATION_LOCK = 0x6C6F6F70  # "loop": advisory lock id held while migrating
SQLITE_BUSY_TIMEOUT_S = 60.0
#: Execution option set on the connections of :meth:`Database.write` (SQLite: BEGIN IMMEDIATE).
WRITE_OPTION = "loopwise_write"


def normalize_store_url(url: str) -> str:
    """Return a SQLAlchemy URL for a user-facing store URL.

    ``postgresql://`` and ``postgres://`` get the psycopg 3 driver; a relative SQLite path
    is made absolute, so a later ``chdir`` does not move the store.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = url[len("sqlite:///") :]
        if path and not path.startswith(":memory:"):
            url = "sqlite:///" + str(Path(path).resolve())
    return url


class Database:
    """One metadata database, shared by every thread of a process.

    Use :meth:`read` for queries and :meth:`write` for anything that changes rows; both
    yield a SQLAlchemy :class:`~sqlalchemy.Connection` inside a transaction.
    """

    def __init__(self, url: str) -> None:
        self.url = normalize_store_url(url)
        try:
            parsed = make_url(self.url)
        except ArgumentError as e:
            raise ConfigurationError(
                f"Store URL '{url}' is not a database URL. Use sqlite:///path/to/file.db or "
                "postgresql://user@host:5432/dbname (LOOPWISE_STORE_URL)."
            ) from e
        self.dialect = parsed.get_backend_name()
        if self.dialect not in {"sqlite", "postgresql"}:
            raise ConfigurationError(
                f"Store URL '{url}' uses '{self.dialect}'; loopwise supports sqlite and "
                "postgresql. Set LOOPWISE_STORE_URL to one of those."
            )
        self._migrated = False
        self._migrate_lock = threading.Lock()
        self.engine = self._create_engine(parsed)

    # -- engine ---------------------------------------------------------------------------

    def _create_engine(self, parsed: Any) -> Engine:
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:":
                _make_parent(Path(database))
            engine = create_engine(
                parsed,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            )

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_connection: Any, _record: Any) -> None:
                # Let SQLAlchemy (not the driver) decide when transactions begin.
                dbapi_connection.isolation_level = None
                cursor = dbapi_connection.cursor()
                _use_wal(cursor)
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
                cursor.execute("PRAGMA foreign_keys=ON")
                # LIKE is case-sensitive on PostgreSQL; make SQLite agree (ILIKE is not).
                cursor.execute("PRAGMA case_sensitive_like=ON")
                cursor.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                immediate = conn.get_execution_options().get(WRITE_OPTION, False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

            return engine
        try:
            return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
        except (NoSuchModuleError, ModuleNotFoundError) as e:
            raise ConfigurationError(
                "PostgreSQL stores need psycopg 3: pip install 'loopwise[postgres]'."
            ) from e

    def dispose(self) -> None:
        """Close pooled connections (after a fork the child must not reuse them)."""
        self.engine.dispose(close=False)

    # -- transactions ---------------------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection inside a read transaction."""
        self.ensure_schema()
        with self._connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection inside a write transaction, committed on success."""
        self.ensure_schema()
        with self._connect(write=True) as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except OperationalError as e:
            reason = " ".join(str(e.orig).split()).rstrip("?.")
            raise StoreUnavailable(
                f"Cannot connect to the metadata store {self.safe_url} ({reason}). Check that "
                "the database is running and LOOPWISE_STORE_URL is right."
            ) from e
        with conn:
            if write:
                conn = conn.execution_options(**{WRITE_OPTION: True})
            yield conn

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    # -- schema ---------------------------------------------------------------------------

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at, or None for an empty database."""
        with self._connect() as conn, conn.begin():
            return _read_revision(conn)

    def ensure_schema(self) -> None:
        """Apply migrations once per process if the database is not at the head revision."""
        if self._migrated:
            return
        with self._migrate_lock:
            if self._migrated:
                return
            if self.current_revision() != HEAD_REVISION:
                self.upgrade()
            self._migrated = True

    def upgrade(self, revision: str = "head") -> None:
        """Run Alembic migrations up to ``revision`` under a cross-process lock."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self._connect(write=True) as conn, conn.begin():
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            # SQLite: BEGIN IMMEDIATE above already holds the database's write lock.
            if revision == "head" and _read_revision(conn) == HEAD_REVISION:
                return
            config.attributes["connection"] = conn
            command.upgrade(config, revision)


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the database file to WAL (once: the mode is kept in the file).

    Changing the mode takes a lock SQLite does not wait for while another connection is
    inside a transaction on a file still in rollback mode (it answers "database is locked"
    at once rather than risk a deadlock): so processes or threads opening a brand-new
    store together retry here, for as long as the busy timeout, instead of failing.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    delay = 0.002
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _read_revision(conn: Connection) -> str | None:
    try:
        with conn.begin_nested():
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except DBAPIError:  # the table does not exist yet: an empty database
        return None
    return row[0] if row else None


def _make_parent(database: Path) -> None:
    """Create the folder of a SQLite file; a path through a file is a ConfigurationError."""
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocked = next((p for p in database.parents if p.is_file()), None)
        why = f"{blocked} is a file, not a folder" if blocked else e.strerror or str(e)
        raise ConfigurationError(
            f"cannot create the folder of the SQLite store {database}: {why}. Choose a "
            "store URL whose folder can be created, such as sqlite:///./.loopwise/loopwise.db."
        ) from e
