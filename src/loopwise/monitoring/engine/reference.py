"""The reference each window is compared with, resolved once per model version.

Where it comes from (``reference`` in the monitor):

- unset: the training dataset versions of the model version live in the window, found
  through lineage (:func:`loopwise.registry.lineage.model_lineage`), concatenated;
- ``datasets:/name/3`` (or a list): those versions, for every model version;
- a DataFrame (Python only): that frame. Columns named ``input.<f>`` (a frame read back from
  the prediction log) are taken as ``<f>``.

The model outputs on the reference (for prediction drift and the baselines) are the
frame's ``prediction`` (and ``probabilities``) columns when it has them, else the model
version's own predictions on it (``predict``, and ``predict_proba`` for classifiers that
have it), computed once. A model version the registry does not know (a log that names
``"name/3"`` of another system) and no reference given: no reference, so drift and schema
figures are None; everything else is still computed.

The label column (``target``): the monitor's, else the target of the version's latest stored
evaluation, else the target of the dataset's stored schema, else none.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from loopwise.data.frames import to_polars
from loopwise.data.schema import target_of
from loopwise.errors import InvalidInput, LoopwiseError, NotFound
from loopwise.monitoring.config import Monitor
from loopwise.store import Store

log = logging.getLogger("loopwise.monitoring")


@dataclass
class ReferenceData:
    """Reference rows (feature columns by their own names) and what is known about them."""

    frame: pl.DataFrame
    source: str  # for messages: the datasets:/ URIs, or "a DataFrame"
    key: tuple[Any, ...]  # identity of the data, to share profiles between versions
    schema: dict[str, Any] | None = None  # a dataset version's stored schema document
    target: str | None = None
    task: str | None = None  # of the stored evaluation
    positive_label: Any = None  # of the stored evaluation
    evaluation: Any = None  # the version's latest stored Evaluation
    predictions: pl.Series | None = None
    probabilities: np.ndarray | None = None  # [rows, classes] in ``classes`` order
    classes: list[Any] | None = None


class References:
    """Resolves and caches references and registry look-ups for one monitor."""

    def __init__(self, store: Store, monitor: Monitor) -> None:
        self.store = store
        self.monitor = monitor
        self._data: dict[tuple[Any, ...], pl.DataFrame] = {}
        self._versions: dict[str, Any] = {}
        self._refs: dict[str, ReferenceData | None] = {}

    def version(self, model: str, version_id: str | None = None) -> Any:
        """The registry's ModelVersion for "name/version" (None when it has none)."""
        if model not in self._versions:
            from loopwise.registry.models import get_model_version

            found = None
            if "/" in model:
                try:
                    found = get_model_version(self.store, f"models:/{model}")
                except (NotFound, InvalidInput):
                    found = None
            if found is not None and version_id is not None and found.id != version_id:
                log.warning(
                    "model %s has id %s in the log of %r but %s in the registry; the registry's "
                    "version is used as reference",
                    model,
                    version_id,
                    self.monitor.endpoint,
                    found.id,
                )
            self._versions[model] = found
        return self._versions[model]

    def get(self, model: str, version_id: str | None) -> ReferenceData | None:
        """The reference of one model version ("name/version"), or None."""
        if model not in self._refs:
            self._refs[model] = self._resolve(model, self.version(model, version_id))
        return self._refs[model]

    def _resolve(self, model: str, version: Any) -> ReferenceData | None:
        given = self.monitor.reference
        schema = None
        if given is None:
            if version is None:
                log.warning(
                    "monitor %r: model %r is not in the registry and no reference is set; "
                    "drift and schema figures of its windows are None",
                    self.monitor.name,
                    model or "(none)",
                )
                return None
            from loopwise.registry.lineage import model_lineage

            datasets = model_lineage(self.store, version.uri).datasets
            if not datasets:
                log.warning(
                    "monitor %r: %s has no training dataset in its lineage and no reference "
                    "is set; drift and schema figures of its windows are None",
                    self.monitor.name,
                    version.uri,
                )
                return None
            key: tuple[Any, ...] = ("datasets", *(d.id for d in datasets))
            source = ", ".join(d.uri for d in datasets)
            frame = self._datasets(key, [d.uri for d in datasets])
            schema = datasets[0].schema
        elif isinstance(given, str | tuple):
            from loopwise.data.datasets import get_dataset_version

            uris = [given] if isinstance(given, str) else list(given)
            found = [get_dataset_version(self.store, uri) for uri in uris]
            key = ("datasets", *(d.id for d in found))
            source = ", ".join(d.uri for d in found)
            frame = self._datasets(key, [d.uri for d in found])
            schema = found[0].schema
        else:
            key = ("frame", id(given))
            source = "a DataFrame"
            if key not in self._data:
                frame = to_polars(given, what="the monitor's reference")
                self._data[key] = frame.rename(
                    {c: c.removeprefix("input.") for c in frame.columns if c.startswith("input.")}
                )
            frame = self._data[key]
        if frame.height == 0:
            raise InvalidInput(
                f"the reference of monitor {self.monitor.name!r} ({source}) is empty."
            )
        ref = ReferenceData(frame=frame, source=source, key=key, schema=schema)
        self._describe(ref, version)
        return ref

    def _datasets(self, key: tuple[Any, ...], uris: list[str]) -> pl.DataFrame:
        if key not in self._data:
            from loopwise.data.datasets import load_dataset

            frames = [load_dataset(self.store, uri, as_="polars") for uri in uris]
            self._data[key] = (
                frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
            )
        return self._data[key]

    def _describe(self, ref: ReferenceData, version: Any) -> None:
        """Target, stored evaluation and model outputs of a reference."""
        columns = ref.frame.columns
        if version is not None:
            from loopwise.registry.evaluations import evaluations_of

            stored = evaluations_of(self.store, version.id)
            if stored:
                ref.evaluation = stored[-1]
                ref.task = ref.evaluation.task
                ref.positive_label = ref.evaluation.positive_label
        target = self.monitor.target
        if target is not None and target not in columns:
            raise InvalidInput(
                f"monitor {self.monitor.name!r}: target {target!r} is not a column of the "
                f"reference ({ref.source}; columns: {', '.join(columns[:20])}); fix target."
            )
        if target is None and ref.evaluation is not None and ref.evaluation.target in columns:
            target = ref.evaluation.target
        if target is None and target_of(ref.schema) in columns:
            target = target_of(ref.schema)
        ref.target = target
        if "prediction" in columns:
            ref.predictions = ref.frame["prediction"]
            if "probabilities" in columns and ref.frame["probabilities"].dtype.base_type() in (
                pl.List,
                pl.Array,
            ):
                ref.probabilities = _matrix(ref.frame["probabilities"])
        elif version is not None:
            self._predict(ref, version)

    def _predict(self, ref: ReferenceData, version: Any) -> None:
        from loopwise.registry.evaluations import LenientModel
        from loopwise.registry.loading import package_dir
        from loopwise.registry.packaging import load_package

        drop = [c for c in (ref.target,) if c is not None]
        features = ref.frame.drop(drop).to_pandas()
        try:
            model = LenientModel(load_package(package_dir(self.store, version)))
            with warnings.catch_warnings():
                # numeric signatures reach the model as a matrix; scikit-learn then complains
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                ref.predictions = pl.Series("prediction", np.asarray(model.predict(features)))
                if hasattr(model, "predict_proba") and self.monitor.task != "regression":
                    proba = model.predict_proba(features)
                    ref.probabilities = np.asarray(proba, dtype=np.float64)
                    classes = getattr(model, "classes_", None)
                    ref.classes = None if classes is None else list(np.asarray(classes).tolist())
        except (LoopwiseError, ImportError, ValueError, TypeError, KeyError) as e:
            log.warning(
                "monitor %r: could not predict with %s on its reference (%s); prediction "
                "drift and reference baselines of its windows are None",
                self.monitor.name,
                version.uri,
                e,
            )


def _matrix(values: pl.Series) -> np.ndarray | None:
    """A list column of equal-length float lists as a matrix (None when they differ)."""
    lengths = values.list.len().drop_nulls().unique()
    if lengths.len() != 1 or values.null_count():
        return None
    return values.cast(pl.List(pl.Float64)).list.to_array(int(lengths[0])).to_numpy()
