"""The web UI in a real browser: Debian's Chromium driven by Playwright against a real
server thread on a SQLite store with 10,000 runs. Opens the experiments page, filters the
runs table (htmx swaps the table only), opens a run and waits for a uPlot canvas, compares
two runs; keeps a screenshot of each page under ``tests/artifacts/ui/``, and prints the
runs page's load time (navigation start to the table drawn). Without Chromium or
Playwright these tests skip, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from loopwise.clock import now_us
from loopwise.config import load_settings
from loopwise.server.app import create_server_app
from loopwise.serving.server import ServerThread
from loopwise.store import Store
from loopwise.tracking import runs as run_service
from loopwise.tracking.log_batch import log_batch
from tests.helpers import seed_runs as seed
from tests.helpers import ui_screenshot as shot
from tests.helpers import ui_tab
from tests.reports.conftest import _require_browser

RUNS = 10_000


def _many_runs(store: Store, count: int) -> None:
    stamp = now_us()
    for i in range(count):
        run_id = run_service.create_run(store, "big", name=f"big-{i:05d}")
        log_batch(
            store,
            run_id,
            params={"p1": "a" if i % 3 else "b", "p2": f"v{i % 10}"},
            metrics=[("m1", (i * 7919 % 1000) / 1000, 0, stamp), ("m2", i / count, 0, stamp)],
        )
        run_service.end_run(store, run_id, "FINISHED")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store]]:
    _require_browser()
    folder = tmp_path_factory.mktemp("ui")
    store = Store(
        settings=load_settings(
            store_url=f"sqlite:///{folder}/loopwise.db", artifacts_url=str(folder / "artifacts")
        )
    )
    seed(store, runs=3, points=500)
    start = time.perf_counter()
    _many_runs(store, RUNS)
    print(f"setup: {RUNS:,} runs in {time.perf_counter() - start:.1f}s")
    app = create_server_app(store)
    app.state.authenticator.start()
    with ServerThread(app) as running:
        yield running.url, store
    app.state.authenticator.stop()
    store.db.engine.dispose()


@pytest.fixture(scope="module")
def page(server: tuple[str, Store], browser: Any) -> Iterator[Any]:
    with ui_tab(browser) as tab:
        yield tab


def test_experiments_then_runs_table_filtered(server, page):
    from playwright.sync_api import expect

    url, store = server
    page.goto(url + "/")
    assert page.locator("table.list >> text=big").count() == 1
    shot(page, "experiments")

    experiment = run_service.get_experiment(store, "big").id
    page.goto(f"{url}/experiments/{experiment}")
    page.wait_for_selector("table.runs tbody tr")
    drawn_ms = page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return n.domContentLoadedEventEnd - n.startTime; }"
    )
    print(f"ui_runs_page_ms at {RUNS:,} runs: {drawn_ms:.0f} ms (navigation start to table drawn)")
    assert page.locator("table.runs tbody tr").count() == 100
    shot(page, "runs")

    page.fill("input.filter", "params.p1 = 'b' and metrics.m2 < 0.001")
    with page.expect_response(lambda r: "filter=" in r.url) as answer:
        page.click("form.controls button[type=submit]")
    assert answer.value.request.headers.get("hx-request") == "true"
    expect(page.locator("table.runs tbody tr")).not_to_have_count(100)
    names = page.locator("table.runs tbody td a").all_inner_texts()
    assert names
    assert all(int(n.split("-")[1]) % 3 == 0 and int(n.split("-")[1]) < 10 for n in names)
    assert "filter=" in page.url  # the URL keeps the view
    shot(page, "runs-filtered")

    page.click("table.runs thead a:has-text('m2')")
    expect(page.locator("table.runs thead")).to_contain_text("m2 ▼")
    assert page.errors == []


def test_run_page_draws_a_chart(server, page):
    url, store = server
    run_id = run_service.resolve_run_id(store, "run-0")
    page.goto(f"{url}/runs/{run_id}")
    page.locator(".chart").first.scroll_into_view_if_needed()
    page.wait_for_selector(".chart[data-state=drawn] canvas", timeout=10_000)
    size = page.evaluate(
        "() => { const c = document.querySelector('.chart canvas'); return [c.width, c.height]; }"
    )
    assert size[0] > 100
    assert size[1] > 100
    assert page.locator("pre.preview", has_text="hello log line").count() == 1
    shot(page, "run")
    assert page.errors == []


def test_compare_two_runs(server, page):
    url, store = server
    experiment = run_service.get_experiment(store, "exp").id
    page.goto(f"{url}/experiments/{experiment}")
    boxes = page.locator("table.runs input[name=run]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("[data-compare]")
    page.wait_for_url("**/compare?runs=*")
    page.wait_for_selector(".chart[data-state=drawn] canvas", timeout=10_000)
    assert page.locator("table.diff tr.differs th", has_text="lr").count() == 1
    legend = page.locator(".chart").first.locator(".u-legend .u-series")
    assert legend.count() == 3  # the step and one line per run
    shot(page, "compare")
    assert page.errors == []
