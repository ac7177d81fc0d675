"""Server-side downsampling: peaks, ends and NaN survive; short series come back whole."""

from __future__ import annotations

import time

import numpy as np
import pytest

from loopwise.server.downsample import MIN_POINTS, downsample


def series(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(n, dtype=np.int64), np.random.default_rng(seed).random(n)


def test_a_short_series_comes_back_whole():
    steps, values = series(1000)
    assert downsample(steps, values, 1000).tolist() == list(range(1000))


def test_a_long_series_keeps_every_peak_and_both_ends():
    steps, values = series(100_000)
    values[12_345], values[67_891], values[99_998] = 50.0, -50.0, 7.0
    keep = downsample(steps, values, 300)
    assert len(keep) <= 300
    assert {0, 12_345, 67_891, 99_998, 99_999} <= set(keep.tolist())
    assert np.all(np.diff(keep) > 0)  # ascending, no duplicates


def test_each_bucket_keeps_its_min_and_max():
    steps, values = series(10_000, seed=3)
    keep = downsample(steps, values, 100)  # (100 - 1) // 3 = 33 buckets of equal step range
    kept = set(keep.tolist())
    edges = 9_999 * np.arange(1, 33) / 33
    bucket = np.searchsorted(edges, steps, side="right")
    for b in range(33):
        inside = np.flatnonzero(bucket == b)
        assert int(inside[np.argmax(values[inside])]) in kept
        assert int(inside[np.argmin(values[inside])]) in kept
        assert int(inside[-1]) in kept


def test_uneven_steps_bucket_by_step_not_by_position():
    steps = np.concatenate([np.arange(1000), np.arange(1_000_000, 1_000_010)])
    values = np.ones(len(steps))
    values[1005] = 9.0
    keep = downsample(steps, values, 30)
    assert 1005 in keep.tolist()
    assert len(keep) <= 30


def test_nan_and_infinities():
    steps, values = series(50_000)
    values[100], values[30_000], values[40_000] = np.nan, np.inf, -np.inf
    values[45_000:45_010] = np.nan
    keep = downsample(steps, values, 100)
    kept = keep.tolist()
    assert len(kept) <= 100
    assert {30_000, 40_000} <= set(kept)  # ±inf are extremes
    assert 100 in kept
    assert 45_000 in kept
    all_nan = np.full(10_000, np.nan)
    keep = downsample(np.arange(10_000), all_nan, 10)
    assert keep[0] == 0
    assert keep[-1] == 9_999
    assert len(keep) <= 10


def test_duplicate_steps_and_one_step():
    steps = np.zeros(5000, dtype=np.int64)
    values = np.random.default_rng(1).random(5000)
    keep = downsample(steps, values, 10)
    assert int(np.argmax(values)) in keep.tolist()
    assert len(keep) <= 10


def test_too_few_points_asked_is_refused():
    steps, values = series(100)
    with pytest.raises(ValueError, match=str(MIN_POINTS)):
        downsample(steps, values, MIN_POINTS - 1)


def test_a_million_points_in_well_under_50_ms():
    steps, values = series(1_000_000)
    downsample(steps, values, 1000)
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        keep = downsample(steps, values, 1000)
        timings.append(time.perf_counter() - start)
    assert len(keep) <= 1000
    assert min(timings) < 0.05
