"""``SessionContext``: one actor per open chat session.

It holds what a session knows between requests — who the user is, the user's resolved LLM
preferences per task type (so a request costs no resolution work once warm) and the session's
usage — and it models the session's failure: a crash restarts this session alone (the session
supervisor is one_for_one), and the new context rebuilds its usage from the ledger, since
everything acknowledged is there.

Clients use :class:`beamish.sessions.Sessions`, never these messages directly. The messages:

* call ``("enhance", task_type, request)`` → ``ResolvedConfig`` (explicit request values win)
* call ``("info",)`` → ``SessionInfo``

The cached preferences are published in the ``PreferenceTable`` (``Services.preferences``):
``Sessions.enhance`` reads a warm session's there without a call, and a config change of the
user clears them there, synchronously (see :mod:`beamish.sessions.config_cache`). The usage
totals are a ``UsageCounter`` published in ``Services.usage``, which calls count their
durable usage into (see :mod:`beamish.sessions.counters`).

An idle context hibernates (``hibernate_after_s``): its task and mailbox are dropped, its state
— including the cached preferences — stays.

A dependency outage is not a crash. A request that fails on the store or in resolution
(``StoreError``, ``LLMError``) fails that one request with the typed error — the client API
raises it — and the context lives on: crashing would restart it into the same outage, and a
few such restarts would exceed the session supervisor's restart intensity and take the tree
down. Likewise, when the ledger cannot be read at start (``StoreUnavailableError``) the
context keeps running without its usage totals: it retries the read with backoff
(``REBUILD_BACKOFF``) and on every request, and a request that needs the totals fails with
``StoreUnavailableError`` until one read succeeds.

Task types are a caller's strings, so the cache keeps at most :data:`MAX_CACHED_TASK_TYPES`
[32] of them, the oldest cached forgotten first (it is resolved again when asked for).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from beamish.llm.errors import LLMError
from beamish.llm.hierarchy import ConfigRequest, ResolvedConfig
from beamish.runtime import (
    Actor,
    Caller,
    ChildSpec,
    ExponentialBackoff,
    Registry,
    Timer,
    child_spec,
    on_exit,
    send_after,
)
from beamish.sessions.counters import UsageCounter
from beamish.sessions.expiry import SessionKey
from beamish.sessions.models import SessionInfo
from beamish.sessions.services import SESSIONS, SESSIONS_BY_ID, SESSIONS_BY_USER, Services
from beamish.store import StoreError, StoreUnavailableError

_REBUILD: Final = "rebuild_usage"
MAX_CACHED_TASK_TYPES: Final = 32

REBUILD_BACKOFF: Final = ExponentialBackoff(base=0.5, cap=30.0)
"""How long a context waits before reading the ledger again after it could not."""


@dataclass(frozen=True, slots=True)
class Failed:
    """A context's answer that is an error of the request, not of the context: the client
    API raises ``error`` (see ``beamish.sessions.api``)."""

    error: Exception


@dataclass(slots=True)
class SessionArgs:
    """What a context starts from.

    ``fresh`` is True for an id beamish generated a moment ago: the ledger cannot know it, so
    the first start skips reading it. The first start clears the flag, so a restart (the
    supervisor passes the same object again) reads the ledger like a resumed session.
    """

    services: Services
    session_id: str
    user_id: str
    fresh: bool = False


class SessionContext(Actor):
    """The per-session actor; see the module docstring."""

    def init(self, arg: SessionArgs) -> None:
        services = arg.services
        self.services = services
        self.session_id = arg.session_id
        self.user_id = arg.user_id
        self.preferences: dict[str, ResolvedConfig] = {}
        self.opened_at = datetime.now(UTC)
        # Registered here rather than with a via name, so lookups need no call; under the
        # per-user key (ids are chosen per user), by user and by bare id. A second context for
        # the same key fails to start right here.
        key = (arg.user_id, arg.session_id)
        Registry.register(services.whereis(SESSIONS), key, arg.user_id)
        Registry.register(services.whereis(SESSIONS_BY_USER), arg.user_id, arg.session_id)
        Registry.register(services.whereis(SESSIONS_BY_ID), arg.session_id, arg.user_id)
        self.usage = UsageCounter()
        self.usage_known = True  # False while the ledger could not be read (module docs)
        self.rebuild_failures = 0
        self._rebuild_timer: Timer | None = None
        # Published for use without a call; withdrawn when this context exits, however.
        services.preferences.publish(key, self.preferences)
        services.usage.publish(key, self.usage)
        services.census.opened(arg.user_id)
        on_exit(self.ref, functools.partial(_withdraw, services, key, self.preferences,
                                            self.usage))
        if arg.fresh:
            arg.fresh = False
            return
        # Reading the ledger is I/O: done after start returns (as OTP's handle_continue),
        # so the supervisor starts the next session meanwhile. No message is handled first.
        self.continue_with(_REBUILD)

    async def handle_continue(self, arg: Any) -> None:
        if arg == _REBUILD:
            # A resumed or restarted session starts from what the ledger knows of it.
            self.usage_known = False
            await self._rebuild()

    async def handle_info(self, message: Any) -> None:
        if message == _REBUILD:
            self._rebuild_timer = None
            if not self.usage_known:
                await self._rebuild()

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        op = request[0]
        try:
            if op == "enhance":
                await self._need_usage()
                return await self._resolve(request[1], request[2])
            if op == "info":
                await self._need_usage()
                return await self._info()
        except (StoreError, LLMError) as error:
            return Failed(error)  # the request's failure, not the session's (module docs)
        raise ValueError(f"unknown session request {request!r}")

    async def _rebuild(self) -> None:
        """Read the session's totals from the ledger; if the store is unavailable, try again
        later (``REBUILD_BACKOFF``) rather than crash."""
        try:
            stored = await self.services.store.session_totals(self.user_id, self.session_id)
        except StoreUnavailableError:
            self.rebuild_failures += 1
            if self._rebuild_timer is None:
                self._rebuild_timer = send_after(
                    self.ref, _REBUILD, REBUILD_BACKOFF.delay(self.rebuild_failures))
            return
        self.usage.set(stored)
        self.usage_known = True
        self.rebuild_failures = 0
        if self._rebuild_timer is not None:
            self._rebuild_timer.cancel()
            self._rebuild_timer = None

    async def _need_usage(self) -> None:
        """Make sure the usage totals are known before a request: a call counts into them."""
        if self.usage_known:
            return
        await self._rebuild()
        if not self.usage_known:
            raise StoreUnavailableError(
                f"the usage of session {self.session_id!r} cannot be read from the database "
                "right now; retry shortly")

    async def _resolve(self, task_type: str, request: ConfigRequest | None) -> ResolvedConfig:
        if request is None:
            cached = self.preferences.get(task_type)
            if cached is not None:
                return cached
        resolver = self.services.current_resolver()
        table = self.services.preferences
        generation = table.generation
        config = await resolver.resolve(self.user_id, task_type, request=request)
        if request is None and table.generation == generation:  # no config change meanwhile
            preferences = self.preferences
            if len(preferences) >= MAX_CACHED_TASK_TYPES and task_type not in preferences:
                del preferences[next(iter(preferences))]
            preferences[task_type] = config
        return config

    async def _info(self) -> SessionInfo:
        chat = await self._resolve("chat", None)
        return SessionInfo(
            session_id=self.session_id, user_id=self.user_id, tier=chat.tier,
            opened_at=self.opened_at, usage=self.usage.totals(),
            cached_task_types=tuple(sorted(self.preferences)))


def session_spec(services: Services, session_id: str, user_id: str, *,
                 fresh: bool = False) -> ChildSpec:
    """How the session supervisor starts (and restarts) the context of ``session_id``."""
    return child_spec(
        SessionContext, SessionArgs(services, session_id, user_id, fresh),
        id=(user_id, session_id),
        restart="transient", hibernate_after=services.settings.hibernate_after_s)


def _withdraw(services: Services, key: SessionKey, preferences: dict[str, ResolvedConfig],
              usage: UsageCounter, *_: object) -> None:
    services.preferences.withdraw(key, preferences)
    services.usage.withdraw(key, usage)
    services.census.closed(key[0])
