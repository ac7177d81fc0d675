"""How every UI page answers: the page once the caller may read, a 4xx refusal as an error
page, the login form when a token is needed.

One function, shared by each page module, so a refusal looks the same on every page and no
caller's mistake reaches the browser as a 500.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from loopwise.errors import LoopwiseError, Unauthorized
from loopwise.server.ui.render import error_page
from loopwise.server.ui.session import check_reader, login_redirect


def guarded_page(request: Request, build: Callable[[], Response]) -> Response:
    """``build()`` once the caller may read; a 4xx refusal becomes an error page."""
    try:
        check_reader(request)
        return build()
    except Unauthorized:
        return login_redirect(request)
    except LoopwiseError as error:
        if error.http_status >= 500:
            raise
        return error_page(request, error.http_status, str(error))
