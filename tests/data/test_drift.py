"""Drift and skew detection: the right columns are flagged, the others are not."""

from __future__ import annotations

import html
import json
import re
import resource
import time
import tracemalloc
from datetime import datetime

import numpy as np
import polars as pl
import pytest
from scipy.stats import ks_2samp, wasserstein_distance

from loopwise._version import __version__
from loopwise.data.drift.detect import (
    DEFAULT_TESTS,
    DEFAULT_THRESHOLDS,
    DriftReport,
    detect_drift,
    detect_skew,
)
from loopwise.errors import InvalidInput

CATEGORIES = np.array(["red", "green", "blue", "black"])


def numeric_frame(rows: int, seed: int, mean: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"x": rng.normal(mean, 1.0, rows)})


def categorical_frame(rows: int, seed: int, shares: list[float] | None = None) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    shares = shares or [0.4, 0.3, 0.2, 0.1]
    return pl.DataFrame({"c": rng.choice(CATEGORIES, size=rows, p=shares)})


# --- drift is flagged ---------------------------------------------------------------------


@pytest.mark.parametrize(("rows", "test"), [(500, "ks"), (20_000, "wasserstein")])
def test_shifted_numeric_mean_is_flagged(rows, test):
    report = detect_drift(numeric_frame(rows, 1), numeric_frame(rows, 2, mean=0.5))
    result = report.columns["x"]
    assert (result.kind, result.test, result.drifted) == ("numeric", test, True)
    if test == "ks":
        assert result.p_value < 0.05
    else:
        assert result.p_value is None
        assert result.statistic == pytest.approx(0.5, abs=0.05)  # a 0.5 std shift


@pytest.mark.parametrize(("rows", "test"), [(500, "chi2"), (20_000, "jensenshannon")])
def test_changed_category_mix_is_flagged(rows, test):
    reference = categorical_frame(rows, 1)
    current = categorical_frame(rows, 2, shares=[0.1, 0.2, 0.3, 0.4])
    result = detect_drift(reference, current).columns["c"]
    assert (result.kind, result.test, result.drifted) == ("categorical", test, True)


@pytest.mark.parametrize("rows", [500, 20_000])
def test_new_category_in_current_is_detected(rows):
    reference = categorical_frame(rows, 1)
    rng = np.random.default_rng(2)
    values = rng.choice(CATEGORIES, size=rows, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    values[rng.random(rows) < 0.2] = "purple"
    current = pl.DataFrame({"c": values.astype(str)})

    result = detect_drift(reference, current).columns["c"]
    assert result.drifted
    assert result.new_categories == ["purple"]
    assert result.new_category_count == 1
    assert result.new_category_share == pytest.approx(0.2, abs=0.03)
    assert "purple" in result.bins  # drawn in the chart
    psi = detect_drift(reference, current, tests={"c": "psi"}).columns["c"]
    assert psi.drifted
    assert np.isfinite(psi.statistic)


# --- identical distributions are not flagged ------------------------------------------------


def false_positives(make, rows: int, expected_test: str, seeds: int) -> int:
    """How many of ``seeds`` pairs of samples from one distribution are flagged."""
    flagged = 0
    for seed in range(seeds):
        report = detect_drift(make(rows, 2 * seed), make(rows, 2 * seed + 1))
        (result,) = report.columns.values()
        assert result.test == expected_test
        flagged += result.drifted
    return flagged


@pytest.mark.parametrize(
    ("make", "test"), [(numeric_frame, "ks"), (categorical_frame, "chi2")], ids=["ks", "chi2"]
)
def test_p_value_tests_rarely_flag_resampled_data(make, test):
    # At p < 0.05 about 1 in 20 is flagged; 20 seeds (not 10) keep the ceiling of 20%
    # without a test that fails on one unlucky draw.
    assert false_positives(make, 800, test, seeds=20) <= 4


@pytest.mark.parametrize(
    ("make", "test"),
    [(numeric_frame, "wasserstein"), (categorical_frame, "jensenshannon")],
    ids=["wasserstein", "jensenshannon"],
)
def test_distance_tests_never_flag_resampled_data(make, test):
    assert false_positives(make, 5_000, test, seeds=10) == 0


def test_large_sample_wasserstein_is_close_to_exact():
    rng = np.random.default_rng(7)
    reference = rng.lognormal(0.0, 1.0, 300_000)
    current = rng.lognormal(0.1, 1.0, 250_000)
    result = detect_drift(pl.DataFrame({"x": reference}), pl.DataFrame({"x": current}))
    exact = wasserstein_distance(reference, current) / reference.std()
    x = result.columns["x"]
    assert x.test == "wasserstein"
    assert x.statistic_error is not None
    assert x.statistic_error <= 0.01 * max(x.threshold, x.statistic)
    assert abs(x.statistic - exact) <= x.statistic_error


def test_statistics_match_scipy_on_small_samples():
    rng = np.random.default_rng(3)
    reference, current = rng.normal(0, 1, 300), rng.normal(0.2, 1.5, 700)
    ref, cur = pl.DataFrame({"x": reference}), pl.DataFrame({"x": current})

    ks = detect_drift(ref, cur).columns["x"]
    expected = ks_2samp(reference, current)
    assert ks.statistic == pytest.approx(expected.statistic)
    assert ks.p_value == pytest.approx(expected.pvalue)

    wasserstein = detect_drift(ref, cur, tests={"x": "wasserstein"}).columns["x"]
    exact = wasserstein_distance(reference, current) / reference.std()
    assert wasserstein.statistic == pytest.approx(exact, rel=1e-9)
    assert wasserstein.statistic_error is None  # computed exactly


# --- options ----------------------------------------------------------------------------------


def mixed_frames(rows: int = 2_000) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(5)
    reference = pl.DataFrame(
        {"age": rng.normal(40, 10, rows), "country": rng.choice(CATEGORIES, rows)}
    )
    current = pl.DataFrame(
        {"age": rng.normal(44, 10, rows), "country": rng.choice(CATEGORIES, rows)}
    )
    return reference, current


def test_defaults_are_documented_and_used():
    assert DEFAULT_TESTS == {
        "numeric": {"small": "ks", "large": "wasserstein"},
        "categorical": {"small": "chi2", "large": "jensenshannon"},
    }
    assert DEFAULT_THRESHOLDS == {
        "chi2": 0.05,
        "jensenshannon": 0.1,
        "ks": 0.05,
        "psi": 0.2,
        "wasserstein": 0.1,
    }
    reference, current = mixed_frames()
    report = detect_drift(reference, current)
    assert [(r.test, r.threshold) for r in report.columns.values()] == [
        ("wasserstein", 0.1),
        ("jensenshannon", 0.1),
    ]
    small = detect_drift(reference, current, sample_size_threshold=5_000)
    assert [r.test for r in small.columns.values()] == ["ks", "chi2"]


def test_tests_and_thresholds_can_be_overridden_per_column():
    reference, current = mixed_frames()
    report = detect_drift(
        reference, current, tests={"age": "psi", "country": "chi2"}, thresholds={"age": 0.2}
    )
    age, country = report.columns["age"], report.columns["country"]
    assert (age.test, age.threshold, age.p_value) == ("psi", 0.2, None)
    assert (country.test, country.threshold) == ("chi2", 0.05)
    assert country.p_value is not None

    lenient = detect_drift(reference, current, thresholds={"age": 5.0}).columns["age"]
    assert lenient.test == "wasserstein"
    assert not lenient.drifted  # a 0.4 std shift is below a threshold of 5


def test_psi_flags_a_shift_and_not_a_resample():
    reference = numeric_frame(5_000, 1)
    shifted = detect_drift(reference, numeric_frame(5_000, 2, mean=0.5), tests={"x": "psi"})
    same = detect_drift(reference, numeric_frame(5_000, 3), tests={"x": "psi"})
    assert shifted.columns["x"].drifted
    assert shifted.columns["x"].statistic > 0.2
    assert not same.columns["x"].drifted
    assert same.columns["x"].statistic < 0.02


def test_integer_columns_with_few_values_are_categorical():
    rng = np.random.default_rng(9)
    frame = pl.DataFrame(
        {"grade": rng.integers(1, 6, 3_000), "amount": rng.integers(0, 10**6, 3_000)}
    )
    report = detect_drift(frame, frame.sample(fraction=1.0, shuffle=True, seed=1))
    assert report.columns["grade"].kind == "categorical"
    assert report.columns["amount"].kind == "numeric"
    assert not report.drifted
    as_numeric = detect_drift(frame, frame, tests={"grade": "ks"}).columns["grade"]
    assert as_numeric.kind == "numeric"

    # Served as floats, with NaN for missing: still the same categories, NaN left out.
    served = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 300)
        .then(float("nan"))
        .otherwise(pl.col("grade"))
        .alias("grade")
    )
    assert served["grade"].dtype == pl.Float64
    grade = detect_drift(frame, served, ["grade"]).columns["grade"]
    assert (grade.kind, grade.drifted, grade.new_category_count) == ("categorical", False, 0)
    assert grade.current.null_rate == pytest.approx(0.1)


def test_one_drifted_column_makes_the_dataset_drifted_by_default():
    """A unit change in one of four columns (issue 13: balance x 1.5) is drift, and the
    headline says so, rather than "No dataset drift: 1 of 4 columns drifted (25% < 50%)"."""
    rng = np.random.default_rng(21)

    def frame(rows: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "student": rng.choice(["Yes", "No"], rows),
                "balance": rng.gamma(2.0, 420.0, rows),
                "income": rng.normal(33_000, 13_000, rows),
                "age": rng.integers(18, 90, rows),
            }
        )

    reference, current = frame(6000), frame(4000)
    current = current.with_columns(pl.col("balance") * 1.5)
    report = detect_drift(reference, current)
    assert report.drifted_columns == ["balance"]
    assert report.dataset_threshold is None
    assert report.drifted
    assert report.summary() == "Drift in 1 of 4 columns: balance."
    assert report.to_dict()["drifted"] is True

    shared = detect_drift(reference, current, dataset_threshold=0.5)
    assert not shared.drifted  # 25% < 50%: the share rule, when asked for
    assert shared.summary() == (
        "Drift in 1 of 4 columns (25%, under the 50% share that makes the dataset drifted): "
        "balance."
    )
    same = detect_drift(reference, frame(4000))
    assert not same.drifted
    assert same.summary() == "No drift: none of the 4 columns checked drifted."


def test_dataset_threshold_asks_for_the_share_rule():
    reference, current = mixed_frames()
    report = detect_drift(reference, current, dataset_threshold=0.5)
    assert report.drifted_columns == ["age"]
    assert report.share_drifted == 0.5
    assert report.drifted  # 0.5 >= 0.5
    assert not detect_drift(reference, current, dataset_threshold=0.75).drifted
    assert report.summary() == "Dataset drift: 1 of 2 columns drifted (50% ≥ 50%): age."


def test_the_label_column_is_left_out_unless_named():
    reference, current = mixed_frames()
    reference = reference.with_columns(y=pl.Series(np.arange(reference.height) % 2))
    current = current.with_columns(y=pl.Series((np.arange(current.height) % 5 == 0) * 1))
    assert detect_drift(reference, current).drifted_columns == ["age", "y"]  # no label known

    report = detect_drift(reference, current, target="y")
    assert list(report.columns) == ["age", "country"]
    assert report.target == "y"
    assert "label column" in report.skipped["y"]
    assert report.to_dict()["target"] == "y"
    assert report.summary() == "Drift in 1 of 2 columns: age."
    # Named explicitly, it is checked.
    named = detect_drift(reference, current, ["age", "y"], target="y")
    assert named.drifted_columns == ["age", "y"]
    assert "y" in detect_drift(reference, current, target="y", tests={"y": "psi"}).columns
    # Serving data without the label: fine, the label is only in the reference.
    assert "y" not in detect_drift(reference, current.drop("y"), target="y").columns
    assert detect_skew(reference, current, target="y").target == "y"


def test_a_label_that_is_no_column_is_refused():
    reference, current = mixed_frames()
    with pytest.raises(InvalidInput, match=r"'target' parameter of detect_drift names column 'y'"):
        detect_drift(reference, current, target="y")
    with pytest.raises(InvalidInput, match=r"'target' parameter of detect_drift must be a column"):
        detect_drift(reference, current, target=["age"])


def test_columns_default_to_those_in_both_frames():
    reference = pl.DataFrame(
        {"a": [1.0, 2.0, 3.0], "empty": [None, None, None], "only_ref": ["x", "y", "z"]}
    )
    current = pl.DataFrame({"a": [1.0, 2.5, 3.0], "empty": [1, 2, 3], "only_cur": [1, 2, 3]})
    report = detect_drift(reference, current)
    assert list(report.columns) == ["a"]
    assert report.skipped == {
        "only_ref": "only in reference",
        "only_cur": "only in current",
        "empty": "is entirely null in reference",
    }
    assert list(detect_drift(reference, current, ["a"]).columns) == ["a"]


def test_skew_is_drift_with_training_as_reference():
    reference, current = mixed_frames()
    skew = detect_skew(reference, current, tests={"age": "ks"})
    drift = detect_drift(reference, current, tests={"age": "ks"})
    assert skew.to_dict()["columns"] == drift.to_dict()["columns"]


def test_pandas_and_arrow_inputs_are_accepted():
    reference, current = mixed_frames()
    from_pandas = detect_drift(reference.to_pandas(), current.to_arrow())
    assert from_pandas.to_dict()["columns"] == detect_drift(reference, current).to_dict()["columns"]


# --- missing values ---------------------------------------------------------------------------


def test_nulls_are_ignored_but_reported():
    rng = np.random.default_rng(11)
    rows = 4_000
    ref_x = rng.normal(0, 1, rows)
    ref_x[:200] = np.nan  # NaN counts as missing
    cur_x = rng.normal(0, 1, rows)
    ref_c = rng.choice(CATEGORIES, rows).astype(object)
    cur_c = rng.choice(CATEGORIES, rows).astype(object)
    ref_c[:400] = None
    cur_c[: rows // 2] = None
    reference = pl.DataFrame({"x": ref_x, "c": ref_c.tolist()}).with_columns(
        pl.when(pl.int_range(pl.len()).is_between(200, 399))
        .then(None)
        .otherwise(pl.col("x"))
        .alias("x")
    )
    current = pl.DataFrame({"x": cur_x, "c": cur_c.tolist()}).with_columns(
        pl.when(pl.int_range(pl.len()) < 1_200).then(None).otherwise(pl.col("x")).alias("x")
    )
    report = detect_drift(reference, current)
    x, c = report.columns["x"], report.columns["c"]
    assert not x.drifted
    assert not c.drifted
    assert x.reference.null_rate == pytest.approx(0.1)  # 5% NaN + 5% null
    assert x.current.null_rate == pytest.approx(0.3)
    assert x.reference.count == 3_600
    assert c.reference.null_rate == pytest.approx(0.1)
    assert c.current.null_rate == pytest.approx(0.5)
    assert c.current.count == 2_000


def test_a_column_null_throughout_current_counts_as_drifted():
    reference = pl.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    current = pl.DataFrame({"x": [None, None], "c": [None, None]}, schema=reference.schema)
    report = detect_drift(reference, current)
    for result in report.columns.values():
        assert result.drifted
        assert result.statistic is None
        assert result.current.null_rate == 1.0
        assert "no usable" in result.note
    json.dumps(report.to_dict(), allow_nan=False)


# --- bad input ------------------------------------------------------------------------------


def test_a_missing_column_is_named():
    reference, current = mixed_frames()
    with pytest.raises(InvalidInput, match=r"'height' is not in reference or current"):
        detect_drift(reference, current, ["age", "height"])
    with pytest.raises(InvalidInput, match=r"'age' is not in current"):
        detect_drift(reference, current.drop("age"), ["age"])
    with pytest.raises(InvalidInput, match=r"'agee' is not in reference"):
        detect_drift(reference, current, tests={"agee": "ks"})


def test_an_unknown_test_lists_the_valid_ones():
    reference, current = mixed_frames()
    with pytest.raises(InvalidInput, match=r"Unknown drift test 'kss' for column 'age'") as info:
        detect_drift(reference, current, tests={"age": "kss"})
    assert "chi2, jensenshannon, ks, psi, wasserstein" in str(info.value)


def test_a_test_of_the_wrong_kind_is_refused():
    reference, current = mixed_frames()
    with pytest.raises(InvalidInput, match=r"'ks' cannot check column 'country'") as info:
        detect_drift(reference, current, tests={"country": "ks"})
    assert "chi2, jensenshannon, psi" in str(info.value)


@pytest.mark.parametrize("empty", ["reference", "current"])
def test_an_empty_frame_is_refused(empty):
    reference, current = mixed_frames()
    frames = {"reference": reference, "current": current}
    frames[empty] = frames[empty].clear()
    with pytest.raises(InvalidInput, match=rf"{empty} has no rows"):
        detect_drift(frames["reference"], frames["current"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"thresholds": {"age": 0}}, r"thresholds\['age'\] for test 'wasserstein' must be"),
        ({"thresholds": {"age": 2}, "sample_size_threshold": 10**6}, r"a p-value in \(0, 1\)"),
        ({"thresholds": {"age": "high"}}, r"thresholds\['age'\] must be a number"),
        ({"tests": "ks"}, r"tests must map column names to a test name"),
        ({"dataset_threshold": 0}, r"'dataset_threshold' parameter .* a share in \(0, 1\]"),
        ({"dataset_threshold": True}, r"or None \(when any column drifted\)\. Got True"),
        ({"sample_size_threshold": -1}, r"sample_size_threshold must be 0 or more"),
        ({"columns": ["age"], "tests": {"country": "chi2"}}, r"name column 'country'"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    reference, current = mixed_frames()
    with pytest.raises(InvalidInput, match=message):
        detect_drift(reference, current, **kwargs)


def test_unusable_or_mismatched_columns_are_refused_when_asked_for():
    reference = pl.DataFrame({"when": [datetime(2024, 1, 1)] * 3, "x": [1.0, 2.0, 3.0]})
    with pytest.raises(InvalidInput, match=r"'when' for drift: it has type Datetime"):
        detect_drift(reference, reference, ["when"])
    assert "when" in detect_drift(reference, reference).skipped
    current = reference.with_columns(pl.col("x").cast(pl.String))
    with pytest.raises(InvalidInput, match=r"'x' is Float64 in reference but String in current"):
        detect_drift(reference, current)


# --- output -----------------------------------------------------------------------------------


def report_of_every_kind() -> DriftReport:
    rng = np.random.default_rng(13)
    rows = 3_000

    def frame(shift: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "income <€>": rng.lognormal(shift, 1, rows),
                "grade": rng.integers(1, 4, rows),
                "flag": rng.random(rows) < 0.3 + shift,
                "city": rng.choice(CATEGORIES, rows),
                "constant": np.ones(rows),
            }
        )

    return detect_drift(frame(0.0), frame(0.3))


def test_to_dict_is_strict_json_and_stamped():
    report = report_of_every_kind()
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["format_version"] == 3
    assert (data["dataset_threshold"], data["target"]) == (None, None)
    assert data["loopwise_version"] == __version__
    assert data["share_drifted"] == report.share_drifted
    assert [c["column"] for c in data["columns"]] == list(report.columns)
    assert data["columns"][0]["reference"]["null_rate"] == 0.0


def test_to_html_is_one_self_contained_file(tmp_path):
    report = report_of_every_kind()
    path = report.to_html(tmp_path / "reports" / "drift.html")
    text = path.read_text(encoding="utf-8")
    assert text.count("<svg") == len(report.columns)
    for name in report.columns:
        assert name.replace("<", "&lt;").replace(">", "&gt;") in text
    assert "income <€>" not in text  # escaped
    urls = set(re.findall(r"https?://[^\s\"'<>]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}
    cards = re.findall(r'<div class="card"><h3>(.*?) <span', text)
    flags = [report.columns[html.unescape(name)].drifted for name in cards]
    assert 0 < sum(flags) < len(flags)
    assert flags == sorted(flags, reverse=True)  # drifted columns first
    assert html.escape(report.summary(), quote=False) in text  # the headline, as summary()
    assert "counts as drifted when any column drifted" in text


def test_the_html_headline_shows_drift_under_a_share_rule(tmp_path):
    reference, current = mixed_frames()
    report = detect_drift(reference, current, dataset_threshold=0.75)
    text = report.to_html(tmp_path / "drift.html").read_text(encoding="utf-8")
    assert "no dataset drift" not in text.lower()
    assert "drift below the dataset share" in text
    assert "Drift in 1 of 2 columns (50%, under the 75% share" in text
    assert "when at least 75% of the columns drifted" in text


# --- scale ------------------------------------------------------------------------------------


def wide_frame(rows: int, seed: int, shift: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for i in range(12):
        columns[f"float_{i}"] = rng.normal(shift if i < 3 else 0.0, 1.0, rows)
    for i in range(4):
        columns[f"int_{i}"] = rng.integers(0, 10_000, rows)
    for i in range(4):
        columns[f"cat_{i}"] = rng.choice(CATEGORIES, rows)
    return pl.DataFrame(columns).with_columns(pl.col("^cat_.*$").cast(pl.Categorical))


def test_a_million_rows_by_twenty_columns():
    reference = wide_frame(1_000_000, 1, 0.0)
    current = wide_frame(1_000_000, 2, 0.2)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    report = detect_drift(reference, current)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    print(
        f"\ndetect_drift 1,000,000 x 20: {elapsed:.2f} s, peak traced {peak / 1e6:.0f} MB, "
        f"max RSS growth {rss_growth / 1e3:.0f} MB; {report.summary()}"
    )
    assert report.drifted_columns == ["float_0", "float_1", "float_2"]


def test_pandas_input_at_scale_gives_the_same_verdicts():
    reference = wide_frame(200_000, 3, 0.0)
    current = wide_frame(200_000, 4, 0.2)
    expected = detect_drift(reference, current).drifted_columns
    from_pandas = detect_drift(reference.to_pandas(), current.to_pandas())
    assert from_pandas.drifted_columns == expected
