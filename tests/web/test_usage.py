"""The usage page in a real browser: the chats just made, by day, model, provider and task
type, as SVG charts with tables beside them, and a CSV download of the same numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.web._pages import sign_in
from tests.web._server import WebServer, token
from tests.web.conftest import Browsing


def _chat(server: WebServer, user_id: str, *texts: str) -> None:
    """Chat calls through the API, as ``user_id``: each one a row of the usage ledger."""
    headers = {"Authorization": f"Bearer {token(user_id)}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        for text in texts:
            answer = http.post("/v1/chat/completions",
                               json={"messages": [{"role": "user", "content": text}]})
            assert answer.status_code == 200, answer.text


def _total(page: Page, name: str) -> str:
    return page.locator(f'#usage-totals [data-total="{name}"]').inner_text()


def test_the_usage_page_shows_the_chats_just_made(browse: Browsing, web: WebServer) -> None:
    """Three chats of the user (and none of another's) show in the totals, in each
    breakdown's table and as a chart with a text alternative."""
    _chat(web, "ada", "one two", "three four five", "six")
    _chat(web, "bob", "not ada's")
    page = browse.page
    sign_in(page, web, "ada", path="/usage")
    assert browse.transferred() < 150_000
    assert _total(page, "requests") == "3"
    prompt, completion = int(_total(page, "prompt_tokens")), int(_total(page,
                                                                       "completion_tokens"))
    assert prompt > 0
    assert completion > 0
    assert _total(page, "total_tokens") == str(prompt + completion)
    model = page.get_by_role("table", name="Per model")
    expect(model.get_by_role("row")).to_have_count(2)
    expect(model.get_by_role("row").nth(1)).to_contain_text("echo / ")
    expect(model.get_by_role("row").nth(1).get_by_role("cell").first).to_have_text("3")
    expect(page.get_by_role("table", name="Per task type")).to_contain_text("chat")
    days = page.get_by_role("table", name="Per day (days with usage)")
    # One day's row, or two if the chats straddled midnight (UTC): 3 requests in all.
    expect(days.locator("tbody tr").first).to_be_visible()
    per_day = [int(n) for n in days.locator("tbody tr td:nth-child(2)").all_inner_texts()]
    assert sum(per_day) == 3
    assert 1 <= len(per_day) <= 2
    chart = page.get_by_role("img", name="Tokens per provider")
    expect(chart).to_be_visible()
    expect(chart.locator("desc")).to_contain_text(f"{prompt + completion} tokens in all")
    browse.screenshot("usage")


def test_the_csv_export_has_the_pages_numbers(browse: Browsing, web: WebServer,
                                              tmp_path: Path) -> None:
    """The downloaded CSV's totals and per-model rows are the numbers the page shows, and
    only the caller's."""
    _chat(web, "ada", "alpha beta", "gamma")
    _chat(web, "bob", "bob's words are not ada's")
    page = browse.page
    sign_in(page, web, "ada", path="/usage?from=2000-01-01&to=2000-01-05")
    assert _total(page, "requests") == "0"
    page.get_by_role("link", name="Last 7 days").click()
    expect(page.locator('#usage-totals [data-total="requests"]')).to_have_text("2")
    with page.expect_download() as started:
        page.get_by_role("link", name="Download CSV").click()
    target = tmp_path / "usage.csv"
    started.value.save_as(target)
    rows = list(csv.DictReader(io.StringIO(target.read_text("utf-8"))))
    total = next(r for r in rows if r["breakdown"] == "total")
    for name in ("requests", "prompt_tokens", "completion_tokens", "total_tokens"):
        assert total[name] == _total(page, name), name
    assert [r["name"] for r in rows if r["breakdown"] == "provider"] == ["echo"]
    assert sum(int(r["requests"]) for r in rows if r["breakdown"] == "day") == 2
    assert len([r for r in rows if r["breakdown"] == "day"]) == 7


def test_a_range_the_page_cannot_show_says_why(browse: Browsing, web: WebServer) -> None:
    """A range longer than a year is a 400 page naming the limit, not an empty page."""
    page = browse.page
    browse.allow(r"status of 400")
    sign_in(page, web, "ada", path="/usage")
    response = page.goto(web.url + "/usage?from=2000-01-01&to=2003-01-01")
    assert response is not None
    assert response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("at most 366 days")
