"""What a dataset is expected to look like, written down so people can review it.

A :class:`Schema` is proposed by :func:`~loopwise.data.schema_inference.infer_schema`, then
curated by a person: saved as YAML (``schema.save(path)``), edited in a pull request, loaded
back (``Schema.load(path)``) and enforced by :func:`~loopwise.data.validation.validate`. It
is plain data with a stamped format, and loading refuses unknown keys, so a typo in a hand
edit is an error rather than a check that silently stops running.

Custom checks are Polars expressions written as text (``"col('age') >= 18"``), parsed with
a restricted grammar (only ``col`` and ``lit``, no underscore attributes, no methods that do
I/O or call Python) so a schema file from a pull request cannot run arbitrary code; or
Python functions, which live in memory only and are never written to YAML.
"""

from __future__ import annotations

import ast
import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl

from loopwise._version import __version__
from loopwise.data import distribution
from loopwise.data.frames import kind_of
from loopwise.data.validation_report import SEVERITY
from loopwise.errors import InvalidInput, NotFound
from loopwise.param_errors import renamed, renamed_attribute

#: 2 added ``distribution``, ``allow_empty``, ``severity`` and three thresholds. Files of
#: format 1 still load, with those at their defaults (no distribution checks until the
#: schema is inferred again). 3 renamed ``label`` to ``target`` (the word every other
#: function uses for that column); ``label:`` is still read, in files of any format.
#: Older files are saved as format 3.
FORMAT_VERSION = 3
#: Anomaly kinds whose severity a schema may set (``severity:``); an empty batch is
#: allowed with ``allow_empty``, and each custom check has its own severity.
CONFIGURABLE_KINDS = tuple(k for k in SEVERITY if k not in ("custom_check", "empty_data"))
TYPES = ("integer", "float", "boolean", "string", "categorical", "datetime", "date", "any")
SEVERITIES = ("error", "warning")
#: ``defaults_seen`` key standing for the empty (or whitespace-only) string.
EMPTY_KEY = "<empty>"

_EXPR_MAX_CHARS = 2000
# Expression methods that do I/O, call back into Python or inspect the plan.
_BLOCKED_ATTRIBUTES = frozenset(
    {
        "meta",
        "map_elements",
        "map_batches",
        "map_groups",
        "pipe",
        "inspect",
        "apply",
        "map",
        "serialize",
        "deserialize",
        "from_json",
        "write_json",
        "plugins",
        "register_plugin_function",
        "name",
    }
)
_ALLOWED_NODES = (
    ast.Expression,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Constant,
    ast.Compare,
    ast.BinOp,
    ast.UnaryOp,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.keyword,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
)
_EXPR_NAMES = {"col": pl.col, "lit": pl.lit, "pl": SimpleNamespace(col=pl.col, lit=pl.lit)}


def dtype_type(dtype: pl.DataType) -> str:
    """The schema type of a Polars dtype: one of :data:`TYPES`, or "null" for pl.Null."""
    kind = kind_of(dtype)
    if kind != "other":
        return kind
    return "null" if dtype == pl.Null else "any"


@dataclass
class ColumnSchema:
    """What one column must look like.

    ``min``/``max`` bound numbers (ISO strings for dates); ``distribution`` holds a
    numeric column's reference quantiles (``{"values": n, "quantiles": {"0.5": m, ...}}``,
    see :mod:`loopwise.data.distribution`) that a batch's values must follow; ``domain``
    lists the allowed
    values of a text, boolean or label column; ``mode_share`` is the share of the most
    common value in the source data (the "pinned to one value" check runs only where it is
    set and below 1); ``defaults_seen`` maps placeholder values (-1, 9999, "n/a", dates like
    1970-01-01; :data:`EMPTY_KEY` for ""; 0 for a numeric column without a domain) to their
    share in the source data, so only placeholders that were absent or rare there are
    reported.
    """

    name: str
    type: str
    required: bool = True
    nullable: bool = True
    max_missing_rate: float = 0.0
    min: Any = None
    max: Any = None
    domain: list[Any] | None = None
    mode_share: float | None = None
    defaults_seen: dict[str, float] = field(default_factory=dict)
    distribution: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        where = f"Schema column {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput(
                f"A schema column name must be a non-empty string; got {self.name!r}."
            )
        if self.type not in TYPES:
            raise InvalidInput(f"{where}: type {self.type!r} is not one of {list(TYPES)}.")
        for flag in ("required", "nullable"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInput(f"{where}: {flag} must be true or false.")
        _check_share(where, "max_missing_rate", self.max_missing_rate)
        if self.mode_share is not None:
            _check_share(where, "mode_share", self.mode_share)
        for bound in ("min", "max"):
            value = getattr(self, bound)
            if value is None:
                continue
            if self.type in ("date", "datetime"):
                if not isinstance(value, str):
                    raise InvalidInput(f"{where}: {bound} must be an ISO date string.")
            elif self.type not in ("integer", "float") or not _is_number(value):
                raise InvalidInput(
                    f"{where}: {bound} applies to numbers and dates only; got {value!r} for a "
                    f"{self.type} column. Remove it or fix the type."
                )
        if self.domain is not None:
            if not isinstance(self.domain, list) or not self.domain:
                raise InvalidInput(f"{where}: domain must be a non-empty list (or left out).")
            if len({repr(v) for v in self.domain}) != len(self.domain):
                raise InvalidInput(f"{where}: domain lists a value twice.")
        if not isinstance(self.defaults_seen, dict):
            raise InvalidInput(f"{where}: defaults_seen must be a mapping of value to share.")
        for key, share in self.defaults_seen.items():
            _check_share(where, f"defaults_seen[{key!r}]", share)
        self.defaults_seen = {str(k): float(v) for k, v in self.defaults_seen.items()}
        if self.distribution is not None:
            if self.type not in ("integer", "float"):
                raise InvalidInput(
                    f"{where}: distribution applies to integer and float columns only; got "
                    f"a {self.type} column. Remove it or fix the type."
                )
            self.distribution = distribution.normalized(where, self.distribution)


@dataclass
class Thresholds:
    """Tolerances of the statistical checks, stored with the schema so they are reviewed.

    - ``missing_rate_tolerance``: a nullable column may be missing this much more often
      (absolute) than its ``max_missing_rate`` (plus binomial noise for small batches).
    - ``new_value_share``: unseen categorical values in more than this share of rows are an
      error; fewer are a warning.
    - ``min_class_share``: a label class rarer than this is reported.
    - ``default_share``: a placeholder value is reported when above this share of rows
      (and at least twice its share in the source data).
    - ``default_error_share``: ...and is an error when above this share beyond twice its
      share in the source data (below, it has the schema's ``suspicious_default`` severity).
    - ``max_duplicate_share``: exact duplicate rows above this share are reported.
    - ``duplicate_error_share``: ...and are an error above this share (below, they have
      the schema's ``duplicate_rows`` severity).
    - ``distribution_alpha``: the chance that one distribution check (one quantile of one
      column) flags a batch drawn from the reference distribution; smaller is more
      tolerant, 0 switches the checks off.
    """

    missing_rate_tolerance: float = 0.02
    new_value_share: float = 0.01
    min_class_share: float = 0.01
    default_share: float = 0.001
    default_error_share: float = 0.1
    max_duplicate_share: float = 0.0
    duplicate_error_share: float = 0.05
    distribution_alpha: float = 1e-6

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_share("Schema thresholds", f.name, getattr(self, f.name))
            setattr(self, f.name, float(getattr(self, f.name)))


@dataclass
class CustomCheck:
    """A custom rule: rows where it is False are reported as ``custom_check`` anomalies.

    ``expr`` is a Polars expression as text, e.g. ``"col('age') >= 18"`` or
    ``"col('end') >= col('start')"``, evaluated with only ``col`` and ``lit`` in scope.
    ``func`` is a Python function taking the Polars frame and returning a boolean Series
    (or one bool for the whole frame); it is kept in memory only, never saved to YAML.
    """

    name: str
    expr: str | None = None
    func: Callable[[pl.DataFrame], Any] | None = None
    severity: str = "error"
    description: str = ""
    compiled: pl.Expr | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput(f"A check needs a non-empty name; got {self.name!r}.")
        if self.severity not in SEVERITIES:
            raise InvalidInput(
                f"Check {self.name!r}: severity {self.severity!r} is not one of {list(SEVERITIES)}."
            )
        if (self.expr is None) == (self.func is None):
            raise InvalidInput(
                f"Check {self.name!r} needs exactly one of expr (a string such as "
                "\"col('age') >= 18\") or func (a function of the Polars frame)."
            )
        if self.func is not None and not callable(self.func):
            raise InvalidInput(f"Check {self.name!r}: func must be callable.")
        if self.expr is not None:
            self.compiled = compile_expression(self.expr, what=f"check {self.name!r}")


#: The former name of :class:`CustomCheck`, kept so code that builds ``Check(...)`` objects
#: for ``Schema(checks=[...])`` keeps working; new code says ``CustomCheck``.
Check = CustomCheck


def compile_expression(text: str, *, what: str = "expression") -> pl.Expr:
    """A Polars expression from text, allowing only ``col``, ``lit`` and safe methods."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"The {what} must be a non-empty string like \"col('age') >= 18\".")
    if len(text) > _EXPR_MAX_CHARS:
        raise InvalidInput(f"The {what} is longer than {_EXPR_MAX_CHARS} characters.")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise InvalidInput(f"The {what} {text!r} is not valid Python syntax: {e.msg}.") from e
    for node in ast.walk(tree):
        _check_node(node, text, what)
    try:
        result = eval(compile(tree, "<check>", "eval"), {"__builtins__": {}}, dict(_EXPR_NAMES))
    except Exception as e:
        raise InvalidInput(f"The {what} {text!r} does not evaluate: {e}") from e
    if not isinstance(result, pl.Expr):
        raise InvalidInput(
            f"The {what} {text!r} is not a column expression; write it with col(...), "
            "e.g. \"col('age') >= 18\"."
        )
    return result


def _check_node(node: ast.AST, text: str, what: str) -> None:
    def refuse(reason: str) -> InvalidInput:
        return InvalidInput(f"The {what} {text!r} is not allowed: {reason}.")

    if isinstance(node, ast.BoolOp):
        raise refuse("use & and | (with parentheses) instead of 'and' and 'or'")
    if not isinstance(node, _ALLOWED_NODES):
        raise refuse(
            f"{type(node).__name__} is not supported; only col(), lit(), methods, "
            "comparisons and arithmetic are"
        )
    if isinstance(node, ast.Name) and node.id not in _EXPR_NAMES:
        raise refuse(f"name {node.id!r} is unknown; only col, lit and pl are available")
    if isinstance(node, ast.Attribute) and (
        node.attr.startswith("_") or node.attr in _BLOCKED_ATTRIBUTES
    ):
        raise refuse(f"attribute {node.attr!r} is not available in checks")
    if isinstance(node, ast.Compare) and len(node.ops) > 1:
        raise refuse("chained comparisons do not work on columns; use .is_between(a, b)")
    if isinstance(node, ast.BinOp) and not (
        _mentions_name(node.left) or _mentions_name(node.right)
    ):
        raise refuse("arithmetic on constants alone; write the constant's value")
    if isinstance(node, ast.BinOp) and any(
        isinstance(side, ast.List | ast.Tuple) for side in (node.left, node.right)
    ):
        raise refuse("arithmetic on lists")


def _mentions_name(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) for n in ast.walk(node))


@dataclass(init=False)
class Schema:
    """Expected columns (in order), key columns, the target (label) column, thresholds and
    custom checks.

    ``allow_empty``: a batch without rows is a warning, not an error. ``severity`` maps
    anomaly kinds (:data:`CONFIGURABLE_KINDS`) to "error" or "warning", replacing their
    usual severity; duplicate rows, placeholders and new values above their error share
    (see :class:`Thresholds`) are errors whatever it says. ``label`` is the former name of
    ``target`` (as an argument and an attribute; deprecated: it warns).
    """

    columns: dict[str, ColumnSchema]
    target: str | None = None
    ordered: bool = False
    keys: list[list[str]] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)
    checks: list[CustomCheck] = field(default_factory=list)
    rows: int | None = None  # rows of the data it was inferred from, for reference
    allow_empty: bool = False
    severity: dict[str, str] = field(default_factory=dict)

    def __init__(
        self,
        columns: dict[str, ColumnSchema] | list[ColumnSchema],
        target: str | None = None,
        ordered: bool = False,
        keys: list[list[str]] | None = None,
        thresholds: Thresholds | None = None,
        checks: list[CustomCheck] | None = None,
        rows: int | None = None,
        allow_empty: bool = False,
        severity: dict[str, str] | None = None,
        *,
        label: str | None = None,
    ) -> None:
        # Written out (not generated) only to take the former name ``label``.
        self.columns = columns  # a list becomes a dict in __post_init__
        self.target = renamed("Schema", "target", target, "label", label)
        self.ordered = ordered
        self.keys = [] if keys is None else keys
        self.thresholds = Thresholds() if thresholds is None else thresholds
        self.checks = [] if checks is None else checks
        self.rows = rows
        self.allow_empty = allow_empty
        self.severity = {} if severity is None else severity
        self.__post_init__()

    @property
    def label(self) -> str | None:
        """The former name of :attr:`target` (deprecated: it warns)."""
        renamed_attribute("Schema", "target", "label")
        return self.target

    @label.setter
    def label(self, value: str | None) -> None:
        renamed_attribute("Schema", "target", "label")
        self.target = value

    def __post_init__(self) -> None:
        if isinstance(self.columns, list):
            self.columns = {c.name: c for c in self.columns}
        names = list(self.columns)
        for name, column in self.columns.items():
            if name != column.name:
                raise InvalidInput(f"Schema column {column.name!r} is filed under {name!r}.")
        if self.target is not None and self.target not in self.columns:
            raise InvalidInput(f"Schema target {self.target!r} is not a column; columns: {names}.")
        if not isinstance(self.ordered, bool):
            raise InvalidInput("Schema ordered must be true or false.")
        if not isinstance(self.allow_empty, bool):
            raise InvalidInput("Schema allow_empty must be true or false.")
        if not isinstance(self.severity, dict):
            raise InvalidInput(
                "Schema severity must be a mapping of anomaly kind to 'error' or 'warning'."
            )
        for kind, level in self.severity.items():
            if kind not in CONFIGURABLE_KINDS:
                hint = {
                    "empty_data": " Set allow_empty: true to accept batches without rows.",
                    "custom_check": " Set the severity of each check instead.",
                }.get(kind, f" Kinds: {', '.join(CONFIGURABLE_KINDS)}.")
                raise InvalidInput(f"Schema severity: {kind!r} cannot be set here.{hint}")
            if level not in SEVERITIES:
                raise InvalidInput(
                    f"Schema severity of {kind!r} must be one of {list(SEVERITIES)}; got {level!r}."
                )
        self.keys = [[k] if isinstance(k, str) else list(k) for k in self.keys]
        for key in self.keys:
            unknown = [c for c in key if c not in self.columns]
            if not key or unknown:
                raise InvalidInput(
                    f"Schema key {key} names unknown columns {unknown}; columns: {names}."
                )
        seen: set[str] = set()
        for check in self.checks:
            if check.name in seen:
                raise InvalidInput(f"Two schema checks are named {check.name!r}; rename one.")
            seen.add(check.name)

    def verify(self) -> None:
        """Check every field again, e.g. after edits made in code; raise InvalidInput."""
        for column in self.columns.values():
            column.__post_init__()
        self.thresholds.__post_init__()
        self.__post_init__()

    def __getitem__(self, name: str) -> ColumnSchema:
        if name not in self.columns:
            raise InvalidInput(f"The schema has no column {name!r}; columns: {list(self.columns)}.")
        return self.columns[name]

    def add_check(
        self,
        name: str,
        check: str | Callable[[pl.DataFrame], Any],
        *,
        severity: str = "error",
        description: str = "",
    ) -> CustomCheck:
        """Add a custom check: an expression string, or a function (not saved to YAML)."""
        if any(c.name == name for c in self.checks):
            raise InvalidInput(f"The schema already has a check named {name!r}.")
        if isinstance(check, str):
            new = CustomCheck(name, expr=check, severity=severity, description=description)
        elif callable(check):
            new = CustomCheck(name, func=check, severity=severity, description=description)
        else:
            raise InvalidInput(
                f"Check {name!r} must be an expression string or a function of the frame; "
                f"got {type(check).__name__}."
            )
        self.checks.append(new)
        return new

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON and YAML safe). Python-function checks are left out."""
        columns = []
        for c in self.columns.values():
            entry: dict[str, Any] = {
                "name": c.name,
                "type": c.type,
                "required": c.required,
                "nullable": c.nullable,
                "max_missing_rate": c.max_missing_rate,
            }
            for optional in ("min", "max", "domain", "mode_share"):
                if getattr(c, optional) is not None:
                    entry[optional] = getattr(c, optional)
            if c.defaults_seen:
                entry["defaults_seen"] = dict(c.defaults_seen)
            if c.distribution is not None:
                entry["distribution"] = {
                    "values": c.distribution["values"],
                    "quantiles": dict(c.distribution["quantiles"]),
                }
            columns.append(entry)
        checks = []
        for check in self.checks:
            if check.expr is not None:
                entry = {"name": check.name, "expr": check.expr, "severity": check.severity}
                if check.description:
                    entry["description"] = check.description
                checks.append(entry)
        return {
            "format_version": FORMAT_VERSION,
            "loopwise_version": __version__,
            "rows": self.rows,
            "target": self.target,
            "ordered": self.ordered,
            "allow_empty": self.allow_empty,
            "keys": [list(k) for k in self.keys],
            "severity": dict(self.severity),
            "thresholds": {f.name: getattr(self.thresholds, f.name) for f in fields(Thresholds)},
            "columns": columns,
            "checks": checks,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Schema:
        """A schema from :meth:`to_dict` output; unknown or misspelt keys are an error."""
        if not isinstance(data, dict):
            raise InvalidInput(f"A schema must be a mapping; got {type(data).__name__}.")
        _refuse_unknown("Schema", data, _TOP_KEYS)
        version = data.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidInput(
                f"Schema format_version {version!r} is not supported by loopwise {__version__} "
                f"(it reads 1 to {FORMAT_VERSION}); infer the schema again with "
                "infer_schema(data) and carry your edits over."
            )
        if version > FORMAT_VERSION:
            raise InvalidInput(
                f"Schema format_version {version!r} is not supported by loopwise {__version__} "
                f"(it reads 1 to {FORMAT_VERSION}): the file was written by a newer loopwise. "
                "Upgrade loopwise (pip install -U loopwise)."
            )
        raw_columns = data.get("columns")
        if not isinstance(raw_columns, list):
            raise InvalidInput("Schema 'columns' must be a list of column entries.")
        columns = []
        for i, raw in enumerate(raw_columns):
            if not isinstance(raw, dict) or "name" not in raw or "type" not in raw:
                raise InvalidInput(f"Schema column #{i + 1} needs at least 'name' and 'type'.")
            _refuse_unknown(f"Schema column {raw['name']!r}", raw, _COLUMN_KEYS)
            columns.append(ColumnSchema(**raw))
        names = [c.name for c in columns]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise InvalidInput(f"Schema lists columns {dupes} more than once.")
        thresholds = data.get("thresholds") or {}
        if not isinstance(thresholds, dict):
            raise InvalidInput("Schema 'thresholds' must be a mapping.")
        _refuse_unknown("Schema thresholds", thresholds, [f.name for f in fields(Thresholds)])
        checks = []
        for raw in data.get("checks") or []:
            if not isinstance(raw, dict) or "name" not in raw or "expr" not in raw:
                raise InvalidInput(f"A schema check needs 'name' and 'expr'; got {raw!r}.")
            _refuse_unknown(f"Schema check {raw['name']!r}", raw, _CHECK_KEYS)
            checks.append(CustomCheck(**raw))
        if "label" in data and "target" in data:
            raise InvalidInput(
                "Schema has 'target' and its former name 'label'; keep 'target' only."
            )
        return cls(
            columns={c.name: c for c in columns},
            target=target_of(data),
            ordered=data.get("ordered", False),
            keys=data.get("keys") or [],
            thresholds=Thresholds(**thresholds),
            checks=checks,
            rows=data.get("rows"),
            allow_empty=data.get("allow_empty", False),
            severity=data.get("severity") or {},
        )

    def to_yaml(self) -> str:
        """The schema as YAML text, with a header saying what is not in it."""
        import yaml

        header = [
            "# loopwise schema: review and edit, then load with Schema.load(path).",
            "# Unknown keys are an error. Docs: loopwise.data.schema.",
            "# min/max: hard limits. distribution: reference quantiles from `values` values;",
            "#   a batch must put about the same share of its values below each (a tolerance",
            "#   for its size, thresholds.distribution_alpha); delete it to skip the check.",
            "# severity: per anomaly kind, error or warning (e.g. duplicate_rows: error);",
            "#   allow_empty: true accepts a batch without rows.",
        ]
        skipped = [c.name for c in self.checks if c.func is not None]
        if skipped:
            header.append(
                f"# Not saved: Python-function checks {skipped}; add them again after loading."
            )
        body = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        return "\n".join(header) + "\n" + body

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the schema as YAML (atomically); Python-function checks are not saved."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.write_text(self.to_yaml(), encoding="utf-8")
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Schema:
        """Read a schema saved with :meth:`save` (and maybe edited by hand)."""
        from loopwise.documents import load_document

        return load_document(
            path,
            "Schema file",
            cls.from_dict,
            missing=NotFound,
            hint="save one with schema.save(path)",
        )


def target_of(document: dict[str, Any] | None) -> str | None:
    """The target column named by a stored schema document (:meth:`Schema.to_dict` output),
    under ``target`` or, in documents written before format 3, ``label``."""
    if not document:
        return None
    return document.get("target", document.get("label"))


_TOP_KEYS = (
    "format_version",
    "loopwise_version",
    "rows",
    "target",
    "label",  # the former name of target, still read
    "ordered",
    "allow_empty",
    "keys",
    "severity",
    "thresholds",
    "columns",
    "checks",
)
_COLUMN_KEYS = tuple(f.name for f in fields(ColumnSchema))
_CHECK_KEYS = ("name", "expr", "severity", "description")


def _refuse_unknown(where: str, data: dict[str, Any], known: Any) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InvalidInput(
                f"{where}: unknown key {key!r}.{hint} Known keys: {', '.join(known)}."
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_share(where: str, name: str, value: Any) -> None:
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise InvalidInput(f"{where}: {name} must be a number in [0, 1]; got {value!r}.")


def default_key(value: Any) -> str:
    """How a placeholder value is written in ``defaults_seen``: -1, 9999.5, n/a, 1970-01-01."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, str):
        text = value.strip().lower()
        return text if text else EMPTY_KEY
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10]
    return str(value)
