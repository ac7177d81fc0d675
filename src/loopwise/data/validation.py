"""Check a batch of data against a :class:`~loopwise.data.schema.Schema`, all at once.

Validation runs on every batch before training and serving, on frames of millions of rows,
so it is built as a few columnar passes rather than check after check: the column list and
dtypes first (no data read); then ONE ``select`` holding every per-column aggregate (null
and NaN counts, min/max, the distinct values of domain columns, placeholder texts, custom
expression checks), each the cheapest thing that tells whether there is anything to count
(pandas float columns come with their NaN, min and max found while converting them); then
whether each key is distinct, in NumPy (an integer key marked in a bitmap over its range
or sorted, any other key's hashes sorted; :mod:`loopwise.data.fast_checks`); then, only
where it found something (values outside a domain, shared keys, placeholders such as -1
between a column's min and max), a ``select`` for the counts themselves, before any
anomaly is reported; then, only for columns found at fault, one more ``select`` for exact
counts and up to five examples; then the distribution checks of numeric columns (values
counted below each reference quantile, on a sample of large batches;
:mod:`loopwise.data.distribution`); then duplicate rows by row hash, confirmed
exactly on the few rows whose hashes collide (skipped when a key, or a near-continuous
column, is all distinct). Every anomaly of the batch is reported together, each with a
message saying what to do, so one run shows everything.

A schema may change the severity of a kind (``Schema.severity``); duplicate rows,
placeholders and new values above their error share are errors whatever it says.

Anomaly kinds (stable strings, also in :data:`ANOMALY_KINDS`):

- ``missing_column``, ``unexpected_column``, ``column_order`` (ordered schemas only);
- ``type_mismatch``: e.g. an integer column arriving as float or text, a date as text;
- ``null_values`` (a column that must not be null has nulls), ``missing_rate`` (a nullable
  column is missing much more often than in the source data);
- ``out_of_range``, ``new_value`` (outside the domain; error above ``new_value_share`` of
  rows, warning below), ``suspicious_default`` (-1, 9999, "N/A", 1970-01-01, and 0 in a
  numeric column without a domain, where they were absent or rare in the source data;
  error above ``default_error_share``), ``pinned_value`` (one value where there was
  variation), ``distribution_shift`` (a numeric column's values no longer follow the
  schema's reference quantiles: a unit change, another source);
- ``duplicate_rows`` (error above ``duplicate_error_share``), ``duplicate_key``;
- ``class_imbalance``, ``missing_class`` (the label);
- ``custom_check`` (a schema check failed, or could not run), ``empty_data`` (an error
  unless the schema has ``allow_empty``).
"""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import polars as pl

from loopwise.data import distribution, fast_checks
from loopwise.data.frames import Converted, DataLike, convert
from loopwise.data.profiling import DATE_PLACEHOLDERS, NUMERIC_PLACEHOLDERS, TEXT_PLACEHOLDERS
from loopwise.data.schema import ColumnSchema, CustomCheck, Schema, default_key, dtype_type
from loopwise.data.validation_report import (
    ANOMALY_KINDS,
    FORMAT_VERSION,
    SEVERITY,
    Anomaly,
    DataValidationError,
    ValidationReport,
)
from loopwise.errors import InvalidInput
from loopwise.param_errors import renamed

__all__ = [
    "ANOMALY_KINDS",
    "FORMAT_VERSION",
    "MAX_EXAMPLES",
    "SEVERITY",
    "Anomaly",
    "DataValidationError",
    "ValidationReport",
    "count_duplicate_rows",
    "validate",
]

MAX_EXAMPLES = 5
# The severity of kinds with an error share when at or below it, unless the schema says.
_BELOW_ERROR_SHARE = {"new_value": "warning"}
_PINNED_CHANCE = 1e-6  # report a pinned column only if chance alone would do it this rarely
_EXAMPLE_COLUMNS = 10  # columns shown in an example row
_MIN_PLACEHOLDER_ROWS = 3  # fewer rows holding a placeholder are never reported


def validate(
    data: DataLike,
    schema: Schema,
    *,
    expect_target: bool | None = None,
    expect_label: bool | None = None,
) -> ValidationReport:
    """Check ``data`` (pandas, Polars, Arrow or a Parquet/CSV path) against ``schema``.

    Returns a :class:`ValidationReport` with every anomaly of the batch (see the module
    docstring for the kinds). NaN in a float column counts as missing. Never raises for
    bad data, only for a bad argument.

    ``expect_target=False`` is for data that has no ground truth yet -- serving requests,
    a batch to score: the schema's label column (``Schema.target``, the ``target=`` given
    to :func:`~loopwise.data.schema_inference.infer_schema`) may then be absent without a
    ``missing_column`` error. Only that column is exempt (a schema without a target exempts
    nothing), and a target that is present is still checked like any column, with its
    ``class_imbalance`` and ``missing_class`` checks. Monitoring validates served inputs
    this way. Not given (None), it is True. ``expect_label`` is its former name
    (deprecated: it warns).
    """
    expect_target = renamed(
        "validate", "expect_target", expect_target, "expect_label", expect_label
    )
    if expect_target is None:
        expect_target = True
    if not isinstance(schema, Schema):
        raise InvalidInput(
            f"validate needs a Schema (infer_schema(data) or Schema.load(path)); "
            f"got {type(schema).__name__}."
        )
    if not isinstance(expect_target, bool):
        raise InvalidInput(f"validate: expect_target must be a bool; got {expect_target!r}.")
    schema.verify()
    start = time.perf_counter()
    converted = convert(data, what="data to validate")
    frame = converted.frame
    run = _Run(converted, schema)
    run.timed("structure", lambda: run.structure(expect_target))
    run.timed("aggregate", run.aggregate)
    run.timed("details", run.details)
    run.timed("distribution", run.distribution)
    run.timed("duplicates", run.duplicates)
    run.timed("function_checks", run.function_checks)
    run.timings["total"] = time.perf_counter() - start
    return ValidationReport(run.anomalies, frame.height, run.stats, run.timings)


def count_duplicate_rows(frame: pl.DataFrame) -> tuple[int, pl.DataFrame | None]:
    """(rows that copy an earlier row, the duplicated rows) by row hash, confirmed exactly."""
    if frame.height < 2 or frame.width == 0:
        return 0, None
    try:
        hashes = frame.hash_rows()
        if hashes.n_unique() == frame.height:  # equal rows hash equal: no duplicates
            return 0, None
        suspects = frame.filter(hashes.is_duplicated())
        if suspects.height == 0:
            return 0, None
        extra = suspects.height - suspects.n_unique()
        return extra, suspects.filter(suspects.is_duplicated()) if extra else None
    except pl.exceptions.PolarsError:  # unhashable (Object) columns: not checked
        return 0, None


# -- the run: structure, one aggregate pass, details for what was found ------------------

_TEXT_RAW = sorted({t.strip().lower() for t in TEXT_PLACEHOLDERS})


@dataclass
class _Col:
    """A column present with a compatible type: what the aggregate pass reads."""

    index: int
    name: str
    spec: ColumnSchema
    dtype: pl.DataType
    type: str  # the schema type of the data's dtype
    placeholders: list[str] = field(default_factory=list)  # defaults_seen keys counted
    # (key, value, count expression) of each placeholder, counted if between min and max
    candidates: list[tuple[str, Any, pl.Expr]] = field(default_factory=list)

    @property
    def x(self) -> pl.Expr:
        """Values comparable with the schema: decimals as floats, datetimes as UTC-naive."""
        expr = pl.col(self.name)
        if isinstance(self.dtype, pl.Decimal):
            return expr.cast(pl.Float64)
        if isinstance(self.dtype, pl.Datetime) and self.dtype.time_zone:
            return expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return expr

    def key(self, stat: str) -> str:
        return f"{self.index}|{stat}"


class _Run:
    """One validation: anomalies found so far, and the expressions of the two passes."""

    def __init__(self, converted: Converted, schema: Schema) -> None:
        frame = converted.frame
        self.frame, self.schema, self.rows = frame, schema, frame.height
        self.converted = converted  # floats without NaN, min and max found converting
        self.th = schema.thresholds
        self.anomalies: list[Anomaly] = []
        self.stats: dict[str, dict[str, Any]] = {}
        self.timings: dict[str, float] = {}
        self.cols: list[_Col] = []
        self.exprs: dict[str, pl.Expr] = {}  # the aggregate pass
        self.known: dict[str, Any] = {}  # what it need not compute
        self.later: dict[str, pl.Expr] = {}  # the details pass
        self.handlers: list[Callable[[dict[str, Any]], None]] = []  # read the details pass
        self.rows_unique = False  # a key was unique: no duplicate rows possible

    def timed(self, phase: str, step: Callable[[], None]) -> None:
        start = time.perf_counter()
        step()
        self.timings[phase] = time.perf_counter() - start

    def add(
        self,
        kind: str,
        column: str | None,
        count: int,
        message: str,
        examples: Any = (),
        severity: str | None = None,
        *,
        escalate: bool = False,
    ) -> None:
        """Record an anomaly: of ``severity`` if given (a custom check's), else an error
        when ``escalate`` (above its kind's error share), else of the schema's severity
        for the kind, else of its usual one."""
        shown = [_plain(e) for e in list(examples)[:MAX_EXAMPLES]]
        if severity is None:
            usual = _BELOW_ERROR_SHARE.get(kind, SEVERITY[kind])
            severity = "error" if escalate else self.schema.severity.get(kind, usual)
        self.anomalies.append(Anomaly(kind, severity, column, int(count), message, shown))

    # -- structure: names, order and dtypes, no data read --------------------------------

    def structure(self, expect_target: bool) -> None:
        expected, present = self.schema.columns, self.frame.schema
        extra = [n for n in present if n not in expected]
        for name, spec in expected.items():
            if (
                name not in present
                and spec.required
                and (expect_target or name != self.schema.target)
            ):
                msg = (
                    f"Column {name!r} is missing; the schema requires it. Add it upstream, or "
                    "set required: false for it in the schema if it is optional."
                )
                renamed = _renamed_to(name, extra)
                if renamed is not None:
                    msg += f" Was it renamed to {renamed!r}? That column is not in the schema."
                self.add("missing_column", name, 0, msg)
        for name in present:
            if name not in expected:
                msg = (
                    f"Column {name!r} is not in the schema. Drop it, or add it to the schema "
                    "(with its type) if it is a new feature."
                )
                self.add("unexpected_column", name, 0, msg)
        got = [n for n in present if n in expected]
        want = [n for n in expected if n in present]
        if self.schema.ordered and got != want:
            i = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
            msg = (
                f"Columns are out of order from position {i + 1}: expected {want[i : i + 3]}, "
                f"got {got[i : i + 3]}. Reorder with df.select(<schema columns>), or set "
                "ordered: false in the schema."
            )
            self.add("column_order", got[i], 0, msg, got[i:])
        for name in got:
            spec, dtype = expected[name], present[name]
            kind = dtype_type(dtype)
            self.stats[name] = {"type": spec.type, "dtype": str(dtype)}
            if _compatible(spec.type, kind):
                self.cols.append(_Col(len(self.cols), name, spec, dtype, kind))
            else:
                self._type_mismatch(name, spec, dtype, kind)
        if self.rows == 0:
            allowed = self.schema.allow_empty
            msg = "The data has no rows; only columns and types were checked. " + (
                "The schema allows empty batches (allow_empty)."
                if allowed
                else "Check the query or file that produced it; set allow_empty: true in "
                "the schema if empty batches are expected."
            )
            self.add("empty_data", None, 0, msg, severity="warning" if allowed else "error")

    def _type_mismatch(self, name: str, spec: ColumnSchema, dtype: pl.DataType, kind: str) -> None:
        alias = f"type|{name}"
        self.later[alias] = pl.col(name).drop_nulls().head(MAX_EXAMPLES).implode()
        msg = (
            f"Column {name!r} should be {spec.type} but arrived as {dtype}; "
            f"{_type_hint(name, spec.type, kind)}"
        )
        self.handlers.append(lambda v: self.add("type_mismatch", name, self.rows, msg, v[alias]))

    # -- the aggregate pass ---------------------------------------------------------------

    def aggregate(self) -> None:
        for c in self.cols:
            self._plan(c)
        keys = [k for k in self.schema.keys if all(n in self.frame.schema for n in k)]
        # Whether a key has duplicates at all: distinct values against rows (counting the
        # rows that share a key costs four times as much, so only when there are some),
        # in NumPy after the pass: a single integer key column from its range, any other
        # key from its hashes (loopwise.data.fast_checks).
        bitmap = {j: c for j, key in enumerate(keys) if (c := self._integer_key(key))}
        checks = [(j, ch) for j, ch in enumerate(self.schema.checks) if ch.compiled is not None]
        for j, check in checks:
            self._plan_check(j, check)
        v = self._collect(self.exprs) | self.known
        v.update(self._collect(self._exact(keys, bitmap, v)))
        for c in self.cols:
            self._analyse(c, v)
        for j, key in enumerate(keys):
            self.rows_unique |= v.get(f"key{j}") == 0
            if v.get(f"key{j}"):
                self._duplicate_key(j, key, v[f"key{j}"])
        for j, check in checks:
            if v.get(f"check{j}"):
                self._failed_check(check, v[f"check{j}"])

    def _plan(self, c: _Col) -> None:
        x, e = c.x, self.exprs
        e[c.key("nulls")] = pl.col(c.name).null_count()
        if c.dtype.is_float() and c.name not in self.converted.nan_free:
            e[c.key("nan")] = pl.col(c.name).is_nan().sum()
        if c.type == "float" and c.dtype.is_float() and c.name in self.converted.bounds:
            self.known[c.key("min")], self.known[c.key("max")] = self.converted.bounds[c.name]
        elif c.type in ("integer", "float", "boolean", "date", "datetime"):
            e[c.key("min")], e[c.key("max")] = x.min(), x.max()
        if c.type in ("integer", "float"):
            low, high = _bound(c, c.spec.min), _bound(c, c.spec.max)
            # 0 is a placeholder too where there is no domain (in one, 0 is a category)
            probes = NUMERIC_PLACEHOLDERS + ((0,) if c.spec.domain is None else ())
            for v in probes:  # outside the range, they are out_of_range anyway
                inside = (low is None or v >= low) and (high is None or v <= high)
                if inside and (c.type == "float" or _fits(v, c.dtype)):
                    c.placeholders.append(default_key(v))
                    c.candidates.append((default_key(v), v, (x == v).sum()))
        elif c.type in ("date", "datetime"):
            day = x.dt.date() if c.type == "datetime" else x
            for d in DATE_PLACEHOLDERS:
                c.placeholders.append(default_key(d))
                c.candidates.append((default_key(d), d, (day == d).sum()))
        if c.type == "boolean":
            e[c.key("true")] = x.sum()
        elif c.spec.domain is not None and c.name == self.schema.target:
            e[c.key("vc")] = _value_counts(c.name)  # the class shares need every count
        elif c.spec.domain is not None:  # counts only if some are outside (see _exact)
            e[c.key("values")] = pl.col(c.name).unique().implode()
        elif c.type in ("string", "categorical"):
            text = pl.col(c.name).cast(pl.String) if c.type == "categorical" else pl.col(c.name)
            e[c.key("ph")] = fast_checks.placeholder_counts(text, _TEXT_RAW, 16)
            if _pinned_possible(c.spec, 2):
                e[c.key("min")], e[c.key("max")] = text.min(), text.max()

    def _plan_check(self, j: int, check: CustomCheck) -> None:
        assert check.compiled is not None
        absent = [n for n in check.compiled.meta.root_names() if n not in self.frame.schema]
        if absent:
            return self._check_broken(check, f"it reads columns {absent} that are absent")
        try:
            dtype = self.frame.lazy().select(check.compiled.alias("r")).collect_schema()["r"]
        except pl.exceptions.PolarsError as err:
            return self._check_broken(check, _first_line(err))
        if dtype != pl.Boolean:
            return self._check_broken(check, f"it gives {dtype}, not true/false per row")
        self.exprs[f"check{j}"] = check.compiled.not_().sum()

    def _integer_key(self, key: list[str]) -> _Col | None:
        """The column of a key that is one integer column, with its min and max planned."""
        if len(key) != 1:
            return None
        c = next((c for c in self.cols if c.name == key[0]), None)
        if c is None or not c.dtype.is_integer():
            return None
        return c if c.key("min") in self.exprs or c.key("min") in self.known else None

    def _exact(
        self, keys: list[list[str]], bitmap: dict[int, _Col], v: dict[str, Any]
    ) -> dict[str, pl.Expr]:
        """Expressions for what the first pass found to need exact counts, or none.

        ``key{j}``: rows sharing a key, when a key has duplicates (else 0, without a
        pass); ``vc``: the value counts of a domain column with values outside the domain
        or values that are placeholders (else its distinct values are all it needs);
        ``d:``: the rows holding a placeholder (-1, 1970-01-01...) between the column's
        min and max (else none do; nor in a key column whose values are all distinct,
        where a value is in one row at most, fewer than _MIN_PLACEHOLDER_ROWS).
        """
        more: dict[str, pl.Expr] = {}
        distinct_columns = set()
        for j, key in enumerate(keys):
            if j in bitmap:
                distinct = self._distinct(bitmap[j], v)
            else:
                distinct = fast_checks.distinct_hashes(self.frame, key)
            if distinct is None or distinct < self.rows:
                more[f"key{j}"] = _key_expr(key).is_duplicated().sum()
            else:
                v[f"key{j}"] = 0
                distinct_columns.update(key[:1] if len(key) == 1 else ())
        for c in self.cols:
            low, high = v.get(c.key("min")), v.get(c.key("max"))
            for key, value, count in c.candidates:
                if c.name not in distinct_columns and _between(value, low, high):
                    more[c.key(f"d:{key}")] = count
                else:
                    v[c.key(f"d:{key}")] = 0
        for c in self.cols:
            if c.key("values") not in v:
                continue
            values = v[c.key("values")]
            if isinstance(values.dtype, pl.Categorical | pl.Enum):
                values = values.cast(pl.String)
            values = [x for x in values.to_list() if x is not None]
            allowed = {_norm(d) for d in c.spec.domain or []}
            if any(_norm(x) not in allowed or _placeholder_text(x) for x in values):
                del v[c.key("values")]
                more[c.key("vc")] = _value_counts(c.name)
            else:
                v[c.key("values")] = values
        return more

    def _distinct(self, c: _Col, v: dict[str, Any]) -> int | None:
        """Distinct values of an integer column without nulls (a bitmap over its range,
        or a sort where that is too wide; :mod:`loopwise.data.fast_checks`); None if it
        has nulls."""
        low, high = v[c.key("min")], v[c.key("max")]
        if self.rows == 0:
            return 0
        if v[c.key("nulls")] or low is None:
            return None
        return fast_checks.count_distinct_integers(self.frame.get_column(c.name), low, high)

    def _collect(self, exprs: dict[str, pl.Expr]) -> dict[str, Any]:
        """Run one ``select``; scalars come back as values, list results as Series.

        If it fails, a custom check is to blame (the rest is typed by the structure step):
        run without the checks, then each check alone to report the broken ones.
        """
        if not exprs:
            return {}
        try:
            frame = self.frame.select(e.alias(a) for a, e in exprs.items())
            return {a: frame.get_column(a)[0] for a in frame.columns}
        except pl.exceptions.PolarsError as err:
            checks = [a for a in exprs if a.startswith("check")]
            if not checks:
                raise InvalidInput(f"Could not validate this data: {_first_line(err)}") from err
        values = self._collect({a: e for a, e in exprs.items() if a not in checks})
        for alias in checks:
            try:
                values[alias] = self.frame.select(exprs[alias]).item()
            except pl.exceptions.PolarsError as err:
                self._check_broken(self.schema.checks[int(alias[5:])], _first_line(err))
        return values

    # -- reading the aggregate pass --------------------------------------------------------

    def _analyse(self, c: _Col, v: dict[str, Any]) -> None:
        nulls = v[c.key("nulls")] + v.get(c.key("nan"), 0)
        count = self.rows - nulls
        stat = self.stats[c.name]
        stat["nulls"], stat["missing_rate"] = nulls, (nulls / self.rows if self.rows else None)
        self._missing(c, nulls)
        found = {k: v[c.key(f"d:{k}")] for k in c.placeholders if v[c.key(f"d:{k}")]}
        for value, n in _pairs(v.get(c.key("ph"))):
            found[default_key(value)] = found.get(default_key(value), 0) + n
        if v.get(c.key("min")) is not None and count:
            low, high = v[c.key("min")], v[c.key("max")]
            if c.type not in ("string", "categorical"):
                stat["min"], stat["max"] = _plain(low), _plain(high)
                self._range(c, low, high)
            if low == high:
                self._pinned(c, low, count)
        if c.key("true") in v and count:
            true = v[c.key("true")]
            self._domain(c, [(True, true), (False, count - true)], count, found)
        if c.key("vc") in v and count:
            self._domain(c, _pairs(v[c.key("vc")]), count, found)
        elif c.key("values") in v and count:
            self._in_domain(c, v[c.key("values")], count)
        self._defaults(c, found, count)

    def _missing(self, c: _Col, nulls: int) -> None:
        if not self.rows or not nulls:
            return
        rate, name = nulls / self.rows, c.name
        if not c.spec.nullable:
            msg = (
                f"Column {name!r} has {nulls:,} missing values ({rate:.2%}) but the schema "
                "says it is never missing. Fix the producer, impute it "
                "(loopwise.data.impute), or set nullable: true."
            )
            return self.add("null_values", name, nulls, msg)
        p = c.spec.max_missing_rate
        noise = 4 * math.sqrt(max(p, 1e-3) * (1 - min(p, 0.999)) / self.rows)
        allowed = p + self.th.missing_rate_tolerance + noise
        if rate > allowed:
            msg = (
                f"Column {name!r} is {rate:.2%} missing; the schema saw {p:.2%} and allows "
                f"up to {allowed:.2%}. Look for a broken join or source upstream, or raise "
                "its max_missing_rate if this is the new normal."
            )
            self.add("missing_rate", name, nulls, msg)

    def _range(self, c: _Col, low: Any, high: Any) -> None:
        lo, hi = _bound(c, c.spec.min), _bound(c, c.spec.max)
        below, above = lo is not None and low < lo, hi is not None and high > hi
        if not (below or above):
            return
        x = c.x.fill_nan(None) if c.dtype.is_float() else c.x  # NaN compares above all
        cond = (x < lo) | (x > hi) if below and above else (x < lo if below else x > hi)
        alias = c.key("range")
        self.later[alias + "n"] = cond.sum()
        self.later[alias + "x"] = x.filter(cond).head(100).unique(maintain_order=True)
        self.later[alias + "x"] = self.later[alias + "x"].head(MAX_EXAMPLES).implode()

        def report(v: dict[str, Any]) -> None:
            n, examples = v[alias + "n"], v[alias + "x"]
            sentinel = [e for e in examples if e in NUMERIC_PLACEHOLDERS]
            note = f" {sentinel} look like placeholders for missing values." if sentinel else ""
            msg = (
                f"{n:,} values of {c.name!r} are outside [{c.spec.min}, {c.spec.max}] "
                f"(seen: {_short(low)} to {_short(high)}).{note} Check for a unit change or "
                "bad values upstream; widen min/max in the schema if they are valid."
            )
            self.add("out_of_range", c.name, n, msg, examples)

        self.handlers.append(report)

    def _pinned(self, c: _Col, value: Any, count: int) -> None:
        if _pinned_possible(c.spec, count):
            msg = (
                f"All {count:,} values of {c.name!r} are {_plain(value)!r}, but it varied in "
                f"the schema's source data (most common value {c.spec.mode_share:.1%} of "
                "rows). Look for a failed join or a constant filled in upstream."
            )
            self.add("pinned_value", c.name, count, msg, [value])

    def _domain(
        self, c: _Col, pairs: list[tuple[Any, int]], count: int, found: dict[str, int]
    ) -> None:
        """New values, vanished values and label classes, from (value, rows) pairs."""
        if c.spec.domain is None:
            return
        allowed = {_norm(d) for d in c.spec.domain}
        new = sorted(
            ((v, n) for v, n in pairs if n and _norm(v) not in allowed), key=lambda p: -p[1]
        )
        present = {_norm(v) for v, n in pairs if n}
        if len(present) == 1 and c.type in ("string", "categorical"):
            self._pinned(c, pairs[0][0], count)
        for value, n in pairs:  # placeholders outside the domain are new values, not here
            text = value.strip().lower() if isinstance(value, str) else None
            if text in _TEXT_RAW and _norm(value) in allowed:
                found[default_key(value)] = found.get(default_key(value), 0) + n
        if new:
            self._new_values(c, new, count, [d for d in c.spec.domain if _norm(d) not in present])
        if c.name == self.schema.target:
            self._classes(c, {_norm(v): n for v, n in pairs}, count)

    def _in_domain(self, c: _Col, values: list[Any], count: int) -> None:
        """What :meth:`_domain` finds when every value is in the domain and none is a
        placeholder (not the label): a text column pinned to one value."""
        if len({_norm(v) for v in values}) == 1 and c.type in ("string", "categorical"):
            self._pinned(c, values[0], count)

    def _new_values(
        self, c: _Col, new: list[tuple[Any, int]], count: int, vanished: list[Any]
    ) -> None:
        total = sum(n for _, n in new)
        share, top = total / count, new[0][0]
        pool = [str(d) for d in (vanished or c.spec.domain or [])]
        close = difflib.get_close_matches(
            str(top).lower(), [d.lower() for d in pool], n=1, cutoff=0.0 if vanished else 0.6
        )
        guess = next((d for d in pool if close and d.lower() == close[0]), None)
        hint = f" {top!r} may be {guess!r} renamed." if guess is not None else ""
        if guess is not None and vanished:
            hint = hint[:-1] + f" ({', '.join(map(repr, vanished[:3]))} absent from this batch)."
        shown = ", ".join(f"{v!r} ({n:,})" for v, n in new[:MAX_EXAMPLES])
        msg = (
            f"{total:,} values of {c.name!r} ({share:.2%}) are outside its domain: {shown}."
            f"{hint} Map them to known values upstream, or add them to the column's domain in "
            "the schema if they are valid."
        )
        escalate = share > self.th.new_value_share
        self.add("new_value", c.name, total, msg, [v for v, _ in new], escalate=escalate)

    def _classes(self, c: _Col, counts: dict[Any, int], count: int) -> None:
        floor = self.th.min_class_share
        if count * floor < 1:
            return  # too few rows to tell
        for cls in c.spec.domain or []:
            n = counts.get(_norm(cls), 0)
            if n == 0:
                msg = (
                    f"Label {c.name!r} has no rows of class {cls!r} in {count:,} labelled "
                    "rows. Check the labelling job or the query's filters."
                )
                self.add("missing_class", c.name, 0, msg, [cls])
            elif n / count < floor:
                msg = (
                    f"Label {c.name!r} class {cls!r} is {n / count:.2%} of rows, below "
                    f"min_class_share {floor:.2%}. Check the labelling or resample; lower "
                    "min_class_share in the schema if this balance is expected."
                )
                self.add("class_imbalance", c.name, n, msg, [cls])

    def _defaults(self, c: _Col, found: dict[str, int], count: int) -> None:
        flagged, escalate = [], False
        for key, n in sorted(found.items(), key=lambda p: -p[1]):
            base = c.spec.defaults_seen.get(key, 0.0)
            noise = 4 * math.sqrt(base * (1 - base) / count)  # sampling spread of the share
            if n >= _MIN_PLACEHOLDER_ROWS and n / count > 2 * base + self.th.default_share + noise:
                flagged.append((key, n, base))
                escalate |= n / count > 2 * base + self.th.default_error_share + noise
        if flagged:
            shown = ", ".join(
                f"{k!r} in {n:,} rows ({n / count:.2%}; source data {b:.2%})" for k, n, b in flagged
            )
            msg = (
                f"Column {c.name!r} has values often used as placeholders for missing: "
                f"{shown}. Replace them with null upstream; if they are real values, record "
                "their expected share under defaults_seen in the schema."
            )
            if escalate:
                msg += f" (An error above {self.th.default_error_share:.0%} of rows.)"
            total = sum(n for _, n, _ in flagged)
            keys = [k for k, _, _ in flagged]
            self.add("suspicious_default", c.name, total, msg, keys, escalate=escalate)

    def _duplicate_key(self, j: int, key: list[str], n: int) -> None:
        e, alias, name = _key_expr(key), f"key{j}x", ", ".join(key)
        examples = e.filter(e.is_duplicated()).unique(maintain_order=True).head(MAX_EXAMPLES)
        self.later[alias] = examples.implode()
        msg = (
            f"{n:,} rows share their key ({name}) with another row. Keys must be unique: "
            "deduplicate, or fix the join that multiplied rows."
        )
        self.handlers.append(lambda v: self.add("duplicate_key", name, n, msg, v[alias]))

    def _failed_check(self, check: CustomCheck, n: int) -> None:
        assert check.compiled is not None
        roots = check.compiled.meta.root_names()
        per_row = self.rows < 2 or self.frame.head(2).select(check.compiled).height == 2
        examples = []
        if per_row:
            failing = self.frame.filter(check.compiled.not_()).select(roots)
            examples = _example_rows(failing)
        msg = (
            f"Check {check.name!r} ({check.expr}) fails for "
            f"{f'{n:,} rows' if per_row else 'the batch'}. "
            f"{check.description or 'Fix the data, or the check in the schema.'}"
        )
        column = roots[0] if len(roots) == 1 else None
        self.add("custom_check", column, n, msg, examples, check.severity)

    def _check_broken(self, check: CustomCheck, why: str) -> None:
        msg = f"Check {check.name!r} could not run: {why}. Fix the check or the data it reads."
        self.add("custom_check", None, 0, msg)

    # -- details, duplicates, Python checks ------------------------------------------------

    def details(self) -> None:
        values = self._collect(self.later)
        for report in self.handlers:
            report({a: v.to_list() if isinstance(v, pl.Series) else v for a, v in values.items()})

    def distribution(self) -> None:
        """Numeric columns against their reference quantiles (see
        :mod:`loopwise.data.distribution`)."""
        columns = [
            distribution.Column(
                c.name,
                c.spec.distribution["values"],
                [(float(p), q) for p, q in c.spec.distribution["quantiles"].items()],
            )
            for c in self.cols
            if c.spec.distribution is not None and c.type in ("integer", "float")
        ]
        found, compared = distribution.check(self.frame, columns, self.th.distribution_alpha)
        for shifted in found:
            msg = distribution.message(shifted, compared, self.rows)
            examples = distribution.examples(shifted)
            self.add("distribution_shift", shifted.column.name, shifted.values, msg, examples)

    def duplicates(self) -> None:
        if self.th.max_duplicate_share >= 1 or self.rows_unique or self.rows < 2:
            return
        # If a near-continuous column has all values distinct, so do the rows: counting one
        # column's distinct values costs about half of hashing every row.
        shares = [(c.spec.mode_share, c.name) for c in self.cols if c.type in ("integer", "float")]
        share, probe = min((s for s in shares if s[0] is not None), default=(1.0, ""))
        if share <= 0.001 and fast_checks.all_distinct(self.frame.get_column(probe)):
            return
        extra, dupes = count_duplicate_rows(self.frame)
        if extra and dupes is not None and extra / self.rows > self.th.max_duplicate_share:
            escalate = extra / self.rows > self.th.duplicate_error_share
            msg = (
                f"{extra:,} rows ({extra / self.rows:.2%}) are exact copies of another row. "
                "Deduplicate (df.unique()) or fix the step that repeats them; raise "
                "max_duplicate_share in the schema if repeats are expected."
            )
            if escalate:
                msg += f" (An error above {self.th.duplicate_error_share:.0%} of rows.)"
            self.add("duplicate_rows", None, extra, msg, _example_rows(dupes), escalate=escalate)

    def function_checks(self) -> None:
        for check in self.schema.checks:
            if check.func is not None:
                self._function_check(check, check.func)

    def _function_check(self, check: CustomCheck, func: Callable[[pl.DataFrame], Any]) -> None:
        try:
            result = func(self.frame)
        except Exception as err:  # the user's code: report it, do not crash validation
            return self._check_broken(check, f"{type(err).__name__}: {err}")
        if isinstance(result, bool) or type(result).__name__ == "bool_":
            if not result:
                msg = f"Check {check.name!r} is false for this batch. {check.description}"
                self.add("custom_check", None, 1, msg.strip(), (), check.severity)
            return
        try:
            mask = result if isinstance(result, pl.Series) else pl.Series(result)
        except Exception:
            mask = None
        if mask is None or mask.dtype != pl.Boolean or mask.len() != self.rows:
            why = (
                "it must return a bool, or a boolean Series with one value per row; got "
                f"{type(result).__name__}"
            )
            return self._check_broken(check, why)
        failing = int((~mask).sum() or 0)
        if failing:
            msg = (
                f"Check {check.name!r} fails for {failing:,} rows. "
                f"{check.description or 'Fix the data, or the check.'}"
            )
            rows = _example_rows(self.frame.filter(~mask.fill_null(True)))
            self.add("custom_check", None, failing, msg, rows, check.severity)


# -- small helpers -------------------------------------------------------------------------


def _renamed_to(name: str, candidates: list[str]) -> str | None:
    """An unexpected column that looks like ``name`` renamed (same words, another order)."""
    words = sorted(name.lower().replace("-", "_").split("_"))
    for candidate in candidates:
        if sorted(candidate.lower().replace("-", "_").split("_")) == words:
            return candidate
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
    return close[0] if close else None


def _compatible(want: str, got: str) -> bool:
    """Same type; text as string or categorical; dates as datetimes (pandas has no date)."""
    if want == "any" or got == "null" or want == got or (want, got) == ("date", "datetime"):
        return True
    return {want, got} <= {"string", "categorical"}


def _type_hint(name: str, want: str, got: str) -> str:
    if want == "integer" and got == "float":
        return (
            f"pandas turns integer columns with missing values into floats; cast it back "
            f"with pl.col({name!r}).cast(pl.Int64) or fix the producer."
        )
    if want in ("date", "datetime") and got == "string":
        return f"parse it first, e.g. pl.col({name!r}).str.to_{want}(), or fix the producer."
    if want in ("integer", "float") and got == "string":
        return (
            "it probably holds text such as 'N/A' or '1,000'; clean it and cast it to a "
            "number upstream."
        )
    return "fix the producer, or change the column's type in the schema if this is intended."


def _bound(c: _Col, value: Any) -> Any:
    if value is None or c.type not in ("date", "datetime"):
        return value
    try:
        if c.type == "date":
            return date.fromisoformat(str(value)[:10])
        moment = datetime.fromisoformat(str(value))
    except ValueError as e:
        raise InvalidInput(f"Schema column {c.name!r}: {value!r} is not an ISO date.") from e
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _fits(value: int, dtype: pl.DataType) -> bool:
    bits = int("".join(ch for ch in str(dtype) if ch.isdigit()) or 64)
    if str(dtype).startswith("U"):
        return 0 <= value < 2**bits
    return -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)


def _pinned_possible(spec: ColumnSchema, count: int) -> bool:
    """The source varied and ``count`` values would rarely all be equal by chance."""
    share = spec.mode_share
    return share is not None and share < 1 and count >= 2 and share**count < _PINNED_CHANCE


def _between(value: Any, low: Any, high: Any) -> bool:
    """Whether ``value`` may be among values from ``low`` to ``high`` (min and max of a
    column; a date placeholder against datetimes compares with their days)."""
    if low is None or high is None:
        return False  # no values, or all NaN: none equal a placeholder
    if isinstance(low, datetime) and not isinstance(value, datetime):
        low, high = low.date(), high.date()
    try:
        return bool(low <= value <= high)
    except TypeError:
        return True  # cannot tell: count them


def _key_expr(key: list[str]) -> pl.Expr:
    return pl.col(key[0]) if len(key) == 1 else pl.struct(key)


def _value_counts(name: str) -> pl.Expr:
    return pl.col(name).alias("value").value_counts().implode()


def _placeholder_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in _TEXT_RAW


def _pairs(value_counts: pl.Series | None) -> list[tuple[Any, int]]:
    """(value, count) pairs from an imploded ``value_counts`` (categoricals as text)."""
    if value_counts is None:
        return []
    frame = value_counts.struct.unnest()
    values = frame.get_column("value")
    if isinstance(values.dtype, pl.Categorical | pl.Enum):
        values = values.cast(pl.String)
    return [
        (v, int(n))
        for v, n in zip(values.to_list(), frame.get_column("count"), strict=True)
        if v is not None
    ]


def _norm(value: Any) -> Any:
    """Domain values compare by value and type family (1 == 1.0, True is not 1)."""
    return (type(value) is bool, value)


def _example_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    shown = frame.select(frame.columns[:_EXAMPLE_COLUMNS]).head(MAX_EXAMPLES)
    return [{k: _plain(v) for k, v in row.items()} for row in shown.iter_rows(named=True)]


def _plain(value: Any) -> Any:
    """A JSON-safe version of a value from a frame."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else (None if math.isnan(value) else str(value))
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _short(value: Any) -> Any:
    """A value for a message: floats to 6 significant digits."""
    return f"{value:.6g}" if isinstance(value, float) else _plain(value)


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
