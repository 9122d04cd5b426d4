"""``ConfigCache``, and the one description of how resolved configuration is cached.

The store is the truth. Resolving a user's configuration costs queries and pydantic work, so
the result is cached in four layers, each built on the one before it. Every store write that
can change a resolution publishes a change event after its transaction
(``beamish.store.events``), in the writer's task and before the write returns, and each
layer is cleared from it synchronously: a read after a write never sees the old
configuration, and nothing waits for a TTL. Nobody has to write through a cache.

1. **The resolver's entries** (``ConfigResolver``, ``beamish.llm.resolver``): per (user,
   task type, tier), the loaded layers and the resolved configuration, in a ``TTLCache``.
   *Why:* a miss costs a query and the resolution rules; a hit costs two dict lookups.
   *Cleared by:* ``UserConfigChanged(user)`` → that user's entries; ``SharedConfigChanged``
   → all of them; ``invalidate_user`` / ``invalidate_all`` by hand; the TTL
   (``llm.cache_ttl_s``, 300 s), which only matters for writes the store cannot see
   (another process, raw SQL); size (``llm.cache_maxsize``, least recently used first).
2. **The resolver's shared layers**: the provider registry, the model catalogs and the
   global and tier configs, loaded together. *Why:* every user's resolution needs them, and
   they cost a query per enabled provider. *Cleared by:* any ``SharedConfigChanged``,
   ``invalidate_all``, the TTL.
3. **The ``ConfigCache`` actor** (here): owns the resolver — makes it, subscribes it to the
   store, publishes it as ``Services.resolver`` — and passes every invalidation of it on to
   layer 4 (``ConfigResolver.on_invalidate``). *Why an actor:* the resolver is state worth
   supervising. A crash drops the resolver with all its entries; its restart makes a new,
   empty one and clears layer 4 whole, since no resolver heard the store's changes between
   the two.
4. **Each session's preferences** (``SessionContext.preferences``, task type →
   ``ResolvedConfig``, published in the ``PreferenceTable`` by session key). *Why:* a warm
   session answers ``Sessions.enhance`` from it with a dict lookup, with no call to its
   context nor to the resolver; it lives as long as the context, hibernation included.
   *Cleared by:* every invalidation of layer 1, for the sessions it concerns: a user's →
   their live sessions (found through the ``SESSIONS_BY_USER`` registry), everything →
   every session; a restart of this actor. No TTL of its own: what the store cannot see
   reaches it through ``invalidate_user`` / ``invalidate_all``.

Prompt templates are cached beside these layers, not in them: ``beamish.templates.Templates``
keeps the versions it read per (name, label or version) for ``llm.cache_ttl_s`` too, and
drops a template's entries on its ``TemplateChanged(name)``, which the resolver ignores (a
template's text changes no provider, model or parameter; which template a task uses is a
global config field, so a ``SharedConfigChanged``).

A load overtaken by a write. A resolution in flight when its layers change would cache what
it read before the change. Layers 1-2 and layer 4 each count invalidations (the resolver's
generation, ``PreferenceTable.generation``): a load returns what it read to its caller but
caches it only if the count has not moved since it started.

Transport. The change events are plain values handed to ``Store.subscribe`` listeners; a
notifier between nodes subscribes to the same hook and publishes what other nodes wrote.
"""

from __future__ import annotations

import functools
from typing import Any

from beamish.llm.resolver import CacheStats, ConfigResolver
from beamish.runtime import Actor, Caller, Registry, on_exit
from beamish.sessions.services import SESSIONS_BY_USER, Services


class ConfigCache(Actor):
    """Owns the config resolver; call ``"stats"`` for its cache counters."""

    def init(self, services: Services) -> None:
        self.services = services
        self.resolver = ConfigResolver(services.store, services.llm_settings)
        self.resolver.on_invalidate(functools.partial(invalidate_sessions, services))
        # Nothing heard the store while no resolver ran (see layer 3 above).
        services.preferences.invalidate(None)
        services.resolver = self.resolver
        on_exit(self.ref, functools.partial(_withdraw, services, self.resolver))

    def handle_call(self, request: Any, caller: Caller) -> CacheStats:
        if request == "stats":
            return self.resolver.cache_stats
        raise ValueError(f"unknown config cache request {request!r}")


def invalidate_sessions(services: Services, user_id: str | None) -> None:
    """Clear the cached preferences of ``user_id``'s live sessions (None: of every session)."""
    preferences = services.preferences
    if user_id is None:
        preferences.invalidate(None)
        return
    by_user = services.node.whereis(SESSIONS_BY_USER)
    if by_user is None:
        preferences.invalidate(())  # the session tree is not up: nothing is cached
        return
    preferences.invalidate((user_id, str(sid)) for _, sid in Registry.lookup(by_user, user_id))


def _withdraw(services: Services, resolver: ConfigResolver, *_: object) -> None:
    # However the actor exits: its resolver stops following the store and is no longer
    # handed out.
    resolver.close()
    if services.resolver is resolver:
        services.resolver = None
