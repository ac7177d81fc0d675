"""PyTorch ``nn.Module`` models on CPU, saved whole with ``torch.save``.

The module's class is pickled by reference, so it must be importable where the package is
loaded. Predictions run under ``eval()`` and ``no_grad()`` on a float32 tensor built from
the canonical input; the output comes back as a NumPy array. There is no ``predict_proba``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from loopwise.errors import InvalidInput
from loopwise.registry.flavors import installed_version

name = "pytorch"
FILE = "model.pt"


def matches(model: object) -> bool:
    nn = sys.modules.get("torch.nn")
    return nn is not None and isinstance(model, nn.Module)


def save(model: Any, path: Path) -> None:
    import torch

    torch.save(model, path / FILE)


def load(path: Path) -> object:
    import torch

    model = torch.load(path / FILE, map_location="cpu", weights_only=False)
    model.eval()
    return model


def predict(loaded: Any, X: Any) -> np.ndarray:
    import torch

    if hasattr(X, "columns"):
        raise InvalidInput(
            "a PyTorch model takes numeric input only; its signature has string or datetime "
            "columns. Encode them as numbers before packaging."
        )
    loaded.eval()
    with torch.no_grad():
        out = loaded(torch.as_tensor(np.asarray(X, dtype=np.float32)))
    return out.detach().cpu().numpy()


def has_predict_proba(loaded: object) -> bool:
    return False


def predict_proba(loaded: object, X: Any) -> None:
    return None


def feature_names(model: object) -> None:
    return None


def requirements() -> dict[str, str]:
    return {"torch": installed_version("torch")}
