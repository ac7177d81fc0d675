"""Shared helpers of the bench scripts: flags, work folders, timing and RESULT lines.

Every bench script prints one human line per figure as it goes, then, at the end, one
machine-readable line per figure::

    RESULT {"bench": "tracking", "metric": "...", "loopwise": 1.0, "mlflow": 1.0, "ratio": 1.0}

``ratio`` > 1 always means loopwise is better: loopwise/mlflow for rates (higher is
better), mlflow/loopwise for times (lower is better).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def parse_args(description: str, figures: Sequence[str], argv: Sequence[str] | None = None):
    """The flags every bench script takes: --quick, --only NAME, --workdir DIR."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller workloads, so the script finishes in under two minutes",
    )
    parser.add_argument(
        "--only",
        choices=list(figures),
        metavar="NAME",
        help=f"run one figure only; one of: {', '.join(figures)}",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="parent folder of the stores (kept afterwards); default: a temp folder, removed",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def work_folder(parent: Path | None, prefix: str) -> Iterator[Path]:
    """A fresh folder for this run's stores: under ``parent`` and kept, or temporary."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent)).resolve()
        progress(f"stores in {path} (kept)")
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix=prefix)).resolve()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def progress(message: str) -> None:
    """A progress note on stderr (stdout carries the figures)."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds ``fn()`` took (time.perf_counter) and what it returned."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def median_ms(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> tuple[float, Any]:
    """Median milliseconds of ``repeat`` calls after ``warmup`` untimed ones; last result."""
    value = None
    for _ in range(warmup):
        value = fn()
    times = []
    for _ in range(repeat):
        seconds, value = timed(fn)
        times.append(seconds * 1000.0)
    return statistics.median(times), value


def fmt(value: float) -> str:
    """A figure with a sensible number of digits."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


@dataclass
class Results:
    """Figures of one bench script: a human line each as they come, RESULT lines at the end."""

    bench: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        metric: str,
        loopwise: float,
        mlflow: float,
        *,
        higher_is_better: bool,
        unit: str,
        note: str = "",
    ) -> None:
        ratio = loopwise / mlflow if higher_is_better else mlflow / loopwise
        self.rows.append(
            {
                "bench": self.bench,
                "metric": metric,
                "loopwise": float(loopwise),
                "mlflow": float(mlflow),
                "ratio": float(ratio),
            }
        )
        better = "higher" if higher_is_better else "lower"
        line = (
            f"{metric}: loopwise {fmt(loopwise)} {unit} | mlflow {fmt(mlflow)} {unit} | "
            f"loopwise {fmt(ratio)}x better ({better} is better)"
        )
        if note:
            line += f"\n    {note}"
        print(line, flush=True)

    def print_results(self) -> None:
        if self.rows:
            print()
        for row in self.rows:
            print(f"RESULT {json.dumps(row)}", flush=True)
