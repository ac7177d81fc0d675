"""``search_runs``: filter and order runs in SQL, return a pandas DataFrame.

The filter AST of :mod:`loopwise.tracking.filter_parser` compiles to one SQL statement:
each ``metrics.``/``params.``/``tags.`` test becomes an ``EXISTS`` on an indexed table
(metrics compare the series' latest value), each order key a correlated scalar
subquery. Only the page of matching run ids comes back; their params, metrics and tags
are then fetched with three ``IN`` queries, never one query per run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    literal,
    not_,
    or_,
    select,
)

from loopwise.clock import parse_iso, to_us
from loopwise.errors import InvalidFilter, InvalidInput, NotFound
from loopwise.store import Store
from loopwise.store.expressions import number_in_text
from loopwise.store.tables import experiments, metric_series, run_params, run_tags, runs
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
from loopwise.tracking.records import RunStatus
from loopwise.tracking.runs import reap_lost_runs

if TYPE_CHECKING:
    import pandas as pd

_IN_CHUNK = 500
_COLUMNS = ["run_id", "name", "experiment", "status", "start_time", "end_time", "parent_run_id"]


def _attribute_column(name: str) -> ColumnElement[Any]:
    return {
        "run_id": runs.c.id,
        "name": runs.c.name,
        "status": runs.c.status,
        "experiment": experiments.c.name,
        "experiment_id": runs.c.experiment_id,
        "start_time": runs.c.start_time,
        "end_time": runs.c.end_time,
        "parent_run_id": runs.c.parent_run_id,
        "user": runs.c.username,
    }[name]


def _time_value(value: Any, name: str) -> int:
    """Microseconds for a filter value on start_time/end_time (ISO text or epoch seconds)."""
    if isinstance(value, str):
        try:
            return to_us(parse_iso(value, f"attributes.{name}"))
        except InvalidInput as e:
            raise InvalidFilter(f"{e} Or compare with seconds since the epoch.") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidFilter(f"attributes.{name} compares with a time, got {value!r}.")
    return int(value * 1_000_000)


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "in":
        return column.in_(list(value))
    if op == "not in":
        return column.not_in(list(value))
    if op == "like":
        return column.like(value)
    if op == "not like":
        return column.not_like(value)
    if op == "ilike":
        return column.ilike(value)
    if op == "not ilike":
        return column.not_ilike(value)
    raise InvalidFilter(f"Operator '{op}' is not supported here.")


def _presence(base: list[ColumnElement[bool]], op: str) -> ColumnElement[bool]:
    """``key is null`` means the run has no such key; ``is not null`` that it has one."""
    found = exists(select(literal(1)).where(*base))
    return not_(found) if op == "is null" else found


def _metric_test(comp: Comparison) -> ColumnElement[bool]:
    c = metric_series.c
    base = [c.run_id == runs.c.id, c.key == comp.key]
    if comp.op in ("is null", "is not null"):
        return _presence(base, comp.op)
    values = comp.value if isinstance(comp.value, tuple) else (comp.value,)
    nan = any(isinstance(v, float) and math.isnan(v) for v in values)
    others = tuple(v for v in values if not (isinstance(v, float) and math.isnan(v)))
    # NaN is stored as NULL: "= nan" finds NaN values, "!= nan" every other value.
    if comp.op in ("=", "in") and nan:
        test = or_(c.last_value.is_(None), _compare(c.last_value, "in", others or (None,)))
    elif comp.op in ("!=", "not in") and nan:
        test = c.last_value.is_not(None)
        if others:
            test = and_(test, _compare(c.last_value, "not in", others))
    elif nan:  # ordering comparisons with NaN are never true
        return false()
    else:
        value = others if isinstance(comp.value, tuple) else comp.value
        test = _compare(c.last_value, comp.op, value)
    return exists(select(literal(1)).where(*base, test))


def _text_test(table: Any, comp: Comparison) -> ColumnElement[bool]:
    c = table.c
    base = [c.run_id == runs.c.id, c.key == comp.key]
    if comp.op in ("is null", "is not null"):
        return _presence(base, comp.op)
    values = comp.value if isinstance(comp.value, tuple) else (comp.value,)
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numeric and comp.op not in ("like", "not like", "ilike", "not ilike"):
        column: Any = number_in_text(c.value)
        value: Any = comp.value
    else:
        column = c.value
        value = tuple(str(v) for v in values) if isinstance(comp.value, tuple) else str(comp.value)
    return exists(select(literal(1)).where(*base, _compare(column, comp.op, value)))


def _attribute_test(comp: Comparison) -> ColumnElement[bool]:
    column = _attribute_column(comp.key)
    if comp.op == "is null":
        return column.is_(None)
    if comp.op == "is not null":
        return column.is_not(None)
    value = comp.value
    if comp.key in ("start_time", "end_time"):
        value = (
            tuple(_time_value(v, comp.key) for v in value)
            if isinstance(value, tuple)
            else _time_value(value, comp.key)
        )
    elif comp.key == "status":
        statuses = value if isinstance(value, tuple) else (value,)
        known = {s.value for s in RunStatus}
        for status in statuses:
            if "like" not in comp.op and str(status).upper() not in known:
                raise InvalidFilter(
                    f"Unknown run status {status!r}; use one of {', '.join(sorted(known))}."
                )
        value = (
            tuple(str(v).upper() for v in value)
            if isinstance(value, tuple)
            else str(value).upper()
            if "like" not in comp.op
            else str(value)
        )
    elif isinstance(value, tuple):
        value = tuple(str(v) for v in value)
    else:
        value = str(value)
    return _compare(column, comp.op, value)


def compile_filter(expr: FilterExpr) -> ColumnElement[bool]:
    """SQL for a parsed filter, over ``runs`` joined with ``experiments``; the same
    statement for both databases (what they spell differently lives in the store's
    expressions and is chosen when the statement is compiled)."""
    if isinstance(expr, And):
        return and_(*(compile_filter(item) for item in expr.items))
    if isinstance(expr, Or):
        return or_(*(compile_filter(item) for item in expr.items))
    if isinstance(expr, Not):
        return not_(compile_filter(expr.item))
    if expr.entity == "metrics":
        return _metric_test(expr)
    if expr.entity == "params":
        return _text_test(run_params, expr)
    if expr.entity == "tags":
        return _text_test(run_tags, expr)
    return _attribute_test(expr)


def sort_column(key: OrderKey) -> ColumnElement[Any]:
    """The SQL expression a search sorts by for ``key`` (NULL when a run lacks the key)."""
    if key.entity == "metrics":
        return (
            select(metric_series.c.last_value)
            .where(metric_series.c.run_id == runs.c.id, metric_series.c.key == key.key)
            .scalar_subquery()
        )
    if key.entity in ("params", "tags"):
        table = run_params if key.entity == "params" else run_tags
        return (
            select(table.c.value)
            .where(table.c.run_id == runs.c.id, table.c.key == key.key)
            .scalar_subquery()
        )
    return _attribute_column(key.key)


def experiment_ids(store: Store, experiment: str | Sequence[str] | None) -> list[str] | None:
    """The ids of the experiments a search names (by name or id; None: every experiment);
    NotFound names the missing ones and some that exist."""
    if experiment is None:
        return None
    names = [experiment] if isinstance(experiment, str) else list(experiment)
    with store.db.read() as conn:
        rows = conn.execute(
            select(experiments.c.id, experiments.c.name).where(
                experiments.c.name.in_(names) | experiments.c.id.in_(names)
            )
        ).all()
    found = {name for row in rows for name in (row.id, row.name)}
    missing = [name for name in names if name not in found]
    if missing:
        with store.db.read() as conn:
            known = [r[0] for r in conn.execute(select(experiments.c.name).limit(20))]
        raise NotFound(
            f"Experiment {', '.join(repr(m) for m in missing)} does not exist. "
            f"Known experiments: {', '.join(known) or 'none yet'}."
        )
    return [row.id for row in rows]


def sort_keys(order_by: str | Sequence[str] | None) -> list[OrderKey]:
    """The order of a search: the parsed ``order_by`` (newest first when empty), then the
    run id, descending, which makes the order total (keyset pages rely on it)."""
    order = parse_order_by(list(order_by) if isinstance(order_by, list | tuple) else order_by)
    if not order:
        order = [OrderKey("attributes", "start_time", True)]
    return [*order, OrderKey("attributes", "run_id", True)]


#: Which runs a search sees: those not deleted (the default), the deleted ones, or all.
LIFECYCLES = ("active", "deleted", "all")


def lifecycle_conditions(lifecycle: str = "active") -> list[ColumnElement[bool]]:
    """The condition on ``runs`` that leaves deleted runs out (``"active"``), keeps only
    them (``"deleted"``) or none (``"all"``): one place, so every search and its fast path
    (:mod:`loopwise.tracking.metric_walk`) agree on what a deleted run is."""
    if lifecycle == "active":
        return [runs.c.deleted_at.is_(None)]
    if lifecycle == "deleted":
        return [runs.c.deleted_at.is_not(None)]
    if lifecycle == "all":
        return []
    raise InvalidInput(f"lifecycle must be one of {', '.join(LIFECYCLES)}; got {lifecycle!r}.")


def search_conditions(
    store: Store,
    experiment: str | Sequence[str] | None,
    filter: str | None,
    *,
    lifecycle: str = "active",
) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a search on ``runs``: its experiments, its filter, and
    whether deleted runs are in it (:func:`lifecycle_conditions`; by default they are not)."""
    parse_filter(filter)  # a bad filter is reported before a missing experiment
    exp_ids = experiment_ids(store, experiment)
    return conditions_of(None if exp_ids is None else tuple(exp_ids), filter, lifecycle)


def conditions_of(
    experiment_ids: tuple[str, ...] | None, filter: str | None, lifecycle: str = "active"
) -> list[ColumnElement[bool]]:
    """:func:`search_conditions` for experiments already resolved to their ids: a pure
    function of its arguments, so a caller may keep what it builds (the metric walk keeps
    its statements, whose SQL then compiles once)."""
    expr = parse_filter(filter)
    conditions = lifecycle_conditions(lifecycle)
    if experiment_ids is not None:
        conditions.append(runs.c.experiment_id.in_(experiment_ids))
    if expr is not None:
        conditions.append(compile_filter(expr))
    return conditions


def search_query(
    store: Store,
    experiment: str | Sequence[str] | None,
    filter: str | None,
    order: Sequence[OrderKey],
    *,
    lifecycle: str = "active",
) -> Any:
    """The ordered SELECT of matching run ids (no limit), NULLs last for every key."""
    query = select(runs.c.id).join(experiments, experiments.c.id == runs.c.experiment_id)
    query = query.where(*search_conditions(store, experiment, filter, lifecycle=lifecycle))
    clauses = []
    for key in order:
        column = sort_column(key)
        clauses.append((column.desc() if key.descending else column.asc()).nulls_last())
    return query.order_by(*clauses)


def check_max_results(max_results: object) -> None:
    """InvalidFilter unless ``max_results`` is a positive integer or None (one rule for the
    store and the remote client)."""
    if max_results is not None and (
        not isinstance(max_results, int) or isinstance(max_results, bool) or max_results < 1
    ):
        raise InvalidFilter(f"max_results must be a positive integer or None, got {max_results!r}.")


def search_run_ids(
    store: Store,
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: str | Sequence[str] | None = None,
    max_results: int | None = 1000,
) -> list[str]:
    """Ids of matching runs, in order."""
    parse_filter(filter)  # a bad filter is reported before a bad order or max_results
    order = sort_keys(order_by)
    check_max_results(max_results)
    if max_results is not None:
        from loopwise.tracking.metric_walk import first_rows

        walked = first_rows(store, experiment, filter, order, max_results)
        if walked is not None:
            return [row[0] for row in walked]
    query = search_query(store, experiment, filter, order)
    if max_results is not None:
        query = query.limit(max_results)
    with store.db.read() as conn:
        return [row[0] for row in conn.execute(query)]


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK)]


def search_runs(
    store: Store,
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: str | Sequence[str] | None = None,
    max_results: int | None = 1000,
) -> pd.DataFrame:
    """Matching runs as a DataFrame: run columns, then ``params.*``, ``metrics.*``, ``tags.*``."""
    import numpy as np  # NumPy and pandas on demand: the server's pages need neither
    import pandas as pd

    reap_lost_runs(store)
    ids = search_run_ids(store, experiment, filter, order_by, max_results)
    position = {run_id: i for i, run_id in enumerate(ids)}
    n = len(ids)
    base: dict[str, list[Any]] = {name: [None] * n for name in _COLUMNS}
    params: dict[str, list[Any]] = {}
    metrics: dict[str, np.ndarray] = {}
    tags: dict[str, list[Any]] = {}
    with store.db.read() as conn:
        for chunk in _chunks(ids):
            for row in conn.execute(
                select(
                    runs.c.id,
                    runs.c.name,
                    experiments.c.name.label("experiment"),
                    runs.c.status,
                    runs.c.start_time,
                    runs.c.end_time,
                    runs.c.parent_run_id,
                )
                .join(experiments, experiments.c.id == runs.c.experiment_id)
                .where(runs.c.id.in_(chunk))
            ):
                i = position[row[0]]
                for name, value in zip(_COLUMNS, row, strict=True):
                    base[name][i] = value
            for run_id, key, value in conn.execute(
                select(run_params.c.run_id, run_params.c.key, run_params.c.value).where(
                    run_params.c.run_id.in_(chunk)
                )
            ):
                params.setdefault(key, [None] * n)[position[run_id]] = value
            for run_id, key, value in conn.execute(
                select(
                    metric_series.c.run_id, metric_series.c.key, metric_series.c.last_value
                ).where(metric_series.c.run_id.in_(chunk))
            ):
                if key not in metrics:
                    metrics[key] = np.full(n, np.nan)
                metrics[key][position[run_id]] = np.nan if value is None else value
            for run_id, key, value in conn.execute(
                select(run_tags.c.run_id, run_tags.c.key, run_tags.c.value).where(
                    run_tags.c.run_id.in_(chunk)
                )
            ):
                tags.setdefault(key, [None] * n)[position[run_id]] = value
    data: dict[str, Any] = dict(base)
    for name in ("start_time", "end_time"):
        data[name] = pd.to_datetime(pd.array(base[name], dtype="Int64"), unit="us", utc=True)
    for key in sorted(params):
        data[f"params.{key}"] = params[key]
    for key in sorted(metrics):
        data[f"metrics.{key}"] = metrics[key]
    for key in sorted(tags):
        data[f"tags.{key}"] = tags[key]
    frame = pd.DataFrame(data, index=pd.RangeIndex(n))
    return frame


__all__ = [
    "LIFECYCLES",
    "compile_filter",
    "conditions_of",
    "experiment_ids",
    "lifecycle_conditions",
    "search_conditions",
    "search_query",
    "search_run_ids",
    "search_runs",
    "sort_column",
    "sort_keys",
]
