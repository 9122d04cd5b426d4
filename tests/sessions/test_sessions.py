"""Sessions and users through a running Application: open/resume/close, enhance, usage, crashes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import anyio
import pytest

from beamish.application import Application
from beamish.llm.hierarchy import Layer, ResolvedConfig
from beamish.runtime import (
    ROOT,
    ActorExitedError,
    call,
    restart_child,
    terminate_child,
    which_children,
)
from beamish.runtime.dynamic import dynamic_children
from beamish.sessions.errors import SessionAmbiguousError, SessionNotFoundError
from beamish.sessions.services import CONFIG_CACHE, SESSION_SUP, USAGE_RECORDER
from beamish.store import GlobalConfig

pytestmark = pytest.mark.anyio


async def test_open_then_resume_returns_the_same_session(runtime: Application) -> None:
    """Opening an open session id resumes it; a new id is generated when none is given."""
    first = await runtime.sessions.open("s1", "ada")
    again = await runtime.sessions.open("s1", "ada")
    fresh = await runtime.sessions.open(None, "ada")
    assert (first.session_id, again.opened_at) == ("s1", first.opened_at)
    assert fresh.session_id != "s1"
    assert runtime.sessions.open_sessions("ada") == sorted(
        [("s1", "ada"), (fresh.session_id, "ada")])


async def test_session_ids_are_per_user(runtime: Application) -> None:
    """eve opening ada's id opens eve's own session; neither reaches nor ends the other's."""
    ada = await runtime.sessions.open("s1", "ada")
    eve = await runtime.sessions.open("s1", "eve")
    assert (ada.user_id, eve.user_id) == ("ada", "eve")
    assert runtime.sessions.open_sessions() == [("s1", "ada"), ("s1", "eve")]
    await runtime.sessions.record_usage("s1", provider="echo", model="echo-1",
                                        prompt_tokens=5, user_id="eve")
    assert (await runtime.sessions.usage("s1", user_id="ada")).requests == 0
    assert (await runtime.sessions.usage("s1", user_id="eve")).requests == 1
    await runtime.sessions.close("s1", user_id="eve")
    assert (await runtime.sessions.get("s1", user_id="ada")).opened_at == ada.opened_at
    with pytest.raises(SessionNotFoundError):
        await runtime.sessions.get("s1", user_id="eve")


async def test_a_closed_session_id_is_reopened_only_by_its_owner(runtime: Application) -> None:
    """After bob closes s1, ada opening s1 gets a new session of her own with none of bob's
    usage; bob reopening s1 resumes his usage from the ledger."""
    await runtime.sessions.open("s1", "bob")
    await runtime.sessions.record_usage("s1", provider="echo", model="echo-1",
                                        prompt_tokens=7, user_id="bob")
    await runtime.sessions.close("s1", user_id="bob")
    ada = await runtime.sessions.open("s1", "ada")
    assert (ada.user_id, ada.usage.requests) == ("ada", 0)
    bob = await runtime.sessions.open("s1", "bob")
    assert (bob.user_id, bob.usage.requests, bob.usage.prompt_tokens) == ("bob", 1, 7)


async def test_naming_no_user_finds_the_one_owner_or_says_to_name_one(
        runtime: Application) -> None:
    """Without user_id a session id held by one user is theirs; held by two, the error
    names both and asks for the user."""
    await runtime.sessions.open("s1", "ada")
    assert runtime.sessions.owner("s1") == "ada"
    assert (await runtime.sessions.enhance("s1")).user_id == "ada"
    await runtime.sessions.open("s1", "bob")
    with pytest.raises(SessionAmbiguousError, match=r"'ada', 'bob'.*name the user"):
        runtime.sessions.owner("s1")
    assert runtime.sessions.owner("s1", user_id="bob") == "bob"


async def test_unknown_session_is_a_clear_error(runtime: Application) -> None:
    """Using a session that is not open names it and says how to open one."""
    with pytest.raises(SessionNotFoundError, match=r"'nope' is not open.*sessions\.open"):
        await runtime.sessions.enhance("nope")


async def test_enhance_applies_the_users_default_and_explicit_values_win(
        runtime: Application) -> None:
    """The user's default fills what the request leaves out; request values win."""
    await runtime.users.set_default("ada", "echo", "echo-large")
    await runtime.sessions.open("s1", "ada")
    config = await runtime.sessions.enhance("s1")
    assert (config.model, config.sources["model"]) == ("echo-large", Layer.USER_DEFAULT)
    explicit = await runtime.sessions.enhance("s1", {"model": "echo-small", "temperature": 0.2})
    assert (explicit.model, explicit.sources["model"]) == ("echo-small", Layer.REQUEST)
    assert explicit.sources["temperature"] == Layer.REQUEST


async def test_enhance_answers_at_once_only_what_the_session_has_at_hand(
        runtime: Application) -> None:
    """Warm, enhance's awaitable is a done future holding the answer: no waiting; with
    options, or for a task not resolved yet, it waits; an unknown or another user's session
    fails at once, as the call is made."""
    await runtime.users.set_default("ada", "echo", "echo-large")
    await runtime.sessions.open("s1", "ada")
    cold = runtime.sessions.enhance("s1", task_type="summarize")
    assert not _done(cold)
    assert (await cold).task_type == "summarize"
    config = await runtime.sessions.enhance("s1")
    warm = runtime.sessions.enhance("s1", user_id="ada")
    assert _done(warm)
    assert await warm == config
    explicit = runtime.sessions.enhance("s1", {"model": "echo-small"})
    assert not _done(explicit)
    assert (await explicit).model == "echo-small"
    with pytest.raises(SessionNotFoundError):
        runtime.sessions.enhance("nope")
    with pytest.raises(SessionNotFoundError):  # eve has no session s1 of her own
        runtime.sessions.enhance("s1", user_id="eve")


def _done(awaitable: Awaitable[object]) -> bool:
    return isinstance(awaitable, asyncio.Future) and awaitable.done()


async def _enhance(runtime: Application, session_id: str, task_type: str) -> None:
    await runtime.sessions.enhance(session_id, task_type=task_type)


async def test_enhance_llm_options_keeps_other_keys_and_reports_provenance(
        runtime: Application) -> None:
    """The seed's dict API passes unknown keys through and adds provenance and warnings."""
    await runtime.users.add_model("ada", "echo", "echo-2")
    await runtime.users.set_default("ada", "echo", "echo-2")
    await runtime.sessions.create_context("s1", "ada")
    enhanced = await runtime.sessions.enhance_llm_options(
        "s1", {"messages": ["hi"], "max_tokens": 50, "task_type": "chat"})
    assert enhanced["messages"] == ["hi"]
    assert (enhanced["model"], enhanced["max_tokens"]) == ("echo-2", 50)
    assert enhanced["provenance"]["model"] == "user_default"
    assert enhanced["provenance"]["max_tokens"] == "request"
    assert enhanced["warnings"] == []


async def test_a_config_write_reaches_every_live_session_of_the_user(runtime: Application) -> None:
    """After set_default returns, the user's sessions resolve the new model; others keep theirs."""
    await runtime.users.set_default("ada", "echo", "old")
    await runtime.users.set_default("bob", "echo", "bobs")
    for sid, user in (("a1", "ada"), ("a2", "ada"), ("b1", "bob")):
        await runtime.sessions.open(sid, user)
        await runtime.sessions.enhance(sid)  # warm the session's cache
    await runtime.users.set_default("ada", "echo", "new")
    assert [(await runtime.sessions.enhance(s)).model for s in ("a1", "a2", "b1")] == [
        "new", "new", "bobs"]


async def test_warm_sessions_answer_from_their_own_cache(runtime: Application) -> None:
    """A warm session resolves without asking the config cache again."""
    await runtime.sessions.open("s1", "ada")
    await runtime.sessions.enhance("s1", task_type="reasoning")
    before = await call(runtime.services.whereis(CONFIG_CACHE), "stats")
    for _ in range(5):
        await runtime.sessions.enhance("s1", task_type="reasoning")
    after = await call(runtime.services.whereis(CONFIG_CACHE), "stats")
    assert (after.hits, after.misses) == (before.hits, before.misses)
    assert "reasoning" in (await runtime.sessions.get("s1")).cached_task_types


class HeldResolution:
    """The next resolution of one task type returns only when released (having read the
    store at once): a context resolving it is busy until then."""

    def __init__(self, runtime: Application, task_type: str, monkeypatch: pytest.MonkeyPatch
                 ) -> None:
        self.released = anyio.Event()
        self.started = anyio.Event()
        resolver = runtime.services.resolver
        assert resolver is not None
        resolve = resolver.resolve

        async def held(user_id: str, task: str, **options: Any) -> ResolvedConfig:
            config = await resolve(user_id, task, **options)
            if task == task_type and not self.started.is_set():
                self.started.set()
                await self.released.wait()
            return config

        monkeypatch.setattr(resolver, "resolve", held)


async def test_a_warm_session_answers_without_calling_its_context(
        runtime: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    """enhance reads a warm session's preferences while its context is busy with another."""
    await runtime.users.set_default("ada", "echo", "echo-2")
    await runtime.sessions.open("s1", "ada")
    await runtime.sessions.enhance("s1")  # warm for chat
    held = HeldResolution(runtime, "reasoning", monkeypatch)
    answered: list[str] = []

    async def warm() -> None:
        answered.append((await runtime.sessions.enhance("s1")).model)

    async with anyio.create_task_group() as tg:
        tg.start_soon(_enhance, runtime, "s1", "reasoning")
        await held.started.wait()  # the context is inside the reasoning resolution
        tg.start_soon(warm)
        await anyio.wait_all_tasks_blocked()
        assert answered == ["echo-2"]  # answered while the context is still busy
        held.released.set()


async def test_ensure_open_opens_a_missing_session_and_leaves_an_open_one_alone(
        runtime: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    """ensure_open opens what is not open; for an open session it returns while its context
    is busy, so it never waits on (or calls) the context."""
    await runtime.sessions.ensure_open("s1", "ada")
    opened = await runtime.sessions.get("s1", user_id="ada")
    held = HeldResolution(runtime, "reasoning", monkeypatch)
    ensured: list[bool] = []

    async def ensure() -> None:
        await runtime.sessions.ensure_open("s1", "ada")
        ensured.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(_enhance, runtime, "s1", "reasoning")
        await held.started.wait()  # the context is inside the reasoning resolution
        tg.start_soon(ensure)
        await anyio.wait_all_tasks_blocked()
        assert ensured == [True]
        held.released.set()
    assert (await runtime.sessions.get("s1", user_id="ada")).opened_at == opened.opened_at


async def test_a_resolution_that_a_config_write_overtook_is_not_cached(
        runtime: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    """A context that read the old config before a write returns it, and does not keep it."""
    await runtime.users.set_default("ada", "echo", "old")
    await runtime.sessions.open("s1", "ada")
    held = HeldResolution(runtime, "reasoning", monkeypatch)
    async with anyio.create_task_group() as tg:
        async def first() -> None:
            assert (await runtime.sessions.enhance("s1", task_type="reasoning")).model == "old"

        tg.start_soon(first)
        await held.started.wait()  # it has read "old"
        await runtime.users.set_default("ada", "echo", "new")
        held.released.set()
    assert (await runtime.sessions.enhance("s1", task_type="reasoning")).model == "new"


async def test_usage_is_durable_on_return_and_counted_once(runtime: Application) -> None:
    """record_usage returns once the ledger has the event; a repeated request id counts 0."""
    await runtime.users.set_default("ada", "echo", "echo-1")
    await runtime.sessions.open("s1", "ada")
    assert await runtime.sessions.record_usage(
        "s1", provider="echo", model="echo-1", prompt_tokens=5, completion_tokens=7,
        request_id="r1") is True
    assert await runtime.sessions.record_llm_usage(
        "s1", "echo", "echo-1", prompt_tokens=5, completion_tokens=7, request_id="r1") is False
    assert (await runtime.store.usage_totals(user_id="ada")).requests == 1
    assert (await runtime.store.get_config("ada", "echo")).usage_count == 1
    usage = await runtime.sessions.usage("s1")
    assert (usage.requests, usage.total_tokens) == (1, 12)
    stats = await runtime.users.get_usage_stats("ada")
    assert stats.totals.total_tokens == 12


async def test_usage_is_counted_while_the_context_is_busy(
        runtime: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting durable usage takes no message to the context: it shows while the context
    is still inside another request, and a closed session's counter is gone."""
    await runtime.users.set_default("ada", "echo", "echo-1")
    await runtime.sessions.open("s1", "ada")
    held = HeldResolution(runtime, "reasoning", monkeypatch)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_enhance, runtime, "s1", "reasoning")
        await held.started.wait()  # the context is busy until released
        assert await runtime.sessions.record_usage(
            "s1", provider="echo", model="echo-1", prompt_tokens=2, completion_tokens=3)
        counter = runtime.sessions.counter("s1")
        assert counter is not None
        assert (counter.requests, counter.prompt_tokens, counter.completion_tokens) == (1, 2, 3)
        held.released.set()
    assert (await runtime.sessions.usage("s1")).total_tokens == 5
    await runtime.sessions.close("s1")
    assert runtime.sessions.counter("s1") is None


async def test_a_crashed_session_restarts_alone_and_rebuilds_its_usage(
        runtime: Application) -> None:
    """A crash restarts that context from the ledger; other sessions keep running untouched."""
    await runtime.sessions.open("s1", "ada")
    await runtime.sessions.open("s2", "ada")
    await runtime.sessions.record_usage("s1", provider="echo", model="e", prompt_tokens=3)
    other = runtime.sessions.entry("s2")[0]
    victim = runtime.sessions.entry("s1")[0]
    with pytest.raises(ActorExitedError):
        await call(victim, ("no such request",))
    # The supervisor handles the EXIT (restarting the child) before this request.
    await dynamic_children(runtime.services.whereis(SESSION_SUP))
    info = await runtime.sessions.get("s1")  # restarted, found again under its id
    assert runtime.sessions.entry("s1")[0] is not victim
    assert len(runtime.services.preferences) == 2  # the new context's, not the dead one's
    assert (info.usage.requests, info.usage.prompt_tokens) == (1, 3)
    assert runtime.sessions.entry("s2")[0] is other
    assert other.alive


async def test_a_restarted_new_session_still_rebuilds_its_usage(runtime: Application) -> None:
    """A session with a generated id skips the ledger when new, not when restarted."""
    sid = (await runtime.sessions.open(None, "ada")).session_id
    await runtime.sessions.record_usage(sid, provider="echo", model="e", completion_tokens=9)
    with pytest.raises(ActorExitedError):
        await call(runtime.sessions.entry(sid)[0], ("no such request",))
    await dynamic_children(runtime.services.whereis(SESSION_SUP))
    assert (await runtime.sessions.usage(sid)).completion_tokens == 9


async def test_close_stops_the_context_and_keeps_the_usage(runtime: Application) -> None:
    """A closed session is gone; its usage stays in the ledger."""
    await runtime.sessions.open("s1", "ada")
    await runtime.sessions.record_usage("s1", provider="echo", model="e", prompt_tokens=1)
    await runtime.sessions.close("s1")
    with pytest.raises(SessionNotFoundError):
        await runtime.sessions.get("s1")
    assert (await runtime.store.session_totals("ada", "s1")).requests == 1
    assert runtime.sessions.count() == 0
    assert len(runtime.services.preferences) == 0  # nor its cached preferences


async def test_resolved_config_and_defaults_through_users(runtime: Application) -> None:
    """The seed's user API: default, all configs and the resolved config with provenance."""
    assert await runtime.users.get_default("ada") is None
    await runtime.users.add_model("ada", "echo", "echo-a")
    await runtime.users.set_default("ada", "ollama", "llama3")
    default = await runtime.users.get_default("ada")
    assert default is not None
    assert (default.provider, default.model) == ("ollama", "llama3")
    assert [c.provider for c in await runtime.users.get_all_configs("ada")] == ["echo", "ollama"]
    resolved = await runtime.users.get_resolved_config("ada")
    assert resolved.task_type == "chat"
    assert resolved.sources["provider"] in set(Layer)


async def test_a_crashed_recorder_loses_no_acknowledged_usage(runtime: Application) -> None:
    """Usage acknowledged before the recorder crashed is in the ledger; the new one records."""
    await runtime.sessions.open("s1", "ada")
    for n in range(5):
        await runtime.sessions.record_usage("s1", provider="echo", model="e", request_id=f"r{n}")
    recorder = runtime.services.whereis(USAGE_RECORDER)
    assert recorder is not None
    with pytest.raises(ActorExitedError):
        await call(recorder, "no such request")
    assert await runtime.sessions.record_usage("s1", provider="echo", model="e",
                                               request_id="r5") is True
    assert runtime.services.whereis(USAGE_RECORDER) is not recorder
    assert (await runtime.store.session_totals("ada", "s1")).requests == 6


# -- config changes written straight to the store ----------------------------------------------


async def test_a_live_sessions_preferences_follow_a_direct_store_write(
        runtime: Application) -> None:
    """A write to the store (no Users, no resolver) clears the user's cached preferences
    before it returns; the next enhance answers the new model, other users keep theirs."""
    store, table = runtime.store, runtime.services.preferences
    for user in ("ada", "bob"):
        await store.upsert_profile(user)
        await store.set_default(user, "echo", f"{user}-old")
    for sid, user in (("a1", "ada"), ("b1", "bob")):
        await runtime.sessions.open(sid, user)
        await runtime.sessions.enhance(sid)  # warm
    await store.set_default("ada", "echo", "ada-new")
    assert table.cached(("ada", "a1"), "chat") is None
    assert (await runtime.sessions.enhance("a1")).model == "ada-new"
    cached = table.cached(("bob", "b1"), "chat")
    assert cached is not None
    assert cached.model == "bob-old"


async def test_a_shared_store_write_clears_every_sessions_preferences(runtime: Application) -> None:
    """A global config written to the store reaches every live session at once."""
    await runtime.sessions.open("a1", "ada")
    await runtime.sessions.open("b1", "bob")
    assert (await runtime.sessions.enhance("a1", task_type="summarize")).model == "echo-1"
    await runtime.sessions.enhance("b1", task_type="summarize")
    await runtime.store.set_global_config(GlobalConfig(task_type="summarize", provider="echo",
                                                       model="echo-sum"))
    assert [(await runtime.sessions.enhance(s, task_type="summarize")).model
            for s in ("a1", "b1")] == ["echo-sum", "echo-sum"]


async def test_a_write_while_the_config_cache_is_down_reaches_the_sessions(
        runtime: Application) -> None:
    """No resolver hears a store write while the config cache is stopped; its restart
    clears the sessions' preferences, so they resolve what was written meanwhile."""
    await runtime.store.upsert_profile("ada")
    await runtime.store.set_default("ada", "echo", "old")
    await runtime.sessions.open("s1", "ada")
    await runtime.sessions.enhance("s1")  # warm
    await terminate_child(ROOT, "config_cache")
    assert runtime.services.resolver is None
    await runtime.store.set_default("ada", "echo", "new")
    await restart_child(ROOT, "config_cache")
    assert runtime.services.preferences.cached(("ada", "s1"), "chat") is None
    assert (await runtime.sessions.enhance("s1")).model == "new"


async def test_a_crashed_config_cache_leaves_its_resolver_behind(runtime: Application) -> None:
    """The crashed cache's resolver stops following the store; its successor follows it."""
    await runtime.store.upsert_profile("ada")
    await runtime.store.set_default("ada", "echo", "old")
    await runtime.sessions.open("s1", "ada")
    await runtime.sessions.enhance("s1")  # warm: the resolver caches ada's chat
    dead = runtime.services.current_resolver()
    with pytest.raises(ActorExitedError):
        await call(runtime.services.whereis(CONFIG_CACHE), "no such request")
    await which_children(ROOT)  # the root supervisor has restarted the config cache
    assert runtime.services.current_resolver() is not dead
    await runtime.store.set_default("ada", "echo", "new")
    assert (await runtime.sessions.enhance("s1")).model == "new"
    assert dead.cache_stats.size == 1  # ada's entry: no store change reached it
