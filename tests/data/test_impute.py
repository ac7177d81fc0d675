"""Imputation: values filled, every fill flagged, the same fill reusable for serving."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import polars as pl
import pytest

from loopwise.data.impute import ImputeResult, impute
from loopwise.data.schema_inference import infer_schema
from loopwise.errors import InvalidInput


@pytest.fixture
def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "n": [1, None, 3, 4, 10],
            "x": [1.0, float("nan"), None, 2.0, 6.0],
            "s": ["a", None, "b", "a", "c"],
            "d": [dt.date(2020, 1, 1), None, dt.date(2020, 1, 1), dt.date(2021, 1, 1), None],
            "full": [1, 2, 3, 4, 5],
        }
    )


def test_median_fills_and_flags(frame: pl.DataFrame) -> None:
    result = impute(frame)
    assert result.fill_values == {"n": 4, "x": 2.0, "s": "a", "d": dt.date(2020, 1, 1)}
    assert result.strategies == {
        "n": "median",
        "x": "median",
        "s": "most_frequent",
        "d": "most_frequent",
    }
    data = result.data
    assert data.columns == [*frame.columns, *result.indicators]
    assert result.indicators == [
        "n__was_missing",
        "x__was_missing",
        "s__was_missing",
        "d__was_missing",
    ]
    assert data["n"].to_list() == [1, 4, 3, 4, 10]
    assert data["n"].dtype == pl.Int64
    assert data["x"].to_list() == [1.0, 2.0, 2.0, 2.0, 6.0]  # NaN counts as missing
    assert data["x__was_missing"].to_list() == [False, True, True, False, False]
    assert data["s"].null_count() == 0
    assert data["d__was_missing"].to_list() == [False, True, False, False, True]
    assert "full__was_missing" not in data.columns


def test_mean_rounds_integers(frame: pl.DataFrame) -> None:
    result = impute(frame, strategy="mean", columns=["n", "x"])
    assert result.fill_values == {"n": 4, "x": 3.0}
    assert list(result.fill_values) == ["n", "x"]


def test_most_frequent_breaks_ties_by_smallest(frame: pl.DataFrame) -> None:
    result = impute(frame, strategy="most_frequent", columns=["n"])
    assert result.fill_values == {"n": 1}


def test_constant_scalar_and_mapping(frame: pl.DataFrame) -> None:
    mapping = {"n": -1, "x": 0.0, "s": "missing", "d": "1999-12-31"}
    result = impute(frame, strategy="constant", fill_value=mapping)
    assert result.data["s"].to_list() == ["a", "missing", "b", "a", "c"]
    assert result.data["d"][1] == dt.date(1999, 12, 31)
    only_numbers = impute(frame, strategy="constant", fill_value=0, columns=["n", "x"])
    assert only_numbers.data["x"].to_list() == [1.0, 0.0, 0.0, 2.0, 6.0]


def test_same_fill_applies_to_serving_data(frame: pl.DataFrame) -> None:
    result = impute(frame)
    serving = pl.DataFrame(
        {"n": [None, 7], "x": [5.0, None], "s": [None, "z"], "d": [None, None], "full": [1, 2]},
        schema=frame.schema,
    )
    filled = result.apply(serving)
    assert filled["n"].to_list() == [4, 7]
    assert filled["x"].to_list() == [5.0, 2.0]
    assert filled["d__was_missing"].to_list() == [True, True]
    saved = ImputeResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert saved.apply(serving).equals(filled)


def test_schema_chooses_columns_so_indicators_are_stable() -> None:
    train = pl.DataFrame(
        {"id": list(range(40)), "a": [1.0, None] * 20, "b": [1.0] * 40, "y": [0, 1] * 20}
    )
    schema = infer_schema(train, target="y")
    batch = pl.DataFrame({"id": [100, 101], "a": [2.0, 3.0], "b": [None, 1.0], "y": [0, 1]})
    result = impute(batch, schema, strategy="constant", fill_value=0.0)
    # a: nullable in the schema, flagged though this batch has no nulls; b: has nulls here
    assert result.indicators == ["a__was_missing", "b__was_missing"]
    assert result.data["b"].to_list() == [0.0, 1.0]


def test_pandas_in_polars_out_with_to_pandas(frame: pl.DataFrame) -> None:
    result = impute(frame.to_pandas(), columns=["x"])
    assert isinstance(result.data, pl.DataFrame)
    out = result.to_pandas()
    assert isinstance(out, pd.DataFrame)
    assert out["x__was_missing"].tolist() == [False, True, True, False, False]


def test_nothing_missing_nothing_added(frame: pl.DataFrame) -> None:
    result = impute(frame.select("full"))
    assert result.fill_values == {}
    assert result.data.equals(frame.select("full"))
    empty = impute(frame.head(0))
    assert empty.data.height == 0


def test_unicode_names() -> None:
    result = impute(pl.DataFrame({"größe": [1.0, None, 3.0]}))
    assert result.data.columns == ["größe", "größe__was_missing"]


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"strategy": "zero"}, "'strategy' parameter of impute must be one of"),
        ({"strategy": "constant"}, "needs fill_value"),
        ({"fill_value": 0}, "only used with strategy='constant'"),
        ({"columns": ["nope"]}, r"columns \['nope'\] are not in the data"),
        ({"columns": "n"}, "must be a list of column names"),
        (
            {"strategy": "constant", "fill_value": "text", "columns": ["n"]},
            "does not fit column 'n'",
        ),
        ({"strategy": "constant", "fill_value": {"n": 1}, "columns": ["n", "x"]}, "no value for"),
        ({"schema": {"a": 1}}, "schema must be a Schema"),
    ],
)
def test_bad_arguments(frame: pl.DataFrame, kwargs: dict, text: str) -> None:
    with pytest.raises(InvalidInput, match=text):
        impute(frame, **kwargs)


def test_all_missing_column_needs_a_constant() -> None:
    frame = pl.DataFrame({"a": [None, None]}, schema={"a": pl.Float64})
    with pytest.raises(InvalidInput, match="column 'a' has no values to compute a median"):
        impute(frame)
    assert impute(frame, strategy="constant", fill_value=0.0).data["a"].to_list() == [0.0, 0.0]


def test_indicator_name_clash(frame: pl.DataFrame) -> None:
    clash = frame.with_columns(pl.lit(True).alias("n__was_missing"))
    with pytest.raises(InvalidInput, match="already has columns with those names"):
        impute(clash, columns=["n"])


def test_serving_data_without_a_fitted_column(frame: pl.DataFrame) -> None:
    result = impute(frame)
    with pytest.raises(InvalidInput, match=r"columns \['s'\] are not in the data"):
        result.apply(frame.drop("s"))
    with pytest.raises(InvalidInput, match="format_version"):
        ImputeResult.from_dict({"fill_values": {}})
