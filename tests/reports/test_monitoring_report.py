"""The monitor report in a browser: an endpoint that runs one version, then an A/B split of
two versions answering side by side for two days, then a swap, with drift, alerts, slices
and every section of the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from loopwise.config import load_settings
from loopwise.monitoring.alerting.alerts import evaluate_alerts
from loopwise.monitoring.report import monitor_report
from loopwise.monitoring.results import WindowResult
from loopwise.monitoring.storage import save_baseline, save_window
from loopwise.predictions.log import log_predictions
from loopwise.store import Store

T0 = datetime(2026, 12, 3, tzinfo=UTC)
STEP = timedelta(hours=6)
ENDPOINT = "credit-risk-ab"
V1, V2, V3 = (f"{ENDPOINT}/{n}" for n in (1, 2, 3))
AB = range(4, 12)  # windows where V1 (variant A) and V2 (variant B) answer side by side
FEATURES = ("age", "income", "debt_ratio")


def _values(i: int, model: str, rng: np.random.Generator) -> dict[tuple[str, str], float | None]:
    shift = {V1: 0.0, V2: 0.03, V3: -0.02}.get(model, 0.0)
    values: dict[tuple[str, str], float | None] = {
        ("", "drift.share"): 1 / 3 if i >= 8 else 0.0,
        ("", "prediction.mean"): 0.46 + shift + rng.normal(0, 0.01),
        ("", "prediction.positive_rate"): 0.46 + shift + rng.normal(0, 0.01),
        ("", "prediction.std"): 0.5 + rng.normal(0, 0.002),
        ("", "prediction.drift"): abs(rng.normal(0.01, 0.005)),
        ("", "latency_p95_ms"): 9.2 + rng.gamma(2, 0.2),
        ("", "error_rate"): 0.0,
        ("", "throughput_rps"): 0.111,
        ("", "missing.age"): 0.0,
        ("", "schema.errors"): float(i == 9),
        ("", "perf.accuracy"): (0.92 if i < 10 else 0.24) + shift + rng.normal(0, 0.005),
        ("", "perf.f1"): (0.9 if i < 10 else 0.2) + shift,
        ("region=north", "perf.accuracy"): 0.93 + shift,
        ("region=south", "perf.accuracy"): (0.9 if i < 10 else 0.3) + shift,
    }
    for f in FEATURES:
        score = 0.84 if (f == "age" and i >= 8) else abs(rng.normal(0.02, 0.01))
        values[("", f"drift.{f}")] = score
        values[("", f"drifted.{f}")] = float(score > 0.1)
    return values


def _window(i: int, model: str, rows: int, rng: np.random.Generator) -> WindowResult:
    return WindowResult(
        monitor=ENDPOINT,
        endpoint=ENDPOINT,
        start=T0 + i * STEP,
        end=T0 + (i + 1) * STEP,
        model=model,
        model_version_id=None,
        rows=rows,
        labelled=rows,
        values=_values(i, model, rng),
    )


def store_ab_history(store: Store) -> None:
    """16 six-hour windows: V1 alone (0-3), V1 and V2 as variants A and B (4-11, the larger
    part alternating), V2 alone (12), a swap to V3 in window 13, V3 alone (14-15); the
    variants' rows in the prediction log; two alerts firing; baselines."""
    rng = np.random.default_rng(3)
    results: list[WindowResult] = []
    for i in range(16):
        if i in AB:
            a, b = (210, 190) if i % 2 else (190, 210)
            parts = [_window(i, V1, a, rng), _window(i, V2, b, rng)]
            for variant, model, n in (("A", V1, a // 10), ("B", V2, b // 10)):
                seconds = np.sort(rng.uniform(0, STEP.total_seconds(), n))
                frame = pl.DataFrame(
                    {
                        "timestamp": [T0 + i * STEP + timedelta(seconds=s) for s in seconds],
                        "age": rng.integers(18, 80, n).astype(float),
                        "prediction": rng.integers(0, 2, n),
                    }
                )
                log_predictions(store, ENDPOINT, frame, model=model, variant=variant)
        elif i == 13:
            parts = [_window(i, V2, 80, rng), _window(i, V3, 320, rng)]
        else:
            parts = [_window(i, V1 if i < 4 else V2 if i < 13 else V3, 400, rng)]
        save_window(store, parts)
        results.extend(parts)
    for model in (V1, V2, V3):
        base = _window(0, model, 5000, rng)
        values = {
            ("", "prediction.positive_rate"): 0.46,
            ("", "prediction.mean"): 0.46,
            ("", "prediction.std"): 0.427,
            ("", "perf.accuracy"): 0.923,
            ("", "perf.f1"): 0.9,
        }
        save_baseline(store, WindowResult(**{**base.__dict__, "values": values}))
    rules = [
        {"name": "age-drift", "metric": "drifted.age", "above": 0.5},
        {"name": "accuracy-drop", "metric": "perf.accuracy", "below": 0.8},
    ]
    evaluate_alerts(store, ENDPOINT, ENDPOINT, rules, results, {}, deliver=False)


@pytest.fixture
def ab_store(tmp_path):
    store = Store(
        settings=load_settings(
            store_url=f"sqlite:///{tmp_path}/loopwise.db", artifacts_url=str(tmp_path / "art")
        )
    )
    store_ab_history(store)
    yield store
    store.db.engine.dispose()


def test_monitoring_report_reads_well_in_a_browser(ab_store, check_page, tmp_path):
    path = monitor_report(ab_store, ENDPOINT).to_html(tmp_path / "monitoring.html")
    found = check_page(path, "monitoring")
    assert found.charts >= 15
    assert found.labels >= 100  # ticks and marker labels are checked, not absent
    assert not found.problems, found.report()
    text = path.read_text(encoding="utf-8")
    assert "variants A (credit-risk-ab/1, 50%) and B (credit-risk-ab/2, 50%)" in text
    assert "3 change(s) of the live version(s)" in text


def test_a_long_history_with_many_swaps_reads_well(tmp_path, check_page):
    """Two weeks of two-hour windows, a new version every 14 hours: many markers close
    together, dense time ticks, one line."""
    store = Store(
        settings=load_settings(
            store_url=f"sqlite:///{tmp_path}/lw.db", artifacts_url=str(tmp_path / "art")
        )
    )
    rng = np.random.default_rng(5)
    hours = timedelta(hours=2)
    for i in range(14 * 12):
        w = _window(0, f"{ENDPOINT}/{1 + i // 7}", 100, rng)
        start = T0 + i * hours
        save_window(store, [WindowResult(**{**w.__dict__, "start": start, "end": start + hours})])
    report = monitor_report(store, ENDPOINT)
    store.db.engine.dispose()
    assert len(report.model_changes) == 23
    assert not report.concurrent
    found = check_page(report.to_html(tmp_path / "long.html"), "monitoring-long")
    assert not found.problems, found.report()
