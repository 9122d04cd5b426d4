"""``ConfigResolver``: config resolution over a ``Store``, cached, following the store's changes.

::

    resolver = ConfigResolver(store, settings.llm)
    config = await resolver.resolve("ada", "reasoning")        # cached per (user, task, tier)
    config = await resolver.resolve("ada", "chat", request=ConfigRequest(model="gpt-4o"))
    print((await resolver.preview("ada", "planning")).explain())
    await store.set_default("ada", "anthropic", "claude-sonnet-4")   # the next resolve sees it
    resolver.close()                                           # stop following the store

The rules live in ``beamish.llm.hierarchy`` (sans-I/O); this module only loads the layers
and caches. Two ``cachetools.TTLCache`` hold what was loaded, both with
``LLMSettings.cache_ttl_s`` (300 s) and ``cache_maxsize`` (10,000):

* per (user, task type, tier): the loaded layers and the resolved configuration. A hit is
  a dictionary lookup for the user's tier and a ``TTLCache`` lookup, with no query and no
  pydantic work; a hit with a ``request`` re-runs only the pure rules over the cached
  layers. The tier is the profile's (the default tier without a profile) unless the caller
  passes one; it is remembered per user and re-read with every miss, so it is never older
  than the entries keyed by it.
* the shared part: provider registry, model catalogs and global configs, loaded together.

A miss reads the user's layers in one query (``Store.get_user_llm_layers``); the shared
part costs one query for the registry, one per enabled provider's catalog and one for the
global configs, once per TTL or shared change.

The resolver subscribes to the store's change events when made: a user's change drops that
user's entries, a shared one everything, before the write returns. Why each cache layer
exists, what invalidates it and how a load overtaken by a write is kept out of the cache:
:mod:`beamish.sessions.config_cache`, the one place that describes them all.
``invalidate_user`` / ``invalidate_all`` are the manual hooks (for writes the store cannot
see: another process, raw SQL), and ``on_invalidate`` tells the caches built on this one
(the sessions' preferences) of every invalidation, whatever caused it.

``preview`` answers "what would user U get for task T" from the store, bypassing the cache.
``cache_stats`` exposes the hit and miss counters.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from cachetools import TTLCache

from beamish.llm.hierarchy import (
    Availability,
    Catalog,
    ConfigRequest,
    ResolutionInputs,
    ResolvedConfig,
    build_catalog,
    resolve_config,
)
from beamish.llm.settings import LLMSettings
from beamish.store import (
    ConfigChange,
    GlobalConfig,
    SharedConfigChanged,
    Store,
    UserConfigChanged,
    UserLLMLayers,
)

InvalidationListener = Callable[[str | None], None]
"""Called with the user whose entries were dropped, or None when everything was."""

_Key = tuple[str | None, str, str]
_SHARED = "shared"
_NOBODY = UserLLMLayers(profile=None)


class CacheStats(NamedTuple):
    """Counters of ``ConfigResolver.resolve`` since the resolver was made."""

    hits: int
    misses: int
    size: int


@dataclass(frozen=True, slots=True)
class _Entry:
    inputs: ResolutionInputs
    config: ResolvedConfig


@dataclass(frozen=True, slots=True)
class _Shared:
    availability: Availability
    catalog: Catalog
    global_configs: Mapping[str, tuple[GlobalConfig, ...]]


class ConfigResolver:
    """Resolves and caches LLM configurations of users, dropping what the store's writes change.

    Args:
        store: where the layers live.
        settings: system defaults, task types, tiers and the cache knobs (defaults if None).
        environ: where to look for ``OPENAI_API_KEY`` and the like (``os.environ`` if None).
        timer: the caches' clock, in seconds (``time.monotonic``); tests pass a fake one.
    """

    def __init__(self, store: Store, settings: LLMSettings | None = None, *,
                 environ: Mapping[str, str] | None = None,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._settings = settings = settings or LLMSettings()
        self._configured = settings.configured_providers(
            os.environ if environ is None else environ)
        ttl, size = settings.cache_ttl_s, settings.cache_maxsize
        self._entries: TTLCache[_Key, _Entry] = TTLCache(size, ttl, timer)
        self._shared: TTLCache[str, _Shared] = TTLCache(1, ttl, timer)
        # Plain dicts beside the TTLCache: the tier each user's entries are keyed by, and
        # those keys, so invalidating a user costs their entries, not a scan of the cache.
        # Keys that expired stay listed until pruned (see _remember).
        self._tier_of: dict[str | None, str] = {}
        self._keys_of: dict[str | None, set[_Key]] = {}
        self._generation = 0
        self._hits = 0
        self._misses = 0
        self._listeners: list[InvalidationListener] = []
        self._unsubscribe = store.subscribe(self._changed)

    @property
    def store(self) -> Store:
        """The store read from, whose changes this resolver follows."""
        return self._store

    def close(self) -> None:
        """Stop following the store's changes (a resolver that is dropped should be closed:
        the store's subscription keeps it alive). Idempotent."""
        self._unsubscribe()

    @property
    def settings(self) -> LLMSettings:
        """The settings resolution falls back to."""
        return self._settings

    @property
    def cache_stats(self) -> CacheStats:
        """Hits and misses of ``resolve`` so far, and the number of cached entries."""
        return CacheStats(self._hits, self._misses, len(self._entries))

    # -- resolving ----------------------------------------------------------------------

    async def resolve(self, user_id: str | None, task_type: str = "chat", *,
                      request: ConfigRequest | None = None,
                      tier: str | None = None) -> ResolvedConfig:
        """The configuration ``user_id`` gets for ``task_type``, from the cache if fresh.

        Args:
            user_id: the user, or None for a call on nobody's behalf (no user layers).
            task_type: e.g. ``chat``, ``reasoning``, ``embeddings``.
            request: this call's explicit values (the highest layer).
            tier: use this tier instead of the profile's.

        Raises:
            NoUsableProviderError: no layer yields a usable provider and model.
            StoreError: the layers could not be loaded.
        """
        key_tier = tier or self._tier_of.get(user_id)
        if key_tier is not None:
            try:
                entry = self._entries[(user_id, task_type, key_tier)]
            except KeyError:
                pass
            else:
                self._hits += 1
                if request is None:
                    return entry.config
                return resolve_config(dataclasses.replace(entry.inputs, request=request))
        self._misses += 1
        entry = await self._load(user_id, task_type, tier, cache=True)
        if request is None:
            return entry.config
        return resolve_config(dataclasses.replace(entry.inputs, request=request))

    async def preview(self, user_id: str | None, task_type: str = "chat", *,
                      request: ConfigRequest | None = None,
                      tier: str | None = None) -> ResolvedConfig:
        """What ``user_id`` would get for ``task_type`` now, read from the store.

        Bypasses the cache (and its counters); ``explain()`` on the result prints each
        field with its source and every warning.
        """
        entry = await self._load(user_id, task_type, tier, cache=False)
        if request is None:
            return entry.config
        return resolve_config(dataclasses.replace(entry.inputs, request=request))

    async def _load(self, user_id: str | None, task_type: str, tier: str | None, *,
                    cache: bool) -> _Entry:
        generation = self._generation
        shared = await self._shared_layers(cache=cache)
        user = _NOBODY if user_id is None else await self._store.get_user_llm_layers(
            user_id, task_type)
        profile_tier = None if user.profile is None else user.profile.tier
        inputs = ResolutionInputs(
            task_type=task_type, settings=self._settings, availability=shared.availability,
            catalog=shared.catalog, user_id=user_id, tier=tier or profile_tier,
            task_override=user.task_override, user_configs=user.configs,
            global_configs=shared.global_configs.get(task_type, ()))
        entry = _Entry(inputs, resolve_config(inputs))
        if cache and generation == self._generation:
            key_tier = tier or profile_tier or self._settings.default_tier
            self._remember((user_id, task_type, key_tier), entry, user_tier=tier is None)
        return entry

    def _remember(self, key: _Key, entry: _Entry, *, user_tier: bool) -> None:
        user_id = key[0]
        if len(self._keys_of) >= 2 * self._settings.cache_maxsize and user_id not in (
                self._keys_of):
            self._prune()
        self._entries[key] = entry
        self._keys_of.setdefault(user_id, set()).add(key)
        if user_tier:
            self._tier_of[user_id] = key[2]

    def _prune(self) -> None:
        # Forget users whose entries all expired or were evicted; at most maxsize remain,
        # so this O(maxsize) pass runs at most once per maxsize new users.
        live: dict[str | None, set[_Key]] = {}
        for key in list(self._entries):
            live.setdefault(key[0], set()).add(key)
        self._keys_of = live
        self._tier_of = {u: t for u, t in self._tier_of.items() if u in live}

    async def _shared_layers(self, *, cache: bool) -> _Shared:
        if cache:
            try:
                return self._shared[_SHARED]
            except KeyError:
                pass
        generation = self._generation
        providers = await self._store.list_providers()
        models = {p.name: await self._store.list_provider_models(p.name)
                  for p in providers if p.enabled}
        by_task: dict[str, tuple[GlobalConfig, ...]] = {}
        for config in await self._store.list_global_configs():
            by_task[config.task_type] = (*by_task.get(config.task_type, ()), config)
        shared = _Shared(Availability.of(providers, self._settings, self._configured),
                         build_catalog(providers, models), by_task)
        if cache and generation == self._generation:
            self._shared[_SHARED] = shared
        return shared

    # -- invalidation -------------------------------------------------------------------

    def invalidate_user(self, user_id: str) -> None:
        """Drop every cached configuration of ``user_id``, and their tier."""
        self._generation += 1
        self._tier_of.pop(user_id, None)
        for key in self._keys_of.pop(user_id, ()):
            self._entries.pop(key, None)
        self._notify(user_id)

    def invalidate_all(self) -> None:
        """Drop everything cached: every user's configurations and the shared layers."""
        self._generation += 1
        self._entries.clear()
        self._tier_of.clear()
        self._keys_of.clear()
        self._shared.clear()
        self._notify(None)

    def on_invalidate(self, listener: InvalidationListener) -> Callable[[], None]:
        """Call ``listener`` after each invalidation; returns a function that unsubscribes.

        Listeners run synchronously where the invalidation happens (for a store change, in the
        writer's task before the write returns), after the cache is cleared; they should only
        note the change (e.g. ``cast`` to an actor) and must not raise.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self, user_id: str | None) -> None:
        for listener in list(self._listeners):
            listener(user_id)

    def _changed(self, change: ConfigChange) -> None:
        # A store listener: runs in the writer's task once its transaction has ended.
        if isinstance(change, UserConfigChanged):
            self.invalidate_user(change.user_id)
        elif isinstance(change, SharedConfigChanged):
            self.invalidate_all()
        # TemplateChanged: a template's text changes no provider, model or parameter.
