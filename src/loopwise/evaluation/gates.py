"""Apply a promotion :class:`~loopwise.evaluation.policy.Policy` to a candidate model.

Why: a promotion decision must say exactly which rule failed, by how much and on which
slice, so :func:`run_gates` returns one :class:`GateResult` per rule (and per slice), each with
a message a reviewer can act on; :func:`summarize` folds them into pass/fail and reasons.
The caller evaluates (:func:`evaluate_for_policy` uses the policy's task and slices); the
gates read those evaluations and call the models only for what an evaluation cannot hold:
the paired bootstrap, the smoke tests and the latency.

``vs_current`` compares the candidate with the current alias holder on the same rows as an
*improvement*: candidate − current for a higher-is-better metric, current − candidate for
an error. Without bootstrap the gate fails when the point improvement is below
``-max_drop``. With ``bootstrap: N`` it draws N seeded resamples of the row indices, scores
both models on each (the same rows for both: paired), and fails when the lower end of the
central ``confidence`` interval of the improvement is below ``-max_drop``: the candidate
may be worse by ``max_drop`` at most, with that confidence. The resampled metrics are
computed in :mod:`.bootstrap` (:func:`resampled_metric` is re-exported here). A current
holder whose labels are not the target's (trained on other labels:
:class:`~.metrics.LabelMismatch`) cannot be scored, so ``vs_current`` fails and says so
instead of stopping the promotion; the candidate's own mismatch stops it in its evaluation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from loopwise.data.frames import DataLike, to_polars
from loopwise.errors import InvalidInput
from loopwise.evaluation.bootstrap import paired_bootstrap
from loopwise.evaluation.bootstrap import resampled_metric as resampled_metric  # re-export
from loopwise.evaluation.evaluate import Evaluation, evaluate
from loopwise.evaluation.metrics import LabelMismatch, encode_classification, label_set
from loopwise.evaluation.policy import Policy, SliceRules, SmokeTest, VsCurrent, higher_is_better

LATENCY_WARMUP = 5
LATENCY_CALLS = 50
MIB = 1024 * 1024  # max_size_mb counts MiB
_EPS = 1e-12  # slack when comparing a value with its limit, against float round-off


@dataclass(frozen=True)
class GateResult:
    """One gate result: ``name`` like ``"threshold:roc_auc"`` or ``"slice_min:recall"``.

    ``message`` says what failed and by how much; ``slice`` names the slice concerned
    (``"region=south"``; the worst one for a gap).
    """

    name: str
    passed: bool
    value: Any
    limit: Any
    message: str
    slice: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe document (NaN becomes None)."""
        keys = ("name", "passed", "value", "limit", "slice", "message", "details")
        return {k: _json(getattr(self, k)) for k in keys}


def evaluate_for_policy(
    model: Any, data: DataLike, target: str, policy: Policy | Mapping[str, Any]
) -> Evaluation:
    """:func:`~loopwise.evaluation.evaluate.evaluate` with the policy's task and slices."""
    policy = _policy(policy)
    columns = list(policy.slices.columns) if policy.slices else []
    return evaluate(model, data, target, task=policy.task, slices=columns or None)


def run_gates(
    policy: Policy | Mapping[str, Any],
    *,
    candidate: Any,
    candidate_eval: Evaluation,
    data: DataLike,
    target: str,
    current: Any = None,
    current_eval: Evaluation | None = None,
    size_bytes: int | None = None,
) -> list[GateResult]:
    """Every check of ``policy`` on ``candidate`` (evaluated on ``data`` as ``candidate_eval``).

    ``current`` is the current alias holder (evaluated here when ``current_eval`` is not
    given); without either, ``vs_current`` passes. ``size_bytes`` defaults to the package
    size of a loaded model (``manifest.files``). ``policy`` may be a plain dict.
    """
    policy = _policy(policy)
    if policy.task is not None and candidate_eval.task != policy.task:
        raise InvalidInput(
            f"the policy is for task {policy.task!r} but candidate_eval is a "
            f"{candidate_eval.task} evaluation; evaluate with evaluate_for_policy()."
        )
    frame = to_polars(data, what="data")
    checks = [_threshold(m, limit, candidate_eval) for m, limit in policy.thresholds.items()]
    if policy.vs_current is not None:
        mismatch = None
        if current is not None and current_eval is None:
            try:
                current_eval = evaluate_for_policy(current, data, target, policy)
            except LabelMismatch as e:  # the holder's labels are not the target's: no score
                mismatch = e
        if mismatch is not None:
            checks.append(_unscorable_current(policy.vs_current, mismatch))
        else:
            models, evals = (candidate, current), (candidate_eval, current_eval)

            def rows() -> tuple[pd.DataFrame, pl.Series]:
                return _features(data, frame, target), frame.get_column(target)

            checks.append(_vs_current(policy.vs_current, models, evals, rows))
    if policy.slices is not None:
        checks.extend(_slice_checks(policy.slices, candidate_eval))
    columns = [c for c in frame.columns if c != target]
    for i, test in enumerate(policy.smoke_tests, 1):
        checks.append(
            smoke_check(
                i,
                test,
                candidate,
                columns,
                labels=candidate_eval.labels,
                positive_label=candidate_eval.positive_label,
            )
        )
    if policy.latency_p95_ms is not None:
        example = getattr(candidate, "input_example", None)
        if example is None or len(example) == 0:
            example = _features(data, frame, target, LATENCY_CALLS)
        checks.append(_latency(candidate, example, policy.latency_p95_ms))
    if policy.max_size_mb is not None:
        checks.append(_size(candidate, size_bytes, policy.max_size_mb))
    return checks


def _policy(policy: Policy | Mapping[str, Any]) -> Policy:
    return policy if isinstance(policy, Policy) else Policy.from_dict(policy)


def summarize(checks: list[GateResult]) -> tuple[bool, list[str]]:
    """(every check passed, the message of each failed check)."""
    reasons = [c.message for c in checks if not c.passed]
    return not reasons, reasons


def _check(*fields: Any, **details: Any) -> GateResult:
    return GateResult(*fields, details=details)


def _against(
    value: float, limit: float, *, upper: bool, kind: str, unit: str = ""
) -> tuple[bool, str]:
    """(passed, the end of a message: ", below the floor 0.55 by 0.07"). The limit, set by
    the policy, is shown as written (up to 12 digits); the value as far as it takes to tell
    the two apart (see :func:`digits_apart`)."""
    short = value - limit if upper else limit - value
    shown = _f(limit, 12)
    if short <= _EPS:
        return True, f", {'within' if upper else 'meets'} the {kind} {shown}{unit}"
    side = "above" if upper else "below"
    return False, f", {side} the {kind} {shown}{unit} by {_f(short)}{unit}"


def _threshold(metric: str, limit: float, ev: Evaluation) -> GateResult:
    value, hib = ev.metrics.get(metric), higher_is_better(metric)
    if value is None or math.isnan(value):
        why = "is undefined (NaN)" if value is not None else f"was not computed for this {ev.task}"
        hint = " (it needs predict_proba)" if metric in ("roc_auc", "pr_auc", "log_loss") else ""
        text = f"{metric} {why}{hint}; cannot check the hurdle {_f(limit)}"
        return _check(f"threshold:{metric}", False, value, limit, text)
    passed, tail = _against(value, limit, upper=not hib, kind="floor" if hib else "maximum")
    text = f"{metric} is {_f(value, digits_apart(value, limit))}{tail}"
    return _check(f"threshold:{metric}", passed, value, limit, text, direction=_dir(hib))


def _vs_current(rule: VsCurrent, models: tuple, evals: tuple, data: Callable) -> GateResult:
    """``models`` and ``evals``: (candidate, current); ``data()``: (features, target)."""
    current, (cand_eval, cur_eval) = models[1], evals
    m, name, limit = rule.metric, f"vs_current:{rule.metric}", -rule.max_drop
    if cur_eval is None:
        return _check(name, True, None, limit, "no current holder; nothing to compare")
    values = {"candidate": cand_eval.metrics.get(m), "current": cur_eval.metrics.get(m)}
    missing = " and ".join(who for who, v in values.items() if v is None or math.isnan(v))
    if missing:
        text = f"{m} is undefined or not computed for the {missing} model; cannot compare"
        return _check(name, False, None, limit, text, **values)
    sign = 1.0 if higher_is_better(m) else -1.0
    point = sign * (values["candidate"] - values["current"])
    details: dict[str, Any] = {**values, "improvement": point, "direction": _dir(sign > 0)}
    head = f"{m} is {_f(values['candidate'])} vs {_f(values['current'])} for the current holder"
    head += f" ({_change(point)})"
    allowed = f"allowed drop {_f(rule.max_drop)}"
    if not rule.bootstrap:
        passed = point >= limit - _EPS
        tail = f"within the {allowed}" if passed else f"beyond the {allowed} by {_f(limit - point)}"
        return _check(name, passed, point, limit, f"{head}, {tail}", **details)
    if current is None:
        raise InvalidInput(
            "vs_current.bootstrap needs the current model itself (current=), not only its "
            "evaluation; pass current=, or drop bootstrap to compare point values."
        )
    x, y = data()
    outputs = [_outputs(model, ev, x, y) for model, ev in zip(models, evals, strict=True)]
    diffs = sign * paired_bootstrap(m, *outputs, rule)
    finite = diffs[np.isfinite(diffs)]
    if not len(finite):
        text = f"{head}; {m} is undefined on every bootstrap resample, cannot compare"
        return _check(name, False, point, limit, text, **details)
    alpha = (1 - rule.confidence) / 2
    low, high = (float(q) for q in np.quantile(finite, [alpha, 1 - alpha]))
    details |= {"ci_low": low, "ci_high": high, "confidence": rule.confidence}
    details |= {"resamples": rule.bootstrap, "undefined_resamples": len(diffs) - len(finite)}
    ci = (
        f"{rule.confidence:.0%} CI of the improvement [{_f(low)}, {_f(high)}] over "
        f"{rule.bootstrap} paired bootstrap resamples"
    )
    passed = low >= limit - _EPS
    tail = "within the" if passed else f"beyond the {allowed} by {_f(limit - low)}"
    tail = f"its lower end is {tail}" + (f" {allowed}" if passed else "")
    return _check(name, passed, point, limit, f"{head}; {ci}: {tail}", **details)


def _unscorable_current(rule: VsCurrent, mismatch: LabelMismatch) -> GateResult:
    """The current holder predicts labels the target does not hold (the candidate does):
    the two cannot be compared on this data, so the gate fails and says why."""
    text = (
        f"the current holder's labels {label_set(mismatch.model_labels)} are not those of "
        f"target {label_set(mismatch.target_labels)}, so it cannot be scored on this data "
        f"and {rule.metric} cannot be compared; if the candidate replaces a model trained on "
        "other labels, review it and move the alias by hand (set_alias)"
    )
    return _check(
        f"vs_current:{rule.metric}", False, None, -rule.max_drop, text,
        current_labels=mismatch.model_labels, target_labels=mismatch.target_labels,
    )  # fmt: skip


def _dir(hib: bool) -> str:
    return "higher is better" if hib else "lower is better"


def _change(improvement: float) -> str:
    if improvement == 0:
        return "no change"
    return f"{'better' if improvement > 0 else 'worse'} by {_f(abs(improvement))}"


def _outputs(model: Any, ev: Evaluation, x: pd.DataFrame, y: pl.Series) -> Any:
    """What :func:`resampled_metric` scores: the model's outputs on all rows, encoded once."""
    if ev.task == "regression":
        pred = np.asarray(model.predict(x), dtype=np.float64).reshape(len(y))
        return y.cast(pl.Float64).to_numpy(), pred
    proba = callable(getattr(model, "predict_proba", None))
    enc, _ = encode_classification(
        y,
        ev.target,
        None if proba else model.predict(x),
        model.predict_proba(x) if proba else None,
        getattr(model, "classes_", None) if proba else None,
        ev.positive_label,
        0.5 if ev.threshold is None else ev.threshold,
    )
    return enc


def _slice_checks(rules: SliceRules, ev: Evaluation) -> list[GateResult]:
    table = ev.slice_metrics
    present = list(dict.fromkeys(table["slice_column"]))
    wanted = [_slice_name(spec) for spec in rules.columns] or present
    for column in wanted:
        if column not in present:
            raise InvalidInput(
                f"candidate_eval has no slices of {column!r}; evaluate with the policy's "
                "slice columns (evaluate_for_policy does)."
            )
    checks = []
    for metric in dict.fromkeys([*rules.min, *rules.max_gap]):
        if metric not in table:
            raise InvalidInput(
                f"slice metric {metric!r} was not computed for this {ev.task} evaluation; "
                f"computed: {', '.join(ev.metric_names)}."
            )
        for column in wanted:
            part = table[table["slice_column"] == column]
            gated = []
            for value, n, v in zip(part["slice_value"], part["n"], part[metric], strict=True):
                label, v, n = f"{column}={value}", float(v), int(n)
                if n >= rules.min_rows and not math.isnan(v):
                    gated.append((v, label))
                if metric in rules.min:
                    checks.append(_floor(metric, label, v, n, rules))
            if metric in rules.max_gap:
                checks.append(_gap(metric, column, gated, rules))
    return checks


def _slice_name(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    return f"{spec[0]} & {spec[1]}" if isinstance(spec[1], str) else spec[0]


def _floor(metric: str, label: str, value: float, n: int, rules: SliceRules) -> GateResult:
    name, limit, hib = f"slice_min:{metric}", rules.min[metric], higher_is_better(metric)
    on = f"{metric} on slice {label}"
    if n < rules.min_rows or math.isnan(value):
        why = "is undefined" if math.isnan(value) else f"is {_f(value)}"
        if n < rules.min_rows:
            why += f" on too few rows ({n} < min_rows {rules.min_rows})"
        text = f"{on} {why}: reported, not gated"
        return _check(name, True, value, limit, text, label, n=n, gated=False)
    passed, tail = _against(value, limit, upper=not hib, kind="floor" if hib else "ceiling")
    shown = _f(value, digits_apart(value, limit))
    text = f"{on} is {shown}{tail}" + ("" if passed else f" (n={n})")
    return _check(name, passed, value, limit, text, label, n=n, gated=True)


def _gap(metric: str, column: str, gated: list[tuple[float, str]], rules: SliceRules) -> GateResult:
    name, limit = f"slice_gap:{metric}", rules.max_gap[metric]
    if len(gated) < 2:
        text = (
            f"fewer than two slices of {column} with {rules.min_rows}+ rows and a defined "
            f"{metric}; no gap to check"
        )
        return _check(name, True, None, limit, text, column=column)
    low, high = min(gated), max(gated)
    best, worst = (high, low) if higher_is_better(metric) else (low, high)
    gap = high[0] - low[0]
    passed, tail = _against(gap, limit, upper=True, kind="maximum")
    spread = f"best {best[1]} {_f(best[0])}, worst {worst[1]} {_f(worst[0])}"
    text = f"{metric} gap across slices of {column} is {_f(gap)} ({spread}){tail}"
    return _check(name, passed, gap, limit, text, worst[1], column=column, best=best[1])


def smoke_check(
    i: int,
    test: SmokeTest,
    model: Any,
    columns: list[str],
    *,
    labels: list[Any] | None = None,
    positive_label: Any = None,
) -> GateResult:
    """Run smoke test number ``i`` on ``model``; the inputs are ordered like ``columns``.

    ``labels`` and ``positive_label`` pick the probability column of ``output: proba``
    (the model's own ``classes_`` first; the second class when neither is known). Used by
    the promotion gates and by serving before it swaps a version in.
    """
    shown = ", ".join(f"{k}={v}" for k, v in test.input.items())
    title = f"smoke test {i}" + (f" {test.name!r}" if test.name else "") + f" ({shown[:80]})"
    limit = list(test.expect_between) if test.expect_between else test.expect
    details = {"input": dict(test.input), "output": test.output}
    order = [c for c in columns if c in test.input] + [c for c in test.input if c not in columns]
    try:
        row = pd.DataFrame([{c: test.input[c] for c in order}])
        got = _one_output(model, row, test.output, labels, positive_label)
    except Exception as e:
        text = f"{title}: {test.output} raised {type(e).__name__}: {e}"
        return _check(f"smoke_test:{i}", False, None, limit, text, **details)
    number = isinstance(got, int | float) and not isinstance(got, bool)
    if test.expect_between is not None:
        low, high = test.expect_between
        passed = number and low <= got <= high
        shown = _f(got) if number else repr(got)
        verdict = f"{'within' if passed else 'outside'} [{_f(low)}, {_f(high)}]"
    else:
        expect = test.expect
        if number and isinstance(expect, int | float) and not isinstance(expect, bool):
            passed = math.isclose(got, expect, rel_tol=1e-9, abs_tol=test.tolerance)
        else:
            passed = bool(got == expect)
        shown, verdict = repr(got), f"{'as' if passed else 'but'} expected {expect!r}"
    text = f"{title}: {test.output} gave {shown}, {verdict}"
    return _check(f"smoke_test:{i}", passed, got, limit, text, **details)


def _one_output(
    model: Any, row: pd.DataFrame, output: str, labels: list[Any] | None, positive: Any
) -> Any:
    if output == "predict":
        value = np.asarray(model.predict(row)).reshape(-1)[0]
        return value.item() if isinstance(value, np.generic) else value
    proba = np.asarray(model.predict_proba(row), dtype=np.float64)
    if proba.ndim == 1 or proba.shape[1] == 1:
        return float(proba.reshape(-1)[0])
    if proba.shape[1] != 2:
        raise InvalidInput(f"output: proba needs a binary classifier; got {proba.shape[1]} classes")
    classes = list(getattr(model, "classes_", labels or [0, 1]))
    return float(proba[0, classes.index(positive) if positive in classes else 1])


def _latency(model: Any, example: Any, budget_ms: float) -> GateResult:
    take = example.iloc if isinstance(example, pd.DataFrame) else example
    rows = [take[i : i + 1] for i in range(min(len(example), LATENCY_CALLS))]
    timings = []
    try:
        for call in range(LATENCY_WARMUP + LATENCY_CALLS):
            start = time.perf_counter()
            model.predict(rows[call % len(rows)])
            if call >= LATENCY_WARMUP:
                timings.append(time.perf_counter() - start)
    except Exception as e:
        text = f"latency: predict on one row raised {type(e).__name__}: {e}"
        return _check("latency_p95", False, None, budget_ms, text)
    p95 = float(np.percentile(timings, 95)) * 1000
    passed, tail = _against(p95, budget_ms, upper=True, kind="budget", unit=" ms")
    text = f"p95 latency of predict on one row is {_f(p95)} ms{tail}"
    p50 = float(np.median(timings)) * 1000
    return _check("latency_p95", passed, p95, budget_ms, text, calls=len(timings), p50_ms=p50)


def _size(model: Any, size_bytes: int | None, budget_mb: float) -> GateResult:
    files = getattr(getattr(model, "manifest", None), "files", None)
    if size_bytes is None and files is not None:
        size_bytes = sum(f.size for f in files)
    if size_bytes is None:
        text = "model size is unknown; pass size_bytes= (the size of the model package)"
        return _check("model_size", False, None, budget_mb, text)
    mb = size_bytes / MIB
    passed, tail = _against(mb, budget_mb, upper=True, kind="budget", unit=" MB")
    text = f"model size is {_f(mb)} MB{tail}"
    return _check("model_size", passed, mb, budget_mb, text, size_bytes=size_bytes)


def _features(data: DataLike, frame: pl.DataFrame, target: str, rows: int | None = None) -> Any:
    """The model input as :func:`evaluate` gives it: every column but the target, pandas."""
    if isinstance(data, pd.DataFrame):
        return data.drop(columns=[target]).iloc[:rows]
    return frame.drop(target).head(frame.height if rows is None else rows).to_pandas()


def _f(value: float, digits: int = 4) -> str:
    """A number for a message: four significant digits (or ``digits``), thousands
    separated when large."""
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.{digits}g}"


def digits_apart(value: float, limit: float) -> int:
    """Significant digits that show ``value`` and ``limit`` apart (4 to 12): a refusal
    must never read "roc_auc is 1, below the floor 1"."""
    for digits in range(4, 13):
        if f"{value:.{digits}g}" != f"{limit:.{digits}g}":
            return digits
    return 4


def _json(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value if value is None or isinstance(value, bool | int | str) else str(value)
