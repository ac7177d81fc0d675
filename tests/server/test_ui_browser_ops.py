"""The web UI's registry, dataset, endpoint and monitor pages in a real browser: Debian's
Chromium driven by Playwright against a real server thread on a SQLite store holding a
model trained in a run on a dataset, promotions, an endpoint's prediction log and a
monitor whose alert fires.

Follows a model version's lineage to its dataset by clicking, sees the endpoint's traffic
and latency charts drawn and a request's trace, sees the firing alert and the monitor's
chart; every page of the UI is opened with no script error, and a screenshot of each is
kept under ``tests/artifacts/ui/``. Without Chromium or Playwright these tests skip,
except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from loopwise import context
from loopwise.server.app import create_server_app
from loopwise.serving.server import ServerThread
from tests.helpers import UI_FEATURES, seed_monitor, seed_registry, ui_tab
from tests.helpers import ui_screenshot as shot
from tests.reports.conftest import _require_browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import loopwise as lw

    _require_browser()
    folder = tmp_path_factory.mktemp("ui-ops")
    lw.configure(
        store_url=f"sqlite:///{folder}/loopwise.db",
        artifacts_url=str(folder / "artifacts"),
        cache_dir=str(folder / "cache"),
    )
    try:
        frame = seed_registry(lw)
        now = datetime.now(UTC)
        scored = frame[UI_FEATURES][:40].assign(
            request_id=[f"req-{i // 2:03d}" for i in range(40)],
            row=[i % 2 for i in range(40)],
            timestamp=[now - timedelta(minutes=50 - i) for i in range(40)],
            prediction=[i % 2 for i in range(40)],
            latency_ms=[5.0 + (i % 7) for i in range(40)],
        )
        lw.log_predictions("scoring", scored, model="credit-risk/2", variant="main")
        store = context.get_store()
        seed_monitor(store, start=now - timedelta(hours=5))
        app = create_server_app(store)
        with ServerThread(app) as running:
            yield {"url": running.url, "request": "req-005"}
    finally:
        context.reset()


@pytest.fixture(scope="module")
def page(server: dict[str, Any], browser: Any) -> Iterator[Any]:
    with ui_tab(browser, failed_requests=True) as tab:
        yield tab


def charts_drawn(page: Any, count: int) -> None:
    """Scroll every chart card into view (they load when shown) and wait for ``count``
    uPlot canvases."""
    cards = page.locator(".chart")
    for i in range(cards.count()):
        cards.nth(i).scroll_into_view_if_needed()
    page.wait_for_function(
        f"() => document.querySelectorAll('.chart[data-state=drawn] canvas').length >= {count}",
        timeout=15_000,
    )


def test_a_model_versions_lineage_leads_to_its_dataset(server, page):
    url = server["url"]
    page.goto(url + "/models")
    page.click("a[href='/models/credit-risk']")
    page.wait_for_url("**/models/credit-risk")
    assert page.locator("text=promoted by policy").count() >= 1  # the alias timeline
    assert page.locator("text=refused").count() >= 1  # the refused promotion
    shot(page, "model")

    page.click("a[href='/models/credit-risk/versions/1']")
    page.wait_for_url("**/models/credit-risk/versions/1")
    assert page.locator("a.run-link", has_text="train").count() == 1
    shot(page, "model-version")
    page.click("a[href='/datasets/loans/versions/1']")
    page.wait_for_url("**/datasets/loans/versions/1")
    assert page.locator("svg").count() >= 1  # the profile's histograms
    assert page.locator("th", has_text="age").count() >= 1
    shot(page, "dataset-version")
    assert page.errors == []


def test_an_endpoints_charts_and_a_request_trace(server, page):
    url = server["url"]
    page.goto(url + "/endpoints")
    page.click("a[href='/endpoints/scoring']")
    page.wait_for_url("**/endpoints/scoring")
    charts_drawn(page, 2)  # traffic and latency
    legend = page.locator(".chart-traffic .u-legend .u-series")
    assert legend.filter(has_text="main").count() == 1
    latency = page.locator(".chart-latency .u-legend .u-series")
    assert latency.filter(has_text="p95").count() == 1
    shot(page, "endpoint")

    page.click(f"table.predictions a:text-is('{server['request']}')")
    page.wait_for_url(f"**/trace/{server['request']}")
    assert page.locator("a[href='/models/credit-risk/versions/2']").count() >= 1
    shot(page, "trace")
    assert page.errors == []


def test_a_firing_alert_and_the_monitors_chart(server, page):
    url = server["url"]
    page.goto(url + "/monitors")
    page.click("a[href='/monitors/mon']")
    page.wait_for_url("**/monitors/mon")
    firing = page.locator(".state-firing")
    assert firing.count() >= 1
    assert firing.first.is_visible()
    assert page.locator("tr.alert-firing", has_text="slow").count() >= 1
    charts_drawn(page, 1)
    report = page.frame_locator("iframe.monitor-report")
    report.locator("body").wait_for(timeout=10_000)
    assert report.locator("text=slow").count() >= 1  # the alert, in the report too
    shot(page, "monitor")
    assert page.errors == []


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/models",
        "/models/credit-risk",
        "/models/credit-risk/versions/2",
        "/datasets",
        "/datasets/loans",
        "/datasets/loans/versions/latest",
        "/endpoints",
        "/endpoints/scoring?last=day",
        "/monitors",
        "/monitors/mon",
    ],
)
def test_every_page_opens_without_a_script_error(server, page, path):
    answer = page.goto(server["url"] + path)
    assert answer is not None
    assert answer.status == 200, path
    assert page.locator("nav").count() >= 1
    page.wait_for_load_state("networkidle")
    assert page.errors == [], path


def test_predictions_have_a_table_row_per_row(server, page):
    # the page's table lists every logged row of the hour (40), newest last
    page.goto(server["url"] + "/endpoints/scoring")
    rows = page.locator("table.predictions tbody tr")
    assert rows.count() == 40
    frame = pd.DataFrame({"request": rows.locator("td:nth-child(2)").all_inner_texts()})
    assert frame["request"].nunique() == 20
