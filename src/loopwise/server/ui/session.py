"""Who may see the UI: the store's API tokens, carried by a cookie.

While the store holds no token, every page is open (the laptop case, as in
:mod:`loopwise.server.access`). Once a token exists, a browser cannot send an
``Authorization`` header on a plain link, so the UI takes the token once on a login form
and keeps it in a cookie that scripts cannot read (``HttpOnly``) and that no other site's
page can make the browser send (``SameSite=Strict``); ``Secure`` over HTTPS. Each page
checks it as a request to the API would be checked: the token must allow ``read``.
A request may also send the usual ``Authorization: Bearer`` header instead.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from loopwise.auth.tokens import TokenAuthenticator, TokenInfo
from loopwise.errors import LoopwiseError, Unauthorized
from loopwise.server.ui.render import render

#: The cookie holding the token.
COOKIE = "loopwise_token"
#: The largest login form body read (a token is far shorter).
MAX_FORM_BYTES = 8192

router = APIRouter(include_in_schema=False)


def _authenticator(request: Request) -> TokenAuthenticator:
    return request.app.state.authenticator


def check_reader(request: Request) -> TokenInfo | None:
    """The request's token when it may read (None while the store has no token); raises
    :class:`~loopwise.errors.Unauthorized` or :class:`~loopwise.errors.Forbidden`."""
    secret = request.cookies.get(COOKIE)
    header = f"Bearer {secret}" if secret else request.headers.get("authorization")
    return _authenticator(request).authenticate(header, "read")


def login_redirect(request: Request) -> RedirectResponse:
    """Send the browser to the login form, coming back to this page afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?{urlencode({'next': here})}", status_code=303)


def _safe_next(target: str | None) -> str:
    """Only a path on this server: never another site (``//host`` or a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    """The form asking for an API token."""
    return render(request, "login.html.j2", next=_safe_next(next), message=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token sent by the form; on success keep it in the cookie and go on."""
    body = await request.body()
    form = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/"])[0])
    try:
        if not token:
            raise Unauthorized("Enter an API token (`loopwise tokens create NAME`).")
        _authenticator(request).authenticate(f"Bearer {token}", "read")
    except LoopwiseError as error:
        return render(
            request, "login.html.j2", status=error.http_status, next=target, message=str(error)
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """Forget the token cookie."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
