"""The admin console in a real browser: providers (the key never shown again), template
labels and render previews, configs with the API's validation messages, the live runtime
view, and 403s for everyone else — on every page and from the proxy."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.llm.providers._fake_llm_server import OPENAI_KEY, FakeLLMServer
from tests.web._pages import sign_in
from tests.web._server import WebServer, token
from tests.web.conftest import Browsing

ADMIN_PAGES = ("/admin", "/admin/providers", "/admin/configs", "/admin/templates",
               "/admin/users", "/admin/audit", "/admin/runtime")


def _api(server: WebServer, method: str, path: str, **kwargs: Any) -> Any:
    """The HTTP API as the admin ``root``."""
    headers = {"Authorization": f"Bearer {token('root', admin=True)}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        answer = http.request(method, path, **kwargs)
    assert answer.is_success, answer.text
    return answer.json()


def test_an_admin_adds_a_provider_and_validates_it_and_its_key_stays_hidden(
        browse: Browsing, web: WebServer, fake_llm: FakeLLMServer) -> None:
    """The added provider is listed with its key masked, validates against the fake
    upstream (its models stored), and the key is in no page's HTML afterwards."""
    page = browse.page
    sign_in(page, web, "root", admin=True, path="/admin/providers")
    assert browse.transferred() < 150_000
    form = page.locator("#provider-add")
    form.get_by_label("Name").fill("upstream")
    form.get_by_label("Kind").select_option("openai_compatible")
    form.get_by_label("Base URL").fill(fake_llm.openai_url)
    form.get_by_label("API key").fill(OPENAI_KEY)
    form.get_by_role("button", name="Add provider").click()
    expect(page.get_by_role("status")).to_have_text("Added upstream.")
    listed = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="upstream"))
    expect(listed).to_contain_text(OPENAI_KEY[-4:])
    expect(form.get_by_label("API key")).to_have_value("")
    assert OPENAI_KEY not in page.content()
    page.get_by_role("button", name="Validate upstream").click()
    expect(page.get_by_role("status")).to_have_text("Validated upstream: reachable.")
    expect(page.locator("#provider-result")).to_contain_text("2 models stored")
    expect(listed).to_contain_text("validated")
    page.get_by_role("button", name="Models of upstream").click()
    expect(page.locator("#provider-result")).to_contain_text("model-a")
    browse.screenshot("admin-providers")
    page.reload()
    expect(listed).to_contain_text(OPENAI_KEY[-4:])
    assert OPENAI_KEY not in page.content()
    page.get_by_role("button", name="Remove upstream").click()
    expect(page.get_by_role("status")).to_have_text("Removed upstream.")
    expect(listed).to_have_count(0)


def test_an_admin_moves_a_template_label_and_previews_a_render(browse: Browsing,
                                                               web: WebServer) -> None:
    """Moving ``production`` to version 2 shows in the lists, and the default render then
    uses version 2 with the given variables."""
    _api(web, "POST", "/api/admin/templates",
         json={"name": "greet", "prompt": "Hello {{ name }}.", "system": "Be kind."})
    _api(web, "POST", "/api/admin/templates/greet/versions",
         json={"prompt": "Hi {{ name }}, welcome!"})
    _api(web, "PUT", "/api/admin/templates/greet/labels/production", json={"version": 1})
    page = browse.page
    sign_in(page, web, "root", admin=True, path="/admin/templates")
    templates = page.get_by_role("table", name="Templates by name, with their labels")
    expect(templates).to_contain_text("production → v1")
    page.get_by_role("button", name="Open template greet").click()
    page.get_by_label("Label", exact=True).fill("production")
    page.get_by_label("To version").select_option("2")
    page.get_by_role("button", name="Move label").click()
    expect(page.get_by_role("status")).to_have_text("Moved production of greet to v2.")
    expect(templates).to_contain_text("production → v2")
    versions = page.get_by_role("table", name="Versions, newest first")
    expect(versions.get_by_role("row").nth(1)).to_contain_text("production")
    page.get_by_label("Variables (JSON object)").fill('{"name": "Ada"}')
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-prompt")).to_have_text("Hi Ada, welcome!")
    expect(page.locator("#preview-meta")).to_contain_text("greet v2")
    page.get_by_label("Render", exact=True).select_option("version:1")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-prompt")).to_have_text("Hello Ada.")
    expect(page.locator("#preview-system")).to_have_text("Be kind.")
    browse.screenshot("admin-templates")


def test_a_config_the_api_refuses_shows_its_message(browse: Browsing, web: WebServer) -> None:
    """A tier config with a temperature out of range shows the API's validation message;
    a valid one is listed and can be removed."""
    page = browse.page
    browse.allow(r"status of 422")
    sign_in(page, web, "root", admin=True, path="/admin/configs")
    form = page.locator("#config-form")
    form.get_by_label("Task type").select_option("chat")
    form.get_by_label("Tier").select_option("pro")
    form.get_by_label("Provider").select_option("echo")
    form.get_by_label("Model", exact=True).fill("echo-1")
    form.get_by_label("Temperature").fill("7")
    form.get_by_role("button", name="Save config").click()
    expect(page.get_by_role("alert")).to_contain_text("less than or equal to 2")
    form.get_by_label("Temperature").fill("0.5")
    form.get_by_role("button", name="Save config").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    configs = page.get_by_role("table", name="By task type, then tier (* is every tier)")
    expect(configs).to_contain_text("temperature=0.5")
    page.get_by_role("button", name="Check configuration").click()
    expect(page.locator("#config-report")).to_contain_text("chat (pro)")
    page.get_by_role("button", name="Remove config chat pro").click()
    expect(configs).not_to_contain_text("temperature=0.5")


def test_the_runtime_view_updates_without_a_reload(browse: Browsing, web: WebServer) -> None:
    """Opening a session shows in the live view's count and list by polling alone: the
    page is the same document throughout."""
    page = browse.page
    sign_in(page, web, "root", admin=True, path="/admin/runtime")
    expect(page.locator("#rt-tree .node").first).to_be_visible()
    before = int(page.locator("#rt-sessions").inner_text())
    page.evaluate("window.__sameDocument = true")
    opened = httpx.post(f"{web.url}/api/sessions", json={"session_id": "watched"},
                        headers={"Authorization": f"Bearer {token('ada')}"}, timeout=30)
    assert opened.status_code in (200, 201), opened.text
    expect(page.locator("#rt-sessions")).to_have_text(str(before + 1))
    live = page.get_by_role("table", name="Open sessions and their users")
    expect(live.get_by_role("row").filter(has_text="watched")).to_contain_text("ada")
    assert page.evaluate("window.__sameDocument") is True
    browse.screenshot("admin-runtime")


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_a_non_admin_gets_a_403_page(browse: Browsing, web: WebServer, path: str) -> None:
    """Every admin page answers a signed-in non-admin with a 403 page that says why."""
    page = browse.page
    browse.allow(r"status of 403")
    sign_in(page, web, "bob", path="/usage")
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    response = page.goto(web.url + path)
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", name="Forbidden (403)")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("admin principals only")


def test_the_proxy_refuses_a_non_admins_admin_calls(browse: Browsing, web: WebServer) -> None:
    """A non-admin's page script calling the admin API through the proxy gets 403s (reads
    and writes), and nothing is registered; an admin's same call goes through."""
    page = browse.page
    browse.allow(r"status of 403")
    sign_in(page, web, "bob", path="/usage")
    statuses = page.evaluate("""async () => {
        const get = await fetch("web-api/admin/providers");
        const post = await fetch("web-api/admin/providers", {method: "POST",
            headers: {"content-type": "application/json"},
            body: JSON.stringify({name: "sneaky", kind: "echo"})});
        const runtime = await fetch("web-api/admin/runtime");
        return [get.status, post.status, runtime.status, (await get.json()).error.message];
    }""")
    assert statuses[:3] == [403, 403, 403]
    assert re.search("admin principals only", statuses[3])
    assert _api(web, "GET", "/api/admin/providers")["providers"] == []


def test_an_admin_sets_a_users_tier(browse: Browsing, web: WebServer) -> None:
    """A user with usage is listed with the default tier; setting ``pro`` shows at once and
    after a reload (it is stored)."""
    answer = httpx.post(f"{web.url}/v1/chat/completions", timeout=30,
                        headers={"Authorization": f"Bearer {token('ada')}"},
                        json={"messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 200, answer.text
    page = browse.page
    sign_in(page, web, "root", admin=True, path="/admin/users")
    ada = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="ada"))
    expect(ada).to_contain_text("free")
    page.get_by_label("User id").fill("ada")
    page.get_by_label("Tier").select_option("pro")
    page.get_by_role("button", name="Set tier").click()
    expect(page.get_by_role("status")).to_have_text("ada is now on tier pro.")
    expect(ada.locator(".tier")).to_have_text("pro")
    page.reload()
    expect(ada.locator(".tier")).to_have_text("pro")


def test_the_audit_log_is_paged_newest_first(browse: Browsing, web: WebServer) -> None:
    """55 changes make a first page of 50, newest first, and a second of the 5 oldest."""
    for n in range(55):
        _api(web, "PUT", f"/api/admin/users/u{n:02}/profile", json={"tier": "pro"})
    page = browse.page
    sign_in(page, web, "root", admin=True, path="/admin/audit")
    rows = page.get_by_role("table").locator("tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("u54")
    expect(page.get_by_role("link", name="Newer entries")).to_have_count(0)
    page.get_by_role("link", name="Older entries").click()
    expect(rows).to_have_count(5)
    expect(rows.last).to_contain_text("u00")
    expect(page.get_by_role("link", name="Older entries")).to_have_count(0)
    page.get_by_role("link", name="Newer entries").click()
    expect(rows).to_have_count(50)


def test_the_runtime_view_polls_only_while_the_tab_is_visible(browse: Browsing,
                                                              web: WebServer) -> None:
    """In the page's virtual time: a poll every period while visible, none while hidden
    however long, and one at once when shown again."""
    page = browse.page
    page.clock.install()
    # Calls counted as they are made (a poll makes two), not when they are answered.
    page.add_init_script("""{ const real = window.fetch; window.__fetches = 0;
        window.fetch = (...args) => { window.__fetches += 1; return real(...args); }; }""")
    sign_in(page, web, "root", admin=True, path="/admin/runtime")
    runtime = page.locator("#runtime")
    expect(runtime).to_have_attribute("data-polls", "1")
    page.clock.run_for(1500)
    expect(runtime).to_have_attribute("data-polls", "2")
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {value: true, configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    assert page.evaluate("window.__fetches") == 4
    page.clock.run_for(60_000)
    assert page.evaluate("window.__fetches") == 4
    expect(runtime).to_have_attribute("data-polls", "2")
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {value: false, configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    expect(runtime).to_have_attribute("data-polls", "3")
    page.clock.run_for(1500)
    expect(runtime).to_have_attribute("data-polls", "4")
