"""Who a page speaks for: the session cookie.

The cookie (:data:`COOKIE`) holds the caller's API token itself — pasted on the sign-in
page, or issued by the server when a sign-in link is used — and is ``HttpOnly`` (no script
reads it), ``SameSite=Strict`` (no other site's page sends it), ``Secure`` when the page
was served over https, and scoped to the web app's base path. Every request verifies it as
the API verifies a bearer token (the app's ``ApiAuth``: signature, expiry, revocation), so
a revoked token signs its pages out at once.

In dev mode (``beamish serve --dev``, loopback only) the cookie may instead say
:data:`DEV_COOKIE`: the dev user :data:`DEV_USER`, trusted only on a request that reached
the server on a loopback address, as the API trusts a ``user_id`` in dev mode.
"""

from __future__ import annotations

from typing import Final

from fastapi import Request
from starlette.responses import Response

from beamish.auth import AuthError, Principal, dev_mode_allowed
from beamish.server.api.deps import ApiAuth, get_auth

COOKIE: Final = "beamish_session"
DEV_COOKIE: Final = "dev"
DEV_USER: Final = "dev"
SESSION_LIFETIME_S: Final = 7 * 24 * 3600
"""How long the cookie is kept (a token that expires sooner ends the session sooner)."""


def reached_on_loopback(request: Request) -> bool:
    """Whether the request arrived on a loopback address (dev mode's condition)."""
    server = request.scope.get("server")
    return server is None or dev_mode_allowed(str(server[0]))


def dev_mode_here(request: Request) -> bool:
    """Whether this request may be signed in as the dev user."""
    return get_auth(request).dev_mode and reached_on_loopback(request)


def signed_in(request: Request) -> Principal | None:
    """The principal of the request's cookie, or None (no cookie, or one not valid now)."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    if value == DEV_COOKIE:
        return Principal(DEV_USER) if dev_mode_here(request) else None
    return verify(get_auth(request), value)


def verify(auth: ApiAuth, token: str) -> Principal | None:
    """``token``'s principal as the API would see it, or None."""
    try:
        principal = auth.authenticator(token, {})
    except AuthError:
        return None
    return principal


def set_cookie(response: Response, request: Request, value: str, *, base: str,
               max_age: int = SESSION_LIFETIME_S) -> None:
    """Sign the browser in with ``value`` (a token, or :data:`DEV_COOKIE`)."""
    response.set_cookie(COOKIE, value, max_age=max(1, max_age), path=base, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def clear_cookie(response: Response, request: Request, *, base: str) -> None:
    """Sign the browser out."""
    response.delete_cookie(COOKIE, path=base, httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


__all__ = ["COOKIE", "DEV_COOKIE", "DEV_USER", "SESSION_LIFETIME_S", "clear_cookie",
           "dev_mode_here", "reached_on_loopback", "set_cookie", "signed_in", "verify"]
