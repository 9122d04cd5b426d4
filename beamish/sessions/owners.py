"""Actors that own the session layer's replaceable parts: the usage recorder, the config cache.

Each owns one object with state worth supervising and publishes it in ``Services`` while it
runs, so clients reach it without a message round trip (as a Registry's table is read
directly) and always reach the current instance after a restart.

``UsageRecorderActor`` owns the write-behind ``UsageRecorder``. It traps exits so that on
shutdown its ``terminate`` closes the recorder, which writes everything queued before the store
closes. Events are acknowledged only once durable, so a crash of this actor loses nothing that
was acknowledged: callers with events still in flight get ``RecorderClosedError`` (not
acknowledged; retrying with the same request id is safe) and the restarted recorder takes new
ones. It retries a failing database without limit while it runs (see
``beamish.store.UsageRecorder``), holding at most ``usage_buffer`` events.

``ConfigCache`` owns the ``ConfigResolver`` (cached resolution) and passes its invalidations
on to the ``PreferenceTable``: the preferences cached by the user's live sessions (found
through the ``SESSIONS_BY_USER`` registry) are cleared before the write returns.
"""

from __future__ import annotations

from typing import Any

from beamish.llm.resolver import CacheStats, ConfigResolver
from beamish.runtime import Actor, Caller, Registry
from beamish.runtime.exits import ExitReason
from beamish.sessions.services import SESSIONS_BY_USER, Services
from beamish.store import RetryPolicy, UsageRecorder


class UsageRecorderActor(Actor):
    """Supervises the write-behind usage recorder; call ``"buffered"`` for its backlog."""

    async def init(self, services: Services) -> None:
        self.trap_exit()
        settings = services.settings
        self.services = services
        self.recorder = UsageRecorder(
            services.store, max_batch=min(settings.usage_max_batch, settings.usage_buffer),
            flush_interval=settings.usage_flush_interval_s, max_buffer=settings.usage_buffer,
            retry=RetryPolicy(attempts=None, first_delay=settings.usage_retry_first_s,
                              max_delay=settings.usage_retry_max_s))
        await self.recorder.__aenter__()
        services.publish_recorder(self.recorder)

    def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "buffered":
            return self.recorder.buffered
        raise ValueError(f"unknown usage recorder request {request!r}")

    async def terminate(self, reason: ExitReason) -> None:
        self.services.withdraw_recorder(self.recorder)
        await self.recorder.__aexit__(None, None, None)


class ConfigCache(Actor):
    """Owns the config resolver; call ``"stats"`` for its cache counters."""

    def init(self, services: Services) -> None:
        self.services = services
        self.resolver = ConfigResolver(services.store, services.llm_settings)
        self.resolver.on_invalidate(self._invalidated)
        services.resolver = self.resolver

    def handle_call(self, request: Any, caller: Caller) -> CacheStats:
        if request == "stats":
            return self.resolver.cache_stats
        raise ValueError(f"unknown config cache request {request!r}")

    def terminate(self, reason: ExitReason) -> None:
        if self.services.resolver is self.resolver:
            self.services.resolver = None

    def _invalidated(self, user_id: str | None) -> None:
        # Runs in the task that wrote the config, right after the write: by the time the
        # write returns, no live context of the user holds the old preferences.
        preferences = self.services.preferences
        if user_id is None:
            preferences.invalidate(None)
            return
        by_user = self.services.node.whereis(SESSIONS_BY_USER)
        if by_user is None:
            preferences.invalidate(())  # the session tree is not up: nothing is cached
            return
        preferences.invalidate(str(sid) for _, sid in Registry.lookup(by_user, user_id))
