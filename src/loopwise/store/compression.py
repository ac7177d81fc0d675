"""Column compression for large values written in one transaction.

Why: metric chunks are binary arrays of a few hundred kilobytes. PostgreSQL compresses such
values (TOAST) with pglz by default; lz4, where the server was built with it, compresses and
decompresses them faster. SQLite stores them as they are and has no setting.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

__all__ = ["prefer_lz4"]

# SET LOCAL default_toast_compression = lz4, for this transaction only, where supported.
_PREFER_LZ4 = text(
    "SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings "
    "WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
)


def prefer_lz4(conn: Connection) -> None:
    """Compress the values this transaction writes with lz4 where the database offers it
    (PostgreSQL 14+ built with lz4); nothing elsewhere. Lasts until the transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(_PREFER_LZ4)
