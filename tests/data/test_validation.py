"""Validation: every anomaly kind is found on a crafted batch and absent on a clean one."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import polars as pl
import pytest

from loopwise.data.schema import Schema
from loopwise.data.schema_inference import infer_schema
from loopwise.data.validation import (
    ANOMALY_KINDS,
    DataValidationError,
    ValidationReport,
    count_duplicate_rows,
    validate,
)
from loopwise.errors import InvalidInput
from tests.helpers import make_customers


@pytest.fixture(scope="module")
def schema() -> Schema:
    return infer_schema(make_customers(2000, 0), target="churned")


@pytest.fixture(scope="module")
def clean() -> pl.DataFrame:
    return make_customers(1000, 5)


def kinds(report: ValidationReport) -> set[str]:
    return {a.kind for a in report.anomalies}


def find(report: ValidationReport, kind: str):
    found = [a for a in report.anomalies if a.kind == kind]
    assert found, f"no {kind} in {report.summary()}"
    return found[0]


def test_clean_batch_has_no_anomalies(schema: Schema, clean: pl.DataFrame) -> None:
    report = validate(clean, schema)
    assert report.anomalies == [], report.summary()
    assert report.ok


@pytest.mark.parametrize("seed", range(1, 11))
@pytest.mark.parametrize("rows", [300, 3000])
def test_fresh_samples_from_the_same_distribution_pass(schema: Schema, seed: int, rows: int):
    report = validate(make_customers(rows, seed), schema)
    assert report.errors == [], report.summary()
    assert report.warnings == [], report.summary()


def test_fresh_samples_pass_a_schema_inferred_from_a_profile_too() -> None:
    from loopwise.data.profiling import profile

    s = infer_schema(profile(make_customers(2000, 0)), target="churned")
    s.keys = [k for k in s.keys if k != ["note"]]  # the review a person would do
    for seed in range(1, 6):
        assert validate(make_customers(2000, seed), s).anomalies == []


# -- one crafted batch per anomaly kind ---------------------------------------------------


def _with(frame: pl.DataFrame, name: str, values) -> pl.DataFrame:
    return frame.with_columns(pl.Series(name, values, dtype=frame.schema[name]))


def _some(frame: pl.DataFrame, name: str, value, every: int = 20) -> pl.DataFrame:
    """Set every ``every``-th value of a column to ``value``."""
    mask = pl.int_range(pl.len()) % every == 0
    return frame.with_columns(
        pl.when(mask)
        .then(pl.lit(value, dtype=frame.schema[name]))
        .otherwise(pl.col(name))
        .alias(name)
    )


CRAFTED: dict[str, Callable[[pl.DataFrame], pl.DataFrame]] = {
    "missing_column": lambda f: f.drop("age"),
    "unexpected_column": lambda f: f.with_columns(extra=pl.lit(1)),
    "column_order": lambda f: f.select(reversed(f.columns)),
    "type_mismatch": lambda f: f.with_columns(pl.col("age").cast(pl.Float64)),
    "null_values": lambda f: _some(f, "age", None),
    "missing_rate": lambda f: _some(f, "tenure", None, every=2),
    "out_of_range": lambda f: f.with_columns(pl.col("income") * 1000),
    "new_value": lambda f: f.with_columns(pl.col("country").replace("GB", "UK")),
    "suspicious_default": lambda f: _some(f, "score", -1.0),
    "pinned_value": lambda f: f.with_columns(plan=pl.lit("basic")),
    "duplicate_rows": lambda f: pl.concat([f, f.head(30)]),
    "duplicate_key": lambda f: _some(f, "account_no", 7),
    "class_imbalance": lambda f: f.with_columns(
        churned=pl.when((pl.col("churned") == "yes") & (pl.int_range(pl.len()) % 50 != 0))
        .then(pl.lit("no"))
        .otherwise(pl.col("churned"))
    ),
    "missing_class": lambda f: f.with_columns(churned=pl.lit("no")),
    "custom_check": lambda f: _some(f, "age", 16),
    "empty_data": lambda f: f.head(0),
    "distribution_shift": lambda f: f.with_columns(pl.col("income") * 2),  # still in range
}


def test_every_kind_has_a_crafted_batch() -> None:
    assert set(CRAFTED) == set(ANOMALY_KINDS)


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_each_kind_is_detected(schema: Schema, clean: pl.DataFrame, kind: str) -> None:
    s = Schema.from_dict(schema.to_dict())
    s.ordered = kind == "column_order"
    if kind == "custom_check":
        s.add_check("adult", "col('age') >= 18", description="Customers must be adults.")
    report = validate(CRAFTED[kind](clean), s)
    anomaly = find(report, kind)
    assert anomaly.severity in ("error", "warning")
    assert anomaly.message
    assert report.ok == (not report.errors)
    json.dumps(report.to_dict(), allow_nan=False)
    # ...and the same schema finds nothing on the clean batch
    assert kind not in kinds(validate(clean, s))


def test_type_changes(schema: Schema, clean: pl.DataFrame) -> None:
    as_text = clean.with_columns(pl.col("age").cast(pl.String), pl.col("signup").cast(pl.String))
    report = validate(as_text, schema)
    found = {a.column: a for a in report.anomalies if a.kind == "type_mismatch"}
    assert set(found) == {"age", "signup"}
    assert "str.to_date()" in found["signup"].message
    assert found["signup"].examples[0].startswith("20")
    as_float = validate(clean.with_columns(pl.col("age").cast(pl.Float64)), schema)
    assert "cast(pl.Int64)" in find(as_float, "type_mismatch").message


def test_new_value_suggests_the_renamed_value(schema: Schema, clean: pl.DataFrame) -> None:
    report = validate(CRAFTED["new_value"](clean), schema)
    anomaly = find(report, "new_value")
    assert anomaly.severity == "error"
    assert anomaly.examples == ["UK"]
    assert "'UK' may be 'GB' renamed" in anomaly.message


def test_a_few_new_values_are_a_warning(schema: Schema, clean: pl.DataFrame) -> None:
    frame = _some(clean, "country", "Gb", every=500)
    anomaly = find(validate(frame, schema), "new_value")
    assert anomaly.severity == "warning"
    assert "'Gb' may be 'GB' renamed" in anomaly.message


def test_placeholders_in_text_and_dates(schema: Schema, clean: pl.DataFrame) -> None:
    frame = _some(_some(clean, "note", "N/A"), "signup", dt.date(1970, 1, 1))
    report = validate(frame, schema)
    found = {a.column: a for a in report.anomalies if a.kind == "suspicious_default"}
    assert set(found) == {"note", "signup"}
    assert found["note"].examples == ["n/a"]
    assert found["signup"].severity == "warning"


def test_placeholder_common_in_source_is_not_reported() -> None:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"v": np.where(rng.random(3000) < 0.1, -1, rng.integers(0, 50, 3000))})
    s = infer_schema(frame.head(2000))
    assert validate(frame.tail(1000), s).anomalies == []
    spike = frame.tail(1000).with_columns(v=pl.when(pl.col("v") < 20).then(-1).otherwise("v"))
    assert "suspicious_default" in kinds(validate(spike, s))


def test_zeros_standing_in_for_missing_numbers_are_suspicious(
    schema: Schema, clean: pl.DataFrame
) -> None:
    report = validate(_some(clean, "income", 0.0), schema)  # income never was 0
    found = [a for a in report.anomalies if a.kind == "suspicious_default"]
    assert [(a.column, a.count, a.examples, a.severity) for a in found] == [
        ("income", 50, ["0"], "warning")
    ]
    assert "'0' in 50 rows (5.00%; source data 0.00%)" in found[0].message
    # visits is Poisson(3): about 5% zeros in the source, so a few more are ordinary
    assert schema["visits"].defaults_seen["0"] > 0.03
    assert "suspicious_default" not in kinds(validate(_some(clean, "visits", 0), schema))


def test_zero_in_a_numeric_domain_is_a_category_not_a_placeholder() -> None:
    rng = np.random.default_rng(1)
    frame = pl.DataFrame({"x": rng.normal(5, 1, 2000), "y": rng.integers(0, 2, 2000)})
    s = infer_schema(frame, target="y")
    assert s["y"].domain == [0, 1]
    assert "0" not in s["y"].defaults_seen
    batch = frame.with_columns(y=pl.when(pl.int_range(pl.len()) < 1500).then(0).otherwise("y"))
    assert "suspicious_default" not in kinds(validate(batch, s))


def test_placeholder_allowance_covers_sampling_noise_of_small_batches() -> None:
    rng = np.random.default_rng(2)
    source = pl.DataFrame(
        {"v": np.where(np.arange(5000) % 50 == 0, 0.0, rng.normal(100, 10, 5000))}
    )
    s = infer_schema(source)
    assert s["v"].defaults_seen == {"0": 0.02}

    def batch(zeros: int) -> pl.DataFrame:
        values = np.concatenate([np.zeros(zeros), rng.normal(100, 10, 200 - zeros)])
        return pl.DataFrame({"v": values})

    assert validate(batch(10), s).anomalies == []  # 5%: within the noise of 200 rows at 2%
    assert find(validate(batch(40), s), "suspicious_default").count == 40


def test_out_of_range_examples_and_placeholder_note(schema: Schema, clean: pl.DataFrame) -> None:
    report = validate(_some(clean, "age", -999), schema)
    anomaly = find(report, "out_of_range")
    assert anomaly.count == 50
    assert anomaly.examples == [-999]
    assert "placeholders" in anomaly.message


def test_duplicates_count_copies(clean: pl.DataFrame, schema: Schema) -> None:
    report = validate(CRAFTED["duplicate_rows"](clean), schema)
    assert find(report, "duplicate_rows").count == 30
    assert find(report, "duplicate_key").column == "customer_id"
    extra, rows = count_duplicate_rows(pl.DataFrame({"a": [1, 1, 1, 2], "b": ["x"] * 4}))
    assert extra == 2
    assert rows is not None
    assert rows.height == 3


def test_label_may_be_absent_for_serving_data(schema: Schema, clean: pl.DataFrame) -> None:
    serving = clean.drop("churned")
    assert "missing_column" in kinds(validate(serving, schema))
    assert validate(serving, schema, expect_target=False).anomalies == []


def test_custom_checks_expression_and_function(schema: Schema, clean: pl.DataFrame) -> None:
    s = Schema.from_dict(schema.to_dict())
    s.add_check("adult", "col('age') >= 18")
    s.add_check("rich", lambda df: df["income"] < 1_000_000, severity="warning")
    s.add_check("big enough", lambda df: df.height > 10)
    assert validate(clean, s).anomalies == []
    bad = _some(clean, "age", 16).with_columns(pl.col("income") * 1000)
    checks = [a for a in validate(bad, s).anomalies if a.kind == "custom_check"]
    assert [(a.count, a.severity) for a in checks] == [(50, "error"), (checks[1].count, "warning")]
    assert checks[0].examples[0] == {"age": 16}
    small = validate(clean.head(5), s)
    assert any("'big enough' is false" in a.message for a in small.anomalies)


def test_broken_checks_are_reported_not_raised(schema: Schema, clean: pl.DataFrame) -> None:
    s = Schema.from_dict(schema.to_dict())
    s.add_check("ghost", "col('ghost') > 1")
    s.add_check("not boolean", "col('age') + 1")
    s.add_check("bad type", "col('country') > 3")
    s.add_check("raises", lambda df: 1 / 0)
    s.add_check("wrong shape", lambda df: [True])
    report = validate(clean, s)
    broken = [a.message for a in report.anomalies if a.kind == "custom_check"]
    assert len(broken) == 5
    assert any("'ghost'" in m and "absent" in m for m in broken)
    assert any("ZeroDivisionError" in m for m in broken)


def test_report_outputs(schema: Schema, clean: pl.DataFrame, tmp_path) -> None:
    frame = CRAFTED["new_value"](_some(clean, "signup", dt.date(1970, 1, 1)))
    report = validate(frame, schema)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["format_version"] == 1
    assert data["ok"] is False
    assert data["errors"] == 1
    assert data["warnings"] == 1
    assert data["columns"]["signup"]["min"] == "1970-01-01"
    assert set(data["timings"]) >= {"aggregate", "details", "duplicates", "total"}
    assert "FAILED" in report.summary()
    assert "new_value" in report.summary()
    path = report.to_html(tmp_path / "report.html")
    page = path.read_text()
    assert "FAILED" in page
    assert "new_value" in page
    assert "suspicious_default" in page
    assert "http" not in page.replace("http://www.w3.org", "")  # self-contained


def test_data_validation_error_carries_the_report(schema: Schema, clean: pl.DataFrame) -> None:
    report = validate(clean.drop("age"), schema)
    error = DataValidationError(report, what="dataset 'customers'")
    assert isinstance(error, InvalidInput)
    assert error.report is report
    assert "dataset 'customers' failed validation with 1 error" in str(error)


def test_inputs_of_every_kind(schema: Schema, clean: pl.DataFrame, tmp_path) -> None:
    path = tmp_path / "batch.parquet"
    clean.write_parquet(path)
    for data in (clean.to_pandas(), clean.to_arrow(), path, clean.lazy()):
        assert validate(data, schema).anomalies == []


def test_pandas_integer_column_with_missing_values(schema: Schema, clean: pl.DataFrame) -> None:
    frame = clean.to_pandas()
    frame.loc[::10, "age"] = np.nan  # pandas makes the column float
    found = kinds(validate(frame, schema))
    assert found == {"type_mismatch"}


def test_empty_frames_unicode_and_all_null_columns() -> None:
    frame = pl.DataFrame({"größe": [1.0, 2.0, None] * 20, "город": ["a", "b", "c"] * 20})
    s = infer_schema(frame)
    assert validate(frame, s).anomalies == []
    assert kinds(validate(frame.head(0), s)) == {"empty_data"}
    nulls = frame.with_columns(pl.lit(None).alias("город"))
    assert kinds(validate(nulls, s)) == {"null_values"}
    empty_schema = infer_schema(frame.head(0))  # knows nothing of values: only duplicates
    assert kinds(validate(frame, empty_schema)) == {"duplicate_rows"}


def test_mixed_type_pandas_column(schema: Schema) -> None:
    frame = pd.DataFrame({"x": [1, "two", 3.5, None] * 10})
    s = infer_schema(pd.DataFrame({"x": [1.0, 2.0, 3.5, None] * 10}))
    assert kinds(validate(frame, s)) == {"type_mismatch"}


def test_bad_arguments(clean: pl.DataFrame, schema: Schema) -> None:
    with pytest.raises(InvalidInput, match="validate needs a Schema"):
        validate(clean, {"columns": []})
    with pytest.raises(InvalidInput, match="expect_target must be a bool"):
        validate(clean, schema, expect_target="no")
    with pytest.raises(InvalidInput, match="must be a pandas or Polars"):
        validate(42, schema)


def test_hand_set_date_range(clean: pl.DataFrame, schema: Schema) -> None:
    s = Schema.from_dict(schema.to_dict())
    s["signup"].min = "2020-01-01"
    s["signup"].max = "2022-12-31"
    assert validate(clean, s).anomalies == []
    late = _some(clean, "signup", dt.date(2030, 1, 1))
    assert find(validate(late, s), "out_of_range").examples == ["2030-01-01"]


def test_placeholder_inside_the_domain_is_checked_for_spikes() -> None:
    rng = np.random.default_rng(1)
    values = rng.choice(["red", "blue", "unknown"], 3000, p=[0.5, 0.45, 0.05])
    s = infer_schema(pl.DataFrame({"colour": values[:2000]}))
    assert s["colour"].defaults_seen["unknown"] == pytest.approx(0.05, abs=0.02)
    assert validate(pl.DataFrame({"colour": values[2000:]}), s).anomalies == []
    spiked = pl.DataFrame({"colour": ["unknown"] * 400 + ["red"] * 600})
    assert find(validate(spiked, s), "suspicious_default").examples == ["unknown"]


def test_nan_counts_as_missing_not_out_of_range() -> None:
    s = infer_schema(pl.DataFrame({"x": [float(i) for i in range(100)]}))
    frame = pl.DataFrame({"x": [float("nan")] * 5 + [1e9] + [1.0] * 94})
    report = validate(frame, s)
    assert find(report, "null_values").count == 5
    assert find(report, "out_of_range").count == 1


def test_time_zone_aware_datetimes_and_categoricals() -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    frame = pl.DataFrame(
        {
            "at": [start + dt.timedelta(hours=i) for i in range(200)],
            "kind": pl.Series(["a", "b"] * 100, dtype=pl.Categorical),
        }
    ).with_columns(pl.col("at").dt.convert_time_zone("Europe/Paris"))
    s = infer_schema(frame)
    assert s["at"].type == "datetime"
    assert s["kind"].domain == ["a", "b"]
    s["at"].min = "2024-01-01T00:00:00+00:00"
    assert validate(frame, s).anomalies == []
    assert validate(frame.with_columns(pl.col("kind").cast(pl.String)), s).anomalies == []
    early = frame.with_columns(pl.col("at") - dt.timedelta(days=1))
    assert find(validate(early, s), "out_of_range").count == 24


def test_bad_edits_made_in_code_are_caught(schema: Schema, clean: pl.DataFrame) -> None:
    s = Schema.from_dict(schema.to_dict())
    s["age"].max = "old"
    with pytest.raises(InvalidInput, match="Schema column 'age': max applies to numbers"):
        validate(clean, s)
    s["age"].max = 120
    s.thresholds.new_value_share = 5
    with pytest.raises(InvalidInput, match="new_value_share must be a number in"):
        validate(clean, s)


def test_missing_column_suggests_the_renamed_one():
    import polars as pl

    from loopwise.data.schema_inference import infer_schema
    from loopwise.data.validation import validate

    frame = pl.DataFrame({"mean_texture": [1.0, 2.0, 3.0] * 20, "other": list(range(60))})
    report = validate(frame.rename({"mean_texture": "texture_mean"}), infer_schema(frame))
    missing = [a for a in report.anomalies if a.kind == "missing_column"]
    assert "renamed to 'texture_mean'" in missing[0].message


# -- the cheap first pass: exact counts only where it found something ----------------------


def _key_schema(dtype: pl.DataType) -> Schema:
    s = infer_schema(pl.DataFrame({"k": pl.Series(range(100), dtype=dtype), "x": [1.0] * 100}))
    s.keys = [["k"]]
    return s


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        (pl.Int64, list(range(-500, 500))),  # negative: offsets from the minimum
        (pl.Int64, [i * 10_000 for i in range(1000)]),  # a range too wide for a bitmap
        (pl.Int64, [-(2**62) + i for i in range(1000)]),
        (pl.Int8, [i % 256 - 128 for i in range(1000)]),
        (pl.UInt8, [i % 256 for i in range(1000)]),
        (pl.UInt64, [2**64 - 1 - i for i in range(1000)]),
        (pl.Int32, [(i * 7919) % 1000 + 3 for i in range(1000)]),
        (pl.Int64, [None, None, *range(998)]),  # nulls share a key too
        (pl.Int64, [None, *range(999)]),
    ],
)
def test_duplicate_keys_counted_exactly_for_integer_keys(dtype: pl.DataType, values) -> None:
    frame = pl.DataFrame({"k": pl.Series(values, dtype=dtype), "x": [1.0] * len(values)})
    want = frame.select(pl.col("k").is_duplicated().sum()).item()
    found = [a for a in validate(frame, _key_schema(dtype)).anomalies if a.kind == "duplicate_key"]
    assert [a.count for a in found] == ([want] if want else [])
    unique = frame.unique("k", keep="first", maintain_order=True)
    assert "duplicate_key" not in kinds(validate(unique, _key_schema(dtype)))


def test_duplicate_keys_of_text_and_compound_keys(schema: Schema, clean: pl.DataFrame) -> None:
    s = Schema.from_dict(schema.to_dict())
    s.keys = [["customer_id"], ["plan", "country"]]
    report = validate(clean, s)
    counts = {a.column: a.count for a in report.anomalies if a.kind == "duplicate_key"}
    pairs = clean.select(pl.struct("plan", "country").is_duplicated().sum()).item()
    assert counts == {"plan, country": pairs}
    copied = clean.with_columns(
        customer_id=pl.when(pl.int_range(pl.len()) < 4).then(pl.lit("x")).otherwise("customer_id")
    )
    found = [a for a in validate(copied, s).anomalies if a.column == "customer_id"]
    assert [(a.kind, a.count, a.examples) for a in found] == [("duplicate_key", 4, ["x"])]


@pytest.mark.parametrize("dtype", [pl.String, pl.Categorical, pl.Enum(["a", "b", "c", "zz"])])
def test_values_outside_the_domain_are_counted_exactly(dtype: pl.DataType) -> None:
    s = infer_schema(pl.DataFrame({"c": ["a", "b", "c"] * 400}))
    frame = pl.DataFrame({"c": pl.Series(["a", "b", "c"] * 390 + ["zz"] * 30, dtype=dtype)})
    anomaly = find(validate(frame, s), "new_value")
    assert (anomaly.count, anomaly.examples, anomaly.severity) == (30, ["zz"], "error")
    assert "30 values of 'c' (2.50%) are outside its domain: 'zz' (30)" in anomaly.message
    inside = pl.DataFrame({"c": pl.Series(["a", "b", "c", "a"] * 300, dtype=dtype)})
    assert validate(inside, s).anomalies == []
    one = pl.DataFrame({"c": pl.Series(["b"] * 1200, dtype=dtype)})
    pinned = find(validate(one, s), "pinned_value")
    assert (pinned.count, pinned.examples) == (1200, ["b"])


def test_pandas_nan_is_missing_like_a_polars_null(schema: Schema, clean: pl.DataFrame) -> None:
    holes = clean.with_columns(
        score=pl.when(pl.int_range(pl.len()) % 4 == 0).then(None).otherwise("score"),
        tenure=pl.when(pl.int_range(pl.len()) % 3 == 0).then(float("nan")).otherwise("tenure"),
    )
    polars_report = validate(holes, schema)
    missing = holes.select(pl.col("tenure").is_null() | pl.col("tenure").is_nan()).sum().item()
    counts = {a.column: a.count for a in polars_report.anomalies}
    assert counts == {"score": 250, "tenure": missing}
    pandas_report = validate(holes.to_pandas(), schema)  # NaN in both columns in pandas
    assert pandas_report.anomalies == polars_report.anomalies
    for name in ("score", "tenure"):  # (pandas has no date type: signup's dtype differs)
        assert pandas_report.columns[name] == polars_report.columns[name]


# -- severities: empty batches, per-schema overrides, errors above a share -----------------


def test_an_empty_batch_is_an_error_unless_the_schema_allows_it(
    schema: Schema, clean: pl.DataFrame
) -> None:
    empty = validate(clean.head(0), schema)
    assert [(a.kind, a.severity) for a in empty.anomalies] == [("empty_data", "error")]
    assert not empty.ok
    assert "allow_empty: true" in empty.anomalies[0].message
    allowing = Schema.from_dict({**schema.to_dict(), "allow_empty": True})
    allowed = validate(clean.head(0), allowing)
    assert [(a.kind, a.severity) for a in allowed.anomalies] == [("empty_data", "warning")]
    assert allowed.ok


def test_many_duplicate_rows_are_an_error(schema: Schema, clean: pl.DataFrame) -> None:
    few = validate(pl.concat([clean, clean.head(30)]), schema)  # 2.9%
    assert find(few, "duplicate_rows").severity == "warning"
    many = validate(pl.concat([clean, clean.head(250)]), schema)  # 20%
    anomaly = find(many, "duplicate_rows")
    assert (anomaly.severity, anomaly.count) == ("error", 250)
    assert "An error above 5% of rows" in anomaly.message
    lenient = Schema.from_dict(schema.to_dict())
    lenient.thresholds.duplicate_error_share = 0.5
    report = validate(pl.concat([clean, clean.head(250)]), lenient)
    assert find(report, "duplicate_rows").severity == "warning"


def test_a_common_placeholder_is_an_error(schema: Schema, clean: pl.DataFrame) -> None:
    rare = validate(_some(clean, "score", -1.0, every=50), schema)  # 2%
    assert find(rare, "suspicious_default").severity == "warning"
    common = validate(_some(clean, "score", -1.0, every=4), schema)  # 25%
    anomaly = find(common, "suspicious_default")
    assert (anomaly.column, anomaly.severity) == ("score", "error")
    assert "An error above 10% of rows" in anomaly.message


def test_the_schema_sets_the_severity_of_a_kind(schema: Schema, clean: pl.DataFrame) -> None:
    strict = Schema.from_dict(schema.to_dict())
    strict.severity = {"duplicate_rows": "error", "unexpected_column": "error"}
    report = validate(pl.concat([clean, clean.head(30)]).with_columns(extra=pl.lit(1)), strict)
    severities = {a.kind: a.severity for a in report.anomalies}
    assert severities["duplicate_rows"] == severities["unexpected_column"] == "error"
    lenient = Schema.from_dict(schema.to_dict())
    lenient.severity = {"out_of_range": "warning", "new_value": "error"}
    report = validate(_some(_some(clean, "age", -999), "country", "Gb", every=500), lenient)
    assert find(report, "out_of_range").severity == "warning"
    assert find(report, "new_value").severity == "error"  # below new_value_share, as set
    lenient.severity = {"new_value": "warning"}
    above = validate(CRAFTED["new_value"](clean), lenient)  # above the share: still an error
    assert find(above, "new_value").severity == "error"
