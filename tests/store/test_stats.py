"""Stats over the usage ledger: per user, provider/model, task type, day, top N, totals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from beamish.store import Store, UsageEvent
from beamish.store._stats import window

pytestmark = pytest.mark.anyio

DAY = datetime(2026, 3, 1, tzinfo=UTC)


def _event(n: int, user: str, *, provider: str = "openai", model: str = "gpt",
           task: str = "chat", day: int = 0, tokens: tuple[int, int] = (10, 5),
           status: str = "ok") -> UsageEvent:
    return UsageEvent.model_validate({
        "request_id": f"{user}-{n}", "user_id": user, "provider": provider, "model": model,
        "task_type": task, "prompt_tokens": tokens[0], "completion_tokens": tokens[1],
        "status": status, "created_at": DAY + timedelta(days=day, hours=n % 24)})


@pytest.fixture
async def ledger(store: Store) -> Store:
    """ada: 3 requests on 2 days; bob: 1 big request; eve: 2 requests, one an error."""
    await store.record_many([
        _event(1, "ada"),
        _event(2, "ada", model="gpt-mini", task="summarize"),
        _event(3, "ada", provider="anthropic", model="claude", day=1, tokens=(100, 50)),
        _event(1, "bob", day=1, tokens=(1000, 0)),
        _event(1, "eve", day=2, status="error", tokens=(0, 0)),
        _event(2, "eve", day=2, task="summarize"),
    ])
    return store


def test_window_builds_only_the_given_filters() -> None:
    """Unset bounds add no clause; placeholders number from 1."""
    assert window() == ("", [])
    assert window("ada", None, DAY) == (" WHERE user_id = $1 AND created_at < $2", ["ada", DAY])


def test_window_narrows_to_provider_model_and_task() -> None:
    """Each narrowing adds its clause after the window's, in a fixed order."""
    assert window("ada", provider="openai", task_type="chat") == (
        " WHERE user_id = $1 AND provider = $2 AND task_type = $3", ["ada", "openai", "chat"])
    assert window(model="gpt") == (" WHERE model = $1", ["gpt"])


def test_window_refuses_naive_bounds() -> None:
    """A naive datetime is ambiguous against a UTC ledger, so it is refused."""
    with pytest.raises(ValueError, match="timezone-aware"):
        window(since=datetime(2026, 1, 1))


async def test_totals_overall_and_per_user(ledger: Store) -> None:
    """Totals count requests, errors and both token kinds."""
    total = await ledger.usage_totals()
    assert (total.requests, total.errors, total.prompt_tokens, total.completion_tokens) == (
        6, 1, 1130, 65)
    assert total.total_tokens == 1195
    ada = await ledger.usage_totals(user_id="ada")
    assert (ada.requests, ada.total_tokens) == (3, 180)


async def test_empty_ledger_totals_are_zero(store: Store) -> None:
    """No usage is all zeros, not an error."""
    total = await store.usage_totals(user_id="nobody")
    assert (total.requests, total.total_tokens) == (0, 0)


async def test_by_provider_and_model(ledger: Store) -> None:
    """Grouping by (provider, model), sorted."""
    rows = await ledger.usage_by_provider_model()
    assert [(r.provider, r.model, r.requests) for r in rows] == [
        ("anthropic", "claude", 1), ("openai", "gpt", 4), ("openai", "gpt-mini", 1)]


async def test_by_task_type_in_a_window(ledger: Store) -> None:
    """since is inclusive, until exclusive."""
    rows = await ledger.usage_by_task_type(since=DAY + timedelta(days=1),
                                           until=DAY + timedelta(days=3))
    assert [(r.task_type, r.requests) for r in rows] == [("chat", 3), ("summarize", 1)]


async def test_per_day(ledger: Store) -> None:
    """One row per UTC day with usage."""
    rows = await ledger.usage_per_day(since=DAY, until=DAY + timedelta(days=7))
    assert [(r.day, r.requests) for r in rows] == [
        (date(2026, 3, 1), 2), (date(2026, 3, 2), 2), (date(2026, 3, 3), 2)]
    ada = await ledger.usage_per_day(since=DAY, until=DAY + timedelta(days=1), user_id="ada")
    assert [(r.day, r.total_tokens) for r in ada] == [(date(2026, 3, 1), 30)]


async def test_top_users_by_tokens_and_requests(ledger: Store) -> None:
    """Top N orders by the chosen measure, ties by user id."""
    by_tokens = await ledger.top_users(2)
    assert [(u.user_id, u.total_tokens) for u in by_tokens] == [("bob", 1000), ("ada", 180)]
    by_requests = await ledger.top_users(3, by="requests")
    assert [(u.user_id, u.requests) for u in by_requests] == [("ada", 3), ("eve", 2), ("bob", 1)]


async def test_user_stats_in_one_call(ledger: Store) -> None:
    """user_stats folds totals, per provider/model and per task type."""
    stats = await ledger.user_stats("ada")
    assert (stats.totals.requests, stats.totals.total_tokens) == (3, 180)
    assert [(p.provider, p.model, p.requests) for p in stats.by_provider_model] == [
        ("anthropic", "claude", 1), ("openai", "gpt", 1), ("openai", "gpt-mini", 1)]
    assert [(t.task_type, t.requests) for t in stats.by_task_type] == [
        ("chat", 2), ("summarize", 1)]


async def test_user_stats_and_days_narrowed_in_any_combination(ledger: Store) -> None:
    """Provider, model and task type narrow the totals, both breakdowns and the days."""
    chat = await ledger.user_stats("ada", provider="openai", task_type="chat")
    assert (chat.totals.requests, chat.totals.total_tokens) == (1, 15)
    assert [(p.model, p.requests) for p in chat.by_provider_model] == [("gpt", 1)]
    assert [t.task_type for t in chat.by_task_type] == ["chat"]
    mini = await ledger.user_stats("ada", model="gpt-mini")
    assert [t.task_type for t in mini.by_task_type] == ["summarize"]
    nothing = await ledger.user_stats("ada", provider="anthropic", task_type="summarize")
    assert nothing.totals.requests == 0
    assert (nothing.by_provider_model, nothing.by_task_type) == ((), ())
    until = DAY + timedelta(days=7)
    days = await ledger.usage_per_day(since=DAY, until=until, task_type="summarize")
    assert [(d.day, d.requests) for d in days] == [
        (DAY.date(), 1), ((DAY + timedelta(days=2)).date(), 1)]
    ada_openai = await ledger.usage_per_day(since=DAY, until=until, user_id="ada",
                                            provider="openai")
    assert [(d.day, d.requests) for d in ada_openai] == [(DAY.date(), 2)]


async def test_session_totals_count_only_that_session(store: Store) -> None:
    """A session's totals include its own events and no other session's or user's."""
    events = [_event(n, "ada", tokens=(n, 1)) for n in range(1, 5)]
    sessions = ["s1", "s1", "s2", None]
    await store.record_many([e.model_copy(update={"session_id": s})
                             for e, s in zip(events, sessions, strict=True)])
    await store.record(_event(9, "bob").model_copy(update={"session_id": "s1"}))
    s1 = await store.session_totals("ada", "s1")
    assert (s1.requests, s1.prompt_tokens, s1.completion_tokens) == (2, 3, 2)
    assert (await store.session_totals("ada", "nope")).requests == 0
