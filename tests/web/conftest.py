"""Browser tests: the distribution's Chromium, driven by Playwright, against a real server.

One browser for the folder's tests; each test gets a fresh context (its own cookies and storage)
and a page whose console errors, uncaught exceptions and Content-Security-Policy violations
are collected and asserted absent when the test ends (a test that expects one names it with
``browse.allow``). Chromium must be installed (``.ci/run`` installs the Debian package): a
missing one fails these tests, it never skips them.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.llm.providers._fake_llm_server import FakeLLMServer
from tests.web._server import WebServer

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
WIDTHS = (1440, 375)

# Every CSP violation is reported to the test as a console error as it happens (and kept
# in window.__cspViolations, counted in <html data-csp-violations>, which Playwright's
# expect can wait on without evaluating code in the page, as the page's CSP forbids), beside
# what Chromium logs of it: the test's console watch collects it without asking the page
# anything at the end, when it may be navigating.
_WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const violation = e.violatedDirective + " " + e.blockedURI;
  window.__cspViolations.push(violation);
  document.documentElement.dataset.cspViolations = String(window.__cspViolations.length);
  console.error("CSP violation: " + violation);
});
"""


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright's sync driver, for this folder's tests (one per run of them).

    Not for the whole session: while it runs, the main thread has its event loop, where no
    other test could run one (``asyncio.run``, anyio's runner) — so this folder's tests are
    synchronous, their servers in threads, and the driver stops when the folder is done.
    """
    # expect's own default (5 s) is as long as the pages' longest step (the socket's last
    # reconnect backoff) and not far from a few polls on a loaded machine: an expectation
    # waits up to 15 s, as the context's other waits below do.
    expect.set_options(timeout=15_000)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """The distribution's Chromium (Playwright's own download is not reachable here)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Chromium is not installed: the browser tests need the distribution's "
                    "package (apt-get install chromium; .ci/run installs it)")
    launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


class Browsing:
    """One test's browser context and page, and what went wrong on them."""

    def __init__(self, browser: Browser) -> None:
        self.context = browser.new_context(viewport={"width": 1440, "height": 900})
        self.context.set_default_timeout(15_000)
        self.context.add_init_script(_WATCH_CSP)
        self.problems: list[str] = []
        self._problems_at_close: list[str] | None = None
        self._allowed: list[re.Pattern[str]] = []
        self.page = self.watch(self.context.new_page())

    def watch(self, page: Page) -> Page:
        """Collect ``page``'s console errors and uncaught exceptions."""
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def allow(self, pattern: str) -> None:
        """A console error this test expects (a regular expression of its text)."""
        self._allowed.append(re.compile(pattern))

    def csp_violations(self, page: Page | None = None) -> list[str]:
        """The CSP violations the page reported so far."""
        found: list[str] = (page or self.page).evaluate("window.__cspViolations || []")
        return found

    def unexpected(self) -> list[str]:
        """Problems no ``allow`` covers; a CSP violation is never allowed."""
        return [p for p in self.problems if "CSP violation" in p
                or not any(pattern.search(p) for pattern in self._allowed)]

    def finish(self) -> list[str]:
        """Close the context (its pages' connections with it) and say what went wrong;
        called before a server the pages use stops, so that no connection is left to it."""
        if self._problems_at_close is None:
            self._problems_at_close = self.unexpected()
            self.context.close()
        return self._problems_at_close

    def screenshot(self, name: str) -> None:
        """The page at 1440 and 375 px wide, into the git-ignored ``screenshots/``."""
        SCREENSHOTS.mkdir(exist_ok=True)
        size = self.page.viewport_size or {"width": 1440, "height": 900}
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
        self.page.set_viewport_size(size)

    def transferred(self) -> int:
        """Bytes this page's load transferred: the document and every resource."""
        total: int = self.page.evaluate(
            "performance.getEntriesByType('navigation').concat("
            "performance.getEntriesByType('resource'))"
            ".reduce((sum, e) => sum + e.transferSize, 0)")
        return total


@pytest.fixture
def web(tmp_path: Path, fake_llm: FakeLLMServer) -> Iterator[WebServer]:
    """beamish serve with the web app: SQLite, the echo provider and the fake LLM server."""
    server = WebServer(tmp_path, openai_url=fake_llm.openai_url).start()
    yield server
    server.stop()


@pytest.fixture
def browse(browser: Browser, web: WebServer) -> Iterator[Browsing]:
    """A fresh context and page; no console error or CSP violation may be left at the end.
    (It needs ``web`` so that it closes first: the pages' connections end before the
    server does.)"""
    browsing = Browsing(browser)
    yield browsing
    assert browsing.finish() == [], "the pages had console errors or CSP violations"
