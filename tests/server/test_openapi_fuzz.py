"""schemathesis against the server's /api/v1/openapi.json: no request it generates, valid
or not, may be answered with a 5xx. The store holds a run with metrics and an artifact, a
model with an alias and a dataset, so generated ids sometimes hit real things.
``LOOPWISE_SCHEMATHESIS_EXAMPLES`` and ``LOOPWISE_SCHEMATHESIS_SEED`` widen a run locally."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from loopwise import context
from loopwise.server.app import create_server_app
from loopwise.serving.server import ServerThread

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = os.environ.get("LOOPWISE_SCHEMATHESIS_EXAMPLES", "8")
SEED = os.environ.get("LOOPWISE_SCHEMATHESIS_SEED", "20261207")


def seed_store(lw) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40) % 2})
    with lw.start_run(experiment="fuzz", name="seeded"):
        lw.log_params({"C": 1.0})
        lw.log_metrics({"auc": 0.9, "loss": float("nan")})
        lw.log_text("hello", "notes/readme.txt")
        lw.log_dataset(frame, "fuzz-data")
        lw.log_model(LogisticRegression().fit(frame[["x"]], frame["y"]), "fuzz-model")
    lw.set_alias("fuzz-model", "champion", 1)
    lw.flush()


def test_no_generated_request_gets_a_server_error(lw, tmp_path):
    seed_store(lw)
    with ServerThread(create_server_app(context.get_store())) as server:
        command = [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{server.url}/api/v1/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            EXAMPLES,
            "--seed",
            SEED,
            "--no-color",
        ]
        hooks = {"SCHEMATHESIS_HOOKS": "tests.server.schemathesis_hooks"}
        result = subprocess.run(
            command,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, **hooks, "PYTHONPATH": str(ROOT)},
        )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    tested = re.search(r"Tested: (\d+)", report)
    assert tested is not None, report[-3000:]
    assert int(tested.group(1)) >= 40, report[-3000:]  # every operation of the document ran
