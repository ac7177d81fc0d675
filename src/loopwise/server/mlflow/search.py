"""MLflow's ``search_runs`` filter and ``order_by`` as loopwise's search language.

MLflow's filter language is a subset of loopwise's (``metrics.auc > 0.8 and params.model =
'rf'``, backquoted keys, ``LIKE``/``ILIKE``/``IN``/``IS NULL``), so a filter is parsed by
loopwise's own parser and only what differs is rewritten: MLflow compares
``attributes.start_time``/``end_time`` with epoch milliseconds (loopwise: seconds),
names the user ``user_id`` and the run's name also as the tag ``mlflow.runName``, and has
``lifecycle_stage``, which is no filter in loopwise but which runs a search sees (deleted
ones or not): a test of it joined to the rest by ``and`` narrows MLflow's
``run_view_type``; one under ``or``/``not`` is NOT_IMPLEMENTED. What loopwise cannot answer
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
_STAGES = frozenset({"active", "deleted"})
#: MLflow's ``lifecycle_stage`` field, outside quotes; loopwise's parser has no such field,
#: so it is spelled as a param key no real param can have (a NUL in it) before parsing.
_STAGE_FIELD = re.compile(r"(?<![\w.])(?:attributes?\.|attr\.)?lifecycle_?stage(?![\w])", re.I)
_STAGE_KEY = "\x00lifecycle_stage"
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`(?:[^`]|``)*`")


def _mark_stage(mlflow_filter: str) -> str:
    """``mlflow_filter`` with each ``lifecycle_stage`` field (not inside a quoted value or
    key) written as the param key :data:`_STAGE_KEY`."""
    out, at = [], 0
    for quoted in _QUOTED.finditer(mlflow_filter):
        out.append(_STAGE_FIELD.sub(f"params.`{_STAGE_KEY}`", mlflow_filter[at : quoted.start()]))
        out.append(quoted.group())
        at = quoted.end()
    out.append(_STAGE_FIELD.sub(f"params.`{_STAGE_KEY}`", mlflow_filter[at:]))
    return "".join(out)


def _entity_key(entity: str, key: str) -> tuple[str, str]:
    if entity == "tags" and key == "mlflow.runName":
        return "attributes", "name"
    if entity == "attributes" and key in ("user_id", "user"):
        return "attributes", "user"
    if entity not in ("metrics", "params", "tags", "attributes"):
        raise unsupported(f"Searching runs by {entity}.{key}")
    return entity, key


def _is_stage(node: FilterExpr) -> bool:
    return isinstance(node, Comparison) and node.entity == "params" and node.key == _STAGE_KEY


def _stages(node: Comparison) -> set[str]:
    """The lifecycle stages a ``lifecycle_stage`` test lets through."""
    values = node.value if isinstance(node.value, tuple) else (node.value,)
    named = {str(v).lower() for v in values}
    if node.op in ("=", "in"):
        return set(_STAGES & named)
    if node.op in ("!=", "not in"):
        return set(_STAGES - named)
    raise unsupported(f"Searching runs by lifecycle_stage {node.op.upper()}")


def _comparison(node: Comparison) -> FilterExpr:
    if _is_stage(node):
        raise unsupported("A lifecycle_stage test under OR or NOT")
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


def loopwise_filter_and_stages(mlflow_filter: str | None) -> tuple[str | None, set[str] | None]:
    """The loopwise filter text an MLflow ``filter`` means (InvalidFilter names a typo),
    and the lifecycle stages its top-level ``lifecycle_stage`` tests let through (None when
    it has none: then ``run_view_type`` alone decides)."""
    try:
        parsed = parse_filter(_mark_stage(mlflow_filter) if mlflow_filter else mlflow_filter)
    except InvalidFilter:
        if mlflow_filter and _DATASETS.search(mlflow_filter):
            raise unsupported("Searching runs by their datasets (datasets.*)") from None
        raise
    if parsed is None:
        return None, None
    parts = list(parsed.items) if isinstance(parsed, And) else [parsed]
    stages: set[str] | None = None
    rest = []
    for part in parts:
        if isinstance(part, Comparison) and _is_stage(part):
            allowed = _stages(part)
            stages = allowed if stages is None else stages & allowed
        else:
            rest.append(part)
    if not rest:
        return None, stages
    kept = rest[0] if len(rest) == 1 else And(tuple(rest))
    return _text(_rewrite(kept)), stages


def loopwise_order(mlflow_order: list[str]) -> list[str]:
    """The loopwise ``order_by`` items an MLflow ``order_by`` means."""
    keys: list[OrderKey] = parse_order_by(mlflow_order)
    out = []
    for key in keys:
        entity, name = _entity_key(key.entity, key.key)
        out.append(f"{_field(entity, name)} {'DESC' if key.descending else 'ASC'}")
    return out


__all__ = ["loopwise_filter_and_stages", "loopwise_order"]
