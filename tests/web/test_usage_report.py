"""The usage page's arithmetic and its charts, without a server: ranges, breakdowns, the CSV
and the SVG (escaped, bounded, with its text alternative)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest

from beamish.store import DailyUsage, ProviderModelUsage, TaskTypeUsage, UsageTotals, UserStats
from beamish.web.charts import MAX_BARS, bar_chart, column_chart
from beamish.web.errors import UsageRangeError
from beamish.web.usage_report import (
    MAX_RANGE_DAYS,
    UsageRange,
    breakdowns,
    csv_text,
    parse_range,
)

TODAY = date(2026, 3, 10)


def _stats() -> UserStats:
    return UserStats(
        user_id="ada", totals=UsageTotals(requests=3, errors=1, prompt_tokens=30,
                                          completion_tokens=12),
        by_provider_model=(
            ProviderModelUsage(provider="echo", model="e1", requests=1, prompt_tokens=10,
                               completion_tokens=2),
            ProviderModelUsage(provider="openai", model="=cmd()", requests=1, errors=1,
                               prompt_tokens=5, completion_tokens=0),
            ProviderModelUsage(provider="openai", model="gpt", requests=1, prompt_tokens=15,
                               completion_tokens=10)),
        by_task_type=(TaskTypeUsage(task_type="chat", requests=3, errors=1, prompt_tokens=30,
                                    completion_tokens=12),))


def test_without_dates_the_range_is_the_last_30_days_up_to_today() -> None:
    """No ``from`` or ``to``: 30 whole UTC days ending today, as store bounds."""
    period = parse_range({}, TODAY)
    assert period == UsageRange(date(2026, 2, 9), TODAY)
    assert period.since == datetime(2026, 2, 9, tzinfo=UTC)
    assert period.until == datetime(2026, 3, 11, tzinfo=UTC)
    assert len(period.days) == 30


@pytest.mark.parametrize(("query", "words"), [
    ({"from": "2026-13-01"}, "from must be a date as YYYY-MM-DD"),
    ({"to": "yesterday"}, "to must be a date"),
    ({"from": "2026-03-09", "to": "2026-03-01"}, "is after to"),
    ({"from": "2020-01-01", "to": "2026-01-01"}, f"at most {MAX_RANGE_DAYS} days"),
])
def test_a_range_the_page_cannot_show_is_refused_with_a_reason(query: dict[str, str],
                                                                 words: str) -> None:
    """Malformed, reversed and over-long ranges raise ``UsageRangeError`` saying which."""
    with pytest.raises(UsageRangeError, match=words):
        parse_range(query, TODAY)


def test_breakdowns_fill_every_day_and_sum_models_into_providers() -> None:
    """Days without usage are zero rows; a provider's row sums its models'."""
    period = UsageRange(date(2026, 3, 8), TODAY)
    per_day = [DailyUsage(day=date(2026, 3, 9), requests=3, prompt_tokens=30,
                          completion_tokens=12)]
    report = breakdowns(_stats(), per_day, period)
    assert [(r.name, r.totals.requests) for r in report.by_day] == [
        ("2026-03-08", 0), ("2026-03-09", 3), ("2026-03-10", 0)]
    assert [(r.name, r.totals.total_tokens) for r in report.by_provider] == [
        ("echo", 12), ("openai", 30)]
    assert [r.name for r in report.by_model] == ["echo / e1", "openai / =cmd()", "openai / gpt"]


def test_the_csv_carries_every_row_and_disarms_formulas() -> None:
    """Totals first, then each breakdown's rows; a name a spreadsheet would run as a
    formula is quoted with a leading apostrophe."""
    period = UsageRange(TODAY, TODAY)
    rows = list(csv.reader(io.StringIO(csv_text(breakdowns(_stats(), [], period)))))
    assert rows[0][:2] == ["breakdown", "name"]
    assert rows[1] == ["total", "all", "3", "1", "30", "12", "42"]
    assert ["model", "openai / =cmd()", "1", "1", "5", "0", "5"] in rows
    assert all(not row[1].startswith("=") for row in rows)
    report = breakdowns(UserStats(user_id="x", totals=UsageTotals(), by_provider_model=(
        ProviderModelUsage(provider="=HYPERLINK()", model="m"),), by_task_type=()), [], period)
    assert ["provider", "'=HYPERLINK()", "0", "0", "0", "0", "0"] in list(
        csv.reader(io.StringIO(csv_text(report))))


def test_a_chart_escapes_its_labels_and_describes_its_numbers() -> None:
    """Labels are escaped; the title and description name the chart and its totals."""
    svg = str(bar_chart("c", "Tokens <per> model", [("<script>x</script>", 5), ("b&c", 3)],
                        "tokens"))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "b&amp;c" in svg
    assert '<title id="c-title">Tokens &lt;per&gt; model</title>' in svg
    assert "8 tokens in all over 2 entries; the most, 5, for &lt;script&gt;x&lt;/script&gt;" in svg
    assert 'aria-labelledby="c-title c-desc"' in svg


def test_a_chart_is_bounded_whatever_its_input() -> None:
    """Past ``MAX_BARS`` rows the smallest are summed into one bar; an empty chart says so."""
    rows = [(f"m{n:03}", n) for n in range(100)]
    svg = str(bar_chart("c", "t", rows, "tokens"))
    assert svg.count('class="chart-bar"') == MAX_BARS
    kept = sum(range(100 - MAX_BARS + 1, 100))
    assert f"{100 - MAX_BARS + 1} others: {sum(range(100)) - kept} tokens" in svg
    assert "No tokens in this range." in str(bar_chart("e", "t", [], "tokens"))
    days = str(column_chart("d", "t", [(str(n), n % 3) for n in range(1000)], "tokens"))
    assert days.count('class="chart-bar"') == 400
