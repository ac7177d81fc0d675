"""The Python tracking API through a `loopwise server`: the remote client.

Starts `loopwise server` on the store (LOOPWISE_STORE_URL / LOOPWISE_ARTIFACTS_URL, or
./.loopwise), then points this process at it with ``lw.configure(tracking_url=...)`` (the
same as LOOPWISE_TRACKING_URL=http://host:5000; a token goes in LOOPWISE_TRACKING_TOKEN).
From there the quickstart's calls are unchanged: runs, params, per-epoch metrics (sent in
batches by a background thread, not one request per point), tags, artifacts, search with
the filter language, a metric's history, downloading an artifact. Then the rest of the
lifecycle, still through the server: a dataset version (uploaded as Parquet), a model
trained on it (packaged here, uploaded as one archive), a promotion decided by the server
with a policy, the champion loaded back by its alias, and a batch of predictions logged
and read back with feedback. The server's refusals come back as the same errors the local
API raises.
"""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import loopwise as lw


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    """`loopwise server` in its own process, waited for until /health answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopwise", "server", "--port", str(port)],
        stdout=subprocess.DEVNULL,  # the access log
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the server did not start: {proc.stderr.read().decode()[-2000:]}")


def train(lr: float, epochs: int = 200) -> None:
    """A toy training loop: one run with its params, a loss per epoch and an artifact."""
    with lw.start_run(experiment="remote-demo", tags={"team": "risk"}):
        lw.log_params({"lr": lr, "epochs": epochs})
        loss = 1.0
        for _ in range(epochs):
            loss *= 1 - lr
            lw.log_metric("loss", loss)
        lw.log_metric("auc", round(0.5 + 0.4 * (1 - math.exp(-lr * 20)), 4))
        lw.log_dict({"lr": lr, "final_loss": loss}, "summary.json")


def model_lifecycle() -> None:
    """Data, a model, a gated promotion and a prediction log, all through the server."""
    rng = np.random.default_rng(7)
    loans = pd.DataFrame({"income": rng.normal(50, 15, 600), "debt": rng.normal(20, 8, 600)})
    loans["y"] = (loans["income"] - 2 * loans["debt"] + rng.normal(0, 5, 600) > 10).astype(int)
    train, holdout = loans.iloc[:400], loans.iloc[400:]
    with lw.start_run(experiment="remote-demo", name="credit"):
        data = lw.log_dataset(train, name="loans-train")
        lw.log_dataset(holdout, name="loans-holdout")
        model = LogisticRegression().fit(train[["income", "debt"]], train["y"])
        version = lw.log_model(model, "remote-credit", input_example=train[["income", "debt"]][:5])
    print(f"{data.uri}: {data.rows} rows; {version.uri} ({version.flavor})")
    policy = {"task": "classification", "thresholds": {"accuracy": 0.8}}
    decision = lw.promote(
        version.uri, "champion", policy=policy, data="datasets:/loans-holdout/1", target="y"
    )
    print(f"promotion to champion: {'passed' if decision.passed else 'refused'}")
    champion = lw.load_model("models:/remote-credit@champion")
    features = holdout[["income", "debt"]]
    scored = features.assign(prediction=champion.predict(features))
    logged = lw.log_predictions("remote-credit", scored, model=version)
    labels = pd.DataFrame(
        {"request_id": [logged.request_id] * len(holdout), "row": range(len(holdout))}
    ).assign(label=holdout["y"].to_numpy())
    lw.log_feedback("remote-credit", labels)
    read = lw.read_predictions("remote-credit")
    accuracy = float((read["prediction"] == read["label"]).mean())
    print(f"prediction log: {len(read)} rows, accuracy from feedback {accuracy:.3f}")
    lineage = lw.model_lineage(version.uri)
    print(f"lineage: {version.uri} <- run {lineage.run.name} <- {lineage.datasets[0].uri}")


def main() -> None:
    port = free_port()
    server = start_server(port)
    url = f"http://127.0.0.1:{port}"
    try:
        lw.configure(tracking_url=url)
        print(f"tracking through {url}")
        for lr in (0.01, 0.05, 0.1):
            train(lr)

        best = lw.search_runs(
            experiment="remote-demo", filter="metrics.auc > 0.6", order_by="metrics.auc DESC"
        )
        print(best[["run_id", "params.lr", "metrics.auc", "metrics.loss"]].to_string(index=False))
        top = best["run_id"].iloc[0]
        history = lw.get_metric_history(top, "loss")
        print(f"best run {top}: {len(history)} loss points, last {history['value'].iloc[-1]:.3g}")
        with tempfile.TemporaryDirectory() as folder:
            path = lw.download_artifacts(top, "summary.json", folder)
            print("summary.json:", Path(path).read_text().replace("\n", " "))

        model_lifecycle()

        try:
            lw.get_run("no-such-run")
        except lw.NotFound as e:
            print(f"a refusal comes back as the local error: NotFound: {str(e)[:60]}...")
        lw.configure()  # back to the local store (sends what is buffered first)
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
