"""The outputs pages in a real browser: a job followed live from pending to completed,
feedback that persists, linked re-runs and regenerations, safe markdown answers, and one
user's output closed to another."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from beamish.auth import TokenSigner
from beamish.jobs import JobsSettings
from beamish.server import mount_beamish
from beamish.web import install_web
from beamish.web.outputs import MAX_OUTPUT_FORM_BYTES, PAGE_SIZE
from beamish.web.security import CSP
from tests.llm.providers._fake_llm_server import FakeLLMServer
from tests.server.test_mount import SECRET as MOUNT_SECRET
from tests.server.test_mount import _host_app, _settings
from tests.web._pages import sign_in
from tests.web._server import HostServer, WebServer, token
from tests.web.conftest import Browsing

ATTACK = ('<script>window.__pwned = 1</script> <img src="x" onerror="window.__pwned = 2"> '
          "**bold** and `code`")
_OUTPUT_URL = re.compile(r"/outputs/([0-9a-f]{32})$")


def start_job(page: Page, prompt: str, *, fmt: str = "text") -> str:
    """Start a job from the outputs page's form; the new output's id (its page is open)."""
    page.get_by_role("link", name="Outputs").click()
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Format").select_option(fmt)
    page.get_by_role("button", name="Start job").click()
    expect(page).to_have_url(_OUTPUT_URL)
    found = _OUTPUT_URL.search(page.url)
    assert found is not None
    return found.group(1)


def status(page: Page) -> str:
    """The open output's status, as its page shows it."""
    return page.locator('#output-live [data-field="status"]').inner_text()


def completed(page: Page) -> None:
    """Wait for the open output's page to show it completed."""
    expect(page.locator('#output-live [data-field="status"]')).to_have_text("completed")


def test_a_job_goes_from_pending_to_completed_live(browser: Browser, tmp_path: Path,
                                                   fake_llm: FakeLLMServer) -> None:
    """A job started from the form shows pending on its page and on the list; when a worker
    runs it, both show it completed, with its answer, without a reload."""
    # This server only enqueues ([jobs] enabled = false); a second one sharing its database
    # runs the jobs once the test starts it: the job is held pending without any timing.
    paused = WebServer(tmp_path, openai_url=fake_llm.openai_url)
    paused.settings = paused.settings.model_copy(update={"jobs": JobsSettings(enabled=False)})
    paused.start()
    worker: WebServer | None = None
    browse = Browsing(browser)
    try:
        page = browse.page
        sign_in(page, paused, "ada", path="/outputs")
        assert browse.transferred() < 150_000
        output_id = start_job(page, "hello jobs")
        assert status(page) == "pending"
        expect(page.locator("#output-live")).to_contain_text("No answer yet.")
        # Feedback is for a completed answer: offered once it is, not before (a rating sent
        # for an unfinished output is refused with a 409).
        expect(page.locator("#output-feedback")).to_contain_text("rated once it completes")
        expect(page.get_by_role("button", name="Thumbs up")).to_have_count(0)
        listing = browse.watch(browse.context.new_page())
        listing.goto(paused.url + "/outputs")
        row = listing.locator(f'tr[data-output="{output_id}"]')
        expect(row.locator('[data-field="status"]')).to_have_text("pending")
        browse.screenshot("output-pending")
        for tab in (page, listing):
            tab.evaluate("window.__notReloaded = true")
        worker = WebServer(tmp_path, openai_url=fake_llm.openai_url).start()
        completed(page)
        expect(page.locator("#output-live .answer")).to_have_text("[echo] hello jobs")
        expect(page.locator("#output-live")).to_contain_text("echo-1")
        expect(page.get_by_role("button", name="Thumbs up")).to_be_visible()
        expect(row.locator('[data-field="status"]')).to_have_text("completed")
        expect(row.locator('[data-field="model"]')).to_have_text("echo-1")
        expect(row.locator('[data-field="latency"]')).to_have_text(re.compile(r"^\d+ ms$"))
        for tab in (page, listing):
            assert tab.evaluate("window.__notReloaded") is True
        browse.screenshot("output")
    finally:
        problems = browse.finish()
        if worker is not None:
            worker.stop()
        paused.stop()
    assert problems == []


def test_feedback_persists_and_can_be_changed(browse: Browsing, web: WebServer) -> None:
    """Thumbs down with a reason is there after a reload; thumbs up replaces it, and the
    list's feedback filter follows."""
    page = browse.page
    sign_in(page, web, "ada", path="/outputs")
    output_id = start_job(page, "rate me")
    completed(page)
    page.get_by_label("Reason (optional)").fill("too short")
    page.get_by_role("button", name="Thumbs down").click()
    expect(page.locator("#feedback-now")).to_contain_text("thumbs down")
    page.reload()
    expect(page.locator("#feedback-now")).to_have_text("You rated this thumbs down: too short.")
    expect(page.get_by_role("button", name="Thumbs down")).to_have_attribute(
        "aria-pressed", "true")
    page.get_by_label("Reason (optional)").fill("")
    page.get_by_role("button", name="Thumbs up").click()
    expect(page.locator("#feedback-now")).to_contain_text("thumbs up")
    page.reload()
    expect(page.locator("#feedback-now")).to_have_text("You rated this thumbs up.")
    page.get_by_role("link", name="All outputs").click()
    page.get_by_label("Feedback").select_option("up")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator(f'tr[data-output="{output_id}"]')).to_be_visible()
    page.get_by_label("Feedback").select_option("down")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(0)
    expect(page.get_by_text("No output matches these filters.")).to_be_visible()


def test_rerun_and_regenerate_make_linked_outputs(browse: Browsing, web: WebServer) -> None:
    """Re-run and regenerate (with another model, and with other variables) each open a new
    output that names and links its parent."""
    answer = httpx.post(f"{web.url}/api/admin/templates",
                        json={"name": "greet", "prompt": "Hello {{ name }}"},
                        headers={"Authorization": f"Bearer {token('root', admin=True)}"},
                        timeout=10)
    assert answer.status_code == 201, answer.text
    page = browse.page
    sign_in(page, web, "ada", path="/outputs")
    page.get_by_role("form", name="Start a job").get_by_label("Template").fill("greet")
    page.get_by_label("Variables (JSON object)").fill('{"name": "Ada"}')
    page.get_by_role("button", name="Start job").click()
    expect(page).to_have_url(_OUTPUT_URL)
    first = page.url
    completed(page)
    expect(page.locator("#output-live .answer")).to_have_text("[echo] Hello Ada")
    expect(page.locator("#output-live .details")).to_contain_text("greet v1")

    page.get_by_role("button", name="Re-run").click()
    expect(page).not_to_have_url(first)
    expect(page.locator(".parent")).to_contain_text("Re-run of")
    completed(page)
    expect(page.locator("#output-live .answer")).to_have_text("[echo] Hello Ada")
    page.locator(".parent a").click()
    expect(page).to_have_url(first)

    page.get_by_label("Variables (JSON object)").fill('{"name": "Grace"}')
    page.get_by_role("button", name="Regenerate").click()
    expect(page).not_to_have_url(first)
    expect(page.locator(".parent")).to_contain_text("Regenerated from")
    expect(page.locator(".parent a")).to_have_attribute("href", re.compile(first[-32:]))
    completed(page)
    expect(page.locator("#output-live .answer")).to_have_text("[echo] Hello Grace")

    page.locator(".parent a").click()
    page.get_by_label("Model").fill("echo-2")
    page.get_by_role("button", name="Regenerate").click()
    expect(page.locator(".parent")).to_contain_text("Regenerated from")
    completed(page)
    expect(page.locator("#output-live .details")).to_contain_text("echo-2")
    page.get_by_role("link", name="All outputs").click()
    expect(page.locator("tbody tr")).to_have_count(4)
    expect(page.locator("tbody .relation")).to_have_text(["regenerate", "regenerate", "rerun"])
    browse.screenshot("outputs")


def test_a_markdown_answer_cannot_run_script(browse: Browsing, web: WebServer) -> None:
    """A markdown answer holding <script> and <img onerror> shows them as text, live and
    after a reload, while its markdown still renders."""
    page = browse.page
    sign_in(page, web, "ada", path="/outputs")
    start_job(page, ATTACK, fmt="markdown")
    completed(page)
    for _ in range(2):
        answer = page.locator("#output-live .answer")
        expect(answer).to_contain_text("<script>window.__pwned = 1</script>")
        expect(answer).to_contain_text('onerror="window.__pwned = 2"')
        expect(answer.locator("strong")).to_have_text("bold")
        expect(answer.locator("code")).to_have_text("code")
        assert page.locator("#output-live img, #output-live script").count() == 0
        assert page.evaluate("window.__pwned") is None
        page.reload()


def test_another_users_output_is_a_403_page(browse: Browsing, web: WebServer) -> None:
    """Bob gets a 403 page for Ada's output (and her status and feedback), a 404 page for
    an unknown one, and never sees her prompt."""
    page = browse.page
    sign_in(page, web, "ada", path="/outputs")
    output_id = start_job(page, "ada's secret")
    completed(page)
    other = browse.context.browser
    assert other is not None
    bob = other.new_context()
    try:
        bob_page = browse.watch(bob.new_page())
        browse.allow(r"status of 40[34]")
        sign_in(bob_page, web, "bob", path="/outputs")
        expect(bob_page.get_by_text("No outputs yet")).to_be_visible()
        shown = bob_page.goto(f"{web.url}/outputs/{output_id}")
        assert shown is not None
        assert shown.status == 403
        expect(bob_page.get_by_role("heading", name="Forbidden (403)")).to_be_visible()
        expect(bob_page.locator("body")).not_to_contain_text("ada's secret")
        polled = bob_page.request.get(f"{web.url}/outputs/{output_id}/status")
        assert polled.status == 403
        rated = bob_page.request.post(f"{web.url}/outputs/{output_id}/feedback",
                                      form={"rating": "down"},
                                      headers={"origin": web.url})
        assert rated.status == 403
        missing = bob_page.goto(f"{web.url}/outputs/{'0' * 32}")
        assert missing is not None
        assert missing.status == 404
        expect(bob_page.get_by_role("heading", name="Not found (404)")).to_be_visible()
    finally:
        bob.close()
    page.reload()
    expect(page.locator("#feedback-now")).to_have_text("Not rated yet.")


def test_a_task_type_alone_renders_its_configured_template(browse: Browsing,
                                                          web: WebServer) -> None:
    """With only a task type and variables, the job renders the template that task type's
    global config names, in the template's format."""
    admin = {"Authorization": f"Bearer {token('root', admin=True)}"}
    made = httpx.post(f"{web.url}/api/admin/templates", headers=admin, timeout=10, json={
        "name": "digest", "prompt": "Digest of **{{ topic }}**", "task_type": "summarize",
        "output_format": "markdown"})
    assert made.status_code == 201, made.text
    put = httpx.put(f"{web.url}/api/admin/llm/global/summarize", headers=admin, timeout=10,
                    json={"provider": "echo", "model": "echo-1", "template": "digest"})
    assert put.status_code == 200, put.text
    page = browse.page
    sign_in(page, web, "ada", path="/outputs")
    page.get_by_label("Task type (optional)").fill("summarize")
    page.get_by_label("Variables (JSON object)").fill('{"topic": "tides"}')
    page.get_by_role("button", name="Start job").click()
    expect(page).to_have_url(_OUTPUT_URL)
    completed(page)
    expect(page.locator("#output-live .details")).to_contain_text("digest v1")
    expect(page.locator("#output-live .answer strong")).to_have_text("tides")


def test_a_bad_enqueue_form_says_what_was_wrong(browse: Browsing, web: WebServer) -> None:
    """A template and a prompt together, or variables that are not a JSON object, get the
    form back with the reason, its fields kept."""
    page = browse.page
    sign_in(page, web, "ada", path="/outputs")
    browse.allow(r"status of 400")
    page.get_by_role("form", name="Start a job").get_by_label("Template").fill("greet")
    page.get_by_label("Prompt", exact=True).fill("and a prompt")
    page.get_by_role("button", name="Start job").click()
    expect(page.get_by_role("alert")).to_contain_text("a template (with its variables) or a "
                                                      "prompt")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("and a prompt")
    page.get_by_label("Prompt", exact=True).fill("")
    page.get_by_label("Variables (JSON object)").fill("[1, 2]")
    page.get_by_role("button", name="Start job").click()
    expect(page.get_by_role("alert")).to_contain_text("variables must be a JSON object")
    expect(page.locator("tbody tr")).to_have_count(0)
    browse.screenshot("outputs-error")


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    """A host app with beamish mounted and the web app under /ui, signed in as Ada."""
    app = _host_app()
    mount_beamish(app, _settings(tmp_path))
    install_web(app, prefix="/ui")
    server = HostServer(app).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10,
                          headers={"origin": server.url}) as client:
            signed = client.post("/ui/sign-in", data={
                "token": TokenSigner(MOUNT_SECRET).issue("ada"), "next": "/ui/outputs"})
            assert signed.status_code == 303
            yield client, server.url
    finally:
        server.stop()


def test_the_outputs_pages_live_under_a_hosts_prefix(
        host: tuple[httpx.Client, str]) -> None:
    """Under /ui, enqueueing leads to /ui/outputs/<id>, whose links, forms and status URL
    are all under /ui, with the security headers."""
    client, _ = host
    started = client.post("/ui/outputs", data={"prompt": "under a prefix"})
    assert started.status_code == 303
    location = started.headers["location"]
    assert re.fullmatch(r"/ui/outputs/[0-9a-f]{32}", location)
    for path in (location, "/ui/outputs"):
        page = client.get(path)
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CSP
        links = re.findall(r'(?:href|src|action|data-status-url|data-page-url)="([^"]+)"',
                           page.text)
        assert f'data-status-url="{location}/status"' in page.text
        assert [link for link in links if not link.startswith(("/ui/", "#"))] == []
    status = client.get(location + "/status")
    assert status.json()["output_id"] == location.rsplit("/", 1)[1]
    assert status.headers["cache-control"] == "no-store"


def test_outputs_forms_refuse_other_sites_oversized_bodies_and_bad_filters(
        host: tuple[httpx.Client, str]) -> None:
    """A job started from another origin is refused and not started; a form over the bound
    is a 413 page; an unknown status filter or a broken cursor is a 400 page."""
    client, _ = host
    refused = client.post("/ui/outputs", data={"prompt": "evil"},
                          headers={"origin": "http://evil.example"})
    assert refused.status_code == 403
    assert "did not come from a page of this site" in refused.text
    assert "No outputs yet" in client.get("/ui/outputs").text
    huge = client.post("/ui/outputs", data={"prompt": "x" * (MAX_OUTPUT_FORM_BYTES + 1)})
    assert huge.status_code == 413
    assert f"at most {MAX_OUTPUT_FORM_BYTES} bytes" in huge.text
    crowded = client.post("/ui/outputs", data={f"f{i}": "x" for i in range(40)})
    assert crowded.status_code == 413
    assert "at most 16 fields" in crowded.text
    bad = client.get("/ui/outputs", params={"status": "done"})
    assert bad.status_code == 400
    assert "status is one of pending" in bad.text
    broken = client.get("/ui/outputs", params={"cursor": "not-a-cursor"})
    assert broken.status_code == 400
    assert "These filters cannot be used" in broken.text
    unauthenticated = httpx.get(str(client.base_url) + "/ui/outputs/abc/status")
    assert unauthenticated.status_code == 401


def test_the_list_pages_newest_first_by_cursor(host: tuple[httpx.Client, str]) -> None:
    """One more output than a page holds: the first page has PAGE_SIZE of them, its Older
    link the one left, whose page links back to the newest."""
    client, _ = host
    for n in range(PAGE_SIZE + 1):
        assert client.post("/ui/outputs", data={"prompt": f"job {n}"}).status_code == 303
    first = client.get("/ui/outputs")
    rows = re.findall(r'<tr data-output="([0-9a-f]{32})"', first.text)
    assert len(rows) == PAGE_SIZE
    older = re.search(r'<a href="([^"]+)" rel="next">Older</a>', first.text)
    assert older is not None
    assert 'rel="next"' in first.text
    assert ">Newest</a>" not in first.text
    second = client.get(older.group(1).replace("&amp;", "&"))
    last = re.findall(r'<tr data-output="([0-9a-f]{32})"', second.text)
    assert len(last) == 1
    assert last[0] not in rows
    assert 'rel="next"' not in second.text
    assert '<a href="/ui/outputs">Newest</a>' in second.text


def test_a_template_that_cannot_render_is_refused_before_a_job_is_made(
        host: tuple[httpx.Client, str]) -> None:
    """An unknown template, or variables its schema refuses, give the form back with the
    reason (400), as the HTTP API and the channel refuse them, and no job is made; a
    regenerate with such variables gives the output page back with the reason."""
    client, _ = host
    unknown = client.post("/ui/outputs", data={"template": "nope", "variables": "{}"})
    assert unknown.status_code == 400
    assert "nope" in unknown.text
    assert "The job was not started" in unknown.text
    assert 'data-output="' not in unknown.text
    admin = {"Authorization": f"Bearer {TokenSigner(MOUNT_SECRET).issue('root', admin=True)}"}
    made = client.post("/api/admin/templates", headers=admin, json={
        "name": "greet", "prompt": "Hello {{ name }}", "variables_schema": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}}}})
    assert made.status_code == 201, made.text
    off_schema = client.post("/ui/outputs", data={"template": "greet",
                                                  "variables": '{"name": 5}'})
    assert off_schema.status_code == 400
    assert "name" in off_schema.text
    assert "The job was not started" in off_schema.text
    started = client.post("/ui/outputs", data={"template": "greet",
                                               "variables": '{"name": "Ada"}'})
    assert started.status_code == 303
    location = started.headers["location"]
    regenerated = client.post(location + "/regenerate", data={"variables": '{"name": 5}'})
    assert regenerated.status_code == 400
    assert "That did not work" in regenerated.text
    listed = client.get("/ui/outputs")
    assert len(re.findall(r'<tr data-output="', listed.text)) == 1
