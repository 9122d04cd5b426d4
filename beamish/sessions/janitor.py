"""``Janitor``: expires idle sessions and evicts the least recently active at the limit.

Every ``sweep_interval_s`` it asks the shared ``IdleQueue`` (``beamish.sessions.expiry``) for
the sessions idle for ``ttl_s`` or longer — a question whose cost is the number of sessions
that expire, not the number open — and stops their contexts, oldest first, in one request to
the session supervisor (concurrently, each within its shutdown budget). Usage is acknowledged
only once durable, so stopping a context loses nothing; its usage stays in the ledger.

Eviction is on demand: when ``Sessions.open`` finds ``max_sessions`` open, it asks the janitor
to ``("evict", n)``; the janitor stops the ``n`` least recently active *idle* sessions. A
session with a request in flight is never expired or evicted.

Calls: ``"report"`` → ``JanitorReport``; ``"sweep"`` → sweep now, return the ids expired;
``("evict", n)`` → the ids evicted.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from beamish.runtime import Actor, ActorRef, Caller, Registry, send_interval, terminate_children
from beamish.sessions.models import JanitorReport
from beamish.sessions.services import SESSION_SUP, SESSIONS, Services

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
            return await self._sweep()
        if isinstance(request, tuple) and request[0] == "evict":
            return await self._evict(int(request[1]))
        raise ValueError(f"unknown janitor request {request!r}")

    async def _sweep(self) -> list[str]:
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

    async def _evict(self, n: int) -> list[str]:
        victims = self.services.idle.pop_least_recent(n)
        if victims:
            await self._stop(victims)
            self.evicted += len(victims)
            log.info("janitor evicted %d least recently active sessions (limit %d)",
                     len(victims), self.services.settings.max_sessions)
        return victims

    async def _stop(self, session_ids: list[str]) -> None:
        registry = self.services.whereis(SESSIONS)
        refs: list[ActorRef] = []
        for sid in session_ids:
            ref = Registry.whereis(registry, sid)
            if ref is not None:  # else it closed or crashed for good meanwhile
                refs.append(ref)
        await terminate_children(self.services.whereis(SESSION_SUP), refs)

    def _report(self) -> JanitorReport:
        idle = self.services.idle
        return JanitorReport(sweeps=self.sweeps, expired=self.expired, evicted=self.evicted,
                             last_sweep_expired=self.last_sweep_expired,
                             open_sessions=len(idle), idle_sessions=idle.idle_count)
