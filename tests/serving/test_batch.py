"""Batch scoring of files: output equal to predicting the whole frame, chunking, CSV, proba,
bounded memory, atomic output, every refusal, S3, and the Ray executor's parity.

Models are registered on SQLite and PostgreSQL (the ``lw`` fixture); the Ray tests share
one local Ray session for the module.
"""

from __future__ import annotations

import math
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopwise.batch.api import score_file
from loopwise.batch.scoring import rebatch
from loopwise.errors import ConfigurationError, Conflict, InvalidInput, NotFound
from loopwise.registry.packaging import LoadedModel
from tests.s3_server import s3_endpoint  # noqa: F401  (fixture)

FEATURES = ["income", "debt", "age"]
URI = "models:/credit-risk@champion"


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)
    X["id"] = np.arange(n)
    X["region"] = rng.choice(["north", "south"], n)
    return X


def register(lw, *, labels: tuple = (0, 1)) -> LoadedModel:
    """credit-risk v1, a logistic regression on FEATURES, behind alias champion."""
    from sklearn.linear_model import LogisticRegression

    X = frame(300, seed=1)[FEATURES]
    y = np.where(X["income"] - X["debt"] > 0, labels[1], labels[0])
    lw.log_model(LogisticRegression().fit(X, y), "credit-risk", input_example=X[:5])
    lw.set_alias("credit-risk", "champion", 1)
    return lw.load_model(URI)


def write_parquet(path: Path, data: pd.DataFrame, row_group_size: int = 3_000) -> Path:
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), path, row_group_size)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


# -- what the output holds -------------------------------------------------------------------


def test_output_equals_predict_on_the_whole_frame(lw, tmp_path):
    model = register(lw)
    data = frame(10_000)
    src = write_parquet(tmp_path / "in.parquet", data)
    before = datetime.now(UTC)
    summary = score_file(URI, src, tmp_path / "out.parquet", chunk_rows=2_500)
    out = pd.read_parquet(tmp_path / "out.parquet")

    assert list(out.columns) == [
        *data.columns,
        "prediction",
        "model_version",
        "model_version_id",
        "scored_at",
    ]
    pd.testing.assert_frame_equal(out[list(data.columns)], data, check_dtype=False)
    assert (out["prediction"].to_numpy() == model.predict(data[FEATURES])).all()
    version = lw.get_model_version(URI)
    assert set(out["model_version"]) == {"credit-risk/1"}
    assert set(out["model_version_id"]) == {version.id}
    assert out["scored_at"].nunique() == 1
    assert before <= out["scored_at"].iloc[0].to_pydatetime() <= datetime.now(UTC)
    assert str(out["scored_at"].dt.tz) == "UTC"
    assert (summary.rows, summary.chunks, summary.model) == (10_000, 4, "credit-risk/1")
    assert summary.dest == str(tmp_path / "out.parquet")
    assert summary.rows_per_s > 0
    assert "10,000 rows with credit-risk/1" in summary.summary()
    assert leftovers(tmp_path) == []


def test_scored_chunks_feed_the_prediction_log(lw, tmp_path):
    model = register(lw)
    data = frame(5_000)
    src = write_parquet(tmp_path / "in.parquet", data)
    score_file(URI, src, tmp_path / "out.parquet", chunk_rows=2_000, log_endpoint="nightly")
    logged = lw.read_predictions("nightly")
    assert len(logged) == 5_000
    assert set(logged["variant"]) == {"batch"}
    assert set(logged["model"]) == {"credit-risk/1"}
    assert sorted(c for c in logged.columns if c.startswith("input.")) == sorted(
        f"input.{f}" for f in FEATURES
    )
    ordered = logged.sort_values(["input.income", "input.debt"]).reset_index(drop=True)
    expected = data.assign(prediction=model.predict(data[FEATURES]))
    expected = expected.sort_values(["income", "debt"]).reset_index(drop=True)
    assert (ordered["prediction"].to_numpy() == expected["prediction"].to_numpy()).all()
    with pytest.raises(InvalidInput, match="endpoint name"):
        score_file(URI, src, tmp_path / "again.parquet", log_endpoint="Not An Endpoint")


@pytest.mark.parametrize("chunk_rows", [1_000, 3_000, 7_000, 50_000])
def test_chunk_boundaries_do_not_change_the_output(lw, tmp_path, chunk_rows):
    """Chunks smaller than a row group, equal to one, spanning several, larger than the file."""
    model = register(lw)
    data = frame(10_000)
    src = write_parquet(tmp_path / "in.parquet", data, row_group_size=3_000)
    summary = score_file(URI, src, tmp_path / "out.parquet", chunk_rows=chunk_rows, proba=True)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert summary.chunks == math.ceil(10_000 / chunk_rows)
    assert out["id"].tolist() == list(range(10_000))
    assert (out["prediction"].to_numpy() == model.predict(data[FEATURES])).all()
    np.testing.assert_allclose(
        out[["proba_0", "proba_1"]].to_numpy(), model.predict_proba(data[FEATURES]), rtol=1e-12
    )


def test_csv_in_and_out(lw, tmp_path):
    model = register(lw)
    data = frame(5_000)
    data.to_csv(tmp_path / "in.csv", index=False)
    seen = []
    summary = score_file(
        URI, tmp_path / "in.csv", tmp_path / "out.parquet", chunk_rows=1_200, progress=seen.append
    )
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert summary.chunks == 5
    assert len(out) == 5_000
    assert (out["prediction"].to_numpy() == model.predict(data[FEATURES])).all()
    assert out["region"].tolist() == data["region"].tolist()
    # CSV has no row count up front: progress follows the bytes read
    assert seen[0].total_rows is None
    assert seen[-1].total_bytes == (tmp_path / "in.csv").stat().st_size
    assert [p.rows for p in seen] == [0, 1_200, 2_400, 3_600, 4_800, 5_000]

    score_file(URI, tmp_path / "in.csv", tmp_path / "out.csv", proba=True)
    written = pd.read_csv(tmp_path / "out.csv")
    assert (written["prediction"].to_numpy() == out["prediction"].to_numpy()).all()
    assert {"proba_0", "proba_1", "model_version", "scored_at"} <= set(written.columns)


def test_proba_columns_are_named_by_class(lw, tmp_path):
    model = register(lw, labels=("bad", "good"))
    data = frame(2_000)
    src = write_parquet(tmp_path / "in.parquet", data)
    score_file(URI, src, tmp_path / "out.parquet", proba=True, chunk_rows=700)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns[5:8]) == ["prediction", "proba_bad", "proba_good"]
    assert (out["prediction"].to_numpy() == model.predict(data[FEATURES])).all()
    np.testing.assert_allclose(
        out[["proba_bad", "proba_good"]].to_numpy(), model.predict_proba(data[FEATURES])
    )


def test_empty_source_gives_an_empty_file(lw, tmp_path):
    register(lw)
    src = write_parquet(tmp_path / "in.parquet", frame(0))
    summary = score_file(URI, src, tmp_path / "out.parquet")
    out = pq.read_table(tmp_path / "out.parquet")
    assert (summary.rows, summary.chunks, out.num_rows) == (0, 0, 0)
    assert out.schema.names[-4:] == ["prediction", "model_version", "model_version_id", "scored_at"]


# -- bounded memory and atomic output --------------------------------------------------------


def test_memory_follows_the_chunk_and_the_output_grows_incrementally(lw, tmp_path, monkeypatch):
    register(lw)
    src = write_parquet(tmp_path / "in.parquet", frame(20_000), row_group_size=20_000)
    dest = tmp_path / "out.parquet"
    sizes: list[int] = []
    original = LoadedModel.predict

    def spy(self, data, **kwargs):
        sizes.append(len(data))
        return original(self, data, **kwargs)

    monkeypatch.setattr(LoadedModel, "predict", spy)
    partial_sizes: list[int] = []

    def watch(step):
        assert not dest.exists()  # nothing at dest until the job is done
        partial_sizes.extend(p.stat().st_size for p in tmp_path.glob(".out.parquet.partial-*"))

    summary = score_file(URI, src, dest, chunk_rows=1_500, progress=watch)
    assert summary.chunks == 14
    assert max(sizes) == 1_500
    assert sum(sizes) == 20_000
    # each chunk went to the file as it was scored: one row group per chunk
    assert pq.ParquetFile(dest).metadata.num_row_groups == 14
    assert len(partial_sizes) >= 10
    assert partial_sizes[-1] > partial_sizes[1] > 0


def test_a_failure_midway_leaves_no_file(lw, tmp_path):
    register(lw)
    src = write_parquet(tmp_path / "in.parquet", frame(10_000))

    def crash(step):
        if step.chunks == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_file(URI, src, tmp_path / "out.parquet", chunk_rows=1_000, progress=crash)
    assert not (tmp_path / "out.parquet").exists()
    assert leftovers(tmp_path) == []


def test_a_bad_value_midway_names_the_rows_and_leaves_no_file(lw, tmp_path):
    register(lw)
    data = frame(3_000).astype({"debt": object})
    data.loc[2_500, "debt"] = "lots"
    data.to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(InvalidInput, match=r"'debt'") as info:
        score_file(URI, tmp_path / "in.csv", tmp_path / "out.parquet", chunk_rows=1_000)
    assert "in.csv" in str(info.value)
    assert not (tmp_path / "out.parquet").exists()
    assert leftovers(tmp_path) == []


def test_an_existing_output_is_replaced_only_with_overwrite(lw, tmp_path):
    register(lw)
    src = write_parquet(tmp_path / "in.parquet", frame(100))
    dest = tmp_path / "out.parquet"
    dest.write_bytes(b"keep me")
    with pytest.raises(Conflict, match="overwrite"):
        score_file(URI, src, dest)
    assert dest.read_bytes() == b"keep me"
    score_file(URI, src, dest, overwrite=True)
    assert pq.read_table(dest).num_rows == 100


# -- refusals --------------------------------------------------------------------------------


def test_a_missing_column_is_named_before_any_output(lw, tmp_path):
    register(lw)
    src = write_parquet(tmp_path / "in.parquet", frame(100).drop(columns="debt"))
    with pytest.raises(InvalidInput, match=r"lacks the column\(s\) 'debt'"):
        score_file(URI, src, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
    assert leftovers(tmp_path) == []


def test_refusals(lw, tmp_path):
    register(lw)
    src = write_parquet(tmp_path / "in.parquet", frame(100))
    out = tmp_path / "out.parquet"
    cases = [
        (NotFound, "no alias 'prod'", dict(uri="models:/credit-risk@prod")),
        (NotFound, "no source file", dict(source=tmp_path / "nope.parquet")),
        (InvalidInput, "format of the source", dict(source=tmp_path / "in.txt")),
        (InvalidInput, "format of the output", dict(dest=tmp_path / "out.json")),
        (InvalidInput, "'chunk_rows' parameter", dict(chunk_rows=0)),
        (InvalidInput, "'executor' parameter", dict(executor="spark")),
        (InvalidInput, "'ray_address' parameter", dict(ray_address="ray://h:10001")),
        (InvalidInput, "'uri' parameter", dict(uri="credit-risk")),
        (InvalidInput, "is the source", dict(dest=src)),
        (InvalidInput, "cannot open the source", dict(source="nosuchproto://x/in.parquet")),
    ]
    for error, message, change in cases:
        args = {"uri": URI, "source": src, "dest": out, **change}
        with pytest.raises(error, match=message):
            score_file(args.pop("uri"), args.pop("source"), args.pop("dest"), **args)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(InvalidInput, match="not a readable Parquet file"):
        score_file(URI, tmp_path / "bad.parquet", out)
    clash = write_parquet(tmp_path / "clash.parquet", frame(10).assign(prediction=1))
    with pytest.raises(InvalidInput, match="already has the column"):
        score_file(URI, clash, out)
    assert not out.exists()


def test_proba_needs_a_classifier(lw, tmp_path):
    from sklearn.linear_model import LinearRegression

    X = frame(100)[FEATURES]
    lw.log_model(LinearRegression().fit(X, X["income"]), "income", input_example=X[:5])
    src = write_parquet(tmp_path / "in.parquet", frame(100))
    with pytest.raises(InvalidInput, match="no predict_proba"):
        score_file("models:/income/1", src, tmp_path / "out.parquet", proba=True)
    score_file("models:/income/1", src, tmp_path / "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet").column("prediction").type == pa.float64()


def test_ray_missing_says_how_to_install(lw, tmp_path, monkeypatch):
    register(lw)
    src = write_parquet(tmp_path / "in.parquet", frame(10))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigurationError, match=r"pip install 'loopwise\[ray\]'"):
        score_file(URI, src, tmp_path / "out.parquet", executor="ray")


def test_rebatch_cuts_and_joins():
    table = pa.table({"x": np.arange(23)})
    batches = table.to_batches(max_chunksize=5)
    assert [b.num_rows for b in rebatch(batches, 7)] == [7, 7, 7, 2]
    assert [b.num_rows for b in rebatch(batches, 5)] == [5, 5, 5, 5, 3]
    skipped = list(rebatch(batches, 4, skip=6))
    assert skipped[0].column(0).to_pylist() == [6, 7, 8, 9]
    assert sum(map(len, skipped)) == 17


# -- S3 --------------------------------------------------------------------------------------


def test_s3_source_and_output(lw, tmp_path, s3_endpoint):  # noqa: F811
    import s3fs

    model = register(lw)
    data = frame(3_000)
    options = s3_endpoint["storage_options"]
    fs = s3fs.S3FileSystem(**options)
    folder = f"{s3_endpoint['bucket']}/batch-{tmp_path.name}"
    fs.put(str(write_parquet(tmp_path / "in.parquet", data)), f"{folder}/in.parquet")
    remote_in, remote_out = f"s3://{folder}/in.parquet", f"s3://{folder}/out.parquet"

    score_file(URI, remote_in, remote_out, chunk_rows=1_000, storage_options=options)
    with pytest.raises(Conflict):
        score_file(URI, remote_in, remote_out, storage_options=options)
    with fs.open(f"{folder}/out.parquet", "rb") as f:
        out = pd.read_parquet(f)
    assert (out["prediction"].to_numpy() == model.predict(data[FEATURES])).all()
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(folder)) == ["in.parquet", "out.parquet"]


# -- Ray -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def _without_time(path: Path) -> pa.Table:
    return pq.read_table(path).drop_columns(["scored_at"])


def test_ray_output_is_identical_to_local(lw, tmp_path, ray_session):
    register(lw)
    data = frame(12_000)
    src = write_parquet(tmp_path / "in.parquet", data, row_group_size=5_000)
    data.to_csv(tmp_path / "in.csv", index=False)
    for source in (src, tmp_path / "in.csv"):
        name = Path(source).suffix[1:]
        local = score_file(
            URI, source, tmp_path / f"local-{name}.parquet", chunk_rows=2_000, proba=True
        )
        on_ray = score_file(
            URI,
            source,
            tmp_path / f"ray-{name}.parquet",
            chunk_rows=2_000,
            proba=True,
            executor="ray",
        )
        assert (on_ray.rows, on_ray.chunks, on_ray.executor) == (12_000, 6, "ray")
        assert local.chunks == on_ray.chunks
        assert _without_time(tmp_path / f"ray-{name}.parquet").equals(
            _without_time(tmp_path / f"local-{name}.parquet")
        )


def test_ray_task_errors_arrive_as_loopwise_errors(lw, tmp_path, ray_session):
    from sklearn.linear_model import LogisticRegression

    data = frame(4_000).assign(age=lambda d: np.arange(len(d)) % 70 + 18.0)
    train = data[FEATURES].astype({"age": int})
    model = LogisticRegression().fit(train, train["income"] > 0)
    lw.log_model(model, "by-age", input_example=train[:5])  # age: integer
    data.loc[3_500, "age"] = 40.5
    src = write_parquet(tmp_path / "in.parquet", data, row_group_size=1_000)
    with pytest.raises(InvalidInput, match=r"(?s)rows 3,501-4,000 of .*'age'.*40\.5") as info:
        score_file(
            "models:/by-age/1", src, tmp_path / "out.parquet", chunk_rows=700, executor="ray"
        )
    assert "RayTaskError" not in type(info.value).__name__
    assert not (tmp_path / "out.parquet").exists()
    assert leftovers(tmp_path) == []


def test_ray_workers_load_a_package_they_cannot_reach(lw, tmp_path, ray_session, monkeypatch):
    """Without the driver's package folder (another node), a worker unpacks the copy the
    driver put in the object store."""
    from loopwise.batch import ray_runner as batch_ray

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a worker unpacks

    model = register(lw)
    version = lw.get_model_version(URI)
    files = batch_ray._package_files(model.directory)
    job = batch_ray._Job(
        version_id=f"{version.id}-elsewhere",
        package_dir=str(tmp_path / "not-on-this-node"),
        package=ray_session.put(files),
        names=FEATURES,
        proba=False,
        source=None,
        source_name="test",
        chunk_rows=10,
        storage_options={},
    )
    data = frame(10)
    scored = batch_ray._score_chunk(job, 0, 10, pa.RecordBatch.from_pandas(data))
    assert scored["prediction"].to_pylist() == model.predict(data[FEATURES]).tolist()
    assert (tmp_path / "loopwise-ray-models" / job.version_id / ".complete").is_file()
