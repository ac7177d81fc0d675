"""A long metric series cut down to what a chart can draw, without losing a peak.

Why not every k-th point (MLflow's stride sampling): a loss spike between two kept points
disappears, and a curve looks smooth where training was not. Here the step range is cut
into equal buckets and each bucket keeps its minimum, its maximum and its last point (what
W&B does), so the drawn envelope is the true one. The first and the last point of the
series are always kept, so a chart starts and ends where the run did.

NaN and ±inf: ±inf are ordinary extremes (a bucket's max or min). NaN is neither; a
bucket holding a NaN keeps its first NaN point as well, so a run that diverged shows it.

Everything is vectorised NumPy over the sorted series: bucket boundaries by
``searchsorted``, minima and maxima by ``reduceat``, no Python loop over points.
"""

from __future__ import annotations

import numpy as np

#: The fewest points asked for that still leaves room for one bucket's min, max, last and
#: NaN, plus the first point.
MIN_POINTS = 5


def downsample(steps: np.ndarray, values: np.ndarray, max_points: int) -> np.ndarray:
    """Indices (ascending) of the points to keep from a series sorted by step: every index
    when it has at most ``max_points`` points, else at most ``max_points`` of them, per
    step bucket its min, max, last and first NaN."""
    if max_points < MIN_POINTS:
        raise ValueError(f"max_points must be at least {MIN_POINTS}, got {max_points}")
    n = len(steps)
    if n <= max_points:
        return np.arange(n)
    nan = np.isnan(values)
    has_nan = bool(nan.any())
    per_bucket = 4 if has_nan else 3
    buckets = max(1, (max_points - 1) // per_bucket)
    first, span = float(steps[0]), float(steps[-1]) - float(steps[0])
    # Bucket edges in step space; a point's bucket is where its step falls between them.
    edges = first + span * np.arange(1, buckets) / buckets
    starts = np.unique(np.concatenate(([0], np.searchsorted(steps, edges, side="left"))))
    starts = starts[starts < n]
    bucket_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    lasts = np.append(starts[1:] - 1, n - 1)
    kept = [np.array([0]), lasts]
    for reduce in (np.fmin, np.fmax):
        extreme = reduce.reduceat(values, starts)
        hits = np.flatnonzero(values == extreme[bucket_of])
        kept.append(_first_per_bucket(hits, bucket_of))
    if has_nan:
        kept.append(_first_per_bucket(np.flatnonzero(nan), bucket_of))
    return np.unique(np.concatenate(kept))


def _first_per_bucket(hits: np.ndarray, bucket_of: np.ndarray) -> np.ndarray:
    """The first of ``hits`` (ascending indices) in each bucket that has one."""
    if not len(hits):
        return hits
    buckets = bucket_of[hits]
    return hits[np.concatenate(([True], buckets[1:] != buckets[:-1]))]


__all__ = ["MIN_POINTS", "downsample"]
