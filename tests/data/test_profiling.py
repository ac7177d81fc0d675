"""Tests for loopwise.data.profiling: exact figures on crafted frames, every input form,
the awkward columns (empty, all-null, nested, time zones), strict-JSON round trips, and a
1,000,000-row smoke run."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from loopwise.data.profiles import Profile
from loopwise.data.profiling import QUANTILES, profile, profile_frame_summary
from loopwise.errors import InvalidInput

INF = float("inf")
NAN = float("nan")


@pytest.fixture
def crafted() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "i": [3, -1, 0, 9999, None, 3, 99999, 999999, -999, -9999, 0, 3],
            "f": [1.5, NAN, INF, -1.0, None, 0.0, 2.25, -INF, 9999.0, 0.0, 7.0, -3.5],
            "s": ["a", " na ", "", None, "a", "Unknown", "N/A", "null", "None", "?", "-", "é"],
            "b": [True, False, None, True, True, False, True, True, True, False, True, True],
            "d": [
                date(1970, 1, 1),
                date(2020, 5, 1),
                None,
                date(1900, 1, 1),
                date(2021, 1, 1),
                date(2020, 5, 1),
                date(2020, 5, 1),
                date(1900, 1, 1),
                date(2022, 2, 2),
                date(2023, 3, 3),
                date(2024, 4, 4),
                date(2025, 5, 5),
            ],
        }
    )


def finite_values(series: pl.Series) -> np.ndarray:
    values = series.drop_nulls().cast(pl.Float64).to_numpy()
    return values[np.isfinite(values)]


def test_integer_column_figures(crafted: pl.DataFrame) -> None:
    c = profile(crafted).columns["i"]
    values = finite_values(crafted["i"])
    assert (c.dtype, c.kind, c.count, c.nulls, c.distinct) == ("Int64", "integer", 11, 1, 8)
    assert not c.distinct_is_approximate
    assert (c.min, c.max) == (-9999, 999999)
    assert isinstance(c.min, int)
    assert c.mean == pytest.approx(values.mean())
    assert c.std == pytest.approx(values.std(ddof=1))
    assert c.zeros == 2
    expected = np.quantile(values, QUANTILES)
    assert list(c.quantiles) == [str(q) for q in QUANTILES]
    assert list(c.quantiles.values()) == pytest.approx(list(expected))
    counts, edges = np.histogram(values, bins=20)
    assert c.histogram.counts == counts.tolist()
    assert c.histogram.edges == pytest.approx(edges.tolist())
    assert sum(c.histogram.counts) == 11
    # 8 distinct values (at most 50): top values by count, then value.
    assert c.top_values[:3] == [(3, 3), (0, 2), (-9999, 1)]
    assert len(c.top_values) == 8
    assert c.suspicious_defaults == {
        "-1": 1,
        "9999": 1,
        "99999": 1,
        "999999": 1,
        "-999": 1,
        "-9999": 1,
    }


def test_float_column_nan_is_null_and_infinities_are_values(crafted: pl.DataFrame) -> None:
    c = profile(crafted).columns["f"]
    values = finite_values(crafted["f"])
    assert (c.kind, c.count, c.nulls) == ("float", 10, 2)  # NaN + None
    assert c.distinct == 9  # 0.0 twice; both infinities count
    assert (c.min, c.max) == (-3.5, 9999.0)  # finite values only
    assert c.mean == pytest.approx(values.mean())
    assert c.std == pytest.approx(values.std(ddof=1))
    assert list(c.quantiles.values()) == pytest.approx(list(np.quantile(values, QUANTILES)))
    counts, _edges = np.histogram(values, bins=20)
    assert c.histogram.counts == counts.tolist()
    assert sum(c.histogram.counts) == len(values) == 8
    assert c.zeros == 2
    assert c.suspicious_defaults == {"-1.0": 1, "9999.0": 1}
    assert c.top_values == []


def test_string_column_figures(crafted: pl.DataFrame) -> None:
    c = profile(crafted).columns["s"]
    assert (c.kind, c.count, c.nulls, c.distinct) == ("string", 11, 1, 10)
    assert c.min is None
    assert c.mean is None
    assert c.histogram is None
    assert c.zeros is None
    assert c.top_values[0] == ("a", 2)
    assert c.top_values[1:4] == [("", 1), (" na ", 1), ("-", 1)]  # ties by value
    lengths = [len(v) for v in crafted["s"].drop_nulls().to_list()]
    assert c.string_length == {
        "min": min(lengths),
        "max": max(lengths),
        "mean": pytest.approx(sum(lengths) / len(lengths)),
    }
    assert c.suspicious_defaults == {
        "''": 1,
        "'NA'": 1,  # " na ": stripped, any case
        "'N/A'": 1,
        "'null'": 1,
        "'None'": 1,
        "'unknown'": 1,
        "'?'": 1,
        "'-'": 1,
    }


def test_text_placeholders_for_dates_in_strings_and_categoricals() -> None:
    frame = pl.DataFrame(
        {
            "s": ["1900-01-01", "1970-01-01", " 1970-01-01 ", "NAN", "x"],
            "c": pl.Series(["NA", "n/a", "x", "x", None], dtype=pl.Categorical),
            "e": pl.Series(["unknown", "b", "b", "b", "b"], dtype=pl.Enum(["b", "unknown"])),
        }
    )
    columns = profile(frame).columns
    assert columns["s"].suspicious_defaults == {"'1900-01-01'": 1, "'1970-01-01'": 2, "'nan'": 1}
    assert columns["c"].kind == "categorical"
    assert columns["c"].suspicious_defaults == {"'NA'": 1, "'N/A'": 1}
    assert columns["c"].top_values == [("x", 2), ("NA", 1), ("n/a", 1)]
    assert columns["c"].string_length is None
    assert columns["e"].kind == "categorical"
    assert columns["e"].top_values == [("b", 4), ("unknown", 1)]
    assert columns["e"].suspicious_defaults == {"'unknown'": 1}


def test_boolean_and_date_columns(crafted: pl.DataFrame) -> None:
    columns = profile(crafted).columns
    b = columns["b"]
    assert (b.kind, b.count, b.nulls, b.distinct) == ("boolean", 11, 1, 2)
    assert b.top_values == [(True, 8), (False, 3)]
    assert b.mean == pytest.approx(8 / 11)
    assert b.min is None
    assert b.quantiles is None
    assert b.suspicious_defaults == {}
    d = columns["d"]
    assert (d.kind, d.count, d.nulls, d.distinct) == ("date", 11, 1, 8)
    assert (d.min, d.max) == ("1900-01-01", "2025-05-05")
    assert d.suspicious_defaults == {"1900-01-01": 2, "1970-01-01": 1}
    assert d.mean is None
    assert d.histogram is None


def test_integer_top_values_only_for_few_distinct_values() -> None:
    frame = pl.DataFrame({"few": [i % 50 for i in range(200)], "many": list(range(200))})
    columns = profile(frame, top_k=3).columns
    assert columns["few"].top_values == [(0, 4), (1, 4), (2, 4)]
    assert columns["many"].top_values == []
    assert profile(frame, top_k=0).columns["few"].top_values == []


def test_unsigned_and_small_integers_skip_impossible_placeholders() -> None:
    frame = pl.DataFrame(
        {
            "u8": pl.Series([0, 1, 255], dtype=pl.UInt8),
            "i8": pl.Series([-1, -1, 5], dtype=pl.Int8),
            "u32": pl.Series([9999, 1, 2], dtype=pl.UInt32),
        }
    )
    columns = profile(frame).columns
    assert columns["u8"].suspicious_defaults == {}
    assert columns["u8"].zeros == 1
    assert columns["i8"].suspicious_defaults == {"-1": 2}
    assert columns["u32"].suspicious_defaults == {"9999": 1}


def test_histogram_matches_numpy_on_integer_edges() -> None:
    # Integer values fall exactly on bin edges, where numpy's rule (left edge in, last bin
    # closed) decides; the profile must bin them the same way.
    rng = np.random.default_rng(7)
    values = rng.integers(0, 11, 1000)
    for bins in (3, 7, 20):
        h = profile(pl.DataFrame({"x": values}), bins=bins).columns["x"].histogram
        counts, edges = np.histogram(values, bins=bins)
        assert h.counts == counts.tolist()
        assert h.edges == edges.tolist()


def test_constant_and_all_infinite_columns() -> None:
    frame = pl.DataFrame({"k": [2.5] * 4, "inf": [INF, -INF, None, INF]})
    columns = profile(frame).columns
    k = columns["k"]
    assert k.histogram.edges == [2.5, 2.5]
    assert k.histogram.counts == [4]
    assert k.std == 0.0
    assert k.distinct == 1
    assert k.quantiles["0.5"] == 2.5
    inf = columns["inf"]
    assert (inf.count, inf.nulls, inf.distinct) == (3, 1, 2)
    assert inf.min is None
    assert inf.mean is None
    assert inf.histogram is None
    assert inf.quantiles is None


def test_single_value_has_no_sample_std() -> None:
    c = profile(pl.DataFrame({"x": [4.0]})).columns["x"]
    assert c.mean == 4.0
    assert c.std is None


def test_every_input_form_gives_the_same_profile(tmp_path) -> None:
    frame = pl.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "x": [0.5, None, 2.0, -1.0, 9999.0, 3.25],
            "s": ["a", "b", None, "NA", "a", "c"],
            "flag": [True, False, True, True, False, True],
        }
    )
    parquet, csv = tmp_path / "d.parquet", tmp_path / "d.csv"
    frame.write_parquet(parquet)
    frame.write_csv(csv)
    expected = profile(frame)
    assert profile(frame.to_pandas()) == expected
    assert profile(frame.to_arrow()) == expected
    assert profile(frame.lazy()) == expected
    assert profile(parquet) == expected
    assert profile(str(csv)) == expected


def test_pandas_nan_and_polars_nan_profile_alike() -> None:
    polars_frame = pl.DataFrame({"x": [1.0, NAN, 3.0, None]})
    pandas_frame = pd.DataFrame({"x": [1.0, np.nan, 3.0, np.nan]})
    assert profile(polars_frame) == profile(pandas_frame)


def test_mixed_type_pandas_column_is_profiled_as_text() -> None:
    frame = pd.DataFrame({"mixed": [1, "two", 3.5, None, "two"]})
    c = profile(frame).columns["mixed"]
    assert (c.kind, c.count, c.nulls, c.distinct) == ("string", 4, 1, 3)
    assert c.top_values[0] == ("two", 2)


def test_above_the_distinct_limit_only_hashed_kinds_are_approximate() -> None:
    n = 5000
    frame = pl.DataFrame(
        {
            "day": pl.date_range(date(2000, 1, 1), date(2000, 1, 1) + timedelta(n - 1), eager=True),
            "lists": [[i % 300] for i in range(n)],
            "x": np.arange(n) % 1000,
            "s": [f"v{i % 700}" for i in range(n)],
        }
    )
    exact = profile(frame).columns
    rough = profile(frame, exact_distinct_limit=100).columns
    assert not any(c.distinct_is_approximate for c in exact.values())
    assert (exact["day"].distinct, exact["lists"].distinct) == (n, 300)
    for name, truth in (("day", n), ("lists", 300)):
        assert rough[name].distinct_is_approximate
        assert rough[name].distinct == pytest.approx(truth, rel=0.05)
    # The sort and the value count already give exact figures for these.
    assert (rough["x"].distinct, rough["x"].distinct_is_approximate) == (1000, False)
    assert (rough["s"].distinct, rough["s"].distinct_is_approximate) == (700, False)


def test_empty_frame(crafted: pl.DataFrame) -> None:
    p = profile(crafted.head(0))
    assert p.rows == 0
    assert list(p.columns) == crafted.columns
    for c in p.columns.values():
        assert (c.count, c.nulls, c.distinct) == (0, 0, 0)
        assert c.min is None
        assert c.mean is None
        assert c.quantiles is None
        assert c.histogram is None
        assert c.top_values == []
        assert c.suspicious_defaults == {}
    assert p.columns["i"].zeros == 0
    assert profile(pl.DataFrame()) == Profile(rows=0, columns={})


def test_all_null_columns() -> None:
    frame = pl.DataFrame(
        {
            "null": [None, None, None],
            "f": pl.Series([None, None, None], dtype=pl.Float64),
            "nan": [NAN, NAN, None],
            "s": pl.Series([None, None, None], dtype=pl.String),
            "d": pl.Series([None, None, None], dtype=pl.Datetime("us", "UTC")),
        }
    )
    columns = profile(frame).columns
    assert columns["null"].dtype == "Null"
    assert columns["null"].kind == "other"
    for c in columns.values():
        assert (c.count, c.nulls, c.distinct) == (0, 3, 0)
        assert c.min is None
        assert c.mean is None
        assert c.histogram is None
        assert c.top_values == []
        assert c.suspicious_defaults == {}
        assert c.null_fraction == 1.0
    assert columns["f"].kind == "float"
    assert columns["f"].zeros == 0


def test_unicode_column_names() -> None:
    frame = pl.DataFrame({"température °C": [1.0, 2.0], "名前": ["a", "b"], "0:v": [1, 1]})
    p = profile(frame)
    assert list(p.columns) == ["température °C", "名前", "0:v"]
    assert p.columns["température °C"].mean == 1.5
    assert p.columns["名前"].distinct == 2
    assert p.columns["0:v"].distinct == 1
    assert Profile.from_dict(json.loads(json.dumps(p.to_dict(), allow_nan=False))) == p


def test_datetime_with_time_zone() -> None:
    moments = [
        datetime(1970, 1, 1, tzinfo=UTC),  # the epoch: 01:00 in Paris, still counted
        datetime(2024, 3, 1, 12, 30, tzinfo=UTC),
        datetime(1900, 1, 1, 5, tzinfo=UTC),
        None,
    ]
    series = pl.Series("t", moments, dtype=pl.Datetime("us", "UTC"))
    frame = pl.DataFrame({"t": series.dt.convert_time_zone("Europe/Paris")})
    c = profile(frame).columns["t"]
    assert c.kind == "datetime"
    assert c.dtype == "Datetime(time_unit='us', time_zone='Europe/Paris')"
    assert (c.count, c.nulls, c.distinct) == (3, 1, 3)
    assert datetime.fromisoformat(c.min) == moments[2]
    assert datetime.fromisoformat(c.max) == moments[1]
    assert c.max == "2024-03-01T13:30:00+01:00"
    assert c.suspicious_defaults == {"1900-01-01": 1, "1970-01-01": 1}


def test_other_kinds_get_counts_and_distinct() -> None:
    frame = pl.DataFrame(
        {
            "duration": [timedelta(1), None, timedelta(1), timedelta(2)],
            "list": [[1], [1], None, [2, 3]],
            "struct": [{"a": 1}, {"a": 2}, {"a": 1}, None],
            "binary": [b"x", b"y", b"x", b"x"],
            "decimal": pl.Series(["1.50", "2.25", None, "1.50"]).str.to_decimal(scale=2),
        }
    )
    columns = profile(frame).columns
    for name in ("duration", "list", "struct"):
        c = columns[name]
        assert (c.kind, c.count, c.nulls, c.distinct) == ("other", 3, 1, 2)
        assert c.min is None
        assert c.top_values == []
    assert columns["binary"].distinct == 2
    # Decimals are numbers: profiled as floats, dtype kept.
    dec = columns["decimal"]
    assert dec.kind == "float"
    assert dec.dtype.startswith("Decimal")
    assert (dec.min, dec.max, dec.distinct) == (1.5, 2.25, 2)


def test_strict_json_round_trip(crafted: pl.DataFrame) -> None:
    frame = crafted.with_columns(
        pl.Series("nested", [[1]] * crafted.height),
        pl.Series("dur", [timedelta(seconds=s) for s in range(crafted.height)]),
        pl.Series("only_inf", [INF] * crafted.height),
    )
    p = profile(frame)
    text = json.dumps(p.to_dict(), allow_nan=False)
    assert Profile.from_dict(json.loads(text)) == p
    assert Profile.from_dict(p.to_dict()) == p
    for c in p.columns.values():
        for value in (c.min, c.max, c.mean, c.std, *(c.quantiles or {}).values()):
            assert value is None or type(value) in (int, float, str)
            assert not (isinstance(value, float) and not math.isfinite(value))


def test_top_k_and_bins_are_respected() -> None:
    frame = pl.DataFrame({"s": [f"v{i % 30}" for i in range(300)], "x": list(range(300))})
    p = profile(frame, top_k=5, bins=4)
    assert len(p.columns["s"].top_values) == 5
    assert p.columns["s"].top_values[0] == ("v0", 10)
    assert p.columns["x"].histogram.counts == [75, 75, 75, 75]
    assert len(p.columns["x"].histogram.edges) == 5


@pytest.mark.parametrize(
    ("argument", "value"),
    [("bins", 0), ("top_k", -1), ("exact_distinct_limit", -5), ("bins", 2.5), ("bins", True)],
)
def test_bad_parameters_are_clear_errors(argument: str, value: object) -> None:
    with pytest.raises(InvalidInput, match=f"'{argument}' parameter of profile"):
        profile(pl.DataFrame({"x": [1]}), **{argument: value})


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="data to profile"):
        profile([1, 2, 3])


def test_frame_summary(crafted: pl.DataFrame) -> None:
    summary = profile_frame_summary(profile(crafted))
    assert isinstance(summary, pd.DataFrame)
    assert summary["column"].tolist() == crafted.columns
    row = summary.set_index("column").loc["i"]
    assert (row["kind"], row["count"], row["nulls"], row["distinct"]) == ("integer", 11, 1, 8)
    assert row["median"] == pytest.approx(np.quantile(finite_values(crafted["i"]), 0.5))
    assert summary.set_index("column").loc["s", "top_value"] == "a"
    assert summary.set_index("column").loc["s", "suspicious"] == 8


@pytest.mark.slow
def test_million_rows_by_twenty_columns_smoke() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    data: dict[str, object] = {f"f{i}": rng.normal(i, 1 + i, n) for i in range(12)}
    data |= {f"i{i}": rng.integers(0, 10 ** (i + 1), n) for i in range(4)}
    levels = np.array([f"level_{k}" for k in range(10)])
    data |= {f"s{i}": levels[rng.integers(0, 10, n)] for i in range(4)}
    frame = pl.DataFrame(data)
    started = time.perf_counter()
    p = profile(frame)
    elapsed = time.perf_counter() - started
    print(f"\nprofile of 1,000,000 rows x 20 columns: {elapsed * 1000:.0f} ms")
    assert p.rows == n
    assert len(p.columns) == 20
    assert p.columns["s0"].distinct == 10
    assert p.columns["i0"].top_values  # 10 distinct values
    json.dumps(p.to_dict(), allow_nan=False)


def test_arrow_table_with_chunks() -> None:
    table = pa.concat_tables([pa.table({"x": [1, 2]}), pa.table({"x": [2, None]})])
    c = profile(table).columns["x"]
    assert (c.count, c.nulls, c.distinct, c.min, c.max) == (3, 1, 2, 1, 2)
