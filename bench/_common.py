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
import gc
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
    return make_parser(description, figures).parse_args(argv)


def make_parser(description: str, figures: Sequence[str]) -> argparse.ArgumentParser:
    """The parser behind :func:`parse_args`, for scripts that add flags of their own."""
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
    return parser


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


def median_ms_over(
    fn: Callable[[Any], Any], args: Sequence[Any], warmup: int = 1
) -> tuple[float, list[Any]]:
    """Median milliseconds of ``fn(arg)``, one timed call per ``arg`` (e.g. random queries),
    after ``warmup`` untimed calls on the first args; every timed call's result, in order."""
    for arg in list(args)[:warmup]:
        fn(arg)
    times = []
    values = []
    for arg in args:
        seconds, value = timed(lambda arg=arg: fn(arg))
        times.append(seconds * 1000.0)
        values.append(value)
    return statistics.median(times), values


# -- peak memory ---------------------------------------------------------------------------


def rss_mb(field: str = "VmRSS") -> float | None:
    """This process's resident memory (or ``VmHWM``, its high-water mark) in MiB; None
    where /proc is unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def max_rss_mb() -> float:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in MiB (kilobytes on Linux, bytes on macOS)."""
    import resource  # POSIX only: imported here so the other helpers work everywhere

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (``VmHWM``), so it then
    measures one operation; False where that is not possible (not Linux, no /proc)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return rss_mb("VmHWM") is not None


@dataclass
class Measurement:
    """Median seconds of an operation, every timed run, and the peak memory of one call."""

    seconds: float
    times: list[float]
    peak_mb: float | None
    memory_method: str  # "vmhwm" (peak RSS above the RSS before the call) or "ru_maxrss"
    value: Any = None  # what the last call returned


def measure(
    fn: Callable[[], Any],
    *,
    repeat: int = 3,
    warmup_below: float = 10.0,
    single_above: float | None = None,
) -> Measurement:
    """Time ``fn`` as the median of ``repeat`` calls and measure its peak memory.

    The first call measures memory: the process's peak RSS during that call minus its RSS
    just before it (Linux ``VmHWM`` after resetting it through /proc/self/clear_refs; else
    the growth of ``ru_maxrss``, which misses peaks below an earlier high-water mark). Run
    it in a fresh process with the inputs already loaded, so the figure is what the call
    itself needs. When that first call took under ``warmup_below`` seconds it was a
    warm-up and ``repeat`` timed calls follow; otherwise it counts as the first of them.
    When it took over ``single_above`` seconds, it is the only one.
    """
    gc.collect()
    exact = reset_peak_rss()
    before = rss_mb() if exact else max_rss_mb()
    seconds, value = timed(fn)
    after = rss_mb("VmHWM") if exact else max_rss_mb()
    peak = None if before is None or after is None else max(0.0, after - before)
    times = []
    if seconds >= warmup_below:
        times.append(seconds)
    if single_above is None or seconds <= single_above:
        while len(times) < repeat:
            run, value = timed(fn)
            times.append(run)
    if not times:
        times.append(seconds)
    return Measurement(
        statistics.median(times), times, peak, "vmhwm" if exact else "ru_maxrss", value
    )


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

    def add_against(
        self,
        metric: str,
        loopwise: float,
        alternative: str,
        value: float | None,
        *,
        higher_is_better: bool,
        unit: str,
        note: str = "",
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Like :meth:`add`, against a named ``alternative`` (its key in the RESULT line);
        ``value`` None means it could not be measured (its fields and the ratio are null).
        ``extra`` fields are appended to the RESULT line."""
        ratio = None
        if value is not None:
            ratio = loopwise / value if higher_is_better else value / loopwise
        row = {
            "bench": self.bench,
            "metric": metric,
            "loopwise": float(loopwise),
            alternative: None if value is None else float(value),
            "ratio": None if ratio is None else float(ratio),
        }
        row.update(extra or {})
        self.rows.append(row)
        better = "higher" if higher_is_better else "lower"
        if value is None or ratio is None:
            line = f"{metric}: loopwise {fmt(loopwise)} {unit} | {alternative} not measured"
        else:
            line = (
                f"{metric}: loopwise {fmt(loopwise)} {unit} | {alternative} {fmt(value)} {unit} | "
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


def run_figures(figures: Sequence[str], run_one: Callable[[str], Any]) -> None:
    """Run each figure in turn, with progress notes and its wall time on stderr."""
    for figure in figures:
        progress(f"{figure} ...")
        seconds, _ = timed(lambda figure=figure: run_one(figure))
        progress(f"{figure} done in {seconds:.1f}s")


def exit_code(failed_checks: Sequence[str]) -> int:
    """1 (after listing them on stderr) when a correctness check failed, else 0."""
    if not failed_checks:
        return 0
    print(f"{len(failed_checks)} check(s) failed:", file=sys.stderr)
    for message in failed_checks:
        print(f"  {message}", file=sys.stderr)
    return 1
