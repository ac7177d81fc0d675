"""Steps and pipelines at module level, so local processes (and Ray) import them by name,
and the CLI loads them by entrypoint (``tests/pipelines/steps.py:churn``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import loopwise as lw

FEATURES = ["a", "b", "c"]


@lw.step
def load(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["label"] = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    return frame


@lw.step(retries=1)
def train(frame: pd.DataFrame, C: float = 1.0) -> LogisticRegression:
    return LogisticRegression(C=C).fit(frame[FEATURES], frame["label"])


@lw.step
def score(model: LogisticRegression, frame: pd.DataFrame) -> dict:
    return {"accuracy": float(model.score(frame[FEATURES], frame["label"])), "rows": len(frame)}


@lw.pipeline(name="churn-train")
def churn(rows: int = 200, C: float = 1.0):
    frame = load(rows)
    model = train(frame, C=C)
    return {"model": model, "scores": score(model, frame)}


@lw.step
def where() -> int:
    """The process the step ran in."""
    return os.getpid()


@lw.step
def nap(seconds: float, tag: str) -> float:
    time.sleep(seconds)
    return time.monotonic()


@lw.step
def both(first: float, second: float) -> list:
    return [first, second]


@lw.pipeline
def naps(seconds: float = 0.6):
    return both(nap(seconds, "left"), nap(seconds, "right"))


@lw.pipeline
def pids():
    return [where(), where()]


@lw.step
def divide(a: float, b: float) -> float:
    return a / b


@lw.step
def fragile(x: float, flag: str) -> float:
    """Fails while the file ``flag`` exists (the test removes it to 'fix' the step)."""
    if Path(flag).exists():
        raise RuntimeError(f"flag {flag} is up")
    return x * 2


@lw.step
def add(x: float, y: float) -> float:
    return x + y


@lw.pipeline
def breakable(flag: str):
    base = divide(6.0, 3.0)
    doubled = fragile(base, flag)
    other = divide(1.0, 4.0)
    return add(doubled, other), other


@lw.step(retries=2)
def flaky(counter: str) -> int:
    """Fails on its first attempt (counted in the file ``counter``), then succeeds."""
    path = Path(counter)
    attempts = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempts))
    if attempts < 2:
        raise ConnectionError("first attempt fails")
    return attempts


@lw.pipeline
def retrying(counter: str):
    return flaky(counter)


class Box:
    """Not a frame, a model or JSON: stored as a pickle."""

    def __init__(self, items: tuple) -> None:
        self.items = items

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Box) and other.items == self.items


@lw.step
def boxed(n: int) -> Box:
    return Box(tuple(range(n)))


@lw.step
def unbox(box: Box) -> int:
    return sum(box.items)


@lw.pipeline
def boxes(n: int = 4):
    return unbox(boxed(n))


@lw.step
def inc(x: int) -> int:
    return x + 1


@lw.pipeline
def chain(length: int = 100, start: int = 0):
    x = inc(start)
    for _ in range(length - 1):
        x = inc(x)
    return x


@lw.step
def boom(x: float) -> float:
    raise ValueError(f"boom {x}")


@lw.step
def model_of(version: lw.ModelVersion) -> str:
    return version.uri


@lw.pipeline
def two_failures():
    """Two failing steps feed one step: it is skipped once; a step given a number where it
    takes a model version fails without stopping the run."""
    return add(boom(1.0), boom(2.0)), model_of(divide(1.0, 2.0)), divide(3.0, 4.0)
