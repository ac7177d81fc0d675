"""The REST API of `loopwise server`, from any language: here with httpx.

Logs two runs and a model with the Python API, starts `loopwise server` on the same store
(LOOPWISE_STORE_URL / LOOPWISE_ARTIFACTS_URL, or ./.loopwise), then over HTTP: logs a run
with one batch request, searches runs with the filter language, reads a long metric
downsampled by the server (min, max and last per bucket: the spike survives), moves an
alias and reads its history. Every mistake is a 4xx with {"error": {"code", "message"}}.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import numpy as np

import loopwise as lw


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    """`loopwise server` in its own process, waited for until /health answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopwise", "server", "--port", str(port)],
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


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    for c, auc in ((0.1, 0.81), (1.0, 0.87)):
        with lw.start_run(experiment="rest-demo"):
            lw.log_params({"C": c})
            lw.log_metric("auc", auc)
    x = np.arange(20.0).reshape(-1, 1)
    with lw.start_run(experiment="rest-demo"):
        lw.log_model(LogisticRegression().fit(x, np.arange(20) % 2), "rest-model")
        lw.log_model(LogisticRegression(C=0.5).fit(x, np.arange(20) % 2), "rest-model")
    lw.flush()

    port = free_port()
    server = start_server(port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) as api:
            run = api.post("/runs", json={"experiment": "rest-demo", "name": "from-http"}).json()
            curve = [{"key": "loss", "value": 1 / (i + 1), "step": i} for i in range(5000)]
            curve[2500]["value"] = 9.0  # a spike the downsampled curve must keep
            batch = {"params": {"C": "10"}, "metrics": [*curve, {"key": "auc", "value": 0.9}]}
            api.post(f"/runs/{run['id']}/log-batch", json=batch).raise_for_status()
            api.patch(f"/runs/{run['id']}", json={"status": "FINISHED"}).raise_for_status()

            found = api.post(
                "/runs/search",
                json={
                    "experiments": ["rest-demo"],
                    "filter": "metrics.auc > 0.85",
                    "order_by": ["metrics.auc DESC"],
                    "max_results": 10,
                },
            ).json()
            print(
                "runs with auc > 0.85:", [(r["name"], r["metrics"]["auc"]) for r in found["runs"]]
            )

            history = api.get(
                f"/runs/{run['id']}/metrics/loss/history", params={"max_points": 200}
            ).json()
            print(
                f"loss: {history['total_points']} points sent as {len(history['value'])}, "
                f"max kept {max(history['value'])}"
            )
            assert max(history["value"]) == 9.0, "the spike was lost"

            api.put("/models/rest-model/aliases/champion", json={"version": 2}).raise_for_status()
            moves = api.get("/models/rest-model/alias-history").json()
            print("alias moves of rest-model:", len(moves["moves"]))

            wrong = api.get("/models/no-such-model")
            print("a mistake:", wrong.status_code, wrong.json()["error"]["code"])
            assert wrong.status_code == 404
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
