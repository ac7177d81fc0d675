"""Dialect-aware INSERT ... ON CONFLICT, the one statement SQLite and PostgreSQL spell alike
but SQLAlchemy builds per dialect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_on_conflict(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str] = (),
) -> None:
    """Insert ``rows``; on a conflict over ``keys`` update ``update`` columns or do nothing."""
    if not rows:
        return
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(table)
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={col: stmt.excluded[col] for col in update}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt, list(rows))


def insert_if_absent(
    conn: Connection, table: Table, row: dict[str, Any], *, keys: Sequence[str]
) -> bool:
    """Insert ``row`` unless a row with the same ``keys`` exists; True when this call
    inserted it. The database lets exactly one such insert of a key win, across processes,
    which is what a claim (a scheduler's tick) rests on. RETURNING says who won: psycopg
    answers rowcount -1 for an INSERT ... ON CONFLICT through SQLAlchemy."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(table).values(row).on_conflict_do_nothing(index_elements=list(keys))
    returned = stmt.returning(*(table.c[key] for key in keys))
    return conn.execute(returned).first() is not None
