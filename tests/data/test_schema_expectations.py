"""Inferred schemas on data shaped like public datasets: tight ranges, distribution checks.

The generators imitate ISLR's ``Default`` (balance, income, student, default) and AER's
``CreditCard`` (age 0.17-83.5, 0/1 and yes/no columns, counts, the ``share`` ratio). A
schema inferred from one sample must pass fresh samples from the same generator (several
seeds and sizes: no error, no warning) and must refuse a unit change (balance x 1.5 or
x 2, income / 1000) as an error naming the column.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from loopwise.data import distribution
from loopwise.data.schema import Schema
from loopwise.data.schema_inference import infer_schema
from loopwise.data.validation import validate


def make_default(n: int, seed: int) -> pl.DataFrame:
    """Like ISLR ``Default``: 29% students; balance ~ normal clipped at 0 (max ~2650);
    income 10k-73k, lower for students; default ~3% and rising with balance."""
    rng = np.random.default_rng(seed)
    student = rng.random(n) < 0.294
    balance = np.where(student, rng.normal(988, 490, n), rng.normal(771, 466, n))
    balance = np.clip(balance, 0, None)
    income = np.where(student, rng.normal(17950, 4600, n), rng.normal(40000, 10000, n))
    income = 770 + np.abs(income - 770)  # (no pile of equal values at a floor)
    default = rng.random(n) < 1 / (1 + np.exp(10.65 - 0.0055 * balance))
    return pl.DataFrame(
        {
            "default": np.where(default, "Yes", "No"),
            "student": np.where(student, "Yes", "No"),
            "balance": balance,
            "income": income,
        }
    )


def make_credit_card(n: int, seed: int) -> pl.DataFrame:
    """Like AER ``CreditCard``: age in years (a few entered in months, 0.17-0.75), income in
    $10,000s, ``share`` = monthly expenditure / yearly income (tiny without a card), 0/1
    ``majorcards``, yes/no columns and counts (reports, dependents, months, active)."""
    rng = np.random.default_rng(seed)
    card = rng.random(n) < 0.776
    age = np.clip(rng.lognormal(np.log(32), 0.3, n), 18, 83.5)
    months_typo = rng.random(n) < 0.005
    age = np.where(months_typo, rng.choice([0.17, 0.5, 0.58, 0.75], n), np.round(age * 12) / 12)
    income = np.clip(rng.lognormal(np.log(3.0), 0.45, n), 0.21, 13.5)
    spend_share = np.clip(rng.lognormal(np.log(0.06), 0.85, n), 0.0002, 0.906)
    share = np.where(card, spend_share, 0.5 / (income * 10_000 / 12))
    return pl.DataFrame(
        {
            "card": np.where(card, "yes", "no"),
            "reports": np.minimum(rng.geometric(0.8, n) - 1, 14),
            "age": age,
            "income": income,
            "share": share,
            "expenditure": np.where(card, share * income * 10_000 / 12, 0.0),
            "owner": np.where(rng.random(n) < 0.44, "yes", "no"),
            "selfemp": np.where(rng.random(n) < 0.069, "yes", "no"),
            "dependents": np.minimum(rng.poisson(1.0, n), 6),
            "months": np.minimum(rng.gamma(1.5, 37, n).astype(np.int64), 540),
            "majorcards": (rng.random(n) < 0.817).astype(np.int64),
            "active": np.minimum(rng.negative_binomial(2, 0.2, n), 46),
        }
    )


@pytest.fixture(scope="module")
def default_schema() -> Schema:
    return infer_schema(make_default(5000, 0), target="default")


@pytest.fixture(scope="module")
def credit_schema() -> Schema:
    return infer_schema(make_credit_card(1319, 0), target="card")


def errors_by_column(report) -> dict[str | None, set[str]]:
    found: dict[str | None, set[str]] = {}
    for a in report.errors:
        found.setdefault(a.column, set()).add(a.kind)
    return found


# -- ranges follow the observed support ------------------------------------------------------


def test_default_ranges_are_tight(default_schema: Schema) -> None:
    data = make_default(5000, 0)
    balance, income = default_schema["balance"], default_schema["income"]
    assert balance.min == 0  # a floor at 0 (many zeros): kept as it is
    assert data["balance"].max() <= balance.max <= 1.6 * data["balance"].max()  # was 2.2 x
    assert income.min >= 0
    assert data["income"].max() <= income.max <= 1.6 * data["income"].max()


def test_credit_card_ranges_follow_the_support(credit_schema: Schema) -> None:
    data = make_credit_card(1319, 0)
    age = credit_schema["age"]
    assert age.min == 0  # never negative, since no age was
    assert data["age"].max() <= age.max <= 130
    assert (credit_schema["majorcards"].min, credit_schema["majorcards"].max) == (0, 1)
    assert credit_schema["dependents"].min == 0
    assert credit_schema["share"].min == 0
    assert credit_schema["share"].max < 9
    assert credit_schema["reports"].min == 0


def test_repeated_integer_edges_are_exact() -> None:
    rng = np.random.default_rng(4)
    frame = pl.DataFrame({"age": rng.integers(18, 90, 3000), "flag": rng.integers(0, 2, 3000)})
    schema = infer_schema(frame)
    assert (schema["age"].min, schema["age"].max) == (18, 89)
    assert (schema["flag"].min, schema["flag"].max) == (0, 1)


# -- distribution expectations ------------------------------------------------------------------


def test_the_schema_shows_the_reference_quantiles(default_schema: Schema, tmp_path) -> None:
    data = make_default(5000, 0)
    learned = default_schema["balance"].distribution
    assert learned is not None
    assert learned["values"] == 5000
    assert set(learned["quantiles"]) == {f"{p:g}" for p in distribution.QUANTILES}
    assert learned["quantiles"]["0.5"] == pytest.approx(data["balance"].median(), rel=1e-3)
    assert default_schema["student"].distribution is None  # text: a domain instead
    text = default_schema.save(tmp_path / "default.yaml").read_text()
    assert "distribution:" in text
    assert "'0.5':" in text
    assert Schema.load(tmp_path / "default.yaml") == default_schema


@pytest.mark.parametrize("seed", range(1, 7))
@pytest.mark.parametrize("rows", [200, 2000, 20_000])
def test_fresh_default_samples_pass(default_schema: Schema, seed: int, rows: int) -> None:
    report = validate(make_default(rows, seed), default_schema)
    assert report.anomalies == [], report.summary()


@pytest.mark.parametrize("seed", range(1, 7))
@pytest.mark.parametrize("rows", [300, 1319, 10_000])
def test_fresh_credit_card_samples_pass(credit_schema: Schema, seed: int, rows: int) -> None:
    report = validate(make_credit_card(rows, seed), credit_schema)
    assert report.anomalies == [], report.summary()


def test_fresh_batches_of_many_lognormal_columns_pass() -> None:
    """Ten lognormal columns of 50,000 rows, and a fresh batch of the same: some column's
    largest value lands 5 to 6 standard deviations (of the logs) out. With the range ending
    2 log spans past the largest reference value, this seed's batch failed a range."""
    rng = np.random.default_rng(2)
    reference = pl.DataFrame({f"x{j}": rng.lognormal(1.0, 0.5, 50_000) for j in range(10)})
    batch = pl.DataFrame({f"x{j}": rng.lognormal(1.0, 0.5, 50_000) for j in range(10)})
    report = validate(batch, infer_schema(reference))
    assert report.anomalies == [], report.summary()


@pytest.mark.parametrize(
    ("column", "change"),
    [("balance", lambda x: x * 1.5), ("balance", lambda x: x * 2), ("income", lambda x: x / 1000)],
    ids=["balance_x1.5", "balance_x2", "income_div1000"],
)
@pytest.mark.parametrize("rows", [1000, 5000])
def test_unit_changes_are_errors_naming_the_column(
    default_schema: Schema, column: str, change, rows: int
) -> None:
    batch = make_default(rows, 9)
    report = validate(batch.with_columns(change(pl.col(column))), default_schema)
    assert not report.ok
    assert "distribution_shift" in errors_by_column(report).get(column, set()), report.summary()
    assert set(errors_by_column(report)) == {column}, report.summary()
    shift = next(a for a in report.errors if a.kind == "distribution_shift")
    assert repr(column) in shift.message
    assert "unit change" in shift.message


def test_the_message_gives_the_scale(default_schema: Schema) -> None:
    batch = make_default(3000, 11).with_columns(pl.col("balance") * 2)
    report = validate(batch, default_schema)
    shift = next(a for a in report.errors if a.kind == "distribution_shift")
    assert shift.column == "balance"
    median = r"Its median is [\d,.]+ against [\d,.]+ in the reference \(x(1\.9|2)"
    assert re.search(median, shift.message)
    assert shift.examples[0]["reference"] is not None
    assert set(shift.examples[0]) == {"quantile", "reference", "batch"}
    assert all(type(v) is float for v in shift.examples[0].values())


def test_credit_card_unit_changes(credit_schema: Schema) -> None:
    batch = make_credit_card(1319, 5)
    changes = (
        ("age", pl.col("age") * 1.5),
        ("share", pl.col("share") * 2),  # spending counted twice
        ("income", pl.col("income") * 10_000),  # $10,000s became dollars
        ("months", pl.col("months") // 12),  # months became years
    )
    for column, change in changes:
        report = validate(batch.with_columns(change), credit_schema)
        assert "distribution_shift" in errors_by_column(report).get(column, ()), report.summary()


def test_small_batches_are_given_room() -> None:
    """A tolerance from 30 values is wide: no false alarm from a tiny reference or batch."""
    rng = np.random.default_rng(8)
    schema = infer_schema(pl.DataFrame({"x": rng.lognormal(0, 1.5, 40)}))
    for seed in range(30):
        batch = pl.DataFrame({"x": np.random.default_rng(seed).lognormal(0, 1.5, 25)})
        assert "distribution_shift" not in {a.kind for a in validate(batch, schema).anomalies}


def test_large_batches_are_checked_on_a_sample(default_schema: Schema) -> None:
    rows = distribution.SAMPLE_ROWS * 3
    batch = make_default(rows, 3)
    assert validate(batch, default_schema).anomalies == []
    scaled = validate(batch.with_columns(pl.col("balance") * 1.5), default_schema)
    shift = next(a for a in scaled.errors if a.kind == "distribution_shift")
    assert shift.count == distribution.SAMPLE_ROWS
    assert f"an even sample of {distribution.SAMPLE_ROWS:,} of the {rows:,} rows" in shift.message


def test_tolerance_shrinks_with_both_sizes() -> None:
    t = distribution.tolerance
    assert t(0.5, 100, 5000, 1e-6) > t(0.5, 1000, 5000, 1e-6) > t(0.5, 10_000, 5000, 1e-6)
    assert t(0.5, 1000, 100, 1e-6) > t(0.5, 1000, 10_000, 1e-6)
    assert t(0.05, 1000, 5000, 1e-6) < t(0.5, 1000, 5000, 1e-6)
    assert t(0.5, 1000, 5000, 1e-3) < t(0.5, 1000, 5000, 1e-6)


def test_false_alarm_rate_is_bounded() -> None:
    """Many checks of fresh samples (continuous, skewed, discrete): none fires."""
    makers = {
        "normal": lambda r, k: r.normal(10, 3, k),
        "lognormal": lambda r, k: r.lognormal(0, 1.2, k),
        "poisson": lambda r, k: r.poisson(2.0, k),
        "binary": lambda r, k: (r.random(k) < 0.2).astype(np.int64),
    }
    for name, make in makers.items():
        schema = infer_schema(pl.DataFrame({name: make(np.random.default_rng(0), 2000)}))
        fired = 0
        for seed in range(1, 41):
            rng = np.random.default_rng(seed)
            for rows in (50, 500, 5000):
                batch = pl.DataFrame({name: make(rng, rows)})
                found = validate(batch, schema).anomalies
                fired += any(a.kind == "distribution_shift" for a in found)
        assert fired == 0, name


def test_alpha_zero_switches_the_checks_off(default_schema: Schema) -> None:
    schema = Schema.from_dict(default_schema.to_dict())
    schema.thresholds.distribution_alpha = 0.0
    batch = make_default(2000, 4).with_columns(pl.col("balance") * 1.2)
    assert "distribution_shift" not in {a.kind for a in validate(batch, schema).anomalies}
    assert "distribution_shift" in {a.kind for a in validate(batch, default_schema).anomalies}


def test_a_hand_edited_distribution_is_checked() -> None:
    base = {"name": "x", "type": "float"}
    good = {"values": 100, "quantiles": {0.5: 1.0, "0.25": 0.5}}
    document = {"format_version": 2, "columns": [{**base, "distribution": good}]}
    column = Schema.from_dict(document)["x"]
    assert column.distribution == {"values": 100, "quantiles": {"0.25": 0.5, "0.5": 1.0}}
    bad = [
        ({"values": 100}, "non-empty mapping"),
        ({"values": 0, "quantiles": {"0.5": 1.0}}, "positive integer"),
        ({"values": 10, "quantiles": {"1.5": 1.0}}, r"share in \(0, 1\)"),
        ({"values": 10, "quantiles": {"0.25": 2.0, "0.5": 1.0}}, "must not decrease"),
        ({"values": 10, "quantiles": {"0.5": "big"}}, "must be a number"),
        ({"values": 10, "quantiles": {"0.5": 1.0}, "mean": 3}, "unknown key 'mean'"),
    ]
    for entry, text in bad:
        with pytest.raises(Exception, match=text):
            Schema.from_dict({"format_version": 2, "columns": [{**base, "distribution": entry}]})
    with pytest.raises(Exception, match="integer and float columns only"):
        Schema.from_dict(
            {
                "format_version": 2,
                "columns": [{"name": "s", "type": "string", "distribution": good}],
            }
        )
