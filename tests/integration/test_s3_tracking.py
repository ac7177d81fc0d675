"""Tracking with artifacts in an S3-compatible store (moto's server on 127.0.0.1)."""

from __future__ import annotations

import json

import loopwise
from loopwise import context
from tests.s3_server import s3_endpoint  # noqa: F401  (fixture)


def test_tracking_with_s3_artifacts(s3_endpoint, store_url, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPWISE_S3_ENDPOINT_URL", s3_endpoint["endpoint_url"])
    loopwise.configure(
        store_url=store_url, artifacts_url=f"s3://{s3_endpoint['bucket']}/lw-{tmp_path.name}"
    )
    try:
        model = tmp_path / "model.bin"
        model.write_bytes(b"weights" * 1000)
        with loopwise.start_run(experiment="s3") as run:
            loopwise.log_artifact(model)
            loopwise.log_dict({"C": 1}, "params.json")
            loopwise.log_metric("auc", 0.9)
        paths = [a.path for a in loopwise.list_artifacts(run.id)]
        assert paths == ["model.bin", "params.json"]
        out = loopwise.download_artifacts(run.id, dst=tmp_path / "out")
        assert (out / "model.bin").read_bytes() == b"weights" * 1000
        assert json.loads((out / "params.json").read_text()) == {"C": 1}
        store = context.get_store()
        assert store.artifacts.url.startswith("s3://")
        sha = loopwise.list_artifacts(run.id)[0].sha256
        assert store.artifacts.has_blob(sha)
    finally:
        context.reset()
