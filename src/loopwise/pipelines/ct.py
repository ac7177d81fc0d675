"""The continuous-training pipeline, built in: ingest -> validate -> split -> train ->
evaluate -> promote.

Why built in: retraining after drift is the same six steps for most tabular models, and
each must be recorded and gated the same way every time; writing it per project is how a
model ends up redeployed without its data ever being validated. Parameterised by data
source, schema, estimator, slices and policy, it runs like any pipeline (cached, on any
executor, from the CLI, a schedule or an alert)::

    loopwise pipelines run loopwise.pipelines.ct:continuous_training \\
        -p source=endpoints:/credit-risk -p window=8h -p target=defaulted \\
        -p model=credit-risk -p schema=datasets:/credit-risk-training \\
        -p policy=policy.yaml

``source`` is a dataset version (``datasets:/loans/7``, ``datasets:/loans`` for the
latest), an endpoint's labelled traffic (``endpoints:/credit-risk``; with ``window``, that
of the last ``window`` before its latest labelled request),
or a CSV/Parquet file. Validation failing stops the run before anything is trained. The
promotion moves ``alias`` only when every gate of the policy passes, and a served
endpoint that follows the alias swaps to the new version by itself.
"""

from __future__ import annotations

import importlib
from typing import Any

import pandas as pd

from loopwise.errors import DataValidationError, InvalidInput
from loopwise.pipelines.definition import pipeline, step
from loopwise.registry.records import ModelVersion
from loopwise.store import Store

#: The policy when none is given: the new version may not lose more than 0.01 of
#: accuracy against the alias's holder on the same held-out rows.
DEFAULT_POLICY = {"task": "classification", "vs_current": {"metric": "accuracy", "max_drop": 0.01}}


def _endpoint_frame(store: Store, name: str, target: str, window: str | None) -> pd.DataFrame:
    """An endpoint's labelled requests as training rows (the logged inputs as columns, the
    feedback label as ``target``): those of the last ``window`` before the latest
    labelled request, or all of them."""
    from loopwise.clock import parse_duration
    from loopwise.predictions.log import read_predictions

    logged = read_predictions(store, name)
    if "label" not in logged.columns:
        raise InvalidInput(f"Endpoint {name!r} has no feedback yet: nothing to train on.")
    logged = logged[logged["label"].notna()]
    if window is not None and len(logged):
        span = pd.Timedelta(seconds=parse_duration(window, what="window"))
        logged = logged[logged["timestamp"] > logged["timestamp"].max() - span]
    inputs = [c for c in logged.columns if c.startswith("input.")]
    frame = logged[inputs].rename(columns={c: c.removeprefix("input.") for c in inputs})
    labels = logged["label"]
    if labels.dtype.kind == "f" and len(labels) and (labels == labels.round()).all():
        labels = labels.astype("int64")  # integer labels, made floats by the unlabelled rows
    frame[target] = labels.to_numpy()
    return frame.reset_index(drop=True)


@step(cache=False)  # the same source names new rows over time: its content decides
def ingest(source: str, target: str, window: str | None = None, store: Store | None = None) -> Any:
    """The training rows: a dataset version, an endpoint's labelled traffic, or a file."""
    if source.startswith("datasets:/"):
        from loopwise.data.datasets import load_dataset

        frame = load_dataset(store, source, as_="pandas")
    elif source.startswith("endpoints:/"):
        frame = _endpoint_frame(store, source.removeprefix("endpoints:/"), target, window)
    elif source.endswith((".csv", ".parquet")):
        frame = pd.read_csv(source) if source.endswith(".csv") else pd.read_parquet(source)
    else:
        raise InvalidInput(
            f"source {source!r} is not datasets:/name[/version], endpoints:/name, or a "
            ".csv/.parquet file."
        )
    if target not in frame.columns:
        raise InvalidInput(f"The data of {source} has no target column {target!r}.")
    if frame[target].isna().all() or len(frame) == 0:
        raise InvalidInput(f"The data of {source} has no labelled rows to train on.")
    return frame.dropna(subset=[target]).reset_index(drop=True)


def _schema(store: Store, schema: str) -> Any:
    from loopwise.data.schema import Schema

    if schema.startswith("datasets:/"):
        from loopwise.data.datasets import get_dataset_version

        version = get_dataset_version(store, schema)
        if version.schema is None:
            raise InvalidInput(
                f"{version.uri} has no schema: log it with schema=... or pass a schema file."
            )
        return Schema.from_dict(version.schema)
    return Schema.load(schema)


@step
def validate(frame: pd.DataFrame, schema: str, store: Store | None = None) -> Any:
    """The rows, checked against ``schema`` (a dataset whose schema to use, or a schema
    file); any error stops the pipeline here."""
    from loopwise.data.validation import validate as check

    report = check(frame, _schema(store, schema))
    if not report.ok:
        raise DataValidationError(report, what=f"the training data (schema {schema})")
    return frame


@step
def split(frame: pd.DataFrame, part: str, test_size: float = 0.25, seed: int = 0) -> Any:
    """The ``train`` or ``test`` part of a seeded shuffle (the same rows each time)."""
    if part not in ("train", "test"):
        raise InvalidInput(f"part must be 'train' or 'test', got {part!r}.")
    if not 0 < test_size < 1:
        raise InvalidInput(f"test_size must be between 0 and 1, got {test_size!r}.")
    shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    cut = len(shuffled) - max(1, round(len(shuffled) * test_size))
    if cut < 1:
        raise InvalidInput(f"{len(frame)} rows are too few to split into train and test.")
    return (shuffled.iloc[:cut] if part == "train" else shuffled.iloc[cut:]).reset_index(drop=True)


def _estimator(path: str, params: dict[str, Any]) -> Any:
    module, _, name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidInput(
            f"estimator {path!r} is not 'module:Class' (e.g. "
            f"'sklearn.linear_model:LogisticRegression'): {exc}"
        ) from exc
    try:
        return cls(**params)
    except TypeError as exc:
        raise InvalidInput(f"estimator_params do not fit {path}: {exc}") from exc


@step(output="{model}")
def train(
    frame: pd.DataFrame,
    target: str,
    model: str,
    estimator: str = "sklearn.linear_model:LogisticRegression",
    estimator_params: dict[str, Any] | None = None,
    features: list[str] | None = None,
) -> Any:
    """The estimator fitted on ``features`` (default: every column but the target); stored
    as the next version of ``model``."""
    columns = features or [c for c in frame.columns if c != target]
    missing = sorted(set(columns) - set(frame.columns))
    if missing:
        raise InvalidInput(f"features {missing} are not columns of the training data.")
    return _estimator(estimator, dict(estimator_params or {})).fit(frame[columns], frame[target])


@step
def evaluate(
    version: ModelVersion,
    test: pd.DataFrame,
    target: str,
    slices: list[str] | None = None,
    store: Store | None = None,
) -> Any:
    """The version's metrics on the held-out rows (stored with the version, per slice)."""
    from loopwise.registry.evaluations import evaluate_and_store
    from loopwise.registry.loading import load_model

    evaluation = evaluate_and_store(
        store,
        version.uri,
        test,
        run_id=None,
        load=lambda uri: load_model(store, uri),
        target=target,
        slices=slices or None,
    )
    return {k: float(v) for k, v in evaluation.metrics.items() if isinstance(v, int | float)}


@step
def promote(
    version: ModelVersion,
    test: pd.DataFrame,
    target: str,
    alias: str = "champion",
    policy: Any = None,
    store: Store | None = None,
) -> Any:
    """Run the policy's gates for the version on the held-out rows; the alias moves only
    when all pass (the first version of a model takes it when its hurdles pass)."""
    from loopwise.registry.loading import load_model
    from loopwise.registry.promotion import promote as run_promotion

    decision = run_promotion(
        store,
        version.uri,
        alias,
        policy=policy if policy is not None else DEFAULT_POLICY,
        data=test,
        target=target,
        load=lambda uri: load_model(store, uri),
    )
    return {
        "passed": decision.passed,
        "alias": alias,
        "version": version.version,
        "failed": [c.name for c in decision.checks if not c.passed],
        "summary": decision.summary(),
    }


@pipeline(name="continuous-training")
def continuous_training(
    source: str,
    target: str,
    model: str,
    schema: str | None = None,
    window: str | None = None,
    estimator: str = "sklearn.linear_model:LogisticRegression",
    estimator_params: dict[str, Any] | None = None,
    features: list[str] | None = None,
    test_size: float = 0.25,
    seed: int = 0,
    slices: list[str] | None = None,
    policy: Any = None,
    alias: str = "champion",
) -> Any:
    """Ingest ``source``, validate it against ``schema`` (default: the source dataset's),
    split, train ``estimator`` as the next version of ``model``, evaluate it (per
    ``slices``) and promote it to ``alias`` under ``policy``."""
    if schema is None:
        if not source.startswith("datasets:/"):
            raise InvalidInput(
                "schema is required when the source is not a dataset: pass the dataset "
                "whose schema the data must follow (schema=datasets:/name) or a schema file."
            )
        schema = source
    rows = validate(ingest(source, target, window), schema)
    training = split(rows, "train", test_size, seed)
    held_out = split(rows, "test", test_size, seed)
    fitted = train(training, target, model, estimator, estimator_params, features)
    return {
        "metrics": evaluate(fitted, held_out, target, slices),
        "promotion": promote(fitted, held_out, target, alias, policy),
    }
