"""What the usage page and its CSV export show (sans-I/O: the store's rows in, tables out).

A range is whole UTC days, ``first`` to ``last`` inclusive (the page's date inputs), at
most :data:`MAX_RANGE_DAYS` days; without dates it is the last :data:`DEFAULT_DAYS` days
up to today. The store is asked for ``[first 00:00, last + 1 day 00:00)``.

:func:`breakdowns` turns one user's stats and per-day rows into the page's four tables —
per day (every day of the range, zero where nothing was used), per model, per provider and
per task type — and :func:`csv_text` writes the same rows, each with its breakdown's name,
so the download and the page carry the same numbers. A cell that a spreadsheet would run
as a formula (``=``, ``+``, ``-``, ``@`` first) is written with a leading ``'``.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from beamish.store import DailyUsage, UsageTotals, UserStats
from beamish.web.errors import UsageRangeError

MAX_RANGE_DAYS: Final = 366
DEFAULT_DAYS: Final = 30
PRESETS: Final = (("Today", 1), ("Last 7 days", 7), ("Last 30 days", 30), ("Last 90 days", 90))
"""The page's preset ranges: a name and how many days, ending today."""

CSV_HEADER: Final = ("breakdown", "name", "requests", "errors", "prompt_tokens",
                     "completion_tokens", "total_tokens")


@dataclass(frozen=True, slots=True)
class UsageRange:
    """Whole UTC days, ``first`` to ``last`` inclusive."""

    first: date
    last: date

    @property
    def since(self) -> datetime:
        """The store's inclusive lower bound."""
        return datetime.combine(self.first, time(), UTC)

    @property
    def until(self) -> datetime:
        """The store's exclusive upper bound."""
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> list[date]:
        """Every day of the range, in order."""
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    @classmethod
    def ending(cls, last: date, days: int) -> UsageRange:
        """The ``days`` days up to ``last``."""
        return cls(last - timedelta(days=days - 1), last)


def _day(name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise UsageRangeError(f"{name} must be a date as YYYY-MM-DD, got {raw[:40]!r}") from None


def parse_range(query: Mapping[str, str], today: date) -> UsageRange:
    """The range of a query's ``from`` and ``to`` (either may be left out).

    Raises:
        UsageRangeError: a date is malformed, ``from`` is after ``to``, or the range is
            longer than :data:`MAX_RANGE_DAYS` days.
    """
    raw_first, raw_last = query.get("from", "").strip(), query.get("to", "").strip()
    last = _day("to", raw_last) if raw_last else today
    first = _day("from", raw_first) if raw_first else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise UsageRangeError(f"from ({first}) is after to ({last}); swap them")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise UsageRangeError(f"a range is at most {MAX_RANGE_DAYS} days; {first} to {last} "
                              f"is {(last - first).days + 1}: choose a shorter one")
    return UsageRange(first, last)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One row of a breakdown: its name and its totals."""

    name: str
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class Breakdowns:
    """The page's tables: totals, and per day, model, provider and task type."""

    totals: UsageTotals
    by_day: tuple[UsageRow, ...]
    by_model: tuple[UsageRow, ...]
    by_provider: tuple[UsageRow, ...]
    by_task_type: tuple[UsageRow, ...]

    def sections(self) -> tuple[tuple[str, tuple[UsageRow, ...]], ...]:
        """Each breakdown with its CSV name."""
        return (("day", self.by_day), ("model", self.by_model),
                ("provider", self.by_provider), ("task_type", self.by_task_type))


def _sum(items: Sequence[UsageTotals]) -> UsageTotals:
    return UsageTotals(requests=sum(i.requests for i in items),
                       errors=sum(i.errors for i in items),
                       prompt_tokens=sum(i.prompt_tokens for i in items),
                       completion_tokens=sum(i.completion_tokens for i in items))


def _plain(totals: UsageTotals) -> UsageTotals:
    return UsageTotals(requests=totals.requests, errors=totals.errors,
                       prompt_tokens=totals.prompt_tokens,
                       completion_tokens=totals.completion_tokens)


def breakdowns(stats: UserStats, per_day: Sequence[DailyUsage],
               period: UsageRange) -> Breakdowns:
    """The page's tables from one user's stats and per-day rows over ``period``."""
    days = {row.day: _plain(row) for row in per_day}
    by_provider: defaultdict[str, list[UsageTotals]] = defaultdict(list)
    for row in stats.by_provider_model:
        by_provider[row.provider].append(row)
    return Breakdowns(
        totals=_plain(stats.totals),
        by_day=tuple(UsageRow(day.isoformat(), days.get(day, UsageTotals()))
                     for day in period.days),
        by_model=tuple(UsageRow(f"{row.provider} / {row.model}", _plain(row))
                       for row in stats.by_provider_model),
        by_provider=tuple(UsageRow(name, _sum(rows)) for name, rows in sorted(by_provider.items())),
        by_task_type=tuple(UsageRow(row.task_type, _plain(row)) for row in stats.by_task_type))


def _cell(value: str) -> str:
    return "'" + value if value.startswith(("=", "+", "-", "@")) else value


def _numbers(totals: UsageTotals) -> list[str]:
    return [str(totals.requests), str(totals.errors), str(totals.prompt_tokens),
            str(totals.completion_tokens), str(totals.total_tokens)]


def csv_text(report: Breakdowns) -> str:
    """The report as CSV: a header, the totals row, then every breakdown's rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    writer.writerow(["total", "all", *_numbers(report.totals)])
    for section, rows in report.sections():
        for row in rows:
            writer.writerow([section, _cell(row.name), *_numbers(row.totals)])
    return out.getvalue()


__all__ = ["CSV_HEADER", "DEFAULT_DAYS", "MAX_RANGE_DAYS", "PRESETS", "Breakdowns",
           "UsageRange", "UsageRow", "breakdowns", "csv_text",
           "parse_range"]
