"""The shapes of data bench/data.py validates besides its main frame (see bench/README.md).

Validation's cost depends on the shape of a frame as much as on its size: a sparse integer
key cannot be marked in a bitmap, a text key is hashed as text, datetimes, many small text
columns or 200 columns each take another path. Each shape here is a generator of a clean
frame (the reference the schema is inferred from, then a fresh batch with new keys) and the
problems injected into a copy of the batch, which every tool must find. Only data: timing
is bench/data.py's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# (column, the anomaly kind loopwise reports, rows): put in a copy of the clean batch.
Problems = tuple[tuple[str, str, int], ...]


@dataclass(frozen=True)
class Shape:
    """A shape of data: how to generate it and which problems to inject."""

    name: str
    about: str  # one line for the human output
    generate: Callable[..., Any]  # (rows, seed, id_start) -> polars.DataFrame
    problems: Problems
    rows_divisor: int = 1  # the wide frame has fewer rows, so about as many cells


SPARSE_GAP = 10_000_000  # the sparse ids come in four blocks this far apart
WIDE_FLOATS, WIDE_INTEGERS, WIDE_TEXT = 150, 25, 24  # with the id: 200 columns
SMALL_CATEGORICALS = 24


def _rng(seed: int):
    import numpy as np

    return np.random.default_rng(seed)


def _text(name: str, levels: int, codes: Any):
    """A text column of ``levels`` values ``<name>_a``, ``<name>_b``... from integer codes."""
    import polars as pl

    values = pl.Series([f"{name}_{chr(97 + i)}" for i in range(levels)])
    return values.gather(pl.Series(codes)).alias(name)


def _skewed(rng: Any, levels: int, rows: int) -> Any:
    import numpy as np

    weights = np.linspace(1.0, 3.0, levels)
    return rng.choice(levels, rows, p=weights / weights.sum())


def _moments(rng: Any, rows: int) -> Any:
    """Microsecond datetimes over 2024 (a second's resolution), as NumPy datetime64."""
    import numpy as np

    start = np.datetime64("2024-01-01T00:00:00", "us")
    seconds = rng.integers(0, 366 * 24 * 3600, rows).astype("timedelta64[s]")
    return start + seconds


def sparse_ids(rows: int, seed: int, id_start: int):
    """The frame of issue 13 (item 15): sparse integer ids (four blocks ten million
    apart), a datetime, two text columns with small domains, integers and floats."""
    import numpy as np
    import polars as pl

    rng = _rng(seed)
    i = rng.permutation(rows)
    return pl.DataFrame(
        {
            "id": (id_start + (i % 4) * SPARSE_GAP + i // 4).astype(np.int64),
            "ts": _moments(rng, rows),
            "country": _text("country", 6, _skewed(rng, 6, rows)),
            "plan": _text("plan", 3, _skewed(rng, 3, rows)),
            "age": rng.integers(18, 91, rows),
            "visits": rng.poisson(5, rows),
            "amount": rng.lognormal(3.0, 1.0, rows),
            "score": rng.normal(0.0, 1.0, rows),
            "ratio": rng.uniform(0.0, 1.0, rows),
        }
    )


def string_ids(rows: int, seed: int, id_start: int):
    """A text key (``cust-000123456``) beside a float, an integer, a text column with a
    small domain and a datetime."""
    import polars as pl

    rng = _rng(seed)
    ids = pl.Series(rng.permutation(rows) + id_start).cast(pl.String).str.zfill(9)
    return pl.DataFrame(
        {
            "customer": ("cust-" + ids).alias("customer"),
            "amount": rng.lognormal(4.0, 0.8, rows),
            "age": rng.integers(18, 91, rows),
            "country": _text("country", 12, _skewed(rng, 12, rows)),
            "signup": _moments(rng, rows),
            "score": rng.normal(50.0, 10.0, rows),
        }
    )


def datetimes(rows: int, seed: int, id_start: int):
    """An event log: a key, four datetime columns (one in microseconds from seconds, one
    in nanoseconds, one time-zone aware), a status and a float."""
    import numpy as np
    import polars as pl

    rng = _rng(seed)
    created = _moments(rng, rows)
    updated = created + rng.integers(0, 30 * 24 * 3600, rows).astype("timedelta64[s]")
    shipped = created.astype("datetime64[ns]") + rng.integers(0, 10**14, rows).astype(
        "timedelta64[ns]"
    )
    return pl.DataFrame(
        {
            "event": (rng.permutation(rows) + id_start).astype(np.int64),
            "created": created,
            "updated": updated,
            "shipped": shipped,
            "logged": pl.Series(_moments(rng, rows)).dt.replace_time_zone("UTC"),
            "status": _text("status", 4, _skewed(rng, 4, rows)),
            "value": rng.gamma(2.0, 50.0, rows),
        }
    )


def categoricals(rows: int, seed: int, id_start: int):
    """Many small text columns: a key, 24 columns of 2 to 13 values and a count."""
    import numpy as np
    import polars as pl

    rng = _rng(seed)
    columns: dict[str, Any] = {"id": (rng.permutation(rows) + id_start).astype(np.int64)}
    frame = pl.DataFrame(columns)
    text = [
        _text(f"k{j:02d}", 2 + j % 12, _skewed(rng, 2 + j % 12, rows))
        for j in range(SMALL_CATEGORICALS)
    ]
    return frame.with_columns(*text, pl.Series("n", rng.poisson(3, rows)))


def wide(rows: int, seed: int, id_start: int):
    """200 columns: a key, 150 floats, 25 integers and 24 text columns."""
    import numpy as np
    import polars as pl

    rng = _rng(seed)
    columns: dict[str, Any] = {"id": (rng.permutation(rows) + id_start).astype(np.int64)}
    for j in range(WIDE_FLOATS):
        columns[f"x{j:03d}"] = (
            rng.normal(j, 1.0 + j % 7, rows) if j % 2 else rng.lognormal(1.0, 0.5, rows)
        )
    for j in range(WIDE_INTEGERS):
        columns[f"i{j:02d}"] = rng.integers(0, 100 + 10 * j, rows)
    frame = pl.DataFrame(columns)
    text = [
        _text(f"t{j:02d}", 3 + j % 10, _skewed(rng, 3 + j % 10, rows)) for j in range(WIDE_TEXT)
    ]
    return frame.with_columns(text)


def narrow(rows: int, seed: int, id_start: int):
    """Three columns and no key: a repeated user id, a float, a text kind (so duplicate
    rows are checked; the float's distinct values settle it)."""
    import polars as pl

    rng = _rng(seed)
    return pl.DataFrame(
        {
            "user": rng.integers(0, max(rows // 20, 1), rows),
            "value": rng.normal(100.0, 15.0, rows),
            "kind": _text("kind", 3, _skewed(rng, 3, rows)),
        }
    )


SHAPES: dict[str, Shape] = {
    s.name: s
    for s in (
        Shape(
            "sparse_ids",
            "9 columns: sparse integer ids, a datetime, 2 small text columns, ints, floats",
            sparse_ids,
            (("age", "out_of_range", 7), ("plan", "new_value", 25), ("score", "null_values", 30)),
        ),
        Shape(
            "string_ids",
            "6 columns: a text key, a float, an int, a text column, a datetime",
            string_ids,
            (
                ("amount", "out_of_range", 7),
                ("country", "new_value", 25),
                ("score", "null_values", 30),
            ),
        ),
        Shape(
            "datetimes",
            "7 columns: a key, 4 datetimes (us, ns, UTC), a text status, a float",
            datetimes,
            (
                ("value", "out_of_range", 7),
                ("status", "new_value", 25),
                ("created", "null_values", 30),
            ),
        ),
        Shape(
            "categoricals",
            "26 columns: a key, 24 text columns of 2-13 values, a count",
            categoricals,
            (("n", "out_of_range", 7), ("k05", "new_value", 25), ("k11", "null_values", 30)),
        ),
        Shape(
            "wide",
            "200 columns: a key, 150 floats, 25 ints, 24 text columns (a tenth of the rows)",
            wide,
            (("x010", "out_of_range", 7), ("t03", "new_value", 25), ("x011", "null_values", 30)),
            rows_divisor=10,
        ),
        Shape(
            "narrow",
            "3 columns, no key: a repeated int, a float, a text column",
            narrow,
            (("user", "out_of_range", 7), ("kind", "new_value", 25), ("value", "null_values", 30)),
        ),
    )
}


def inject(frame, problems: Problems):
    """``frame`` with ``problems``: out-of-range values (10**9, of the column's dtype), a
    new text value, nulls; in separate row blocks, so the counts stay exact."""
    import polars as pl

    row = pl.int_range(pl.len())
    exprs = []
    for j, (column, kind, n) in enumerate(problems):
        where = (row >= 100 * j) & (row < 100 * j + n)
        col = pl.col(column)
        dtype = frame.schema[column]
        if kind == "out_of_range":
            value: Any = pl.lit(10**9).cast(dtype)
        elif kind == "new_value":
            value = pl.lit(f"{column}_new")
        elif kind == "null_values":
            value = pl.lit(None, dtype=dtype)
        else:
            raise ValueError(f"unknown problem kind {kind!r}")
        exprs.append(pl.when(where).then(value).otherwise(col).alias(column))
    return frame.with_columns(exprs)
