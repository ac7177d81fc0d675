"""The runs table of an experiment: one keyset page of the search, as the page shows it.

Why one page and nothing more: the table must stay fast at 100,000 runs, so a request runs
exactly one :func:`~loopwise.tracking.search_pages.search_page` (100 rows by default) and
nothing that grows with the experiment: the column picker offers the keys found on the
page (and the ones already chosen), not a scan of every run's keys.

The table's state lives in the URL (``filter``, ``order``, ``params``, ``metrics``,
``page_token``), so a view can be bookmarked, and each header or "next" link is the URL of
the next state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from loopwise.errors import InvalidInput
from loopwise.store import Store
from loopwise.tracking.search_pages import Columns, search_page

#: Rows per page.
PAGE_ROWS = 100
#: Params and metrics shown when none were picked.
DEFAULT_COLUMNS = 6
#: The most keys a picked list may hold.
MAX_PICKED = 100
_ATTRIBUTES = (("name", "Run"), ("status", "Status"), ("start_time", "Started"))


@dataclass(frozen=True)
class TableState:
    """What the URL asks of the table."""

    filter: str = ""
    order: str = ""
    params: tuple[str, ...] | None = None
    metrics: tuple[str, ...] | None = None
    page_token: str | None = None

    def query(self, **changes: Any) -> str:
        """The query string of this state with ``changes`` (the page token is dropped
        unless given: a new filter or order starts at the first page)."""
        values = {
            "filter": self.filter,
            "order": self.order,
            "params": None if self.params is None else ",".join(self.params),
            "metrics": None if self.metrics is None else ",".join(self.metrics),
            "page_token": None,
        } | changes
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


@dataclass(frozen=True)
class Column:
    """A column: its header, its ``order_by`` key (None when it cannot be sorted) and
    where a row's value lives (``entity``, ``key``)."""

    title: str
    entity: str
    key: str
    sort_key: str | None
    arrow: str = ""
    sort_query: str = ""


@dataclass
class RunsTable:
    """The rows and columns of one page, the picker's choices and the next page's query."""

    columns: list[Column]
    rows: list[dict[str, Any]]
    param_choices: list[str]
    metric_choices: list[str]
    shown_params: list[str]
    shown_metrics: list[str]
    next_query: str | None
    state: TableState


def picked(text: str | None, what: str) -> tuple[str, ...] | None:
    """A comma-separated list of keys from the URL (None when absent: the default)."""
    if text is None:
        return None
    keys = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    if len(keys) > MAX_PICKED:
        raise InvalidInput(f"At most {MAX_PICKED} {what} columns can be shown; got {len(keys)}.")
    return keys


def _order_key(entity: str, key: str) -> str | None:
    """``metrics.`val loss``` for a key the filter language needs quoted; None when the
    key cannot be written at all (it holds a backtick)."""
    if "`" in key:
        return None
    plain = key.replace("_", "a").replace("-", "a").replace(".", "a").isalnum()
    return f"{entity}.{key}" if plain and key[:1].isalpha() else f"{entity}.`{key}`"


def _current_order(order: str) -> tuple[str, bool] | None:
    text = order.strip()
    if not text or "," in text:
        return None
    head, _, direction = text.rpartition(" ")
    if direction.upper() in {"ASC", "DESC"} and head:
        return head.strip(), direction.upper() == "DESC"
    return text, False


def _column(state: TableState, title: str, entity: str, key: str) -> Column:
    sort_key = _order_key(entity, key)
    if sort_key is None:
        return Column(title, entity, key, None)
    current = _current_order(state.order)
    arrow, descending_next = "", entity in {"metrics", "attributes"}
    if current is not None and current[0] == sort_key:
        arrow = "▼" if current[1] else "▲"
        descending_next = not current[1]
    order = f"{sort_key} {'DESC' if descending_next else 'ASC'}"
    return Column(title, entity, key, sort_key, arrow, state.query(order=order))


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def build_table(store: Store, experiment: str, state: TableState) -> RunsTable:
    """One page of ``experiment``'s runs for ``state`` (InvalidFilter for a bad filter)."""
    page = search_page(
        store,
        experiment=experiment,
        filter=state.filter or None,
        order_by=state.order or None,
        max_results=PAGE_ROWS,
        page_token=state.page_token,
        columns=Columns(tags=[]),  # all params and metrics of the page: the picker's choices
    )
    found_params = sorted({k for row in page.runs for k in row["params"]})
    found_metrics = sorted({k for row in page.runs for k in row["metrics"]})
    shown_params = (
        list(state.params) if state.params is not None else found_params[:DEFAULT_COLUMNS]
    )
    shown_metrics = (
        list(state.metrics) if state.metrics is not None else found_metrics[:DEFAULT_COLUMNS]
    )
    columns = [_column(state, title, "attributes", key) for key, title in _ATTRIBUTES]
    columns += [_column(state, key, "params", key) for key in shown_params]
    columns += [_column(state, key, "metrics", key) for key in shown_metrics]
    for row in page.runs:
        row["metrics"] = {k: _cell(v) for k, v in row["metrics"].items()}
    next_query = None
    if page.next_page_token is not None:
        next_query = state.query(page_token=page.next_page_token)
    return RunsTable(
        columns=columns,
        rows=page.runs,
        param_choices=sorted(set(found_params) | set(shown_params)),
        metric_choices=sorted(set(found_metrics) | set(shown_metrics)),
        shown_params=shown_params,
        shown_metrics=shown_metrics,
        next_query=next_query,
        state=state,
    )


def empty_table(state: TableState) -> RunsTable:
    """The table shown when ``state`` is refused (a bad filter): no rows, the same state,
    so the filter box still holds the text to correct."""
    return RunsTable([], [], [], [], [], [], None, state)
