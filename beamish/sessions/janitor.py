"""``Janitor``: expires idle sessions and evicts the least recently active at the limit.

Every ``sweep_interval_s`` it asks the shared ``IdleQueue`` (``beamish.sessions.expiry``) for
the sessions idle for ``ttl_s`` or longer — a question whose cost is the number of sessions
that expire, not the number open — and stops their contexts, oldest first, in one request to
the session supervisor (concurrently, each within its shutdown budget). Usage is acknowledged
only once durable, so stopping a context loses nothing; its usage stays in the ledger.

Eviction is on demand: when ``Sessions.open`` finds ``max_sessions`` open, it asks the janitor
to ``("evict", n)``; the janitor stops ``n`` *idle* sessions: those of users at their
``max_sessions_per_user`` first, least recently active first, then anyone's. When a user at
their cap opens one more, ``Sessions.open`` asks ``("evict_own", user_id)``: the janitor stops
that user's least recently active idle session, never another user's. A session with a
request in flight or a joined socket is never expired or evicted (the order is
:mod:`beamish.sessions.expiry`'s).

Calls: ``"report"`` → ``JanitorReport``; ``"sweep"`` → sweep now, return the session ids
expired; ``("evict", n)`` and ``("evict_own", user_id)`` → the session ids evicted.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from beamish.runtime import Actor, ActorRef, Caller, Registry, send_interval, terminate_children
from beamish.sessions.expiry import SessionKey
from beamish.sessions.models import JanitorReport
from beamish.sessions.services import SESSION_SUP, SESSIONS, SESSIONS_BY_USER, Services

log = logging.getLogger("beamish.sessions")

SWEEP: Final = "sweep"


class Janitor(Actor):
    """Expires and evicts sessions; see the module docstring."""

    def init(self, services: Services) -> None:
        self.services = services
        self.sweeps = 0
        self.expired = 0
        self.evicted = 0
        self.last_sweep_expired = 0
        send_interval(self.ref, SWEEP, services.settings.sweep_interval_s)

    async def handle_info(self, message: Any) -> None:
        if message == SWEEP:
            await self._sweep()

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "report":
            return self._report()
        if request == SWEEP:
            return _ids(await self._sweep())
        if isinstance(request, tuple) and request[0] == "evict":
            return _ids(await self._evict(int(request[1])))
        if isinstance(request, tuple) and request[0] == "evict_own":
            return _ids(await self._evict_own(str(request[1])))
        raise ValueError(f"unknown janitor request {request!r}")

    async def _sweep(self) -> list[SessionKey]:
        services = self.services
        expired = services.idle.pop_expired(services.clock(),
                                            services.settings.max_expire_per_sweep)
        self.sweeps += 1
        self.last_sweep_expired = len(expired)
        if expired:
            await self._stop(expired)
            self.expired += len(expired)
            log.info("janitor expired %d idle sessions (ttl %ss)", len(expired),
                     services.settings.ttl_s)
        return expired

    async def _evict(self, n: int) -> list[SessionKey]:
        heavy = self.services.census.heavy
        victims = self.services.idle.pop_least_recent(
            n, (lambda key: key[0] in heavy) if heavy else None)
        if victims:
            await self._stop(victims)
            self.evicted += len(victims)
            log.info("janitor evicted %d idle sessions (max_sessions %d)",
                     len(victims), self.services.settings.max_sessions)
        return victims

    async def _evict_own(self, user_id: str) -> list[SessionKey]:
        services = self.services
        own = Registry.lookup(services.whereis(SESSIONS_BY_USER), user_id)
        victim = services.idle.pop_least_recent_of((user_id, str(sid)) for _, sid in own)
        if victim is None:
            return []
        await self._stop([victim])
        self.evicted += 1
        log.info("janitor evicted an idle session of user %r (max_sessions_per_user %d)",
                 user_id, services.settings.max_sessions_per_user)
        return [victim]

    async def _stop(self, keys: list[SessionKey]) -> None:
        registry = self.services.whereis(SESSIONS)
        refs: list[ActorRef] = []
        for key in keys:
            ref = Registry.whereis(registry, key)
            if ref is not None:  # else it closed or crashed for good meanwhile
                refs.append(ref)
        await terminate_children(self.services.whereis(SESSION_SUP), refs)

    def _report(self) -> JanitorReport:
        idle = self.services.idle
        return JanitorReport(sweeps=self.sweeps, expired=self.expired, evicted=self.evicted,
                             last_sweep_expired=self.last_sweep_expired,
                             open_sessions=len(idle), idle_sessions=idle.idle_count)


def _ids(keys: list[SessionKey]) -> list[str]:
    return [sid for _, sid in keys]
