"""Rendering a report page: the Jinja2 environment, the shared layout, the atomic write.

Why templates: the markup of every report lives in ``templates/`` (package data, shipped in
the wheel) and every value reaches it through Jinja2's autoescape, so no report escapes text
by hand and a column named ``<script>`` prints as text. Python code builds the data a page
shows (rows, cards, charts); the templates lay it out. Each page extends ``base.html.j2``:
the title, a subtitle, when and by which loopwise version it was generated, and the styles
inline, so the file opens offline with nothing to fetch.

Escaping is :func:`html.escape`'s (``'`` as ``&#x27;``, ``"`` as ``&quot;``), applied by the
environment's ``finalize`` to every value that is not markup already (a chart, a macro's
output), so pages read exactly as they did before the templates.

How template lines join: a line break, with the indentation around it, is dropped where it
touches markup (after ``>`` or ``}``, before ``<`` or ``{``) and is one space inside running
text. So templates are indented for reading while the page is as compact as hand-written
markup: no stray whitespace between inline elements, none inside an SVG label.

Jinja2 is imported on the first render, not when a result module imports :func:`write_page`.
"""

from __future__ import annotations

import html
import math
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopwise._version import __version__
from loopwise.clock import now

if TYPE_CHECKING:  # the types only: Jinja2 itself is imported on the first render
    from jinja2 import Environment
    from markupsafe import Markup

# a line break touching markup or a template tag: dropped; any other: one space
_TIGHT_BREAK = re.compile(r"(?<=[>}])[ \t]*\n\s*|[ \t]*\n\s*(?=[<{])")
_LOOSE_BREAK = re.compile(r"[ \t]*\n\s*")


@dataclass(frozen=True)
class Badge:
    """A coloured label in a table cell; ``kind`` is ok, error, warning or info."""

    text: str
    kind: str


@dataclass(frozen=True)
class Wrapped:
    """Long text (paths, commands) that wraps anywhere instead of widening its table."""

    text: str


def render(template: str, **context: Any) -> str:
    """The complete HTML document of page ``template`` (which extends ``base.html.j2``)."""
    stamp = now().strftime("%Y-%m-%d %H:%M UTC")
    return (
        _environment()
        .get_template(template)
        .render(generated=stamp, version=__version__, **context)
    )


def render_fragment(template: str, **context: Any) -> Markup:
    """A piece of markup (a chart) rendered from ``template``, safe to put in a page."""
    from markupsafe import Markup

    return Markup(_environment().get_template(template).render(**context))


def write_page(path: str | os.PathLike[str], document: str) -> None:
    """Write a document atomically (a temporary file, then a rename), creating folders."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(document, encoding="utf-8")
    os.replace(tmp, target)


def number(value: Any) -> str:
    """A table value as text: a dash for None, floats to 4 significant digits."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.4g}"
    return str(value)


@cache
def _environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined
    from jinja2.ext import Extension
    from markupsafe import Markup

    class JoinLines(Extension):
        """Joins template lines as the module docstring says, before parsing."""

        def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
            return _LOOSE_BREAK.sub(" ", _TIGHT_BREAK.sub("", source))

    def escaped(value: Any) -> Markup:
        return value if hasattr(value, "__html__") else Markup(html.escape(str(value)))

    env = Environment(
        loader=PackageLoader("loopwise.reports", "templates"),
        autoescape=True,
        finalize=escaped,
        undefined=StrictUndefined,
        extensions=[JoinLines],
    )
    env.filters["num"] = number
    env.filters["px"] = lambda value: f"{value:.1f}"
    env.tests["badge"] = lambda value: isinstance(value, Badge)
    env.tests["wrapped"] = lambda value: isinstance(value, Wrapped)
    env.tests["parts"] = lambda value: isinstance(value, list)
    return env
