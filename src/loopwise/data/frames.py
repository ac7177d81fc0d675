"""Turn what users pass as data into one Polars DataFrame.

Every data function (profile, validate, drift, log_dataset) accepts a pandas or Polars
DataFrame, a PyArrow table, or a path to a Parquet, CSV (UTF-8) or Arrow IPC file.
Converting once, here, means each kernel is written against Polars only, and a bad input
gets one clear error.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from loopwise.errors import InvalidInput, NotFound

DataLike = Any  # pandas.DataFrame | polars.DataFrame | polars.LazyFrame | pyarrow.Table | path


@dataclass
class Converted:
    """A frame from :func:`convert`, with what converting it found out on the way.

    Pandas float columns are read once to turn their NaN (missing, in pandas) into null,
    and that pass gives their min and max too: a kernel can skip counting NaN in
    ``nan_free`` columns and take ``bounds`` as they are. Other columns may hold NaN.
    """

    frame: pl.DataFrame
    nan_free: set[str] = field(default_factory=set)  # float columns without NaN
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)  # (min, max)


def to_polars(data: DataLike, *, what: str = "data") -> pl.DataFrame:
    """A Polars DataFrame for ``data``; raise a clear error for anything else."""
    return convert(data, what=what).frame


def convert(data: DataLike, *, what: str = "data") -> Converted:
    """:func:`to_polars`, with what converting found out about the columns."""
    if isinstance(data, pl.DataFrame):
        return Converted(data)
    if isinstance(data, pl.LazyFrame):
        return Converted(data.collect())
    if isinstance(data, str | os.PathLike):
        return Converted(read_file(Path(data), what=what))
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return _from_pandas(data, what=what)
    if module == "pyarrow":
        try:
            frame = pl.from_arrow(data)
        except Exception as e:
            raise InvalidInput(f"Cannot read {what} from the Arrow object given: {e}") from e
        if isinstance(frame, pl.Series):
            return Converted(frame.to_frame())
        return Converted(frame)
    raise InvalidInput(
        f"{what} must be a pandas or Polars DataFrame, a PyArrow table, or a path to a "
        f"Parquet or CSV file; got {type(data).__name__}."
    )


def _from_pandas(frame: Any, *, what: str) -> Converted:
    import pandas as pd

    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise InvalidInput(f"{what} has duplicate column names {dupes}; rename them first.")
    if any(not isinstance(c, str) for c in frame.columns):
        return Converted(_pandas_frame(frame.rename(columns=str), what=what))
    if not columns:  # keeps the height
        return Converted(_pandas_frame(frame, what=what))
    # Column by column: numpy numbers and Arrow-backed text convert without copying the
    # values (most of a frame; ``pl.from_pandas`` of the whole frame costs about twice as
    # much). The rest (object, categorical, datetime, extension dtypes) goes through
    # ``pl.from_pandas``, as a whole frame did.
    items = list(frame.items())
    done = dict(zip(columns, _fast_columns(items, len(frame)), strict=True))
    converted = {name: s for name, (s, _) in done.items() if s is not None}
    nan_free = {n for n, s in converted.items() if s.dtype.is_float()}
    bounds = {name: b for name, (_, b) in done.items() if b is not None}
    if len(converted) == len(columns):
        return Converted(pl.DataFrame(list(converted.values())), nan_free, bounds)
    others = _pandas_frame(frame[[c for c in columns if c not in converted]], what=what)
    series = [converted[n] if n in converted else others.get_column(n) for n in columns]
    return Converted(pl.DataFrame(series), nan_free, bounds)


_PARALLEL_ROWS = 100_000  # from this many rows, columns convert on a few threads
_POOL: tuple[int, ThreadPoolExecutor] | None = None
_Fast = tuple[pl.Series | None, tuple[float, float] | None]  # a column, its (min, max)


def _fast_columns(items: list[tuple[str, Any]], rows: int) -> list[_Fast]:
    """:func:`_fast_series` of each (name, series), on threads for a large frame."""
    pool = _pool() if rows >= _PARALLEL_ROWS and len(items) > 1 else None
    if pool is not None:
        # the longest first (text, not NumPy), so the short ones fill in around them
        order = sorted(range(len(items)), key=lambda i: _is_numpy(items[i][1]))
        try:
            done = pool.map(lambda i: _fast_series(*items[i]), order)
            return [r for _, r in sorted(zip(order, done, strict=True), key=lambda p: p[0])]
        except RuntimeError:  # the pool is shut down: the interpreter is exiting
            pass
    return [_fast_series(name, series) for name, series in items]


def _is_numpy(series: Any) -> bool:
    import numpy as np

    return isinstance(series.dtype, np.dtype)


def _pool() -> ThreadPoolExecutor | None:
    """Threads kept for converting columns (NumPy and Arrow release the GIL; threads kept
    between calls reuse their memory, where new ones fault in fresh pages); made anew in
    a forked child, which inherits the object but not its threads."""
    global _POOL
    workers = min(4, os.cpu_count() or 1)
    if workers < 2:
        return None
    if _POOL is None or _POOL[0] != os.getpid():  # (two threads racing here make two pools)
        _POOL = (os.getpid(), ThreadPoolExecutor(workers, thread_name_prefix="loopwise-frames"))
    return _POOL[1]


def _fast_series(name: str, series: Any) -> _Fast:
    """``series`` in Polars as ``pl.from_pandas`` gives it, or None when not one of the
    kinds done here: numpy numbers and booleans (NaN as null) and Arrow-backed text; with
    the min and max of a float column that has no NaN."""
    import numpy as np

    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.isnative:
        if dtype.kind in "iub":
            return pl.Series(name, series.to_numpy()), None
        if dtype.kind == "f" and dtype.itemsize in (4, 8):
            values = series.to_numpy()
            if values.size == 0:
                return pl.Series(name, values), None
            # NaN means missing in pandas: null in Polars. The min is NaN exactly when
            # there is one (one pass, half of Polars' own NaN scan); else it is the min.
            low = values.min()
            if np.isnan(low):
                return pl.Series(name, values, nan_to_null=True), None
            high = values.max()
            # (a min or max of 0 might be 0.0 or -0.0, as each library finds it first)
            bounds = None if low == 0 or high == 0 else (float(low), float(high))
            return pl.Series(name, values), bounds
        return None, None
    if getattr(dtype, "storage", None) != "pyarrow" and type(dtype).__name__ != "ArrowDtype":
        return None, None
    import pyarrow as pa

    try:
        arrow = pa.array(series.array)
        if not (pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)):
            return None, None
        # Polars holds text as Arrow string views: the cast, in Arrow, is the only pass
        # over the text, and Polars then takes the views as they are.
        view = getattr(pa, "string_view", None)
        out = pl.from_arrow(arrow.cast(view()) if view is not None else arrow)
    except Exception:  # left to pl.from_pandas
        return None, None
    if not isinstance(out, pl.Series) or out.dtype != pl.String:
        return None, None
    return out.alias(name), None


def _pandas_frame(frame: Any, *, what: str) -> pl.DataFrame:
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


#: Suffixes read, and what reads them.
_PARQUET = (".parquet", ".pq")
_ARROW = (".arrow", ".feather", ".ipc")
_CSV = {".csv": ",", ".tsv": "\t"}
_FORMATS = "Parquet (.parquet, .pq), CSV (.csv, .tsv; UTF-8) nor Arrow IPC (.arrow, .feather)"
# Byte-order marks of encodings Polars does not read (a UTF-8 one it skips), longest first.
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
)
# What a file given as CSV may really be, by its first bytes.
_MAGIC = (
    (b"PAR1", "a Parquet file", "name it .parquet"),
    (b"ARROW1", "an Arrow IPC file", "name it .arrow"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?)", "export it as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)", "export it as CSV"),
)
_SNIFF_BYTES = 4096


def read_file(path: Path, *, what: str = "data") -> pl.DataFrame:
    """Read a Parquet, CSV/TSV or Arrow IPC file (by extension) into Polars.

    CSV must be UTF-8 (a UTF-8 byte-order mark is fine and skipped); a file in another
    encoding (UTF-16 or UTF-32, as Excel's "Unicode text" export writes; Latin-1 or
    Windows-1252) is refused with its encoding named rather than read as garbage: guessing
    an 8-bit encoding could silently turn text into other text. Other suffixes (.txt,
    .json, .xlsx...) are refused too, since reading them as CSV gives a wrong frame.
    """
    if not path.exists():
        raise NotFound(f"{what}: no such file {str(path)!r}.")
    if path.is_dir():
        raise InvalidInput(f"{what}: {str(path)!r} is a folder, not a data file.")
    suffix = path.suffix.lower()
    if suffix not in (*_PARQUET, *_ARROW, *_CSV):
        raise InvalidInput(
            f"{what}: {str(path)!r} is neither {_FORMATS} ({_suffix_name(suffix)}). "
            "Convert it, rename it if it holds comma-separated UTF-8 text, or pass a "
            "DataFrame."
        )
    if suffix in _CSV:
        _check_text(path, what)
    try:
        if suffix in _PARQUET:
            return pl.read_parquet(path)
        if suffix in _ARROW:
            return pl.read_ipc(path)
        return pl.read_csv(path, separator=_CSV[suffix], infer_schema_length=10_000)
    except pl.exceptions.NoDataError as e:
        raise InvalidInput(f"{what}: {str(path)!r} is empty; there is no header to read.") from e
    except Exception as e:
        if suffix in _CSV and "utf-8" in str(e).lower():
            raise InvalidInput(_not_utf8(path, what)) from e
        raise InvalidInput(f"Cannot read {what} from {str(path)!r}: {e}") from e


def _suffix_name(suffix: str) -> str:
    return f"the suffix {suffix!r} is not one loopwise reads" if suffix else "it has no suffix"


def _check_text(path: Path, what: str) -> None:
    """Refuse a CSV file that is not UTF-8 text, naming what it is instead."""
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    where = f"{what}: {str(path)!r}"
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            raise InvalidInput(_other_encoding(where, encoding))
    for magic, kind, fix in _MAGIC:
        if head.startswith(magic):
            raise InvalidInput(f"{where} is {kind}, not CSV text; {fix}.")
    if b"\x00" in head:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if odd > 0.3 * len(head) / 2 and even < odd / 4:
            raise InvalidInput(_other_encoding(where, "UTF-16 (little-endian, no BOM)"))
        if even > 0.3 * len(head) / 2 and odd < even / 4:
            raise InvalidInput(_other_encoding(where, "UTF-16 (big-endian, no BOM)"))
        raise InvalidInput(
            f"{where} holds NUL bytes, so it is binary data or text in an encoding other than "
            "UTF-8, not CSV; re-save it as UTF-8 CSV."
        )


def _other_encoding(where: str, encoding: str) -> str:
    name = encoding.split(" ")[0].lower()
    return (
        f"{where} is encoded as {encoding}; loopwise reads CSV as UTF-8. Re-save it as "
        f"UTF-8 (e.g. iconv -f {name} -t utf-8 in.csv > out.csv), or read it with "
        f"pandas.read_csv(path, encoding={name!r}) and pass the DataFrame."
    )


def _not_utf8(path: Path, what: str) -> str:
    """Where the first byte that is not UTF-8 is, and what encoding it suggests."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                offset += e.start
                bad = chunk[e.start : e.start + 1].hex()
                return (
                    f"{what}: {str(path)!r} is not UTF-8 (byte 0x{bad} at offset {offset:,}); "
                    "it is probably Latin-1 or Windows-1252, which loopwise does not guess. "
                    "Re-save it as UTF-8 (e.g. iconv -f cp1252 -t utf-8 in.csv > out.csv), "
                    "or read it with pandas.read_csv(path, encoding='cp1252') and pass the "
                    "DataFrame."
                )
            offset += len(chunk)
    return f"{what}: {str(path)!r} is not valid UTF-8; re-save it as UTF-8 CSV."


def kind_of(dtype: pl.DataType) -> str:
    """The kind of a Polars dtype as profiles and schemas name it: integer, float, boolean,
    string, categorical, datetime, date, or "other"."""
    if dtype.is_integer():
        return "integer"
    if dtype.is_float() or isinstance(dtype, pl.Decimal):
        return "float"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype == pl.String:
        return "string"
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return "categorical"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype == pl.Date:
        return "date"
    return "other"
