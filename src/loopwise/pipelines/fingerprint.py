"""Content fingerprints: what a step's cache key is made of.

A cache key is the SHA-256 of the step's code hash and of every argument's fingerprint,
where an argument that is another step's output stands for that output's *content*
fingerprint (not the step that made it): two runs that compute the same frame in
different ways share everything downstream of it.

Values are fingerprinted by content: JSON values as canonical JSON (``1`` and ``1.0``
differ, tuples and lists differ), frames by their rows and schema, anything else by its
pickle.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import sys
from collections.abc import Mapping
from typing import Any

from loopwise.errors import InvalidInput
from loopwise.pipelines.definition import Node

#: JSON documents larger than this are stored as artifacts, not inline in the database.
INLINE_LIMIT = 64 * 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_json_exact(value: Any, depth: int = 0) -> bool:
    """True when ``value`` survives a JSON round trip with its types: None, bool, int,
    float, str, and lists and str-keyed dicts of them (tuples do not: they come back as
    lists)."""
    if depth > 32:
        return False
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) is list:
        return all(is_json_exact(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(type(k) is str and is_json_exact(v, depth + 1) for k, v in value.items())
    return False


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys and no spaces (NaN and infinities spelled as
    Python's json module does)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)


def frame_kind(value: Any) -> str | None:
    """``"pandas"`` or ``"polars"`` for a data frame (without importing either), else None."""
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, pd.DataFrame):
        return "pandas"
    pl = sys.modules.get("polars")
    if pl is not None and isinstance(value, pl.DataFrame):
        return "polars"
    return None


def frame_fingerprint(frame: Any) -> str:
    """The content hash of a pandas or polars frame: its schema and every row."""
    digest = hashlib.sha256(b"frame:")
    if frame_kind(frame) == "pandas":
        import pandas as pd

        digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    else:
        digest.update(repr(list(frame.schema.items())).encode())
        digest.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    digest.update(str(len(frame)).encode())
    return digest.hexdigest()


def value_fingerprint(value: Any, *, what: str) -> str:
    """The content hash of any value; ``what`` names it in the error when it has none."""
    if is_json_exact(value):
        return sha256(b"json:" + canonical_json(value).encode())
    if frame_kind(value) is not None:
        return frame_fingerprint(value)
    try:
        return sha256(b"pickle:" + pickle.dumps(value, protocol=5))
    except Exception as exc:
        raise InvalidInput(
            f"{what} cannot be fingerprinted for the cache ({type(value).__name__} does not "
            f"pickle: {exc}); give the step cache=False."
        ) from exc


def argument_fingerprint(value: Any, outputs: Mapping[str, str], *, what: str) -> Any:
    """A JSON structure standing for ``value``: nodes become their output's fingerprint
    (from ``outputs``, node key -> fingerprint), containers keep their shape and type."""
    if isinstance(value, Node):
        return {"$output": outputs[value.key]}
    if value is None or type(value) in (bool, int, str):
        return {"$v": value}
    if type(value) is float:
        return {"$f": repr(value) if not math.isnan(value) else "nan"}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return {
            "$seq": type(value).__name__,
            "items": [argument_fingerprint(v, outputs, what=what) for v in items],
        }
    if type(value) is dict:
        return {
            "$map": [
                [
                    argument_fingerprint(k, outputs, what=what),
                    argument_fingerprint(v, outputs, what=what),
                ]
                for k, v in value.items()
            ]
        }
    return {"$fp": value_fingerprint(value, what=what)}


def cache_key(
    step: str, code_hash: str, arguments: Mapping[str, Any], outputs: Mapping[str, str]
) -> str:
    """The cache key of a step call: its name, code and arguments' content."""
    document = {
        "step": step,
        "code": code_hash,
        "arguments": {
            name: argument_fingerprint(value, outputs, what=f"Argument {name!r} of step {step!r}")
            for name, value in arguments.items()
        },
    }
    return sha256(canonical_json(document).encode())
