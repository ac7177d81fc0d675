"""One process, two stores: every service below the facades works on the store it is given.

Store A (an explicit SQLite file) and the process's default store B (SQLite and
PostgreSQL, through the ``lw`` fixture) both hold a model ``m``: in A, ``m@champion`` is
version 1 and answers 1; in B, it is version 3 and answers 0. Batch scoring, the load
generator's swap, the monitor engine's reference and the serving endpoint are each given A
while the default store is B, and must read (and write) A only: what a process serving many
stores (the REST server) relies on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.dummy import DummyClassifier

from loopwise import context
from loopwise.batch.scoring import score
from loopwise.config import load_settings
from loopwise.loadtest.generator import run_loadtest
from loopwise.monitoring.config import Monitor
from loopwise.monitoring.engine.reference import References
from loopwise.monitoring.engine.runner import run_monitor
from loopwise.predictions.log import log_predictions, prediction_endpoints
from loopwise.registry import models as registry
from loopwise.registry.loading import load_model
from loopwise.registry.records import ModelVersion
from loopwise.registry.saving import log_model
from loopwise.serving.app import create_app
from loopwise.serving.endpoint_config import EndpointConfig
from loopwise.serving.live_model import LiveModel
from loopwise.serving.server import ServerThread, build_endpoint
from loopwise.store import Store
from loopwise.tracking.runs import create_run

X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
CHAMPION = "models:/m@champion"
EP = "scorer"


def constant(answer: int) -> DummyClassifier:
    return DummyClassifier(strategy="constant", constant=answer).fit(X, [0, 1, 0, 1])


@dataclass
class TwoStores:
    given: Store  # A: m@champion is m/1, answering 1
    default: Store  # B, the process's default: m@champion is m/3, answering 0
    given_champion: ModelVersion
    default_champion: ModelVersion


@pytest.fixture
def two(lw, tmp_path: Path) -> Iterator[TwoStores]:
    given = Store(
        settings=load_settings(
            store_url=f"sqlite:///{tmp_path}/given.db",
            artifacts_url=str(tmp_path / "given-artifacts"),
            cache_dir=str(tmp_path / "cache"),
        )
    )
    for _ in range(2):
        log_model(given, constant(1), "m", input_example=X[:2])
    registry.set_alias(given, "m", "champion", 1)
    for _ in range(3):
        lw.log_model(constant(0), "m", input_example=X[:2])
    lw.set_alias("m", "champion", 3)
    default = context.get_store()
    stores = TwoStores(
        given,
        default,
        registry.get_model_version(given, CHAMPION),
        registry.get_model_version(default, CHAMPION),
    )
    assert stores.given_champion.id != stores.default_champion.id
    yield stores
    given.db.engine.dispose()


def test_log_model_registers_in_the_store_it_is_given_for_the_run_it_names(two):
    run_id = create_run(two.given, "training")
    version = log_model(two.given, constant(1), "m", run_id=run_id, description="from a run")
    assert (version.version, version.run_id, version.description) == (3, run_id, "from a run")
    assert registry.get_model_version(two.given, "models:/m/3").id == version.id
    assert [v.version for v in registry.list_versions(two.default, "m")] == [1, 2, 3]
    assert load_model(two.given, "models:/m/3").predict(X[:1]).tolist() == [1]


def test_batch_scoring_uses_the_store_it_is_given(two, tmp_path):
    src = tmp_path / "in.parquet"
    pd.DataFrame({"x": np.arange(50, dtype=float)}).to_parquet(src)
    summary = score(two.given, CHAMPION, src, tmp_path / "out.parquet", log_endpoint=EP)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert summary.model == "m/1"
    assert set(out["prediction"]) == {1}
    assert set(out["model_version_id"]) == {two.given_champion.id}
    # the chunks were logged to the given store's prediction log, not the default's
    assert EP in prediction_endpoints(two.given)
    assert EP not in prediction_endpoints(two.default)


def test_the_load_generator_moves_the_alias_in_the_store_it_is_given(two):
    endpoint = build_endpoint(EndpointConfig.single(CHAMPION, poll_interval=0.1), two.given)
    endpoint.start()
    try:
        with ServerThread(create_app(endpoint)) as server:
            report = run_loadtest(
                server.url, store=two.given, concurrency=1, duration=0.6, swap_to=2, swap_at=0.1
            )
    finally:
        endpoint.stop()
    assert report.swap.error is None
    assert (report.swap.from_version, report.swap.to_version) == (1, 2)
    assert registry.get_model_version(two.given, CHAMPION).version == 2
    assert registry.get_model_version(two.default, CHAMPION).version == 3


def test_the_monitor_engine_looks_references_up_in_the_store_it_is_given(two):
    rows, start = 200, datetime(2024, 5, 1, tzinfo=UTC)
    stamps = int(start.timestamp() * 1e6) + np.arange(rows, dtype=np.int64) * 10_000_000
    logged = pl.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(rows)],
            "timestamp": pl.Series(stamps).cast(pl.Datetime("us", "UTC")),
            "x": np.linspace(0.0, 3.0, rows),
            "prediction": np.ones(rows, dtype=np.int64),  # what the given store's m/1 answers
        }
    )
    log_predictions(two.given, EP, logged, model=two.given_champion)
    reference = pd.DataFrame({"x": np.linspace(0.0, 3.0, 500)})  # no outputs: the engine predicts
    monitor = Monitor(EP, reference=reference, window="1h")

    found = References(two.given, monitor)
    assert found.version("m/1", two.given_champion.id).id == two.given_champion.id
    assert set(found.get("m/1", two.given_champion.id).predictions) == {1}

    (result,) = run_monitor(two.given, monitor, start, start + timedelta(hours=1))
    assert (result.rows, result.model) == (rows, "m/1")
    assert result.value("prediction.drifted") == 0.0  # m/1 of the given store predicted 1 too


def test_live_models_and_endpoints_use_the_store_they_are_given(two):
    live = LiveModel(CHAMPION, store=two.given).start()
    try:
        assert live.current.version.id == two.given_champion.id
        assert live.current.model.predict(X[:1]).tolist() == [1]
    finally:
        live.stop()
    endpoint = build_endpoint(EndpointConfig.single(CHAMPION), two.given).start()
    try:
        with ServerThread(create_app(endpoint)) as server:
            answer = httpx.post(f"{server.url}/predict", json={"inputs": {"x": [1.0]}}).json()
        assert (answer["predictions"], answer["model"]) == ([1], "m/1")
    finally:
        endpoint.stop()
    default_live = LiveModel(CHAMPION, store=two.default).start()
    try:
        assert default_live.current.version.id == two.default_champion.id
    finally:
        default_live.stop()
