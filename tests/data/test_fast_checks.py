"""The cheaper kernels of validation answer exactly what the obvious Polars calls answer."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from loopwise.data import fast_checks
from loopwise.data.schema_inference import infer_schema
from loopwise.data.validation import _TEXT_RAW, validate


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        (pl.Int64, list(range(1000))),  # dense: the bitmap
        (pl.Int64, list(range(-500, 500))),  # negative: offsets from the minimum
        (pl.Int64, [k * 10_000_000 + i for k in range(4) for i in range(250)]),  # sparse
        (pl.Int64, [k * 10_000_000 + i % 200 for k in range(4) for i in range(250)]),
        (pl.Int64, [-(2**62) + i * 2**40 for i in range(1000)]),
        (pl.UInt64, [2**64 - 1 - i * 2**50 for i in range(1000)]),
        (pl.UInt64, [2**64 - 1, 0, 2**64 - 1, 5]),
        (pl.Int8, [i % 256 - 128 for i in range(1000)]),
        (pl.Int32, [(i * 7919) % 1000 * 100_000 for i in range(1000)]),
        (pl.Int64, [7]),
        (pl.Int64, []),
    ],
)
def test_distinct_integers_match_polars(dtype: pl.DataType, values: list[int]) -> None:
    series = pl.Series(values, dtype=dtype)
    low, high = (series.min(), series.max()) if values else (0, 0)
    want = series.n_unique() if values else 0
    assert fast_checks.count_distinct_integers(series, low, high) == want


def test_distinct_hashes_reach_the_rows_only_when_the_keys_are_distinct() -> None:
    rows = 5000
    frame = pl.DataFrame(
        {
            "text": [f"cust-{i:09d}" for i in range(rows)],
            "repeated": [f"cust-{i % 4999:09d}" for i in range(rows)],
            "nulls": [None, None, *(f"c{i}" for i in range(rows - 2))],
            "a": [i % 100 for i in range(rows)],
            "b": [i // 100 for i in range(rows)],
            "zero": [0.0, -0.0] + [float(i) for i in range(2, rows)],  # 0.0 equals -0.0
        }
    )
    assert fast_checks.distinct_hashes(frame, ["text"]) == rows
    assert fast_checks.distinct_hashes(frame, ["repeated"]) < rows
    assert fast_checks.distinct_hashes(frame, ["nulls"]) < rows
    assert fast_checks.distinct_hashes(frame, ["a", "b"]) == rows
    assert fast_checks.distinct_hashes(frame, ["a"]) == 100
    assert fast_checks.distinct_hashes(frame, ["zero"]) < rows
    assert fast_checks.distinct_hashes(frame.head(0), ["text"]) == 0


@pytest.mark.parametrize(
    ("values", "distinct"),
    [
        ([1.0, 2.0, 3.0], True),
        ([1.0, float("nan"), 3.0], True),
        ([1.0, float("nan"), float("nan")], False),  # NaN equals NaN in a row
        ([0.0, -0.0, 1.0], False),  # never "distinct" where Polars might see a repeat
        ([3, 1, 2, 3], False),
        ([3, 1, 2, 4], True),
        ([1.0, None, 2.0], True),
        ([None, None, 2.0], False),
        (["a", "b", "a"], False),
        (["a", "b", "c"], True),
        ([5], True),
    ],
)
def test_all_distinct(values: list, distinct: bool) -> None:
    assert fast_checks.all_distinct(pl.Series(values)) is distinct


def test_all_distinct_on_a_large_float_column_agrees_with_polars() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=100_000)
    assert fast_checks.all_distinct(pl.Series(values)) is True
    values[17] = values[99_000]
    assert fast_checks.all_distinct(pl.Series(values)) is False


TRICKY = [
    "N/A",
    " n/a ",
    "\u00a0NULL\u2003",  # no-break space, em space
    "UN\u212aNOWN",  # a Kelvin sign lower-cases to "k"
    " UN\u212aNOWN ",
    "",
    "   ",
    "?",
    "-",
    "1900-01-01",
    "  1970-01-01  ",
    "NaN",
    "nan\t",
    "None",
    "\u3000na\u3000",
    "\u0085none\u0085",
    "cust-000000001",
    "New York",
    "x" * 20,
    " " * 17 + "na",  # longer than 16 bytes: not counted
    "\u0130",
    "NULL\n",
    "n/a\u200b",  # a zero-width space is not whitespace
]


def test_placeholder_counts_match_stripping_and_lowercasing_every_value() -> None:
    frame = pl.DataFrame({"t": TRICKY * 3})
    t = pl.col("t")
    short = t.filter(t.str.len_bytes() <= 16).str.strip_chars().str.to_lowercase()
    want = frame.select(short.filter(short.is_in(_TEXT_RAW)).alias("value").value_counts())
    got = frame.select(fast_checks.placeholder_counts(t, _TEXT_RAW, 16).explode().alias("value"))
    assert got.unnest("value").sort("value").equals(want.unnest("value").sort("value"))
    assert got.height == len(_TEXT_RAW)


def test_only_the_kelvin_sign_lowercases_into_ascii() -> None:
    """placeholder_lengths relies on it: scanned over Unicode with Polars' own lower-casing."""
    points = [p for p in range(0x80, 0x110000) if not 0xD800 <= p <= 0xDFFF]
    chars = pl.Series([chr(p) for p in points])
    lowered = chars.str.to_lowercase()
    ascii = lowered.str.len_bytes() == lowered.str.len_chars()
    into_ascii = chars.filter((lowered != chars) & ascii)
    assert into_ascii.to_list() == ["\u212a"]
    assert fast_checks.placeholder_lengths(["unknown", "n/a"]) == [0, 3, 7, 9]
    assert fast_checks.placeholder_lengths(_TEXT_RAW) == [0, 1, 2, 3, 4, 7, 9, 10]


def test_a_sparse_integer_key_is_settled_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four blocks of ids ten million apart (too wide for a bitmap) need no second pass
    over the data to be found distinct (it used to count the rows sharing a key)."""
    rows = 4000

    def ids(start: int) -> list[int]:
        return [start + k * 10_000_000 + i for k in range(4) for i in range(rows // 4)]

    reference = pl.DataFrame({"id": ids(0), "x": np.linspace(1.0, 2.0, rows)})
    schema = infer_schema(reference)
    assert schema.keys == [["id"]]
    batch = pl.DataFrame({"id": ids(rows), "x": np.linspace(1.0, 2.0, rows)})
    calls = []
    select = pl.DataFrame.select

    def counted(self: pl.DataFrame, *args, **kwargs):
        calls.append(1)
        return select(self, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "select", counted)
    report = validate(batch, schema)
    assert report.anomalies == []
    assert len(calls) == 1
    repeated = batch.with_columns(id=pl.when(pl.int_range(pl.len()) < 3).then(7).otherwise("id"))
    found = [(a.kind, a.count) for a in validate(repeated, schema).anomalies]
    assert ("duplicate_key", 3) in found
