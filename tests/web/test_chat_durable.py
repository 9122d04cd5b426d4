"""The chat page over durable conversations, in a real browser: history through a reload
and a server restart, rename and delete in the list, thumbs that persist, regenerate in
place, the model picker, and stop recording partial usage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from pydantic import SecretStr

from beamish.llm.settings import LLMSettings, ProviderSettings
from tests.llm.providers._fake_llm_server import OPENAI_KEY, FakeLLMServer, Fault
from tests.web._pages import answered, answers, connected, say, sign_in
from tests.web._server import WebServer, token
from tests.web.conftest import Browsing


def _api(server: WebServer, method: str, path: str, user: str = "ada") -> httpx.Response:
    return httpx.request(method, f"{server.url}/api/{path}", timeout=10,
                         headers={"Authorization": f"Bearer {token(user)}"})


def _conversation(page: Page) -> str:
    found = page.locator("#chat").get_attribute("data-conversation")
    assert found is not None
    return found


def _questions(page: Page) -> list[str]:
    return page.locator('#messages .message[data-role="user"] .content').all_inner_texts()


@contextmanager
def _restarted(browse: Browsing, web: WebServer, fake_llm: FakeLLMServer,
               ) -> Iterator[WebServer]:
    """Stop ``web`` and start a new server on its database and port, for the block."""
    browse.allow(r"WebSocket connection to .* failed|ERR_CONNECTION_REFUSED")
    port = web.port
    web.stop()
    restarted = WebServer(web.database.parent, openai_url=fake_llm.openai_url,
                          port=port).start()
    try:
        yield restarted
    finally:
        problems = browse.finish()
        restarted.stop()
    assert problems == []


def test_history_survives_a_reload_and_a_restart(browse: Browsing, web: WebServer,
                                                 fake_llm: FakeLLMServer) -> None:
    """After a reload, and after the server restarts on the same SQLite file, the page
    shows the conversation, each answer's provider, model and tokens, and its list title."""
    page = browse.page
    sign_in(page, web, "ada")
    connected(page)
    answered(say(page, "first question"))
    answered(say(page, "second question"))
    page.reload()
    connected(page)
    assert _questions(page) == ["first question", "second question"]
    with _restarted(browse, web, fake_llm):
        page.reload()
        connected(page)
        assert _questions(page) == ["first question", "second question"]
        expect(answers(page).locator(".content")).to_have_text(
            ["[echo] first question", "[echo] second question"])
        expect(answers(page).first.locator(".meta")).to_have_text("echo · echo-1 · 5 tokens")
        expect(page.get_by_role("navigation", name="Conversations")).to_contain_text(
            "first question")
        answer = say(page, "third")
        answered(answer)
        expect(answer.locator(".content")).to_have_text("[echo] third")
        browse.screenshot("chat-restored")


def test_rename_and_delete_in_the_list(browse: Browsing, web: WebServer) -> None:
    """A conversation renamed in the list keeps its title after a reload; a deleted one
    is gone from the list and the store, while the ledger keeps its request."""
    page = browse.page
    sign_in(page, web, "ada")
    connected(page)
    answered(say(page, "plan a trip"))
    first = _conversation(page)
    page.get_by_role("link", name="New conversation").click()
    connected(page)
    answered(say(page, "throwaway"))
    page.reload()
    connected(page)
    page.get_by_role("button", name="Rename plan a trip").click()
    title = page.get_by_label("New title for plan a trip")
    expect(title).to_be_focused()
    title.fill("Holiday")
    title.press("Enter")
    expect(page.get_by_role("link", name="Holiday")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete throwaway").click()  # the open one: go home
    expect(page).to_have_url(web.url + "/")
    connected(page)
    conversations = page.get_by_role("navigation", name="Conversations")
    expect(conversations.get_by_role("link", name="Holiday")).to_be_visible()
    expect(conversations).not_to_contain_text("throwaway")
    assert _conversation(page) == first
    listed = _api(web, "GET", "conversations").json()["conversations"]
    assert [(c["conversation_id"], c["title"]) for c in listed] == [(first, "Holiday")]
    usage = _api(web, "GET", "users/ada/usage").json()
    assert usage["totals"]["requests"] == 2  # the deleted conversation's answer stays


def test_thumbs_persist_and_can_be_changed(browse: Browsing, web: WebServer) -> None:
    """Thumbs up on an answer is still pressed after a reload; changed to down, it stays
    down."""
    page = browse.page
    sign_in(page, web, "ada")
    connected(page)
    answered(say(page, "rate me"))
    good = page.get_by_role("button", name="Good answer")
    bad = page.get_by_role("button", name="Bad answer")
    good.click()
    expect(good).to_have_attribute("aria-pressed", "true")
    page.reload()
    connected(page)
    expect(good).to_have_attribute("aria-pressed", "true")
    expect(bad).to_have_attribute("aria-pressed", "false")
    bad.click()
    expect(bad).to_have_attribute("aria-pressed", "true")
    expect(good).to_have_attribute("aria-pressed", "false")
    page.reload()
    connected(page)
    expect(bad).to_have_attribute("aria-pressed", "true")
    shown = _api(web, "GET", f"conversations/{_conversation(page)}").json()
    assert [m["rating"] for m in shown["messages"]] == [None, "down"]


def test_regenerate_replaces_the_last_answer_in_the_stored_history(
        browse: Browsing, web: WebServer) -> None:
    """Regenerate gives a new answer in place of the last one: after a reload the page, and
    the store, hold the question once and the new answer only."""
    page = browse.page
    sign_in(page, web, "ada")
    connected(page)
    first = say(page, "what is beamish")
    answered(first)
    old_request = first.get_attribute("data-request")
    page.get_by_role("button", name="Regenerate").click()
    expect(answers(page).last).not_to_have_attribute("data-request", old_request or "")
    answered(answers(page).last)
    new_request = answers(page).last.get_attribute("data-request")
    page.reload()
    connected(page)
    assert _questions(page) == ["what is beamish"]
    expect(answers(page)).to_have_count(1)
    expect(answers(page).last).to_have_attribute("data-request", new_request or "")
    stored = _api(web, "GET", f"conversations/{_conversation(page)}").json()["messages"]
    assert [(m["role"], m["request_id"]) for m in stored] == [
        ("user", stored[0]["request_id"]), ("assistant", new_request)]


def test_picking_a_model_changes_the_next_answers_provider(
        browse: Browsing, tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """With the fake OpenAI-compatible model picked, the next answer says it came from
    there; the choice is kept for the conversation across a reload."""
    server = WebServer(tmp_path / "picker", openai_url=fake_llm.openai_url)
    server.settings = server.settings.model_copy(update={"llm": LLMSettings(providers={
        "openai_compatible": ProviderSettings(
            base_url=fake_llm.openai_url, api_key=SecretStr(OPENAI_KEY),
            default_model="model-a")})})
    server.start()
    try:
        page = browse.page
        sign_in(page, server, "ada")
        connected(page)
        answered(say(page, "hello"))
        expect(answers(page).last.locator(".meta")).to_contain_text("echo · echo-1")
        page.get_by_label("Model").select_option("openai_compatible|model-a")
        page.get_by_label("Task type").select_option("chat")
        answer = say(page, "and now?")
        answered(answer)
        expect(answer.locator(".meta")).to_contain_text("openai_compatible · model-a")
        expect(answer.locator(".content")).to_have_text("you said: and now?")
        page.reload()
        connected(page)
        expect(page.get_by_label("Model")).to_have_value("openai_compatible|model-a")
    finally:
        problems = browse.finish()
        server.stop()
    assert problems == []


def test_stop_mid_answer_records_the_partial_usage(browse: Browsing, web: WebServer,
                                                   fake_llm: FakeLLMServer) -> None:
    """Stopping an answer mid-stream records the tokens streamed so far in the ledger."""
    fake_llm.script(Fault.stall(after_tokens=2))
    page = browse.page
    sign_in(page, web, "ada")
    connected(page)
    chosen = httpx.put(f"{web.url}/api/users/ada/llm-config", timeout=10,
                       json={"provider": "openai_compatible", "model": "model-a"},
                       headers={"Authorization": f"Bearer {token('ada')}"})
    assert chosen.status_code == 200, chosen.text
    answer = say(page, "tell me a long story")
    expect(answer.locator(".content")).to_have_text("you said:")
    page.get_by_role("button", name="Stop").click()
    expect(answer).to_have_attribute("data-state", "cancelled")
    usage = _api(web, "GET", "users/ada/usage").json()
    assert (usage["totals"]["requests"], usage["totals"]["completion_tokens"]) == (1, 2)
