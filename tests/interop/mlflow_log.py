"""Log to MLflow as a user's script does (run in .venv-mlflow-server by the tests).

``python mlflow_log.py initial`` logs the first state of the source; ``python mlflow_log.py
more`` logs what a second import must copy. MLFLOW_TRACKING_URI names the MLflow store (a
database or a server). What the tests check comes back as one JSON line (and in
state.json, in the working folder, between the two phases).
"""

import json
import sys
from pathlib import Path

import mlflow
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

STATE = Path("state.json")
MODEL = "fraud-model"


def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


def initial(client):
    fraud = mlflow.create_experiment("fraud")
    mlflow.create_experiment("churn")
    gone = mlflow.create_experiment("abandoned")
    X, y = data()
    mlflow.set_experiment("fraud")
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_params({"C": 1.0, "penalty": "l2"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("odd", float("nan"), step=0)
        mlflow.log_metric("odd", float("inf"), step=1)
        mlflow.log_metric("odd", 0.5, step=2)
        mlflow.set_tag("team", "risk")
        mlflow.log_text("hello from mlflow", "notes/readme.txt")
        mlflow.log_dict({"depth": 3}, "config/nested/params.json")
        model = LogisticRegression().fit(X, y)
        info = mlflow.sklearn.log_model(model, name="model", input_example=X[:2])
    baseline = run.info.run_id
    with mlflow.start_run(run_name="stronger") as run2:
        import pandas as pd

        frame = pd.DataFrame(X[:5], columns=[f"x{i}" for i in range(X.shape[1])])
        mlflow.log_input(
            mlflow.data.from_pandas(frame, source="s3://bucket/train.csv", name="train"),
            context="training",
        )
        mlflow.log_param("C", 10.0)
        mlflow.log_metric("loss", 0.1, step=0)
        model2 = LogisticRegression(C=10.0).fit(X, y)
        info2 = mlflow.sklearn.log_model(model2, name="model")
    v1 = mlflow.register_model(info.model_uri, MODEL)
    v2 = mlflow.register_model(info2.model_uri, MODEL)
    client.set_registered_model_alias(MODEL, "champion", v1.version)
    client.set_registered_model_tag(MODEL, "team", "risk")
    with mlflow.start_run(run_name="broken"):
        mlflow.log_param("lr", 0.3)
        mlflow.end_run(status="FAILED")
    deleted = client.create_run(fraud, run_name="deleted-run")
    client.set_terminated(deleted.info.run_id)
    client.delete_run(deleted.info.run_id)
    mlflow.set_experiment("churn")
    running = client.create_run(
        mlflow.get_experiment_by_name("churn").experiment_id, run_name="still-running"
    )
    for step in range(3):
        client.log_metric(
            running.info.run_id,
            "acc",
            0.5 + step / 10,
            step=step,
            timestamp=1_700_000_000_000 + step,
        )
    client.log_param(running.info.run_id, "epochs", "10")
    with mlflow.start_run(run_name="in-default", experiment_id="0"):
        mlflow.log_metric("x", 1.0)
    ghost = client.create_run(gone, run_name="ghost")
    client.set_terminated(ghost.info.run_id)
    client.delete_experiment(gone)
    state = {
        "baseline": baseline,
        "stronger": run2.info.run_id,
        "running": running.info.run_id,
        "deleted": deleted.info.run_id,
        "ghost": ghost.info.run_id,
        "versions": [int(v1.version), int(v2.version)],
        "X": X.tolist(),
        "predictions": model.predict(X).tolist(),
        "proba": model.predict_proba(X).tolist(),
    }
    STATE.write_text(json.dumps(state))
    return state


def more(client):
    state = json.loads(STATE.read_text())
    running = state["running"]
    for step in range(3, 6):
        client.log_metric(
            running, "acc", 0.5 + step / 10, step=step, timestamp=1_700_000_000_000 + step
        )
    client.set_tag(running, "phase", "done")
    client.log_text(running, "late", "late.txt")
    client.set_terminated(running, status="KILLED")
    mlflow.set_experiment("churn")
    with mlflow.start_run(run_name="newcomer") as run:
        mlflow.log_metric("acc", 0.9, step=0)
    client.set_registered_model_alias(MODEL, "champion", state["versions"][1])
    client.set_registered_model_tag(MODEL, "stage", "production")
    state["newcomer"] = run.info.run_id
    STATE.write_text(json.dumps(state))
    return state


if __name__ == "__main__":
    mlflow_client = MlflowClient()
    found = {"initial": initial, "more": more}[sys.argv[1]](mlflow_client)
    print(json.dumps(found))
