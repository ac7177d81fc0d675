"""SQL expressions that SQLite and PostgreSQL spell differently, built once, compiled per
database.

Why constructs instead of ``if dialect == ...`` at the call site: a domain module writes
``json_field(alerts.c.action, "status")`` into a query like any column, and SQLAlchemy
chooses the spelling when the statement is compiled for the connection that runs it. The
query needs no connection to be built and the domain module names no dialect.

- :func:`json_field`: one key of a JSON document kept in a text column.
- :func:`number_in_text`: the number written in a text column, or NULL where the text is
  not one.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from sqlalchemy import Float, String, and_, case, cast, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

__all__ = ["json_field", "number_in_text"]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


class _JsonField(ColumnElement[Any]):
    """``json_field``'s construct: the key is part of the statement cache key."""

    __visit_name__ = "loopwise_json_field"
    inherit_cache = True
    _traverse_internals: ClassVar[list[tuple[str, InternalTraversal]]] = [
        ("column", InternalTraversal.dp_clauseelement),
        ("key", InternalTraversal.dp_string),
    ]
    type = String()

    def __init__(self, column: Any, key: str) -> None:
        self.column = column
        self.key = key

    @property
    def _from_objects(self) -> list[Any]:
        return self.column._from_objects


class _NumberInText(ColumnElement[Any]):
    """``number_in_text``'s construct."""

    __visit_name__ = "loopwise_number_in_text"
    inherit_cache = True
    _traverse_internals: ClassVar[list[tuple[str, InternalTraversal]]] = [
        ("column", InternalTraversal.dp_clauseelement)
    ]
    type = Float()

    def __init__(self, column: Any) -> None:
        self.column = column

    @property
    def _from_objects(self) -> list[Any]:
        return self.column._from_objects


def json_field(column: Any, key: str) -> ColumnElement[Any]:
    """Top-level ``key`` of the JSON object stored as text in ``column`` (NULL if absent).

    PostgreSQL answers text (``(column::jsonb) ->> key``); SQLite answers the JSON value
    (``json_extract``: a number stays a number), so compare with text only where the value
    is text, and read numbers with ``float()``.
    """
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"json_field takes a plain key such as 'status'; got {key!r}")
    return _JsonField(column, key)


def number_in_text(column: Any) -> ColumnElement[Any]:
    """The number written in the text ``column`` (``'1'``, ``' -2.5e3 '``), as a float, or
    NULL where the text is not a number, so that comparing it never raises a cast error."""
    return _NumberInText(column)


@compiles(_JsonField, "postgresql")
def _json_field_postgresql(element: _JsonField, compiler: Any, **kw: Any) -> str:
    return compiler.process(cast(element.column, JSONB)[element.key].astext, **kw)


@compiles(_JsonField, "sqlite")
def _json_field_sqlite(element: _JsonField, compiler: Any, **kw: Any) -> str:
    return compiler.process(func.json_extract(element.column, f"$.{element.key}"), **kw)


@compiles(_NumberInText, "postgresql")
def _number_in_text_postgresql(element: _NumberInText, compiler: Any, **kw: Any) -> str:
    column = element.column
    looks_numeric = column.op("~")(_NUMBER_RE)
    return compiler.process(case((looks_numeric, cast(column, Float)), else_=None), **kw)


@compiles(_NumberInText, "sqlite")
def _number_in_text_sqlite(element: _NumberInText, compiler: Any, **kw: Any) -> str:
    column = element.column
    # SQLite has no regular expressions: a digit somewhere, and nothing but number signs.
    looks_numeric = and_(column.op("GLOB")("*[0-9]*"), column.op("NOT GLOB")("*[^0-9eE.+ -]*"))
    return compiler.process(case((looks_numeric, cast(column, Float)), else_=None), **kw)
