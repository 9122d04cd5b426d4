"""The Content-Security-Policy as the browser enforces it, and the harness that watches it."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.web._server import WebServer
from tests.web.conftest import Browsing


def test_the_browser_blocks_inline_code_and_the_tests_see_it(browse: Browsing,
                                                             web: WebServer) -> None:
    """Markup injected with an inline handler and an inline style does not run, and each
    violation reaches the test as a problem (which the teardown would fail on)."""
    page = browse.page
    page.goto(web.url + "/sign-in")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.evaluate("""document.body.insertAdjacentHTML("beforeend",
        '<img src="x" onerror="window.__ran = 1"><p style="color: red" id="styled">x</p>')""")
    expect(page.locator("#styled")).to_be_attached()
    # Waited on through the DOM: wait_for_function evaluates a string in the page, which the
    # page's own CSP ('unsafe-eval' not allowed) refuses whenever the first check is not true.
    expect(page.locator("html")).to_have_attribute("data-csp-violations",
                                                   re.compile(r"^([2-9]|\d\d+)$"))
    assert page.evaluate("window.__ran") is None
    assert page.evaluate("getComputedStyle(document.getElementById('styled')).color") != (
        "rgb(255, 0, 0)")
    violations = browse.csp_violations()
    assert any(v.startswith("script-src") for v in violations), violations
    assert any(v.startswith("style-src") for v in violations), violations
    assert any("CSP violation" in problem for problem in browse.unexpected())
    browse.problems.clear()  # seen: the teardown's check is for the other tests
