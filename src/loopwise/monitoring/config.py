"""A monitor's declaration: which endpoint, over which windows, against which reference, with
which checks. Plain data (YAML, JSON or a Python dict) or keyword arguments::

    name: credit-risk                     # default: the endpoint's name
    endpoint: credit-risk
    window: 1h                            # 30s, 15m, 1h, 1d, 2w (aligned to the epoch, UTC),
                                          # or a number of predictions: window: 10000
    reference: datasets:/loans/3          # default: the training data of the live model
    target: defaulted                     # the label column of the reference data
    task: classification                  # default: inferred from the predictions
    positive_label: 1
    slices: [region, {column: age, bins: [0, 30, 50, 120]}, [region, segment]]
    features: [income, debt, age]         # default: every input column of the log
    checks:
      schema: true                        # validate inputs against the reference's schema
      feature_drift: {method: psi, threshold: 0.2}   # default: detect_drift's tests
      prediction_drift: true
      performance: [precision, recall, f1]           # from feedback; default per task
      operational: true                   # latency percentiles, error rate, throughput
      custom:
        high_scores: "(col('prediction') > 0.9).mean()"   # a Polars expression
    min_rows: 100                         # fewer rows (or labels) in a window or slice: None
    include_shadows: false                # shadows' answers as monitor "<name>.shadow"
    alerts: [...]                         # kept as written; the alerting module checks them
    webhooks: [...]

In Python, ``reference`` may also be a DataFrame (pandas, Polars or Arrow) and a custom check
a function ``frame -> float`` (a Polars DataFrame of the window's rows as logged); such a
monitor cannot be written to YAML. The document is checked when it is read, so a typo fails
with its key path (``checks.feature_drift.method: unknown test 'pis' — did you mean 'psi'?``)
instead of monitoring nothing.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from loopwise._version import __version__
from loopwise.clock import DURATION_EXAMPLES, format_duration, parse_duration
from loopwise.errors import InvalidInput
from loopwise.ids import ENDPOINT_NAME_LENGTH, slug_pattern
from loopwise.param_errors import check_choice, path_error, refuse_unknown_keys

FORMAT_VERSION = 1
TASKS = ("classification", "regression")
#: The monitor of shadows' answers is ``<name>`` + this (a name cannot contain "."), and
#: the baselines of a monitor's model versions are stored under ``<name>`` + BASELINE_SUFFIX.
SHADOW_SUFFIX = ".shadow"
BASELINE_SUFFIX = ".baseline"
DEFAULT_MIN_ROWS = 100

_TOP = (
    "format_version", "loopwise_version", "name", "endpoint", "window", "reference", "target",
    "task", "positive_label", "slices", "features", "checks", "min_rows", "include_shadows",
    "alerts", "webhooks",
)  # fmt: skip
_CHECKS = (
    "schema", "feature_drift", "prediction_drift", "performance", "operational", "custom",
)  # fmt: skip
_DRIFT = ("method", "threshold")
_SLICE = ("column", "bins")
_NAME = slug_pattern(ENDPOINT_NAME_LENGTH - len(BASELINE_SUFFIX))  # room for the suffixes
_CUSTOM_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class Window:
    """A window: a duration in whole ``seconds`` (aligned to the epoch) or ``rows`` per window."""

    seconds: int | None = None
    rows: int | None = None

    @property
    def is_count(self) -> bool:
        return self.rows is not None

    def to_value(self) -> str | int:
        """As written in a document: ``"1h"`` or a number of predictions."""
        if self.rows is not None:
            return self.rows
        assert self.seconds is not None
        return format_duration(self.seconds)

    def __str__(self) -> str:
        return f"{self.rows:,} predictions" if self.rows is not None else str(self.to_value())


@dataclass(frozen=True)
class DriftCheck:
    """A drift check: ``method`` None keeps detect_drift's choice per column; ``threshold``
    None the method's default."""

    enabled: bool = True
    method: str | None = None
    threshold: float | None = None

    def to_value(self) -> bool | dict[str, Any]:
        if not self.enabled or (self.method is None and self.threshold is None):
            return self.enabled
        out: dict[str, Any] = {"method": self.method}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out


@dataclass(frozen=True)
class WindowChecks:
    """What a window is checked for. ``performance`` None: the task's default metrics."""

    schema: bool = True
    feature_drift: DriftCheck = DriftCheck()
    prediction_drift: DriftCheck = DriftCheck()
    performance: tuple[str, ...] | None = None
    performance_enabled: bool = True
    operational: bool = True
    custom: Mapping[str, str | Callable[[Any], float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        performance: Any = self.performance_enabled
        if self.performance_enabled and self.performance is not None:
            performance = list(self.performance)
        return {
            "schema": self.schema,
            "feature_drift": self.feature_drift.to_value(),
            "prediction_drift": self.prediction_drift.to_value(),
            "performance": performance,
            "operational": self.operational,
            "custom": dict(self.custom),
        }


class Monitor:
    """A checked monitor declaration (see the module doc for every field).

    ``Monitor("credit-risk")`` monitors an endpoint with the defaults; keyword arguments,
    :meth:`from_dict` and :meth:`load` (YAML or JSON) take the same fields and check them
    the same way.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        name: str | None = None,
        window: str | int | timedelta = "1h",
        reference: Any = None,
        target: str | None = None,
        task: str | None = None,
        positive_label: Any = None,
        slices: Sequence[Any] | None = None,
        features: Sequence[str] | None = None,
        checks: Mapping[str, Any] | WindowChecks | None = None,
        min_rows: int = DEFAULT_MIN_ROWS,
        include_shadows: bool = False,
        alerts: Any = None,
        webhooks: Any = None,
    ) -> None:
        from loopwise.serving.endpoint_config import check_endpoint_name

        try:
            self.endpoint: str = check_endpoint_name(endpoint)
        except InvalidInput as e:
            raise path_error("endpoint", str(e).removeprefix("endpoint name: ")) from None
        self.name: str = _name(endpoint if name is None else name)
        self.window: Window = _window(window)
        self.reference: Any = _reference(reference)
        self.target: str | None = _optional_text(target, "target")
        if task is not None and task not in TASKS:
            raise path_error("task", f"must be 'classification' or 'regression'; got {task!r}.")
        self.task: str | None = task
        self.positive_label: Any = _scalar(positive_label, "positive_label")
        self.slices: tuple[Any, ...] = _slices(slices)
        self.features: tuple[str, ...] | None = _features(features)
        self.checks: WindowChecks = (
            checks if isinstance(checks, WindowChecks) else _checks(checks, task)
        )
        self.min_rows: int = _positive_int(min_rows, "min_rows")
        if not isinstance(include_shadows, bool):
            raise path_error("include_shadows", f"must be true or false; got {include_shadows!r}.")
        self.include_shadows: bool = include_shadows
        from loopwise.monitoring.alerting.delivery import parse_webhooks
        from loopwise.monitoring.alerting.rules import parse_rules

        self.alerts: Any = alerts
        self.webhooks: Any = webhooks
        # Checked now, so a typo in a rule fails when the monitor is declared, not when a
        # window first crosses it.
        self.alert_rules = parse_rules(alerts) if alerts else ()
        self.webhook_targets = parse_webhooks(webhooks) if webhooks else ()

    # -- documents ----------------------------------------------------------------------

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Monitor:
        """Check a document (a mapping) and build the monitor; errors name the key path."""
        if not isinstance(document, Mapping):
            raise InvalidInput(
                f"a monitor config must be a mapping (key: value); got {type(document).__name__}."
            )
        d = dict(document)
        refuse_unknown_keys(d, _TOP, "")
        version = d.pop("format_version", FORMAT_VERSION)
        if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
            raise path_error(
                "format_version",
                f"is {version!r}; this loopwise ({__version__}) reads format_version "
                f"{FORMAT_VERSION}. Upgrade loopwise (pip install -U loopwise).",
            )
        d.pop("loopwise_version", None)
        if d.get("endpoint") is None:
            raise path_error(
                "endpoint", "is required: the endpoint whose prediction log to monitor."
            )
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> Monitor:
        """Read a monitor from a YAML (or JSON) file."""
        from loopwise.documents import load_document

        return load_document(path, "monitor config", cls.from_dict)

    def to_dict(self) -> dict[str, Any]:
        """The monitor as plain data, stamped with versions; ``from_dict`` reads it back.

        A DataFrame reference and callable custom checks are kept as they are (Python only).
        """
        out: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "loopwise_version": __version__,
            "name": self.name,
            "endpoint": self.endpoint,
            "window": self.window.to_value(),
            "reference": (
                list(self.reference) if isinstance(self.reference, tuple) else self.reference
            ),
            "target": self.target,
            "task": self.task,
            "positive_label": self.positive_label,
            "slices": [_slice_value(s) for s in self.slices],
            "features": None if self.features is None else list(self.features),
            "checks": self.checks.to_dict(),
            "min_rows": self.min_rows,
            "include_shadows": self.include_shadows,
        }
        if self.alerts is not None:
            out["alerts"] = self.alerts
        if self.webhooks is not None:
            out["webhooks"] = self.webhooks
        return out

    def to_yaml(self) -> str:
        """The monitor as YAML; refused when it holds Python-only values."""
        import yaml

        if self.reference is not None and not isinstance(self.reference, str | tuple):
            raise InvalidInput(
                f"monitor {self.name!r} has a DataFrame reference, which YAML cannot hold; "
                "log it with lw.log_dataset(frame, name=...) and use its datasets:/ URI."
            )
        for key, check in self.checks.custom.items():
            if not isinstance(check, str):
                raise InvalidInput(
                    f"monitor {self.name!r}: custom check {key!r} is a Python function, which "
                    "YAML cannot hold; write it as a Polars expression string."
                )
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path) -> Path:
        """Write the monitor as YAML (atomically); return the path."""
        from loopwise.reports.page import write_page

        write_page(path, self.to_yaml())
        return Path(path)

    @property
    def shadow_name(self) -> str:
        """The monitor name under which shadows' answers are stored."""
        return self.name + SHADOW_SUFFIX

    def __repr__(self) -> str:
        return f"Monitor({self.name!r}, endpoint={self.endpoint!r}, window={str(self.window)!r})"


def as_monitor(value: Any) -> Monitor:
    """A Monitor from a Monitor, a mapping, a YAML/JSON path or an endpoint name."""
    if isinstance(value, Monitor):
        return value
    if isinstance(value, Mapping):
        return Monitor.from_dict(value)
    if isinstance(value, Path) or (
        isinstance(value, str) and value.lower().endswith((".yaml", ".yml", ".json"))
    ):
        return Monitor.load(value)
    if isinstance(value, str):
        return Monitor(value)
    raise InvalidInput(
        "a monitor is a loopwise.Monitor, a config mapping, a path to a YAML file or an "
        f"endpoint name; got {type(value).__name__}."
    )


# -- checking ---------------------------------------------------------------------------------


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise path_error(
            "name",
            "must be lower-case letters, digits, '-' or '_' (at most 54, starting with a letter "
            f"or digit); got {value!r}.",
        )
    return value


def _window(value: Any) -> Window:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise path_error("window", f"a number of predictions must be at least 1; got {value}.")
        return Window(rows=value)
    try:
        return Window(seconds=parse_duration(value, "window"))
    except InvalidInput:
        raise path_error(
            "window",
            f"must be a duration such as {DURATION_EXAMPLES}, or a number of predictions "
            f"(an int such as 10000); got {value!r}.",
        ) from None


def _reference(value: Any) -> Any:
    from loopwise.refs import parse_ref

    if value is None:
        return None
    if isinstance(value, str | list | tuple):
        items = [value] if isinstance(value, str) else list(value)
        if not items:
            raise path_error("reference", "is an empty list; give datasets:/ URIs or leave it out.")
        for i, item in enumerate(items):
            where = "reference" if isinstance(value, str) else f"reference[{i}]"
            if not isinstance(item, str) or not item.startswith("datasets:/"):
                raise path_error(
                    where,
                    f"must be a datasets:/ URI such as datasets:/loans/3; got {item!r}. "
                    "Leave reference out to use the live model's training data.",
                )
            try:
                parse_ref(item, kind="datasets")
            except InvalidInput as e:
                raise path_error(where, str(e)) from e
        return value if isinstance(value, str) else tuple(items)
    module = type(value).__module__.split(".")[0]
    if module in ("pandas", "polars", "pyarrow"):
        return value
    raise path_error(
        "reference",
        "must be a datasets:/ URI, a list of them, or (in Python) a DataFrame; "
        f"got {type(value).__name__}.",
    )


def _optional_text(value: Any, path: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise path_error(path, f"must be a column name; got {value!r}.")
    return value


def _scalar(value: Any, path: str) -> Any:
    ok = (
        value is None
        or isinstance(value, str | bool | int)
        or (isinstance(value, float) and math.isfinite(value))
    )
    if not ok:
        raise path_error(path, f"must be a number, text or true/false; got {value!r}.")
    return value


def _positive_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise path_error(path, f"must be a whole number of at least 1; got {value!r}.")
    return value


def _column(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise path_error(path, f"must be a column name; got {value!r}.")
    return value.removeprefix("input.")


def _slices(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence):
        raise path_error("slices", f"must be a list of slice specs; got {type(value).__name__}.")
    out: list[Any] = []
    for i, spec in enumerate(value):
        out.append(_slice(spec, f"slices[{i}]"))
    names = [slice_name(s) for s in out]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        raise path_error(
            "slices", f"slice {dup!r} is given more than once; keep one spec per column."
        )
    return tuple(out)


def _slice(spec: Any, path: str) -> Any:
    forms = (
        "a column name (region), {column: age, bins: [0, 30, 50, 120]}, [age, [0, 30, 50]] "
        "or two columns to cross ([region, segment])"
    )
    if isinstance(spec, str):
        return _column(spec, path)
    if isinstance(spec, Mapping):
        refuse_unknown_keys(spec, _SLICE, path)
        if "column" not in spec or "bins" not in spec:
            raise path_error(path, f"needs column and bins; give {forms}.")
        return (_column(spec["column"], f"{path}.column"), _bins(spec["bins"], f"{path}.bins"))
    if isinstance(spec, list | tuple) and len(spec) == 2 and isinstance(spec[0], str):
        if isinstance(spec[1], str):
            return (_column(spec[0], path), _column(spec[1], path))
        return (_column(spec[0], path), _bins(spec[1], f"{path}[1]"))
    raise path_error(path, f"is not a slice spec: {spec!r}; give {forms}.")


def _bins(value: Any, path: str) -> tuple[float, ...]:
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) >= 2
    numbers = ok and all(
        isinstance(v, int | float) and not isinstance(v, bool) and not math.isnan(v) for v in value
    )
    if not numbers or any(b <= a for a, b in itertools.pairwise(value)):
        raise path_error(
            path,
            f"bin edges must be at least two numbers in strictly increasing order; got {value!r}.",
        )
    return tuple(value)


def slice_name(spec: Any) -> str:
    """The name a slice spec's figures are filed under: ``region``, ``age``, ``a & b``."""
    if isinstance(spec, str):
        return spec
    return f"{spec[0]} & {spec[1]}" if isinstance(spec[1], str) else spec[0]


def _slice_value(spec: Any) -> Any:
    if isinstance(spec, str):
        return spec
    if isinstance(spec[1], str):
        return [spec[0], spec[1]]
    return {"column": spec[0], "bins": list(spec[1])}


def _features(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise path_error("features", f"must be a non-empty list of column names; got {value!r}.")
    names = [_column(v, f"features[{i}]") for i, v in enumerate(value)]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        raise path_error("features", f"{dup!r} is listed twice.")
    return tuple(names)


def _checks(value: Any, task: str | None) -> WindowChecks:
    if value is None:
        return WindowChecks()
    if not isinstance(value, Mapping):
        raise path_error(
            "checks", f"must be a mapping of check: setting; got {type(value).__name__}."
        )
    refuse_unknown_keys(value, _CHECKS, "checks")
    performance, performance_enabled = _performance(value.get("performance", True), task)
    return WindowChecks(
        schema=_flag(value.get("schema", True), "checks.schema"),
        feature_drift=_drift(value.get("feature_drift", True), "checks.feature_drift"),
        prediction_drift=_drift(value.get("prediction_drift", True), "checks.prediction_drift"),
        performance=performance,
        performance_enabled=performance_enabled,
        operational=_flag(value.get("operational", True), "checks.operational"),
        custom=_custom(value.get("custom")),
    )


def _flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise path_error(path, f"must be true or false; got {value!r}.")
    return value


def _drift(value: Any, path: str) -> DriftCheck:
    from loopwise.data.drift.detect import P_VALUE_TESTS, TEST_NAMES

    if isinstance(value, bool):
        return DriftCheck(enabled=value)
    if not isinstance(value, Mapping):
        raise path_error(
            path, f"must be true, false or a mapping such as {{method: psi}}; got {value!r}."
        )
    refuse_unknown_keys(value, _DRIFT, path)
    method = value.get("method")
    if method is not None:
        method = check_choice(method, TEST_NAMES, f"{path}.method", "test")
    threshold = value.get("threshold")
    if threshold is not None:
        if method is None:
            raise path_error(
                f"{path}.threshold",
                "needs a method (thresholds mean different things per test: a p-value for ks "
                "and chi2, a distance for the others); add method: psi, for example.",
            )
        bad = isinstance(threshold, bool) or not isinstance(threshold, int | float)
        if bad or not threshold > 0 or (method in P_VALUE_TESTS and not threshold < 1):
            rule = "a p-value in (0, 1)" if method in P_VALUE_TESTS else "a distance above 0"
            raise path_error(
                f"{path}.threshold", f"for {method} must be {rule}; got {threshold!r}."
            )
        threshold = float(threshold)
    return DriftCheck(enabled=True, method=method, threshold=threshold)


def _performance(value: Any, task: str | None) -> tuple[tuple[str, ...] | None, bool]:
    from loopwise.evaluation.policy import METRICS, TASK_METRICS

    path = "checks.performance"
    if isinstance(value, bool):
        return None, value
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise path_error(
            path, f"must be true, false or a list of metrics such as [f1, recall]; got {value!r}."
        )
    names = []
    for i, metric in enumerate(value):
        name = check_choice(metric, METRICS, f"{path}[{i}]", "metric")
        if task is not None and name not in TASK_METRICS[task]:
            raise path_error(
                f"{path}[{i}]",
                f"{name!r} is not a {task} metric; use one of: {', '.join(TASK_METRICS[task])}.",
            )
        names.append(name)
    return tuple(dict.fromkeys(names)), True


def _custom(value: Any) -> dict[str, str | Callable[[Any], float]]:
    from loopwise.data.schema import compile_expression

    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise path_error("checks.custom", f"must map check names to expressions; got {value!r}.")
    out: dict[str, str | Callable[[Any], float]] = {}
    for key, check in value.items():
        path = f"checks.custom.{key}"
        if not isinstance(key, str) or not _CUSTOM_NAME.fullmatch(key):
            raise path_error(
                path, "a check name is letters, digits, '_', '.' or '-' (at most 100)."
            )
        if isinstance(check, str):
            try:
                compile_expression(check, what=f"custom check {key!r}")
            except InvalidInput as e:
                raise path_error(path, str(e)) from e
        elif not callable(check):
            raise path_error(
                path,
                "must be a Polars expression string such as \"col('prediction').mean()\" or "
                f"(in Python) a function frame -> float; got {check!r}.",
            )
        out[key] = check
    return out
