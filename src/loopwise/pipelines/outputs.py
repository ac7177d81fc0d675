"""Step outputs stored by type, and read back for the cache, resume and ``run.output()``.

- a pandas or polars frame becomes a dataset version (``<pipeline>.<step>``, or the step's
  ``output=`` name), produced by the step's run;
- a fitted model (any object a model flavor packages: scikit-learn, XGBoost, LightGBM,
  PyTorch, ONNX, or anything with ``fit`` and ``predict``) becomes a model version,
  produced by the step's run and trained on its input dataset versions;
- a JSON value (numbers, text, lists and dicts of them) is kept inline; numbers, and the
  numbers of a dict, are also logged as metrics of the step's run and the pipeline's run;
- anything else is pickled as an artifact of the step's run.

Each stored output has a content fingerprint, which the cache keys of later steps use.
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass
from typing import Any

from loopwise.errors import InvalidInput
from loopwise.pipelines.fingerprint import (
    INLINE_LIMIT,
    canonical_json,
    frame_fingerprint,
    frame_kind,
    is_json_exact,
    sha256,
)
from loopwise.store import Store
from loopwise.store.lineage import Node, add_edge

#: dataset_version --produced_by--> run, as model versions record their run.
PRODUCED_BY = "produced_by"
INPUT_RELATION = "input"
VALUE, DATASET, MODEL, PICKLE = "value", "dataset", "model", "pickle"
ARTIFACT_PATH = "outputs/value.pkl"


@dataclass(frozen=True)
class StoredOutput:
    """Where a step's output is: ``kind`` (value, dataset:<pandas|polars>, model, pickle),
    ``ref`` (the JSON text, a dataset or model URI, or ``<run id>/<artifact path>``) and
    its content ``fingerprint``."""

    kind: str
    ref: str
    fingerprint: str


def model_flavor(value: Any) -> str | None:
    """The flavor that would package ``value`` as a model, or None when it is not one."""
    if frame_kind(value) is not None or is_json_exact(value):
        return None
    from loopwise.registry.flavors import DETECTION_ORDER, get_flavor

    for name in DETECTION_ORDER:
        if name in ("mlflow", "pyfunc"):
            continue
        if get_flavor(name).matches(value):
            return name
    if callable(getattr(value, "fit", None)) and callable(getattr(value, "predict", None)):
        return "pyfunc"
    return None


def _model_name(pipeline: str, key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", f"{pipeline}-{key}".lower()).strip("-")


def numbers_of(key: str, value: Any) -> dict[str, float]:
    """The metrics an output gives: a number as ``key``, a dict's numbers as their keys."""
    if type(value) in (int, float):
        return {key: float(value)}
    if type(value) is dict:
        return {
            str(k): float(v)
            for k, v in value.items()
            if type(v) in (int, float) and (type(v) is float or abs(v) < 2**53)
        }
    return {}


def _input_example(value: Any, inputs: list[Any]) -> Any:
    """The first rows of the step's input frame restricted to the model's feature columns,
    so the version's signature names what the model takes (not the label)."""
    names = getattr(value, "feature_names_in_", None)
    if names is None:
        return None
    names = [str(n) for n in names]
    for frame in inputs:
        kind = frame_kind(frame)
        if kind is None or not set(names) <= {str(c) for c in frame.columns}:
            continue
        head = frame.head(5)
        return head[names] if kind == "pandas" else head.select(names).to_pandas()
    return None


def is_inline(value: Any) -> bool:
    """True when ``value`` is stored in the step's row (JSON up to the inline limit), so
    storing it needs no run to exist yet."""
    return is_json_exact(value) and len(canonical_json(value)) <= INLINE_LIMIT


def store_output(
    store: Store,
    value: Any,
    *,
    pipeline: str,
    key: str,
    name: str | None,
    step_run_id: str,
    input_values: list[Any],
) -> StoredOutput:
    """Store ``value``, the output of step ``key`` in ``pipeline`` (run ``step_run_id``);
    ``name`` overrides the dataset or model name, ``input_values`` are the step's inputs
    (a model's input example comes from them)."""
    kind = frame_kind(value)
    if kind is not None:
        from loopwise.data.datasets import log_dataset

        version = log_dataset(store, value, name or f"{pipeline}.{key}")
        with store.db.write() as conn:
            add_edge(
                conn, Node("dataset_version", version.id), PRODUCED_BY, Node("run", step_run_id)
            )
        return StoredOutput(f"{DATASET}:{kind}", version.uri, frame_fingerprint(value))
    if is_json_exact(value):
        text = canonical_json(value)
        if len(text) <= INLINE_LIMIT:
            return StoredOutput(VALUE, text, sha256(b"json:" + text.encode()))
    flavor = model_flavor(value)
    if flavor is not None:
        from loopwise.registry.saving import log_model

        version = log_model(
            store,
            value,
            name or _model_name(pipeline, key),
            run_id=step_run_id,
            input_example=_input_example(value, input_values),
            flavor=flavor,
        )
        files = sorted((f["path"], f["sha256"]) for f in version.manifest.get("files", []))
        return StoredOutput(MODEL, version.uri, sha256(b"model:" + repr(files).encode()))
    try:
        data = pickle.dumps(value, protocol=5)
    except Exception as exc:
        raise InvalidInput(
            f"The output of step {key!r} ({type(value).__name__}) cannot be stored: it is not "
            f"a frame, a model or JSON, and it does not pickle ({exc})."
        ) from exc
    from loopwise.tracking.run_artifacts import log_bytes

    path = log_bytes(store, step_run_id, data, ARTIFACT_PATH)
    return StoredOutput(PICKLE, f"{step_run_id}/{path}", sha256(b"pickle:" + data))


def load_output(store: Store, kind: str, ref: str) -> Any:
    """The value a :class:`StoredOutput` stands for."""
    if kind == VALUE:
        return json.loads(ref)
    if kind.startswith(DATASET + ":"):
        from loopwise.data.datasets import load_dataset

        return load_dataset(store, ref, as_=kind.split(":", 1)[1])
    if kind == MODEL:
        from loopwise.registry import models as registry
        from loopwise.registry.loading import load_version

        return load_version(store, registry.get_model_version(store, ref)).raw
    if kind == PICKLE:
        from loopwise.tracking.run_artifacts import read_artifact

        run_id, _, path = ref.partition("/")
        return pickle.loads(read_artifact(store, run_id, path))
    raise InvalidInput(f"Unknown stored output kind {kind!r}.")


def link_inputs(store: Store, step_run_id: str, refs: list[tuple[str, str]]) -> None:
    """Record that the step's run used the dataset and model versions among its inputs
    (``(kind, ref)`` of the upstream outputs), so a model it trains is traced to them."""
    from loopwise.data.datasets import get_dataset_version
    from loopwise.registry import models as registry

    nodes = []
    for kind, ref in refs:
        if kind.startswith(DATASET + ":"):
            nodes.append(Node("dataset_version", get_dataset_version(store, ref).id))
        elif kind == MODEL:
            nodes.append(Node("model_version", registry.get_model_version(store, ref).id))
    if nodes:
        with store.db.write() as conn:
            for node in nodes:
                add_edge(conn, Node("run", step_run_id), INPUT_RELATION, node)
