"""Hot swap: the served model follows its alias under load, and a broken version is never
swapped in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from loopwise.serving.app import create_app
from loopwise.serving.live_model import LiveModel
from loopwise.serving.server import ServerThread
from tests.helpers import register_credit_risk, training_data, wait_for


@pytest.fixture
def served(lw) -> Iterator[tuple[LiveModel, ServerThread]]:
    register_credit_risk(lw)
    live = LiveModel(
        "models:/credit-risk@champion", store=lw.get_store(), poll_interval=0.2
    ).start()
    try:
        with ServerThread(create_app(live)) as server:
            yield live, server
    finally:
        live.stop()


def test_alias_move_swaps_without_a_failed_request(lw, served):
    live, server = served
    rows = training_data()[0][:3].to_dict("records")
    seen: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.post("/predict", json={"inputs": rows})
                except httpx.HTTPError as e:
                    failures.append(repr(e))
                    continue
                if r.status_code != 200:
                    failures.append(r.text)
                else:
                    seen.append(r.json()["model"])

    client = threading.Thread(target=hammer)
    client.start()
    time.sleep(0.7)
    lw.set_alias("credit-risk", "champion", 2)
    time.sleep(1.3)
    stop.set()
    client.join(10)

    assert failures == []
    assert seen[0] == "credit-risk/1"
    assert seen[-1] == "credit-risk/2"
    switch = seen.index("credit-risk/2")
    assert set(seen[switch:]) == {"credit-risk/2"}  # never flips back
    assert len(seen) > 100
    assert live.status()["loads"] == 2
    info = httpx.get(f"{server.url}/model").json()
    assert (info["version"], info["last_error"]) == (2, None)


class Fragile:
    """A pyfunc model that breaks once ``mode`` says so (importable from this module)."""

    mode = "ok"

    def __init__(self) -> None:
        self.weights = [1.0]  # some state, so unpickling calls __setstate__

    def __setstate__(self, state: dict) -> None:
        if Fragile.mode == "load":
            raise RuntimeError("cannot unpickle: missing native library")
        self.__dict__.update(state)

    def predict(self, X: np.ndarray) -> np.ndarray:
        if Fragile.mode == "predict":
            raise ValueError("smoke check failed: weights are corrupt")
        return np.ones(len(X), dtype=int)


@pytest.mark.parametrize(
    ("mode", "needle"), [("load", "missing native library"), ("predict", "weights are corrupt")]
)
def test_broken_version_is_never_swapped_in(lw, served, monkeypatch, mode, needle):
    live, server = served
    X, _ = training_data()
    lw.log_model(Fragile(), "credit-risk", input_example=X[:5])  # version 3
    monkeypatch.setattr(Fragile, "mode", mode)
    lw.set_alias("credit-risk", "champion", 3)
    wait_for(lambda: live.failed_loads == 1)
    time.sleep(0.6)  # several more polls: not retried while the alias stays put
    assert live.failed_loads == 1

    with httpx.Client(base_url=server.url) as c:
        info = c.get("/model").json()
        assert info["version"] == 1
        assert info["failed_version"] == "models:/credit-risk/3"
        assert needle in info["last_error"]
        assert info["failed_loads"] == 1
        r = c.post("/predict", json={"inputs": X[:2].to_dict("records")})
        assert r.status_code == 200
        assert r.json()["model"] == "credit-risk/1"
        assert c.get("/ready").status_code == 200
        assert 'loopwise_model_load_failures_total{variant="default"} 1.0' in c.get("/metrics").text

    # Moving the alias on to a good version swaps again and clears the error.
    lw.set_alias("credit-risk", "champion", 2)
    wait_for(lambda: live.current.version.version == 2)
    assert live.last_error is None
    assert live.failed_loads == 1


def test_start_fails_clearly_when_the_alias_is_missing(lw):
    register_credit_risk(lw)
    from loopwise.errors import NotFound

    with pytest.raises(NotFound, match="challenger"):
        LiveModel("models:/credit-risk@challenger", store=lw.get_store()).start()


def test_stop_ends_the_poller(lw):
    register_credit_risk(lw)
    live = LiveModel(
        "models:/credit-risk@champion", store=lw.get_store(), poll_interval=0.05
    ).start()
    thread = live._thread
    live.stop()
    assert not thread.is_alive()
    assert live.current.version.version == 1  # still readable after stop
