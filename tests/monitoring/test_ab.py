"""A/B analysis (:mod:`loopwise.monitoring.ab`) on synthetic traffic of known effect."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner, Result

from loopwise import context
from loopwise.cli.main import app
from loopwise.errors import InvalidInput, NotFound
from loopwise.monitoring.ab import compare_variants, compare_variants_frame
from loopwise.predictions.log import PredictionLog, log_feedback, log_predictions

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def classification(
    rng: np.random.Generator, n: int, accuracy: float, prefix: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` binary predictions that are right with probability ``accuracy``, with labels."""
    label = rng.integers(0, 2, n)
    right = rng.random(n) < accuracy
    frame = pl.DataFrame(
        {
            "request_id": [f"{prefix}{i}" for i in range(n)],
            "x": rng.normal(size=n),
            "prediction": np.where(right, label, 1 - label),
        }
    )
    return frame, pl.DataFrame({"request_id": frame["request_id"], "label": label})


def log_variant(store, endpoint, variant, frame, labels, *, model="m/1"):
    log_predictions(store, endpoint, frame, model=model, variant=variant, timestamp=T0)
    if labels is not None:
        log_feedback(store, endpoint, labels)


def frame_of(rng: np.random.Generator, spec: dict[str, tuple[int, float]]) -> pl.DataFrame:
    """An in-memory prediction-log frame: variant -> (rows, accuracy), all labelled."""
    parts = []
    for variant, (n, accuracy) in spec.items():
        preds, labels = classification(rng, n, accuracy, variant)
        parts.append(
            preds.select(
                "request_id",
                "prediction",
                variant=pl.lit(variant),
                shadow=pl.lit(False),
                error=pl.lit(None, pl.String),
                label=labels["label"],
            )
        )
    return pl.concat(parts)


def test_a_clearly_better_challenger_is_better(store):
    rng = np.random.default_rng(1)
    log_variant(store, "ep", "champion", *classification(rng, 3000, 0.80, "a"))
    log_variant(store, "ep", "challenger", *classification(rng, 1000, 0.90, "b"), model="m/2")
    report = compare_variants(store, "ep")
    assert report.task == "classification"
    assert report.metric == "accuracy"
    assert report.control == "champion"
    c = report.comparison("challenger")
    assert c.verdict == "better", report.summary()
    assert c.difference == pytest.approx(0.10, abs=0.04)
    assert c.low > 0
    assert c.p_value < 1e-6
    assert c.test == "two-proportion z-test"
    assert c.labels_needed is None
    champion = report.variant("champion")
    assert champion.share == pytest.approx(0.75)
    assert champion.rows == champion.labelled == 3000
    acc = champion.metrics["accuracy"]
    assert acc.low < acc.value < acc.high
    assert {"precision", "recall", "f1"} <= set(champion.metrics)
    assert 0.3 < champion.prediction_mean < 0.7
    assert [v.variant for v in report.variants] == ["champion", "challenger"]
    text = report.summary()
    assert "challenger vs champion: BETTER" in text
    assert "75.0% of traffic" in text
    d = report.to_dict()
    assert d["comparisons"][0]["verdict"] == "better"
    assert d["variants"][0]["metrics"]["accuracy"]["n"] == 3000


def test_a_clearly_worse_challenger_is_worse_on_every_metric(store):
    rng = np.random.default_rng(2)
    log_variant(store, "ep", "a", *classification(rng, 2000, 0.85, "a"))
    log_variant(store, "ep", "b", *classification(rng, 1500, 0.70, "b"))
    for metric in ("accuracy", "precision", "recall", "f1"):
        report = compare_variants(store, "ep", metric=metric)
        assert report.control == "a"  # the most traffic
        c = report.comparison("b")
        assert c.verdict == "worse", (metric, report.summary())
        assert c.high < 0


def test_equal_variants_are_undecided_at_about_the_alpha_rate():
    false = 0
    seeds = 40
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        frame = frame_of(rng, {"control": (800, 0.8), "treatment": (800, 0.8)})
        c = compare_variants_frame(frame, "ep").comparison("treatment")
        false += c.verdict != "undecided"
        if c.verdict == "undecided":
            assert c.labels_needed is None or c.labels_needed > 0
    assert false / seeds <= 0.15  # alpha is 0.05; 6 of 40 would be far out (p ~ 0.01)


def test_equal_f1_and_regression_false_verdicts_are_rare():
    false = 0
    for seed in range(20):
        rng = np.random.default_rng(500 + seed)
        frame = frame_of(rng, {"control": (600, 0.75), "treatment": (600, 0.75)})
        false += (
            compare_variants_frame(frame, "ep", metric="f1").comparison("treatment").verdict
            != "undecided"
        )
        y = rng.normal(size=1200)
        reg = pl.DataFrame(
            {
                "request_id": [f"r{i}" for i in range(1200)],
                "variant": ["control"] * 600 + ["treatment"] * 600,
                "shadow": [False] * 1200,
                "error": pl.Series([None] * 1200, dtype=pl.String),
                "prediction": y + rng.normal(size=1200),
                "label": y,
            }
        )
        for metric in ("rmse", "mae"):
            c = compare_variants_frame(reg, "ep", metric=metric).comparison("treatment")
            false += c.verdict != "undecided"
    assert false <= 6  # 60 tests at alpha 0.05: 3 expected


def test_too_few_labels_is_undecided_with_labels_needed(store):
    rng = np.random.default_rng(3)
    preds_a, labels_a = classification(rng, 500, 0.95, "a")
    preds_b, labels_b = classification(rng, 500, 0.55, "b")
    log_variant(store, "ep", "control", preds_a, labels_a.head(20))
    log_variant(store, "ep", "treatment", preds_b, labels_b.head(20))
    report = compare_variants(store, "ep")
    c = report.comparison("treatment")
    assert c.verdict == "undecided"
    assert "too few labels" in c.reason
    assert "min_labels is 30" in c.reason
    assert c.labels_needed is not None
    assert c.labels_needed >= 20
    assert report.variant("control").labelled == 20
    assert report.variant("control").rows == 500
    # with the threshold lowered the same data decides
    assert compare_variants(store, "ep", min_labels=10).comparison("treatment").verdict == "worse"


def test_a_small_effect_is_undecided_and_says_how_many_labels_are_needed():
    def exact(variant: str, n: int, correct: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "request_id": [f"{variant}{i}" for i in range(n)],
                "variant": [variant] * n,
                "shadow": [False] * n,
                "error": pl.Series([None] * n, dtype=pl.String),
                "prediction": [i % 2 for i in range(n)],
                "label": [i % 2 if i < correct else 1 - i % 2 for i in range(n)],
            }
        )

    frame = pl.concat([exact("control", 300, 240), exact("treatment", 300, 246)])
    c = compare_variants_frame(frame, "ep").comparison("treatment")
    assert c.difference == pytest.approx(0.02)
    assert c.verdict == "undecided"
    assert c.low < 0 < c.high
    # ((1.96 + 0.84) * se / 0.02)^2 = 20.4 times the 600 labels: about 11,600 more
    assert c.labels_needed is not None
    assert 10_000 < c.labels_needed < 13_000
    assert f"{c.labels_needed:,} more labels" in c.reason


def test_regression_uses_welch_on_errors(store):
    rng = np.random.default_rng(5)
    for variant, noise, prefix in (("champion", 1.0, "a"), ("challenger", 0.6, "b")):
        y = rng.normal(size=1500)
        frame = pl.DataFrame(
            {
                "request_id": [f"{prefix}{i}" for i in range(1500)],
                "x": y,
                "prediction": y + rng.normal(scale=noise, size=1500),
            }
        )
        log_variant(store, "ep", variant, frame, frame.select("request_id", label=pl.col("x")))
    report = compare_variants(store, "ep")
    assert report.task == "regression"
    assert report.metric == "rmse"
    assert not report.higher_is_better
    c = report.comparison("challenger")
    assert c.verdict == "better", report.summary()
    assert c.difference == pytest.approx(-0.4, abs=0.08)
    assert c.test == "Welch t-test on squared errors"
    champion = report.variant("champion").metrics
    assert champion["rmse"].value == pytest.approx(1.0, abs=0.06)
    assert champion["rmse"].low < champion["rmse"].value < champion["rmse"].high
    mae = compare_variants(store, "ep", metric="mae").comparison("challenger")
    assert mae.verdict == "better"
    assert mae.test == "Welch t-test on absolute errors"
    # the reverse view: the noisier model, as challenger, is worse
    assert (
        compare_variants(store, "ep", control="challenger").comparison("champion").verdict
        == "worse"
    )


def test_shadows_logged_by_the_server_are_excluded(store):
    rng = np.random.default_rng(6)
    preds_a, labels_a = classification(rng, 400, 0.8, "a")
    preds_b, labels_b = classification(rng, 400, 0.8, "b")
    log_variant(store, "ep", "control", preds_a, labels_a)
    log_variant(store, "ep", "treatment", preds_b, labels_b)
    with PredictionLog(store, "ep") as plog:  # a perfect shadow model on control's requests
        for rid, label in labels_a.head(200).iter_rows():
            plog.log_request(
                request_id=rid, timestamp_us=int(T0.timestamp() * 1e6), variant="shadow-model",
                model="m/9", model_version_id=None, inputs=[{"x": 0.0}], outputs=[label],
                probabilities=None, latency_ms=1.0, shadow=True,
            )  # fmt: skip
    report = compare_variants(store, "ep")
    assert [v.variant for v in report.variants] == ["control", "treatment"]
    assert report.variant("control").rows == 400
    assert report.variant("control").share == pytest.approx(0.5)


def test_shadow_rows_are_left_out():
    rng = np.random.default_rng(7)
    frame = frame_of(rng, {"control": (800, 0.8), "treatment": (800, 0.8), "shadow": (800, 1.0)})
    frame = frame.with_columns(shadow=pl.col("variant") == "shadow")
    errors = frame.head(5).with_columns(
        request_id=pl.lit("e") + pl.col("request_id"),
        prediction=pl.lit(None, pl.Int64),
        error=pl.lit("Boom"),
    )
    report = compare_variants_frame(pl.concat([frame, errors]), "ep")
    assert [v.variant for v in report.variants] == ["control", "treatment"]
    assert report.variant("control").rows == 805
    assert report.variant("control").errors == 5
    assert report.variant("control").labelled == 800
    assert report.variant("control").share == pytest.approx(805 / 1605)


def test_one_variant_is_a_clear_error(store):
    rng = np.random.default_rng(8)
    log_variant(store, "ep", "champion", *classification(rng, 100, 0.8, "a"))
    with pytest.raises(InvalidInput, match=r"one variant \('champion'\).*needs two or more"):
        compare_variants(store, "ep")


def test_unknown_endpoint_and_bad_arguments(store):
    with pytest.raises(NotFound, match="'nope' has no prediction log"):
        compare_variants(store, "nope")
    rng = np.random.default_rng(9)
    frame = frame_of(rng, {"a": (100, 0.8), "b": (100, 0.8)})
    with pytest.raises(InvalidInput, match=r"control 'c' is not a variant.*variants: a, b"):
        compare_variants_frame(frame, "ep", control="c")
    with pytest.raises(InvalidInput, match="metric 'auc' is not supported"):
        compare_variants_frame(frame, "ep", metric="auc")
    with pytest.raises(InvalidInput, match="regression metric, but task is 'classification'"):
        compare_variants_frame(frame, "ep", metric="rmse", task="classification")
    with pytest.raises(InvalidInput, match="alpha"):
        compare_variants_frame(frame, "ep", alpha=2)
    with pytest.raises(NotFound, match="no live"):
        compare_variants_frame(frame.filter(pl.lit(False)), "ep")


def test_without_labels_traffic_and_prediction_means_are_reported(store):
    rng = np.random.default_rng(10)
    a, _ = classification(rng, 300, 0.8, "a")
    b, _ = classification(rng, 100, 0.8, "b")
    log_variant(store, "ep", "a", a, None)
    log_variant(store, "ep", "b", b.with_columns(prediction=pl.lit(1)), None)
    report = compare_variants(store, "ep", start=T0)
    assert report.variant("b").prediction_mean == 1.0
    assert report.variant("a").share == pytest.approx(0.75)
    c = report.comparison("b")
    assert c.verdict == "undecided"
    assert "too few labels" in c.reason
    assert "n/a" in report.summary()


@pytest.fixture
def invoke(lw, store_url: str, tmp_path: Path) -> Iterator[Callable[..., Result]]:
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(
            app,
            ["--store-url", store_url, "--artifacts-url", str(tmp_path / "artifacts"), *args],
            env={"COLUMNS": "200", "LOOPWISE_CACHE_DIR": str(tmp_path / "cli-cache")},
        )

    yield run
    old = context.reset()  # before the store_url fixture drops a PostgreSQL schema
    if old is not None:
        old.db.engine.dispose()


def test_cli_ab_prints_a_table_and_json(lw, invoke):
    rng = np.random.default_rng(11)
    for variant, accuracy, prefix in (("champion", 0.75, "a"), ("challenger", 0.9, "b")):
        preds, labels = classification(rng, 1000, accuracy, prefix)
        lw.log_predictions("ep", preds, model="m/1", variant=variant, timestamp=T0)
        lw.log_feedback("ep", labels)
    result = invoke("monitor", "ab", "ep")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "A/B ep: accuracy (higher is better), control champion" in out
    for column in ("variant", "traffic", "labelled", "pred. mean", "95% CI", "vs control"):
        assert column in out
    assert "better" in next(line for line in out.splitlines() if "challenger" in line)
    result = invoke("monitor", "ab", "ep", "--metric", "f1", "--json", "--start", "-100000d")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metric"] == "f1"
    assert data["control"] == "champion"
    assert data["comparisons"][0]["verdict"] == "better"
    assert data["comparisons"][0]["challenger"] == "challenger"
    assert [v["labelled"] for v in data["variants"]] == [1000, 1000]


def test_cli_ab_errors_are_clear(lw, invoke):
    result = invoke("monitor", "ab", "nope")
    assert result.exit_code == 1
    assert "Error:" in result.output
    assert "'nope' has no prediction log" in result.output
    assert "Traceback" not in result.output
    preds, _ = classification(np.random.default_rng(12), 50, 0.8, "a")
    lw.log_predictions("ep", preds, model="m/1", variant="champion", timestamp=T0)
    result = invoke("monitor", "ab", "ep", "--json")
    assert result.exit_code == 1
    assert "one variant ('champion')" in result.output
    result = invoke("monitor", "ab", "ep", "--metric", "auc")
    assert result.exit_code == 1
    assert "not supported" in result.output


def test_the_module_level_api_reads_the_default_store(lw):
    from loopwise import context

    rng = np.random.default_rng(3)
    store = context.get_store()
    log_variant(store, "ep", "champion", *classification(rng, 800, 0.70, "a"))
    log_variant(store, "ep", "challenger", *classification(rng, 800, 0.90, "b"), model="m/2")
    report = lw.compare_variants("ep", start=T0.isoformat(), metric="accuracy")
    assert report.comparison("challenger").verdict == "better"
