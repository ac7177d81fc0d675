"""Traffic over real HTTP: A/B split (sticky by key), shadows off the request path, the
model flag and its fallback, the walking skeleton, smoke tests before a swap, and config
errors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from loopwise.errors import InvalidInput
from loopwise.serving.app import create_app
from loopwise.serving.endpoint import Endpoint, FlagState
from loopwise.serving.endpoint_config import EndpointConfig
from loopwise.serving.server import ServerThread
from loopwise.serving.traffic import Router
from tests.helpers import register_credit_risk, training_data, wait_for

AB = {
    "name": "credit-risk",
    "variants": [
        {"name": "champion", "model": "models:/credit-risk@champion", "weight": 3},
        {"name": "challenger", "model": "models:/credit-risk@challenger", "weight": 1},
    ],
    "poll_interval": 0.2,
    "log": False,
}


class Picky:
    """A model that answers its 5-row input example and fails on anything smaller."""

    def predict(self, X):
        if len(X) < 5:
            raise RuntimeError("shadow cannot take small batches")
        return [0] * len(X)


@pytest.fixture
def rows(lw) -> list[dict]:
    register_credit_risk(lw)
    lw.set_alias("credit-risk", "challenger", 2)
    return training_data()[0][:2].to_dict("records")


@contextmanager
def serve(endpoint: Endpoint) -> Iterator[httpx.Client]:
    endpoint.start()
    try:
        with (
            ServerThread(create_app(endpoint)) as server,
            httpx.Client(base_url=server.url, timeout=10) as client,
        ):
            yield client
    finally:
        endpoint.stop()


@pytest.fixture
def ab_client(lw, rows) -> Iterator[httpx.Client]:
    with serve(Endpoint(EndpointConfig.from_dict(AB), store=lw.get_store())) as client:
        yield client


def test_weights_split_traffic_and_answers_name_the_variant(ab_client, rows):
    answers = [ab_client.post("/predict", json={"inputs": rows}).json() for _ in range(400)]
    counts = Counter(a["variant"] for a in answers)
    assert set(counts) == {"champion", "challenger"}
    assert 60 <= counts["challenger"] <= 140  # expected 100, sd ≈ 8.7
    by_variant = {a["variant"]: a["model"] for a in answers}
    assert by_variant == {"champion": "credit-risk/1", "challenger": "credit-risk/2"}
    metrics = ab_client.get("/metrics").text
    line = (
        'loopwise_predict_requests_total{model="credit-risk/2",outcome="ok",variant="challenger"}'
    )
    assert f"{line} {float(counts['challenger'])}" in metrics


def test_routing_key_is_sticky_in_body_and_header(ab_client, rows):
    for user in range(30):
        seen = {
            ab_client.post("/predict", json={"inputs": rows, "routing_key": f"user-{user}"}).json()[
                "variant"
            ]
            for _ in range(4)
        }
        by_header = ab_client.post(
            "/predict", json={"inputs": rows}, headers={"X-Routing-Key": f"user-{user}"}
        ).json()["variant"]
        assert seen == {by_header}
    bad = ab_client.post("/predict", json={"inputs": rows, "routing_key": [1]})
    assert bad.status_code == 400
    assert "routing_key" in bad.json()["error"]["message"]


def test_router_is_deterministic_across_instances_and_skips_zero_weights():
    first = Router([1, 0, 1], salt="ep")
    second = Router([1, 0, 1], salt="ep")
    keys = [f"u{i}" for i in range(2000)]
    picks = [first.choose(k) for k in keys]
    assert picks == [second.choose(k) for k in keys]
    assert 1 not in picks
    assert 850 < picks.count(2) < 1150
    assert Router([1, 1], salt="other").choose("u1") in (0, 1)
    with pytest.raises(InvalidInput, match="weights"):
        Router([0, 0], salt="ep")


def test_shadow_is_called_off_the_request_path_and_never_answers(lw, rows):
    lw.log_model(Picky(), "picky", input_example=training_data()[0][:5])
    lw.set_alias("picky", "candidate", 1)
    config = EndpointConfig.from_dict(
        AB
        | {
            "variants": AB["variants"][:1],
            "shadows": [
                {"name": "tree", "model": "models:/credit-risk/2"},
                {"name": "picky", "model": "models:/picky@candidate"},
            ],
        }
    )
    endpoint = Endpoint(config, store=lw.get_store())
    with serve(endpoint) as client:
        answers = [client.post("/predict", json={"inputs": rows}) for _ in range(20)]
        assert all(a.status_code == 200 for a in answers)
        assert {a.json()["variant"] for a in answers} == {"champion"}
        counters = endpoint.shadow_counters
        wait_for(lambda: counters.answered.get(("tree", "credit-risk/2")) == 20)
        wait_for(lambda: counters.failed.get(("picky", "picky/1")) == 20)
        metrics = client.get("/metrics").text
        assert (
            'loopwise_shadow_requests_total{model="picky/1",outcome="error",variant="picky"} 20.0'
            in metrics
        )
        status = client.get("/model").json()
        assert [s["variant"] for s in status["shadows"]] == ["tree", "picky"]


def test_model_flag_switches_to_the_fallback_and_back(lw, rows):
    state = {"flag": FlagState(enabled=True)}
    config = EndpointConfig.from_dict(AB | {"fallback": 0, "variants": AB["variants"][:1]})
    endpoint = Endpoint(config, store=lw.get_store(), flag_reader=lambda: state["flag"])
    with serve(endpoint) as client:
        assert client.post("/predict", json={"inputs": rows}).json()["variant"] == "champion"
        state["flag"] = FlagState(enabled=False, reason="incident 42")
        wait_for(lambda: not endpoint.model_enabled)
        off = client.post("/predict", json={"inputs": rows}).json()
        assert (off["predictions"], off["variant"], off["model"]) == (
            [0, 0],
            "fallback",
            "fallback",
        )
        info = client.get("/model").json()
        assert info["model_enabled"] is False
        assert info["flag"]["reason"] == "incident 42"
        assert "loopwise_model_enabled 0.0" in client.get("/metrics").text
        state["flag"] = FlagState(enabled=True)
        wait_for(lambda: endpoint.model_enabled)
        assert client.post("/predict", json={"inputs": rows}).json()["variant"] == "champion"


def test_flag_reader_failure_keeps_the_last_state(lw, rows):
    def broken() -> FlagState:
        raise ConnectionError("store down")

    config = EndpointConfig.from_dict(AB | {"variants": AB["variants"][:1]})
    endpoint = Endpoint(config, store=lw.get_store(), flag_reader=broken)
    with serve(endpoint) as client:
        assert client.post("/predict", json={"inputs": rows}).json()["variant"] == "champion"
        assert "store down" in client.get("/model").json()["flag"]["error"]


def test_walking_skeleton_answers_a_constant_with_the_same_api(lw):
    endpoint = Endpoint(EndpointConfig.skeleton(0.5, log=False), store=lw.get_store())
    with serve(endpoint) as client:
        assert client.get("/ready").status_code == 200
        answer = client.post("/predict", json={"inputs": [{"a": 1}, {"a": 2}]}).json()
        assert answer["predictions"] == [0.5, 0.5]
        assert answer["variant"] == "fallback"
        assert len(answer["request_id"]) == 26
        columns = client.post("/predict", json={"inputs": {"a": [1, 2, 3]}}).json()
        assert columns["predictions"] == [0.5] * 3
        ragged = client.post("/predict", json={"inputs": {"a": [1, 2], "b": [1]}})
        assert ragged.status_code == 400
        assert client.get("/model").json()["skeleton"] is True
        feedback = client.post("/feedback", json={"request_id": answer["request_id"], "label": 1})
        assert feedback.status_code == 409
        assert feedback.json()["error"]["type"] == "log_disabled"


def test_a_version_failing_the_smoke_tests_is_not_swapped_in(lw, rows):
    X = training_data()[0]
    champion = lw.load_model("models:/credit-risk/1")
    row = X.iloc[0].to_dict()
    expected = int(champion.predict(X[:1])[0])
    other = 1 - expected
    v2 = lw.load_model("models:/credit-risk/2")
    assert int(v2.predict(X[:1])[0]) == expected  # both agree on this row ...
    lw.log_model(_Constant(other), "credit-risk", input_example=X[:5])  # ... v3 does not
    config = EndpointConfig.from_dict(
        AB | {"variants": AB["variants"][:1], "smoke_tests": [{"input": row, "expect": expected}]}
    )
    endpoint = Endpoint(config, store=lw.get_store())
    with serve(endpoint) as client:
        lw.set_alias("credit-risk", "champion", 3)
        live = endpoint.variants[0].live
        wait_for(lambda: live.failed_loads == 1)
        assert client.post("/predict", json={"inputs": rows}).json()["model"] == "credit-risk/1"
        assert "smoke test 1" in client.get("/model").json()["last_error"]
        lw.set_alias("credit-risk", "champion", 2)
        wait_for(lambda: live.current.version.version == 2)


class _Constant:
    def __init__(self, value: int) -> None:
        self.value = value

    def predict(self, X):
        return [self.value] * len(X)


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ({"name": "x", "variants": [], "fallbak": 1}, "did you mean 'fallback'"),
        ({"name": "Bad Name", "fallback": 1}, "name: must be lower-case"),
        ({"name": "x"}, "give a 'fallback'"),
        ({"name": "x", "variants": [{"name": "a", "model": "s3://m"}]}, "models:/ URI"),
        (
            {"name": "x", "variants": [{"name": "a", "model": "models:/m/1", "weight": -1}]},
            "weight: must be a number ≥ 0",
        ),
        (
            {"name": "x", "variants": [{"name": "a", "model": "models:/m/1", "weight": 0}]},
            "weight above 0",
        ),
        (
            {
                "name": "x",
                "variants": [{"name": "a", "model": "models:/m/1"}],
                "shadows": [{"name": "a", "model": "models:/m/2"}],
            },
            "used twice",
        ),
        (
            {"name": "x", "fallback": 1, "shadows": [{"name": "a", "model": "models:/m/1"}]},
            "shadows",
        ),
        ({"name": "x", "fallback": [1]}, "fallback: must be a number"),
        ({"name": "x", "fallback": 1, "poll_interval": 0}, "poll_interval: must be a number > 0"),
        ({"name": "x", "fallback": 1, "log": {"flush": 1}}, "log.flush: unknown key"),
        ({"name": "x", "fallback": 1, "smoke_tests": [{"input": {}}]}, "smoke_tests[0].input"),
        ("just text", "must be a mapping"),
    ],
)
def test_bad_endpoint_configs_are_refused_with_the_key_path(document, needle):
    with pytest.raises(InvalidInput) as e:
        EndpointConfig.from_dict(document)
    assert needle in str(e.value)


def test_config_files_round_trip_and_bad_files_are_clear(tmp_path):
    import yaml

    path = tmp_path / "endpoint.yaml"
    path.write_text(yaml.safe_dump(AB))
    config = EndpointConfig.load(path)
    assert [v.weight for v in config.variants] == [3.0, 1.0]
    assert EndpointConfig.from_dict(config.to_dict()) == config
    with pytest.raises(InvalidInput, match="does not exist"):
        EndpointConfig.load(tmp_path / "missing.yaml")
    path.write_text("name: [unclosed")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        EndpointConfig.load(path)
    path.write_text("name: x\nvariants: []\n")
    with pytest.raises(InvalidInput, match=r"endpoint\.yaml.*fallback"):
        EndpointConfig.load(path)


def test_a_shadow_that_cannot_load_does_not_stop_the_endpoint(lw, rows):
    config = EndpointConfig.from_dict(
        AB
        | {
            "variants": AB["variants"][:1],
            "shadows": [{"name": "later", "model": "models:/credit-risk@next"}],
        }
    )
    endpoint = Endpoint(config, store=lw.get_store())
    with serve(endpoint) as client:
        assert client.post("/predict", json={"inputs": rows}).status_code == 200
        lw.set_alias("credit-risk", "next", 2)
        wait_for(lambda: endpoint.shadows[0].live.current is not None)
        client.post("/predict", json={"inputs": rows})
        wait_for(lambda: endpoint.shadow_counters.answered.get(("later", "credit-risk/2")) == 1)
