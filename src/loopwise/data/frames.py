"""Turn what users pass as data into one Polars DataFrame.

Every data function (profile, validate, drift, log_dataset) accepts a pandas or Polars
DataFrame, a PyArrow table, or a path to a Parquet or CSV file. Converting once, here,
means each kernel is written against Polars only, and a bad input gets one clear error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl

from loopwise.errors import InvalidInput, NotFound

DataLike = Any  # pandas.DataFrame | polars.DataFrame | polars.LazyFrame | pyarrow.Table | path


def to_polars(data: DataLike, *, what: str = "data") -> pl.DataFrame:
    """A Polars DataFrame for ``data``; raise a clear error for anything else."""
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    if isinstance(data, str | os.PathLike):
        return read_file(Path(data), what=what)
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return _from_pandas(data, what=what)
    if module == "pyarrow":
        try:
            frame = pl.from_arrow(data)
        except Exception as e:
            raise InvalidInput(f"Cannot read {what} from the Arrow object given: {e}") from e
        if isinstance(frame, pl.Series):
            return frame.to_frame()
        return frame
    raise InvalidInput(
        f"{what} must be a pandas or Polars DataFrame, a PyArrow table, or a path to a "
        f"Parquet or CSV file; got {type(data).__name__}."
    )


def _from_pandas(frame: Any, *, what: str) -> pl.DataFrame:
    import pandas as pd

    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise InvalidInput(f"{what} has duplicate column names {dupes}; rename them first.")
    if any(not isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    try:
        return pl.from_pandas(frame, include_index=False)
    except Exception:
        # Mixed-type object columns (numbers and strings together) cannot become one Arrow
        # type; read them as text so they can be profiled and reported, not crash.
        fixed = frame.copy()
        for name in fixed.columns:
            if fixed[name].dtype == object:
                fixed[name] = fixed[name].map(lambda v: None if v is None else str(v))
        try:
            return pl.from_pandas(fixed, include_index=False)
        except Exception as e:
            raise InvalidInput(f"Cannot convert {what} from pandas: {e}") from e


def read_file(path: Path, *, what: str = "data") -> pl.DataFrame:
    """Read a Parquet or CSV file (by extension) into Polars."""
    if not path.exists():
        raise NotFound(f"{what}: no such file {str(path)!r}.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix in (".csv", ".tsv", ".txt"):
            return pl.read_csv(
                path, separator="\t" if suffix == ".tsv" else ",", infer_schema_length=10_000
            )
    except Exception as e:
        raise InvalidInput(f"Cannot read {what} from {str(path)!r}: {e}") from e
    raise InvalidInput(
        f"{what}: {str(path)!r} is neither Parquet (.parquet) nor CSV (.csv, .tsv); "
        "convert it or pass a DataFrame."
    )
