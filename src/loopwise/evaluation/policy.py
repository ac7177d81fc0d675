"""A promotion policy: the declarative rules a model version must pass to take an alias.

Why: "is this model good enough to ship?" should be written down once, reviewed like code
and applied the same way by the API, the CLI and CI, not re-decided by whoever promotes.
A policy is plain data (YAML, JSON or a Python dict) with optional sections::

    task: classification
    thresholds: {roc_auc: 0.75, recall: 0.6}      # hurdle rates on the overall metrics
    vs_current: {metric: roc_auc, max_drop: 0.01, bootstrap: 1000, confidence: 0.95}
    slices: {columns: [region], min: {recall: 0.55}, max_gap: {recall: 0.15}, min_rows: 30}
    smoke_tests:
      - {input: {age: 35, income: 52000, region: north}, expect: 1}
      - {input: {age: 70, income: 9000}, expect_between: [0, 1], output: proba}
    latency_p95_ms: 20
    max_size_mb: 200                               # MiB: 1 MB here is 1,048,576 bytes

Each metric has a direction (:data:`HIGHER_IS_BETTER` from :mod:`.metrics`, the rest in
:data:`LOWER_IS_BETTER`). A hurdle (``thresholds`` and ``slices.min``) is a minimum for a
higher-is-better metric (ROC-AUC, recall, R², ...) and a maximum for an error (RMSE, MAE,
log-loss, normalised RMSE, MAPE). The whole document is checked when it is read, so a typo
fails at load with the key path (``slices.min.recal: unknown metric 'recal' — did you mean
'recall'?``) instead of silently gating nothing. :mod:`.gates` applies a policy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopwise._version import __version__
from loopwise.evaluation.metrics import (
    HIGHER_IS_BETTER,
    LABEL_METRICS,
    PROBABILITY_METRICS,
    REGRESSION_METRICS,
)
from loopwise.param_errors import join_path, path_error, refuse_unknown_keys, suggestion

FORMAT_VERSION = 1
TASK_METRICS = {
    "classification": (*LABEL_METRICS, *PROBABILITY_METRICS),
    "regression": REGRESSION_METRICS,
}
METRICS = (*LABEL_METRICS, *PROBABILITY_METRICS, *REGRESSION_METRICS)
#: Errors and losses: a hurdle on them is a maximum, and a drop means the value went up.
LOWER_IS_BETTER = frozenset(METRICS) - HIGHER_IS_BETTER
#: The values each metric can take; a hurdle outside them can never be met (or always is).
_RANGES = {m: (0.0, 1.0) for m in HIGHER_IS_BETTER} | {"r2": (-math.inf, 1.0)}
#: Replicates of the paired bootstrap: fewer gives unstable interval ends, more only costs.
BOOTSTRAP_RANGE = (100, 100_000)
_TOP = (
    "format_version", "loopwise_version", "task", "thresholds", "vs_current", "slices",
    "smoke_tests", "latency_p95_ms", "max_size_mb",
)  # fmt: skip
_VS_CURRENT = ("metric", "max_drop", "bootstrap", "confidence", "seed")
_SLICES = ("columns", "min", "max_gap", "min_rows")
_SMOKE = ("name", "input", "expect", "expect_between", "output", "tolerance")
OUTPUTS = ("predict", "proba")


def higher_is_better(metric: str) -> bool:
    """True when a larger value of ``metric`` is better (accuracy, ROC-AUC, R², ...)."""
    return metric in HIGHER_IS_BETTER


@dataclass(frozen=True)
class VsCurrent:
    """Not worse than the current alias holder on ``metric`` by more than ``max_drop``.

    With ``bootstrap`` replicates the lower end of the paired bootstrap interval (at
    ``confidence``) of the improvement must stay above ``-max_drop``; without, the point
    difference must.
    """

    metric: str
    max_drop: float = 0.0
    bootstrap: int | None = None
    confidence: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class SliceRules:
    """Per-slice hurdles (``min``) and the largest allowed best-minus-worst gap (``max_gap``).

    ``columns`` holds slice specs as :func:`~loopwise.evaluation.evaluate.evaluate` takes
    them (empty: every slice of the evaluation). Slices under ``min_rows`` rows are
    reported, not gated.
    """

    columns: tuple[Any, ...] = ()
    min: dict[str, float] = field(default_factory=dict)
    max_gap: dict[str, float] = field(default_factory=dict)
    min_rows: int = 30


@dataclass(frozen=True)
class SmokeTest:
    """One known input (a dict: one row) and its expected output or bounds.

    ``output`` is ``"predict"`` or ``"proba"`` (the positive-class probability of a binary
    classifier). Numbers are compared with ``math.isclose`` (``abs_tol=tolerance``).
    """

    input: dict[str, Any]
    expect: Any = None
    expect_between: tuple[float, float] | None = None
    output: str = "predict"
    tolerance: float = 1e-9
    name: str | None = None


@dataclass(frozen=True)
class Policy:
    """A promotion policy; every section is optional (an empty policy passes everything)."""

    task: str | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    vs_current: VsCurrent | None = None
    slices: SliceRules | None = None
    smoke_tests: tuple[SmokeTest, ...] = ()
    latency_p95_ms: float | None = None
    max_size_mb: float | None = None

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Policy:
        """Check ``document`` and build the policy; raise InvalidInput naming the bad key."""
        d = _mapping(document, "policy")
        refuse_unknown_keys(d, _TOP, "")
        version = d.get("format_version", FORMAT_VERSION)
        if not _is_int(version) or not 1 <= version <= FORMAT_VERSION:
            raise path_error(
                "format_version",
                f"is {version!r}; this loopwise ({__version__}) reads format_version "
                f"{FORMAT_VERSION}. Upgrade loopwise (pip install -U loopwise).",
            )
        task = d.get("task")
        if task is not None and task not in TASK_METRICS:
            raise path_error("task", f"must be 'classification' or 'regression'; got {task!r}.")
        return cls(
            task=task,
            thresholds=_hurdles(d.get("thresholds"), "thresholds", task),
            vs_current=_vs_current(d.get("vs_current"), task),
            slices=_slices(d.get("slices"), task),
            smoke_tests=_smoke_tests(d.get("smoke_tests")),
            latency_p95_ms=_budget(d.get("latency_p95_ms"), "latency_p95_ms"),
            max_size_mb=_budget(d.get("max_size_mb"), "max_size_mb"),
        )

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Read a policy from a YAML (or JSON) file."""
        from loopwise.documents import load_document

        return load_document(path, "policy file", cls.from_dict)

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain data (sections left unset are omitted), stamped with versions."""
        out: dict[str, Any] = {"format_version": FORMAT_VERSION, "loopwise_version": __version__}
        if self.task is not None:
            out["task"] = self.task
        if self.thresholds:
            out["thresholds"] = dict(self.thresholds)
        if self.vs_current is not None:
            v = self.vs_current
            out["vs_current"] = {"metric": v.metric, "max_drop": v.max_drop}
            if v.bootstrap:
                out["vs_current"] |= {"bootstrap": v.bootstrap, "confidence": v.confidence}
            out["vs_current"]["seed"] = v.seed
        if self.slices is not None:
            s = self.slices
            out["slices"] = {
                "columns": [_plain(c) for c in s.columns],
                "min": dict(s.min),
                "max_gap": dict(s.max_gap),
                "min_rows": s.min_rows,
            }
        if self.smoke_tests:
            out["smoke_tests"] = [_smoke_dict(t) for t in self.smoke_tests]
        for key in ("latency_p95_ms", "max_size_mb"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def save(self, path: str | Path) -> Path:
        """Write the policy as YAML (atomically); return the path."""
        import yaml

        from loopwise.reports.page import write_page

        write_page(path, yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))
        return Path(path)


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise path_error(path, f"must be a mapping (key: value); got {type(value).__name__}.")
    return dict(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise path_error(path, f"must be a number; got {value!r} ({type(value).__name__}).")
    return float(value)


def _metric(name: Any, path: str, task: str | None) -> str:
    if name not in METRICS:
        raise path_error(path, f"unknown metric {name!r}{suggestion(name, METRICS)}")
    if task is not None and name not in TASK_METRICS[task]:
        raise path_error(
            path,
            f"metric {name!r} does not apply to task {task!r}; use one of: "
            f"{', '.join(TASK_METRICS[task])}.",
        )
    return name


def _hurdles(value: Any, path: str, task: str | None) -> dict[str, float]:
    out = {}
    for name, limit in _mapping(value or {}, path).items():
        key = join_path(path, name)
        number = _number(limit, key)
        low, high = _RANGES.get(_metric(name, key, task), (0.0, math.inf))
        if not low <= number <= high:
            raise path_error(key, f"{name} takes values in [{low:g}, {high:g}]; got {limit!r}.")
        out[name] = number
    return out


def _non_negative(value: Any, path: str) -> float:
    number = _number(value, path)
    if number < 0 or math.isinf(number):
        raise path_error(path, f"must be a finite number >= 0; got {value!r}.")
    return number


def _budget(value: Any, path: str) -> float | None:
    if value is None:
        return None
    number = _number(value, path)
    if not 0 < number < math.inf:
        raise path_error(path, f"must be a finite number > 0 (a budget); got {value!r}.")
    return number


def _vs_current(value: Any, task: str | None) -> VsCurrent | None:
    if value is None:
        return None
    d = _mapping(value, "vs_current")
    refuse_unknown_keys(d, _VS_CURRENT, "vs_current")
    if "metric" not in d:
        raise path_error("vs_current.metric", "is required: the metric to compare, e.g. roc_auc.")
    bootstrap = d.get("bootstrap")
    low, high = BOOTSTRAP_RANGE
    if bootstrap in (None, 0):
        bootstrap = None
    elif not _is_int(bootstrap) or not low <= bootstrap <= high:
        raise path_error(
            "vs_current.bootstrap",
            f"must be an integer in [{low}, {high}] (replicates), or 0 to compare point "
            f"values; got {bootstrap!r}.",
        )
    confidence = _number(d.get("confidence", 0.95), "vs_current.confidence")
    if not 0.5 <= confidence < 1:
        raise path_error(
            "vs_current.confidence", f"must be in [0.5, 1), e.g. 0.95; got {confidence!r}."
        )
    seed = d.get("seed", 0)
    if not _is_int(seed) or seed < 0:
        raise path_error("vs_current.seed", f"must be an integer >= 0; got {seed!r}.")
    return VsCurrent(
        metric=_metric(d["metric"], "vs_current.metric", task),
        max_drop=_non_negative(d.get("max_drop", 0.0), "vs_current.max_drop"),
        bootstrap=bootstrap,
        confidence=confidence,
        seed=seed,
    )


def _slices(value: Any, task: str | None) -> SliceRules | None:
    if value is None:
        return None
    d = _mapping(value, "slices")
    refuse_unknown_keys(d, _SLICES, "slices")
    columns = d.get("columns", [])
    if isinstance(columns, str):
        columns = [columns]
    if not isinstance(columns, list | tuple):
        raise path_error("slices.columns", f"must be a list of column names; got {columns!r}.")
    specs = tuple(_slice_spec(c, f"slices.columns[{i}]") for i, c in enumerate(columns))
    gaps = _mapping(d.get("max_gap") or {}, "slices.max_gap")
    max_gap = {}
    for name, limit in gaps.items():
        key = f"slices.max_gap.{name}"
        max_gap[_metric(name, key, task)] = _non_negative(limit, key)
    min_rows = d.get("min_rows", 30)
    if not _is_int(min_rows) or min_rows < 1:
        raise path_error("slices.min_rows", f"must be an integer >= 1; got {min_rows!r}.")
    floors = _hurdles(d.get("min"), "slices.min", task)
    return SliceRules(columns=specs, min=floors, max_gap=max_gap, min_rows=min_rows)


def _slice_spec(spec: Any, path: str) -> Any:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, list | tuple) and len(spec) == 2 and isinstance(spec[0], str):
        if isinstance(spec[1], str):
            return (spec[0], spec[1])
        if isinstance(spec[1], list | tuple):
            return (spec[0], tuple(_number(e, f"{path}[1]") for e in spec[1]))
    raise path_error(
        path,
        f"must be a column name, [column, [bin edges]] or [column_a, column_b]; got {spec!r}.",
    )


def _smoke_tests(value: Any) -> tuple[SmokeTest, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise path_error("smoke_tests", f"must be a list of tests; got {type(value).__name__}.")
    return tuple(_smoke_test(t, f"smoke_tests[{i}]") for i, t in enumerate(value))


def _smoke_test(value: Any, path: str) -> SmokeTest:
    d = _mapping(value, path)
    refuse_unknown_keys(d, _SMOKE, path)
    row = _mapping(d.get("input"), f"{path}.input")
    if not row:
        raise path_error(f"{path}.input", "must hold at least one feature: value pair.")
    if ("expect" in d) == ("expect_between" in d):
        raise path_error(
            path, "give exactly one of 'expect' (a value) or 'expect_between' ([lo, hi])."
        )
    between = d.get("expect_between")
    if between is not None:
        where = f"{path}.expect_between"
        if not isinstance(between, list | tuple) or len(between) != 2:
            raise path_error(where, f"must be [low, high]; got {between!r}.")
        low, high = (_number(b, where) for b in between)
        if low > high:
            raise path_error(where, f"low {low:g} is above high {high:g}; swap them.")
        between = (low, high)
    output = d.get("output", "predict")
    if output not in OUTPUTS:
        raise path_error(
            f"{path}.output", f"unknown output {output!r}{suggestion(output, OUTPUTS)}"
        )
    name = d.get("name")
    if name is not None and not isinstance(name, str):
        raise path_error(f"{path}.name", f"must be text; got {name!r}.")
    return SmokeTest(
        input=row,
        expect=d.get("expect"),
        expect_between=between,
        output=output,
        tolerance=_non_negative(d.get("tolerance", 1e-9), f"{path}.tolerance"),
        name=name,
    )


def _plain(spec: Any) -> Any:
    if isinstance(spec, tuple):
        return [_plain(s) for s in spec]
    return spec


def _smoke_dict(test: SmokeTest) -> dict[str, Any]:
    out: dict[str, Any] = {} if test.name is None else {"name": test.name}
    out["input"] = dict(test.input)
    if test.expect_between is None:
        out["expect"] = test.expect
    else:
        out["expect_between"] = list(test.expect_between)
    if test.output != "predict":
        out["output"] = test.output
    if test.tolerance != 1e-9:
        out["tolerance"] = test.tolerance
    return out
