"""Model signatures: the columns a model takes and returns, inferred and then enforced.

A :class:`Signature` lists input and output columns (:class:`ColumnSpec`). It is inferred
from an input example by :func:`infer_signature`, stored in the package manifest, and
enforced on every request by :func:`check_input`, which returns the canonical form that
flavors predict on:

- a 2-D float64 NumPy array, columns in signature order, when every input is numeric
  (integer, float, boolean); dicts and lists of dicts become that array without pandas, so
  a one-row request stays cheap;
- a pandas DataFrame, columns in signature order, when some input is a string or datetime;
- a NumPy array when the single input is a tensor.

Missing values (None, NaN) are accepted in every column; numeric columns carry them as NaN.
Values the model could not see as sent are refused, naming the column and row: infinities
(in every numeric column and tensor), integers outside int64 in integer columns (a cast
would wrap them) and numbers beyond the float range. A refused request is an error, never a
prediction on a different value than the one the caller sent (and the log records).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

import numpy as np

from loopwise.errors import InvalidInput

TYPES = ("integer", "float", "boolean", "string", "datetime", "tensor")
NUMERIC = frozenset({"integer", "float", "boolean"})
_KIND_TYPES = {
    "b": "boolean",
    "i": "integer",
    "u": "integer",
    "f": "float",
    "U": "string",
    "S": "string",
    "M": "datetime",
}
_ACCEPTS = {  # value types each column type takes (bool -> number is numpy's safe cast)
    "integer": {"integer", "boolean", "float"},
    "float": {"integer", "boolean", "float"},
    "boolean": {"boolean"},
    "string": {"string"},
    "datetime": {"datetime", "string"},
}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX = float(np.finfo(np.float64).max)


@dataclass(frozen=True)
class ColumnSpec:
    """One input or output column: its name, type and, for tensors, shape (-1 = any)."""

    name: str
    type: str
    shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise InvalidInput(f"column {self.name!r} has type {self.type!r}; use one of {TYPES}.")
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.shape is not None:
            out["shape"] = list(self.shape)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSpec:
        unknown = set(data) - {"name", "type", "shape"}
        if unknown:
            raise InvalidInput(f"column spec {data!r} has unknown keys {sorted(unknown)}.")
        return cls(str(data["name"]), str(data["type"]), data.get("shape"))


@dataclass(frozen=True)
class Signature:
    """What a model takes (``inputs``) and returns (``outputs``)."""

    inputs: list[ColumnSpec]
    outputs: list[ColumnSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [c.name for c in self.inputs]
        if len(set(names)) != len(names):
            raise InvalidInput(f"signature inputs repeat a column name: {names}.")
        if any(c.type == "tensor" for c in self.inputs) and len(self.inputs) > 1:
            raise InvalidInput("a tensor input must be the only input of a signature.")

    @cached_property
    def input_names(self) -> list[str]:
        return [c.name for c in self.inputs]

    @cached_property
    def is_tensor(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].type == "tensor"

    @cached_property
    def is_numeric(self) -> bool:
        """True when every input is an integer, float or boolean column."""
        return bool(self.inputs) and all(c.type in NUMERIC for c in self.inputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [c.to_dict() for c in self.inputs],
            "outputs": [c.to_dict() for c in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(
            [ColumnSpec.from_dict(c) for c in data.get("inputs", [])],
            [ColumnSpec.from_dict(c) for c in data.get("outputs", [])],
        )

    def describe(self) -> str:
        return ", ".join(f"{c.name} ({c.type})" for c in self.inputs)


def infer_signature(input_example: Any, output: Any = None) -> Signature:
    """Infer a signature from an input example and, optionally, the model's output on it.

    Takes a pandas or Polars DataFrame, a dict of lists (or of scalars: one row), a list of
    dicts, or a NumPy array: a 1-D array is one row and a 2-D array has columns ``f0..fN``;
    with more dimensions the input is one tensor named ``input``.
    """
    inputs = _infer_specs(input_example, what="input example")
    return Signature(inputs, [] if output is None else _infer_outputs(output))


def check_input(
    signature: Signature, data: Any, *, strict: bool = True, what: str = "input"
) -> Any:
    """Check ``data`` against ``signature`` and return it in canonical form (module doc).

    Raises :class:`~loopwise.errors.InvalidInput` naming every missing, unexpected and
    mistyped column. Extra columns are an error unless ``strict=False``, which drops them.
    """
    if signature.is_tensor:
        return _check_tensor(signature.inputs[0], data, what)
    if signature.is_numeric:
        fast = _numeric_fast_path(signature, data)
        if fast is not None:
            return fast
    columns = _columns(data, what, names=signature.input_names)
    problems, out = [], {}
    wanted = set(signature.input_names)
    missing = [n for n in signature.input_names if n not in columns]
    extra = [c for c in columns if c not in wanted]
    if missing:
        problems.append(f"missing columns: {_quoted(missing)}")
    if extra and strict:
        problems.append(
            f"unexpected columns: {_quoted(extra)} (extra columns are ignored "
            "only with strict=False)"
        )
    for spec in signature.inputs:
        if spec.name in columns:
            try:
                out[spec.name] = _coerce(columns[spec.name], spec.type)
            except _BadValue as bad:
                problems.append(_describe_bad(spec, bad))
    if problems:
        raise InvalidInput(
            f"{what} does not match the model signature:\n  - "
            + "\n  - ".join(problems)
            + f"\nThe model takes: {signature.describe()}."
        )
    if len({len(a) for a in out.values()}) > 1:
        raise InvalidInput(f"{what} has columns of different lengths; give one value per row.")
    if signature.is_numeric:
        return np.column_stack([out[n].astype(np.float64) for n in signature.input_names])
    import pandas as pd

    return pd.DataFrame(out, columns=signature.input_names)


# --- turning inputs into columns ------------------------------------------------------


class _BadValue(Exception):
    """A value a column cannot take: of the wrong ``type``, or (with ``reason``) one the
    model could not see as sent, at ``row``."""

    def __init__(
        self, type_: str, value: Any, *, row: int | None = None, reason: str | None = None
    ) -> None:
        super().__init__(type_)
        self.type, self.value, self.row, self.reason = type_, value, row, reason


def _describe_bad(spec: ColumnSpec, bad: _BadValue) -> str:
    if bad.reason is None:
        return f"column {spec.name!r} should be {spec.type} but is {bad.type}: {_show(bad.value)}"
    return f"column {spec.name!r}, row {bad.row}: {bad.reason}"


def _not_finite(row: int, value: Any) -> _BadValue:
    shown = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    return _BadValue(
        "float",
        value,
        row=row,
        reason=f"{shown} is not a finite number; send a finite value (or null when missing).",
    )


def _out_of_range(row: int, value: Any, type_: str) -> _BadValue:
    if isinstance(value, int | np.integer):
        digits = len(str(abs(int(value))))
        shown = _show(int(value)) if digits <= 20 else f"an integer of {digits} digits"
    else:
        shown = _show(value)
    if type_ == "integer":
        limits = f"an integer column takes [{_INT64_MIN}, {_INT64_MAX}] (int64)"
    else:
        limits = f"a float column takes numbers up to ±{_FLOAT_MAX:.4g}"
    return _BadValue(
        "integer", value, row=row, reason=f"{shown} is out of range: {limits}; send a value in it."
    )


def _check_numbers(arr: np.ndarray, type_: str) -> None:
    """Raise _BadValue for the first infinity, or integer outside int64 in an integer
    column, of a numeric array (NaN is a missing value, and allowed)."""
    kind = arr.dtype.kind
    if kind == "f":
        bad = np.flatnonzero(np.isinf(arr))
        if bad.size:
            raise _not_finite(int(bad[0]), arr[bad[0]])
        if type_ == "integer":
            # float64(2**63) is the first float past int64; every smaller one casts exactly
            bad = np.flatnonzero((arr >= 2.0**63) | (arr < -(2.0**63)))
            if bad.size:
                raise _out_of_range(int(bad[0]), arr[bad[0]], type_)
    elif kind == "u" and type_ == "integer" and arr.dtype.itemsize == 8 and arr.size:
        bad = np.flatnonzero(arr > np.uint64(_INT64_MAX))
        if bad.size:
            raise _out_of_range(int(bad[0]), int(arr[bad[0]]), type_)


def _columns(data: Any, what: str, names: list[str] | None = None) -> dict[str, Any]:
    """Name -> column (array, Series or list) for any supported input; tensors are refused."""
    module = type(data).__module__.split(".")[0]
    if module in ("pandas", "polars") and hasattr(data, "columns"):
        return {str(c): data[c] for c in data.columns}
    if module == "pandas" and hasattr(data, "index"):  # a Series: one row
        return {str(k): [v] for k, v in data.items()}
    if isinstance(data, dict):  # of columns, or of scalars (one row)
        return {str(k): [v] if _is_scalar(v) else v for k, v in data.items()}
    if isinstance(data, list | tuple) and data and all(isinstance(r, dict) for r in data):
        keys = list(dict.fromkeys(k for row in data for k in row))
        return {str(k): [row.get(k) for row in data] for k in keys}
    if isinstance(data, list | tuple):
        data = _rows_array(data, what)
    if isinstance(data, np.ndarray):
        if data.ndim == 1:
            data = data.reshape(-1, 1) if names is not None and len(names) == 1 else data[None]
        if data.ndim != 2:
            raise InvalidInput(
                f"{what} is a {data.ndim}-D array; the model takes columns "
                "(a 2-D array, a DataFrame, a dict or a list of dicts)."
            )
        if names is not None and data.shape[1] != len(names):
            raise InvalidInput(
                f"{what} array has {data.shape[1]} columns but the model "
                f"takes {len(names)}: {', '.join(names)}."
            )
        labels = names if names is not None else [f"f{i}" for i in range(data.shape[1])]
        return {n: data[:, i] for i, n in enumerate(labels)}
    raise InvalidInput(
        f"{what} must be a pandas or Polars DataFrame, a dict, a list of dicts "
        f"or a NumPy array; got {type(data).__name__}."
    )


def _rows_array(rows: list | tuple, what: str) -> np.ndarray:
    try:
        return np.asarray(rows)
    except ValueError:
        raise InvalidInput(f"{what} is a list of rows of different lengths.") from None


def _is_scalar(value: Any) -> bool:
    if isinstance(value, str | bytes | np.generic):
        return True
    return not isinstance(value, list | tuple | np.ndarray) and not hasattr(value, "__len__")


def _to_numpy(column: Any) -> np.ndarray:
    """A 1-D array for a column; raise _BadValue for nested values."""
    if hasattr(column, "to_numpy"):
        column = column.to_numpy()
    if isinstance(column, np.ndarray):
        arr = column
    else:
        try:
            arr = np.asarray(column) if len(column) else np.empty(0)
        except (TypeError, ValueError):  # no len(), or ragged nested lists
            arr = np.asarray(column, dtype=object)
        if arr.dtype.kind in "US" and not all(isinstance(v, str) for v in column):
            arr = np.asarray(column, dtype=object)  # numpy turned [1, "a"] into strings
    if arr.ndim != 1:
        raise _BadValue(type(column).__name__ if arr.ndim == 0 else "nested values", column)
    return arr


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return value != value
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    return type(value).__name__ in ("NAType", "NaTType")


def _value_type(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, int | np.integer):
        return "integer"
    if isinstance(value, float | np.floating):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, date | np.datetime64):
        return "datetime"
    return type(value).__name__


def _coerce(column: Any, type_: str) -> np.ndarray:
    """The column as a NumPy array of ``type_``; raise _BadValue at the first wrong value."""
    arr = _to_numpy(column)
    kind = arr.dtype.kind
    if kind == "O":
        return _parse_datetimes(arr) if type_ == "datetime" else _coerce_objects(arr, type_)
    have = _KIND_TYPES.get(kind, str(arr.dtype))
    if have not in _ACCEPTS[type_]:
        raise _BadValue(have, arr[0] if arr.size else None)
    if type_ in ("integer", "float"):
        _check_numbers(arr, type_)
    if type_ == "integer" and kind == "f":
        finite = arr[np.isfinite(arr)]
        fractional = finite[finite != np.floor(finite)]
        if fractional.size:
            raise _BadValue("float", fractional[0])
        return arr if np.isnan(arr).any() else arr.astype(np.int64)
    if type_ in ("integer", "float"):
        return arr.astype(np.int64 if type_ == "integer" else np.float64, copy=False)
    if type_ == "string":
        return arr.astype(object)
    if type_ == "datetime" and kind != "M":
        return _parse_datetimes(arr)
    return arr


def _coerce_objects(arr: np.ndarray, type_: str) -> np.ndarray:
    accepted = _ACCEPTS[type_]
    has_missing = False
    numeric = type_ in ("integer", "float")
    for row, value in enumerate(arr):
        if _missing(value):
            has_missing = True
            continue
        have = _value_type(value)
        if have not in accepted:
            raise _BadValue(have, value)
        if numeric:
            _check_number(row, value, have, type_)
    if type_ == "string":
        return np.array([None if _missing(v) else v for v in arr], dtype=object)
    if type_ == "boolean" and not has_missing:
        return arr.astype(bool)
    if type_ == "integer" and not has_missing:  # exact: through float64, 2**63 - 1 wraps
        return np.array([int(v) for v in arr], dtype=np.int64)
    return np.array([np.nan if _missing(v) else v for v in arr], dtype=np.float64)


def _check_number(row: int, value: Any, have: str, type_: str) -> None:
    """Raise _BadValue unless the model can see ``value`` in a ``type_`` column as sent."""
    if have == "float":
        if math.isinf(value):
            raise _not_finite(row, value)
        if type_ == "integer":
            if not float(value).is_integer():
                raise _BadValue(have, value)
            if not -(2.0**63) <= value < 2.0**63:
                raise _out_of_range(row, value, type_)
    elif have == "integer":
        if type_ == "integer" and not _INT64_MIN <= value <= _INT64_MAX:
            raise _out_of_range(row, value, type_)
        if type_ == "float" and abs(value) > _FLOAT_MAX:
            raise _out_of_range(row, value, type_)


def _parse_datetimes(arr: np.ndarray) -> np.ndarray:
    import pandas as pd

    parsed = []
    for value in arr:
        have = "missing" if _missing(value) else _value_type(value)
        if have not in _ACCEPTS["datetime"] and have != "missing":
            raise _BadValue(have, value)
        try:
            parsed.append(None if have == "missing" else pd.Timestamp(value))
        except ValueError:
            raise _BadValue(have, value) from None
    try:
        return pd.DatetimeIndex(parsed).to_numpy()
    except (ValueError, TypeError):
        raise _BadValue("a mix of time zones", parsed[0]) from None


def _numeric_fast_path(signature: Signature, data: Any) -> np.ndarray | None:
    """Rows of plain ints and floats, or a numeric array, straight to float64; else None
    (the general path then converts them, or names what is wrong: an infinity, an integer
    out of range)."""
    names = signature.input_names
    ints = [c.type == "integer" for c in signature.inputs]
    if isinstance(data, np.ndarray) and data.ndim == 2 and data.shape[1] == len(names):
        kind = data.dtype.kind
        if kind in "ib" or (kind == "u" and (data.dtype.itemsize < 8 or not any(ints))):
            return data.astype(np.float64, copy=False)
        if kind == "f" and not any(ints) and not np.isinf(data).any():
            return data.astype(np.float64, copy=False)
        return None
    rows = [data] if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        return None
    wanted = set(names)
    values: list[Any] = []
    for row in rows:
        if not isinstance(row, dict) or row.keys() != wanted:
            return None
        for name, is_int in zip(names, ints, strict=True):
            value = row[name]
            kind = type(value)
            if kind is float:
                if is_int and not (value.is_integer() and -(2.0**63) <= value < 2.0**63):
                    return None
            elif kind is int:
                if is_int and not _INT64_MIN <= value <= _INT64_MAX:
                    return None
            elif kind is not bool:
                return None
            values.append(value)
    try:
        out = np.array(values, dtype=np.float64)
    except OverflowError:  # an integer past the float range
        return None
    if np.isinf(out).any():
        return None
    return out.reshape(len(rows), len(names))


def _check_tensor(spec: ColumnSpec, data: Any, what: str) -> np.ndarray:
    if isinstance(data, dict) and len(data) == 1:
        data = next(iter(data.values()))
    arr = np.asarray(data.to_numpy() if hasattr(data, "to_numpy") else data)
    if arr.dtype.kind not in "iufb":
        raise InvalidInput(f"{what}: tensor {spec.name!r} must be numeric; got {arr.dtype}.")
    if arr.dtype.kind == "f" and np.isinf(arr).any():
        raise InvalidInput(
            f"{what}: tensor {spec.name!r} holds an infinity; send finite values "
            "(NaN for a missing one)."
        )
    shape = spec.shape
    if shape is not None and arr.ndim == len(shape) - 1:
        arr = arr[None]  # one example without its batch axis
    if shape is not None and (
        arr.ndim != len(shape)
        or any(want not in (-1, have) for want, have in zip(shape, arr.shape, strict=True))
    ):
        raise InvalidInput(
            f"{what}: tensor {spec.name!r} should have shape {shape} (-1 = any) "
            f"but has {arr.shape}."
        )
    return arr


# --- inference --------------------------------------------------------------------------


def _infer_specs(data: Any, what: str) -> list[ColumnSpec]:
    if isinstance(data, list | tuple) and not (data and isinstance(data[0], dict)):
        data = _rows_array(data, what)
    if isinstance(data, np.ndarray) and data.ndim > 2:
        _check_tensor(ColumnSpec("input", "tensor"), data, what)
        return [ColumnSpec("input", "tensor", (-1, *data.shape[1:]))]
    return [ColumnSpec(n, _infer_type(n, col)) for n, col in _columns(data, what).items()]


def _infer_type(name: str, column: Any) -> str:
    if type(column).__module__.split(".")[0] == "polars":
        dtype = column.dtype
        if dtype.is_integer():
            return "integer"
        if dtype.is_float():
            return "float"
        if dtype.is_temporal():
            return "datetime"
        kinds = {
            "Boolean": "boolean",
            "String": "string",
            "Categorical": "string",
            "Enum": "string",
        }
        if type(dtype).__name__ in kinds:
            return kinds[type(dtype).__name__]
        raise InvalidInput(
            f"column {name!r} has Polars type {dtype}, which a signature "
            "cannot hold; pass a signature by hand."
        )
    try:
        arr = _to_numpy(column)
    except _BadValue as bad:
        raise InvalidInput(f"column {name!r} holds {bad.type}; give one scalar per row.") from None
    if arr.dtype.kind != "O":
        if arr.dtype.kind in _KIND_TYPES:
            return _KIND_TYPES[arr.dtype.kind]
        raise InvalidInput(
            f"column {name!r} has dtype {arr.dtype}, which a signature cannot "
            "hold; pass a signature by hand."
        )
    seen = {_value_type(v) for v in arr if not _missing(v)}
    if seen == {"integer", "float"}:
        return "float"
    if len(seen) == 1 and next(iter(seen)) in TYPES:
        return next(iter(seen))
    if not seen:
        raise InvalidInput(
            f"cannot infer the type of column {name!r}: every value in the "
            "example is missing. Give a value or pass a signature."
        )
    raise InvalidInput(
        f"column {name!r} mixes value types {sorted(seen)}; make them one type or pass a signature."
    )


def _infer_outputs(output: Any) -> list[ColumnSpec]:
    if isinstance(output, dict) or hasattr(output, "columns"):
        return _infer_specs(output, what="model output")
    arr = np.asarray(output.to_numpy() if hasattr(output, "to_numpy") else output)
    if arr.ndim <= 1 or (arr.ndim == 2 and arr.shape[1] == 1):
        return [ColumnSpec("prediction", _infer_type("prediction", arr.reshape(-1)))]
    return [ColumnSpec("prediction", "tensor", (-1, *arr.shape[1:]))]


def _quoted(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _show(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
