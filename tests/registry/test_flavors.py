"""Every flavor: detection, a save/load round trip with identical predictions, predict_proba."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loopwise.errors import InvalidInput
from loopwise.registry.flavors import DETECTION_ORDER, FLAVORS, detect_flavor, get_flavor
from loopwise.registry.packaging import load_package, save_package

RNG = np.random.default_rng(0)
X = pd.DataFrame({"a": RNG.normal(size=60), "b": RNG.normal(size=60), "c": RNG.integers(0, 5, 60)})
Y_CLASS = (X["a"] + X["b"] > 0).astype(int).to_numpy()
Y_REG = (2 * X["a"] - X["b"] + 0.1 * X["c"]).to_numpy()


class MeanModel:
    """A pyfunc model: importable from this test module."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def predict(self, X):
        return np.asarray(X).mean(axis=1) + self.offset


def round_trip(tmp_path, model, example, **kwargs):
    save_package(model, tmp_path / "pkg", input_example=example, **kwargs)
    return load_package(tmp_path / "pkg")


def test_flavor_table_and_order_agree():
    assert set(DETECTION_ORDER) == set(FLAVORS)
    for name in FLAVORS:
        assert get_flavor(name).name == name


def test_sklearn_round_trip_with_proba(tmp_path):
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y_CLASS)
    loaded = round_trip(tmp_path, model, X.head())
    assert loaded.flavor == "sklearn"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.manifest.has_predict_proba


def test_sklearn_without_proba(tmp_path):
    model = LinearRegression().fit(X.to_numpy(), Y_REG)
    loaded = round_trip(tmp_path, model, X.to_numpy()[:3])
    assert [c.name for c in loaded.signature.inputs] == ["f0", "f1", "f2"]
    np.testing.assert_allclose(loaded.predict(X.to_numpy()), model.predict(X.to_numpy()))
    with pytest.raises(InvalidInput, match=r"'pkg' .*has no predict_proba"):
        loaded.predict_proba(X.to_numpy())


def test_sklearn_pipeline_with_column_transformer(tmp_path):
    frame = X.assign(city=np.where(Y_CLASS == 1, "Oslo", "Lima"))
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["a", "b", "c"]), ("cat", OneHotEncoder(), ["city"])]
    )
    model = make_pipeline(pre, LogisticRegression()).fit(frame, Y_CLASS)
    loaded = round_trip(tmp_path, model, frame.head(3))
    assert {c.name: c.type for c in loaded.signature.inputs}["city"] == "string"
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame))
    row = {"a": 0.1, "b": -0.2, "c": 3, "city": "Oslo"}
    np.testing.assert_array_equal(loaded.predict(row), model.predict(pd.DataFrame([row])))
    with pytest.raises(InvalidInput, match="'city' should be string but is integer: 7"):
        loaded.predict({**row, "city": 7})


def test_xgboost_sklearn_api_and_booster(tmp_path):
    xgb = pytest.importorskip("xgboost")
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, Y_CLASS)
    assert detect_flavor(model).name == "xgboost"
    loaded = round_trip(tmp_path / "clf", model, X.head())
    assert isinstance(loaded.raw, xgb.XGBClassifier)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert (tmp_path / "clf/pkg/model/model.json").is_file()

    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=Y_REG), num_boost_round=5)
    loaded = round_trip(tmp_path / "booster", booster, X.head())
    np.testing.assert_array_equal(loaded.predict(X), booster.inplace_predict(X))
    assert not loaded.manifest.has_predict_proba


def test_lightgbm_sklearn_api_and_booster(tmp_path):
    lgb = pytest.importorskip("lightgbm")
    labels = np.array(["no", "yes"])[Y_CLASS]
    model = lgb.LGBMClassifier(n_estimators=5, min_child_samples=2, verbose=-1).fit(X, labels)
    assert detect_flavor(model).name == "lightgbm"
    loaded = round_trip(tmp_path / "clf", model, X.head())
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
    assert (tmp_path / "clf/pkg/model/model.txt").read_text().startswith("tree")

    three = np.array(["a", "b", "c"])[X["c"].to_numpy() % 3]
    multi = lgb.LGBMClassifier(n_estimators=5, min_child_samples=2, verbose=-1).fit(X, three)
    loaded = round_trip(tmp_path / "multi", multi, X.head())
    np.testing.assert_array_equal(loaded.predict(X), multi.predict(X))

    reg = lgb.LGBMRegressor(n_estimators=5, min_child_samples=2, verbose=-1).fit(X, Y_REG)
    loaded = round_trip(tmp_path / "reg", reg, X.head())
    np.testing.assert_allclose(loaded.predict(X), reg.predict(X))
    assert not loaded.manifest.has_predict_proba

    booster = lgb.train({"verbose": -1}, lgb.Dataset(X, Y_REG), num_boost_round=5)
    loaded = round_trip(tmp_path / "booster", booster, X.head())
    np.testing.assert_allclose(loaded.predict(X), booster.predict(X))


def test_pytorch_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    data = X.to_numpy(dtype=np.float32)
    loaded = round_trip(tmp_path, model, data[:4])
    assert loaded.flavor == "pytorch"
    with torch.no_grad():
        expected = model(torch.from_numpy(data)).numpy()
    np.testing.assert_array_equal(loaded.predict(data), expected)
    assert loaded.signature.outputs[0].shape == (-1, 2)
    assert not loaded.manifest.has_predict_proba
    with pytest.raises(InvalidInput, match="has no predict_proba"):
        loaded.predict_proba(data)


def test_pytorch_tensor_input(tmp_path):
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 1))
    images = RNG.normal(size=(5, 2, 3)).astype(np.float32)
    loaded = round_trip(tmp_path, model, images[:2])
    assert loaded.signature.is_tensor
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    np.testing.assert_array_equal(loaded.predict(images), expected)
    assert loaded.input_example.shape == (2, 2, 3)


def test_onnx_from_skl2onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    data = X.to_numpy(dtype=np.float32)
    sk = LogisticRegression().fit(data, Y_CLASS)
    proto = skl2onnx.convert_sklearn(
        sk, initial_types=[("X", FloatTensorType([None, 3]))], options={"zipmap": False}
    )
    assert detect_flavor(proto).name == "onnx"
    loaded = round_trip(tmp_path, proto, data[:3])
    np.testing.assert_array_equal(loaded.predict(data), sk.predict(data))
    np.testing.assert_allclose(loaded.predict_proba(data), sk.predict_proba(data), atol=1e-5)
    np.testing.assert_array_equal(loaded.predict({"f0": 1.0, "f1": -2.0, "f2": 3}), [0])


def test_onnx_with_one_input_per_column(tmp_path):
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    frame = X[["a", "b"]].assign(city=np.where(Y_CLASS == 1, "Oslo", "Lima"))
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["city"])]
    )
    sk = make_pipeline(pre, LogisticRegression()).fit(frame, Y_CLASS)
    types = [
        ("a", FloatTensorType([None, 1])),
        ("b", FloatTensorType([None, 1])),
        ("city", StringTensorType([None, 1])),
    ]
    proto = skl2onnx.convert_sklearn(sk, initial_types=types)  # with ZipMap
    loaded = round_trip(tmp_path, proto, frame.head(3))
    np.testing.assert_array_equal(loaded.predict(frame), sk.predict(frame))
    np.testing.assert_allclose(loaded.predict_proba(frame), sk.predict_proba(frame), atol=1e-5)


def test_pyfunc_round_trip(tmp_path):
    model = MeanModel(offset=1.5)
    assert detect_flavor(model).name == "pyfunc"
    loaded = round_trip(tmp_path, model, X.head())
    np.testing.assert_allclose(loaded.predict(X), model.predict(X.to_numpy()))
    assert isinstance(loaded.raw, MeanModel)
    assert not loaded.manifest.has_predict_proba


def test_explicit_flavor_overrides_detection(tmp_path):
    model = LinearRegression().fit(X, Y_REG)
    loaded = round_trip(tmp_path, model, X.head(), flavor="pyfunc")
    assert loaded.flavor == "pyfunc"
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))
    with pytest.raises(InvalidInput, match="flavor 'xgboost' cannot save a LinearRegression"):
        save_package(model, tmp_path / "other", flavor="xgboost")
    with pytest.raises(InvalidInput, match="unknown flavor 'keras'; supported flavors: sklearn"):
        save_package(model, tmp_path / "other", flavor="keras")


def test_unknown_object_is_refused(tmp_path):
    with pytest.raises(InvalidInput) as info:
        save_package(object(), tmp_path / "pkg")
    message = str(info.value)
    assert "builtins.object" in message
    for name in FLAVORS:
        assert name in message
    assert not (tmp_path / "pkg").exists()


def test_flavor_modules_import_no_heavy_library():
    code = (
        "import sys\n"
        "import loopwise.registry.packaging\n"
        "from loopwise.registry.flavors import FLAVORS, detect_flavor, get_flavor\n"
        "for name in FLAVORS: get_flavor(name)\n"
        "class M:\n"
        "    def predict(self, X): return X\n"
        "assert detect_flavor(M()).name == 'pyfunc'\n"
        "heavy = {'torch', 'xgboost', 'lightgbm', 'onnxruntime', 'onnx', 'sklearn', 'pandas'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
