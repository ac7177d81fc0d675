"""The UI's templates: one Jinja2 environment, pages answered as HTML responses.

Every value reaches the markup through autoescape, so a run named
``<script>alert(1)</script>`` is shown as text. Numbers print as the reports print them
(:func:`loopwise.reports.page.number`), and pages share the reports' colours and table
style (``static/ui.css``), so a report opened from a run looks at home.

A request from htmx (header ``HX-Request``) gets the fragment the page names instead of the
whole page; answers say ``Vary: HX-Request`` so no cache mixes the two up.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from loopwise._version import __version__
from loopwise.reports.page import number
from loopwise.server.ui.assets import asset_url

if TYPE_CHECKING:
    from jinja2 import Environment

#: Headers of every UI page: scripts and styles only from this server (no inline script),
#: frames only of this server's sandboxed files, no framing by other sites, no sniffing.
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "vary": "HX-Request",
}


@cache
def environment() -> Environment:
    """The templates under ``templates/`` with autoescape and undefined names as errors."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("loopwise.server.ui", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = number
    env.globals["asset_url"] = asset_url
    env.globals["version"] = __version__
    return env


def is_htmx(request: Request) -> bool:
    """True when htmx sent the request (it swaps a fragment, not the page)."""
    return request.headers.get("hx-request") == "true"


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context`` (and the request) as an HTML answer."""
    body = environment().get_template(template).render(request=request, **context)
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """The page shown for a refusal: the message as text, with ``status`` (a 4xx)."""
    return render(request, "error.html.j2", status=status, status_code=status, message=message)
