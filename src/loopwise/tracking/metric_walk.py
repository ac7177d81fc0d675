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
from functools import lru_cache
from typing import Any

from sqlalchemy import Float, Integer, and_, bindparam, func, or_, select

from loopwise.store import Store
from loopwise.store.tables import experiments, metric_series, runs
from loopwise.tracking.filter_parser import OrderKey, parse_filter
from loopwise.tracking.search import conditions_of, experiment_ids

#: Series of the ordering metric walked before giving up on the walk.
WALK = 5_000
_TIE_BREAK = OrderKey("attributes", "run_id", True)


@lru_cache(maxsize=256)
def _statements(
    experiment_ids: tuple[str, ...] | None, filter: str | None, key: OrderKey, paged: bool
) -> tuple[Any, Any]:
    """(the fence query, the walk query) of a search, with the previous page's last row
    (``after_value``, ``after_run``), the fence and the limit as bound parameters.

    Kept per search (the experiments' ids, the filter's text, the order): a dashboard or an
    MLflow client repeats the same search, and a statement used again is compiled once --
    building and compiling it costs ten times the SQL it runs."""
    # An alias: the filter's own EXISTS on metric_series must not correlate with the walk.
    walked = metric_series.alias("walked")
    c = walked.c
    conditions = [c.key == key.key, c.last_value.is_not(None)]
    if paged:
        value, run_id = bindparam("after_value", type_=Float), bindparam("after_run")
        beyond = c.last_value < value if key.descending else c.last_value > value
        conditions.append(or_(beyond, and_(c.last_value == value, c.run_id < run_id)))
    by_value = c.last_value.desc() if key.descending else c.last_value.asc()
    # The last of the first WALK values in the order (or of all, when there are fewer): the
    # walk stops there. An index walk of at most WALK entries; the ties of that value are
    # walked too, so the run id need not order this one. Always a bound: without one, the
    # planner may test every run of the experiments instead of walking the index.
    walk_limit = bindparam("walk", type_=Integer)
    first = select(c.last_value.label("v")).where(*conditions).order_by(by_value)
    first = first.limit(walk_limit)
    first = first.subquery("first")
    edge = func.min(first.c.v) if key.descending else func.max(first.c.v)
    fence = select(edge).select_from(first)
    last = bindparam("fence", type_=Float)
    walk = (
        select(c.run_id, c.last_value.label("k0"), c.run_id.label("k1"))
        .select_from(walked)
        .join(runs, runs.c.id == c.run_id)
        .join(experiments, experiments.c.id == runs.c.experiment_id)
        .where(*conditions, *conditions_of(experiment_ids, filter))
        .where(c.last_value >= last if key.descending else c.last_value <= last)
        .order_by(by_value, c.run_id.desc())
        .limit(bindparam("limit", type_=Integer))
    )
    return fence, walk


def _walk(
    store: Store,
    experiment: str | Sequence[str] | None,
    filter: str | None,
    order: Sequence[OrderKey],
    after: Sequence[Any] | None,
) -> tuple[Any, Any] | None:
    """(the fence query, the walk query), or None when the order is not one metric and
    the run id, or when ``after`` (the sort values of the previous page's last row) is in
    the NULL tail."""
    if len(order) != 2 or order[0].entity != "metrics" or order[1] != _TIE_BREAK:
        return None
    if after is not None and after[0] is None:
        return None
    parse_filter(filter)  # a bad filter is reported before a missing experiment
    ids = experiment_ids(store, experiment)
    return _statements(None if ids is None else tuple(ids), filter, order[0], after is not None)


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
    if limit > WALK:
        return None
    queries = _walk(store, experiment, filter, order, after)
    if queries is None:
        return None
    fence, walk = queries
    bound = {"walk": WALK}
    if after is not None:
        bound.update(after_value=after[0], after_run=after[1])
    with store.db.read() as conn:
        last = conn.execute(fence, bound).scalar()
        if last is None:  # no run has a value of the metric: only the NULL tail is left
            return None
        found = conn.execute(walk, {**bound, "fence": last, "limit": limit}).all()
    return found if len(found) == limit else None


__all__ = ["WALK", "first_rows"]
