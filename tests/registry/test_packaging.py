"""The package format: manifest, input example, predict on every input kind, refusals."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from loopwise import __version__
from loopwise.errors import ConfigurationError, InvalidInput, NotFound
from loopwise.registry.packaging import (
    FORMAT_VERSION,
    PackageManifest,
    load_package,
    read_manifest,
    save_package,
)
from loopwise.registry.signature import ColumnSpec, Signature

FRAME = pd.DataFrame({"age": [20, 35, 50, 62, 41, 29], "income": [1.0, 2.5, 3.0, 4.5, 2.0, 1.5]})
LABELS = np.array([0, 0, 1, 1, 1, 0])


@pytest.fixture(scope="module")
def classifier():
    return LogisticRegression().fit(FRAME, LABELS)


@pytest.fixture
def package(tmp_path, classifier):
    save_package(classifier, tmp_path / "pkg", input_example=FRAME.head(2))
    return tmp_path / "pkg"


def test_manifest_is_stamped_and_lists_files(package):
    data = json.loads((package / "loopwise_model.json").read_text())
    assert data["format_version"] == FORMAT_VERSION
    assert data["loopwise_version"] == __version__
    assert data["flavor"] == "sklearn"
    assert data["has_predict_proba"] is True
    assert data["requirements"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "scikit-learn" in data["requirements"]
    assert datetime.fromisoformat(data["created_at"]).tzinfo == UTC
    assert data["signature"]["outputs"] == [{"name": "prediction", "type": "integer"}]
    paths = {f["path"]: f for f in data["files"]}
    assert set(paths) == {"input_example.json", "model/model.pkl"}
    for path, entry in paths.items():
        content = (package / path).read_bytes()
        assert entry["size"] == len(content)
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
    assert PackageManifest.from_dict(data).to_dict() == data


def test_input_example_is_json_records(package):
    records = json.loads((package / "input_example.json").read_text())
    assert records == [{"age": 20, "income": 1.0}, {"age": 35, "income": 2.5}]
    loaded = load_package(package)
    pd.testing.assert_frame_equal(loaded.input_example, FRAME.head(2))


def test_predict_on_every_input_kind(package, classifier):
    loaded = load_package(package)
    expected = classifier.predict(FRAME)
    for data in (
        FRAME,
        pl.from_pandas(FRAME),
        FRAME.to_dict(orient="records"),
        FRAME.to_dict(orient="list"),
        FRAME.to_numpy(),
    ):
        np.testing.assert_array_equal(loaded.predict(data), expected)
    np.testing.assert_array_equal(loaded.predict({"age": 50, "income": 3.0}), expected[2:3])
    np.testing.assert_allclose(
        loaded.predict_proba({"age": 50, "income": 3}), classifier.predict_proba(FRAME)[2:3]
    )


def test_predict_checks_the_signature(package):
    loaded = load_package(package)
    with pytest.raises(InvalidInput, match="column 'age' should be integer but is string"):
        loaded.predict({"age": "thirty", "income": 1.0})
    with pytest.raises(InvalidInput, match="missing columns: 'income'"):
        loaded.predict({"age": 30})
    with pytest.raises(InvalidInput, match="unexpected columns: 'zip'"):
        loaded.predict({"age": 30, "income": 1.0, "zip": "0150"})
    np.testing.assert_array_equal(
        loaded.predict({"age": 30, "income": 1.0, "zip": "0150"}, strict=False),
        loaded.predict({"age": 30, "income": 1.0}),
    )


def test_columns_follow_the_order_the_model_was_fitted_with(tmp_path, classifier):
    save_package(classifier, tmp_path / "pkg", input_example=FRAME[["income", "age"]].head(2))
    loaded = load_package(tmp_path / "pkg")
    assert loaded.signature.input_names == ["age", "income"]
    np.testing.assert_array_equal(
        loaded.predict(FRAME[["income", "age"]].to_dict(orient="records")),
        classifier.predict(FRAME),
    )


def test_array_example_takes_the_names_the_model_was_fitted_with(tmp_path, classifier):
    save_package(classifier, tmp_path / "pkg", input_example=FRAME.to_numpy()[:2])
    loaded = load_package(tmp_path / "pkg")
    assert loaded.signature.input_names == ["age", "income"]
    assert list(loaded.input_example.columns) == ["age", "income"]
    np.testing.assert_array_equal(loaded.predict(FRAME.to_numpy()), classifier.predict(FRAME))


def test_metadata_must_be_json(tmp_path, classifier):
    with pytest.raises(InvalidInput, match="keep extra_metadata to JSON values"):
        save_package(classifier, tmp_path / "pkg", extra_metadata={"when": datetime.now(UTC)})
    assert not (tmp_path / "pkg").exists()


def test_given_signature_and_metadata(tmp_path, classifier):
    signature = Signature([ColumnSpec("age", "float"), ColumnSpec("income", "float")])
    manifest = save_package(
        classifier, tmp_path / "a", signature=signature, extra_metadata={"team": "risk"}
    )
    assert manifest.signature == signature
    assert manifest.metadata == {"team": "risk"}
    loaded = load_package(tmp_path / "a")
    assert loaded.input_example is None
    assert loaded.manifest.metadata == {"team": "risk"}
    np.testing.assert_array_equal(loaded.predict({"age": 20.5, "income": 1}), [0])
    save_package(classifier, tmp_path / "b", signature=signature.to_dict())
    assert load_package(tmp_path / "b").signature == signature


def test_no_signature_passes_data_through(tmp_path):
    model = LinearRegression().fit(FRAME, FRAME["income"])
    save_package(model, tmp_path / "pkg")
    loaded = load_package(tmp_path / "pkg")
    assert loaded.signature is None
    np.testing.assert_allclose(loaded.predict(FRAME.to_dict(orient="list")), model.predict(FRAME))
    with pytest.raises(InvalidInput, match=r"'pkg' .*has no predict_proba"):
        loaded.predict_proba(FRAME)


def test_newer_format_is_refused_with_upgrade_hint(package):
    path = package / "loopwise_model.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(InvalidInput, match=r"format_version 2.*pip install -U loopwise"):
        load_package(package)
    path.write_text(json.dumps({**data, "format_version": "one"}))
    with pytest.raises(InvalidInput, match="format_version 'one'"):
        read_manifest(package)


def test_missing_and_corrupt_packages(tmp_path, package):
    with pytest.raises(NotFound, match="is it a loopwise model package"):
        load_package(tmp_path / "nowhere")
    (package / "model/model.pkl").write_bytes(b"not a model")
    with pytest.raises(InvalidInput, match=r"model/model.pkl .*does not match its recorded sha256"):
        load_package(package)
    (package / "model/model.pkl").unlink()
    with pytest.raises(NotFound, match=r"lacks model/model.pkl"):
        load_package(package)


def test_missing_flavor_package_names_the_pip_install(package, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` now fails
    with pytest.raises(ConfigurationError) as info:
        load_package(package)
    message = str(info.value)
    assert "pip install 'scikit-learn==" in message
    assert "'sklearn'" in message


def test_existing_folder_is_refused_and_failures_leave_nothing(tmp_path, package, classifier):
    with pytest.raises(InvalidInput, match="not an empty folder"):
        save_package(classifier, package)
    (tmp_path / "empty").mkdir()
    save_package(classifier, tmp_path / "empty")  # an empty folder is fine
    assert (tmp_path / "empty/loopwise_model.json").is_file()

    class Unpicklable:
        lock = None

        def __init__(self) -> None:
            self.lock = threading.Lock()

        def predict(self, X):
            return X

    with pytest.raises(TypeError):
        save_package(Unpicklable(), tmp_path / "bad")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("pkg", "empty")]
    assert leftovers == []


def test_bad_example_is_caught_at_save(tmp_path, classifier):
    with pytest.raises(InvalidInput, match="mixes value types"):
        save_package(classifier, tmp_path / "pkg", input_example={"age": [1, "x"], "income": 1})
    assert not (tmp_path / "pkg").exists()


def test_save_and_load_are_quick_for_a_small_model(tmp_path, classifier):
    started = time.perf_counter()
    for i in range(5):
        save_package(classifier, tmp_path / f"p{i}", input_example=FRAME.head(2))
        load_package(tmp_path / f"p{i}")
    assert (time.perf_counter() - started) / 5 < 1.0  # generous: ~10 ms each here
