"""MLflow's ``search_runs`` filter and ``order_by`` as loopwise's search language.

MLflow's filter language is a subset of loopwise's (``metrics.auc > 0.8 and params.model =
'rf'``, backquoted keys, ``LIKE``/``ILIKE``/``IN``/``IS NULL``), so a filter is parsed by
loopwise's own parser and only what differs is rewritten: MLflow compares
``attributes.start_time``/``end_time`` with epoch milliseconds (loopwise: seconds),
names the user ``user_id`` and the run's name also as the tag ``mlflow.runName``, and has
``lifecycle_stage`` (every loopwise run is active). What loopwise cannot answer
(``datasets.*``, ``artifact_uri``) is NOT_IMPLEMENTED rather than a silently wrong match.
The result goes back to text for :func:`loopwise.tracking.search_pages.search_page`.
"""

from __future__ import annotations

import re
from typing import Any

from loopwise.errors import InvalidFilter
from loopwise.server.mlflow.protocol import unsupported
from loopwise.tracking.filter_parser import (
    And,
    Comparison,
    FilterExpr,
    Not,
    Or,
    OrderKey,
    parse_filter,
    parse_order_by,
)

_TIMES = {"start_time", "end_time"}
_DATASETS = re.compile(r"(?<![\w.`])datasets?\.", re.IGNORECASE)
_ACTIVE = Comparison("attributes", "run_id", "is not null")
_NOTHING = Comparison("attributes", "run_id", "is null")


def _entity_key(entity: str, key: str) -> tuple[str, str]:
    if entity == "tags" and key == "mlflow.runName":
        return "attributes", "name"
    if entity == "attributes" and key in ("user_id", "user"):
        return "attributes", "user"
    if entity not in ("metrics", "params", "tags", "attributes"):
        raise unsupported(f"Searching runs by {entity}.{key}")
    return entity, key


def _comparison(node: Comparison) -> FilterExpr:
    if node.entity == "attributes" and node.key in ("lifecycle_stage", "lifecyclestage"):
        values = node.value if isinstance(node.value, tuple) else (node.value,)
        active = "active" in [str(v).lower() for v in values]
        wanted = active if node.op in ("=", "in") else not active
        return _ACTIVE if wanted else _NOTHING
    if node.entity == "attributes" and node.key in ("artifact_uri", "run_uuid"):
        if node.key == "run_uuid":
            return Comparison("attributes", "run_id", node.op, node.value)
        raise unsupported("Searching runs by attributes.artifact_uri")
    entity, key = _entity_key(node.entity, node.key)
    value = node.value
    if entity == "attributes" and key in _TIMES and node.op not in ("is null", "is not null"):
        value = _seconds(value)
    return Comparison(entity, key, node.op, value)


def _seconds(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_seconds(v) for v in value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value / 1000
    return value


def _rewrite(node: FilterExpr) -> FilterExpr:
    if isinstance(node, Comparison):
        return _comparison(node)
    if isinstance(node, And):
        return And(tuple(_rewrite(i) for i in node.items))
    if isinstance(node, Or):
        return Or(tuple(_rewrite(i) for i in node.items))
    return Not(_rewrite(node.item))


def _literal(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
    return repr(value)


def _field(entity: str, key: str) -> str:
    return f"{entity}.`{key.replace('`', '``')}`" if entity != "attributes" else key


def _text(node: FilterExpr) -> str:
    if isinstance(node, Comparison):
        field = _field(node.entity, node.key)
        if node.op in ("is null", "is not null"):
            return f"{field} {node.op}"
        return f"{field} {node.op} {_literal(node.value)}"
    if isinstance(node, And):
        return "(" + " and ".join(_text(i) for i in node.items) + ")"
    if isinstance(node, Or):
        return "(" + " or ".join(_text(i) for i in node.items) + ")"
    return f"not ({_text(node.item)})"


def loopwise_filter(mlflow_filter: str | None) -> str | None:
    """The loopwise filter text an MLflow ``filter`` means (InvalidFilter names a typo)."""
    try:
        parsed = parse_filter(mlflow_filter)
    except InvalidFilter:
        if mlflow_filter and _DATASETS.search(mlflow_filter):
            raise unsupported("Searching runs by their datasets (datasets.*)") from None
        raise
    return None if parsed is None else _text(_rewrite(parsed))


def loopwise_order(mlflow_order: list[str]) -> list[str]:
    """The loopwise ``order_by`` items an MLflow ``order_by`` means."""
    keys: list[OrderKey] = parse_order_by(mlflow_order)
    out = []
    for key in keys:
        entity, name = _entity_key(key.entity, key.key)
        out.append(f"{_field(entity, name)} {'DESC' if key.descending else 'ASC'}")
    return out


__all__ = ["loopwise_filter", "loopwise_order"]
