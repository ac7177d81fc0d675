"""The web UI's pages on both stores, in-process: every page answers 200 with what it
should show, mistakes (unknown run or experiment, a bad filter, too few runs to compare)
are HTML pages with a 4xx status, values are escaped, and the token cookie guards it all."""

from __future__ import annotations

import json
import re

from loopwise.auth.tokens import create_token
from loopwise.server.ui.session import COOKIE
from loopwise.tracking import runs as run_service
from loopwise.tracking.log_batch import log_batch
from tests.helpers import seed_runs as seed

HOSTILE = "<script>alert(1)</script>"


def html_of(response, status: int = 200) -> str:
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    return response.text


def test_experiments_page(client, store):
    seed(store)
    page = html_of(client.get("/"))
    experiment = run_service.get_experiment(store, "exp")
    assert f'href="/experiments/{experiment.id}"' in page
    assert re.search(r">exp</a>\s*</td>\s*<td class=\"num\">3<", page)


def test_experiments_page_empty_store(client):
    assert "No experiments yet" in html_of(client.get("/"))


def test_runs_page_filter_sort_columns_and_paging(client, store, monkeypatch):
    ids = seed(store, runs=5)
    experiment = run_service.get_experiment(store, "exp").id
    page = html_of(client.get(f"/experiments/{experiment}"))
    assert all(f'href="/runs/{i}"' in page for i in ids)
    assert "<!DOCTYPE html>" in page
    assert 'id="runs-table"' in page

    filtered = html_of(
        client.get(f"/experiments/{experiment}", params={"filter": "params.lr > 0.35"})
    )
    assert ">run-4<" in filtered
    assert ">run-3<" in filtered
    assert ">run-0<" not in filtered

    ordered = html_of(client.get(f"/experiments/{experiment}", params={"order": "metrics.auc ASC"}))
    names = re.findall(r">(run-\d)</a>", ordered)
    assert names == ["run-0", "run-1", "run-2", "run-3", "run-4"]
    assert "auc ▲" in ordered  # the sorted column shows its direction

    # htmx asks for the fragment only
    fragment = html_of(client.get(f"/experiments/{experiment}", headers={"HX-Request": "true"}))
    assert "<!DOCTYPE html>" not in fragment
    assert '<table class="runs">' in fragment

    # the column picker: only the chosen columns
    picked = html_of(
        client.get(f"/experiments/{experiment}", params={"params": ",model", "metrics": ""})
    )
    header = picked.split("<tbody>")[0]
    assert "sort by params.model" in header
    assert "sort by params.lr" not in header
    assert "sort by metrics.auc" not in header

    # keyset paging: two rows a page, the "next" link gives the rest without repeats
    monkeypatch.setattr("loopwise.server.ui.runs_table.PAGE_ROWS", 2)
    seen: list[str] = []
    url = f"/experiments/{experiment}?order=metrics.auc+ASC"
    for _ in range(5):
        body = html_of(client.get(url))
        seen += re.findall(r">(run-\d)</a>", body)
        found = re.search(r'class="next" href="([^"]+)"', body)
        if not found:
            break
        url = found.group(1).replace("&amp;", "&")
    assert seen == ["run-0", "run-1", "run-2", "run-3", "run-4"]


def test_run_page(client, store):
    ids = seed(store)
    page = html_of(client.get(f"/runs/{ids[0]}"))
    assert ">run-0<" in page
    assert "runs:/" + ids[0] in page
    assert ">lr</th><td>0.1<" in page
    assert ">team</th><td>risk<" in page
    series = re.findall(r'data-series="([^"]+)"', page)
    assert len(series) == 2  # auc and loss
    urls = [s["url"] for raw in series for s in json.loads(raw.replace("&#34;", '"'))]
    history = client.get(next(u for u in urls if "/loss" in u)).json()
    assert history["total_points"] == 50
    assert len(history["value"]) == 50
    assert "hello log line" in page
    assert "&#34;a&#34;: [" in page or '"a": [' in page.replace("&#34;", '"')
    assert re.search(r'<iframe class="report" src="[^"]*report.html" sandbox', page)
    assert re.search(r'<img class="preview" src="[^"]*plot.png"', page)

    by_name = html_of(client.get("/runs/run-1"))
    assert f"runs:/{ids[1]}" in by_name

    served = client.get(f"/runs/{ids[0]}/files/report.html")
    assert served.status_code == 200
    assert served.headers["content-security-policy"] == "sandbox"


def test_compare_page(client, store):
    ids = seed(store)
    page = html_of(client.get("/compare", params={"runs": f"{ids[0]},{ids[1]}"}))
    assert page.count('class="card chart"') == 2
    assert re.search(r'<tr class="differs"><th>lr</th>', page)
    assert re.search(r'<tr class="same"><th>model</th>', page)
    again = html_of(client.get("/compare", params=[("runs", ids[0]), ("runs", "run-2")]))
    assert ">run-2<" in again


def test_mistakes_are_html_pages_with_4xx(client, store):
    seed(store)
    experiment = run_service.get_experiment(store, "exp").id
    assert "no-such-run" in html_of(client.get("/runs/no-such-run"), 404)
    html_of(client.get("/experiments/nope"), 404)
    bad = html_of(client.get(f"/experiments/{experiment}", params={"filter": "metrics.auc >"}), 400)
    assert "Invalid filter" in bad
    assert 'value="metrics.auc &gt;"' in bad
    html_of(client.get(f"/experiments/{experiment}", params={"page_token": "garbage"}), 400)
    html_of(client.get(f"/experiments/{experiment}", params={"order": "nonsense.x"}), 400)
    assert "Compare needs 2" in html_of(client.get("/compare", params={"runs": "run-0"}), 400)
    html_of(client.get("/compare", params={"runs": "run-0,missing"}), 404)
    assert client.get("/runs/run-0/history/nope").status_code == 404
    assert client.get("/runs/run-0/files/missing.txt").status_code == 404


def test_hostile_values_are_text(client, store):
    run_id = run_service.create_run(store, "exp", name=HOSTILE)
    log_batch(store, run_id, params={HOSTILE: HOSTILE}, tags={"t": HOSTILE})
    experiment = run_service.get_experiment(store, "exp").id
    for url in [
        "/",
        f"/experiments/{experiment}",
        f"/runs/{run_id}",
        f"/experiments/{experiment}?filter=" + HOSTILE,
    ]:
        body = client.get(url).text
        assert HOSTILE not in body, url
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(f"/runs/{run_id}").text


def test_static_files_hashed_and_cached(client):
    page = client.get("/").text
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert len(urls) == 6  # htmx, uPlot (script and style), ui.js, ui.css, the favicon
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert "immutable" in answer.headers["cache-control"]
    stale = re.sub(r"/static/[0-9a-f]+/", "/static/000000000000/", urls[0])
    assert client.get(stale).status_code == 404


def test_token_cookie(client, store):
    ids = seed(store, runs=1)
    _, secret = create_token(store, "viewer", "read")
    client.app.state.authenticator.refresh()
    answer = client.get(f"/runs/{ids[0]}", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")
    assert client.get(f"/runs/{ids[0]}/history/loss").status_code == 401

    wrong = client.post(
        "/login",
        content="token=nope&next=/",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert wrong.status_code == 401
    assert "not valid" in wrong.text

    ok = client.post(
        "/login",
        content=f"token={secret}&next=/runs/{ids[0]}",
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert ok.headers["location"] == f"/runs/{ids[0]}"
    cookie = ok.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Sign out" in html_of(client.get(f"/runs/{ids[0]}"))
    assert client.get(f"/runs/{ids[0]}/history/loss").status_code == 200

    elsewhere = client.post(
        "/login",
        content=f"token={secret}&next=//evil.example",
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert elsewhere.headers["location"] == "/"
    out = client.post("/logout", follow_redirects=False)
    assert out.status_code == 303
    client.cookies.clear()
    assert client.get("/", follow_redirects=False).status_code == 303
