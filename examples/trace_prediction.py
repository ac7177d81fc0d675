"""Tracing a prediction: from one answered request back to everything behind it.

1. A loan-approval model is trained in a tracked run on a versioned dataset (params,
   metrics, the code version and environment are recorded), registered, and promoted to
   ``champion`` through a policy: the decision and the alias move are stored.
2. An endpoint serves ``champion`` on loopback and logs every answer; a client asks for a
   prediction and later sends the true outcome as feedback. A batch job logs predictions
   of its own, under its own ids.
3. ``lw.trace_prediction`` takes the request id and answers: the request (time, inputs,
   prediction, label), the version that made it, that version's run, params, metrics,
   git commit and training data, the alias move that made it live (who, when, why) and
   the promotion decision that let it in. The same from the command line:
   ``loopwise endpoints trace loan-approvals <request id>``.

Run it with ``python examples/trace_prediction.py`` (store in ./.loopwise) or point it
elsewhere with LOOPWISE_STORE_URL / LOOPWISE_ARTIFACTS_URL.
"""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import loopwise as lw
from loopwise.serving import EndpointConfig, ServerThread, build_endpoint, create_app

NAME = "loan-approvals"
FEATURES = ["age", "income", "debt_ratio"]
POLICY = {"task": "classification", "thresholds": {"roc_auc": 0.7, "accuracy": 0.65}}


def loans(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(21, 75, n).astype(float),
            "income": rng.lognormal(10.7, 0.45, n).round(0),
            "debt_ratio": rng.beta(2, 4, n).round(3),
        }
    )
    risk = 3.0 * frame["debt_ratio"] - (frame["income"] - 45_000) / 25_000
    frame["default"] = (risk + rng.logistic(0, 0.5, n) > 0.8).astype(int)
    return frame


def train_and_promote() -> lw.ModelVersion:
    train, holdout = loans(4000, seed=1), loans(2000, seed=2)
    with lw.start_run(experiment="loan-approvals", name="logreg-c1"):
        lw.log_dataset(train, name="loans-train")
        lw.log_params({"C": 1.0, "max_iter": 1000})
        model = LogisticRegression(C=1.0, max_iter=1000).fit(train[FEATURES], train["default"])
        lw.log_metric("train_accuracy", model.score(train[FEATURES], train["default"]))
        version = lw.log_model(model, name=NAME, input_example=train[FEATURES][:5])
    decision = lw.promote(
        version.uri, alias="champion", policy=POLICY, data=holdout, target="default"
    )
    print(decision.summary())
    if not decision.passed:
        raise SystemExit("the model did not pass the policy; nothing to serve")
    return version


def serve_one_request() -> str:
    """Serve champion, answer one applicant, send the outcome as feedback; the request id."""
    config = EndpointConfig.from_dict(
        {
            "name": NAME,
            "variants": [{"name": "champion", "model": f"models:/{NAME}@champion"}],
            "log": {"flush_interval": 0.2},
        }
    )
    endpoint = build_endpoint(config, lw.get_store()).start()
    try:
        with (
            ServerThread(create_app(endpoint)) as server,
            httpx.Client(base_url=server.url, timeout=10) as client,
        ):
            applicant = {"age": 34.0, "income": 28_000.0, "debt_ratio": 0.71}
            answer = client.post("/predict", json={"inputs": [applicant], "proba": True})
            answer.raise_for_status()
            request_id = answer.json()["request_id"]
            print(f"\n/predict answered {answer.json()['predictions']} as request {request_id}")
            outcome = {"request_id": request_id, "label": 1}  # the loan defaulted
            client.post("/feedback", json=outcome).raise_for_status()
    finally:
        endpoint.stop()  # writes what the prediction log still buffers
    return request_id


def log_batch(version: lw.ModelVersion) -> None:
    """A nightly job scored applications elsewhere and logs them under its own ids."""
    batch = loans(3, seed=3)[FEATURES]
    model = lw.load_model(version.uri)
    scored = batch.assign(
        request_id=["application-1001", "application-1002", "application-1003"],
        prediction=model.predict(batch),
    )
    lw.log_predictions(NAME, scored, model=version)


def main() -> None:
    version = train_and_promote()
    request_id = serve_one_request()
    log_batch(version)

    trace = lw.trace_prediction(NAME, request_id)
    print(f"\n{trace}")
    if trace.version is None or trace.version.id != version.id or not trace.promotions:
        raise SystemExit(f"the trace did not lead back to {version.uri}: {trace.notes}")

    # An id that is not a loopwise id carries no time: the log's keys are scanned (pass
    # start= and end= to read only the hours around it).
    batch_trace = lw.trace_prediction(NAME, "application-1002")
    print(f"\n{batch_trace}")
    print(f"\nthe same from the command line: loopwise endpoints trace {NAME} {request_id}")


if __name__ == "__main__":
    main()
