"""The model package: one folder that holds everything needed to load a model and use it.

::

    <package>/
      loopwise_model.json   manifest: format and loopwise versions, flavor, signature,
                            requirements, created_at, files (size, sha256), metadata
      input_example.json    the input example as records (if one was given)
      model/                what the flavor wrote (model.pkl, model.json, model.onnx ...)

:func:`save_package` writes a package into a staging folder and moves it into place, so a
failure never leaves half a package. :func:`load_package` checks the format version and
the files' checksums and returns a :class:`LoadedModel` whose ``predict`` checks every
input against the signature.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from loopwise._version import __version__
from loopwise.errors import ConfigurationError, InvalidInput, NotFound
from loopwise.registry.flavors import Flavor, detect_flavor, get_flavor, installed_version
from loopwise.registry.signature import ColumnSpec, Signature, check_input, infer_signature

FORMAT_VERSION = 1
MANIFEST_FILE = "loopwise_model.json"
EXAMPLE_FILE = "input_example.json"
MODEL_DIR = "model"
# Top-level module -> the distribution to pip install, for "module not found" on load.
_DISTRIBUTIONS = {"sklearn": "scikit-learn", "onnxruntime": "onnxruntime"}


@dataclass(frozen=True)
class PackageFile:
    """One file of a package: path relative to the package root, size and sha256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class PackageManifest:
    """The contents of ``loopwise_model.json``."""

    flavor: str
    signature: Signature | None
    requirements: dict[str, str]
    files: list[PackageFile]
    has_predict_proba: bool
    created_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    loopwise_version: str = __version__
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "loopwise_version": self.loopwise_version,
            "flavor": self.flavor,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "requirements": dict(self.requirements),
            "created_at": self.created_at.isoformat(),
            "files": [vars(f) for f in self.files],
            "has_predict_proba": self.has_predict_proba,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PackageManifest:
        signature = data.get("signature")
        return cls(
            flavor=data["flavor"],
            signature=None if signature is None else Signature.from_dict(signature),
            requirements=dict(data.get("requirements", {})),
            files=[PackageFile(**f) for f in data.get("files", [])],
            has_predict_proba=bool(data.get("has_predict_proba", False)),
            created_at=datetime.fromisoformat(data["created_at"]),
            metadata=dict(data.get("metadata") or {}),
            loopwise_version=data.get("loopwise_version", "unknown"),
            format_version=data["format_version"],
        )


def save_package(
    model: object,
    directory: str | os.PathLike[str],
    *,
    input_example: Any = None,
    signature: Signature | dict[str, Any] | None = None,
    flavor: str | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> PackageManifest:
    """Write ``model`` as a package into ``directory`` (new or empty) and return its manifest.

    The flavor is detected unless given. Without a ``signature``, one is inferred from
    ``input_example`` and the model's output on it; the example is also run through the
    saved-then-loaded model, so a package that cannot predict is never written.
    """
    chosen = _choose_flavor(model, flavor)
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInput(
            f"{target} already exists and is not an empty folder; save a "
            "model package into a new or empty folder."
        )
    if isinstance(signature, dict):
        signature = Signature.from_dict(signature)
    inferred = signature is None and input_example is not None
    if inferred:
        signature = infer_signature(input_example)
    if signature is not None:
        signature = _align(signature, chosen.feature_names(model), rename=inferred)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex}")
    try:
        (staging / MODEL_DIR).mkdir(parents=True)
        chosen.save(model, staging / MODEL_DIR)
        has_proba = chosen.has_predict_proba(model)
        if input_example is not None and signature is not None:
            signature = _try_example(chosen, staging, signature, input_example)
            _write_json(staging / EXAMPLE_FILE, _records(signature, input_example))
        manifest = PackageManifest(
            flavor=chosen.name,
            signature=signature,
            requirements=_requirements(chosen),
            files=_file_entries(staging),
            has_predict_proba=has_proba,
            created_at=datetime.now(UTC),
            metadata=dict(extra_metadata or {}),
        )
        _write_json(staging / MANIFEST_FILE, manifest.to_dict())
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def load_package(directory: str | os.PathLike[str], *, verify: bool = True) -> LoadedModel:
    """Load the package in ``directory``; ``verify`` checks every file's size and sha256."""
    root = Path(directory)
    manifest = read_manifest(root)
    if verify:
        for entry in manifest.files:
            _verify(root, entry)
    flavor = get_flavor(manifest.flavor)
    try:
        raw = flavor.load(root / MODEL_DIR)
    except ModuleNotFoundError as e:
        missing = (e.name or "").split(".")[0]
        dist = _DISTRIBUTIONS.get(missing, missing)
        pinned = manifest.requirements.get(dist)
        spec = f"{dist}=={pinned}" if pinned and pinned != "unknown" else dist
        raise ConfigurationError(
            f"the model package at {root} (flavor {manifest.flavor!r}) needs the Python "
            f"module {missing!r}, which is not installed here. Install it: pip install "
            f"'{spec}' (the package also needs: {_requirement_list(manifest)})."
        ) from e
    return LoadedModel(raw, flavor, manifest, root)


def read_manifest(directory: str | os.PathLike[str]) -> PackageManifest:
    """The manifest of the package in ``directory``, refusing formats this loopwise can't read."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise NotFound(f"no {MANIFEST_FILE} in {directory}; is it a loopwise model package?")
    try:
        data = json.loads(path.read_text())
        version = data["format_version"]
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidInput(f"{path} is not a loopwise model manifest: {e!r}.") from e
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise InvalidInput(
            f"the model package at {directory} has format_version {version!r}, written by "
            f"loopwise {data.get('loopwise_version', 'unknown')}; this loopwise "
            f"({__version__}) reads format_version {FORMAT_VERSION}. Upgrade loopwise "
            "(pip install -U loopwise) to load it."
        )
    return PackageManifest.from_dict(data)


class LoadedModel:
    """A loaded package: ``predict`` (and ``predict_proba``) on checked input."""

    def __init__(
        self, raw: object, flavor: Flavor, manifest: PackageManifest, directory: Path
    ) -> None:
        self.raw = raw
        self.manifest = manifest
        self.directory = directory
        self._flavor = flavor

    @property
    def flavor(self) -> str:
        return self.manifest.flavor

    @property
    def signature(self) -> Signature | None:
        return self.manifest.signature

    @cached_property
    def input_example(self) -> Any:
        """The input example as a pandas DataFrame (an array for tensors), or None."""
        path = self.directory / EXAMPLE_FILE
        if not path.is_file():
            return None
        records = json.loads(path.read_text())
        if self.signature is not None and self.signature.is_tensor:
            return np.asarray(records)
        import pandas as pd

        frame = pd.DataFrame.from_records(records)
        for spec in self.signature.inputs if self.signature else []:
            if spec.type == "datetime" and spec.name in frame:
                frame[spec.name] = pd.to_datetime(frame[spec.name], format="ISO8601")
        return frame

    def prepare(self, data: Any, *, strict: bool = True) -> Any:
        """``data`` checked against the signature, in the form the model takes (a NumPy
        matrix for numeric signatures, else a DataFrame). Prepared inputs of several
        requests can be stacked and given to :meth:`predict_prepared` in one call."""
        if self.signature is not None and self.signature.inputs:
            return check_input(self.signature, data, strict=strict)
        return _as_frame(data)

    def predict_prepared(self, prepared: Any) -> np.ndarray:
        """Predictions for input already checked by :meth:`prepare`."""
        return self._flavor.predict(self.raw, prepared)

    def predict_proba_prepared(self, prepared: Any) -> np.ndarray:
        """Class probabilities for input already checked by :meth:`prepare`."""
        if not self.manifest.has_predict_proba:
            raise InvalidInput(
                f"model {self.directory.name!r} (flavor {self.flavor!r}) has no "
                "predict_proba; call predict, or package a classifier that has predict_proba."
            )
        return self._flavor.predict_proba(self.raw, prepared)

    def predict(self, data: Any, *, strict: bool = True) -> np.ndarray:
        """Predictions for ``data`` (DataFrame, dict, list of dicts or NumPy array)."""
        return self.predict_prepared(self.prepare(data, strict=strict))

    def predict_proba(self, data: Any, *, strict: bool = True) -> np.ndarray:
        """Class probabilities for ``data``; raises InvalidInput when the model has none."""
        if not self.manifest.has_predict_proba:
            return self.predict_proba_prepared(None)  # raises the InvalidInput above
        return self.predict_proba_prepared(self.prepare(data, strict=strict))

    def __repr__(self) -> str:
        return f"LoadedModel(flavor={self.flavor!r}, directory={str(self.directory)!r})"


def _choose_flavor(model: object, name: str | None) -> Flavor:
    if name is None:
        return detect_flavor(model)
    flavor = get_flavor(name)
    if not flavor.matches(model):
        raise InvalidInput(
            f"flavor {name!r} cannot save a {type(model).__qualname__}; leave flavor unset "
            "to detect it, or pass flavor='pyfunc' for any object with a predict method."
        )
    return flavor


def _align(signature: Signature, names: list[str] | None, *, rename: bool) -> Signature:
    """Use the column names and order the model recorded at fit time, when it has them:
    known names are reordered; with ``rename``, ``f0..fN`` (from an array example) become
    the model's names."""
    have = signature.input_names
    if not names or names == have or len(names) != len(have) or signature.is_tensor:
        return signature
    if rename and have == [f"f{i}" for i in range(len(have))]:
        inputs = [
            ColumnSpec(n, c.type, c.shape) for n, c in zip(names, signature.inputs, strict=True)
        ]
        return Signature(inputs, signature.outputs)
    if sorted(names) != sorted(have):
        return signature
    by_name = {c.name: c for c in signature.inputs}
    return Signature([by_name[n] for n in names], signature.outputs)


def _try_example(flavor: Flavor, staging: Path, signature: Signature, example: Any) -> Signature:
    """Predict on the example with the model as saved; infer outputs if none are given."""
    loaded = flavor.load(staging / MODEL_DIR)
    output = flavor.predict(loaded, check_input(signature, example, what="input example"))
    if signature.outputs:
        return signature
    return Signature(signature.inputs, infer_signature(example, output).outputs)


def _records(signature: Signature, example: Any) -> Any:
    """The example as JSON-safe records (a nested list for a tensor)."""
    canonical = check_input(signature, example, what="input example")
    if signature.is_tensor:
        return np.asarray(canonical).tolist()
    if isinstance(canonical, np.ndarray):
        rows: Any = canonical.tolist()
    else:
        rows = canonical.astype(object).itertuples(index=False, name=None)
    types = [c.type for c in signature.inputs]
    return [
        {n: _json_value(v, t) for n, v, t in zip(signature.input_names, row, types, strict=True)}
        for row in rows
    ]


def _json_value(value: Any, type_: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, date):
        return value.isoformat()
    if type_ == "integer":
        return int(value)
    if type_ == "boolean":
        return bool(value)
    return float(value) if type_ == "float" else value


def _requirements(flavor: Flavor) -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "loopwise": __version__,
        "numpy": installed_version("numpy"),
        **flavor.requirements(),
    }


def _requirement_list(manifest: PackageManifest) -> str:
    return ", ".join(f"{k}=={v}" for k, v in manifest.requirements.items() if k != "python")


def _file_entries(root: Path) -> list[PackageFile]:
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel != MANIFEST_FILE:
            entries.append(PackageFile(rel, path.stat().st_size, _sha256(path)))
    return entries


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(root: Path, entry: PackageFile) -> None:
    path = root / entry.path
    if not path.is_file():
        raise NotFound(f"the model package at {root} lacks {entry.path}; copy it whole.")
    if path.stat().st_size != entry.size or _sha256(path) != entry.sha256:
        raise InvalidInput(
            f"{entry.path} in the model package at {root} does not match its "
            "recorded sha256: the package is corrupt or was edited."
        )


def _write_json(path: Path, data: Any) -> None:
    try:
        text = json.dumps(data, indent=2, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidInput(
            f"cannot write {path.name}: {e}; keep extra_metadata to JSON "
            "values (str, int, float, bool, None, lists and dicts)."
        ) from e
    path.write_text(text + "\n")


def _as_frame(data: Any) -> Any:
    """Input for a model without signature: pandas for tables, NumPy arrays as they are."""
    if isinstance(data, np.ndarray) or hasattr(data, "iloc"):
        return data
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    import pandas as pd

    if isinstance(data, dict) and not any(isinstance(v, list | tuple) for v in data.values()):
        data = [data]
    return pd.DataFrame(data)
