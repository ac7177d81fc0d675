"""Browser checks of the HTML reports: each report is opened in headless Chromium at
1280 px, and the page's own layout (bounding boxes read with JavaScript) is checked:

- every SVG lies inside its card (an SVG outside a card: inside the page's body), and every
  element of an SVG inside the SVG's box (what sticks out is cut off or runs into the
  neighbouring card);
- no two SVG text labels overlap.

A full-page screenshot is kept under ``tests/artifacts/reports/`` (ignored by git) and its
path printed, so a reviewer can look at the page. The browser is Debian's Chromium
(``/usr/bin/chromium``, which ``make test`` installs when missing) driven by Playwright;
``playwright install`` (a download) is never needed. Without Chromium or Playwright these
tests skip, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WIDTH = 1280
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "reports"

# Reads the layout of the page: a list of problems, each a readable line.
_CHECK_JS = """
() => {
  const tol = 1;  // px of rounding allowed
  const problems = [];
  const r = e => e.getBoundingClientRect();
  const inside = (a, b) => a.left >= b.left - tol && a.right <= b.right + tol &&
                           a.top >= b.top - tol && a.bottom <= b.bottom + tol;
  const fmt = b => `[${b.left.toFixed(0)},${b.top.toFixed(0)} ${b.width.toFixed(0)}x` +
                   `${b.height.toFixed(0)}]`;
  const where = e => {
    const card = e.closest('.card');
    const h = card && card.querySelector('h3');
    if (h) return `card "${h.textContent.trim()}"`;
    let p = e.closest('svg');
    while (p && !/^H[1-3]$/.test(p.tagName)) p = p.previousElementSibling || p.parentElement;
    return p ? `section "${p.textContent.trim()}"` : 'page';
  };
  const what = e => {
    const text = (e.textContent || '').trim().slice(0, 40);
    return `<${e.tagName.toLowerCase()}>` + (text ? ` "${text}"` : '');
  };
  const hidden = 'defs, clipPath, title, desc, mask, pattern, marker, symbol';
  const body = r(document.body);
  svgs: for (const svg of document.querySelectorAll('svg')) {
    const card = svg.closest('.card');
    const outer = card ? [r(card), 'card'] : [body, 'page'];
    if (!inside(r(svg), outer[0])) {
      problems.push(`svg outside its ${outer[1]}: ${fmt(r(svg))} in ${where(svg)} ` +
                    `${fmt(outer[0])}`);
    }
    const frame = r(svg);  // what lies outside the svg's box is cut off
    for (const el of svg.querySelectorAll('*')) {
      if (el.closest(hidden)) continue;
      const b = r(el);
      if (b.width === 0 && b.height === 0) continue;
      if (!inside(b, frame)) {
        problems.push(`outside its svg: ${what(el)} ${fmt(b)} in ${where(svg)} ${fmt(frame)}`);
        if (problems.length > 200) break svgs;
      }
    }
  }
  const labels = [...document.querySelectorAll('svg text')]
    .filter(t => !t.closest('defs'))
    .map(t => [t, r(t)]).filter(([, b]) => b.width > 0 && b.height > 0);
  for (let i = 0; i < labels.length; i++) {
    for (let j = i + 1; j < labels.length; j++) {
      const [a, ba] = labels[i], [b, bb] = labels[j];
      const w = Math.min(ba.right, bb.right) - Math.max(ba.left, bb.left);
      const h = Math.min(ba.bottom, bb.bottom) - Math.max(ba.top, bb.top);
      if (w > tol && h > tol) {
        problems.push(`labels overlap: ${what(a)} ${fmt(ba)} and ${what(b)} ${fmt(bb)} in ` +
                      `${where(a)}`);
        if (problems.length > 400) return problems;
      }
    }
  }
  return problems;
}
"""


@dataclass(frozen=True)
class PageCheck:
    """What the browser found on a report: ``problems`` (empty when the page is fine), the
    screenshot's path, and the number of SVG charts and text labels checked."""

    problems: list[str]
    screenshot: Path
    charts: int
    labels: int

    def report(self) -> str:
        shown = "\n  ".join(self.problems[:25])
        more = f"\n  ... and {len(self.problems) - 25} more" if len(self.problems) > 25 else ""
        head = f"{len(self.problems)} layout problem(s), screenshot {self.screenshot}"
        return f"{head}:\n  {shown}{more}"


def _require_browser() -> None:
    missing = []
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        missing.append(f"Chromium ({CHROMIUM}; apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright for Python (pip install -e '.[dev]')")
    if missing:
        message = f"browser tests need {' and '.join(missing)}"
        if IN_CI:
            pytest.fail(f"{message}; under CI they must run (make test installs Chromium).")
        pytest.skip(message)


@pytest.fixture
def check_page(browser: Any) -> Callable[[Path, str], PageCheck]:
    """``check_page(html_path, name)``: open the report at 1280 px, keep a full-page
    screenshot as ``tests/artifacts/reports/<name>.png`` (path printed) and return what the
    layout checks found."""

    def check(path: Path, name: str) -> PageCheck:
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        try:
            page.goto(Path(path).resolve().as_uri())
            page.wait_for_load_state("load")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / f"{name}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the {name} report: {shot}")
            problems = page.evaluate(_CHECK_JS)
            charts = page.evaluate("document.querySelectorAll('svg').length")
            labels = page.evaluate("document.querySelectorAll('svg text').length")
        finally:
            page.close()
        return PageCheck(problems, shot, charts, labels)

    return check
