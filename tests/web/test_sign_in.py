"""Signing in and out in a real browser: a pasted token, a one-time link, dev mode."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import expect

from tests.web._pages import answered, connected, say, sign_in
from tests.web._server import SECRET, WebServer, token
from tests.web.conftest import Browsing


def test_a_page_sends_to_sign_in_and_back_to_itself(browse: Browsing, web: WebServer) -> None:
    """An unauthenticated page redirects to sign in; the token brings the user back to it,
    in an HttpOnly, SameSite=Strict cookie that no script can read."""
    page = browse.page
    page.goto(web.url + "/settings")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Fsettings$"))
    browse.screenshot("sign-in")
    assert browse.transferred() < 150_000
    sign_in(page, web, "ada", path="/settings")
    expect(page.get_by_role("heading", name="LLM settings")).to_be_visible()
    [cookie] = browse.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (
        "beamish_session", True, "Strict")
    assert page.evaluate("document.cookie") == ""


def test_a_bad_token_is_refused_with_a_message(browse: Browsing, web: WebServer) -> None:
    """A token that does not verify keeps the user on the sign-in page, told why."""
    page = browse.page
    browse.allow(r"status of 401")
    page.goto(web.url + "/sign-in")
    page.get_by_label("API token").fill("not.a-token")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("That token was not accepted")
    assert browse.context.cookies() == []


def test_sign_in_never_leads_to_another_site(browse: Browsing, web: WebServer) -> None:
    """A next= naming another host is replaced by the app's own root."""
    page = browse.page
    page.goto(web.url + "/sign-in?next=//evil.example/x")
    page.get_by_label("API token").fill(token("ada"))
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(web.url + "/")


def test_sign_out_clears_the_cookie(browse: Browsing, web: WebServer) -> None:
    """Sign out ends the session: the next page asks to sign in again."""
    page = browse.page
    sign_in(page, web, "ada")
    connected(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    assert browse.context.cookies() == []
    page.goto(web.url + "/")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))


def _link(server: WebServer, user_id: str) -> str:
    """``beamish token create --user U --link``, run as a user would, against the server's
    database."""
    env = {**os.environ, "BEAMISH_SECRET_KEY": SECRET}
    made = subprocess.run(
        [sys.executable, "-c", "import sys; from beamish.cli import main; sys.exit(main())",
         "token", "create", "--user", user_id, "--link", "--base-url", server.url,
         "--database-url", f"sqlite:///{server.database}"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
        cwd=Path(__file__).resolve().parents[2])
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def test_a_sign_in_link_works_once(browse: Browsing, web: WebServer) -> None:
    """The CLI's link signs its user in after a click; the same link then says it was used."""
    link = _link(web, "ada")
    assert link.startswith(web.url + "/sign-in/link?code=")
    page = browse.page
    page.goto(link)
    browse.screenshot("sign-in-link")
    page.get_by_role("button", name="Sign in as ada").click()
    expect(page).to_have_url(web.url + "/")
    connected(page)
    expect(page.get_by_text("ada", exact=True)).to_be_visible()
    browse.allow(r"status of 400")
    other = browse.watch(browse.context.new_page())
    other.goto(link)
    other.get_by_role("button", name="Sign in as ada").click()
    expect(other.get_by_role("alert")).to_contain_text("was used already")


def test_dev_mode_says_so_and_signs_in_the_dev_user(browse: Browsing, tmp_path: Path) -> None:
    """On a loopback dev-mode server the sign-in page says so, and one click signs in the
    dev user, whose chat works."""
    server = WebServer(tmp_path, dev_mode=True).start()
    try:
        page = browse.page
        page.goto(server.url + "/")
        expect(page.get_by_role("note")).to_contain_text("Dev mode")
        page.get_by_role("button", name="Continue as the dev user").click()
        expect(page).to_have_url(server.url + "/")
        connected(page)
        answer = say(page, "hello from dev")
        answered(answer)
        expect(answer.locator(".content")).to_have_text("[echo] hello from dev")
    finally:
        problems = browse.finish()
        server.stop()
    assert problems == []
