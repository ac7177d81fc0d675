"""Locks inside a write transaction, spelled once for SQLite and PostgreSQL.

Why here: a domain module that must keep two writers apart (number the next version of a
model, fire an alert rule once) should say *what* it locks, not how each database does it.

- PostgreSQL takes row locks (``SELECT ... FOR UPDATE``) and transaction-scoped advisory
  locks (``pg_advisory_xact_lock``) that other transactions wait for.
- SQLite has neither: :meth:`Database.write` opens every write transaction with
  ``BEGIN IMMEDIATE``, which holds the database's one write lock until commit, so every
  writer is already serialized. What SQLite needs is that the caller really is in such a
  transaction; a read transaction (plain ``BEGIN``) holds nothing, so the helpers refuse
  one.

Both kinds of lock are released when the transaction ends; none is taken outside one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, Select, text

from loopwise.store.database import WRITE_OPTION

__all__ = ["advisory_lock", "lock_rows"]


def lock_rows(conn: Connection, query: Select[Any]) -> Select[Any]:
    """``query`` such that the rows it reads stay locked until ``conn``'s transaction ends.

    ``FOR UPDATE`` on PostgreSQL; on SQLite the write transaction already holds the whole
    database, so the query is returned unchanged (SQLite has no ``FOR UPDATE``).
    """
    if _require_write(conn) == "postgresql":
        return query.with_for_update()
    return query


def advisory_lock(conn: Connection, scope: str, name: str) -> None:
    """Serialize the write transactions that lock ``name`` in ``scope`` until this one ends.

    For work guarded by no single row (say, every alert of a monitor). The key is the first
    8 bytes of SHA-256 of ``loopwise-<scope>:<name>``, so scopes never share a key by
    accident and every process computes the same key.
    """
    if _require_write(conn) == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(scope, name)})


def lock_key(scope: str, name: str) -> int:
    """The signed 64-bit PostgreSQL advisory lock key of ``name`` in ``scope``."""
    digest = hashlib.sha256(f"loopwise-{scope}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _require_write(conn: Connection) -> str:
    """The dialect name of ``conn``; on SQLite, refuse a connection outside a write
    transaction, where no lock would be held (a programming error, not bad input)."""
    dialect = conn.dialect.name
    if dialect == "sqlite" and not (
        conn.in_transaction() and conn.get_execution_options().get(WRITE_OPTION, False)
    ):
        raise RuntimeError(
            "a lock on SQLite needs the write transaction of Database.write() "
            "(BEGIN IMMEDIATE); this connection is not in one"
        )
    return dialect
