"""An unchanged MLflow client (``client_models.py``) logs a scikit-learn model, registers
it and loads it back through a real `loopwise server` process on SQLite and PostgreSQL;
the same version is then a loopwise model version with the ``mlflow`` flavor: loaded by
``load_model``, traced to its run, gated by ``promote`` and served."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loopwise.config import load_settings
from loopwise.registry import loading
from loopwise.registry import models as model_service
from loopwise.registry.lineage import model_lineage
from loopwise.registry.promotion import promote
from loopwise.store import Store
from tests.mlflow_compat.conftest import run_client


def test_an_mlflow_model_is_a_loopwise_version(
    loopwise_server, store_url, mlflow_client, tmp_path: Path
):
    out = run_client("client_models.py", loopwise_server, tmp_path, mlflow_client)

    # MLflow 3 logs a logged model; MLflow 2 a folder of the run (and runs/log-model)
    expected_uri = "models:/m-" if mlflow_client == "mlflow3" else f"runs:/{out['run_id']}/model"
    assert out["model_uri"].startswith(expected_uri)
    assert out["versions"] == ["1", "2", "READY"]
    assert out["champion"] == ["1", out["run_id"], ["champion"]]
    assert out["registered"] == ["mlflow-credit", {"champion": "1"}]
    assert out["predictions"] == out["expected"]
    assert out["deleted_alias"][1] == 404
    assert out["duplicate_model"] == ["RESOURCE_ALREADY_EXISTS", 400]
    assert out["missing_version"] == ["RESOURCE_DOES_NOT_EXIST", 404]
    assert out["searched_models"] == ["mlflow-credit", "mlflow-other"]
    assert out["searched_like"] == ["mlflow-credit"]
    assert out["searched_latest"] == ["2"]
    assert out["model_pages"] == [["mlflow-credit"], ["mlflow-other"]]
    assert out["searched_versions"] == ["1", "2"]
    assert out["versions_of_run"] == ["1", "2"]
    assert out["unsupported_filter"] == ["NOT_IMPLEMENTED", 501]
    assert out["model_tags"] == [
        {"team": "risk", "tier": "1"},
        "first",
        {"team": "credit"},
        "scores loans",
    ]
    assert out["model_updated"] is True
    assert out["version_tags"] == [{"validated": "yes"}, "baseline"]
    assert out["version_tags_2"] == {}
    assert out["model_tags_after"] == {"team": "risk"}
    assert out["by_model_tag"] == ["mlflow-tagged"]
    assert out["by_version_tag"] == ["1"]
    assert out["latest"] == ["2"]
    assert out["latest_staging"] == []
    assert out["refused"] == {
        "absent_tag": ["RESOURCE_DOES_NOT_EXIST", 404],
        "reserved": ["INVALID_PARAMETER_VALUE", 400],
        "stage": ["NOT_IMPLEMENTED", 501],
        "rename": ["NOT_IMPLEMENTED", 501],
        "delete_version": ["NOT_IMPLEMENTED", 501],
        "delete_model": ["NOT_IMPLEMENTED", 501],
    }
    if mlflow_client == "mlflow3":
        assert out["experiment_tags"] == ["owner"]
        assert out["logged_model_tags"] == ["keep"]

    rows = pd.read_json(tmp_path / "rows.json", orient="records")
    store = Store(
        settings=load_settings(
            store_url=store_url,
            artifacts_url=str(tmp_path / "artifacts"),
            cache_dir=str(tmp_path / "lw-cache"),
        )
    )
    try:
        # the models MLflow's search listed are loopwise's, with the tags MLflow set
        models = {m.name: m for m in model_service.list_models(store)}
        assert sorted(models) == [*out["searched_models"], "mlflow-tagged"]
        assert models["mlflow-credit"].tags == {"team": "credit"}
        assert models["mlflow-credit"].description == "scores loans"
        version = model_service.get_model_version(store, "models:/mlflow-credit@champion")
        assert version.flavor == "mlflow"
        # MLflow's signature (from the DataFrame input example) became loopwise's
        assert version.signature["inputs"] == [
            {"name": "income", "type": "float"},
            {"name": "debt", "type": "float"},
        ]
        assert version.run_id == out["run_id"]
        lineage = model_lineage(store, version.uri)
        assert lineage.run is not None
        assert lineage.run.params == {"C": "1.0"}
        loaded = loading.load_model(store, "models:/mlflow-credit@champion")
        assert loaded.predict(rows).tolist() == out["expected"]
        # (rows.json keeps 10 digits: the probabilities agree to that, not to the last bit)
        assert loaded.predict_proba(rows.head(3))[:, 1].tolist() == pytest.approx(out["proba"])

        holdout = rows.assign(y=out["expected"])
        decision = promote(
            store,
            "models:/mlflow-credit/2",
            "champion",
            policy={"task": "classification", "thresholds": {"accuracy": 0.9}},
            data=holdout,
            target="y",
            load=lambda uri: loading.load_model(store, uri),
        )
        assert decision.passed
        assert model_service.get_model_version(store, "models:/mlflow-credit@champion").version == 2

        from loopwise.serving.app import create_app
        from loopwise.serving.endpoint_config import EndpointConfig
        from loopwise.serving.server import build_endpoint

        config = {
            "name": "mlflow-credit",
            "variants": [{"name": "main", "model": "models:/mlflow-credit@champion"}],
        }
        endpoint = build_endpoint(EndpointConfig.from_dict(config), store).start()
        try:
            with TestClient(create_app(endpoint)) as client:
                answer = client.post("/predict", json={"inputs": rows.head(5).to_dict("records")})
                assert answer.status_code == 200, answer.text
                assert answer.json()["predictions"] == out["expected"][:5]
                # the signature guards the endpoint: a caller's mistake is a 400 naming it
                wrong = client.post("/predict", json={"inputs": [{"income": 1.0, "age": 3}]})
                assert wrong.status_code == 400, wrong.text
                assert "debt" in wrong.json()["error"]["message"]
                text = client.post("/predict", json={"inputs": [{"income": "a", "debt": 1}]})
                assert text.status_code == 400, text.text
                assert "income" in text.json()["error"]["message"]
        finally:
            endpoint.stop()
    finally:
        store.db.engine.dispose()
