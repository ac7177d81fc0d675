"""Data: loopwise validation, drift and profiling against Pandera, Great Expectations,
Evidently and a hand-written Polars pass, on the same generated frames.

Six figures, and one per shape of data (see bench/README.md), all times in seconds:

1. ``validate_s``: ``validate`` with the schema inferred from clean data, on a clean batch,
   against Pandera's Polars backend with the equivalent schema (Polars frame).
2. ``validate_vs_pandas_s``: the same against Pandera's pandas backend (pandas frame).
3. ``validate_vs_gx_s``: the same against a Great Expectations 1.x suite (pandas frame).
4. ``validate_floor_s``: the same against the floor, Pandera's checks hand-written as one
   Polars ``select`` (Polars frame): how close the full check set comes to the least work.
5. ``drift_s``: ``detect_drift`` against Evidently's ``DataDriftPreset`` (pandas frames),
   with the drifted columns each one flags.
6. ``profile_s``: ``profile`` against the floor, one hand-written Polars ``select``.
7. ``validate_<shape>_s``: ``validate`` on the main frame (``base``) and on other shapes
   of data (sparse and text ids, datetimes, many small text columns, 200 columns, 3
   columns; bench/_data_shapes.py) against Pandera pandas, with Pandera Polars and the
   floor on the same line; every tool in one process, interleaved, best of 15 (5 quick).

The frames (1,000,000 rows x 20 columns; 100,000 with --quick) are generated once and
written as Parquet to the work folder. Every tool then runs in a fresh process of its own
that loads its inputs (not timed), times the operation (median of 3 after a warm-up) and
measures its peak memory, so no tool pays for another's caches or heap. Evidently 0.7
does not import under pandas 3: it runs with the interpreter of ``.venv-evidently``
(``--evidently-python``), and is skipped with a note when that is missing.

    python bench/data.py [--quick] [--only NAME] [--workdir DIR] [--evidently-python PATH]
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    Results,
    exit_code,
    make_parser,
    measure,
    progress,
    reset_peak_rss,
    rss_mb,
    run_figures,
    timed,
    work_folder,
)
from _data_shapes import SHAPES, inject

# the main frame ("base") and the other shapes of data validated (see _data_shapes.py)
SHAPE_NAMES = ("base", *SHAPES)
SHAPE_FIGURES = {f"validate_{name}_s": name for name in SHAPE_NAMES}
FIGURES = (
    "validate_s",
    "validate_vs_pandas_s",
    "validate_vs_gx_s",
    "validate_floor_s",
    "drift_s",
    "profile_s",
    *SHAPE_FIGURES,
)
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EVIDENTLY_PYTHON = ROOT / ".venv-evidently" / "bin" / "python"
CHILD_FLAG = "--child"  # internal: run one tool's measurement (see child_main)
CHILD_PREFIX = "CHILD "

FULL_ROWS = 1_000_000
QUICK_ROWS = 100_000
REPEAT = 3  # timed runs per operation (median)
WARMUP_BELOW_S = 10.0  # a first call faster than this is a warm-up, not timed
EVIDENTLY_SINGLE_ABOVE_S = 30.0  # full mode: one Evidently run when it takes longer

# The 20 columns (see generate()): 12 floats, 4 integers (one an id), 4 text categoricals.
FLOATS = tuple(f"f{j}" for j in range(12))
INTEGERS = ("id", "age", "items", "year")
CATEGORIES = {"c0": 5, "c1": 8, "c2": 12, "c3": 20}  # levels per categorical column
NULL_SHARE = {"f10": 0.02, "f11": 0.01, "c3": 0.01}  # nullable columns (others never null)
DRIFTED = ("f0", "f3", "f7", "age", "c1")  # what make_drifted() moves
DRIFT_COLUMNS = tuple(c for c in (*FLOATS, *INTEGERS, *CATEGORIES) if c != "id")
# Problems put in a copy of the clean batch: (column, kind loopwise reports, rows).
PROBLEMS = (("f0", "out_of_range", 7), ("c0", "new_value", 25), ("f1", "null_values", 30))

# figure -> (loopwise operation, its input, alternative operation, the alternative's name)
PLAN = {
    "validate_s": ("lw_validate", "polars", "pandera_polars", "pandera_polars"),
    "validate_vs_pandas_s": ("lw_validate", "pandas", "pandera_pandas", "pandera_pandas"),
    "validate_vs_gx_s": ("lw_validate", "pandas", "gx", "great_expectations"),
    "validate_floor_s": ("lw_validate", "polars", "validate_floor", "polars_floor_checks"),
    "drift_s": ("lw_drift", "pandas", "evidently", "evidently"),
    "profile_s": ("lw_profile", "polars", "polars_floor", "polars_floor"),
}


# -- the data -------------------------------------------------------------------------------


def generate(rows: int, seed: int, id_start: int = 0):
    """``rows`` x 20 columns: an id, 12 floats, 3 more integers, 4 text categoricals."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {"id": rng.permutation(rows).astype(np.int64) + id_start}
    for j, name in enumerate(FLOATS):
        if j % 3 == 0:
            columns[name] = rng.normal(10.0 * j, 1.0 + j, rows)
        elif j % 3 == 1:
            columns[name] = rng.lognormal(1.0 + j / 10, 0.5, rows)
        else:
            columns[name] = rng.uniform(-j, 3.0 * j, rows)
    columns["age"] = rng.integers(18, 91, rows)
    columns["items"] = rng.poisson(40, rows)
    columns["year"] = rng.integers(1990, 2025, rows)
    frame = pl.DataFrame(columns)
    for name, levels in CATEGORIES.items():
        weights = np.linspace(1.0, 3.0, levels)
        frame = frame.with_columns(
            _labels(name, rng.choice(levels, rows, p=weights / weights.sum()))
        )
    nulls = [
        pl.when(pl.Series(rng.random(rows) < share)).then(None).otherwise(pl.col(name)).alias(name)
        for name, share in NULL_SHARE.items()
    ]
    return frame.with_columns(nulls)


def _labels(name: str, codes: Any):
    import polars as pl

    levels = pl.Series([f"{name}_{chr(97 + i)}" for i in range(CATEGORIES[name])])
    return levels.gather(pl.Series(codes)).alias(name)


def make_drifted(current, seed: int):
    """``current`` with the means of f0, f3, f7 and age moved and the mix of c1 changed."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    levels = CATEGORIES["c1"]
    mix = np.array([0.4, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
    assert len(mix) == levels
    return current.with_columns(
        pl.col("f0") + 0.5,  # normal, std 1: +0.5 std
        pl.col("f3") + 1.6,  # normal, std 4: +0.4 std
        pl.col("f7") * 1.5,  # lognormal: mean x1.5
        pl.col("age") + 5,  # uniform 18-90 (std 21): about +0.24 std
        _labels("c1", rng.choice(levels, current.height, p=mix)),
    )


def make_problems(current):
    """``current`` with the PROBLEMS: values out of range, a new category, nulls."""
    import polars as pl

    row = pl.int_range(pl.len())
    (f0, _, n_range), (c0, _, n_new), (f1, _, n_null) = PROBLEMS
    return current.with_columns(
        pl.when(row < n_range).then(1e9).otherwise(pl.col(f0)).alias(f0),
        pl.when((row >= 100) & (row < 100 + n_new))
        .then(pl.lit("c0_new"))
        .otherwise(pl.col(c0))
        .alias(c0),
        pl.when((row >= 200) & (row < 200 + n_null)).then(None).otherwise(pl.col(f1)).alias(f1),
    )


def prepare(folder: Path, rows: int) -> None:
    """Write the frames as Parquet and the schema inferred from the clean data as YAML."""
    from loopwise.data.schema_inference import infer_schema

    start = time.perf_counter()
    reference = generate(rows, 1)
    current = generate(rows, 2, id_start=rows)  # a fresh clean batch, new ids
    frames = {
        "reference": reference,
        "current": current,
        "drifted": make_drifted(current, 3),
        "problems": make_problems(current),
    }
    for name, frame in frames.items():
        frame.write_parquet(folder / f"{name}.parquet")
    infer_schema(reference).save(folder / "schema.yaml")
    progress(
        f"data: 4 frames of {rows:,} rows x {reference.width} columns and the inferred "
        f"schema in {time.perf_counter() - start:.1f}s"
    )


# -- one tool in a fresh process --------------------------------------------------------------


def child_main(spec: dict[str, Any]) -> int:
    """Load the inputs, time the operation, print the measurement as one JSON line."""
    if spec["op"] == "shape":
        return shape_main(spec)
    warnings.filterwarnings("ignore")
    op, folder = spec["op"], Path(spec["folder"])
    fn, check = OPERATIONS[op](folder, spec)
    m = measure(
        fn,
        repeat=REPEAT,
        warmup_below=WARMUP_BELOW_S,
        single_above=spec.get("single_above"),
    )
    out = {
        "seconds": m.seconds,
        "times": m.times,
        "peak_mb": m.peak_mb,
        "memory_method": m.memory_method,
        "info": check(m.value),
    }
    print(CHILD_PREFIX + json.dumps(out), flush=True)
    return 0


def _read(folder: Path, name: str, kind: str):
    path = folder / f"{name}.parquet"
    if kind == "polars":
        import polars as pl

        return pl.read_parquet(path)
    import pandas as pd

    return pd.read_parquet(path)


def _schema(folder: Path):
    from loopwise.data.schema import Schema

    return Schema.load(folder / "schema.yaml")


def _keys(schema) -> set[str]:
    return {key[0] for key in schema.keys if len(key) == 1}


def op_lw_validate(folder: Path, spec: dict[str, Any]):
    from loopwise.data.validation import validate

    schema = _schema(folder)
    current = _read(folder, "current", spec["input"])
    problems = _read(folder, "problems", spec["input"])

    def check(report) -> dict[str, Any]:
        return {"clean": _lw_summary(report), "problems": _lw_summary(validate(problems, schema))}

    return (lambda: validate(current, schema)), check


def _lw_summary(report) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "anomalies": [[a.kind, a.severity, a.column, a.count] for a in report.anomalies],
    }


def _pandera_checks(pa, column) -> list[Any]:
    checks = []
    if column.min is not None or column.max is not None:
        checks.append(pa.Check.in_range(column.min, column.max))
    if column.domain is not None:
        checks.append(pa.Check.isin(column.domain))
    return checks


def pandera_schema(schema, backend: str, frame=None):
    """Pandera's version of a loopwise schema: what both can express.

    Per column: dtype, nullability, ``in_range(min, max)``, ``isin(domain)``, ``unique``
    for key columns; for the frame: no other columns (``strict``), order when the schema
    is ordered, and no duplicate rows (``unique`` over every column) when loopwise checks
    them and no key implies it (:func:`checks_duplicate_rows`). loopwise's statistical
    checks (missing rate against the source data, placeholder values, pinned values, label
    balance) have no Pandera equivalent and are left out. Datetime columns (whose unit and
    time zone the loopwise type leaves open) take the dtype they have in ``frame``.
    """
    if backend == "polars":
        import pandera.polars as pa
        import polars as pl

        dtypes = {"float": pl.Float64, "integer": pl.Int64, "string": pl.String}
        actual = {} if frame is None else dict(frame.schema)
    else:
        import pandera.pandas as pa

        dtypes = {"float": "float64", "integer": "int64", "string": str}
        actual = {} if frame is None else frame.dtypes.to_dict()
    keys = _keys(schema)
    columns = {
        name: pa.Column(
            dtypes[c.type] if c.type in dtypes else actual[name],
            _pandera_checks(pa, c),
            nullable=c.nullable,
            unique=name in keys,
            required=c.required,
        )
        for name, c in schema.columns.items()
    }
    return pa.DataFrameSchema(
        columns,
        strict=True,
        ordered=schema.ordered,
        unique=list(schema.columns) if checks_duplicate_rows(schema) else None,
    )


def checks_duplicate_rows(schema) -> bool:
    """Whether the alternatives need a duplicate-row check to match loopwise's.

    loopwise reports duplicate rows when ``max_duplicate_share`` is 0; a unique key makes
    every row distinct, so with one the check is implied and not repeated (on 1,000,000
    rows it would add about 1.1 s to Pandera pandas and 0.15 s to Pandera Polars).
    """
    return schema.thresholds.max_duplicate_share == 0 and not _keys(schema)


def _op_pandera(folder: Path, backend: str):
    kind = "polars" if backend == "polars" else "pandas"
    current = _read(folder, "current", kind)
    problems = _read(folder, "problems", kind)
    run, summary = pandera_runner(_schema(folder), backend, current)

    def check(error) -> dict[str, Any]:
        return {"clean": summary(error), "problems": summary(run(problems))}

    return (lambda: run(current)), check


def pandera_runner(schema, backend: str, frame):
    """(run, summary): Pandera's lazy validation of a frame, returning its SchemaErrors
    or None, and a summary of that result: (column, check, failure cases)."""
    from pandera.errors import SchemaErrors

    checker = pandera_schema(schema, backend, frame)

    def run(frame) -> Any:
        try:
            checker.validate(frame, lazy=True)
        except SchemaErrors as e:
            return e
        return None

    def summary(error) -> dict[str, Any]:
        if error is None:
            return {"ok": True, "failures": []}
        cases = error.failure_cases
        rows = cases.to_dicts() if hasattr(cases, "to_dicts") else cases.to_dict("records")
        counts = Counter((str(r.get("column")), str(r.get("check"))) for r in rows)
        return {"ok": False, "failures": [[c, k, n] for (c, k), n in sorted(counts.items())]}

    return run, summary


def op_pandera_polars(folder: Path, spec: dict[str, Any]):
    return _op_pandera(folder, "polars")


def op_pandera_pandas(folder: Path, spec: dict[str, Any]):
    return _op_pandera(folder, "pandas")


def validate_floor(frame, schema) -> dict[str, Any]:
    """The floor of validation: what Pandera checks here, hand-written as ONE Polars
    ``select`` (nulls in non-nullable columns, values out of range, values outside the
    domain, repeated keys) plus the column names, and ``is_duplicated`` over the rows
    where Pandera checks repeated rows; the same failures as Pandera's."""
    import polars as pl

    failures = []
    names = list(schema.columns)
    if sorted(frame.columns) != sorted(names) or (schema.ordered and frame.columns != names):
        failures.append(["<frame>", "columns", 1])
    exprs = []
    for name, c in schema.columns.items():
        if name not in frame.columns:
            continue
        col = pl.col(name)
        if not c.nullable:
            exprs.append(col.null_count().alias(f"{name}|not_nullable"))
        if c.min is not None or c.max is not None:
            low = col < c.min if c.min is not None else pl.lit(False)
            high = col > c.max if c.max is not None else pl.lit(False)
            exprs.append((low | high).sum().alias(f"{name}|in_range"))
        if c.domain is not None:
            exprs.append((~col.is_in(list(c.domain))).sum().alias(f"{name}|isin"))
        if name in _keys(schema):
            exprs.append((pl.len() - col.n_unique()).alias(f"{name}|unique"))
    counts = frame.select(exprs).row(0, named=True)
    if checks_duplicate_rows(schema) and set(names) <= set(frame.columns):
        counts["<frame>|unique"] = frame.select(names).is_duplicated().sum()
    for alias, n in counts.items():
        if n:
            column, check = alias.split("|")
            failures.append([column, check, int(n)])
    return {"ok": not failures, "failures": failures}


def op_validate_floor(folder: Path, spec: dict[str, Any]):
    schema = _schema(folder)
    current = _read(folder, "current", "polars")
    problems = _read(folder, "problems", "polars")

    def check(result) -> dict[str, Any]:
        return {"clean": result, "problems": validate_floor(problems, schema)}

    return (lambda: validate_floor(current, schema)), check


def op_gx(folder: Path, spec: dict[str, Any]):
    """A Great Expectations suite equivalent to the loopwise schema (ephemeral context,
    pandas datasource); only ``ValidationDefinition.run`` is timed."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import logging

    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    schema = _schema(folder)
    current = _read(folder, "current", "pandas")
    problems = _read(folder, "problems", "pandas")
    text = str(pd.Series(["a"]).dtype)  # "str" under pandas 3, "object" before
    types = {"float": "float64", "integer": "int64", "string": text}

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # a bar per run
    asset = context.data_sources.add_pandas("bench").add_dataframe_asset("frame")
    batch = asset.add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add(gx.ExpectationSuite(name="bench"))
    keys = _keys(schema)
    for name, c in schema.columns.items():
        suite.add_expectation(gxe.ExpectColumnValuesToBeOfType(column=name, type_=types[c.type]))
        if not c.nullable:
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=name))
        if c.min is not None or c.max is not None:
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeBetween(column=name, min_value=c.min, max_value=c.max)
            )
        if c.domain is not None:
            suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=c.domain))
        if name in keys:
            suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=name))
    if checks_duplicate_rows(schema):
        suite.add_expectation(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(schema.columns)))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(data=batch, suite=suite, name="bench")
    )

    def run(frame) -> Any:
        return definition.run(batch_parameters={"dataframe": frame})

    def summary(result) -> dict[str, Any]:
        failed = [
            [r.expectation_config.type, r.expectation_config.kwargs.get("column"),
             r.result.get("unexpected_count")]
            for r in result.results
            if not r.success
        ]  # fmt: skip
        return {"ok": bool(result.success), "failures": failed, "expectations": len(result.results)}

    def check(result) -> dict[str, Any]:
        return {"clean": summary(result), "problems": summary(run(problems))}

    return (lambda: run(current)), check


def op_lw_drift(folder: Path, spec: dict[str, Any]):
    from loopwise.data.drift.detect import detect_drift

    reference = _read(folder, "reference", spec["input"])
    drifted = _read(folder, "drifted", spec["input"])
    columns = list(spec["columns"])

    def check(report) -> dict[str, Any]:
        scores = {n: [r.test, r.statistic, r.threshold] for n, r in report.columns.items()}
        return {"drifted": report.drifted_columns, "scores": scores}

    return (lambda: detect_drift(reference, drifted, columns=columns)), check


def op_evidently(folder: Path, spec: dict[str, Any]):
    """Evidently 0.7: ``Report([DataDriftPreset()]).run(current, reference)``; runs with
    the interpreter of .venv-evidently (pandas < 3), so it imports pandas only."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = _read(folder, "reference", "pandas")
    drifted = _read(folder, "drifted", "pandas")
    columns = list(spec["columns"])

    def run() -> Any:
        # include_tests: each column's verdict (drift_detected) comes back as a test result
        report = Report([DataDriftPreset(columns=columns)], include_tests=True)
        return report.run(drifted, reference)

    def check(snapshot) -> dict[str, Any]:
        flagged = [
            t.metric_config.params["column"]
            for t in snapshot.tests_results
            if t.id == "drift" and str(getattr(t.status, "value", t.status)) == "FAIL"
        ]
        scores = {}
        for metric in snapshot.dict()["metrics"]:
            config = metric.get("config", {})
            if config.get("type", "").endswith("ValueDrift"):
                scores[config["column"]] = [config["method"], metric["value"], config["threshold"]]
        return {"drifted": [c for c in columns if c in flagged], "scores": scores}

    return run, check


def op_lw_profile(folder: Path, spec: dict[str, Any]):
    from loopwise.data.profiling import profile

    frame = _read(folder, "reference", "polars")
    return (lambda: profile(frame)), lambda p: {"columns": len(p.columns)}


QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)  # loopwise profile's quantiles


def polars_floor(frame):
    """The floor: ONE Polars select with null count, min, max, n_unique per column, plus
    mean, std and the 7 quantiles of numeric columns (what a hand-written profile needs).

    The quantiles are one expression per column where Polars takes a list of them (one
    sort; 7 separate ``quantile`` calls cost 7x as much).
    """
    import polars as pl

    exprs = []
    many = _list_quantiles()
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        stats = [col.null_count(), col.min(), col.max(), col.n_unique()]
        if dtype.is_numeric():
            stats += [col.mean(), col.std()]
            if many:
                stats.append(col.quantile(list(QUANTILES), interpolation="linear"))
            else:
                stats += [col.quantile(q, interpolation="linear") for q in QUANTILES]
        exprs += [s.alias(f"{name}:{i}") for i, s in enumerate(stats)]
    return frame.select(exprs)


def _list_quantiles() -> bool:
    """Whether this Polars computes a list of quantiles in one expression."""
    import polars as pl

    try:
        pl.select(pl.lit(1.0).quantile([0.5, 0.9], interpolation="linear"))
    except Exception:
        return False
    return True


def op_polars_floor(folder: Path, spec: dict[str, Any]):
    frame = _read(folder, "reference", "polars")
    return (lambda: polars_floor(frame)), lambda out: {"stats": out.width}


OPERATIONS = {
    "lw_validate": op_lw_validate,
    "pandera_polars": op_pandera_polars,
    "pandera_pandas": op_pandera_pandas,
    "gx": op_gx,
    "validate_floor": op_validate_floor,
    "lw_drift": op_lw_drift,
    "evidently": op_evidently,
    "lw_profile": op_lw_profile,
    "polars_floor": op_polars_floor,
}


# -- validation on other shapes: every tool in one process, interleaved ---------------------

SHAPE_TOOLS = ("loopwise", "pandera_pandas", "loopwise_polars", "pandera_polars", "floor")
SHAPE_REPEAT = {True: 5, False: 15}  # timed rounds (best of), by --quick
SHAPE_TARGET = 2.0  # loopwise at least this many times faster than Pandera pandas
# the floor's check for each injected problem
FLOOR_CHECK = {"out_of_range": "in_range", "new_value": "isin", "null_values": "not_nullable"}


def shape_main(spec: dict[str, Any]) -> int:
    """Every tool on one shape in this one process, interleaved: after a warm-up call of
    each (its peak memory measured), ``repeat`` rounds of one call of each, the first
    tool rotating, so the machine's load falls on all of them alike; best and median."""
    import statistics

    from loopwise.data.validation import validate

    warnings.filterwarnings("ignore")
    folder, repeat = Path(spec["folder"]), int(spec["repeat"])
    schema = _schema(folder)
    frames = {kind: _read(folder, "current", kind) for kind in ("pandas", "polars")}
    pandera = {kind: pandera_runner(schema, kind, frames[kind]) for kind in frames}
    tools = {
        "loopwise": lambda: validate(frames["pandas"], schema),
        "pandera_pandas": lambda: pandera["pandas"][0](frames["pandas"]),
        "loopwise_polars": lambda: validate(frames["polars"], schema),
        "pandera_polars": lambda: pandera["polars"][0](frames["polars"]),
        "floor": lambda: validate_floor(frames["polars"], schema),
    }
    load = [os.getloadavg()[0]]
    peaks, values = {}, {}
    for name, fn in tools.items():
        gc.collect()
        exact = reset_peak_rss()
        before = rss_mb() if exact else None
        values[name] = fn()
        after = rss_mb("VmHWM") if exact else None
        peaks[name] = None if before is None or after is None else max(0.0, after - before)
    times: dict[str, list[float]] = {name: [] for name in tools}
    cpu: dict[str, list[float]] = {name: [] for name in tools}
    order = list(tools)
    for r in range(repeat):
        for name in order[r % len(order) :] + order[: r % len(order)]:
            start = time.process_time()  # every thread of this process
            seconds, _ = timed(tools[name])
            cpu[name].append(time.process_time() - start)
            times[name].append(seconds)
    load.append(os.getloadavg()[0])
    rows, width = frames["polars"].height, frames["polars"].width
    frames.clear()  # the clean frames are freed before the problems are read
    info = _shape_checks(folder, schema, values, pandera)
    out = {
        "best": {n: min(t) for n, t in times.items()},
        "median": {n: statistics.median(t) for n, t in times.items()},
        "cpu": {n: min(t) for n, t in cpu.items()},
        "times": times,
        "peak_mb": peaks,
        "load": load,
        "rows": rows,
        "columns": width,
        "info": info,
    }
    print(CHILD_PREFIX + json.dumps(out), flush=True)
    return 0


def _shape_checks(folder: Path, schema, values, pandera) -> dict[str, Any]:
    """What each tool says of the clean batch (the warm-up's result) and of the batch with
    the injected problems (not timed)."""
    from loopwise.data.validation import validate

    bad = {kind: _read(folder, "problems", kind) for kind in ("pandas", "polars")}
    return {
        "loopwise": {
            "clean": _lw_summary(values["loopwise"]),
            "problems": _lw_summary(validate(bad["pandas"], schema)),
        },
        "loopwise_polars": {
            "clean": _lw_summary(values["loopwise_polars"]),
            "problems": _lw_summary(validate(bad["polars"], schema)),
        },
        **{
            f"pandera_{kind}": {
                "clean": summary(values[f"pandera_{kind}"]),
                "problems": summary(run(bad[kind])),
            }
            for kind, (run, summary) in pandera.items()
        },
        "floor": {"clean": values["floor"], "problems": validate_floor(bad["polars"], schema)},
    }


def prepare_shape(folder: Path, name: str, rows: int) -> Path:
    """Write a shape's frames (reference, a fresh batch, the batch with its problems) and
    the schema inferred from the reference to a folder of its own; return the folder."""
    from loopwise.data.schema_inference import infer_schema

    shape = SHAPES[name]
    rows = max(rows // shape.rows_divisor, 1_000)
    start = time.perf_counter()
    where = folder / f"shape-{name}"
    where.mkdir(exist_ok=True)
    reference = shape.generate(rows, 11, 0)
    infer_schema(reference).save(where / "schema.yaml")
    reference.write_parquet(where / "reference.parquet")
    del reference
    current = shape.generate(rows, 12, rows)  # a fresh batch, new keys
    current.write_parquet(where / "current.parquet")
    inject(current, shape.problems).write_parquet(where / "problems.parquet")
    progress(
        f"{name}: frames of {rows:,} rows x {current.width} columns and the inferred schema "
        f"in {time.perf_counter() - start:.1f}s"
    )
    return where


def _shape_problems(name: str):
    if name == "base":
        return PROBLEMS
    return SHAPES[name].problems


def _shape_about(name: str) -> str:
    if name == "base":
        return "20 columns: a dense integer key, 12 floats, 3 ints, 4 text columns (the main frame)"
    return SHAPES[name].about


# -- the parent: data, one child per tool, figures ------------------------------------------


@dataclass
class Outcome:
    seconds: float
    times: list[float]
    peak_mb: float | None
    memory_method: str
    info: dict[str, Any]


class Bench:
    def __init__(self, folder: Path, quick: bool, evidently_python: Path, rows: int) -> None:
        self.folder = folder
        self.quick = quick
        self.rows = rows
        self.evidently_python = evidently_python
        self.results = Results("data")
        self.failed_checks: list[str] = []
        self.cache: dict[tuple[str, str], Outcome] = {}

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.failed_checks.append(message)
            print(f"CHECK FAILED: {message}", file=sys.stderr, flush=True)

    def run(self, op: str, kind: str = "") -> Outcome | None:
        """One tool's measurement, in a fresh process (cached: figures share loopwise's)."""
        if (op, kind) in self.cache:
            return self.cache[(op, kind)]
        python = Path(sys.executable)
        spec: dict[str, Any] = {"op": op, "folder": str(self.folder), "input": kind}
        if op in ("lw_drift", "evidently"):
            spec["columns"] = list(DRIFT_COLUMNS)
        if op == "evidently":
            if not self.evidently_python.exists():
                print(
                    f"NOTE: Evidently skipped: no interpreter at {self.evidently_python}. "
                    "Create it with `python3 -m venv .venv-evidently && .venv-evidently/bin/pip "
                    "install 'evidently==0.7.23' 'pandas<3' pyarrow` (Evidently 0.7 does not "
                    "import under pandas 3), or pass --evidently-python PATH.",
                    flush=True,
                )
                return None
            python = self.evidently_python
            if not self.quick:
                spec["single_above"] = EVIDENTLY_SINGLE_ABOVE_S
        label = f"{op}({kind})" if kind else op
        child = self.child(python, spec, label)
        if child is None:
            return None
        seconds, measured = child
        out = Outcome(**measured)
        runs = ", ".join(f"{t:.3f}" for t in out.times)
        peak = "?" if out.peak_mb is None else f"{out.peak_mb:,.0f} MB"
        progress(f"{label}: runs {runs} s, peak +{peak}; process {seconds:.1f}s")
        self.cache[(op, kind)] = out
        return out

    def child(
        self, python: Path, spec: dict[str, Any], label: str
    ) -> tuple[float, dict[str, Any]] | None:
        """Run ``spec`` in a fresh process: its wall time and the JSON it printed."""
        progress(f"{label} in a fresh process ...")
        seconds, proc = timed(
            lambda: subprocess.run(
                [str(python), str(Path(__file__).resolve()), CHILD_FLAG, json.dumps(spec)],
                stdout=subprocess.PIPE,
                text=True,
                check=False,
            )
        )
        lines = [s for s in proc.stdout.splitlines() if s.startswith(CHILD_PREFIX)]
        if proc.returncode != 0 or not lines:
            self.check(False, f"{label} failed (exit {proc.returncode}); see its stderr above")
            return None
        return seconds, json.loads(lines[-1][len(CHILD_PREFIX) :])

    def shape_figure(self, metric: str) -> None:
        """Every tool on one shape of data, in one process (see :func:`shape_main`)."""
        name = SHAPE_FIGURES[metric]
        where = self.folder if name == "base" else prepare_shape(self.folder, name, self.rows)
        spec = {"op": "shape", "folder": str(where), "repeat": SHAPE_REPEAT[self.quick]}
        child = self.child(Path(sys.executable), spec, f"shape {name}")
        if child is None:
            return
        seconds, out = child
        best, median = out["best"], out["median"]
        progress(f"shape {name}: process {seconds:.1f}s")
        lw, pandas_ = best["loopwise"], best["pandera_pandas"]
        lw_pl, polars_, floor = best["loopwise_polars"], best["pandera_polars"], best["floor"]
        extra: dict[str, Any] = {
            "shape": name,
            "rows": out["rows"],
            "columns": out["columns"],
            "loopwise_polars": lw_pl,
            "pandera_polars": polars_,
            "ratio_polars": polars_ / lw_pl,
            "polars_floor_checks": floor,
            "over_floor": lw_pl / floor,
            "target_met": pandas_ / lw >= SHAPE_TARGET,
            "best_of": len(out["times"]["loopwise"]),
            **{f"{tool}_median": median[tool] for tool in SHAPE_TOOLS},
            **{f"{tool}_cpu": out["cpu"][tool] for tool in SHAPE_TOOLS},
            **{f"{tool}_peak_mb": _mb(out["peak_mb"][tool]) for tool in SHAPE_TOOLS},
            "load": [round(x, 2) for x in out["load"]],
        }
        runs = "; ".join(
            f"{tool} {'/'.join(f'{t:.3f}' for t in out['times'][tool])}" for tool in SHAPE_TOOLS
        )
        notes = [
            f"{_shape_about(name)}; {out['rows']:,} rows; every tool in one process, "
            f"interleaved, best of {extra['best_of']} (1-min load {extra['load'][0]} -> "
            f"{extra['load'][1]})",
            f"vs Pandera Polars (Polars input): loopwise {lw_pl:.3f} s | pandera_polars "
            f"{polars_:.3f} s | {polars_ / lw_pl:.2f}x; the floor (the same checks in one "
            f"Polars select) {floor:.3f} s, loopwise at {lw_pl / floor:.2f}x the floor",
            f"target: {SHAPE_TARGET:g}x Pandera pandas "
            f"{'met' if extra['target_met'] else 'NOT met'}; medians: loopwise "
            f"{median['loopwise']:.3f} s, pandera_pandas {median['pandera_pandas']:.3f} s "
            f"({median['pandera_pandas'] / median['loopwise']:.2f}x); CPU seconds (best): "
            + ", ".join(f"{tool} {out['cpu'][tool]:.3f}" for tool in SHAPE_TOOLS),
            f"runs (s): {runs}",
            "peak memory above the loaded inputs: "
            + ", ".join(f"{tool} {_mem(out['peak_mb'][tool])}" for tool in SHAPE_TOOLS),
            *self.shape_checks(metric, name, out["info"]),
        ]
        self.results.add_against(
            metric,
            lw,
            "pandera_pandas",
            pandas_,
            higher_is_better=False,
            unit="s",
            note="\n    ".join(notes),
            extra=extra,
        )

    def shape_checks(self, metric: str, name: str, info: dict[str, Any]) -> list[str]:
        """loopwise (either input) finds no error in the clean batch and exactly the
        injected problems, the same report from pandas as from Polars; the floor finds
        exactly them too; Pandera passes the clean batch and fails the other."""
        problems = _shape_problems(name)
        lines = []
        for tool in ("loopwise", "loopwise_polars"):
            clean, bad = info[tool]["clean"], info[tool]["problems"]
            errors = [a for a in clean["anomalies"] if a[1] == "error"]
            self.check(not errors, f"{metric}: {tool} reports errors on the clean batch: {errors}")
            found = {(a[0], a[2]): a[3] for a in bad["anomalies"]}
            for column, kind, rows in problems:
                got = found.get((kind, column))
                self.check(got == rows, f"{metric}: {tool} {kind} on {column}: {got}, want {rows}")
        self.check(
            info["loopwise"] == info["loopwise_polars"],
            f"{metric}: loopwise reports differ between pandas and Polars input: "
            f"{info['loopwise']} vs {info['loopwise_polars']}",
        )
        bad = info["loopwise"]["problems"]["anomalies"]
        lines.append(
            f"clean batch: loopwise {len(info['loopwise']['clean']['anomalies'])} anomalies "
            f"(no errors); injected problems: loopwise "
            + ", ".join(f"{k} {c} {n} ({s})" for k, s, c, n in bad)
        )
        floor = info["floor"]
        want = sorted([c, FLOOR_CHECK[k], n] for c, k, n in problems)
        self.check(floor["clean"]["ok"], f"{metric}: the floor fails the clean batch: {floor}")
        self.check(
            sorted(floor["problems"]["failures"]) == want,
            f"{metric}: the floor found {floor['problems']['failures']}, want {want}",
        )
        for tool in ("pandera_pandas", "pandera_polars"):
            clean, bad = info[tool]["clean"], info[tool]["problems"]
            self.check(clean["ok"], f"{metric}: {tool} fails the clean batch: {clean}")
            self.check(not bad["ok"], f"{metric}: {tool} passes the batch with problems")
            lines.append(
                f"{tool}: clean batch {'ok' if clean['ok'] else 'FAILED'}; injected problems: "
                + ", ".join(f"{c} {k} {n}" for c, k, n in bad["failures"])
            )
        return lines

    def figure(self, metric: str) -> None:
        if metric in SHAPE_FIGURES:
            return self.shape_figure(metric)
        lw_op, kind, alt_op, alt = PLAN[metric]
        lw = self.run(lw_op, kind)
        polars_input = alt_op in ("pandera_polars", "polars_floor", "validate_floor")
        other = self.run(alt_op, "polars" if polars_input else "")
        if lw is None:
            return
        extra: dict[str, Any] = {
            "loopwise_peak_mb": _mb(lw.peak_mb),
            f"{alt}_peak_mb": None if other is None else _mb(other.peak_mb),
        }
        notes = [self.describe(metric, lw, other)]
        if metric.startswith("validate"):
            notes += self.validation_checks(metric, lw, other, alt)
        if metric == "drift_s":
            same, lines = self.drift_checks(lw, other)
            extra["same_drifted_columns"] = same
            notes += lines
        self.results.add_against(
            metric,
            lw.seconds,
            alt,
            None if other is None else other.seconds,
            higher_is_better=False,
            unit="s",
            note="\n    ".join(notes),
            extra=extra,
        )

    def describe(self, metric: str, lw: Outcome, other: Outcome | None) -> str:
        _, kind, _, alt = PLAN[metric]
        what = {
            "validate_s": "validate(clean batch, inferred schema) vs Pandera Polars, lazy=True",
            "validate_vs_pandas_s": "validate(pandas frame) vs Pandera pandas, lazy=True",
            "validate_vs_gx_s": "validate(pandas frame) vs GX ValidationDefinition.run",
            "validate_floor_s": "validate(clean batch) vs the same checks as Pandera's in one "
            "hand-written Polars select",
            "drift_s": "detect_drift(reference, drifted) vs Evidently DataDriftPreset",
            "profile_s": "profile(frame) vs one hand-written Polars select",
        }[metric]
        runs = _runs(lw)
        text = f"{what}; {kind} input; loopwise runs {runs}"
        if other is not None:
            text += f", {alt} runs {_runs(other)}"
        mem = f"peak memory above the loaded inputs: loopwise {_mem(lw.peak_mb)}"
        if other is not None:
            mem += f", {alt} {_mem(other.peak_mb)} ({other.memory_method})"
        return f"{text}\n    {mem}"

    def validation_checks(
        self, metric: str, lw: Outcome, other: Outcome | None, alt: str
    ) -> list[str]:
        lines = []
        clean, bad = lw.info["clean"], lw.info["problems"]
        errors = [a for a in clean["anomalies"] if a[1] == "error"]
        self.check(not errors, f"{metric}: loopwise reports errors on the clean batch: {errors}")
        found = {(a[0], a[2]): a[3] for a in bad["anomalies"]}
        for column, kind, rows in PROBLEMS:
            got = found.get((kind, column))
            self.check(got == rows, f"{metric}: loopwise {kind} on {column}: {got}, want {rows}")
        shown = ", ".join(f"{k} {c} {n} ({s})" for k, s, c, n in bad["anomalies"])
        lines.append(
            f"clean batch: loopwise {'ok' if clean['ok'] else 'FAILED'} "
            f"({len(clean['anomalies'])} anomalies); injected problems: loopwise "
            f"{'ok' if bad['ok'] else 'failed'}: {shown}"
        )
        if other is not None:
            o_clean, o_bad = other.info["clean"], other.info["problems"]
            failures = ", ".join(f"{c} {k} {n}" for c, k, n in o_bad["failures"])
            lines.append(
                f"clean batch: {alt} {'ok' if o_clean['ok'] else 'FAILED ' + str(o_clean)}; "
                f"injected problems: {alt} {'ok (missed them!)' if o_bad['ok'] else 'failed'}: "
                f"{failures}"
            )
        return lines

    def drift_checks(self, lw: Outcome, other: Outcome | None) -> tuple[bool | None, list[str]]:
        mine = lw.info["drifted"]
        self.check(
            sorted(mine) == sorted(DRIFTED),
            f"drift_s: loopwise flagged {mine}, the data drifted in {list(DRIFTED)}",
        )
        lines = [f"drifted columns: made {list(DRIFTED)}; loopwise {mine}"]
        if other is None:
            return None, lines
        theirs = other.info["drifted"]
        same = sorted(mine) == sorted(theirs)
        lines[0] += f"; evidently {theirs}; {'same' if same else 'DIFFERENT'}"
        if not same:
            for column in sorted(set(mine) ^ set(theirs)):
                lines.append(
                    f"  {column}: loopwise {lw.info['scores'].get(column)}, "
                    f"evidently {other.info['scores'].get(column)}"
                )
        return same, lines


def _runs(out: Outcome) -> str:
    return "/".join(f"{t:.3f}" for t in out.times) + " s"


def _mem(peak: float | None) -> str:
    return "?" if peak is None else f"{peak:,.0f} MB"


def _mb(peak: float | None) -> float | None:
    return None if peak is None else round(peak, 1)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CHILD_FLAG]:
        return child_main(json.loads(argv[1]))
    parser = make_parser(__doc__.splitlines()[0], FIGURES)
    parser.add_argument(
        "--evidently-python",
        type=Path,
        default=DEFAULT_EVIDENTLY_PYTHON,
        metavar="PATH",
        help="interpreter with Evidently 0.7 and pandas < 3 (default: .venv-evidently/bin/python)",
    )
    args = parser.parse_args(argv)
    rows = QUICK_ROWS if args.quick else FULL_ROWS
    figures = [args.only] if args.only else list(FIGURES)
    mode = "quick" if args.quick else "full"
    print(f"bench data ({mode}, {rows:,} rows x 20 columns): {', '.join(figures)}", flush=True)
    with work_folder(args.workdir, "bench-data-") as folder:
        if any(SHAPE_FIGURES.get(f, "base") == "base" for f in figures):
            prepare(folder, rows)
        bench = Bench(folder, args.quick, args.evidently_python, rows)
        run_figures(figures, bench.figure)
        bench.results.print_results()
    return exit_code(bench.failed_checks)


if __name__ == "__main__":
    sys.exit(main())
