"""The web app in a host FastAPI app, under a prefix, over real HTTP: every link relative
to the prefix, the security headers on every answer, the Origin check on every change, and
the pages' API calls limited to what the pages need."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from beamish.auth import TokenSigner
from beamish.server import mount_beamish
from beamish.web import install_web
from beamish.web.security import CSP
from tests.server.test_mount import SECRET, _host_app, _settings
from tests.web._server import HostServer

# Synchronous, its server in a thread: Playwright's driver, while it runs for the browser
# tests of this folder, holds an event loop in the main thread (see conftest.playwright).


@pytest.fixture
def host(tmp_path: Path) -> Iterator[httpx.Client]:
    """A host app with beamish mounted and the web app under /ui, served by uvicorn."""
    app = _host_app()
    mount_beamish(app, _settings(tmp_path))
    install_web(app, prefix="/ui")
    server = HostServer(app).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10,
                          headers={"origin": server.url}) as client:
            yield client
    finally:
        server.stop()


def _signed_in(client: httpx.Client, user_id: str = "ada") -> None:
    answer = client.post("/ui/sign-in", data={
        "token": TokenSigner(SECRET).issue(user_id), "next": "/ui/settings"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/settings"
    cookie = answer.headers["set-cookie"]
    assert "Path=/ui/" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http here; https sets it


def test_every_link_is_under_the_prefix(host: httpx.Client) -> None:
    """Redirects, page links, scripts and the proxy all live under /ui; the host's own
    routes and the API stay where they were."""
    first = host.get("/ui/settings")
    assert first.status_code == 303
    assert first.headers["location"] == "/ui/sign-in?next=%2Fui%2Fsettings"
    _signed_in(host)
    page = host.get("/ui/settings")
    assert page.status_code == 200
    links = re.findall(r'(?:href|src|action|data-api|data-token-url)="([^"]+)"', page.text)
    assert links
    assert [link for link in links if not link.startswith(("/ui/", "#"))] == []
    assert (host.get("/mine")).json() == {"host": "yes"}
    assert (host.get("/health")).status_code == 200
    script = host.get("/ui/static/settings.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    again = host.get("/ui/static/settings.js",
                           headers={"if-none-match": script.headers["etag"]})
    assert again.status_code == 304
    assert (host.get("/ui/static/nope.js")).status_code == 404
    assert (host.get("/ui/static/..%2Fpages.py")).status_code == 404


def test_every_answer_carries_the_security_headers(host: httpx.Client) -> None:
    """Pages, redirects, static files and API calls all carry the CSP and nosniff."""
    _signed_in(host)
    for path in ("/ui/", "/ui/sign-in", "/ui/static/app.css",
                 "/ui/web-api/users/ada/llm-config"):
        answer = host.get(path)
        assert answer.headers["content-security-policy"] == CSP, path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "same-origin", path


def test_a_change_from_another_site_is_refused(host: httpx.Client) -> None:
    """A POST or PUT naming another origin, or none, gets a 403 page and changes nothing."""
    _signed_in(host)
    body = {"provider": "echo", "model": "evil"}
    for headers in ({"origin": "http://evil.example"}, {"origin": ""}):
        refused = host.put("/ui/web-api/users/ada/llm-config", json=body,
                                 headers=headers)
        assert refused.status_code == 403
        assert "did not come from a page of this site" in refused.text
    config = (host.get("/ui/web-api/users/ada/llm-config")).json()
    assert config["default"] is None
    signed_out = host.post("/ui/sign-out", headers={"origin": "http://evil.example"})
    assert signed_out.status_code == 403
    assert (host.get("/ui/")).status_code == 200  # still signed in


def test_the_pages_api_calls_are_the_users_own(host: httpx.Client) -> None:
    """Through the web app a user changes their own settings, with the API's validation,
    reaches no one else's, and reaches nothing beyond the users' and LLM routes (the admin
    API's are for admins: a 403)."""
    _signed_in(host, "ada")
    saved = host.put("/ui/web-api/users/ada/llm-config",
                           json={"provider": "echo", "model": "echo-1"})
    assert saved.status_code == 200
    assert saved.json()["default"]["model"] == "echo-1"
    invalid = host.put("/ui/web-api/users/ada/llm-config",
                             json={"provider": "echo", "model": "echo-1",
                                   "parameters": {"temperature": 9}})
    assert invalid.status_code == 422
    assert invalid.json()["error"]["details"][0]["loc"][-1] == "temperature"
    other = host.get("/ui/web-api/users/bob/llm-config")
    assert other.status_code == 403
    admin = host.get("/ui/web-api/admin/providers")
    assert admin.status_code == 403
    beyond = host.get("/ui/web-api/sessions")
    assert beyond.status_code == 404
    host.cookies.clear()
    anonymous = host.get("/ui/web-api/users/ada/llm-config")
    assert anonymous.status_code == 401


def test_a_socket_token_is_short_lived_and_not_the_cookie(
        host: httpx.Client) -> None:
    """The page's socket connects with a fresh token of the user's scope, which expires
    soon; the cookie's token never appears in an answer."""
    cookie_token = TokenSigner(SECRET).issue("ada", admin=True)
    host.post("/ui/sign-in", data={"token": cookie_token, "next": "/ui/"})
    answer = host.post("/ui/socket-token")
    assert answer.status_code == 200
    socket_token = answer.json()["token"]
    assert socket_token != cookie_token
    principal = TokenSigner(SECRET).verify(socket_token)
    assert (principal.user_id, principal.is_admin) == ("ada", False)
    assert principal.expires_at is not None
    page = host.get("/ui/")
    assert cookie_token not in page.text


def test_an_oversized_form_gets_a_413_page(host: httpx.Client) -> None:
    """A sign-in form beyond the bound is refused, saying so, and signs no one in."""
    refused = host.post("/ui/sign-in", data={"token": "x" * 20_000})
    assert refused.status_code == 413
    assert "at most 16384 bytes" in refused.text
    assert "set-cookie" not in refused.headers


def test_a_form_with_too_many_fields_gets_a_413_page(host: httpx.Client) -> None:
    """A sign-in form with more fields than the bound is refused, saying so, not a 500."""
    refused = host.post("/ui/sign-in", data={f"f{n}": "x" for n in range(40)})
    assert refused.status_code == 413
    assert "at most 16 fields" in refused.text
