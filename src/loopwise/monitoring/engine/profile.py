"""What the windows of one model version are compared with, prepared once per version.

A :class:`VersionProfile` holds the version's reference (see :mod:`.reference`)
binned per feature and per slice (:mod:`.drift`), the reading of its predictions
(task, labels, positive label: :class:`~.checks.OutputSpec`), the schema its inputs are
validated against, and its baseline.

Schema: the reference dataset version's stored schema when it has one, else one inferred
from the reference (``lw.infer_schema``), restricted to the monitored features; its custom
checks are not run on serving windows (they may read the label).

Baseline (stored per model version, see :func:`loopwise.monitoring.storage.baseline`):
``perf.<metric>`` from the version's latest stored evaluation (overall and its slices),
else computed on the reference when it has labels and model outputs (none, and a problem
in :attr:`VersionProfile.problems`, when its target is not labelled like those outputs);
``prediction.mean`` / ``.std`` / ``.positive_rate`` of the model outputs on the
reference; ``rows`` and ``labelled`` of the reference; overall and per slice, with the
window metric names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from loopwise.monitoring.config import Monitor, slice_name
from loopwise.monitoring.engine import checks
from loopwise.monitoring.engine.drift import FeatureProfile, profile_feature
from loopwise.monitoring.engine.reference import ReferenceData, References
from loopwise.monitoring.engine.windows import Batch, slice_columns
from loopwise.monitoring.results import OVERALL


def build_spec(spec: Any) -> Any:
    """A monitor slice spec in the form ``evaluation.slicing.build_slices`` takes."""
    if isinstance(spec, tuple) and not isinstance(spec[1], str):
        return (spec[0], list(spec[1]))
    return spec


@dataclass
class SubsetLayout:
    """The reference split by slice: subset 0 is the whole reference, then each slice value
    of each spec the reference can be sliced by (``labels[spec][value]`` is its subset)."""

    codes: list[tuple[int, np.ndarray]]
    labels: dict[str, dict[str, int]]
    size: int
    rows: np.ndarray  # reference rows per subset


@dataclass
class VersionProfile:
    model: str
    reference: ReferenceData | None
    spec: checks.OutputSpec
    layout: SubsetLayout | None
    features: dict[str, FeatureProfile | None] = field(default_factory=dict)
    prediction: FeatureProfile | None = None  # labels (classification) or values
    score: FeatureProfile | None = None  # positive-class probability
    schema: Any = None
    metrics: tuple[str, ...] = ()
    reference_outputs: checks.Outputs | None = None
    problems: list[str] = field(default_factory=list)  # the baseline's (see baseline_values)

    def feature(self, name: str, monitor: Monitor) -> FeatureProfile | None:
        """The profile of a feature, built on first use (None: not in the reference or
        not checkable)."""
        if name not in self.features:
            self.features[name] = None
            ref, layout = self.reference, self.layout
            if ref is not None and layout is not None and name in ref.frame.columns:
                drift = monitor.checks.feature_drift
                found = profile_feature(
                    name,
                    ref.frame[name],
                    layout.codes,
                    layout.size,
                    method=drift.method,
                    threshold=drift.threshold,
                )
                self.features[name] = found if isinstance(found, FeatureProfile) else None
        return self.features[name]


class Profiles:
    """One profile per model version; features binned once per reference data."""

    def __init__(self, references: References, monitor: Monitor) -> None:
        self.references = references
        self.monitor = monitor
        self._profiles: dict[str, VersionProfile] = {}
        self._shared: dict[tuple[Any, ...], tuple[SubsetLayout, dict[str, Any], Any]] = {}

    def get(self, batch: Batch) -> tuple[VersionProfile, bool]:
        """The profile of the batch's version, and whether it was just built."""
        if batch.model in self._profiles:
            return self._profiles[batch.model], False
        profile = self._build(batch)
        self._profiles[batch.model] = profile
        return profile, True

    def _build(self, batch: Batch) -> VersionProfile:
        monitor = self.monitor
        ref = self.references.get(batch.model, batch.model_version_id)
        frame = batch.frame
        ok = frame["error"].is_null() if "error" in frame.columns else None
        predictions = frame["prediction"] if ok is None else frame["prediction"].filter(ok)
        proba_logged = "probabilities" in frame.columns and (
            frame["probabilities"].null_count() < frame.height
        )
        task = monitor.task or (ref.task if ref else None)
        if task is None:
            task = checks.infer_task(predictions, proba_logged)
        sources = [predictions, frame["label"] if "label" in frame.columns else None]
        if ref is not None:
            sources += [ref.frame[ref.target] if ref.target else None, ref.predictions]
        positive = monitor.positive_label
        if positive is None and ref is not None:
            positive = ref.positive_label
        spec = checks.output_spec(task, sources, positive)
        layout = features = schema = None
        if ref is not None:
            if ref.key not in self._shared:
                self._shared[ref.key] = (self._layout(ref), {}, self._schema(ref, frame))
            layout, features, schema = self._shared[ref.key]
        profile = VersionProfile(batch.model, ref, spec, layout, schema=schema)
        if features is not None:
            profile.features = features  # shared by versions with the same reference data
        scored = proba_logged or (ref is not None and ref.probabilities is not None)
        metrics = monitor.checks.performance or checks.default_metrics(spec, scored)
        profile.metrics = tuple(metrics)
        if ref is not None and layout is not None and ref.predictions is not None:
            self._outputs(profile, ref, layout)
        return profile

    def _layout(self, ref: ReferenceData) -> SubsetLayout:
        from loopwise.evaluation.slicing import build_slices

        rows = ref.frame.height
        codes = [(0, np.zeros(rows, dtype=np.intp))]
        labels: dict[str, dict[str, int]] = {}
        size = 1
        for spec in self.monitor.slices:
            if not all(c in ref.frame.columns for c in slice_columns([spec])):
                continue  # compared with the whole reference
            groups = build_slices(ref.frame, [build_spec(spec)])[0]
            codes.append((size, groups.codes))
            labels[slice_name(spec)] = {label: size + i for i, label in enumerate(groups.labels)}
            size += len(groups.labels)
        counts = np.zeros(size)
        for offset, c in codes:
            counts += np.bincount(offset + c, minlength=size)
        return SubsetLayout(codes, labels, size, counts)

    def _schema(self, ref: ReferenceData, frame: pl.DataFrame) -> Any:
        if not self.monitor.checks.schema:
            return None
        from loopwise.data.schema import Schema
        from loopwise.data.schema_inference import infer_schema

        names = self.monitor.features or [
            c.removeprefix("input.") for c in frame.columns if c.startswith("input.")
        ]
        present = [n for n in names if n in ref.frame.columns]
        if not present:
            return None
        if ref.schema:
            stored = Schema.from_dict(ref.schema)
            columns = {n: stored.columns[n] for n in present if n in stored.columns}
            keys = [k for k in stored.keys if all(c in columns for c in k)]
            return Schema(
                columns=columns,
                keys=keys,
                thresholds=stored.thresholds,
                allow_empty=stored.allow_empty,
                severity=stored.severity,
            )
        return infer_schema(ref.frame.select(present))

    def _outputs(self, profile: VersionProfile, ref: ReferenceData, layout: SubsetLayout) -> None:
        assert ref.predictions is not None
        outputs = checks.read_outputs(profile.spec, ref.predictions, ref.probabilities, ref.classes)
        profile.reference_outputs = outputs
        drift = self.monitor.checks.prediction_drift
        if not drift.enabled:
            return
        found = profile_feature(
            "prediction", ref.predictions.rename("prediction"), layout.codes, layout.size,
            method=drift.method, threshold=drift.threshold,
            categorical=profile.spec.task == "classification", setting="checks.prediction_drift",
        )  # fmt: skip
        profile.prediction = found if isinstance(found, FeatureProfile) else None
        if outputs.score is not None and drift.method not in ("chi2",):
            scored = profile_feature(
                "score", pl.Series("score", outputs.score), layout.codes, layout.size,
                method=drift.method, threshold=drift.threshold, setting="checks.prediction_drift",
            )  # fmt: skip
            profile.score = scored if isinstance(scored, FeatureProfile) else None


def baseline_values(
    profile: VersionProfile,
) -> tuple[int, int, dict[tuple[str, str], float | None]]:
    """(rows, labelled, figures) of a version's reference: see the module doc."""
    ref, layout = profile.reference, profile.layout
    if ref is None or layout is None:
        return 0, 0, {}
    values: dict[tuple[str, str], float | None] = {}
    target = ref.frame[ref.target] if ref.target else None
    labelled = (
        np.zeros(ref.frame.height, dtype=bool)
        if target is None
        else target.is_not_null().to_numpy()
    )
    outputs = profile.reference_outputs
    cells = _reference_cells(layout)
    for key, (codes, n) in cells.items():
        rows = checks.count(codes, n)
        labelled_n = checks.count(codes, n, labelled)
        figures: dict[str, np.ndarray] = {"rows": rows, "labelled": labelled_n}
        if outputs is not None:
            source = outputs.score if outputs.score is not None else outputs.value
            if source is not None:
                mask = np.isfinite(source)
                figures["prediction.mean"], figures["prediction.std"] = checks.mean_std(
                    source, codes, n, mask
                )
            if outputs.positive is not None:
                mask = np.isfinite(outputs.positive)
                figures["prediction.positive_rate"] = checks.ratio(
                    checks.total(outputs.positive, codes, n, mask), checks.count(codes, n, mask)
                )
            if ref.evaluation is None and target is not None and labelled.any():
                assert ref.predictions is not None
                proba = None if ref.probabilities is None else ref.probabilities[labelled]
                perf = _reference_performance(
                    profile, target.filter(labelled), ref.predictions.filter(labelled),
                    proba if ref.classes in (None, list(profile.spec.labels)) else None,
                )  # fmt: skip
                if perf is not None:
                    figures.update(perf.by_cell(codes[labelled], n))
        labels = [OVERALL] if key is None else layout_labels(layout, key)
        for metric, array in figures.items():
            for i, label in enumerate(labels):
                if label is not None and rows[i] > 0:
                    values[(label, metric)] = _number(array[i])
    if ref.evaluation is not None:
        values.update(_evaluation_values(ref.evaluation, profile.metrics))
    rows_total = ref.frame.height
    return rows_total, int(labelled.sum()), values


def _reference_performance(
    profile: VersionProfile, target: pl.Series, predictions: pl.Series, proba: Any
) -> checks.Performance | None:
    """The version's performance on the reference; None (and a problem on the profile,
    once) when the reference's target is not labelled like the model's outputs."""
    from loopwise.evaluation.metrics import LabelMismatch

    try:
        return checks.Performance(profile.spec, target, predictions, proba, profile.metrics)
    except LabelMismatch as e:
        assert profile.reference is not None
        problem = checks.reference_problem(e, profile.model, profile.reference.target)
        if problem not in profile.problems:
            profile.problems.append(problem)
        return None


def layout_labels(layout: SubsetLayout, spec: str) -> list[str | None]:
    """Slice keys ("spec=value") of a spec's subsets, in code order."""
    found = layout.labels[spec]
    out: list[str | None] = [None] * len(found)
    offset = min(found.values())
    for label, index in found.items():
        out[index - offset] = f"{spec}={label}"
    return out


def _reference_cells(layout: SubsetLayout) -> dict[str | None, tuple[np.ndarray, int]]:
    out: dict[str | None, tuple[np.ndarray, int]] = {None: (layout.codes[0][1], 1)}
    for (offset, codes), (name, labels) in zip(
        layout.codes[1:], layout.labels.items(), strict=True
    ):
        assert min(labels.values()) == offset
        out[name] = (codes, len(labels))
    return out


def _evaluation_values(
    evaluation: Any, metrics: tuple[str, ...]
) -> dict[tuple[str, str], float | None]:
    values: dict[tuple[str, str], float | None] = {}
    for m in metrics:
        if m in evaluation.metrics:
            values[(OVERALL, f"perf.{m}")] = _number(evaluation.metrics[m])
    frame = evaluation.slice_metrics
    if frame is not None and len(frame):
        for row in frame.to_dict("records"):
            key = f"{row['slice_column']}={row['slice_value']}"
            for m in metrics:
                if m in row:
                    values[(key, f"perf.{m}")] = _number(row[m])
    return values


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
