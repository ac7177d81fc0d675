"""The examples run end to end, each on a fresh store of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs(script, store_url, tmp_path):
    env = dict(os.environ)
    env["LOOPWISE_STORE_URL"] = store_url
    env["LOOPWISE_ARTIFACTS_URL"] = str(tmp_path / "artifacts")
    env["LOOPWISE_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    if script == "quickstart.py":
        assert "best run" in proc.stdout
        assert "top runs by AUC" in proc.stdout


def test_readme_tracking_example_runs(lw, tmp_path):
    readme = (EXAMPLES.parent / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    best = namespace["best"]
    assert len(best) == 1
    assert best["metrics.auc"].iloc[0] == 0.91
