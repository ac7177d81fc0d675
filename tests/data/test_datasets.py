"""Dataset versions: content addressing, numbering, loading, lineage, on both databases
and through a server (the remote client)."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from loopwise.errors import InvalidInput, InvalidReference, NotFound

pytestmark = pytest.mark.remote_conformance


def _frame(n: int = 100, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(n),
            "amount": [i * 1.5 + shift for i in range(n)],
            "country": ["GB", "FR", "DE", "ES"] * (n // 4),
        }
    )


def test_same_data_is_the_same_version(lw):
    frame = _frame()
    first = lw.log_dataset(frame, name="loans")
    again = lw.log_dataset(pl.from_pandas(frame), name="loans")
    assert again.id == first.id
    assert first.version == 1
    assert first.uri == "datasets:/loans/1"
    changed = lw.log_dataset(_frame(shift=1.0), name="loans")
    assert changed.version == 2
    assert changed.sha256 != first.sha256
    assert [d.name for d in lw.list_datasets()] == ["loans"]
    assert lw.list_datasets()[0].versions == 2
    assert lw.list_datasets()[0].latest_rows == 100


def test_load_back_in_every_format(lw, tmp_path):
    frame = _frame()
    lw.log_dataset(frame, name="loans")
    back = lw.load_dataset("datasets:/loans/1")
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    latest = lw.load_dataset("datasets:/loans@latest", as_="polars")
    assert isinstance(latest, pl.DataFrame)
    assert latest.shape == (100, 3)
    assert isinstance(lw.load_dataset("loans", as_="arrow"), pa.Table)


def test_version_records_profile_and_types(lw):
    version = lw.log_dataset(_frame(), name="loans", description="monthly extract")
    got = lw.get_dataset_version("datasets:/loans/1")
    assert got.rows == 100
    assert got.columns == 3
    assert set(got.column_types) == {"id", "amount", "country"}
    assert got.profile.columns["amount"].max == pytest.approx(148.5)
    assert got.profile.rows == 100
    assert got.id == version.id


def test_files_and_arrow_inputs(lw, tmp_path):
    frame = _frame()
    frame.to_parquet(tmp_path / "loans.parquet", index=False)
    frame.to_csv(tmp_path / "loans.csv", index=False)
    from_parquet = lw.log_dataset(tmp_path / "loans.parquet", name="files")
    from_arrow = lw.log_dataset(pa.Table.from_pandas(frame, preserve_index=False), name="files")
    assert from_arrow.id == from_parquet.id
    assert from_parquet.source.endswith("loans.parquet")
    from_csv = lw.log_dataset(str(tmp_path / "loans.csv"), name="csv")
    assert from_csv.rows == 100


def test_logging_inside_a_run_records_lineage(lw):
    from loopwise import context
    from loopwise.data.datasets import dataset_inputs

    with lw.start_run(experiment="train") as run:
        version = lw.log_dataset(_frame(), name="loans")
    inputs = dataset_inputs(context.get_store(), run.id)
    assert [v.id for v in inputs] == [version.id]
    assert version.run_id == run.id


def test_errors(lw, tmp_path):
    with pytest.raises(InvalidInput, match="not valid"):
        lw.log_dataset(_frame(), name="bad name!")
    with pytest.raises(NotFound, match="no such file"):
        lw.log_dataset(tmp_path / "missing.parquet", name="x")
    with pytest.raises(InvalidInput, match="must be a pandas or Polars DataFrame"):
        lw.log_dataset([1, 2, 3], name="x")
    with pytest.raises(InvalidInput, match="no columns"):
        lw.log_dataset(pd.DataFrame(), name="x")
    lw.log_dataset(_frame(), name="loans")
    with pytest.raises(NotFound, match="has no version 9; its versions are 1"):
        lw.get_dataset_version("datasets:/loans/9")
    with pytest.raises(NotFound, match="No dataset named 'nope'"):
        lw.load_dataset("datasets:/nope@latest")
    with pytest.raises(InvalidReference):
        lw.load_dataset("models:/loans/1")
    with pytest.raises(InvalidInput, match="as_ must be"):
        lw.load_dataset("loans", as_="numpy")


def test_empty_frame_with_columns_is_a_version(lw):
    version = lw.log_dataset(pd.DataFrame({"a": pd.Series([], dtype="float64")}), name="empty")
    assert version.rows == 0
    assert len(lw.load_dataset("empty")) == 0


def test_log_dataset_with_a_schema_validates_first(lw):
    clean = _frame(400)
    schema = lw.infer_schema(clean)
    version = lw.log_dataset(clean, name="checked", schema=schema)
    assert version.validation["ok"] is True
    assert version.schema["columns"]
    broken = clean.copy()
    broken["country"] = ["UK"] * len(broken)
    with pytest.raises(lw.DataValidationError, match="failed validation") as caught:
        lw.log_dataset(broken, name="checked", schema=schema)
    assert not caught.value.report.ok
    from loopwise import context
    from loopwise.data.datasets import list_versions

    assert [v.version for v in list_versions(context.get_store(), "checked")] == [1]


def test_a_utf16_csv_is_refused_not_stored(lw, tmp_path):
    path = tmp_path / "export.csv"
    _frame().to_csv(path, index=False, encoding="utf-16")
    with pytest.raises(InvalidInput, match=r"is encoded as UTF-16"):
        lw.log_dataset(path, name="export")
    with pytest.raises(NotFound):
        lw.get_dataset_version("export")
    text = tmp_path / "export.txt"
    _frame().to_csv(text, index=False)
    with pytest.raises(InvalidInput, match=r"the suffix '\.txt' is not one loopwise reads"):
        lw.log_dataset(text, name="export")


def test_an_empty_batch_fails_a_schema_unless_allowed(lw):
    clean = _frame(400)
    schema = lw.infer_schema(clean)
    with pytest.raises(lw.DataValidationError, match="failed validation"):
        lw.log_dataset(clean.iloc[:0], name="batches", schema=schema)
    schema.allow_empty = True
    assert lw.log_dataset(clean.iloc[:0], name="batches", schema=schema).rows == 0


def _awkward_frame() -> pd.DataFrame:
    """Column types that break a naive transfer: zoned and naive datetimes, categoricals,
    text with NULs and astral characters, nullable integers, missing floats."""
    n = 48
    return pd.DataFrame(
        {
            "at": pd.date_range("2024-03-30", periods=n, freq="h", tz="Europe/Paris"),
            "day": pd.date_range("2024-01-01", periods=n, freq="D"),
            "kind": pd.Categorical(["a", "b", "é"] * (n // 3)),
            "text": ["nul\x00inside", "日本語", None, "🙂 emoji"] * (n // 4),
            "count": pd.array([*range(n - 1), None], dtype="Int64"),
            "score": [float("nan"), *[i / 3 for i in range(n - 1)]],
        }
    )


def test_awkward_and_wide_frames_load_back_as_stored(lw, tmp_path):
    from loopwise.config import load_settings
    from loopwise.data import datasets
    from loopwise.data.frames import to_polars
    from loopwise.store import Store

    wide = pd.DataFrame({f"c{i}": [float(i), float(i) + 0.5] for i in range(1500)})
    frames = {
        "awkward": _awkward_frame(),
        "wide": wide,
        "typed": pl.DataFrame(
            {
                "level": pl.Series(["lo", "hi"] * 5, dtype=pl.Enum(["lo", "hi"])),
                "tags": [["x", "y"], []] * 5,
                "stamp": pl.Series([1_700_000_000_000] * 10).cast(pl.Datetime("ms", "UTC")),
            }
        ),
    }
    # the same data logged to a store of its own is the same content: one version anywhere
    other = Store(
        settings=load_settings(
            store_url=f"sqlite:///{tmp_path}/other.db", artifacts_url=str(tmp_path / "other")
        )
    )
    try:
        for name, frame in frames.items():
            version = lw.log_dataset(frame, name=name)
            assert version.sha256 == datasets.log_dataset(other, frame, name).sha256, name
            expected = to_polars(frame)
            back = lw.load_dataset(f"datasets:/{name}/1", as_="polars")
            assert back.schema == expected.schema, name
            assert back.equals(expected), name
            pd.testing.assert_frame_equal(lw.load_dataset(name), expected.to_pandas())
            assert lw.load_dataset(name, as_="arrow").equals(expected.to_arrow())
    finally:
        other.db.engine.dispose()


def test_the_record_answered_is_the_stored_one(lw, monkeypatch):
    from loopwise import context
    from loopwise.data import datasets

    monkeypatch.setattr("loopwise.client.datasets.LIST_PAGE", 1)  # pages, remotely
    frame = _frame(400)
    logged = lw.log_dataset(frame, name="checked", schema=lw.infer_schema(frame))
    lw.log_dataset(_frame(8), name="other", description="eight rows")
    stored = datasets.get_dataset_version(context.get_store(), "datasets:/checked/1")
    assert logged == stored
    assert lw.get_dataset_version("checked") == stored
    assert logged.created_at.tzinfo is not None
    assert lw.list_datasets() == datasets.list_datasets(context.get_store())
    assert [d.description for d in lw.list_datasets()] == [None, "eight rows"]
    with pytest.raises(NotFound, match="no alias 'champion'"):
        lw.get_dataset_version("datasets:/checked@champion")
