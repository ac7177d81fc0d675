"""Awkward inputs across the public data API: clear LoopwiseErrors, never a library traceback."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import loopwise as lw

EMPTY = pd.DataFrame({"a": pd.Series([], dtype="float64"), "b": pd.Series([], dtype="object")})
ALL_NULL = pd.DataFrame({"x": [None] * 50, "y": np.arange(50.0)})
MIXED = pd.DataFrame({"m": [1, "two", 3.0, None] * 25, "n": np.arange(100)})
UNICODE = pd.DataFrame({"température": np.linspace(0, 1, 100), "城市": ["北京", "上海"] * 50})


@pytest.mark.parametrize("frame", [ALL_NULL, MIXED, UNICODE], ids=["all_null", "mixed", "unicode"])
def test_profile_schema_validate_drift_quality(frame):
    profile = lw.profile(frame)
    json.dumps(profile.to_dict(), allow_nan=False)
    schema = lw.infer_schema(frame)
    report = lw.validate(frame, schema)
    assert report.ok, report.summary()
    drift = lw.detect_drift(frame, frame)
    assert not drift.drifted
    quality = lw.data_quality(frame)
    json.dumps(quality.to_dict(), allow_nan=False)


def test_empty_frames():
    profile = lw.profile(EMPTY)
    assert profile.rows == 0
    schema = lw.infer_schema(UNICODE)
    report = lw.validate(UNICODE.iloc[:0], schema)
    assert any(a.kind == "empty_data" for a in report.anomalies)
    with pytest.raises(lw.InvalidInput, match=r"empty|no rows"):
        lw.detect_drift(UNICODE, UNICODE.iloc[:0])
    with pytest.raises(lw.InvalidInput):
        lw.data_quality(EMPTY)


def test_missing_files_and_bad_inputs(tmp_path):
    for call in (
        lambda: lw.profile(tmp_path / "missing.parquet"),
        lambda: lw.validate(tmp_path / "missing.csv", lw.infer_schema(UNICODE)),
        lambda: lw.detect_drift(tmp_path / "a.parquet", UNICODE),
    ):
        with pytest.raises(lw.NotFound, match="no such file"):
            call()
    with pytest.raises(lw.InvalidInput, match="must be a pandas or Polars"):
        lw.profile({"a": [1, 2]})
    with pytest.raises(lw.InvalidInput, match="duplicate column names"):
        lw.profile(pd.DataFrame([[1, 2]], columns=["a", "a"]))
