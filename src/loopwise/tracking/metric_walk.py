"""The first rows of a search ordered by one metric, walked from that metric's index.

Why: the general search (:func:`loopwise.tracking.search.search_query`) tests every run of
the experiments against the filter, then sorts the matches by a correlated subquery. At
100,000 runs that is a few hundred milliseconds, whatever the page size, while a runs
table ordered by a metric (``metrics.auc DESC``) only ever shows its first 100 rows.

So when the order is one metric (plus the run id that breaks ties, which every search
adds), the runs are walked in that order from the index on ``(key, last_value)``, joined
to their runs and filtered, and the walk stops at the first ``limit`` that pass or at the
fence, the :data:`WALK`-th value of the metric in that order (found first by an index
walk of that many entries). Those rows are exactly the general
search's first rows whenever ``limit`` of them pass -- every run beyond the walk sorts
after every run in it, and runs without the metric (or with NaN, stored as NULL) sort
last. When fewer pass (a selective filter, a small experiment among large ones, the NULL
tail of the order), :func:`first_rows` answers None and the caller runs the general
search: the walk costs at most :data:`WALK` index entries, a few tens of milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select

from loopwise.store import Store
from loopwise.store.tables import experiments, metric_series, runs
from loopwise.tracking.filter_parser import OrderKey
from loopwise.tracking.search import search_conditions

#: Series of the ordering metric walked before giving up on the walk.
WALK = 5_000
_TIE_BREAK = OrderKey("attributes", "run_id", True)


def _walk(
    store: Store,
    experiment: str | Sequence[str] | None,
    filter: str | None,
    order: Sequence[OrderKey],
    after: Sequence[Any] | None,
) -> tuple[Any, Any, Any] | None:
    """(the fence query, the walk query without its fence and limit, the walked value
    column), or None when the order is not one metric and the run id, or when ``after``
    (the sort values of the previous page's last row) is in the NULL tail."""
    if len(order) != 2 or order[0].entity != "metrics" or order[1] != _TIE_BREAK:
        return None
    if after is not None and after[0] is None:
        return None
    # An alias: the filter's own EXISTS on metric_series must not correlate with the walk.
    key, walked = order[0], metric_series.alias("walked")
    c = walked.c
    conditions = [c.key == key.key, c.last_value.is_not(None)]
    if after is not None:
        value, run_id = after
        beyond = c.last_value < value if key.descending else c.last_value > value
        conditions.append(or_(beyond, and_(c.last_value == value, c.run_id < run_id)))
    by_value = c.last_value.desc() if key.descending else c.last_value.asc()
    # The last of the first WALK values in the order (or of all, when there are fewer): the
    # walk stops there. An index walk of at most WALK entries; the ties of that value are
    # walked too, so the run id need not order this one. Always a bound: without one, the
    # planner may test every run of the experiments instead of walking the index.
    first = select(c.last_value.label("v")).where(*conditions).order_by(by_value).limit(WALK)
    first = first.subquery("first")
    edge = func.min(first.c.v) if key.descending else func.max(first.c.v)
    fence = select(edge).select_from(first)
    walk = (
        select(c.run_id, c.last_value.label("k0"), c.run_id.label("k1"))
        .select_from(walked)
        .join(runs, runs.c.id == c.run_id)
        .join(experiments, experiments.c.id == runs.c.experiment_id)
        .where(*conditions, *search_conditions(store, experiment, filter))
        .order_by(by_value, c.run_id.desc())
    )
    return fence, walk, c.last_value


def first_rows(
    store: Store,
    experiment: str | Sequence[str] | None,
    filter: str | None,
    order: Sequence[OrderKey],
    limit: int,
    after: Sequence[Any] | None = None,
) -> list[Any] | None:
    """The first ``limit`` rows (run id, then the sort values) of the search, by the walk;
    None when the walk does not apply or does not find ``limit`` rows (then only the
    general search knows them)."""
    queries = _walk(store, experiment, filter, order, after)
    if queries is None or limit > WALK:
        return None
    fence, walk, value = queries
    with store.db.read() as conn:
        last = conn.execute(fence).scalar()
        if last is None:  # no run has a value of the metric: only the NULL tail is left
            return None
        walk = walk.where(value >= last if order[0].descending else value <= last)
        found = conn.execute(walk.limit(limit)).all()
    return found if len(found) == limit else None


__all__ = ["WALK", "first_rows"]
