"""The metric walk (:mod:`loopwise.tracking.metric_walk`) answers exactly what the general
search answers: same rows, same order, same pages, on both databases. The runs have ties,
NaN and missing values of the ordering metric, two experiments and filters of every
selectivity; the walk is made short so that both its answers and its fallbacks are hit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopwise.clock import now_us
from loopwise.tracking import metric_walk
from loopwise.tracking import runs as run_service
from loopwise.tracking.log_batch import log_batch
from loopwise.tracking.search import search_run_ids
from loopwise.tracking.search_pages import search_page

FILTERS = [
    None,
    "params.kind = 'a'",
    "metrics.other > 0.9",  # selective: the walk gives up, the general search answers
    "params.kind = 'a' and metrics.other <= 0.5",
    "metrics.score is null",  # only the NULL tail
]
ORDERS = ["metrics.score DESC", "metrics.score ASC", "metrics.score", "start_time DESC"]


@pytest.fixture
def seeded(store):
    rng = np.random.default_rng(3)
    stamp = now_us()
    for i in range(240):
        experiment = "walk" if i % 5 else "elsewhere"
        run_id = run_service.create_run(store, experiment, name=f"r{i:03d}")
        metrics = [("other", float(rng.random()), 0, stamp)]
        roll = rng.random()
        if roll < 0.1:
            metrics.append(("score", math.nan, 0, stamp))
        elif roll < 0.8:  # few distinct values: many ties, broken by run id
            metrics.append(("score", float(rng.integers(0, 6)) / 5, 0, stamp))
        log_batch(
            store, run_id, params={"kind": "a" if rng.random() < 0.6 else "b"}, metrics=metrics
        )
    return store


def _general(monkeypatch):
    monkeypatch.setattr(metric_walk, "_walk", lambda *a, **k: None)


def _all_pages(store, **kwargs) -> list[list[str]]:
    pages, token = [], None
    while True:
        page = search_page(store, max_results=7, page_token=token, **kwargs)
        pages.append([r["id"] for r in page.runs])
        token = page.next_page_token
        if token is None:
            return pages


@pytest.mark.parametrize("order_by", ORDERS)
@pytest.mark.parametrize("filter_text", FILTERS)
def test_pages_and_ids_are_the_general_searchs(seeded, monkeypatch, filter_text, order_by):
    kwargs = {"experiment": "walk", "filter": filter_text, "order_by": order_by}
    monkeypatch.setattr(metric_walk, "WALK", 40)  # short: it answers some pages, not others
    walked_pages = _all_pages(seeded, **kwargs)
    walked_ids = search_run_ids(seeded, max_results=15, **kwargs)
    with monkeypatch.context() as patched:
        _general(patched)
        assert _all_pages(seeded, **kwargs) == walked_pages
        assert search_run_ids(seeded, max_results=15, **kwargs) == walked_ids
    flat = [run_id for page in walked_pages for run_id in page]
    assert len(flat) == len(set(flat))  # every run once
    assert flat[:15] == walked_ids


def test_the_walk_answers_a_first_page_and_gives_up_on_a_selective_filter(seeded, monkeypatch):
    from loopwise.tracking.search import sort_keys

    order = sort_keys("metrics.score DESC")
    rows = metric_walk.first_rows(seeded, "walk", "params.kind = 'a'", order, 8)
    assert rows is not None
    assert [r.k0 for r in rows] == sorted((r.k0 for r in rows), reverse=True)
    assert metric_walk.first_rows(seeded, "walk", "metrics.other > 0.99", order, 8) is None
    assert metric_walk.first_rows(seeded, "walk", None, sort_keys("start_time"), 8) is None
    two_keys = sort_keys(["metrics.score DESC", "params.kind"])
    assert metric_walk.first_rows(seeded, "walk", None, two_keys, 8) is None
