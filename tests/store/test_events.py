"""Config change events: which write publishes what, when, and what listeners cannot break."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from beamish.store import (
    ConfigChange,
    ConfigNotFoundError,
    GlobalConfig,
    LLMParameters,
    NewLLMConfig,
    NewTemplateVersion,
    ProviderModel,
    ProviderRecord,
    SharedConfigChanged,
    Store,
    TaskOverride,
    TemplateChanged,
    UserConfigChanged,
)
from beamish.store._backend import Executor, Transaction
from beamish.store._store import SqlStore
from beamish.store.events import ConfigEvents
from tests.store.helpers import usage

pytestmark = pytest.mark.anyio

DISCOVERED = datetime(2026, 1, 1, tzinfo=UTC)
ADA = UserConfigChanged("ada")

Write = Callable[[Store], Awaitable[object]]

WRITES: dict[str, tuple[Write, ConfigChange]] = {
    "upsert_profile": (lambda s: s.upsert_profile("ada", tier="pro"), ADA),
    "delete_profile": (lambda s: s.delete_profile("ada"), ADA),
    "add_config": (lambda s: s.add_config("ada", NewLLMConfig(provider="echo", model="e")),
                   ADA),
    "update_config": (lambda s: s.update_config(
        "ada", "openai", parameters=LLMParameters(max_tokens=7)), ADA),
    "remove_config": (lambda s: s.remove_config("ada", "openai"), ADA),
    "set_default": (lambda s: s.set_default("ada", "openai", "gpt-4o-mini"), ADA),
    "set_task_override": (lambda s: s.set_task_override("ada", TaskOverride(
        task_type="reasoning", provider="echo", model="e")), ADA),
    "delete_task_override": (lambda s: s.delete_task_override("ada", "reasoning"), ADA),
    "register_provider": (lambda s: s.register_provider(ProviderRecord(
        name="local", kind="ollama")), SharedConfigChanged("providers")),
    "update_provider": (lambda s: s.update_provider(ProviderRecord(
        name="openai", kind="openai", enabled=False)), SharedConfigChanged("providers")),
    "remove_provider": (lambda s: s.remove_provider("openai"),
                        SharedConfigChanged("providers")),
    "replace_provider_models": (lambda s: s.replace_provider_models("openai", [ProviderModel(
        provider="openai", model="gpt-4o-mini", discovered_at=DISCOVERED)]),
        SharedConfigChanged("catalog")),
    "set_global_config": (lambda s: s.set_global_config(GlobalConfig(
        task_type="chat", provider="openai", model="gpt-4o")),
        SharedConfigChanged("global_configs")),
    "delete_global_config": (lambda s: s.delete_global_config("summarize"),
                             SharedConfigChanged("global_configs")),
    "create_template_version": (lambda s: s.create_template_version(NewTemplateVersion(
        name="greet", prompt="Hi")), TemplateChanged("greet")),
    "set_template_label": (lambda s: s.set_template_label("greet", "staging", 1),
                           TemplateChanged("greet")),
    "delete_template_label": (lambda s: s.delete_template_label("greet", "production"),
                              TemplateChanged("greet")),
}
"""Each config write of the Store, one succeeding call of it, and the event it publishes."""


async def _seed(store: Store) -> None:
    await store.register_provider(ProviderRecord(name="openai", kind="openai"))
    await store.upsert_profile("ada")
    await store.set_default("ada", "openai", "gpt-4o")
    await store.set_task_override("ada", TaskOverride(task_type="reasoning", provider="openai",
                                                      model="gpt-4o"))
    await store.set_global_config(GlobalConfig(task_type="summarize", provider="openai",
                                               model="gpt-4o"))
    await store.create_template_version(NewTemplateVersion(name="greet", prompt="Hello"))
    await store.set_template_label("greet", "production", 1)


@pytest.fixture
async def heard(store: Store) -> list[ConfigChange]:
    """The events the seeded store publishes from now on."""
    await _seed(store)
    events: list[ConfigChange] = []
    store.subscribe(events.append)
    return events


@pytest.mark.parametrize("write", WRITES)
async def test_each_config_write_publishes_its_change(store: Store, heard: list[ConfigChange],
                                                      write: str) -> None:
    """A user's write names the user; a shared write names what changed; one event each."""
    call, change = WRITES[write]
    await call(store)
    assert heard == [change]


def test_every_config_write_of_the_store_is_in_the_table() -> None:
    """Each audited Store write (it takes ``actor``) and the catalog write publish an event."""
    audited = {name for name, method in inspect.getmembers(Store, inspect.isfunction)
               if "actor" in inspect.signature(method).parameters}
    assert audited | {"replace_provider_models"} == set(WRITES)


async def test_reads_and_usage_publish_nothing(store: Store,
                                               heard: list[ConfigChange]) -> None:
    """Reading configs and recording usage change no resolution: no event."""
    await store.get_profile("ada")
    await store.list_configs("ada")
    await store.get_user_llm_layers("ada", "chat")
    await store.list_global_configs()
    await store.record(usage("r1"))
    assert heard == []


async def test_a_failed_write_publishes_all_the_same(store: Store,
                                                     heard: list[ConfigChange]) -> None:
    """A write that raises still publishes (a failure may come after the commit)."""
    with pytest.raises(ConfigNotFoundError):
        await store.remove_config("ada", "anthropic")
    assert heard == [ADA]


async def test_a_raising_listener_breaks_neither_the_write_nor_the_others(
        store: Store, heard: list[ConfigChange], caplog: pytest.LogCaptureFixture) -> None:
    """The write commits and returns, later listeners hear the change, the error is logged."""

    def broken(change: ConfigChange) -> None:
        raise RuntimeError("listener bug")

    store.subscribe(broken)
    after: list[ConfigChange] = []
    store.subscribe(after.append)
    with caplog.at_level(logging.ERROR, logger="beamish.store.events"):
        config = await store.set_default("ada", "openai", "gpt-4o-mini")
    stored = await store.get_default("ada")
    assert (config.model, stored and stored.model) == ("gpt-4o-mini", "gpt-4o-mini")
    assert heard == after == [ADA]
    assert [r.getMessage() for r in caplog.records] == [
        f"config change listener {broken!r} failed on {ADA!r}"]
    assert "RuntimeError: listener bug" in caplog.text


async def test_unsubscribing_stops_the_events(store: Store) -> None:
    """After unsubscribe (twice is harmless) the listener hears nothing more."""
    heard: list[ConfigChange] = []
    unsubscribe = store.subscribe(heard.append)
    await store.upsert_profile("ada")
    unsubscribe()
    unsubscribe()
    await store.upsert_profile("bob")
    assert heard == [ADA]


class _Commit:
    """A real transaction that notes when it has ended, then is cancelled if asked to be."""

    def __init__(self, transaction: Transaction, log: list[str], *, cancel: bool) -> None:
        self._transaction = transaction
        self._log = log
        self._cancel = cancel

    async def __aenter__(self) -> Executor:
        return await self._transaction.__aenter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        await self._transaction.__aexit__(exc_type, exc, tb)
        self._log.append("committed")
        if self._cancel:
            raise asyncio.CancelledError


def _watch_commits(store: Store, monkeypatch: pytest.MonkeyPatch, *,
                   cancel: bool) -> list[str]:
    assert isinstance(store, SqlStore)
    backend = store._backend
    begin = backend.transaction
    log: list[str] = []
    monkeypatch.setattr(backend, "transaction", lambda: _Commit(begin(), log, cancel=cancel))
    store.subscribe(lambda change: log.append(f"published {change}"))
    return log


async def test_the_event_is_published_after_the_commit(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Listeners run once the transaction has committed, before the write returns."""
    log = _watch_commits(store, monkeypatch, cancel=False)
    await store.upsert_profile("ada")
    assert log == ["committed", f"published {ADA}"]


async def test_a_write_cancelled_while_committing_still_publishes(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled after its commit, the write raises CancelledError and still publishes."""
    log = _watch_commits(store, monkeypatch, cancel=True)
    with pytest.raises(asyncio.CancelledError):
        await store.upsert_profile("ada", tier="pro")
    assert log == ["committed", f"published {ADA}"]
    assert (await store.get_profile("ada")).tier == "pro"


def test_listeners_hear_in_subscription_order_once_per_subscription() -> None:
    """The same function subscribed twice hears twice; each unsubscribe removes one."""
    events = ConfigEvents()
    heard: list[str] = []

    def a(change: ConfigChange) -> None:
        heard.append("a")

    first = events.subscribe(a)
    events.subscribe(lambda change: heard.append("b"))
    events.subscribe(a)
    events.publish(ADA)
    first()
    events.publish(ADA)
    assert (heard, len(events)) == (["a", "b", "a", "b", "a"], 2)
