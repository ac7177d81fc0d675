"""Signatures: inference from every input kind, canonical input, and the error messages."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import numpy as np
import pandas as pd
import polars as pl
import pytest

from loopwise.errors import InvalidInput
from loopwise.registry.signature import ColumnSpec, Signature, check_input, infer_signature

MIXED = pd.DataFrame(
    {
        "age": [30, 41],
        "income": [1.5, 2.0],
        "city": ["Oslo", "Lima"],
        "member": [True, False],
        "joined": pd.to_datetime(["2024-01-01", "2024-02-01"]),
    }
)
MIXED_TYPES = {
    "age": "integer",
    "income": "float",
    "city": "string",
    "member": "boolean",
    "joined": "datetime",
}
NUMERIC = Signature([ColumnSpec("age", "integer"), ColumnSpec("income", "float")])


def types(signature: Signature) -> dict[str, str]:
    return {c.name: c.type for c in signature.inputs}


def test_infer_from_pandas_and_polars():
    assert types(infer_signature(MIXED)) == MIXED_TYPES
    assert types(infer_signature(pl.from_pandas(MIXED))) == MIXED_TYPES


def test_infer_from_dicts_and_records():
    columns = {"age": [30, None], "income": [1, 2.5], "city": ["a", "b"], "member": [True, None]}
    expected = {"age": "integer", "income": "float", "city": "string", "member": "boolean"}
    assert types(infer_signature(columns)) == expected
    assert types(infer_signature({"age": 30, "city": "Oslo"})) == {
        "age": "integer",
        "city": "string",
    }
    records = [{"age": 30, "when": datetime(2024, 1, 1)}, {"age": 31, "when": None}]
    assert types(infer_signature(records)) == {"age": "integer", "when": "datetime"}


def test_infer_from_numpy_arrays():
    assert types(infer_signature(np.zeros((4, 3)))) == {"f0": "float", "f1": "float", "f2": "float"}
    assert types(infer_signature(np.array([1, 2]))) == {"f0": "integer", "f1": "integer"}
    tensor = infer_signature(np.zeros((5, 3, 8), dtype=np.float32))
    assert tensor.inputs == [ColumnSpec("input", "tensor", (-1, 3, 8))]
    assert tensor.is_tensor


def test_infer_outputs():
    assert infer_signature(MIXED, np.array([0.5, 0.7])).outputs == [
        ColumnSpec("prediction", "float")
    ]
    assert infer_signature(MIXED, np.array(["yes", "no"])).outputs[0].type == "string"
    logits = infer_signature(MIXED, np.zeros((2, 3)))
    assert logits.outputs == [ColumnSpec("prediction", "tensor", (-1, 3))]


def test_signature_round_trips_through_dict():
    signature = infer_signature(np.zeros((2, 3, 4)), np.zeros(2))
    assert Signature.from_dict(signature.to_dict()) == signature
    mixed = infer_signature(MIXED)
    assert Signature.from_dict(mixed.to_dict()) == mixed


def test_bad_specs_and_examples_are_refused():
    with pytest.raises(InvalidInput, match="type 'decimal'"):
        ColumnSpec("x", "decimal")
    with pytest.raises(InvalidInput, match="repeat"):
        Signature([ColumnSpec("x", "float"), ColumnSpec("x", "integer")])
    with pytest.raises(InvalidInput, match=r"mixes value types \['integer', 'string'\]"):
        infer_signature({"x": [1, "a"]})
    with pytest.raises(InvalidInput, match="every value in the example is missing"):
        infer_signature({"x": [None, None]})
    with pytest.raises(InvalidInput, match="got set"):
        infer_signature({1, 2})


def test_single_row_dict_becomes_a_float_array():
    out = check_input(NUMERIC, {"income": 2.5, "age": 30})
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[30.0, 2.5]])


def test_every_numeric_input_kind_gives_the_same_array():
    expected = np.array([[30.0, 1.5], [41.0, 2.0]])
    frame = pd.DataFrame({"age": [30, 41], "income": [1.5, 2.0]})
    inputs = [
        frame,
        pl.from_pandas(frame),
        {"age": [30, 41], "income": [1.5, 2]},
        [{"age": 30, "income": 1.5}, {"income": 2.0, "age": 41}],
        [{"age": np.int64(30), "income": 1.5}, {"age": 41.0, "income": np.float32(2.0)}],
        np.array([[30, 1.5], [41, 2.0]]),
        np.array([[30, 1], [41, 2]]) + np.array([0, 0.5]) * [[1], [0]],
    ]
    for data in inputs:
        np.testing.assert_array_equal(check_input(NUMERIC, data), expected)
    np.testing.assert_array_equal(check_input(NUMERIC, np.array([30, 1.5])), expected[:1])
    np.testing.assert_array_equal(check_input(NUMERIC, frame.iloc[0]), expected[:1])


def test_missing_values_become_nan():
    out = check_input(NUMERIC, [{"age": None, "income": 1.0}, {"age": 3, "income": float("nan")}])
    assert np.isnan(out[0, 0])
    assert np.isnan(out[1, 1])


def test_safe_upcasts_are_accepted():
    np.testing.assert_array_equal(check_input(NUMERIC, {"age": 30.0, "income": 2}), [[30, 2]])
    np.testing.assert_array_equal(check_input(NUMERIC, {"age": [30.0], "income": [2]}), [[30, 2]])


def test_mistyped_missing_and_extra_columns_are_named():
    signature = infer_signature(MIXED)
    with pytest.raises(InvalidInput) as info:
        check_input(signature, {"age": "thirty", "income": 1.0, "city": 5, "member": 1, "x": 0})
    message = str(info.value)
    assert "column 'age' should be integer but is string: 'thirty'" in message
    assert "column 'city' should be string but is integer: 5" in message
    assert "column 'member' should be boolean but is integer: 1" in message
    assert "missing columns: 'joined'" in message
    assert "unexpected columns: 'x'" in message
    assert "strict=False" in message


def test_numeric_errors_name_the_value():
    with pytest.raises(InvalidInput, match=r"'age' should be integer but is float: 30.5"):
        check_input(NUMERIC, {"age": 30.5, "income": 1.0})
    with pytest.raises(InvalidInput, match=r"'income' should be float but is string: '1.0'"):
        check_input(NUMERIC, {"age": [1, 2], "income": [1.0, "1.0"]})
    with pytest.raises(InvalidInput, match=r"'age' should be integer but is float: 2.5"):
        check_input(NUMERIC, np.array([[1.0, 1.0], [2.5, 1.0]]))
    with pytest.raises(InvalidInput, match="'age' should be integer but is string: 'a'"):
        check_input(NUMERIC, pd.DataFrame({"age": ["a"], "income": [1.0]}))


def test_extra_columns_are_dropped_only_when_not_strict():
    data = {"age": 1, "income": 2.0, "note": "x"}
    with pytest.raises(InvalidInput, match="unexpected columns: 'note'"):
        check_input(NUMERIC, data)
    np.testing.assert_array_equal(check_input(NUMERIC, data, strict=False), [[1.0, 2.0]])


def test_mixed_signature_gives_a_frame_in_signature_order():
    signature = infer_signature(MIXED)
    row = {"joined": "2024-03-01T10:00:00", "city": "Rome", "member": True, "income": 2, "age": 5}
    frame = check_input(signature, row)
    assert list(frame.columns) == list(MIXED.columns)
    assert frame["joined"].iloc[0] == pd.Timestamp("2024-03-01T10:00:00")
    assert frame["age"].dtype == np.int64
    assert frame["income"].dtype == np.float64
    assert frame["city"].iloc[0] == "Rome"
    polars_frame = check_input(signature, pl.from_pandas(MIXED))
    assert polars_frame["city"].tolist() == ["Oslo", "Lima"]
    with pytest.raises(InvalidInput, match="'joined' should be datetime but is string: 'soon'"):
        check_input(signature, {**row, "joined": "soon"})


def test_datetimes_nested_values_and_ragged_rows():
    signature = Signature([ColumnSpec("when", "datetime"), ColumnSpec("x", "float")])
    frame = check_input(signature, {"when": ["Jan 2 2024", None], "x": [1, 2]})
    assert frame["when"].iloc[0] == pd.Timestamp("2024-01-02")
    assert pd.isna(frame["when"].iloc[1])
    with pytest.raises(InvalidInput, match="'x' should be float but is nested values"):
        check_input(signature, {"when": "2024-01-01", "x": [[1, 2]]})
    with pytest.raises(InvalidInput, match="'x' should be float but is dict"):
        check_input(signature, {"when": "2024-01-01", "x": {"a": 1}})
    with pytest.raises(InvalidInput, match="'when' should be datetime but is integer: 5"):
        check_input(signature, {"when": 5, "x": 1.0})
    with pytest.raises(InvalidInput, match="rows of different lengths"):
        infer_signature([[1, 2], [3]])
    with pytest.raises(InvalidInput, match="column 'x' holds nested values"):
        infer_signature({"x": [[1, 2]]})


def test_array_shape_errors():
    with pytest.raises(InvalidInput, match="has 3 columns but the model takes 2: age, income"):
        check_input(NUMERIC, np.zeros((2, 3)))
    with pytest.raises(InvalidInput, match="3-D array"):
        check_input(NUMERIC, np.zeros((2, 2, 2)))
    with pytest.raises(InvalidInput, match="different lengths"):
        check_input(NUMERIC, {"age": [1, 2], "income": [1.0]})


def test_tensor_input_is_shape_checked():
    signature = infer_signature(np.zeros((2, 3, 4)))
    assert check_input(signature, np.ones((5, 3, 4))).shape == (5, 3, 4)
    assert check_input(signature, np.ones((3, 4)).tolist()).shape == (1, 3, 4)
    with pytest.raises(InvalidInput, match=r"should have shape \(-1, 3, 4\)"):
        check_input(signature, np.ones((5, 3, 5)))
    with pytest.raises(InvalidInput, match="must be numeric"):
        check_input(signature, np.full((1, 3, 4), "a"))


def test_numeric_single_row_does_not_import_pandas():
    code = (
        "import sys\n"
        "from loopwise.registry.signature import ColumnSpec, Signature, check_input\n"
        "s = Signature([ColumnSpec('a', 'integer'), ColumnSpec('b', 'float')])\n"
        "check_input(s, {'a': 1, 'b': 2.0}); check_input(s, [{'a': 1, 'b': None}])\n"
        "print('pandas' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


FLOAT_AND_INT = Signature([ColumnSpec("x", "float"), ColumnSpec("n", "integer")])


@pytest.mark.parametrize(
    ("data", "needles"),
    [
        ([{"x": float("inf"), "n": 1}], ["'x', row 0", "Infinity is not a finite number"]),
        ([{"x": 1.0, "n": 1}, {"x": 1.0, "n": float("-inf")}], ["'n', row 1", "-Infinity"]),
        ([{"x": 1.0, "n": 2**63}], ["'n', row 0", "out of range", "int64"]),
        ([{"x": 1.0, "n": 1e19}], ["'n', row 0", "out of range"]),
        ([{"x": 10**400, "n": 1}], ["'x', row 0", "an integer of 401 digits"]),
        ({"x": [1.0, np.inf], "n": [1, 2]}, ["'x', row 1", "Infinity"]),
        (pd.DataFrame({"x": [1.0, 2.0], "n": [1.0, np.inf]}), ["'n', row 1", "Infinity"]),
        (pd.DataFrame({"x": [1.0], "n": np.array([2**64 - 1], np.uint64)}), ["out of range"]),
        (np.array([[1.0, 2.0], [np.inf, 1.0]]), ["'x', row 1", "Infinity"]),
        (np.array([[1, 2**64 - 1]], dtype=np.uint64), ["'n', row 0", "out of range"]),
    ],
)
def test_values_the_model_would_not_see_as_sent_are_refused(data, needles):
    with pytest.raises(InvalidInput) as caught:
        check_input(FLOAT_AND_INT, data)
    for needle in needles:
        assert needle in str(caught.value)


def test_the_integer_range_is_exact_in_a_frame_signature():
    signature = Signature([ColumnSpec("n", "integer"), ColumnSpec("city", "string")])
    frame = check_input(signature, [{"n": 2**63 - 1, "city": "a"}, {"n": -(2**63), "city": "b"}])
    assert frame["n"].tolist() == [2**63 - 1, -(2**63)]
    with pytest.raises(InvalidInput, match=r"'n', row 0: .* out of range"):
        check_input(signature, [{"n": 2**63, "city": "a"}])


def test_missing_values_stay_allowed_next_to_the_range_checks():
    out = check_input(FLOAT_AND_INT, [{"x": float("nan"), "n": None}, {"x": 1.0, "n": 2**53}])
    assert np.isnan(out[0]).all()
    assert out[1].tolist() == [1.0, float(2**53)]


def test_an_infinite_tensor_is_refused():
    signature = Signature([ColumnSpec("input", "tensor", (-1, 2))])
    with pytest.raises(InvalidInput, match="infinity"):
        check_input(signature, np.array([[1.0, np.inf]]))
