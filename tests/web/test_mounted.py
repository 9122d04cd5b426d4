"""The web app in a host FastAPI app, under a prefix, over real HTTP: every link relative
to the prefix, the security headers on every answer, the Origin check on every change, and
the pages' API calls limited to what the pages need."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from beamish.auth import TokenSigner
from beamish.server import mount_beamish
from beamish.web import install_web
from beamish.web.security import CSP
from tests.server.test_mount import SECRET, _host_app, _settings, _uvicorn

pytestmark = pytest.mark.anyio


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A host app with beamish mounted and the web app under /ui, served by uvicorn."""
    app = _host_app()
    mount_beamish(app, _settings(tmp_path))
    install_web(app, prefix="/ui")
    async with _uvicorn(app) as port:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10,
                                     headers={"origin": base}) as client:
            yield client


async def _signed_in(client: httpx.AsyncClient, user_id: str = "ada") -> None:
    answer = await client.post("/ui/sign-in", data={
        "token": TokenSigner(SECRET).issue(user_id), "next": "/ui/settings"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/settings"
    cookie = answer.headers["set-cookie"]
    assert "Path=/ui/" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http here; https sets it


async def test_every_link_is_under_the_prefix(host: httpx.AsyncClient) -> None:
    """Redirects, page links, scripts and the proxy all live under /ui; the host's own
    routes and the API stay where they were."""
    first = await host.get("/ui/settings")
    assert first.status_code == 303
    assert first.headers["location"] == "/ui/sign-in?next=%2Fui%2Fsettings"
    await _signed_in(host)
    page = await host.get("/ui/settings")
    assert page.status_code == 200
    links = re.findall(r'(?:href|src|action|data-api|data-token-url)="([^"]+)"', page.text)
    assert links
    assert [link for link in links if not link.startswith(("/ui/", "#"))] == []
    assert (await host.get("/mine")).json() == {"host": "yes"}
    assert (await host.get("/health")).status_code == 200
    script = await host.get("/ui/static/settings.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    again = await host.get("/ui/static/settings.js",
                           headers={"if-none-match": script.headers["etag"]})
    assert again.status_code == 304
    assert (await host.get("/ui/static/nope.js")).status_code == 404
    assert (await host.get("/ui/static/..%2Fpages.py")).status_code == 404


async def test_every_answer_carries_the_security_headers(host: httpx.AsyncClient) -> None:
    """Pages, redirects, static files and API calls all carry the CSP and nosniff."""
    await _signed_in(host)
    for path in ("/ui/", "/ui/sign-in", "/ui/static/app.css",
                 "/ui/web-api/users/ada/llm-config"):
        answer = await host.get(path)
        assert answer.headers["content-security-policy"] == CSP, path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "same-origin", path


async def test_a_change_from_another_site_is_refused(host: httpx.AsyncClient) -> None:
    """A POST or PUT naming another origin, or none, gets a 403 page and changes nothing."""
    await _signed_in(host)
    body = {"provider": "echo", "model": "evil"}
    for headers in ({"origin": "http://evil.example"}, {"origin": ""}):
        refused = await host.put("/ui/web-api/users/ada/llm-config", json=body,
                                 headers=headers)
        assert refused.status_code == 403
        assert "did not come from a page of this site" in refused.text
    config = (await host.get("/ui/web-api/users/ada/llm-config")).json()
    assert config["default"] is None
    signed_out = await host.post("/ui/sign-out", headers={"origin": "http://evil.example"})
    assert signed_out.status_code == 403
    assert (await host.get("/ui/")).status_code == 200  # still signed in


async def test_the_pages_api_calls_are_the_users_own(host: httpx.AsyncClient) -> None:
    """Through the web app a user changes their own settings, with the API's validation,
    reaches no one else's, and reaches nothing beyond the users' and LLM routes."""
    await _signed_in(host, "ada")
    saved = await host.put("/ui/web-api/users/ada/llm-config",
                           json={"provider": "echo", "model": "echo-1"})
    assert saved.status_code == 200
    assert saved.json()["default"]["model"] == "echo-1"
    invalid = await host.put("/ui/web-api/users/ada/llm-config",
                             json={"provider": "echo", "model": "echo-1",
                                   "parameters": {"temperature": 9}})
    assert invalid.status_code == 422
    assert invalid.json()["error"]["details"][0]["loc"][-1] == "temperature"
    other = await host.get("/ui/web-api/users/bob/llm-config")
    assert other.status_code == 403
    admin = await host.get("/ui/web-api/admin/providers")
    assert admin.status_code == 404
    host.cookies.clear()
    anonymous = await host.get("/ui/web-api/users/ada/llm-config")
    assert anonymous.status_code == 401


async def test_a_socket_token_is_short_lived_and_not_the_cookie(
        host: httpx.AsyncClient) -> None:
    """The page's socket connects with a fresh token of the user's scope, which expires
    soon; the cookie's token never appears in an answer."""
    cookie_token = TokenSigner(SECRET).issue("ada", admin=True)
    await host.post("/ui/sign-in", data={"token": cookie_token, "next": "/ui/"})
    answer = await host.post("/ui/socket-token")
    assert answer.status_code == 200
    socket_token = answer.json()["token"]
    assert socket_token != cookie_token
    principal = TokenSigner(SECRET).verify(socket_token)
    assert (principal.user_id, principal.is_admin) == ("ada", False)
    assert principal.expires_at is not None
    page = await host.get("/ui/")
    assert cookie_token not in page.text
