"""``ConfigResolver`` over a real store (SQLite and PostgreSQL): layers, cache, invalidation
by the store's change events."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import anyio
import pytest
from cryptography.fernet import Fernet

from beamish.llm.errors import NoUsableProviderError
from beamish.llm.hierarchy import ConfigRequest, Layer, ResolvedConfig
from beamish.llm.providers import LLMClient, refresh_catalog
from beamish.llm.resolver import CacheStats, ConfigResolver
from beamish.llm.settings import LLMSettings
from beamish.store import (
    ConfigNotFoundError,
    GlobalConfig,
    LLMParameters,
    NewLLMConfig,
    NewTemplateVersion,
    ProviderModel,
    ProviderRecord,
    SecretBox,
    Store,
    TaskOverride,
    UserLLMLayers,
    open_store,
)
from beamish.store._open import backend_for
from beamish.store._store import SqlStore
from tests._clock import FakeClock
from tests.llm.providers._fake_llm_server import FakeLLMServer

pytestmark = pytest.mark.anyio

DISCOVERED = datetime(2026, 1, 1, tzinfo=UTC)
BOX = SecretBox(Fernet.generate_key().decode())


def _model(name: str, window: int | None = None) -> ProviderModel:
    return ProviderModel(provider="openai", model=name, context_window=window,
                         discovered_at=DISCOVERED)


async def _seed(store: Store) -> None:
    """openai registered with a catalog; a global summarize config (gpt-4o); ada (default
    gpt-4o, reasoning override on an unregistered ollama) and bob (a bare profile)."""
    await store.register_provider(ProviderRecord(name="openai", kind="openai"))
    await store.replace_provider_models("openai", [_model("gpt-4o", 128_000),
                                                   _model("gpt-4o-mini", 128_000)])
    await store.upsert_profile("ada")
    await store.set_default("ada", "openai", "gpt-4o")
    await store.set_task_override("ada", TaskOverride(task_type="reasoning", provider="ollama",
                                                      model="llama3.1:8b"))
    await store.upsert_profile("bob")
    await store.set_global_config(GlobalConfig(task_type="summarize", provider="openai",
                                               model="gpt-4o"))


@pytest.fixture
async def resolver(store: Store, clock: FakeClock) -> ConfigResolver:
    """A resolver over the seeded store, default settings, no SDK key variables."""
    await _seed(store)
    return ConfigResolver(store, LLMSettings(), environ={}, timer=clock)


@pytest.fixture
async def elsewhere(store: Store, store_url: str) -> AsyncIterator[Store]:
    """A second store over the same database: what is written through it reaches the
    resolver only through the database, as another process's writes would."""
    async with open_store(store_url) as other:
        yield other


# -- resolving from the store ----------------------------------------------------------------


async def test_layers_come_from_the_store(resolver: ConfigResolver) -> None:
    """Ada's chat uses her default; her reasoning override on an unusable provider is skipped."""
    chat = await resolver.resolve("ada", "chat")
    assert (chat.provider, chat.model, chat.sources["model"]) == ("openai", "gpt-4o",
                                                                  Layer.USER_DEFAULT)
    reasoning = await resolver.resolve("ada", "reasoning")
    assert reasoning.model == "gpt-4o"
    assert reasoning.warnings == (
        "user_task_override: skipped ollama:llama3.1:8b: provider 'ollama' is not configured "
        "(no registry entry, no api_key or base_url in settings)",)


async def test_tier_and_global_configs_come_from_the_store(resolver: ConfigResolver) -> None:
    """A pro user gets the pro tier config; a free one the any-tier config."""
    store = resolver.store
    await store.set_global_config(GlobalConfig(task_type="planning", provider="openai",
                                               model="gpt-4o-mini"))
    await store.set_global_config(GlobalConfig(task_type="planning", tier="pro",
                                               provider="openai", model="gpt-4o",
                                               parameters=LLMParameters(max_tokens=500)))
    await store.upsert_profile("cy", tier="pro")
    pro = await resolver.resolve("cy", "planning")
    free = await resolver.resolve("bob", "planning")
    assert (pro.tier, pro.model, pro.parameters.max_tokens) == ("pro", "gpt-4o", 500)
    assert dict(pro.sources) == {"provider": Layer.TIER_CONFIG, "model": Layer.TIER_CONFIG,
                                 "max_tokens": Layer.TIER_CONFIG, "temperature":
                                 Layer.SYSTEM_DEFAULT, "timeout_s": Layer.SYSTEM_DEFAULT,
                                 "max_retries": Layer.SYSTEM_DEFAULT}
    assert (free.tier, free.model, free.sources["model"]) == ("free", "gpt-4o-mini",
                                                              Layer.GLOBAL_CONFIG)


async def test_catalog_limits_apply(resolver: ConfigResolver) -> None:
    """A stored max_tokens beyond the catalog's context window is skipped, visibly."""
    await resolver.store.update_config("ada", "openai",
                                       parameters=LLMParameters(max_tokens=1_000_000))
    config = await resolver.resolve("ada", "chat")
    assert config.parameters.max_tokens is None
    assert config.warnings == ("user_default: skipped max_tokens=1000000: exceeds the "
                               "128000-token context window of openai:gpt-4o",)


async def test_no_profile_means_no_user_layers_and_the_default_tier(
        resolver: ConfigResolver) -> None:
    """An unknown user and no user at all both get the system default on the free tier."""
    for user in ("ghost", None):
        config = await resolver.resolve(user, "chat")
        assert (config.provider, config.tier, config.user_id) == ("echo", "free", user)


async def test_an_explicit_tier_replaces_the_profiles(resolver: ConfigResolver) -> None:
    """resolve(tier=...) resolves as that tier and caches under it."""
    config = await resolver.resolve("ada", "chat", tier="enterprise")
    assert config.tier == "enterprise"
    assert (await resolver.resolve("ada", "chat")).tier == "free"
    assert resolver.cache_stats == CacheStats(hits=0, misses=2, size=2)


async def test_sdk_key_variables_make_a_provider_usable(store: Store) -> None:
    """OPENAI_API_KEY in the environ given makes openai usable without a registry row."""
    await store.upsert_profile("ada")
    await store.set_default("ada", "openai", "gpt-4o")
    with_key = ConfigResolver(store, environ={"OPENAI_API_KEY": "sk-test"})
    without = ConfigResolver(store, environ={})
    assert (with_key.store, with_key.settings) == (store, LLMSettings())
    assert (await with_key.resolve("ada")).provider == "openai"
    assert (await without.resolve("ada")).provider == "echo"


async def test_nothing_usable_raises_and_caches_nothing(resolver: ConfigResolver) -> None:
    """With echo disabled and openai off, resolve raises NoUsableProviderError."""
    store = resolver.store
    await store.register_provider(ProviderRecord(name="echo", kind="echo", enabled=False))
    await store.update_provider(ProviderRecord(name="openai", kind="openai", enabled=False))
    with pytest.raises(NoUsableProviderError, match="no usable provider for task 'chat'"):
        await resolver.resolve("ada", "chat")
    assert resolver.cache_stats.size == 0


# -- the cache -------------------------------------------------------------------------------


async def test_hits_and_misses_are_counted(resolver: ConfigResolver) -> None:
    """First resolve of a (user, task) misses, the next hits with the very same object."""
    first = await resolver.resolve("ada", "chat")
    second = await resolver.resolve("ada", "chat")
    await resolver.resolve("ada", "reasoning")
    assert second is first
    assert resolver.cache_stats == CacheStats(hits=1, misses=2, size=2)


async def test_a_request_on_a_hit_reuses_the_cached_layers(resolver: ConfigResolver,
                                                         elsewhere: Store) -> None:
    """Request values apply over cached layers: a hit, with no store read."""
    await resolver.resolve("ada", "chat")
    await elsewhere.set_default("ada", "openai", "gpt-4o-mini")  # behind the resolver's back
    config = await resolver.resolve("ada", "chat", request=ConfigRequest(
        parameters=LLMParameters(temperature=0.1)))
    assert (config.model, config.parameters.temperature) == ("gpt-4o", 0.1)
    assert config.sources["temperature"] is Layer.REQUEST
    assert resolver.cache_stats.hits == 1


async def test_a_request_on_a_miss_is_resolved_and_the_plain_config_cached(
        resolver: ConfigResolver) -> None:
    """A miss with a request answers the request and caches the request-free result."""
    config = await resolver.resolve("ada", "chat", request=ConfigRequest(model="gpt-4o-mini"))
    plain = await resolver.resolve("ada", "chat")
    assert (config.model, plain.model) == ("gpt-4o-mini", "gpt-4o")
    assert resolver.cache_stats == CacheStats(hits=1, misses=1, size=1)


async def test_entries_expire_after_the_ttl(resolver: ConfigResolver, elsewhere: Store,
                                            clock: FakeClock) -> None:
    """A write behind beamish's back is seen once the 300 s TTL has passed, not before."""
    await resolver.resolve("ada", "chat")
    await elsewhere.set_default("ada", "openai", "gpt-4o-mini")
    clock.advance(299.999)
    assert (await resolver.resolve("ada", "chat")).model == "gpt-4o"
    clock.advance(0.001)
    assert (await resolver.resolve("ada", "chat")).model == "gpt-4o-mini"
    assert resolver.cache_stats == CacheStats(hits=1, misses=2, size=1)


async def test_the_ttl_comes_from_settings(store: Store, clock: FakeClock) -> None:
    """cache_ttl_s sets how long an entry lives."""
    resolver = ConfigResolver(store, LLMSettings(cache_ttl_s=10), environ={}, timer=clock)
    await resolver.resolve(None, "chat")
    clock.advance(10)
    await resolver.resolve(None, "chat")
    assert resolver.cache_stats.misses == 2


async def test_the_cache_holds_at_most_maxsize_entries(store: Store, clock: FakeClock) -> None:
    """Past cache_maxsize the least recently used entries go; invalidation still works."""
    resolver = ConfigResolver(store, LLMSettings(cache_maxsize=2), environ={}, timer=clock)
    for n in range(10):
        await resolver.resolve(f"user{n}", "chat")
    assert resolver.cache_stats == CacheStats(hits=0, misses=10, size=2)
    await resolver.resolve("user9", "chat")
    resolver.invalidate_user("user9")
    await resolver.resolve("user9", "chat")
    assert resolver.cache_stats == CacheStats(hits=1, misses=11, size=2)
    # The per-user key index is pruned to live users, so it stays bounded too.
    assert len(resolver._keys_of) <= 4


async def test_preview_reads_the_store_and_leaves_the_cache_alone(
        resolver: ConfigResolver, elsewhere: Store) -> None:
    """preview() sees a write made behind beamish's back at once and counts nothing."""
    await resolver.resolve("ada", "chat")
    await elsewhere.set_default("ada", "openai", "gpt-4o-mini")
    preview = await resolver.preview("ada", "chat")
    assert preview.model == "gpt-4o-mini"
    assert (await resolver.resolve("ada", "chat")).model == "gpt-4o"
    assert resolver.cache_stats == CacheStats(hits=1, misses=1, size=1)


async def test_preview_with_a_request_and_explain(resolver: ConfigResolver) -> None:
    """preview(request=...) shows what that call would get, explained field by field."""
    preview = await resolver.preview("ada", "chat", request=ConfigRequest(
        parameters=LLMParameters(top_p=0.3)))
    assert "  top_p: 0.3 (request)" in preview.explain().splitlines()
    assert "  model: gpt-4o (user_default)" in preview.explain().splitlines()


# -- invalidation ----------------------------------------------------------------------------

Write = Callable[[Store], Awaitable[object]]

USER_WRITES: dict[str, Write] = {
    "upsert_profile": lambda s: s.upsert_profile("ada", tier="pro"),
    "delete_profile": lambda s: s.delete_profile("ada"),
    "add_config": lambda s: s.add_config("ada", NewLLMConfig(
        provider="echo", model="echo-1", is_default=True)),
    "update_config": lambda s: s.update_config(
        "ada", "openai", parameters=LLMParameters(max_tokens=77)),
    "remove_config": lambda s: s.remove_config("ada", "openai"),
    "set_default": lambda s: s.set_default("ada", "openai", "gpt-4o-mini"),
    "set_task_override": lambda s: s.set_task_override("ada", TaskOverride(
        task_type="reasoning", provider="echo", model="echo-1")),
    "delete_task_override": lambda s: s.delete_task_override("ada", "reasoning"),
}
"""One store call of each user config write, each changing what ada resolves to."""

SHARED_WRITES: dict[str, Write] = {
    "register_provider": lambda s: s.register_provider(ProviderRecord(name="local",
                                                                      kind="ollama")),
    "update_provider": lambda s: s.update_provider(ProviderRecord(name="openai", kind="openai",
                                                                  enabled=False)),
    "remove_provider": lambda s: s.remove_provider("openai"),
    "replace_provider_models": lambda s: s.replace_provider_models("openai",
                                                                   [_model("gpt-4o-mini")]),
    "set_global_config": lambda s: s.set_global_config(GlobalConfig(
        task_type="chat", provider="openai", model="gpt-4o-mini")),
    "delete_global_config": lambda s: s.delete_global_config("summarize"),
}
"""One store call of each shared config write, each changing what ada or bob resolves to."""

TEMPLATE_WRITES: dict[str, Write] = {
    "create_template_version": lambda s: s.create_template_version(NewTemplateVersion(
        name="greet", prompt="Hi")),
    "set_template_label": lambda s: s.set_template_label("greet", "production", 1),
    "delete_template_label": lambda s: s.delete_template_label("greet", "staging"),
}
"""One store call of each prompt template write: none changes a provider, model or parameter."""

KEYS = (("ada", "chat"), ("ada", "reasoning"), ("bob", "chat"), ("bob", "summarize"))


async def _snapshot(resolver: ConfigResolver) -> list[ResolvedConfig]:
    return [await resolver.resolve(user, task) for user, task in KEYS]


@pytest.mark.parametrize("write", USER_WRITES)
async def test_a_user_config_write_invalidates_that_user_at_once(
        resolver: ConfigResolver, write: str) -> None:
    """After the store write (no resolver in it), the user's entries miss and show the
    change; others still hit."""
    before = await _snapshot(resolver)
    await USER_WRITES[write](resolver.store)
    stats = resolver.cache_stats
    after = await _snapshot(resolver)
    assert resolver.cache_stats.misses - stats.misses == 2  # ada's two entries
    assert resolver.cache_stats.hits - stats.hits == 2      # bob's two
    assert after != before
    assert after == [await resolver.preview(user, task) for user, task in KEYS]


@pytest.mark.parametrize("write", SHARED_WRITES)
async def test_a_shared_config_write_invalidates_everyone_at_once(
        resolver: ConfigResolver, write: str) -> None:
    """After a provider, catalog or global config write to the store, every entry misses."""
    before = await _snapshot(resolver)
    await SHARED_WRITES[write](resolver.store)
    stats = resolver.cache_stats
    after = await _snapshot(resolver)
    assert resolver.cache_stats.misses - stats.misses == len(KEYS)
    assert after != before
    assert after == [await resolver.preview(user, task) for user, task in KEYS]


@pytest.mark.parametrize("write", TEMPLATE_WRITES)
async def test_a_template_write_invalidates_nothing(resolver: ConfigResolver,
                                                    write: str) -> None:
    """A template's versions and labels resolve to no provider or model: every entry hits."""
    await resolver.store.create_template_version(NewTemplateVersion(name="greet", prompt="Hey"))
    await resolver.store.set_template_label("greet", "staging", 1)
    await _snapshot(resolver)
    await TEMPLATE_WRITES[write](resolver.store)
    stats = resolver.cache_stats
    await _snapshot(resolver)
    assert resolver.cache_stats.hits - stats.hits == len(KEYS)


def test_every_config_write_of_the_store_is_tried() -> None:
    """Each audited Store write (it takes ``actor``) and the catalog write is tried above."""
    audited = {name for name, method in inspect.getmembers(Store, inspect.isfunction)
               if "actor" in inspect.signature(method).parameters}
    writes = audited | {"replace_provider_models"}
    assert writes == set(USER_WRITES) | set(SHARED_WRITES) | set(TEMPLATE_WRITES)


async def test_a_store_write_is_seen_by_the_next_resolve_with_no_wait(
        resolver: ConfigResolver, clock: FakeClock) -> None:
    """A write straight to the store changes the very next resolve; the clock never moves."""
    assert (await resolver.resolve("ada", "chat")).model == "gpt-4o"
    await resolver.store.set_default("ada", "openai", "gpt-4o-mini")
    assert (await resolver.resolve("ada", "chat")).model == "gpt-4o-mini"
    assert (clock(), resolver.cache_stats) == (0.0, CacheStats(hits=0, misses=2, size=1))


async def test_a_catalog_refresh_is_seen_by_the_next_resolve(
        resolver: ConfigResolver, fake_llm: FakeLLMServer) -> None:
    """refresh_catalog writes the catalog to the store; a model it does not list is then
    skipped at once, where before the refresh the empty catalog accepted it."""
    store = resolver.store
    await store.register_provider(ProviderRecord(
        name="oa", kind="openai_compatible", base_url=fake_llm.openai_url,
        api_key_ciphertext=BOX.encrypt(fake_llm.openai_key)))
    await store.set_default("ada", "openai_compatible", "model-z")
    assert (await resolver.resolve("ada", "chat")).model == "model-z"
    async with await LLMClient.from_store(store, LLMSettings(), box=BOX, environ={}) as client:
        found = await refresh_catalog(store, client, names=["oa"])
    assert [d.validation.status for d in found] == ["reachable"]
    config = await resolver.resolve("ada", "chat")
    assert config.model != "model-z"
    assert "model 'model-z' is not in the openai_compatible catalog" in config.warnings[0]


async def test_a_closed_resolver_no_longer_follows_the_store(
        resolver: ConfigResolver) -> None:
    """After close() (twice is harmless) a store write leaves the cache as it was."""
    await resolver.resolve("ada", "chat")
    resolver.close()
    resolver.close()
    await resolver.store.set_default("ada", "openai", "gpt-4o-mini")
    assert (await resolver.resolve("ada", "chat")).model == "gpt-4o"


async def test_a_failed_write_still_invalidates(resolver: ConfigResolver) -> None:
    """A write that raises (it may have committed) drops the user's entries all the same."""
    await resolver.resolve("ada", "chat")
    with pytest.raises(ConfigNotFoundError):
        await resolver.store.remove_config("ada", "anthropic")
    await resolver.resolve("ada", "chat")
    assert resolver.cache_stats == CacheStats(hits=0, misses=2, size=1)


async def test_invalidate_hooks(resolver: ConfigResolver) -> None:
    """invalidate_user drops one user's entries; invalidate_all drops everything."""
    await _snapshot(resolver)
    resolver.invalidate_user("ada")
    assert resolver.cache_stats.size == 2  # bob's
    resolver.invalidate_user("nobody-cached")
    resolver.invalidate_all()
    assert resolver.cache_stats.size == 0


async def test_listeners_hear_of_every_invalidation(resolver: ConfigResolver) -> None:
    """on_invalidate listeners get the user id, or None for everything, until unsubscribed."""
    heard: list[str | None] = []
    unsubscribe = resolver.on_invalidate(heard.append)
    await resolver.store.set_default("ada", "openai", "gpt-4o-mini")
    await resolver.store.set_global_config(GlobalConfig(task_type="chat", provider="echo",
                                                        model="echo-1"))
    unsubscribe()
    resolver.invalidate_all()
    assert heard == ["ada", None]


class _PausingStore(SqlStore):
    """A real store whose user-layer read waits until the test lets it finish."""

    def __init__(self, url: str) -> None:
        super().__init__(backend_for(url))
        self.reading = anyio.Event()
        self.finish = anyio.Event()

    async def get_user_llm_layers(self, user_id: str, task_type: str) -> UserLLMLayers:
        layers = await super().get_user_llm_layers(user_id, task_type)
        self.reading.set()
        await self.finish.wait()
        return layers


async def test_a_load_overtaken_by_a_write_is_not_cached(store_url: str) -> None:
    """A resolve in flight during an invalidation answers its caller but caches nothing."""
    async with _PausingStore(store_url) as store:
        await store.upsert_profile("ada")
        resolver = ConfigResolver(store, environ={})
        await resolver.resolve(None)  # the shared layers are cached; ada's are not
        results: list[ResolvedConfig] = []

        async def resolve_ada() -> None:
            results.append(await resolver.resolve("ada"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(resolve_ada)
            await store.reading.wait()
            resolver.invalidate_user("ada")
            store.finish.set()
        assert results[0].user_id == "ada"
        assert resolver.cache_stats.size == 1  # only the no-user entry
