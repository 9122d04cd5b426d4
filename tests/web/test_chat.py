"""The chat page in a real browser: streaming answers, stop, regenerate, safe markdown,
reload and restart, and one user's conversation closed to another."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault
from tests.web._pages import answered, answers, connected, say, sign_in
from tests.web._server import WebServer, token
from tests.web.conftest import Browsing

ATTACK = ('<script>window.__pwned = 1</script> <img src="x" onerror="window.__pwned = 2"> '
          "**bold** and `code`")


def _use_fake_provider(server: WebServer, user_id: str) -> None:
    """Make the fake OpenAI-compatible server the user's default, through the HTTP API."""
    answer = httpx.put(f"{server.url}/api/users/{user_id}/llm-config",
                       json={"provider": "openai_compatible", "model": "model-a"},
                       headers={"Authorization": f"Bearer {token(user_id)}"}, timeout=10)
    assert answer.status_code == 200, answer.text


def test_an_answer_streams_in_with_provider_model_and_tokens(browse: Browsing,
                                                             web: WebServer) -> None:
    """A message gets the echo answer, with its provider, model and token count under it."""
    page = browse.page
    sign_in(page, web, "ada")
    connected(page)
    assert browse.transferred() < 150_000
    answer = say(page, "hello there")
    answered(answer)
    expect(answer.locator(".content")).to_have_text("[echo] hello there")
    expect(answer.locator(".meta")).to_have_text("echo · echo-1 · 5 tokens")
    expect(page.get_by_role("navigation", name="Conversations")).to_contain_text("hello there")
    browse.screenshot("chat")


def test_stop_ends_an_answer_mid_stream(browse: Browsing, web: WebServer,
                                        fake_llm: FakeLLMServer) -> None:
    """Stop cancels an answer that is still streaming: its tokens so far stay, marked
    stopped, and the next message is answered."""
    _use_fake_provider(web, "ada")
    fake_llm.script(Fault.stall(after_tokens=2))
    page = browse.page
    sign_in(page, web, "ada")
    connected(page)
    answer = say(page, "tell me a long story")
    expect(answer.locator(".content")).to_have_text("you said:")
    expect(answer).to_have_attribute("aria-busy", "true")
    page.get_by_role("button", name="Stop").click()
    expect(answer).to_have_attribute("data-state", "cancelled")
    expect(answer.locator(".meta")).to_have_text("Stopped")
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    after = say(page, "again")
    answered(after)
    expect(after.locator(".content")).to_have_text("you said: again")


def test_regenerate_answers_the_last_question_anew(browse: Browsing, web: WebServer) -> None:
    """Regenerate replaces the last answer with a new one to the same question."""
    page = browse.page
    sign_in(page, web, "ada")
    connected(page)
    first = say(page, "what is beamish")
    answered(first)
    old_request = first.get_attribute("data-request")
    page.get_by_role("button", name="Regenerate").click()
    expect(answers(page).last).not_to_have_attribute("data-request", old_request or "")
    answered(answers(page).last)
    expect(answers(page)).to_have_count(1)
    expect(answers(page).last.locator(".content")).to_have_text("[echo] what is beamish")


def test_a_model_answer_cannot_run_script(browse: Browsing, web: WebServer) -> None:
    """An answer holding <script> and <img onerror> shows them as text, live and after a
    reload, while its markdown still renders."""
    page = browse.page
    sign_in(page, web, "ada")
    connected(page)
    answer = say(page, ATTACK)
    answered(answer)
    for _ in range(2):
        content = answers(page).last.locator(".content")
        expect(content).to_contain_text('<script>window.__pwned = 1</script>')
        expect(content).to_contain_text('onerror="window.__pwned = 2"')
        expect(content.locator("strong")).to_have_text("bold")
        expect(content.locator("code")).to_have_text("code")
        assert page.locator("#messages img, #messages script").count() == 0
        assert page.evaluate("window.__pwned") is None
        page.reload()
        connected(page)


def test_history_survives_a_reload_and_the_page_reconnects_after_a_restart(
        browse: Browsing, web: WebServer, fake_llm: FakeLLMServer) -> None:
    """A reload shows the conversation so far; when the server restarts, the page
    reconnects by itself and chats on."""
    page = browse.page
    sign_in(page, web, "ada")
    connected(page)
    answered(say(page, "remember me"))
    page.reload()
    connected(page)
    expect(page.locator('#messages .message[data-role="user"]')).to_have_text(
        ["You remember me"])
    expect(answers(page).last.locator(".content")).to_have_text("[echo] remember me")
    # While the server is down, the browser logs the refused connections.
    browse.allow(r"WebSocket connection to .* failed|ERR_CONNECTION_REFUSED")
    port = web.port
    web.stop()
    expect(page.get_by_role("status")).to_have_text("Reconnecting…")
    restarted = WebServer(web.database.parent, openai_url=fake_llm.openai_url,
                          port=port).start()
    try:
        connected(page)
        answer = say(page, "still there?")
        answered(answer)
        expect(answer.locator(".content")).to_have_text("[echo] still there?")
    finally:
        problems = browse.finish()
        restarted.stop()
    assert problems == []


def test_a_user_cannot_open_another_users_data(browse: Browsing, web: WebServer) -> None:
    """Bob, given the id of Ada's conversation, sees an empty one of his own, and the web
    app's API calls refuse him Ada's settings."""
    page = browse.page
    sign_in(page, web, "ada")
    connected(page)
    answered(say(page, "ada's secret"))
    conversation = page.locator("#chat").get_attribute("data-conversation")
    bob = browse.context.browser
    assert bob is not None
    other = bob.new_context()
    try:
        bob_page = browse.watch(other.new_page())
        sign_in(bob_page, web, "bob", path=f"/?c={conversation}")
        connected(bob_page)
        expect(bob_page.locator("#messages .message")).to_have_count(0)
        expect(bob_page.locator("body")).not_to_contain_text("ada's secret")
        refused = bob_page.request.get(web.url + "/web-api/users/ada/llm-config")
        assert refused.status == 403
        assert "may not reach the data of user 'ada'" in refused.json()["error"]["message"]
        own = bob_page.request.get(web.url + "/web-api/users/bob/llm-config")
        assert own.status == 200
    finally:
        other.close()
