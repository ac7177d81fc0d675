"""Search results one page at a time, with keyset tokens, for the REST API and the UI.

Why keyset and not offsets: an offset makes the database walk past every earlier row, so
page 1,000 of 100,000 runs costs a thousand pages; and rows logged between two requests
shift an offset, so a page repeats or skips runs. A keyset token carries the sort values
of the last row given out; the next page is "the rows after these", one indexed walk.

The token is opaque to callers (base64 of JSON): the sort values and a fingerprint of the
query. A token from another query, or one that was edited, is refused with a 400 before
any SQL runs: each value must have the type its sort key has in the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, or_, select

from loopwise.clock import to_datetime
from loopwise.errors import InvalidInput
from loopwise.store import Store
from loopwise.store.tables import experiments, metric_series, run_params, run_tags, runs
from loopwise.tracking.filter_parser import OrderKey
from loopwise.tracking.metric_walk import first_rows
from loopwise.tracking.runs import reap_lost_runs
from loopwise.tracking.search import lifecycle_conditions, search_query, sort_column, sort_keys

MAX_PAGE = 1000
MAX_TOKEN_CHARS = 65_536
_INT64 = (-(2**63), 2**63 - 1)
_TIME_ATTRIBUTES = frozenset({"start_time", "end_time"})


@dataclass(frozen=True)
class Columns:
    """Which params, metrics and tags each row carries: None means all, ``[]`` none."""

    params: Sequence[str] | None = None
    metrics: Sequence[str] | None = None
    tags: Sequence[str] | None = None


@dataclass(frozen=True)
class RunPage:
    """One page of a search: rows as dicts, and the token of the next page (None at the
    end). Metric values are floats, NaN and ±inf included."""

    runs: list[dict[str, Any]]
    next_page_token: str | None


def search_page(
    store: Store,
    *,
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: str | Sequence[str] | None = None,
    max_results: int = 100,
    page_token: str | None = None,
    columns: Columns = Columns(),
    ids_only: bool = False,
    lifecycle: str = "active",
) -> RunPage:
    """The page of matching runs after ``page_token`` (the first page without one).
    ``ids_only``: each row is only ``{"id": ...}`` (a caller that reads the runs itself,
    such as MLflow's search, skips reading them twice). ``lifecycle``: deleted runs are
    left out (``"active"``), the only ones (``"deleted"``) or in (``"all"``), as MLflow's
    ``run_view_type`` asks."""
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise InvalidInput(
            f"max_results must be an integer in [1, {MAX_PAGE}]; got {max_results!r}."
        )
    if not 1 <= max_results <= MAX_PAGE:
        raise InvalidInput(
            f"max_results must be an integer in [1, {MAX_PAGE}]; got {max_results} instead."
        )
    order = sort_keys(order_by)
    lifecycle_conditions(lifecycle)  # an unknown one is refused before any SQL runs
    # (a token of one lifecycle is not one of another; the default's tokens are unchanged)
    fingerprint = _fingerprint(
        experiment, filter if lifecycle == "active" else f"{filter or ''}\x00{lifecycle}", order
    )
    after = None if page_token is None else _decode(page_token, fingerprint, order)
    reap_lost_runs(store)
    # One more row than the page tells whether a next page exists. (The walk by a metric
    # sees active runs only: what else is asked for goes the general way.)
    found = None
    if lifecycle == "active":
        found = first_rows(store, experiment, filter, order, max_results + 1, after)
    if found is None:
        query = search_query(store, experiment, filter, order, lifecycle=lifecycle)
        sorters = [sort_column(key) for key in order]
        if after is not None:
            query = query.where(_after(sorters, order, after))
        query = query.add_columns(*(c.label(f"k{i}") for i, c in enumerate(sorters)))
        with store.db.read() as conn:
            found = conn.execute(query.limit(max_results + 1)).all()
    if ids_only:
        rows = [{"id": r[0]} for r in found[:max_results]]
    else:
        with store.db.read() as conn:
            rows = _rows(conn, [r[0] for r in found[:max_results]], columns)
    token = None
    if len(found) > max_results:
        last = found[max_results - 1]
        token = _encode(fingerprint, [last[i + 1] for i in range(len(order))])
    return RunPage(rows, token)


# -- tokens ----------------------------------------------------------------------------------


def _fingerprint(experiment: Any, filter: str | None, order: list[OrderKey]) -> str:
    names = [experiment] if isinstance(experiment, str) or experiment is None else list(experiment)
    text = json.dumps([names, filter or "", [[k.entity, k.key, k.descending] for k in order]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _encode(fingerprint: str, values: list[Any]) -> str:
    raw = json.dumps({"q": fingerprint, "k": values}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _bad_token(why: str) -> InvalidInput:
    return InvalidInput(
        f"page_token is not valid ({why}). Pass the next_page_token of the previous answer "
        "to the same search unchanged, or leave page_token out for the first page."
    )


def _decode(token: str, fingerprint: str, order: list[OrderKey]) -> list[Any]:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise _bad_token("empty or too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise _bad_token("not a token this server gave out") from None
    if not isinstance(data, dict) or set(data) != {"q", "k"} or not isinstance(data["k"], list):
        raise _bad_token("not a token this server gave out")
    if data["q"] != fingerprint:
        raise _bad_token("it belongs to a search with another filter, order or experiment")
    values = data["k"]
    if len(values) != len(order):
        raise _bad_token("not a token this server gave out")
    for key, value in zip(order, values, strict=True):
        if not _fits(key, value):
            raise _bad_token(f"the value for {key.entity}.{key.key} has the wrong type")
    return values


def _fits(key: OrderKey, value: Any) -> bool:
    """True when ``value`` has the type the sort key's column holds."""
    if key.entity == "attributes" and key.key == "run_id":
        return isinstance(value, str)
    if value is None:
        return True
    if key.entity == "metrics":
        return isinstance(value, float | int) and not isinstance(value, bool)
    if key.entity == "attributes" and key.key in _TIME_ATTRIBUTES:
        return type(value) is int and _INT64[0] <= value <= _INT64[1]
    return isinstance(value, str)


def _after(sorters: list[Any], order: list[OrderKey], values: list[Any]) -> Any:
    """Rows after ``values`` in the order (each key NULLs last, ties broken by later keys)."""
    alternatives = []
    for i, (column, key, value) in enumerate(zip(sorters, order, values, strict=True)):
        same = [
            c.is_(None) if v is None else c == v
            for c, v in zip(sorters[:i], values[:i], strict=True)
        ]
        if value is None:
            continue  # nothing sorts after NULL but other NULLs (the ties of the next key)
        beyond = column < value if key.descending else column > value
        alternatives.append(and_(*same, or_(beyond, column.is_(None))))
    return or_(*alternatives) if alternatives else false()


# -- rows ------------------------------------------------------------------------------------


def _rows(conn: Any, ids: list[str], columns: Columns) -> list[dict[str, Any]]:
    if not ids:
        return []
    base = conn.execute(
        select(
            runs.c.id,
            runs.c.name,
            runs.c.experiment_id,
            experiments.c.name.label("experiment"),
            runs.c.status,
            runs.c.start_time,
            runs.c.end_time,
            runs.c.parent_run_id,
            runs.c.username,
        )
        .join(experiments, experiments.c.id == runs.c.experiment_id)
        .where(runs.c.id.in_(ids))
    ).all()
    by_id = {}
    for r in base:
        start, end = to_datetime(r.start_time), to_datetime(r.end_time)
        by_id[r.id] = {
            "id": r.id,
            "name": r.name,
            "experiment_id": r.experiment_id,
            "experiment": r.experiment,
            "status": r.status,
            "start_time": start.isoformat() if start else None,
            "end_time": end.isoformat() if end else None,
            "parent_run_id": r.parent_run_id,
            "user": r.username,
            "params": {},
            "metrics": {},
            "tags": {},
        }
    for field, table, value in (
        ("params", run_params, run_params.c.value),
        ("metrics", metric_series, metric_series.c.last_value),
        ("tags", run_tags, run_tags.c.value),
    ):
        keys = getattr(columns, field)
        if keys is not None and not keys:
            continue
        query = select(table.c.run_id, table.c.key, value).where(table.c.run_id.in_(ids))
        if keys is not None:
            query = query.where(table.c.key.in_(list(keys)))
        for run_id, key, item in conn.execute(query.order_by(table.c.key)):
            if field == "metrics":
                item = float("nan") if item is None else item  # NaN is stored as NULL
            by_id[run_id][field][key] = item
    return [by_id[run_id] for run_id in ids if run_id in by_id]


__all__ = ["MAX_PAGE", "Columns", "RunPage", "search_page"]
