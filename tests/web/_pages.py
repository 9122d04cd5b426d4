"""What the browser tests do as a person would: by roles and labels."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.web._server import WebServer, token


def sign_in(page: Page, server: WebServer, user_id: str, *, admin: bool = False,
            path: str = "/") -> None:
    """Open ``path``, get sent to sign in, paste ``user_id``'s token, and arrive back."""
    page.goto(server.url + path)
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    page.get_by_label("API token").fill(token(user_id, admin=admin))
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(server.url + path)


def connected(page: Page) -> None:
    """Wait for the chat page's socket to have joined the conversation."""
    expect(page.get_by_role("status")).to_have_text("Connected")


def answers(page: Page) -> Locator:
    """The assistant's messages on the chat page."""
    return page.locator('#messages .message[data-role="assistant"]')


def say(page: Page, text: str) -> Locator:
    """Send ``text``; the answer it gets (the newest assistant message)."""
    before = answers(page).count()
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()
    expect(answers(page)).to_have_count(before + 1)
    return answers(page).last


def answered(answer: Locator) -> None:
    """Wait for the answer to be done (its provider, model and tokens shown)."""
    expect(answer).to_have_attribute("data-state", "done")
