"""The sample dataset a new project starts with: customers and whether they churned.

Why generated rather than shipped: a few lines of seeded code are smaller than a CSV, and
the rows are the same on every machine and Python version (``random.Random`` with a fixed
seed is stable across versions), so the project's tests and its schema can rely on them.
The label depends on the features with noise, so a linear model learns it well but not
perfectly, as with real data.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

COLUMNS = ("customer_id", "tenure_months", "monthly_charges", "support_calls", "plan", "churned")
PLANS = ("basic", "standard", "premium")
ROWS = 600
SEED = 17


def sample_rows(rows: int = ROWS, seed: int = SEED) -> list[tuple[str, int, float, int, str, int]]:
    """``rows`` customers, the same ones for the same ``seed``."""
    rng = random.Random(seed)
    found = []
    for i in range(rows):
        tenure = rng.randint(1, 72)
        charges = round(rng.uniform(20.0, 120.0), 2)
        calls = min(9, int(rng.expovariate(0.6)))
        plan = rng.choice(PLANS)
        score = (
            -0.05 * tenure
            + 0.025 * charges
            + 0.55 * calls
            - 0.9 * (plan == "premium")
            - 0.6
            + rng.gauss(0.0, 0.6)
        )
        churned = int(1.0 / (1.0 + math.exp(-score)) > 0.5)
        found.append((f"c{i:05d}", tenure, charges, calls, plan, churned))
    return found


def write_sample(path: Path, rows: int = ROWS, seed: int = SEED) -> Path:
    """Write the sample as CSV (a header, then one line per customer) to ``path``."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(sample_rows(rows, seed))
    return path
