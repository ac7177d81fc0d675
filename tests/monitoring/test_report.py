"""Monitor reports (data and self-contained HTML) and ``loopwise monitor report``, on SQLite
and PostgreSQL. Windows are crafted :class:`WindowResult` series stored with ``save_window``;
the CLI test runs a real ``monitor run`` first."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import polars as pl
import pytest

from loopwise.errors import NotFound
from loopwise.monitoring.alerting.alerts import evaluate_alerts
from loopwise.monitoring.report import monitor_report
from loopwise.monitoring.results import WindowResult
from loopwise.monitoring.storage import save_baseline, save_window
from loopwise.predictions.log import log_predictions
from loopwise.reports.charts import (
    Line,
    Marker,
    nice_ticks,
    text_width,
    tick_label,
    time_chart_svg,
    time_ticks,
)
from tests.helpers import RANGE, logged  # noqa: F401 (a fixture)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
V1, V2 = "churn/1", "churn/2"
FEATURES = ("age", "income", "tenure")


def _window(i: int, model: str, rows: int = 1000) -> WindowResult:
    drifting = i >= 4  # income drifts from window 4
    values: dict[tuple[str, str], float | None] = {
        ("", "drift.share"): 1 / 3 if drifting else 0.0,
        ("", "prediction.mean"): 0.3 + 0.01 * i,
        ("", "prediction.positive_rate"): 0.25 + 0.01 * i,
        ("", "prediction.std"): 0.2,
        ("", "latency_p95_ms"): 20.0 + i,
        ("", "error_rate"): 0.01,
        ("", "throughput_rps"): 3.5,
        ("", "missing.age"): 0.0,
        ("", "perf.f1"): 0.8 - 0.02 * i,
        ("", "perf.precision"): None if i == 0 else 0.75,  # no feedback yet in window 0
        ("region=north", "perf.f1"): 0.82,
        ("region=south", "perf.f1"): 0.7 - 0.03 * i,
    }
    for f in FEATURES:
        score = 0.4 if (f == "income" and drifting) else 0.02
        values[("", f"drift.{f}")] = score
        values[("", f"drifted.{f}")] = 1.0 if score > 0.1 else 0.0
    return WindowResult(
        monitor="churn",
        endpoint="churn-api",
        start=T0 + i * HOUR,
        end=T0 + (i + 1) * HOUR,
        model=model,
        model_version_id=None,
        rows=rows,
        labelled=rows // 2,
        values=values,
    )


@pytest.fixture
def stored(store) -> list[WindowResult]:
    return store_history(store)


def store_history(store) -> list[WindowResult]:
    """Six hourly windows: churn/1 in 0-2, window 3 split by the swap, churn/2 in 3-5; an
    alert on income drift firing from window 4; baselines for both versions."""
    results = []
    for i in range(6):
        parts = [_window(i, V1 if i < 3 else V2)]
        if i == 3:
            parts = [_window(3, V1, rows=200), _window(3, V2, rows=800)]
        save_window(store, parts)
        results.extend(parts)
    for model, rate in ((V1, 0.24), (V2, 0.27)):
        base = _window(0, model)
        values = {("", "prediction.positive_rate"): rate, ("", "perf.f1"): 0.81}
        save_baseline(store, WindowResult(**{**base.__dict__, "values": values}))
    rules = [{"name": "income-drifted", "metric": "drifted.income", "above": 0.5}]
    evaluate_alerts(store, "churn", "churn-api", rules, results, {}, deliver=False)
    return results


def test_report_data_round_trips_as_json(store, stored):
    report = monitor_report(store, "churn")
    assert (report.monitor, report.endpoint) == ("churn", "churn-api")
    assert (report.start, report.end) == (T0, T0 + 6 * HOUR)
    assert report.models == [V1, V2]
    assert report.features == list(FEATURES)
    assert report.slices == ["", "region=north", "region=south"]
    assert [(c.at, c.previous, c.model) for c in report.model_changes] == [(T0 + 3 * HOUR, V1, V2)]
    assert [(a.rule, a.state) for a in report.alerts] == [("income-drifted", "firing")]
    assert report.baselines[V2]["prediction.positive_rate"] == 0.27
    # the split window counts once, with its larger part
    series = report.series("prediction.mean")
    assert len(series) == 6
    assert series[3][2] == V2
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["format_version"] == 1
    assert data["loopwise_version"]
    assert data["model_changes"] == [
        {"at": (T0 + 3 * HOUR).isoformat(), "previous": V1, "model": V2}
    ]
    assert len(data["windows"]) == 7
    assert data["alerts"][0]["metric"] == "drifted.income"
    assert data["baselines"][V1]["perf.f1"] == 0.81


def test_public_monitor_report_reads_the_default_store(lw, tmp_path):
    """``lw.monitor_report`` needs no internal import and no store: a Monitor, its name or
    its YAML file, times as text or datetimes; the report has summary, to_dict, to_html."""
    store_history(lw.get_store())
    report = lw.monitor_report("churn")
    assert isinstance(report, lw.MonitorReport)
    assert report.to_dict() == monitor_report(lw.get_store(), "churn").to_dict()
    assert [a.rule for a in report.alerts] == ["income-drifted"]
    later = lw.monitor_report(lw.Monitor("churn-api", name="churn"), (T0 + 4 * HOUR).isoformat())
    assert (later.start, later.models) == (T0 + 4 * HOUR, [V2])
    config = tmp_path / "churn.yaml"
    config.write_text("name: churn\nendpoint: churn-api\n")
    early = lw.monitor_report(str(config), end=T0 + 2 * HOUR)
    assert (early.start, early.end, early.alerts) == (T0, T0 + 2 * HOUR, [])
    assert report.summary() == (
        f"Monitor churn (endpoint churn-api): 6 window(s) from {T0.isoformat()} to "
        f"{(T0 + 6 * HOUR).isoformat()}; model(s) churn/1, churn/2; 1 version change(s); "
        "1 alert(s), 1 firing."
    )
    assert report.to_html(tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    text = repr(report)
    assert "\n" not in text
    assert len(text) < 200, text  # not every window's figures
    assert text.startswith("MonitorReport('churn', windows=6, ")
    assert "models=2 (churn/1, churn/2), alerts=1, problems=0)" in text
    with pytest.raises(NotFound, match="run `loopwise monitor run nothing` first"):
        lw.monitor_report("nothing")


MISMATCH = (
    "feedback labels {'No', 'Yes'} are not the labels churn/2 predicts {0, 1} (they share no "
    "value), so live performance (perf.*) is not computed."
)


def _without_perf(result: WindowResult) -> WindowResult:
    values = {k: v for k, v in result.values.items() if not k[1].startswith("perf.")}
    return WindowResult(**{**result.__dict__, "values": values, "problems": (MISMATCH,)})


def test_problems_are_a_notice_in_live_performance_once_per_model(store, tmp_path):
    for i in range(6):  # churn/2 (windows 3-5) gets feedback in other labels
        save_window(store, [_window(i, V1) if i < 3 else _without_perf(_window(i, V2))])
    report = monitor_report(store, "churn")
    assert [(p.model, p.windows, p.start, p.end, p.message) for p in report.problems] == [
        (V2, 3, T0 + 3 * HOUR, T0 + 6 * HOUR, MISMATCH)
    ]
    assert report.to_dict()["problems"] == [p.to_dict() for p in report.problems]
    assert f"Problem in 3 window(s) of churn/2: {MISMATCH}" in report.summary()
    text = report.to_html(tmp_path / "r.html").read_text()
    shown = MISMATCH.replace("'", "&#x27;")
    assert text.count(shown) == 1  # one row for the three windows, not one per window
    performance = text.split("<h2>Live performance</h2>")[1].split("<h2>")[0]
    assert shown in performance
    assert "figures left out of 3 window(s)" in performance
    notice = performance.split('<div class="problems">')[1].split("</div>")[0]
    assert re.search(r"<td>churn/2</td><td class=\"num\">3</td><td>2026-11-01 03:00</td>", notice)
    assert "1 problem(s): see Live performance" in text.split("<h2>")[0]  # in the summary
    assert "<svg" in performance  # churn/1's figures are still charted


def test_a_range_where_every_window_has_the_problem_does_not_blame_missing_feedback(
    store, tmp_path
):
    save_window(store, [_without_perf(_window(i, V2)) for i in range(1)])
    text = monitor_report(store, "churn").to_html(tmp_path / "r.html").read_text()
    performance = text.split("<h2>Live performance</h2>")[1].split("<h2>")[0]
    assert "figures left out of 1 window(s)" in performance
    assert "No performance figures: see the problem(s) above" in performance
    assert "no feedback" not in performance


def test_alert_table_shows_the_fired_value_and_the_latest_labelled(store, tmp_path):
    results = [_window(i, V1) for i in range(6)]
    for r in results:
        save_window(store, [r])
    rules = [
        {"name": "mean-high", "metric": "prediction.mean", "above": 0.305},  # 0.31 ... 0.35
        {"name": "slow", "metric": "latency_p95_ms", "above": 20.5},  # 21 ... 25
    ]
    evaluate_alerts(store, "churn", "churn-api", rules, results, {}, deliver=False)
    from sqlalchemy import update

    from loopwise.store.tables import alerts

    with store.db.write() as conn:  # as an alert stored before fired_value was kept
        conn.execute(update(alerts).where(alerts.c.rule == "slow").values(fired_value=None))
    text = monitor_report(store, "churn").to_html(tmp_path / "r.html").read_text()
    table = text.split("<h2>Alerts</h2>")[1]
    headers = re.findall(r"<th>([^<]*)</th>", table)
    assert headers[8:11] == ["fired value", "latest value", "threshold"]
    assert "<th>value</th>" not in table
    cells = [
        [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in table.split("<tbody>")[1].split("</tr>")[:-1]
    ]
    rows = {row[5]: row for row in cells}  # by rule
    assert rows["mean-high"][8:11] == ["0.31", "0.35", "0.305"]
    assert rows["slow"][8:11] == ["–", "25", "20.5"]


def _ab_windows(store, *, log: bool = True) -> None:
    """Eight hourly windows: V1 alone (0-1), V1 and V2 side by side as variants "control"
    and "treatment" (2-5, the larger part alternating), V2 alone (6-7)."""
    for i in range(8):
        if 2 <= i < 6:
            a, b = (520, 480) if i % 2 else (480, 520)
            save_window(store, [_window(i, V1, a), _window(i, V2, b)])
            if log:
                for variant, model in (("control", V1), ("treatment", V2)):
                    frame = pl.DataFrame({"prediction": [0, 1], "timestamp": [T0 + i * HOUR] * 2})
                    log_predictions(store, "churn-api", frame, model=model, variant=variant)
        else:
            save_window(store, [_window(i, V1 if i < 2 else V2)])


def test_versions_answering_side_by_side_are_variants_not_changes(store):
    _ab_windows(store)
    report = monitor_report(store, "churn")
    assert [(c.at, c.previous, c.model) for c in report.model_changes] == [
        (T0 + 2 * HOUR, V1, f"{V1} + {V2}"),
        (T0 + 6 * HOUR, f"{V1} + {V2}", V2),
    ]
    assert [(p.start, p.end, p.models) for p in report.periods] == [
        (T0, T0 + 2 * HOUR, (V1,)),
        (T0 + 2 * HOUR, T0 + 6 * HOUR, (V1, V2)),
        (T0 + 6 * HOUR, T0 + 8 * HOUR, (V2,)),
    ]
    assert report.concurrent
    ab = report.periods[1]
    assert [(v.name, v.rows) for v in ab.variants] == [("control", 2000), ("treatment", 2000)]
    assert ab.describe() == "variants control (churn/1, 50%) and treatment (churn/2, 50%)"
    assert report.periods[0].describe() == V1
    data = json.loads(json.dumps(report.to_dict()))
    assert data["periods"][1]["variants"][0] == {
        "model": V1, "name": "control", "rows": 2000, "share": 0.5,
    }  # fmt: skip
    # a version's own figures, None where it did not answer
    own = [v for _, v, _ in report.series("perf.f1", model=V2)]
    assert own[:2] == [None, None]
    assert None not in own[2:]


def test_variants_whose_log_is_gone_are_named_by_version(store):
    _ab_windows(store, log=False)
    period = monitor_report(store, "churn").periods[1]
    assert period.describe() == "versions churn/1 (50%) and churn/2 (50%) side by side"


def test_html_shows_variants_and_a_line_per_version(store, tmp_path):
    _ab_windows(store)
    text = monitor_report(store, "churn").to_html(tmp_path / "ab.html").read_text()
    assert "variants control (churn/1, 50%) and treatment (churn/2, 50%)" in text
    assert "2 change(s) of the live version(s)" in text
    drift = text.split("<h2>Feature drift</h2>")[1].split("<h2>")[0]
    first_chart = drift.split("</svg>")[0]
    assert first_chart.count("<title>v1 drift.share</title>") == 1  # a line per version
    assert first_chart.count("<title>v2 drift.share</title>") == 1
    assert first_chart.count('stroke-dasharray="2 2"') == 2  # two changes, not one a window


def test_the_range_keeps_windows_starting_in_it(store, stored):
    report = monitor_report(store, "churn", start=T0 + 4 * HOUR)
    assert report.start == T0 + 4 * HOUR
    assert report.models == [V2]
    assert report.model_changes == []
    early = monitor_report(store, "churn", end=T0 + 2 * HOUR)
    assert early.alerts == []  # fired later
    assert early.baselines.keys() == {V1}


def test_html_is_self_contained_with_a_chart_per_section(store, stored, tmp_path):
    path = monitor_report(store, "churn").to_html(tmp_path / "out" / "report.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert not list(tmp_path.joinpath("out").glob(".*tmp*"))  # written atomically
    # no fetch: the only URL is the SVG namespace
    assert "<script" not in text
    assert "<link" not in text
    assert "<img" not in text
    assert "@import" not in text
    assert set(re.findall(r"https?://[^\"'\s<>]+", text)) == {"http://www.w3.org/2000/svg"}
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", text)
    sections = re.split(r"<h2>", text)[1:]
    titles = [s.split("</h2>")[0] for s in sections]
    assert titles == [
        "Model versions",
        "Feature drift",
        "Predictions",
        "Live performance",
        "Service",
        "Data quality",
        "Alerts",
    ]
    for title, body in zip(titles, sections, strict=True):
        if title != "Model versions":
            assert "<svg" in body, title
    for feature in FEATURES:
        assert f"<h3>{feature}</h3>" in text
    assert V1 in text
    assert V2 in text
    assert "2026-11-01 03:00" in text  # the change of version, in the table
    drift = sections[1]
    assert drift.count('stroke-dasharray="2 2"') >= 4  # the version marker on every chart
    assert "alert income-drifted" in drift  # the alert band on the income chart
    assert 'stroke-dasharray="5 4"' in sections[2]  # the dashed baseline
    for slice_ in ("region=north", "region=south", "overall"):
        assert slice_ in sections[3]
    assert "income-drifted" in sections[6]
    assert "firing" in sections[6]


def test_sections_without_figures_say_so(store, tmp_path):
    bare = _window(0, V1)
    bare = WindowResult(**{**bare.__dict__, "values": {("", "rows"): 10.0}})
    save_window(store, [bare])
    text = monitor_report(store, "churn").to_html(tmp_path / "r.html").read_text()
    assert "No drift scores stored" in text
    assert "no feedback" in text
    assert "No alert was active" in text


def test_no_stored_windows_is_a_clear_error(store, stored):
    with pytest.raises(NotFound, match=r"run `loopwise monitor run nothing` first"):
        monitor_report(store, "nothing")
    with pytest.raises(NotFound, match=r"no stored windows in \["):
        monitor_report(store, "churn", start=T0 + 100 * HOUR)


def test_cli_writes_the_report(invoke, logged, tmp_path):  # noqa: F811
    config = tmp_path / "monitor.yaml"
    config.write_text(
        "endpoint: ep\nreference: datasets:/ref/1\nchecks: {schema: false}\n"
        "alerts:\n  - {name: x-drifted, metric: drifted.x, above: 0.5}\n"
    )
    ran = invoke("monitor", "run", str(config), *RANGE)
    assert ran.exit_code == 0, ran.output
    target = tmp_path / "report.html"
    result = invoke("monitor", "report", "ep", "--html", str(target))
    assert result.exit_code == 0, result.output
    assert "written to" in result.stderr
    assert "3 window(s)" in result.stdout
    text = target.read_text(encoding="utf-8")
    assert "<h3>x</h3>" in text
    assert "x-drifted" in text
    assert "<script" not in text
    data = invoke("monitor", "report", str(config), "--json", "--start", "2024-05-01T01:00:00Z")
    assert data.exit_code == 0, data.output
    document = json.loads(data.stdout)
    assert document["monitor"] == "ep"
    assert [w["start"] for w in document["windows"]] == [
        "2024-05-01T01:00:00+00:00",
        "2024-05-01T02:00:00+00:00",
    ]
    assert [a["rule"] for a in document["alerts"]] == ["x-drifted"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("monitor", "report", "nope"), "Monitor 'nope' has no stored windows"),
        (("monitor", "report", "ep", "--start", "soon"), "--start must be an ISO 8601 time"),
    ],
)
def test_cli_errors_exit_1(invoke, logged, args, message):  # noqa: F811
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr
    assert "loopwise monitor run" in result.stderr or "--start" in message
    assert "Traceback" not in result.output


# -- the chart's layout -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lo", "hi"), [(0.0, 0.0), (0.2, 0.2), (0.0013, 0.0192), (0.427, 0.5), (9.24, 10.7), (-3, 12e6)]
)
def test_y_ticks_cover_the_values_with_distinct_labels(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert ticks[0] <= lo
    assert ticks[-1] >= hi
    assert ticks[0] < ticks[-1]
    assert 2 <= len(ticks) <= 7
    labels = [tick_label(t, ticks[1] - ticks[0]) for t in ticks]
    assert len(set(labels)) == len(labels), labels


@pytest.mark.parametrize(
    ("hours", "start_hour"), [(48, 0), (24, 6), (96, 0), (3, 0), (21 * 24, 0), (24 * 400, 0)]
)
def test_time_ticks_are_distinct_and_fit_side_by_side(hours, start_hour):
    x0 = (T0 + timedelta(hours=start_hour)).timestamp()
    x1 = x0 + hours * 3600
    ticks = time_ticks(x0, x1, 40, 308, 320)
    labels = [t for _, t in ticks]
    assert len(set(labels)) == len(labels) >= 2, labels
    assert all(x0 <= x <= x1 for x, _ in ticks)
    xs = [40 + 268 * (x - x0) / (x1 - x0) for x, _ in ticks]
    for (a, ta), (b, tb) in pairwise(zip(xs, labels, strict=True)):
        assert b - a >= (text_width(ta) + text_width(tb)) / 2, (ta, tb)


def test_chart_draws_inside_its_plot_and_thins_marker_labels():
    x0 = T0.timestamp()
    markers = [Marker(x0 + i * 1800, f"v{i}", f"change {i}") for i in range(1, 40)]
    points = [(x0 + i * 3600, float(i % 5)) for i in range(24)]
    svg = time_chart_svg(
        [Line("a", points, "#000"), Line("b", [(x0, -2.0), (x0 + 86400, 7.5)], "#111")],
        (x0, x0 + 86400),
        chart_id="t",
        markers=markers,
    )
    assert 'style="max-width:100%' in svg  # shrinks with its card
    assert '<clipPath id="clip-t">' in svg
    assert 'clip-path="url(#clip-t)"' in svg
    width, height = 320, 170
    top, bottom = 16, height - 20
    for cy in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg):
        assert top <= float(cy) <= bottom
    ys = [float(y) for y in re.findall(r"<text[^>]*>(-?[\d.]+)</text>", svg)]
    assert min(ys) <= -2.0  # the y-scale covers both lines
    assert max(ys) >= 7.5
    # 39 markers, every one drawn; only the labels that fit are printed
    assert svg.count('stroke-dasharray="2 2"') == 39
    printed = [
        (float(x), label)
        for x, label in re.findall(r'<text x="([\d.]+)" y="11" [^>]*>(v\d+)<title>', svg)
    ]
    assert 3 <= len(printed) < 39
    for (a, label), (b, _) in pairwise(printed):
        assert b - a >= text_width(label)
    xs = [x for x, _ in printed]
    assert all(0 <= x <= width for x in xs)
