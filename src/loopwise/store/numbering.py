"""Per-name version numbers (1, 2, 3...) for datasets and models.

Called inside a write transaction that holds the parent row's lock (SQLite's write lock,
``SELECT ... FOR UPDATE`` on PostgreSQL), so two writers cannot take the same number; the
unique constraint on (parent, version) is the last line of defence.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select


def next_version(conn: Connection, version_column: Any, parent_column: Any, parent_id: str) -> int:
    """One more than the highest ``version_column`` among rows of ``parent_id`` (1 if none)."""
    highest = conn.execute(
        select(func.max(version_column)).where(parent_column == parent_id)
    ).scalar()
    return (highest or 0) + 1
