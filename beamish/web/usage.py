"""The usage page: the signed-in user's requests and tokens over a range of days.

``GET /usage?from=YYYY-MM-DD&to=YYYY-MM-DD`` (both optional: the last 30 days by default;
presets link the common ranges) shows totals and, each as an SVG chart drawn here with a
table of the same numbers beside it, usage per day, per model, per provider and per task
type. ``GET /usage.csv`` with the same query downloads those rows (``usage_report``). Both
read the caller's own rows only: the user comes from the session cookie, never the query.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import Response

from beamish.application import Application
from beamish.auth import Principal
from beamish.server.api.deps import get_runtime
from beamish.web.charts import bar_chart, column_chart
from beamish.web.cookie import signed_in
from beamish.web.errors import UsageRangeError
from beamish.web.pages import Endpoint, _to_sign_in, error_page, render
from beamish.web.usage_report import (
    PRESETS,
    Breakdowns,
    UsageRange,
    breakdowns,
    csv_text,
    parse_range,
)


def _today() -> date:
    return datetime.now(UTC).date()


async def _report(runtime: Application, principal: Principal, period: UsageRange) -> Breakdowns:
    store = runtime.store
    stats = await store.user_stats(principal.user_id, since=period.since, until=period.until)
    days = await store.usage_per_day(since=period.since, until=period.until,
                                     user_id=principal.user_id)
    return breakdowns(stats, days, period)


def _charts(report: Breakdowns) -> list[dict[str, Any]]:
    def points(rows: Any, field: str) -> list[tuple[str, int]]:
        return [(row.name, int(getattr(row.totals, field))) for row in rows]

    return [
        {"id": "per-day", "title": "Per day", "rows": report.by_day, "days": True,
         "chart": column_chart("chart-day", "Tokens per day",
                               points(report.by_day, "total_tokens"), "tokens")},
        {"id": "per-model", "title": "Per model", "rows": report.by_model, "days": False,
         "chart": bar_chart("chart-model", "Tokens per model",
                            points(report.by_model, "total_tokens"), "tokens")},
        {"id": "per-provider", "title": "Per provider", "rows": report.by_provider,
         "days": False,
         "chart": bar_chart("chart-provider", "Tokens per provider",
                            points(report.by_provider, "total_tokens"), "tokens")},
        {"id": "per-task", "title": "Per task type", "rows": report.by_task_type,
         "days": False,
         "chart": bar_chart("chart-task", "Requests per task type",
                            points(report.by_task_type, "requests"), "requests")},
    ]


async def usage_page(request: Request) -> Response:
    """The caller's usage over the chosen range, charts and tables."""
    principal = signed_in(request)
    if principal is None:
        return _to_sign_in(request)
    today = _today()
    try:
        period = parse_range(request.query_params, today)
    except UsageRangeError as error:
        return error_page(request, 400, str(error), principal)
    report = await _report(get_runtime(request), principal, period)
    presets = [{"name": name, "query": urlencode({"from": r.first, "to": r.last}),
                "current": r == period}
               for name, r in ((name, UsageRange.ending(today, n)) for name, n in PRESETS)]
    return render(request, "usage.html", principal=principal, page="usage", period=period,
                  report=report, charts=_charts(report), presets=presets,
                  csv_query=urlencode({"from": period.first, "to": period.last}))


async def usage_csv(request: Request) -> Response:
    """The same numbers as the page, as a CSV download."""
    principal = signed_in(request)
    if principal is None:
        return _to_sign_in(request)
    try:
        period = parse_range(request.query_params, _today())
    except UsageRangeError as error:
        return error_page(request, 400, str(error), principal)
    report = await _report(get_runtime(request), principal, period)
    name = f"beamish-usage-{period.first}-{period.last}.csv"
    return Response(csv_text(report), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{name}"',
                             "cache-control": "no-store"})


def routes() -> list[tuple[str, Endpoint, list[str], str]]:
    """The usage page's routes, for ``pages.router``."""
    return [
        ("/usage", usage_page, ["GET"], "web_usage"),
        ("/usage.csv", usage_csv, ["GET"], "web_usage_csv"),
    ]


__all__ = ["routes", "usage_csv", "usage_page"]
