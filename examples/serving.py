"""Serving: an A/B endpoint on loopback, a hot swap under load, feedback, the prediction log.

1. Two credit-risk models are registered: version 1 is ``champion``, version 2
   ``challenger``. An endpoint splits traffic 80/20 between them (sticky by user), with
   version 1 also running as a shadow, and logs every prediction.
2. A load test sends traffic for a few seconds and moves ``champion`` to a third version
   in the middle: the report shows the versions that answered and zero failed requests.
3. Users send requests with a routing key; the split counts are printed, then the true
   labels arrive as feedback and the live accuracy per variant is read back from the
   prediction log.

Run it with ``make demo`` or ``python examples/serving.py``.
"""

from __future__ import annotations

from collections import Counter

import httpx
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

import loopwise as lw
from loopwise.loadtest.generator import run_loadtest
from loopwise.serving import EndpointConfig, ServerThread, build_endpoint, create_app

FEATURES = ["age", "income", "debt_ratio"]
ENDPOINT = "credit-risk-live"


def applicants(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.lognormal(10.5, 0.5, n),
            "debt_ratio": rng.uniform(0, 1, n),
        }
    )
    risk = 2.5 * X["debt_ratio"] - (X["income"] / 40_000) + 0.02 * (45 - X["age"]).abs() / 10
    y = (risk + rng.normal(0, 0.4, n) > 0.6).astype(int).to_numpy()
    return X, y


def register_models() -> None:
    X, y = applicants(3000, seed=1)
    with lw.start_run(experiment="serving-demo", name="credit-risk-models"):
        lw.log_model(LogisticRegression(max_iter=500).fit(X, y), ENDPOINT, input_example=X[:5])
        lw.log_model(
            HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(X, y),
            ENDPOINT,
            input_example=X[:5],
        )
        lw.log_model(
            HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(X, y),
            ENDPOINT,
            input_example=X[:5],
        )
    lw.set_alias(ENDPOINT, "champion", 1, reason="serving demo")
    lw.set_alias(ENDPOINT, "challenger", 2, reason="serving demo")


def main() -> None:
    register_models()
    config = EndpointConfig.from_dict(
        {
            "name": ENDPOINT,
            "variants": [
                {"name": "champion", "model": f"models:/{ENDPOINT}@champion", "weight": 80},
                {"name": "challenger", "model": f"models:/{ENDPOINT}@challenger", "weight": 20},
            ],
            "shadows": [{"name": "v1-shadow", "model": f"models:/{ENDPOINT}/1"}],
            "poll_interval": 0.5,
        }
    )
    endpoint = build_endpoint(config, lw.get_store()).start()
    with ServerThread(create_app(endpoint)) as server:
        print(f"serving {ENDPOINT} on {server.url} (loopback only)")

        report = run_loadtest(
            server.url, store=lw.get_store(), concurrency=4, duration=4.0, swap_to=3
        )
        swap = report.swap
        print(
            f"load test: {report.requests} requests, {report.throughput_rps:.0f} req/s, "
            f"p50 {report.p50_ms:.1f} ms, p99 {report.p99_ms:.1f} ms, "
            f"failed {report.failed}"
        )
        print(f"  versions that answered: {dict(sorted(report.models.items()))}")
        if swap is not None:
            print(
                f"  champion moved {swap.from_version} -> {swap.to_version}; the new version "
                f"answered {swap.pickup_s:.2f} s later; longest gap between answers "
                f"{report.longest_gap_ms:.1f} ms"
            )
        if report.failed:
            raise SystemExit(f"{report.failed} requests failed across the swap: {report.errors}")

        X, y = applicants(400, seed=7)
        answers = []
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i, row in enumerate(X.to_dict("records")):
                body = {"inputs": [row], "routing_key": f"user-{i % 100}"}
                answers.append(client.post("/predict", json=body).json())
            split = Counter(a["variant"] for a in answers)
            print(f"A/B split over {len(answers)} requests from 100 users: {dict(split)}")
            for answer, label in zip(answers, y, strict=True):
                client.post(
                    "/feedback", json={"request_id": answer["request_id"], "label": int(label)}
                ).raise_for_status()
        print(f"feedback sent for {len(answers)} requests")
    endpoint.stop()  # writes what the prediction log still buffers

    logged = lw.read_predictions(ENDPOINT)
    live = logged[~logged["shadow"] & logged["label"].notna()]
    accuracy = (
        live.assign(correct=live["prediction"] == live["label"])
        .groupby("variant")["correct"]
        .agg(["size", "mean"])
        .rename(columns={"size": "labelled", "mean": "accuracy"})
    )
    print(f"prediction log: {len(logged)} rows, {int(logged['shadow'].sum())} from the shadow")
    print("live accuracy per variant, from feedback:")
    print(accuracy.round(3).to_string())


if __name__ == "__main__":
    main()
