"""The Python tracking API through a `loopwise server`: the remote client.

Starts `loopwise server` on the store (LOOPWISE_STORE_URL / LOOPWISE_ARTIFACTS_URL, or
./.loopwise), then points this process at it with ``lw.configure(tracking_url=...)`` (the
same as LOOPWISE_TRACKING_URL=http://host:5000; a token goes in LOOPWISE_TRACKING_TOKEN).
From there the quickstart's calls are unchanged: runs, params, per-epoch metrics (sent in
batches by a background thread, not one request per point), tags, artifacts, search with
the filter language, a metric's history, downloading an artifact. The server's refusals
come back as the same errors the local API raises.
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
