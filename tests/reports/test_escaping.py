"""Every report escapes what it prints and is one self-contained file: a column name, a
slice value or a model name holding markup prints as text, and nothing is fetched (no
script, no stylesheet link, no image, no URL in a ``src`` or ``href``)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopwise.config import load_settings
from loopwise.data.drift.detect import detect_drift
from loopwise.data.quality.report import data_quality
from loopwise.data.schema_inference import infer_schema
from loopwise.data.validation import validate
from loopwise.evaluation.evaluate import evaluate
from loopwise.monitoring.report import monitor_report
from loopwise.monitoring.results import WindowResult
from loopwise.monitoring.storage import save_window
from loopwise.store import Store

HOSTILE = "<script>alert('x')</script>"


def frame(n: int, seed: int, *, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    return pd.DataFrame(
        {
            HOSTILE: x,
            "region": rng.choice(["north", HOSTILE], n),
            "y": (x + rng.normal(0, 0.5, n) > 0).astype(int),
        }
    )


def drift_page(tmp_path: Path) -> Path:
    return detect_drift(frame(500, 1), frame(500, 2, shift=1.0)).to_html(tmp_path / "d.html")


def validation_page(tmp_path: Path) -> Path:
    schema = infer_schema(frame(500, 1).assign(region="north"), target="y")
    report = validate(frame(300, 2), schema)  # HOSTILE is a new value of region
    assert not report.ok
    return report.to_html(tmp_path / "v.html")


def quality_page(tmp_path: Path) -> Path:
    data = frame(400, 3)
    data[f"{HOSTILE} copy"] = data["y"]
    return data_quality(data, "y").to_html(tmp_path / "q.html")


def evaluation_page(tmp_path: Path) -> Path:
    data = frame(600, 4)
    return evaluate(
        None, data, "y", predictions=(data[HOSTILE] > 0.3).astype(int), slices=["region"]
    ).to_html(tmp_path / "e.html")


def monitoring_page(tmp_path: Path) -> Path:
    store = Store(
        settings=load_settings(
            store_url=f"sqlite:///{tmp_path}/lw.db", artifacts_url=str(tmp_path / "art")
        )
    )
    start = datetime(2026, 12, 3, tzinfo=UTC)
    for i in range(4):
        values: dict[tuple[str, str], float | None] = {
            ("", f"drift.{HOSTILE}"): 0.1 * i,
            ("", "perf.accuracy"): 0.9,
            (f"region={HOSTILE}", "perf.accuracy"): 0.8,
        }
        save_window(
            store,
            [
                WindowResult(
                    monitor="ep",
                    endpoint="ep",
                    start=start + i * timedelta(hours=1),
                    end=start + (i + 1) * timedelta(hours=1),
                    model=f"{HOSTILE}/{1 + i // 2}",
                    model_version_id=None,
                    rows=100,
                    labelled=100,
                    values=values,
                )
            ],
        )
    try:
        return monitor_report(store, "ep").to_html(tmp_path / "m.html")
    finally:
        store.db.engine.dispose()


PAGES: dict[str, Callable[[Path], Path]] = {
    "drift": drift_page,
    "validation": validation_page,
    "quality": quality_page,
    "evaluation": evaluation_page,
    "monitoring": monitoring_page,
}


@pytest.fixture(params=sorted(PAGES))
def page(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return PAGES[request.param](tmp_path).read_text(encoding="utf-8")


def test_markup_in_names_and_values_prints_as_text(page: str) -> None:
    assert HOSTILE not in page
    assert "<script" not in page
    assert html.escape(HOSTILE) in page  # shown, as text


def test_the_page_is_one_self_contained_file(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<style>" in page  # the styles are inline
    for fetching in ("<script", "<link", "<img", "<iframe", "<object", "@import"):
        assert fetching not in page, fetching
    assert not re.search(r"""\b(src|href)\s*=""", page)
    assert not re.search(r"url\((?!#)", page)  # only references within the page (clip paths)
    # the only URL is the SVG namespace, which is a name, not a fetch
    assert set(re.findall(r"(?:https?:)?//[^\s\"'<>]+", page)) <= {"http://www.w3.org/2000/svg"}
