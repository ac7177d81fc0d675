"""Unchanged MLflow code against `loopwise server`: the whole migration is the tracking URI.

Starts `loopwise server` on the store (LOOPWISE_STORE_URL / LOOPWISE_ARTIFACTS_URL, or
./.loopwise), then runs an ordinary MLflow training script -- ``mlflow.set_experiment``,
``start_run``, params, metrics, a dataset input, ``mlflow.sklearn.log_model``,
``register_model``, an alias, model tags -- in a Python that has MLflow, with
``MLFLOW_TRACKING_URI`` pointing at the server. Then this process reads the same records
through loopwise's own API: the run in ``lw.search_runs``, the registered version (flavor
``mlflow``) loaded by its alias and predicting what MLflow's model predicted, and its
lineage back to the run.

The MLflow side runs in the first of: ``$MLFLOW_PYTHON``, this Python when it can import
mlflow, or ``.venv-mlflow/bin/python`` (which ``make test`` creates).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

import loopwise as lw

MLFLOW_SCRIPT = """
import json, sys
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(7)
X = pd.DataFrame({"income": rng.normal(50, 15, 400), "debt": rng.normal(20, 8, 400)})
y = (X["income"] - 2 * X["debt"] + rng.normal(0, 5, 400) > 10).astype(int)
mlflow.set_experiment("mlflow-migration")
with mlflow.start_run(run_name="logreg") as run:
    mlflow.log_params({"C": 0.5, "solver": "lbfgs"})
    mlflow.log_input(mlflow.data.from_pandas(X, name="loans"), context="training")
    model = LogisticRegression(C=0.5).fit(X, y)
    for step, share in enumerate((0.25, 0.5, 1.0)):
        part = int(len(X) * share)
        mlflow.log_metric("accuracy", model.score(X[:part], y[:part]), step=step)
    info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(3))
version = mlflow.register_model(info.model_uri, "mlflow-credit")
client = MlflowClient()
client.set_registered_model_alias("mlflow-credit", "champion", version.version)
client.set_registered_model_tag("mlflow-credit", "team", "risk")
X.head(10).to_json(sys.argv[1], orient="records")
print(json.dumps({"run_id": run.info.run_id, "version": version.version,
                  "predictions": model.predict(X.head(10)).tolist()}))
"""


def mlflow_python() -> str:
    """A Python that can import mlflow (see the module doc)."""
    if os.environ.get("MLFLOW_PYTHON"):
        return os.environ["MLFLOW_PYTHON"]
    probe = subprocess.run([sys.executable, "-c", "import mlflow"], capture_output=True)
    if probe.returncode == 0:
        return sys.executable
    local = Path(__file__).resolve().parents[1] / ".venv-mlflow" / "bin" / "python"
    if local.exists():
        return str(local)
    raise SystemExit(
        "No Python with MLflow found: set MLFLOW_PYTHON to one, `pip install mlflow-skinny "
        "scikit-learn pandas` here, or run `make test` once (it creates .venv-mlflow)."
    )


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


def main() -> None:
    python = mlflow_python()
    port = free_port()
    server = start_server(port)
    try:
        with tempfile.TemporaryDirectory() as folder:
            script, rows = Path(folder) / "train_with_mlflow.py", Path(folder) / "rows.json"
            script.write_text(MLFLOW_SCRIPT)
            env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": folder,
                "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",  # the whole migration
                "MLFLOW_ENABLE_TELEMETRY": "false",
                "DO_NOT_TRACK": "true",
            }
            done = subprocess.run(
                [python, str(script), str(rows)],
                env=env,
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                raise SystemExit(f"the MLflow script failed:\n{done.stderr[-4000:]}")
            logged = json.loads(done.stdout.strip().splitlines()[-1])
            frame = pd.read_json(rows, orient="records")
        print(f"MLflow logged run {logged['run_id']} and version {logged['version']}")

        # The same records, through loopwise's own API on the same store.
        found = lw.search_runs(experiment="mlflow-migration", order_by=["metrics.accuracy DESC"])
        row = found.iloc[0]
        print(
            f"lw.search_runs: {row['name']}  C={row['params.C']}  "
            f"accuracy={row['metrics.accuracy']:.3f}"
        )
        champion = lw.get_model_version("models:/mlflow-credit@champion")
        (model,) = [m for m in lw.list_models() if m.name == "mlflow-credit"]
        print(f"{champion.uri} flavor={champion.flavor} tags={model.tags}")
        predicted = lw.load_model("models:/mlflow-credit@champion").predict(frame)
        same = np.array_equal(np.asarray(predicted), np.asarray(logged["predictions"]))
        print(f"predictions equal to MLflow's own model: {same}")
        lineage = lw.model_lineage(champion.uri)
        print(f"lineage: {champion.uri} <- run {lineage.run.name} (params {lineage.run.params})")
        if not same:
            raise SystemExit("the loaded version predicts differently from MLflow's model")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
