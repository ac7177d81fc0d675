"""Per-parent version numbers (1, 2, 3...) for datasets and models: one rule, one lock.

Why one helper: two writers adding a version to the same parent at once must get distinct,
consecutive numbers on both databases. The strategy is the same everywhere: lock the
parent's row for the rest of the write transaction (:func:`~loopwise.store.locks.lock_rows`:
``FOR UPDATE`` on PostgreSQL, the ``BEGIN IMMEDIATE`` write lock on SQLite), *then* read the
highest number. On PostgreSQL (READ COMMITTED) the read after the lock sees every version
committed by the writer it waited for, so the second writer takes the next number instead
of the same one. The unique constraint on (parent, version) stays the last line of defence.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, func, select

from loopwise.store.locks import lock_rows

__all__ = ["next_version"]


def next_version(
    conn: Connection, version_column: Column[Any], parent_column: Column[Any], parent_id: str
) -> int:
    """Lock parent ``parent_id`` and return one more than its highest version (1 if none).

    ``parent_column`` is the versions table's foreign key to the parent (such as
    ``model_versions.c.model_id``); the row it points at is the one locked. ``conn`` must be
    in :meth:`Database.write`'s transaction, and the caller inserts the version in it.
    """
    parent_key = _referenced(parent_column)
    conn.execute(lock_rows(conn, select(parent_key).where(parent_key == parent_id)))
    highest = conn.execute(
        select(func.max(version_column)).where(parent_column == parent_id)
    ).scalar()
    return (highest or 0) + 1


def _referenced(parent_column: Column[Any]) -> Column[Any]:
    keys = list(parent_column.foreign_keys)
    if len(keys) != 1:
        raise ValueError(
            f"next_version needs the foreign key to the parent's row; {parent_column} has "
            f"{len(keys)} foreign keys"
        )
    return keys[0].column
