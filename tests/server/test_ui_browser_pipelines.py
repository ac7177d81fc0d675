"""The web UI's pipeline pages in a real browser: Debian's Chromium driven by Playwright
against a real server thread on a SQLite store holding pipeline runs of
``tests/pipelines/steps.py`` (a churn run and its cached twin, a failed ``breakable`` run
and its resume) and a cron schedule.

Reaches the Pipelines page from the navigation, opens a failed run from the resumed one's
``resumed_from`` link and unfolds the failed step's traceback with a click, follows a
cached step's badge to the run it reused and back to its pipeline run, with no script
error and no failed request; a screenshot of each page is kept under
``tests/artifacts/ui/``. Without Chromium or Playwright these tests skip, except under CI
(``CI=true``), where that is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from loopwise import context
from loopwise.pipelines.schedules import create_schedule
from loopwise.server.app import create_server_app
from loopwise.serving.server import ServerThread
from tests.helpers import ui_screenshot as shot
from tests.helpers import ui_tab
from tests.pipelines import steps
from tests.reports.conftest import _require_browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import loopwise as lw

    _require_browser()
    folder = tmp_path_factory.mktemp("ui-pipelines")
    lw.configure(
        store_url=f"sqlite:///{folder}/loopwise.db",
        artifacts_url=str(folder / "artifacts"),
        cache_dir=str(folder / "cache"),
    )
    try:
        first = lw.run_pipeline(steps.churn, params={"rows": 150})
        cached = lw.run_pipeline(steps.churn, params={"rows": 150})
        flag = folder / "flag"
        flag.write_text("up")
        failed = lw.run_pipeline(steps.breakable, params={"flag": str(flag)}, cache=False)
        flag.unlink()
        resumed = lw.resume_pipeline(failed.id)
        store = context.get_store()
        create_schedule(store, "churn-train", cron="0 3 * * *", params={"rows": 50})
        with ServerThread(create_server_app(store)) as running:
            yield {
                "url": running.url,
                "first": first,
                "cached": cached,
                "failed": failed,
                "resumed": resumed,
            }
    finally:
        context.reset()


@pytest.fixture(scope="module")
def page(server: dict[str, Any], browser: Any) -> Iterator[Any]:
    with ui_tab(browser, failed_requests=True) as tab:
        yield tab


def test_the_pipelines_page_lists_last_runs_and_schedules(server, page):
    page.goto(server["url"] + "/")
    page.click("nav a[href='/pipelines']")
    page.wait_for_url("**/pipelines")
    rows = page.locator("table.pipelines tbody tr")
    assert rows.count() == 2
    churn = rows.filter(has_text="churn-train")
    assert churn.locator(".status-finished").count() == 1
    assert churn.locator("text=cron 0 3 * * * (UTC)").count() == 1
    breakable = rows.filter(has_text="breakable")
    assert breakable.locator(".status-finished").count() == 1  # resumed: its last run
    shot(page, "pipelines")
    page.click("a[href='/pipelines/churn-train']")
    page.wait_for_url("**/pipelines/churn-train")
    assert page.locator("table.pipeline-runs tbody tr").count() == 2
    assert page.locator("table.schedules tbody tr").count() == 1
    shot(page, "pipeline")
    assert page.errors == []


def test_a_failed_runs_traceback_unfolds_on_a_click(server, page):
    failed, resumed = server["failed"], server["resumed"]
    page.goto(server["url"] + "/pipelines")
    page.click(f"a.last-run[href='/pipeline-runs/{resumed.id}']")
    page.wait_for_url(f"**/pipeline-runs/{resumed.id}")
    page.click("a.resumed-from")
    page.wait_for_url(f"**/pipeline-runs/{failed.id}")
    assert page.locator(".run-origin").count() == 1
    row = page.locator("tr#step-fragile")
    assert row.locator(".status-failed", has_text="FAILED").count() == 1
    assert page.locator("tr#step-add", has_text="SKIPPED").count() == 1
    traceback = page.locator("details.traceback pre")
    assert traceback.count() == 1
    assert not traceback.is_visible()
    page.click("details.traceback summary")
    assert traceback.is_visible()
    assert "RuntimeError: flag" in traceback.inner_text()
    assert "Traceback" in traceback.inner_text()
    # the graph: a box per step, an arrow per input (divide -> fragile -> add <- divide-2)
    assert page.locator("svg.step-graph rect").count() == 4
    assert page.locator("svg.step-graph .edge").count() == 3
    assert page.locator("svg.step-graph .step-failed").count() == 1
    shot(page, "pipeline-run-failed")
    assert page.errors == []


def test_a_cached_step_links_to_the_run_it_reused_and_back(server, page):
    first, cached = server["first"], server["cached"]
    page.goto(server["url"] + f"/pipeline-runs/{cached.id}")
    assert page.locator("a.badge.cached").count() == 3
    assert page.locator("svg.step-graph .edge").count() == 3  # score takes load and train
    assert page.locator("svg.step-graph path.edge").count() == 1  # load -> score, bent
    assert page.locator("a.output[href='/models/churn-train-train/versions/1']").count() == 1
    assert page.locator("a.output[href='/datasets/churn-train.load/versions/1']").count() == 1
    shot(page, "pipeline-run-cached")
    reused = first.step("train").run_id
    page.click(f"tr#step-train a.badge.cached[href='/runs/{reused}']")
    page.wait_for_url(f"**/runs/{reused}")
    back = page.locator("a.pipeline-run-link")
    assert back.get_attribute("href") == f"/pipeline-runs/{first.id}"
    back.click()
    page.wait_for_url(f"**/pipeline-runs/{first.id}")
    assert page.locator("a.badge.cached").count() == 0
    # the pipeline run's own tracking run links to its pipeline run page
    page.click("a.run-link")
    page.wait_for_url(f"**/runs/{first.id}")
    assert page.locator("a.pipeline-run-link").get_attribute("href") == (
        f"/pipeline-runs/{first.id}"
    )
    page.click("a.pipeline-run-link")
    page.wait_for_url(f"**/pipeline-runs/{first.id}")
    page.click("a.output[href='/models/churn-train-train/versions/1']")
    page.wait_for_url("**/models/churn-train-train/versions/1")
    assert page.errors == []


def test_pipeline_pages_open_without_a_script_error(server, page):
    for path in (
        "/pipelines",
        "/pipelines/churn-train",
        "/pipelines/breakable",
        f"/pipeline-runs/{server['resumed'].id}",
        f"/pipeline-runs/runs:/{server['first'].id}",
    ):
        answer = page.goto(server["url"] + path)
        assert answer is not None, path
        assert answer.status == 200, path
        page.wait_for_load_state("networkidle")
        assert page.errors == [], path
    answer = page.goto(server["url"] + "/pipelines/nope")
    assert answer is not None
    assert answer.status == 404
    assert page.locator("text=No pipeline named 'nope'").count() == 1
    page.errors.clear()  # the 404 just asked for
