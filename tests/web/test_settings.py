"""The settings page in a real browser: edits through the API, the server's validation
messages, and the live preview of what each task type resolves to, and from which layer."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.web._pages import answered, connected, say, sign_in
from tests.web._server import WebServer
from tests.web.conftest import Browsing


def _preview_row(page: Page, task: str) -> Locator:
    return page.get_by_role("table").get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=task, exact=True))


def _form(page: Page, heading: str) -> Locator:
    return page.locator("form").filter(has=page.get_by_role("heading", name=heading))


def test_a_new_default_moves_the_preview_and_the_next_answer(browse: Browsing,
                                                              web: WebServer) -> None:
    """Saving a default model shows it in the preview as the user's own layer, and the next
    chat answer comes from it."""
    page = browse.page
    sign_in(page, web, "ada", path="/settings")
    chat_row = _preview_row(page, "chat")
    expect(chat_row).to_contain_text("echo")
    expect(chat_row).to_contain_text("system_default")
    assert browse.transferred() < 150_000
    default = _form(page, "Default model")
    default.get_by_label("Provider").select_option("openai_compatible")
    default.get_by_label("Model").fill("model-a")
    default.get_by_label("Temperature").fill("0.3")
    default.get_by_role("button", name="Save default").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(chat_row).to_contain_text("openai_compatible")
    expect(chat_row).to_contain_text("model-a")
    expect(chat_row).to_contain_text("user_default")
    expect(chat_row).to_contain_text("temperature=0.3")
    browse.screenshot("settings")
    page.get_by_role("link", name="Chat").click()
    connected(page)
    answer = say(page, "which model")
    answered(answer)
    expect(answer.locator(".content")).to_have_text("you said: which model")
    expect(answer.locator(".meta")).to_contain_text("openai_compatible · model-a")


def test_the_servers_validation_message_is_shown(browse: Browsing, web: WebServer) -> None:
    """A value the API refuses leaves the settings as they were and shows the API's words."""
    page = browse.page
    browse.allow(r"status of 422")
    sign_in(page, web, "ada", path="/settings")
    expect(_preview_row(page, "chat")).to_contain_text("system_default")
    default = _form(page, "Default model")
    default.get_by_label("Model").fill("echo-1")
    default.get_by_label("Temperature").fill("7")
    default.get_by_role("button", name="Save default").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("temperature")
    expect(alert).to_contain_text("less than or equal to 2")
    expect(_preview_row(page, "chat")).to_contain_text("system_default")


def test_a_task_override_shows_for_that_task_only_and_can_be_removed(
        browse: Browsing, web: WebServer) -> None:
    """An override for one task type moves that row of the preview, not the others; removing
    it moves the row back."""
    page = browse.page
    sign_in(page, web, "ada", path="/settings")
    task = _form(page, "Per-task override")
    task.get_by_label("Task type").select_option("reasoning")
    task.get_by_label("Provider").select_option("openai_compatible")
    task.get_by_label("Model").fill("model-b")
    task.get_by_role("button", name="Save override").click()
    expect(_preview_row(page, "reasoning")).to_contain_text("user_task_override")
    expect(_preview_row(page, "reasoning")).to_contain_text("model-b")
    expect(_preview_row(page, "chat")).not_to_contain_text("model-b")
    page.get_by_role("button", name="Remove Task reasoning").click()
    expect(page.get_by_role("status")).to_have_text("Removed Task reasoning.")
    expect(_preview_row(page, "reasoning")).not_to_contain_text("model-b")
