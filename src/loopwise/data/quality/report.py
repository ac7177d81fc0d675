"""Training-data quality: problems that pass every schema check and still ruin a model.

Validation says whether data looks as expected; it cannot say whether the data will train a
model worth trusting. A label that is 2% positive, a feature that is the label under another
name, two features that are one signal, rows that agree on every feature but disagree on the
label, values far outside the bulk: each passes schema checks and yields a model that looks
fine offline and fails in production. :func:`data_quality` looks for them with cheap
vectorised statistics (Polars and NumPy, never a loop over rows), so it can run on every
training set, and each :class:`Finding` says what it means and what to do.

Counts (outliers, duplicates) use every row. Scores that need whole-column work
(correlations, single-feature predictiveness) use a seeded sample of at most
``SAMPLE_ROWS`` rows; the report says when it sampled.

Layout: this module is the public API (:func:`data_quality`, :class:`QualityReport` and the
report's parts, re-exported from :mod:`loopwise.data.quality.types`) and the orchestration:
which check runs on which rows, and in what order findings are reported. The vectorised
kernels are :mod:`loopwise.data.quality.checks`; the HTML page is
:mod:`loopwise.data.quality.html`. Neither imports this module.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from loopwise._version import __version__
from loopwise.data.frames import DataLike, to_polars
from loopwise.data.quality import checks
from loopwise.data.quality.html import render_html
from loopwise.data.quality.types import (
    SEVERITIES,
    ClassBalance,
    CorrelatedPair,
    Finding,
    LeakageScore,
    OutlierStats,
    jsonable,
    plural,
)
from loopwise.errors import InvalidInput
from loopwise.param_errors import bad_param
from loopwise.reports.page import write_page

__all__ = [
    "FORMAT_VERSION",
    "SAMPLE_ROWS",
    "SEVERITIES",
    "TASKS",
    "ClassBalance",
    "CorrelatedPair",
    "Finding",
    "LeakageScore",
    "OutlierStats",
    "QualityReport",
    "data_quality",
]

FORMAT_VERSION = 1
SAMPLE_ROWS = 200_000
TASKS = ("classification", "regression")


@dataclass(frozen=True)
class QualityReport:
    """What :func:`data_quality` found; plain data that round-trips through JSON."""

    rows: int
    labelled_rows: int  # rows with a target value; every check but outliers uses only these
    features: tuple[str, ...]
    target: str | None
    task: str | None
    findings: tuple[Finding, ...]
    class_balance: ClassBalance | None
    outliers: tuple[OutlierStats, ...]
    correlated_pairs: tuple[CorrelatedPair, ...]
    leakage_scores: tuple[LeakageScore, ...]  # every scored feature, highest first
    scored_rows: int  # rows behind correlations and leakage scores
    settings: dict[str, Any]

    @property
    def sampled(self) -> bool:
        return self.scored_rows < self.labelled_rows

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe document (``json.dumps(..., allow_nan=False)`` accepts it)."""
        balance = None
        if self.class_balance is not None:
            cb = self.class_balance
            balance = {
                "labels": list(cb.labels),
                "counts": list(cb.counts),
                "minority": cb.minority,
                "minority_share": cb.minority_share,
                "imbalance_ratio": cb.imbalance_ratio,
            }
        return jsonable(
            {
                "format_version": FORMAT_VERSION,
                "loopwise_version": __version__,
                "kind": "data_quality",
                "rows": self.rows,
                "labelled_rows": self.labelled_rows,
                "features": list(self.features),
                "target": self.target,
                "task": self.task,
                "scored_rows": self.scored_rows,
                "sampled": self.sampled,
                "settings": self.settings,
                "class_balance": balance,
                "findings": [vars(f) for f in self.findings],
                "outliers": [vars(o) for o in self.outliers],
                "correlated_pairs": [vars(p) for p in self.correlated_pairs],
                "leakage_scores": [vars(s) for s in self.leakage_scores],
            }
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityReport:
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise InvalidInput(
                f"This data quality report has format_version {version!r}; this loopwise "
                f"({__version__}) reads up to {FORMAT_VERSION}. Upgrade loopwise to read it."
            )
        cb = data["class_balance"]
        return cls(
            rows=data["rows"],
            labelled_rows=data["labelled_rows"],
            features=tuple(data["features"]),
            target=data["target"],
            task=data["task"],
            findings=tuple(
                Finding(f["kind"], f["severity"], tuple(f["columns"]), f["message"], f["details"])
                for f in data["findings"]
            ),
            class_balance=None
            if cb is None
            else ClassBalance(tuple(cb["labels"]), tuple(cb["counts"])),
            outliers=tuple(
                OutlierStats(**{**o, "examples": tuple(o["examples"])}) for o in data["outliers"]
            ),
            correlated_pairs=tuple(
                CorrelatedPair(**{**p, "columns": tuple(p["columns"])})
                for p in data["correlated_pairs"]
            ),
            leakage_scores=tuple(LeakageScore(**s) for s in data["leakage_scores"]),
            scored_rows=data["scored_rows"],
            settings=data["settings"],
        )

    def summary(self) -> str:
        """A few lines of text: the shape of the data, then one line per finding."""
        counts = {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}
        shape = f"{plural(self.rows, 'row')} × {plural(len(self.features), 'feature')}"
        head = f"Data quality of {shape}"
        if self.target is not None:
            head += f"; target {self.target!r} ({self.task})"
        if self.sampled:
            head += f"; scores on a sample of {self.scored_rows:,} rows"
        tally = ", ".join(plural(counts[s], s) for s in SEVERITIES)
        lines = [head + ".", tally + "."]
        for f in self.findings:
            where = f" ({', '.join(f.columns)})" if f.columns else ""
            lines.append(f"[{f.severity}] {f.kind}{where}: {f.message}")
        return "\n".join(lines)

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Write a single self-contained HTML report to ``path`` and return its path."""
        write_page(path, render_html(self))
        return Path(path)


def data_quality(
    data: DataLike,
    target: str | None = None,
    *,
    task: str | None = None,
    correlation_threshold: float = 0.95,
    leakage_threshold: float = 0.95,
    outlier_z: float = 3.0,
    imbalance_threshold: float = 0.10,
    sample_rows: int = SAMPLE_ROWS,
    seed: int = 0,
) -> QualityReport:
    """Check a training set for imbalance, outliers, redundancy, leakage and mislabels.

    ``task`` is "classification" or "regression"; by default a numeric target with more
    than 20 distinct values (or non-integral floats) means regression. ``outlier_z`` is the
    fence width in interquartile ranges: values below Q1 - z·IQR or above Q3 + z·IQR are
    outliers (3 is Tukey's "far out"; columns whose IQR is 0 are skipped). A binary task is
    flagged as imbalanced when its rarest class is below ``imbalance_threshold`` of the
    rows; with k classes the bar is ``imbalance_threshold * 2 / k``. Features are
    leakage candidates when one of them alone scores at least ``leakage_threshold``.
    """
    _check_params(
        target,
        task,
        correlation_threshold,
        leakage_threshold,
        outlier_z,
        imbalance_threshold,
        sample_rows,
        seed,
    )
    frame = to_polars(data, what="data")
    if frame.height == 0 or frame.width == 0:
        raise InvalidInput(
            f"data is empty ({frame.height} rows, {frame.width} columns); pass the training set."
        )
    if target is not None and target not in frame.columns:
        shown = ", ".join(repr(c) for c in frame.columns[:20])
        raise InvalidInput(
            f"Target column {target!r} is not in the data; its columns are {shown}"
            f"{' ...' if frame.width > 20 else ''}. Pass the label column's name, or target=None."
        )
    frame = checks.nan_to_null(frame)
    kinds = {c: checks.kind(frame.schema[c]) for c in frame.columns if c != target}
    features = list(kinds)
    findings: list[Finding] = []
    labelled, balance = frame, None
    if target is not None:
        nulls = frame.get_column(target).null_count()
        if nulls == frame.height:
            raise InvalidInput(
                f"Target column {target!r} has no values: all {nulls:,} are null (or NaN). "
                "Pass the column that holds the labels."
            )
        if nulls:
            labelled = frame.filter(pl.col(target).is_not_null())
            findings.append(checks.unlabelled_finding(target, nulls, frame.height))
        task = checks.resolve_task(labelled.get_column(target), target, task)
        if task == "classification":
            balance = checks.class_balance(labelled.get_column(target))
            findings += checks.imbalance_findings(balance, target, imbalance_threshold)

    numeric = [c for c in features if kinds[c] == "numeric"]
    categorical = [c for c in features if kinds[c] == "categorical"]
    outlier_columns = numeric + ([target] if task == "regression" else [])
    outliers = checks.outliers(frame, outlier_columns, outlier_z)
    findings += [
        checks.outlier_finding(o, outlier_z) for o in outliers if checks.notable(o, outlier_z)
    ]

    sample = labelled
    if labelled.height > sample_rows:
        sample = labelled.sample(n=sample_rows, seed=seed)
        findings.append(checks.sampled_finding(sample.height, labelled.height, seed))
    pairs = checks.pearson_pairs(sample, numeric, correlation_threshold)
    pairs += checks.cramers_pairs(sample, categorical, correlation_threshold)
    findings += [checks.correlation_finding(p) for p in pairs]

    scores: list[LeakageScore] = []
    if target is not None:
        assert task is not None
        scores = checks.leakage_scores(sample, numeric, categorical, target, task, seed)
        copies = checks.target_copies(sample, labelled, numeric + categorical, target)
        findings += [
            checks.copy_finding(c, same, target, labelled.height) for c, same in copies.items()
        ]
        findings += [
            checks.leakage_finding(s, target, sample.height < labelled.height)
            for s in scores
            if s.score >= leakage_threshold and s.column not in copies
        ]
    keys = [c for c in features if kinds[c] != "ignored"]
    findings += checks.duplicate_findings(labelled, keys, target, task)
    ignored = [c for c in features if kinds[c] == "ignored"]
    if ignored:
        findings.append(
            Finding(
                "ignored_columns",
                "info",
                tuple(ignored),
                "These columns hold no values or Python objects and were not checked.",
                {"columns": ignored},
            )
        )
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return QualityReport(
        rows=frame.height,
        labelled_rows=labelled.height,
        features=tuple(features),
        target=target,
        task=task,
        findings=tuple(sorted(findings, key=lambda f: order[f.severity])),
        class_balance=balance,
        outliers=tuple(outliers),
        correlated_pairs=tuple(sorted(pairs, key=lambda p: -abs(p.value))),
        leakage_scores=tuple(scores),
        scored_rows=sample.height,
        settings={
            "correlation_threshold": correlation_threshold,
            "leakage_threshold": leakage_threshold,
            "outlier_z": outlier_z,
            "imbalance_threshold": imbalance_threshold,
            "sample_rows": sample_rows,
            "seed": seed,
        },
    )


# ---- parameters ------------------------------------------------------------------------


def _check_params(
    target: Any, task: Any, corr: Any, leak: Any, z: Any, imb: Any, sample: Any, seed: Any
) -> None:
    def bad(name: str, rule: str, value: Any) -> InvalidInput:
        return bad_param("data_quality", name, rule, value)

    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    if target is not None and not isinstance(target, str):
        raise bad("target", "a column name (str) or None", target)
    if task is not None and task not in TASKS:
        raise bad("task", 'None, "classification" or "regression"', task)
    for name, value in (("correlation_threshold", corr), ("leakage_threshold", leak)):
        if not number(value) or not 0 < value <= 1:
            raise bad(name, "a float in (0, 1]", value)
    if not number(z) or z <= 0:
        raise bad("outlier_z", "a float > 0", z)
    if not number(imb) or not 0 < imb < 1:
        raise bad("imbalance_threshold", "a float in (0, 1)", imb)
    if not isinstance(sample, int) or isinstance(sample, bool) or sample < 100:
        raise bad("sample_rows", "an int >= 100", sample)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise bad("seed", "an int", seed)
