"""The monitor engine on SQLite and PostgreSQL, over synthetic streams with known change
points: drift found in the window it starts and not before, a performance drop once the
labels arrive, few false alarms on stable data, windows split at a model swap, slices,
count windows, idempotent re-runs, operational figures, shadows, custom and schema checks."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from sqlalchemy import func, select

from loopwise.data.drift.detect import detect_drift
from loopwise.errors import InvalidInput, NotFound
from loopwise.monitoring import storage
from loopwise.monitoring.config import Monitor
from loopwise.monitoring.engine.runner import run_monitor, watch_monitor
from loopwise.predictions.log import PredictionLog, log_feedback, log_predictions
from loopwise.store.tables import monitor_values, monitor_windows

T0 = datetime(2024, 5, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
NOW = T0 + timedelta(days=30)  # every window of the tests has closed
EP = "ep"


def stream(
    seed: int,
    hours: int,
    per_hour: int,
    *,
    start: datetime = T0,
    shift_from: int | None = None,
    north_only: bool = False,
    concept_from: int | None = None,
    prefix: str = "r",
) -> tuple[pl.DataFrame, np.ndarray]:
    """Predictions of a logistic model on x (plus z, region, age) and their true labels."""
    rng = np.random.default_rng(seed)
    n = hours * per_hour
    seconds = np.sort(np.repeat(np.arange(hours), per_hour) * 3600 + rng.uniform(0, 3600, n))
    hour = (seconds // 3600).astype(int)
    region = rng.choice(["north", "south"], n)
    x = rng.normal(size=n)
    if shift_from is not None:
        moved = (hour >= shift_from) & ((region == "north") if north_only else True)
        x = x + 1.5 * moved
    score = 1 / (1 + np.exp(-2 * x))
    y = (x + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    if concept_from is not None:
        y = np.where(hour >= concept_from, 1 - y, y)
    stamps = (start.timestamp() * 1e6 + seconds * 1e6).astype(np.int64)
    frame = pl.DataFrame(
        {
            "request_id": [f"{prefix}{i:06d}" for i in range(n)],
            "timestamp": pl.Series(stamps).cast(pl.Datetime("us", "UTC")),
            "x": x,
            "z": rng.normal(size=n),
            "region": region,
            "age": rng.uniform(18, 90, n),
            "prediction": (score > 0.5).astype(np.int64),
            "probabilities": pl.Series(np.column_stack([1 - score, score])).cast(
                pl.List(pl.Float64)
            ),
            "latency_ms": rng.gamma(2.0, 5.0, n),
        }
    )
    return frame, y


def reference(seed: int = 99, n: int = 5000) -> pl.DataFrame:
    """Training-like data: the same distributions, with the model's outputs and labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    score = 1 / (1 + np.exp(-2 * x))
    return pl.DataFrame(
        {
            "x": x,
            "z": rng.normal(size=n),
            "region": rng.choice(["north", "south"], n),
            "age": rng.uniform(18, 90, n),
            "prediction": (score > 0.5).astype(np.int64),
            "probabilities": pl.Series(np.column_stack([1 - score, score])).cast(
                pl.List(pl.Float64)
            ),
            "y": (x + 0.5 * rng.normal(size=n) > 0).astype(np.int64),
        }
    )


def log(store, frame: pl.DataFrame, labels: np.ndarray | None = None, model: str = "m/1"):
    log_predictions(store, EP, frame, model=model)
    if labels is not None:
        log_feedback(store, EP, pl.DataFrame({"request_id": frame["request_id"], "label": labels}))


def hour_of(result) -> int:
    return int((result.start - T0) / HOUR)


def test_drift_is_found_in_the_window_it_starts_and_not_before(store):
    frame, _ = stream(1, 10, 2000, shift_from=6)
    log(store, frame)
    results = run_monitor(store, Monitor(EP, reference=reference()), T0, T0 + 10 * HOUR, now=NOW)
    assert [hour_of(r) for r in results] == list(range(10))
    for r in results:
        moved = hour_of(r) >= 6
        assert (r.rows, r.model) == (2000, "m/1")
        assert r.value("drifted.x") == float(moved), hour_of(r)
        assert r.value("drifted.z") == r.value("drifted.region") == r.value("drifted.age") == 0.0
        assert r.value("drift.share") == (0.25 if moved else 0.0)
        assert r.value("prediction.drifted") == float(moved)  # the score moved with x
        assert (r.value("drift.x") >= 0.1) == moved
        assert r.value("missing.x") == 0.0
    before, after = results[0], results[-1]
    assert after.value("prediction.mean") > before.value("prediction.mean") + 0.2
    assert (
        after.value("prediction.positive_rate")
        > 0.8
        > 0.6
        > before.value("prediction.positive_rate")
    )


def test_drift_figures_agree_with_detect_drift(store):
    frame, _ = stream(2, 2, 3000, shift_from=1)
    log(store, frame)
    ref = reference()
    results = run_monitor(store, Monitor(EP, reference=ref), T0, T0 + 2 * HOUR, now=NOW)
    for r in results:
        window = frame.filter((pl.col("timestamp") >= r.start) & (pl.col("timestamp") < r.end))
        report = detect_drift(ref.select("x", "region"), window.select("x", "region"))
        assert r.value("drift.x") == pytest.approx(report.columns["x"].statistic, rel=0.01)
        assert r.value("drift.region") == pytest.approx(report.columns["region"].statistic)
        assert r.value("drifted.x") == float(report.columns["x"].drifted)


def test_a_performance_drop_shows_once_its_labels_arrive(store):
    frame, y = stream(3, 8, 500, concept_from=4)
    early = frame["timestamp"] < T0 + 4 * HOUR
    log(store, frame)
    log_feedback(
        store,
        EP,
        pl.DataFrame({"request_id": frame["request_id"].filter(early), "label": y[early]}),
    )
    monitor = Monitor(EP, reference=reference(), target="y")
    first = run_monitor(store, monitor, T0, T0 + 8 * HOUR, now=NOW)
    for r in first:
        if hour_of(r) < 4:
            assert r.labelled == 500
            assert r.value("perf.accuracy") > 0.8
            assert r.value("perf.roc_auc") > 0.85
        else:
            assert r.labelled == 0
            assert r.value("perf.accuracy") is None
            assert r.value("perf.f1") is None
    late = ~early.to_numpy()
    log_feedback(
        store,
        EP,
        pl.DataFrame({"request_id": frame["request_id"].filter(~early), "label": y[late]}),
    )
    second = run_monitor(store, monitor, T0, T0 + 8 * HOUR, now=NOW)
    for r in second:
        assert r.labelled == 500
        assert (r.value("perf.accuracy") < 0.2) == (hour_of(r) >= 4)
    base = storage.baseline(store, monitor, "m/1")
    assert base is not None
    assert (base.rows, base.labelled) == (5000, 5000)
    assert base.value("perf.accuracy") > 0.8
    assert base.value("prediction.positive_rate") == pytest.approx(0.5, abs=0.05)
    assert storage.baselines(store, EP)["m/1"]["perf.accuracy"] == base.value("perf.accuracy")
    stored = storage.window_results(store, EP)
    assert [(r.start, r.labelled) for r in stored] == [(r.start, r.labelled) for r in second]


def _yes_no(values) -> np.ndarray:
    return np.where(np.asarray(values) == 1, "Yes", "No")


@pytest.mark.parametrize("feedback_in_text", [True, False])
def test_feedback_labels_not_the_models_store_the_other_figures_and_say_why(
    store, feedback_in_text
):
    # 0/1 predictions with Yes/No feedback (was: perf.accuracy 0.0 in every window), and Yes/No
    # predictions with 0/1 feedback (was: the run stopped, nothing stored)
    frame, y = stream(3, 3, 500, shift_from=2)
    ref = reference()
    if feedback_in_text:
        labels = _yes_no(y)
    else:
        labels = y
        text = pl.col("prediction").replace_strict({0: "No", 1: "Yes"}, return_dtype=pl.String)
        frame = frame.with_columns(text)
        ref = ref.with_columns(text, y=pl.Series(_yes_no(ref["y"])))
    log(store, frame, labels)
    monitor = Monitor(EP, reference=ref, target="y")
    results = run_monitor(store, monitor, T0, T0 + 3 * HOUR, now=NOW)
    assert [(r.rows, r.labelled) for r in results] == [(500, 500)] * 3
    model, feedback = ("{0, 1}", "{'No', 'Yes'}")[:: 1 if feedback_in_text else -1]
    problem = (
        f"feedback labels {feedback} are not the labels m/1 predicts {model} (they share no "
        "value), so live performance (perf.*) is not computed."
    )
    for r in results:
        assert not [m for _, m in r.values if m.startswith("perf.")]
        assert r.value("drifted.x") == float(hour_of(r) >= 2)  # the other figures are there
        assert r.value("prediction.positive_rate") is not None
        assert r.value("latency_p95_ms") is not None
        [found] = r.problems
        assert found.startswith(problem)
    stored = storage.window_results(store, EP)
    assert [r.problems for r in stored] == [r.problems for r in results]
    assert stored[0].to_dict()["problems"] == list(results[0].problems)
    # the baseline is computed on the reference, whose labels are the model's: no problem
    assert storage.baseline(store, monitor, "m/1").value("perf.accuracy") > 0.8


def test_a_reference_target_not_labelled_like_the_model_leaves_the_baseline_without_perf(store):
    frame, y = stream(3, 2, 500)
    log(store, frame, y)
    ref = reference().with_columns(y=pl.Series(_yes_no(reference()["y"])))
    monitor = Monitor(EP, reference=ref, target="y")
    results = run_monitor(store, monitor, T0, T0 + 2 * HOUR, now=NOW)
    problem = (
        "the reference's target 'y' {'No', 'Yes'} is not labelled like the outputs of m/1 on "
        "it {0, 1} (they share no value), so there is no training baseline of perf.*"
    )
    for r in results:  # live performance is fine; the version's windows say it has no baseline
        assert r.value("perf.accuracy") > 0.8
        [found] = r.problems
        assert found.startswith(problem)
    base = storage.baseline(store, monitor, "m/1")
    assert base.value("perf.accuracy") is None
    assert base.value("prediction.mean") is not None
    assert base.problems == results[0].problems


def test_per_slice_alerts_compare_with_the_slices_own_baseline(store):
    frame, y = stream(3, 2, 1500, concept_from=1)  # the labels flip in the second hour
    log(store, frame, y)
    rule = {"name": "drop", "metric": "perf.accuracy", "below_baseline": 0.1, "per_slice": True}
    monitor = Monitor(EP, reference=reference(), target="y", slices=["region"], alerts=[rule])
    run_monitor(store, monitor, T0, T0 + 2 * HOUR, now=NOW)
    base = storage.baseline(store, monitor, "m/1")
    fired = {a.slice: a for a in storage_alerts(store)}
    assert set(fired) == {"", "region=north", "region=south"}
    for name, alert in fired.items():
        own = base.value("perf.accuracy", name)
        assert alert.threshold == pytest.approx(own * 0.9)
        assert f"baseline{f' of {name}' if name else ''} {own:.4g}" in alert.message
    overall = base.value("perf.accuracy")
    assert fired["region=north"].threshold != pytest.approx(overall * 0.9)


def storage_alerts(store):
    from loopwise.monitoring.alerting.alerts import list_alerts

    return list_alerts(store, monitor=EP)


def test_stable_data_rarely_flags_drift(store):
    # The Wasserstein distance of a stable feature is about 1.4 / sqrt(rows): 0.04 here, far
    # under its 0.1 threshold (at 300 rows a window it is 0.08, and ~10% of windows flag).
    frame, _ = stream(4, 48, 1200)
    log(store, frame)
    results = run_monitor(store, Monitor(EP, reference=reference()), T0, T0 + 48 * HOUR, now=NOW)
    assert len(results) == 48
    names = ["drifted.x", "drifted.z", "drifted.region", "drifted.age", "prediction.drifted"]
    flags = [r.value(name) for r in results for name in names]
    assert None not in flags
    assert sum(flags) / len(flags) <= 0.02


def test_a_window_spanning_a_model_swap_gives_one_result_per_version(lw):
    from sklearn.linear_model import LogisticRegression

    ref = reference().to_pandas()
    features = ["x", "z", "age"]
    versions = []
    for c in (1.0, 0.01):
        with lw.start_run(experiment="monitoring"):
            lw.log_dataset(ref[[*features, "y"]], name=f"train-{len(versions)}")
            model = LogisticRegression(C=c).fit(ref[features], ref["y"])
            versions.append(lw.log_model(model, "m", input_example=ref[features][:5]))
    lw.evaluate(versions[0].uri, "datasets:/train-0/1", target="y")
    frame, _ = stream(5, 4, 3000)
    frame = frame.select("request_id", "timestamp", *features, "prediction", "probabilities")
    swap = T0 + timedelta(hours=2, minutes=30)
    lw.log_predictions(EP, frame.filter(pl.col("timestamp") < swap), model=versions[0])
    lw.log_predictions(EP, frame.filter(pl.col("timestamp") >= swap), model=versions[1])
    results = lw.run_monitor(Monitor(EP, target="y"), T0, T0 + 4 * HOUR)
    assert [(hour_of(r), r.model) for r in results] == [
        (0, "m/1"), (1, "m/1"), (2, "m/1"), (2, "m/2"), (3, "m/2"),
    ]  # fmt: skip
    in_two = frame.filter(
        (pl.col("timestamp") >= T0 + 2 * HOUR) & (pl.col("timestamp") < T0 + 3 * HOUR)
    )
    before_swap = in_two.filter(pl.col("timestamp") < swap).height
    split = [r for r in results if hour_of(r) == 2]
    assert [r.rows for r in split] == [before_swap, in_two.height - before_swap]
    assert [r.model_version_id for r in split] == [v.id for v in versions]
    for r in results:  # the reference came from each version's training data (lineage)
        assert r.value("drift.x") is not None
        assert r.value("drifted.x") == 0.0
        assert r.value("prediction.drift") is not None
    stored_eval = lw.model_lineage(versions[0].uri).evaluations[-1]["metrics"]
    base = storage.baseline(lw.get_store(), EP, "m/1")
    assert base.value("perf.f1") == pytest.approx(stored_eval["f1"])
    second = storage.baseline(lw.get_store(), EP, "m/2")  # no evaluation: scored on the reference
    assert second.value("perf.accuracy") > 0.7
    assert second.value("prediction.mean") is not None
    assert len(lw.monitor_results(EP)) == 5
    assert set(lw.monitor_figures(EP, "perf.*")["metric"]) <= {
        f"perf.{m}" for m in ("accuracy", "precision", "recall", "f1", "roc_auc")
    }


def test_slices_compare_with_the_same_slice_of_the_reference(store):
    frame, _ = stream(6, 6, 3000, shift_from=3, north_only=True)
    log(store, frame)
    monitor = Monitor(EP, reference=reference(), slices=["region", ("age", [0, 19, 50, 120])])
    results = run_monitor(store, monitor, T0, T0 + 6 * HOUR, now=NOW)
    for r in results:
        moved = hour_of(r) >= 3
        assert r.slices() == ["", "age=[0, 19)", "age=[19, 50)", "age=[50, 120)", "region=north",
                              "region=south"]  # fmt: skip
        assert r.value("drifted.x", "region=north") == float(moved)
        assert r.value("drifted.x", "region=south") == 0.0
        assert r.value("rows", "region=north") + r.value("rows", "region=south") == r.rows
        few = r.value("rows", "age=[0, 19)")  # about 1.4% of 3,000 rows: under min_rows
        assert 0 < few < 100
        assert r.value("drift.x", "age=[0, 19)") is None
        assert r.value("missing.x", "age=[0, 19)") is None
        assert r.value("drift.z", "age=[50, 120)") is not None


def test_count_windows_cut_every_n_predictions_without_splitting_an_instant(store):
    frame, _ = stream(7, 3, 700)  # 2,100 rows
    tied = frame.slice(950, 120).with_columns(timestamp=pl.lit(frame["timestamp"][950]))
    frame = pl.concat([frame.slice(0, 950), tied, frame.slice(1070)])
    log(store, frame)
    monitor = Monitor(EP, reference=reference(), window=500)
    results = run_monitor(store, monitor, T0, T0 + 3 * HOUR, now=NOW)
    assert [r.rows for r in results] == [500, 570, 500, 500]  # the last 30 rows wait
    for a, b in itertools.pairwise(results):
        assert a.end <= b.start
    assert results[0].start == frame["timestamp"][0]
    assert results[1].end == frame["timestamp"][950] + timedelta(microseconds=1)
    assert results[0].value("throughput_rps") > 0
    more, _ = stream(8, 1, 470, start=T0 + 3 * HOUR, prefix="s")
    log(store, more)
    again = run_monitor(store, monitor, T0, T0 + 4 * HOUR, now=NOW)
    assert [r.start for r in again[:4]] == [r.start for r in results]
    assert [r.rows for r in again] == [500, 570, 500, 500, 500]
    assert len(storage.window_results(store, monitor)) == 5


def test_re_running_a_range_replaces_the_same_windows(store):
    frame, y = stream(9, 3, 300)
    log(store, frame, y)
    monitor = Monitor(EP, reference=reference(), slices=["region"])
    first = run_monitor(store, monitor, T0, T0 + 3 * HOUR, now=NOW)
    second = run_monitor(store, monitor, T0 + 30 * timedelta(minutes=1), T0 + 3 * HOUR, now=NOW)
    assert [r.values for r in first] == [r.values for r in second]
    stored = storage.window_results(store, monitor)
    assert [(r.start, r.model, r.rows, r.labelled) for r in stored] == [
        (r.start, r.model, r.rows, r.labelled) for r in first
    ]
    assert [r.values for r in stored] == [r.values for r in first]
    with store.db.read() as conn:
        windows = conn.execute(
            select(func.count()).select_from(monitor_windows).where(monitor_windows.c.monitor == EP)
        ).scalar()
        values = conn.execute(select(func.count()).select_from(monitor_values)).scalar()
    assert windows == 3
    assert values == sum(len(r.values) for r in first) + len(
        storage.baseline(store, EP, "m/1").values
    )
    figures = storage.figures(store, monitor, "drift.*", slice="")
    assert set(figures["metric"]) == {
        "drift.x",
        "drift.z",
        "drift.region",
        "drift.age",
        "drift.share",
    }
    assert figures["window_start"].is_monotonic_increasing
    assert len(storage.figures(store, monitor, ["rows", "labelled"], start=T0 + HOUR)) == 2 * 2 * 3


def test_operational_figures_errors_and_empty_windows(store):
    plog = PredictionLog(store, EP)
    base_us = int(T0.timestamp() * 1e6)
    for i in range(200):  # hour 0: 200 requests of 3 rows, latency i ms; 50 failures
        plog.log_request(
            request_id=f"q{i}", timestamp_us=base_us + i * 1000, variant="a", model="m/1",
            model_version_id=None, inputs={"x": [0.1, 0.2, 0.3]}, outputs=[0, 1, 1],
            probabilities=None, latency_ms=float(i),
        )  # fmt: skip
    for i in range(50):
        plog.log_error(
            request_id=f"e{i}", timestamp_us=base_us + 300_000 + i, variant="a", model="m/1",
            error_type="ValueError", latency_ms=1.0,
        )  # fmt: skip
    for i in range(150):  # hour 2 (hour 1 is empty): a shadow answers every request too
        for shadow, model in ((False, "m/1"), (True, "m/9")):
            plog.log_request(
                request_id=f"p{i}", timestamp_us=base_us + 2 * 3_600_000_000 + i, variant="a",
                model=model, model_version_id=None, inputs={"x": [0.5]}, outputs=[1],
                probabilities=None, latency_ms=2.0, shadow=shadow,
            )  # fmt: skip
    plog.close()
    monitor = Monitor(EP, checks={"feature_drift": False, "schema": False})
    results = run_monitor(store, monitor, T0, T0 + 3 * HOUR, now=NOW)
    assert [(hour_of(r), r.model, r.rows) for r in results] == [
        (0, "m/1", 650),
        (1, "", 0),
        (2, "m/1", 150),
    ]
    first = results[0]
    assert first.value("error_rate") == pytest.approx(50 / 650)
    assert first.value("throughput_rps") == pytest.approx(250 / 3600)
    latencies = np.concatenate([np.arange(200, dtype=float), np.ones(50)])
    assert first.value("latency_p50_ms") == pytest.approx(np.quantile(latencies, 0.5))
    assert first.value("latency_p95_ms") == pytest.approx(np.quantile(latencies, 0.95))
    assert first.value("latency_p99_ms") == pytest.approx(np.quantile(latencies, 0.99))
    assert first.value("missing.x") == 0.0
    assert first.value("prediction.positive_rate") == pytest.approx(2 / 3)
    assert results[1].values == {
        ("", "rows"): 0.0,
        ("", "labelled"): 0.0,
        ("", "throughput_rps"): 0.0,
    }
    assert results[2].value("error_rate") == 0.0
    with_shadows = Monitor(
        EP, checks={"feature_drift": False, "schema": False}, include_shadows=True
    )
    both = run_monitor(store, with_shadows, T0 + 2 * HOUR, T0 + 3 * HOUR, now=NOW)
    assert [(r.monitor, r.model, r.rows) for r in both] == [
        ("ep", "m/1", 150),
        ("ep.shadow", "m/9", 150),
    ]
    assert [r.model for r in storage.window_results(store, "ep.shadow")] == ["m/9"]


def test_custom_checks_and_schema_validation(store):
    frame, _ = stream(10, 2, 400)
    odd = frame["timestamp"] >= T0 + HOUR
    frame = frame.with_columns(
        region=pl.when(pl.Series(odd)).then(pl.lit("east")).otherwise(pl.col("region"))
    )
    log(store, frame)
    monitor = Monitor(
        EP,
        reference=reference(),
        slices=["region"],
        checks={
            "custom": {
                "high": "(col('prediction') == 1).mean()",
                "rows_seen": lambda f: f.height,
            }
        },
    )
    results = run_monitor(store, monitor, T0, T0 + 2 * HOUR, now=NOW)
    for r in results:
        window = frame.filter((pl.col("timestamp") >= r.start) & (pl.col("timestamp") < r.end))
        assert r.value("custom.high") == pytest.approx((window["prediction"] == 1).mean())
        assert r.value("custom.rows_seen") == window.height
    assert results[0].value("schema.errors") == 0
    assert results[1].value("schema.errors") >= 1  # every region is a new value: "east"
    assert results[1].value("drifted.region") == 1.0
    assert results[1].value("custom.rows_seen", "region=east") == 400
    with pytest.raises(InvalidInput, match="must reduce a window to one number"):
        run_monitor(
            store,
            Monitor(EP, checks={"custom": {"c": "col('input.x') * 2"}}),
            T0,
            T0 + HOUR,
            now=NOW,
        )


def test_watch_evaluates_windows_as_they_close_and_again_when_labels_arrive(store):
    frame, y = stream(11, 6, 200)
    log(store, frame)
    monitor = Monitor(EP, reference=reference())
    seen: list[list] = []
    moments = iter([T0 + 3 * HOUR + timedelta(minutes=1), T0 + 6 * HOUR + timedelta(minutes=1)])

    def watch(clock_moments, ticks):
        watch_monitor(
            store, monitor, interval=0.01, on_results=seen.append, max_ticks=ticks,
            clock=lambda: next(clock_moments),
        )  # fmt: skip

    watch(moments, 2)
    assert [[hour_of(r) for r in batch] for batch in seen] == [[2], [3, 4, 5]]
    last = frame["timestamp"] >= T0 + 5 * HOUR
    log_feedback(
        store,
        EP,
        pl.DataFrame({"request_id": frame["request_id"].filter(last), "label": y[last.to_numpy()]}),
    )
    watch(iter([T0 + 6 * HOUR + timedelta(minutes=2)]), 1)
    assert [hour_of(r) for r in seen[-1]] == [5]
    assert seen[-1][0].labelled == 200
    stop = threading.Event()
    stop.set()
    before = len(seen)
    watch_monitor(
        store, monitor, interval=5, stop=stop, clock=lambda: T0 + 6 * HOUR + timedelta(minutes=3)
    )
    assert len(seen) == before  # nothing changed, nothing reported; stop ended the loop


def test_watch_compacts_the_log_of_the_last_hours_once_an_hour(store):
    from loopwise.predictions.files import list_parts

    frame, _ = stream(13, 2, 100)
    for part in frame.iter_slices(25):  # a batch job logging a quarter hour at a time
        log_predictions(store, EP, part)
    hours = [T0 + 3 * HOUR, T0 + 3 * HOUR + timedelta(minutes=1)]

    def files() -> int:
        return len(list_parts(store.artifacts, "predictions", EP, None, None))

    before = files()
    watch_monitor(store, Monitor(EP, reference=reference()), interval=0.01, max_ticks=1,
                  clock=lambda: hours[0])  # fmt: skip
    assert files() == 2 < before  # hours 0 and 1, one file each
    log_predictions(store, EP, frame.head(3))
    watch_monitor(store, Monitor(EP, reference=reference()), interval=0.01, max_ticks=1,
                  clock=lambda: hours[1], compact=False)  # fmt: skip
    assert files() == 3


def test_the_watch_facade_takes_start_and_its_former_name_since(lw, monkeypatch):
    from loopwise.monitoring import api
    from loopwise.monitoring.engine import runner

    seen = []
    monkeypatch.setattr(runner, "watch_monitor", lambda *a, **kw: seen.append(kw["start"]))
    api.watch_monitor(EP, start=T0.isoformat())
    with pytest.warns(DeprecationWarning, match=r"watch_monitor\(since=...\) is deprecated"):
        api.watch_monitor(EP, since=T0)
    assert seen == [T0, T0]
    with pytest.raises(InvalidInput, match="'start' or its deprecated name 'since', not both"):
        api.watch_monitor(EP, start=T0, since=T0)


def test_bad_input_gets_clear_errors(store):
    frame, _ = stream(12, 1, 200)
    log(store, frame)
    with pytest.raises(NotFound, match="nope"):
        run_monitor(store, Monitor("nope"), T0, T0 + HOUR, now=NOW)
    with pytest.raises(InvalidInput, match="slice column 'segment' is not an input"):
        run_monitor(store, Monitor(EP, slices=["segment"]), T0, T0 + HOUR, now=NOW)
    with pytest.raises(InvalidInput, match=r"end .* must be after start"):
        run_monitor(store, Monitor(EP), T0 + HOUR, T0, now=NOW)
    with pytest.raises(InvalidInput, match="no time zone"):
        run_monitor(store, Monitor(EP), datetime(2024, 5, 1), T0 + HOUR, now=NOW)
    with pytest.raises(InvalidInput, match="target 'label' is not a column of the reference"):
        run_monitor(
            store, Monitor(EP, reference=reference(), target="label"), T0, T0 + HOUR, now=NOW
        )
    monitor = Monitor(EP, reference=reference(), checks={"feature_drift": {"method": "chi2"}})
    with pytest.raises(
        InvalidInput, match=r"drift test 'chi2' cannot check 'x'.*checks\.feature_drift\.method"
    ):
        run_monitor(store, monitor, T0, T0 + HOUR, now=NOW)
    # no reference and a model the registry does not know: no drift, the rest is computed
    results = run_monitor(store, Monitor(EP), T0, T0 + HOUR, now=NOW)
    assert results[0].value("drift.x") is None
    assert results[0].value("missing.x") == 0.0
    assert results[0].value("latency_p95_ms") is not None
