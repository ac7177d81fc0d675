"""One process, two stores: an endpoint built for a store resolves, loads and follows its
models in that store, whatever the process's default store is (what the coming REST
server, serving many stores, relies on). A live model or an endpoint is always given its
store: none falls back to the default one."""

from __future__ import annotations

import time

import httpx
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from loopwise import context
from loopwise.config import load_settings
from loopwise.errors import InvalidInput
from loopwise.registry import models as registry
from loopwise.registry.saving import log_model
from loopwise.serving.app import create_app
from loopwise.serving.endpoint import Endpoint
from loopwise.serving.endpoint_config import EndpointConfig
from loopwise.serving.live_model import LiveModel
from loopwise.serving.server import ServerThread, build_endpoint
from loopwise.store import Store

X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
URI = "models:/m@champion"


def constant(answer: int) -> DummyClassifier:
    return DummyClassifier(strategy="constant", constant=answer).fit(X, [0, 1, 0, 1])


@pytest.fixture
def other(lw, tmp_path) -> Store:
    """A second store, where m@champion is m/1 answering 1; in the default store it is m/2
    answering 0."""
    store = Store(
        settings=load_settings(
            store_url=f"sqlite:///{tmp_path}/other.db",
            artifacts_url=str(tmp_path / "other-artifacts"),
            cache_dir=str(tmp_path / "cache"),
        )
    )
    log_model(store, constant(1), "m", input_example=X[:2])
    registry.set_alias(store, "m", "champion", 1)
    lw.log_model(constant(0), "m", input_example=X[:2])
    lw.log_model(constant(0), "m", input_example=X[:2])
    lw.set_alias("m", "champion", 2)
    yield store
    store.db.engine.dispose()


def test_an_endpoint_serves_the_models_of_the_store_it_is_given(lw, other):
    config = EndpointConfig.single(URI, poll_interval=0.2)
    endpoint = build_endpoint(config, other).start()
    try:
        assert endpoint.store is other
        with ServerThread(create_app(endpoint)) as server:
            answer = httpx.post(f"{server.url}/predict", json={"inputs": {"x": [1.0]}}).json()
        assert (answer["predictions"], answer["model"]) == ([1], "m/1")
    finally:
        endpoint.stop()
    live = LiveModel(URI, store=other).start()
    try:
        assert live.current.label == "m/1"
        assert live.current.model.predict(X[:1]).tolist() == [1]
    finally:
        live.stop()
    default_live = LiveModel(URI, store=context.get_store()).start()
    try:
        assert default_live.current.label == "m/2"
    finally:
        default_live.stop()


def test_a_live_model_follows_the_alias_of_its_own_store(lw, other):
    live = LiveModel(URI, store=other, poll_interval=0.05).start()
    try:
        lw.set_alias("m", "champion", 1)  # the default store's alias moves: not followed
        log_model(other, constant(1), "m", input_example=X[:2])
        registry.set_alias(other, "m", "champion", 2)  # its own store's alias moves
        deadline = time.monotonic() + 10
        while live.current.label != "m/2" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert live.current.version.id == registry.get_model_version(other, URI).id
    finally:
        live.stop()


def test_a_live_model_and_an_endpoint_need_a_store(lw):
    with pytest.raises(TypeError, match="store"):
        LiveModel(URI)  # type: ignore[call-arg]
    with pytest.raises(InvalidInput, match="'store' parameter of LiveModel must be a Store"):
        LiveModel(URI, store=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="'store' parameter of Endpoint must be a Store"):
        Endpoint(EndpointConfig.skeleton(0.5), store="sqlite:///x.db")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="store"):
        build_endpoint(EndpointConfig.skeleton(0.5))  # type: ignore[call-arg]
