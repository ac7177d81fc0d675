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
    assert [(a.kind, a.severity) for a in report.anomalies] == [("empty_data", "error")]
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


# -- files in other encodings and formats --------------------------------------------------

TEXT = "name,city,amount\nJosé,Zürich,1.5\nAnn,Paris,2.0\n"


@pytest.mark.parametrize(
    ("encoding", "named"),
    [
        ("utf-16", r"UTF-16 \(little-endian\)"),
        ("utf-16-le", r"UTF-16 \(little-endian, no BOM\)"),
        ("utf-16-be", r"UTF-16 \(big-endian, no BOM\)"),
        ("utf-32", r"UTF-32 \(little-endian\)"),
    ],
)
def test_csv_in_utf16_or_utf32_is_refused_naming_the_encoding(tmp_path, encoding, named):
    path = tmp_path / "data.csv"
    path.write_bytes(TEXT.replace("é", "e").replace("ü", "u").encode(encoding))  # ASCII
    for call in (lw.profile, lw.infer_schema):
        with pytest.raises(lw.InvalidInput, match=f"is encoded as {named}.*Re-save it as UTF-8"):
            call(path)


def test_latin1_csv_is_refused_with_where_and_why(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(TEXT.encode("latin-1"))
    with pytest.raises(lw.InvalidInput, match=r"is not UTF-8 \(byte 0xe9 at offset 20\).*Latin-1"):
        lw.profile(path)


def test_utf8_with_a_bom_reads_cleanly(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(TEXT.encode("utf-8-sig"))
    schema = lw.infer_schema(path)
    assert list(schema.columns) == ["name", "city", "amount"]  # no BOM in the first name
    assert lw.profile(path).columns["city"].top_values[0][0] in ("Zürich", "Paris")


@pytest.mark.parametrize(
    ("name", "content", "text"),
    [
        (
            "notes.txt",
            b"hello world\nsome text\n",
            r"is neither Parquet.*the suffix '\.txt' is not one",
        ),
        ("data.json", b'[{"a": 1}]', r"the suffix '\.json' is not one"),
        ("data", b"a,b\n1,2\n", "it has no suffix"),
        ("data.csv.gz", b"\x1f\x8b", r"the suffix '\.gz' is not one"),
        ("empty.csv", b"", "is empty; there is no header"),
        ("binary.csv", b"a,b\n1,\x002\n", "holds NUL bytes"),
        ("book.csv", b"PK\x03\x04rest of a zip", r"ZIP archive \(an Excel \.xlsx"),
        ("table.csv", b"PAR1....", "is a Parquet file, not CSV text; name it .parquet"),
    ],
)
def test_other_files_are_refused_naming_the_format(tmp_path, name, content, text):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(lw.InvalidInput, match=text):
        lw.profile(path)


def test_tsv_and_arrow_files_are_read(tmp_path):
    UNICODE.to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    assert lw.profile(tmp_path / "d.tsv").columns["城市"].distinct == 2
    import polars as pl

    pl.from_pandas(UNICODE).write_ipc(tmp_path / "d.arrow")
    assert lw.profile(tmp_path / "d.arrow").rows == 100
