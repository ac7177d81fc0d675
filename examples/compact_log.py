"""Compacting a prediction log: a batch job's many small files become one per hour.

1. A scoring job runs every five minutes for half a day and logs each batch of predictions
   with ``lw.log_predictions``, and the labels as they come with ``lw.log_feedback``: a
   file per call, 144 of each.
2. ``lw.compact_predictions`` merges every closed hour into one file (safe while writers
   keep logging, and from several processes at once: each hour is merged under a lease).
3. The log reads back the same rows, from 24 files instead of 288, faster.

The same from the command line: ``loopwise endpoints compact scoring-job``;
``loopwise monitor watch`` does it once an hour for the hours it watches.

Run it with ``python examples/compact_log.py`` (store in ./.loopwise) or point it
elsewhere with LOOPWISE_STORE_URL / LOOPWISE_ARTIFACTS_URL.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

import loopwise as lw

ENDPOINT = "scoring-job"
HOURS = 12
EVERY = timedelta(minutes=5)


def run_job(start: datetime) -> int:
    """The job's calls: a batch of predictions each time, the labels of the last batch."""
    rng = np.random.default_rng(3)
    calls = 0
    for i in range(HOURS * 60 // 5):
        at = start + i * EVERY
        batch = pd.DataFrame(
            {"income": rng.lognormal(10.5, 0.4, 50), "age": rng.uniform(20, 70, 50)}
        )
        batch["prediction"] = (batch["income"] > 40_000).astype(int)
        logged = lw.log_predictions(ENDPOINT, batch, timestamp=at)
        labels = pd.DataFrame(
            {
                "request_id": logged.request_id,
                "row": range(len(batch)),
                "label": rng.integers(0, 2, len(batch)),
                "timestamp": at + timedelta(minutes=2),
            }
        )
        lw.log_feedback(ENDPOINT, labels)
        calls += 1
    return calls


def timed_read(start: datetime) -> tuple[pd.DataFrame, float]:
    begin = time.perf_counter()
    frame = lw.read_predictions(ENDPOINT, start, start + timedelta(hours=HOURS))
    return frame.sort_values(["request_id", "row"]).reset_index(drop=True), (
        time.perf_counter() - begin
    )


def main() -> None:
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    calls = run_job(start)
    before, read_before = timed_read(start)
    print(f"{calls} log_predictions calls, {len(before):,} rows; read in {read_before:.2f} s")

    result = lw.compact_predictions(ENDPOINT)
    print(
        f"compacted {result.hours} hours (predictions and feedback): "
        f"{result.files_before} files -> {result.files_after}, {result.rows:,} rows"
    )
    after, read_after = timed_read(start)
    pd.testing.assert_frame_equal(after, before)  # the same rows, labels and all
    print(f"the same {len(after):,} rows read in {read_after:.2f} s")
    assert result.files_after == 2 * HOURS
    assert after["label"].notna().all()


if __name__ == "__main__":
    main()
