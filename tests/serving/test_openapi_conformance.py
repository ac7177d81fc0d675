"""The prediction app's OpenAPI document matches the server: schemathesis, with every check
(``--checks all``), against a live app over HTTP, finds no failure.

Schema-valid bodies must be answered (2xx, or 404 for a request id never answered), bodies
that break the schema must be refused with a 4xx, every status and body must be the
documented one, and nothing may be a 500. The generator is told, through
``schemathesis_hooks.py``, the one rule JSON Schema cannot say (columns of one length).
``LOOPWISE_SCHEMATHESIS_EXAMPLES`` and ``LOOPWISE_SCHEMATHESIS_SEED`` widen a run locally.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopwise import context
from loopwise.serving.app import create_app
from loopwise.serving.endpoint_config import EndpointConfig
from loopwise.serving.server import ServerThread, build_endpoint

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = os.environ.get("LOOPWISE_SCHEMATHESIS_EXAMPLES", "25")
SEED = os.environ.get("LOOPWISE_SCHEMATHESIS_SEED", "20261207")


def register(lw) -> None:
    """A classifier that takes missing values (the schema says null is a missing value)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"income": rng.normal(size=300), "age": rng.integers(18, 90, size=300)})
    y = (X["income"] > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=20).fit(X, y)
    lw.log_model(model, "scorer", input_example=X[:5])
    lw.set_alias("scorer", "champion", 1)


@pytest.fixture(params=["model", "skeleton"])
def served(request, lw) -> Iterator[str]:
    if request.param == "model":
        register(lw)
        document = {
            "name": "scorer",
            "variants": [{"name": "main", "model": "models:/scorer@champion"}],
        }
    else:
        document = {"name": "skeleton", "fallback": 0}
    document |= {"docs": "public", "log": {"flush_interval": 0.2}}
    endpoint = build_endpoint(EndpointConfig.from_dict(document), context.get_store()).start()
    try:
        with ServerThread(create_app(endpoint)) as server:
            yield server.url
    finally:
        endpoint.stop()


def test_schemathesis_finds_no_failure_with_every_check(served, tmp_path):
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{served}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--output-sanitize",
        "false",
        "--no-color",
    ]
    env = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.serving.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    assert "Tested: 6" in report, report[-3000:]  # every operation of the document was run
