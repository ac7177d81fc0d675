"""Converting user data to Polars: pandas frames column by column, as pl.from_pandas would."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from loopwise.data import frames
from loopwise.data.frames import convert, to_polars
from loopwise.errors import InvalidInput


def every_dtype(n: int) -> pd.DataFrame:
    i = np.arange(n)
    text = [None if k % 7 == 0 else f"value {k}" for k in range(n)]
    return pd.DataFrame(
        {
            "int": i,
            "float": np.where(i % 5 == 0, np.nan, i / 3),
            "float32": (i / 4 + 0.5).astype(np.float32),
            "float16": (i % 1000).astype(np.float16),
            "bool": i % 2 == 0,
            "uint8": (i % 256).astype(np.uint8),
            "str": pd.Series(text, dtype="str"),
            "str_python": pd.Series(text, dtype="string[python]"),
            "str_arrow": pd.Series(
                [f"a longer text than twelve bytes {k}" for k in i], dtype="string[pyarrow]"
            ),
            "large_string": pd.Series(text, dtype=pd.ArrowDtype(pa.large_string())),
            "arrow_int": pd.Series(i, dtype=pd.ArrowDtype(pa.int32())),
            "category": pd.Categorical([f"c{k % 3}" for k in i]),
            "datetime": pd.date_range("2024-01-01", periods=n, freq="h"),
            "datetime_tz": pd.date_range("2024-01-01", periods=n, freq="h", tz="Europe/Paris"),
            "timedelta": pd.to_timedelta(i, unit="s"),
            "Int64": pd.array([None if k % 4 == 0 else k for k in range(n)], dtype="Int64"),
            "Float64": pd.array([None if k % 4 == 0 else k / 2 for k in range(n)], dtype="Float64"),
            "boolean": pd.array(
                [None if k % 3 == 0 else k % 2 == 0 for k in range(n)], dtype="boolean"
            ),
            "dates": [dt.date(2024, 1, 1) + dt.timedelta(days=int(k)) for k in i],
        }
    )


@pytest.mark.parametrize("rows", [0, 1, 50, 120_000])
def test_pandas_converts_as_pl_from_pandas_does(rows: int) -> None:
    data = every_dtype(rows)
    converted = convert(data)
    got = converted.frame
    want = pl.from_pandas(data, include_index=False)
    assert got.schema == want.schema
    assert got.equals(want, null_equal=True)
    floats = {n for n, s in data.items() if s.dtype in (np.float32, np.float64)}
    assert converted.nan_free == floats  # with no rows, pandas makes the dates column float
    # the min and max found while converting, but for a column with NaN, or a min of 0
    assert set(converted.bounds) == ({"float32"} if rows else set())
    for name, (low, high) in converted.bounds.items():
        assert (low, high) == (got[name].min(), got[name].max())
    assert got["float"].null_count() == (rows + 4) // 5
    assert not got["float"].is_nan().any()


def test_pandas_frames_of_every_shape() -> None:
    cases = [
        pd.DataFrame(),
        pd.DataFrame(index=range(5)),  # rows, no columns
        pd.DataFrame({"a": [1.0, np.nan, 3.0]}, index=[10, 20, 30]),
        pd.DataFrame(np.arange(20.0).reshape(5, 4), columns=list("abcd")),
        pd.DataFrame({0: [1.0, np.nan], 1: ["a", None]}),  # names made text
        pd.concat([pd.DataFrame({"s": pd.Series(["a", None], dtype="str")})] * 2),  # chunks
    ]
    for data in cases:
        got = to_polars(data)
        want = pl.from_pandas(data.rename(columns=str), include_index=False)
        assert got.schema == want.schema
        assert got.equals(want, null_equal=True)
    series = to_polars(pd.Series([1.0, np.nan], name="x"))
    assert series.to_dict(as_series=False) == {"x": [1.0, None]}


def test_pandas_frames_that_cannot_convert_directly() -> None:
    mixed = to_polars(pd.DataFrame({"x": [1, "two", 3.5, None], "y": [1.0, 2.0, 3.0, 4.0]}))
    assert mixed.schema == pl.Schema({"x": pl.String, "y": pl.Float64})
    assert mixed["x"].to_list() == ["1", "two", "3.5", None]
    with pytest.raises(InvalidInput, match="duplicate column names"):
        to_polars(pd.DataFrame([[1, 2]], columns=["a", "a"]))


def test_only_pandas_floats_are_known_nan_free() -> None:
    polars_frame = pl.DataFrame({"x": [1.0, float("nan")]})
    for data in (polars_frame, polars_frame.to_arrow(), polars_frame.lazy()):
        assert (convert(data).nan_free, convert(data).bounds) == (set(), {})
    extension = pd.DataFrame({"x": pd.array([1.0, None], dtype="Float64"), "y": [1.0, 2.0]})
    assert (convert(extension).nan_free, convert(extension).bounds) == ({"y"}, {"y": (1.0, 2.0)})


@pytest.mark.parametrize(
    ("values", "bounds"),
    [
        ([3.5, -2.0, 7.25], (-2.0, 7.25)),
        ([np.inf, -np.inf, 1.0], (-np.inf, np.inf)),
        ([np.nan, 1.0], None),  # NaN became null: Polars finds them
        ([0.0, -0.0, 1.0], None),  # 0.0 or -0.0: as Polars finds it
        ([-1.0, -0.0], None),
    ],
)
def test_float_bounds_found_while_converting(values, bounds) -> None:
    for dtype in (np.float64, np.float32):
        converted = convert(pd.DataFrame({"x": np.array(values, dtype=dtype)}))
        assert converted.bounds.get("x") == bounds
        assert converted.nan_free == {"x"}
        assert not converted.frame["x"].is_nan().any()


def test_the_thread_pool_is_remade_in_a_forked_child(monkeypatch) -> None:
    pool = frames._pool()
    assert pool is not None
    assert frames._pool() is pool
    monkeypatch.setattr(frames.os, "getpid", lambda: -1)
    assert frames._pool() is not pool
