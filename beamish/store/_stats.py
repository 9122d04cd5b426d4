"""Stats queries over the usage ledger.

Every query filters with the same window (optional user, ``since`` inclusive, ``until``
exclusive) so the ``(user_id, created_at)`` and ``created_at`` indexes serve them; one user's
stats and per-day totals can be narrowed further to a provider, a model and a task type, in
any combination. One user's full stats are one grouped query, folded in Python: a single index
range scan instead of three.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from beamish.store._backend import Executor, Row
from beamish.store.models import (
    DailyUsage,
    ProviderModelUsage,
    TaskTypeUsage,
    UsageTotals,
    UserStats,
    UserUsage,
)

_AGGREGATES = """count(*) AS requests,
    coalesce(sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END), 0) AS errors,
    coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
    coalesce(sum(completion_tokens), 0) AS completion_tokens"""
_TOTAL_FIELDS = ("requests", "errors", "prompt_tokens", "completion_tokens")
_TOP_ORDER = {
    "tokens": "sum(prompt_tokens + completion_tokens) DESC",
    "requests": "count(*) DESC",
}


# The window's columns, in the order of window()'s values.
_WINDOW_CLAUSES = ("user_id = ", "created_at >= ", "created_at < ", "provider = ", "model = ",
                   "task_type = ")


def _same(value: datetime) -> object:
    return value


def window(user_id: str | None = None, since: datetime | None = None,
           until: datetime | None = None, *, provider: str | None = None,
           model: str | None = None, task_type: str | None = None,
           ledger_time: Callable[[datetime], object] = _same) -> tuple[str, list[object]]:
    """The WHERE clause (possibly empty) and its arguments for a stats window, narrowed to
    ``provider``, ``model`` and ``task_type`` where given.

    ``ledger_time`` turns a bound into the ledger's ``created_at`` representation.
    """
    for bound in (since, until):
        if bound is not None and bound.tzinfo is None:
            raise ValueError(f"stats bounds must be timezone-aware, got naive {bound}; "
                             "use e.g. datetime.now(UTC)")
    clauses: list[str] = []
    args: list[object] = []
    bounds = (None if b is None else ledger_time(b) for b in (since, until))
    for clause, value in zip(_WINDOW_CLAUSES, (user_id, *bounds, provider, model, task_type),
                             strict=True):
        if value is not None:
            args.append(value)
            clauses.append(f"{clause}${len(args)}")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def fold_user_stats(user_id: str, rows: list[Row]) -> UserStats:
    """Fold rows grouped by (provider, model, task_type) into one user's stats."""
    totals: dict[str, int] = dict.fromkeys(_TOTAL_FIELDS, 0)
    by_pm: defaultdict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(_TOTAL_FIELDS, 0))
    by_task: defaultdict[str, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(_TOTAL_FIELDS, 0))
    for row in rows:
        for name in _TOTAL_FIELDS:
            value = int(row[name])
            totals[name] += value
            by_pm[row["provider"], row["model"]][name] += value
            by_task[row["task_type"]][name] += value
    return UserStats(
        user_id=user_id,
        totals=UsageTotals(**totals),
        by_provider_model=tuple(ProviderModelUsage(provider=p, model=m, **t)
                                for (p, m), t in sorted(by_pm.items())),
        by_task_type=tuple(TaskTypeUsage(task_type=k, **t) for k, t in sorted(by_task.items())),
    )


class StatsQueries(ABC):
    """The stats half of the store; needs only a reader and the dialect's day expression."""

    @abstractmethod
    def _reader(self) -> Executor: ...

    @abstractmethod
    def _day_expr(self) -> str: ...

    @abstractmethod
    def _ledger_time(self, value: datetime) -> object: ...

    def _window(self, user_id: str | None, since: datetime | None, until: datetime | None,
                **narrowed: str | None) -> tuple[str, list[object]]:
        return window(user_id, since, until, ledger_time=self._ledger_time, **narrowed)

    async def usage_totals(self, *, user_id: str | None = None, since: datetime | None = None,
                           until: datetime | None = None) -> UsageTotals:
        """Requests, errors and tokens in the window (everyone's, or one user's)."""
        where, args = self._window(user_id, since, until)
        row = await self._reader().fetchrow(f"SELECT {_AGGREGATES} FROM usage_events{where}",
                                            *args)
        return UsageTotals.model_validate(row or {})

    async def session_totals(self, user_id: str, session_id: str) -> UsageTotals:
        """Requests, errors and tokens of one session of ``user_id`` (all time)."""
        row = await self._reader().fetchrow(
            f"SELECT {_AGGREGATES} FROM usage_events WHERE user_id = $1 AND session_id = $2",
            user_id, session_id)
        return UsageTotals.model_validate(row or {})

    async def usage_by_provider_model(
            self, *, user_id: str | None = None, since: datetime | None = None,
            until: datetime | None = None) -> list[ProviderModelUsage]:
        """Totals per (provider, model), by provider then model."""
        where, args = self._window(user_id, since, until)
        rows = await self._reader().fetch(
            f"SELECT provider, model, {_AGGREGATES} FROM usage_events{where} "
            "GROUP BY provider, model ORDER BY provider, model", *args)
        return [ProviderModelUsage.model_validate(r) for r in rows]

    async def usage_by_task_type(
            self, *, user_id: str | None = None, since: datetime | None = None,
            until: datetime | None = None) -> list[TaskTypeUsage]:
        """Totals per task type, by task type."""
        where, args = self._window(user_id, since, until)
        rows = await self._reader().fetch(
            f"SELECT task_type, {_AGGREGATES} FROM usage_events{where} "
            "GROUP BY task_type ORDER BY task_type", *args)
        return [TaskTypeUsage.model_validate(r) for r in rows]

    async def usage_per_day(self, *, since: datetime, until: datetime,
                            user_id: str | None = None, provider: str | None = None,
                            model: str | None = None,
                            task_type: str | None = None) -> list[DailyUsage]:
        """Totals per UTC day in [since, until), narrowed to ``provider``, ``model`` and
        ``task_type`` where given; days without usage are left out."""
        where, args = self._window(user_id, since, until, provider=provider, model=model,
                                   task_type=task_type)
        rows = await self._reader().fetch(
            f"SELECT {self._day_expr()} AS day, {_AGGREGATES} FROM usage_events{where} "
            "GROUP BY 1 ORDER BY 1", *args)
        return [DailyUsage.model_validate(r) for r in rows]

    async def top_users(self, n: int, *, by: Literal["tokens", "requests"] = "tokens",
                        since: datetime | None = None,
                        until: datetime | None = None) -> list[UserUsage]:
        """The ``n`` users with the most tokens (or requests) in the window."""
        where, args = self._window(None, since, until)
        rows = await self._reader().fetch(
            f"SELECT user_id, {_AGGREGATES} FROM usage_events{where} GROUP BY user_id "
            f"ORDER BY {_TOP_ORDER[by]}, user_id LIMIT {int(n)}", *args)
        return [UserUsage.model_validate(r) for r in rows]

    async def user_stats(self, user_id: str, *, since: datetime | None = None,
                         until: datetime | None = None, provider: str | None = None,
                         model: str | None = None, task_type: str | None = None) -> UserStats:
        """One user's totals, per provider/model and per task type, in one query: of the
        requests to ``provider``, ``model`` and for ``task_type`` only, where given."""
        where, args = self._window(user_id, since, until, provider=provider, model=model,
                                   task_type=task_type)
        rows = await self._reader().fetch(
            f"SELECT provider, model, task_type, {_AGGREGATES} FROM usage_events{where} "
            "GROUP BY provider, model, task_type", *args)
        return fold_user_stats(user_id, rows)
