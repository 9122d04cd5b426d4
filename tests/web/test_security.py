"""The web app's security decisions, without a server: the Origin check, the next= target,
and the headers every page carries."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import Response

from beamish.web.cookie import set_cookie
from beamish.web.security import CSP, SECURITY_HEADERS, safe_next, same_origin

SITE = "http://127.0.0.1:4000"


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "get"])
def test_safe_methods_need_no_origin(method: str) -> None:
    """Reading never changes state: no Origin or Referer is asked for."""
    assert same_origin(method, {}, SITE)


@pytest.mark.parametrize(("headers", "allowed"), [
    ({"origin": SITE}, True),
    ({"origin": SITE.upper()}, True),
    ({"origin": "http://127.0.0.1:4001"}, False),
    ({"origin": "https://127.0.0.1:4000"}, False),
    ({"origin": "http://evil.example"}, False),
    ({"origin": "null", "referer": SITE + "/settings"}, True),
    ({"origin": "null"}, False),
    ({"referer": SITE + "/settings?x=1"}, True),
    ({"referer": "http://evil.example/" + SITE}, False),
    ({"referer": "not a url"}, False),
    ({}, False),
    ({"origin": "http://evil.example", "referer": SITE + "/"}, False),
])
def test_a_state_change_must_come_from_this_site(headers: dict[str, str],
                                                 allowed: bool) -> None:
    """POST, PUT and DELETE pass only with this site's Origin, else its Referer."""
    for method in ("POST", "PUT", "DELETE"):
        assert same_origin(method, headers, SITE) is allowed


@pytest.mark.parametrize(("target", "expected"), [
    ("/ui/settings", "/ui/settings"),
    ("/ui/?c=c-1", "/ui/?c=c-1"),
    ("/ui/", "/ui/"),
    (None, "/ui/"),
    ("", "/ui/"),
    ("/elsewhere", "/ui/"),
    ("//evil.example/ui/", "/ui/"),
    ("/\\evil.example", "/ui/"),
    ("/ui/\\evil", "/ui/"),
    ("https://evil.example/ui/", "/ui/"),
    ("/ui/\r\nLocation: x", "/ui/"),
    ("/ui/" + "a" * 5000, "/ui/"),
])
def test_next_stays_on_this_site_under_the_base(target: str | None, expected: str) -> None:
    """Only a path under the app's base is kept as where to go after signing in."""
    assert safe_next(target, "/ui/") == expected


def test_next_under_the_root_base_refuses_protocol_relative_paths() -> None:
    """With the app at /, '//host' is still another site."""
    assert safe_next("//evil.example", "/") == "/"
    assert safe_next("/settings", "/") == "/settings"


def test_the_policy_allows_only_our_own_files() -> None:
    """The CSP allows no inline code, no other origin, and no framing."""
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CSP
    assert SECURITY_HEADERS["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("scheme", "secure"), [("https", True), ("http", False)])
def test_the_session_cookie_is_secure_over_https(scheme: str, secure: bool) -> None:
    """The cookie is HttpOnly and SameSite=Strict always, Secure when the page came over
    https, and scoped to the app's base path."""
    request = Request({"type": "http", "scheme": scheme, "method": "POST", "path": "/ui/",
                       "headers": [(b"host", b"example.org")], "query_string": b""})
    response = Response()
    set_cookie(response, request, "a-token", base="/ui/")
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/ui/" in cookie
    assert ("Secure" in cookie) is secure
