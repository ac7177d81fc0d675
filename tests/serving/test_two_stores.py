"""One process, two stores: an endpoint built for a store resolves, loads and follows its
models in that store, whatever the process's default store is (what the coming REST
server, serving many stores, relies on)."""

from __future__ import annotations

import httpx
import pandas as pd
from sklearn.dummy import DummyClassifier

from loopwise import context
from loopwise.serving.app import create_app
from loopwise.serving.endpoint_config import EndpointConfig
from loopwise.serving.live_model import LiveModel
from loopwise.serving.server import ServerThread, build_endpoint

X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})


def constant(answer: int) -> DummyClassifier:
    return DummyClassifier(strategy="constant", constant=answer).fit(X, [0, 1, 0, 1])


def test_an_endpoint_serves_the_models_of_the_store_it_is_given(lw, tmp_path):
    default = context.get_store().settings
    lw.configure(
        store_url=f"sqlite:///{tmp_path}/other.db",
        artifacts_url=str(tmp_path / "other-artifacts"),
        cache_dir=str(tmp_path / "cache"),
    )
    lw.log_model(constant(1), "m", input_example=X[:2])  # answers 1 in the other store
    lw.set_alias("m", "champion", 1)
    other = context.get_store()
    lw.configure(
        store_url=default.store_url,
        artifacts_url=default.artifacts_url,
        cache_dir=str(tmp_path / "cache"),
    )
    lw.log_model(constant(0), "m", input_example=X[:2])  # answers 0 in the default store
    lw.log_model(constant(0), "m", input_example=X[:2])
    lw.set_alias("m", "champion", 2)

    config = EndpointConfig.single("models:/m@champion", poll_interval=0.2)
    endpoint = build_endpoint(config, other).start()
    try:
        with ServerThread(create_app(endpoint)) as server:
            answer = httpx.post(f"{server.url}/predict", json={"inputs": {"x": [1.0]}}).json()
        assert (answer["predictions"], answer["model"]) == ([1], "m/1")
    finally:
        endpoint.stop()
    live = LiveModel("models:/m@champion", store=other).start()
    try:
        assert live.current.label == "m/1"
        assert live.current.model.predict(X[:1]).tolist() == [1]
    finally:
        live.stop()
    default_live = LiveModel("models:/m@champion").start()  # no store: the default one
    try:
        assert default_live.current.label == "m/2"
    finally:
        default_live.stop()
