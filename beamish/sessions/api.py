"""The client API of the session layer: ``Sessions`` and ``Users``.

These are plain objects, not actors: each method runs in the caller's task and talks to the
actors (session contexts, the janitor) with calls and casts, and to the owned parts (usage
recorder, config resolver) through ``Services``. Get them from a running
``beamish.Application`` as ``rt.sessions`` and ``rt.users``.

Activity. Every operation on a session marks it busy while it runs and stamps its last
activity when it ends (``IdleQueue.begin``/``end``), so the janitor never expires or evicts a
session in the middle of a request, and the TTL counts from the end of the last one.

Ids. Session ids are chosen per user: ``open("s1", "ada")`` and ``open("s1", "bob")`` are two
sessions, and no user can reach, refuse or evict another's session by naming its id. Every
method takes the session id and the ``user_id`` it belongs to; trusted code (an admin) may
leave ``user_id`` out, which finds the one user's who has that id open
(``SessionAmbiguousError`` if several have).

Limits. A user opening more than ``max_sessions_per_user`` sessions evicts their own least
recently active idle session; at ``max_sessions`` the janitor evicts an idle session of a user
at their cap first, then the least recently active of anyone's. A session with a request in
flight, or held by a joined socket (``hold``), is never evicted.

Usage. ``record_usage`` returns once the event is durable (group-committed by the usage
recorder), then adds it to the session's own totals: acknowledge a request to your caller only
after it returns. A repeated ``request_id`` counts nothing (``False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Generator, Mapping
from typing import Any, cast
from uuid import uuid4

from beamish.llm.hierarchy import ConfigRequest, ResolvedConfig
from beamish.runtime import (
    ActorRef,
    AlreadyStartedError,
    Registry,
    StartChildError,
    TooManyChildrenError,
    call,
    start_child,
    terminate_child_ref,
)
from beamish.runtime.errors import ActorExitedError, NoProcessError
from beamish.sessions.context import Failed, session_spec
from beamish.sessions.counters import UsageCounter
from beamish.sessions.errors import (
    RuntimeNotRunningError,
    SessionLimitError,
    SessionNotFoundError,
)
from beamish.sessions.expiry import SessionKey
from beamish.sessions.models import SessionInfo
from beamish.sessions.services import (
    JANITOR,
    RECORDER_WAIT_S,
    SESSION_SUP,
    SESSIONS,
    SESSIONS_BY_USER,
    Services,
    session_entry,
)
from beamish.store import (
    LLMParameters,
    NewLLMConfig,
    Provider,
    TaskOverride,
    UsageEvent,
    UsageStatus,
    UsageTotals,
    UserLLMConfig,
    UserNotFoundError,
    UserStats,
)
from beamish.store.models import new_request_id

_PARAMETER_FIELDS = frozenset(LLMParameters.model_fields)
_NO_REQUEST = ConfigRequest()
# Evict-then-start races with concurrent opens at the limit (another opener may take the room
# just made); each lost race evicts once more. Bounded so a pathological race still ends.
_OPEN_ATTEMPTS = 100


class Sessions:
    """Open, use and close session contexts."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self, session_id: str | None, user_id: str) -> SessionInfo:
        """Open ``user_id``'s session (a new id if None), or resume it if it is open already.

        Raises:
            SessionLimitError: the user's ``max_sessions_per_user`` (or ``max_sessions``)
                are open and none of those that could make room is idle.
        """
        sid = session_id or uuid4().hex
        key = (user_id, sid)
        ref = await self._open_ref(key, fresh=session_id is None)
        # Tracked from here: a failed open leaves nothing behind for the janitor.
        async with self._active(key):
            info: SessionInfo = await _session_call(ref, sid, ("info",))
            return info

    async def ensure_open(self, session_id: str, user_id: str) -> None:
        """Open ``user_id``'s session ``session_id`` unless it is open already.

        What a caller that names its session on every request needs (``/v1``'s implicit
        session): an open session costs a registry lookup, not a call to its context; the
        request that follows refreshes its idle time as every request does.

        Raises:
            SessionLimitError: as ``open``.
        """
        if session_entry(self._services, session_id, user_id) is None:
            await self.open(session_id, user_id)

    async def get(self, session_id: str, *, user_id: str | None = None) -> SessionInfo:
        """The session's context and usage (``user_id``'s; see the module docs for None)."""
        ref, key = self.entry(session_id, user_id)
        async with self._active(key):
            info: SessionInfo = await _session_call(ref, session_id, ("info",))
            return info

    async def close(self, session_id: str, *, user_id: str | None = None) -> None:
        """Stop the session's context; its usage stays in the ledger."""
        ref, key = self.entry(session_id, user_id)
        self._services.idle.remove(key)
        with contextlib.suppress(NoProcessError):
            await terminate_child_ref(self._services.whereis(SESSION_SUP), ref)

    def owner(self, session_id: str, *, user_id: str | None = None) -> str:
        """The user id of an open session (``user_id`` itself, when it has it open)."""
        return self.entry(session_id, user_id)[1][0]

    def open_sessions(self, user_id: str | None = None) -> list[tuple[str, str]]:
        """(session id, user id) of every open session, or of one user's."""
        if user_id is not None:
            by_user = Registry.lookup(self._services.whereis(SESSIONS_BY_USER), user_id)
            return sorted((str(sid), user_id) for _, sid in by_user)
        keys = (cast(SessionKey, key) for key, _, _ in
                Registry.entries(self._services.whereis(SESSIONS)))
        return sorted((sid, uid) for uid, sid in keys)

    def hold(self, session_id: str, *, user_id: str) -> SessionHold:
        """Keep ``user_id``'s session from being evicted or expired while a client is joined
        to it (a conversation channel), until ``release`` — which a channel calls however it
        exits. Counted as a request in flight, so the TTL runs from the release."""
        key = self.entry(session_id, user_id)[1]
        self._services.idle.begin(key)
        return SessionHold(self._services, key)

    def count(self) -> int:
        """How many sessions are open."""
        return Registry.count(self._services.whereis(SESSIONS))

    # -- requests --------------------------------------------------------------------------

    def enhance(self, session_id: str, options: ConfigRequest | Mapping[str, Any] | None
                = None, *, task_type: str = "chat",
                user_id: str | None = None) -> Awaitable[ResolvedConfig]:
        """The session user's preferences for ``task_type`` applied to ``options``; await it.

        Values given in ``options`` win; every field says which layer supplied it
        (``ResolvedConfig.sources``) and ``warnings`` name stored preferences that were skipped.
        When the session has the answer at hand (warm, and no ``options``), the awaitable is
        a done future: awaiting it costs no coroutine and no call to the session's context.

        Raises:
            SessionNotFoundError: the session is not open (at once, not when awaited).
            SessionOwnerError: it is open for another user than ``user_id`` (at once).
        """
        request = _config_request(options)
        ref, key = self.entry(session_id, user_id)
        if request is None:
            services = self._services
            cached = services.preferences.cached(key, task_type)
            if cached is not None:  # warm: no call to the context (PreferenceTable)
                services.idle.touch(key, services.clock())
                # Made directly: loop.create_future() is one Python call more.
                ready: asyncio.Future[ResolvedConfig] = asyncio.Future(loop=self._running_loop())
                ready.set_result(cached)
                return ready
        return self._resolve(ref, key, request, task_type)

    async def _resolve(self, ref: ActorRef, key: SessionKey, request: ConfigRequest | None,
                       task_type: str) -> ResolvedConfig:
        async with self._active(key):
            config: ResolvedConfig = await _session_call(
                ref, key[1], ("enhance", task_type, request))
            return config

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        # Kept: on Python 3.11 asking for the running loop is a system call (getpid).
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    async def record_usage(self, session_id: str, *, provider: Provider, model: str,
                           prompt_tokens: int = 0, completion_tokens: int = 0,
                           latency_ms: int = 0, status: UsageStatus = "ok",
                           task_type: str = "chat", request_id: str | None = None,
                           user_id: str | None = None) -> bool:
        """Record one LLM request of the session; returns once durable.

        Returns:
            True if counted, False if ``request_id`` was recorded before.

        Raises:
            UsageBackpressureError: the usage buffer is full (the database is down).
        """
        key = self.entry(session_id, user_id)[1]
        owner = key[0]
        event = UsageEvent(
            request_id=request_id or new_request_id(), session_id=session_id, user_id=owner,
            provider=provider, model=model, task_type=task_type, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, latency_ms=latency_ms, status=status)
        async with self._active(key):
            return await self.record_event(self._services.usage.get(key), event)

    def counter(self, session_id: str, user_id: str | None = None) -> UsageCounter | None:
        """The usage counter of the session's context, for ``record_event`` (None if closed).

        Take it once the context has answered (``enhance``): a resumed or restarted context
        sets its counter from the ledger before it answers anything.
        """
        if user_id is not None:
            return self._services.usage.get((user_id, session_id))
        entry = session_entry(self._services, session_id)
        return None if entry is None else self._services.usage.get(entry[1])

    def record_event(self, counter: UsageCounter | None, event: UsageEvent) -> Awaitable[bool]:
        """Record ``event``; the session's ``counter`` (if any) counts it once it is durable
        and new. Await the result to return once it is durable (True if it counted).

        With the usage recorder running, the event is queued at once and written whether
        or not anyone awaits: a cancelled call, which cannot safely wait for anything more,
        hands its usage over so and goes. While the recorder restarts, the event is parked
        and written once it is back, also unawaited (``Services.park``); awaiting waits for
        that up to ``RECORDER_WAIT_S``.

        Raises:
            UsageBackpressureError: the usage buffer is full (at once).
        """
        recorder = self._services.recorder
        if recorder is None:
            parked = self._services.park(event)
            parked.add_done_callback(functools.partial(_count_when_durable, counter, event))
            return _Parked(parked)
        future = recorder.submit(event)
        # Added before any caller awaits the future: the count is there when it resumes.
        future.add_done_callback(functools.partial(_count_when_durable, counter, event))
        return future

    async def usage(self, session_id: str, *, user_id: str | None = None) -> UsageTotals:
        """The session's usage totals."""
        return (await self.get(session_id, user_id=user_id)).usage

    # -- the seed's words ------------------------------------------------------------------

    async def create_context(self, session_id: str, user_id: str) -> SessionInfo:
        """``open``, under the name the first version of the API used."""
        return await self.open(session_id, user_id)

    async def enhance_llm_options(self, session_id: str,
                                  options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` with the user's preferences filled in, as a flat dict.

        ``options`` may hold ``task_type``, ``provider``, ``model``, any ``LLMParameters``
        field, and other keys (e.g. ``messages``) that are passed through untouched. The
        result adds ``provenance`` (field → layer) and ``warnings``.
        """
        task_type = str(options.get("task_type", "chat"))
        known = {k: v for k, v in options.items()
                 if k in _PARAMETER_FIELDS or k in ("provider", "model")}
        config = await self.enhance(session_id, known, task_type=task_type)
        enhanced = dict(options)
        enhanced.update(config.parameters.model_dump(exclude_defaults=True))
        enhanced.update(task_type=task_type, provider=config.provider, model=config.model,
                        provenance={k: str(v) for k, v in config.sources.items()},
                        warnings=list(config.warnings))
        return enhanced

    async def record_llm_usage(self, session_id: str, provider: Provider, model: str,
                               **usage: Any) -> bool:
        """``record_usage``, under the name the first version of the API used."""
        return await self.record_usage(session_id, provider=provider, model=model, **usage)

    # -- internals -------------------------------------------------------------------------

    def entry(self, session_id: str,
              user_id: str | None = None) -> tuple[ActorRef, SessionKey]:
        """(context, key) of ``user_id``'s open session (of its one user's, when None).

        Raises:
            SessionNotFoundError: ``user_id`` has no such session open.
            SessionAmbiguousError: no ``user_id``, and several users have it open.
        """
        entry = session_entry(self._services, session_id, user_id)
        if entry is None:
            raise SessionNotFoundError(session_id)
        return entry

    def _active(self, key: SessionKey) -> _Active:
        return _Active(self._services, key)

    async def _open_ref(self, key: SessionKey, *, fresh: bool) -> ActorRef:
        services = self._services
        user_id, sid = key
        sessions = services.whereis(SESSIONS)
        for _ in range(_OPEN_ATTEMPTS):
            ref = Registry.whereis(sessions, key)
            if ref is not None:
                return ref
            await self._make_room(user_id)
            try:
                return await start_child(services.whereis(SESSION_SUP),
                                         session_spec(services, sid, user_id, fresh=fresh))
            except TooManyChildrenError:
                continue  # a concurrent open took the room: evict again
            except StartChildError as error:
                if not isinstance(error.__cause__, AlreadyStartedError):
                    raise
                continue  # a concurrent open of the same id won: resume it
        raise SessionLimitError(services.settings.max_sessions)

    async def _make_room(self, user_id: str) -> None:
        """Evict what a new session of ``user_id`` needs: one of their own at their cap, one
        of anyone's (a user at their cap first) at ``max_sessions``."""
        services = self._services
        settings = services.settings
        if services.census.at_cap(user_id) and not await self._evict(("evict_own", user_id)):
            raise SessionLimitError(settings.max_sessions_per_user, user_id)
        if self.count() >= settings.max_sessions and not await self._evict(("evict", 1)):
            raise SessionLimitError(settings.max_sessions)

    async def _evict(self, request: tuple[str, object]) -> bool:
        evicted: list[str] = await call(self._services.whereis(JANITOR), request)
        return bool(evicted)


class Users:
    """Per-user LLM configuration and usage, written to the store (whose change events drop
    the cached preferences before a write returns)."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def set_default(self, user_id: str, provider: Provider, model: str, *,
                          actor: str = "system") -> UserLLMConfig:
        """Make (provider, model) the user's default (creating the user if new)."""
        await self._ensure_profile(user_id, actor)
        return await self._services.store.set_default(user_id, provider, model, actor=actor)

    async def add_model(self, user_id: str, provider: Provider, model: str, *,
                        parameters: LLMParameters | None = None,
                        actor: str = "system") -> UserLLMConfig:
        """Add a provider config for the user (creating the user if new)."""
        await self._ensure_profile(user_id, actor)
        config = NewLLMConfig(provider=provider, model=model,
                              parameters=parameters or LLMParameters())
        return await self._services.store.add_config(user_id, config, actor=actor)

    async def set_task_override(self, user_id: str, override: TaskOverride, *,
                                actor: str = "system") -> TaskOverride:
        """Make ``override`` the user's choice for its task type (creating the user if new)."""
        await self._ensure_profile(user_id, actor)
        return await self._services.store.set_task_override(user_id, override, actor=actor)

    async def get_default(self, user_id: str) -> UserLLMConfig | None:
        """The user's default config, or None."""
        return await self._services.store.get_default(user_id)

    async def get_all_configs(self, user_id: str) -> list[UserLLMConfig]:
        """Every provider config of the user."""
        return await self._services.store.list_configs(user_id)

    async def get_resolved_config(self, user_id: str,
                                  task_type: str | None = None) -> ResolvedConfig:
        """What the user gets for ``task_type`` (``chat`` if None), with provenance."""
        return await self._services.current_resolver().resolve(user_id, task_type or "chat")

    async def get_usage_stats(self, user_id: str) -> UserStats:
        """The user's usage totals, per provider/model and per task type."""
        return await self._services.store.user_stats(user_id)

    async def _ensure_profile(self, user_id: str, actor: str) -> None:
        try:
            await self._services.store.get_profile(user_id)
        except UserNotFoundError:
            await self._services.store.upsert_profile(user_id, actor=actor)


class _Active:
    """``async with``: the session is busy (not expirable) until the block ends."""

    __slots__ = ("_key", "_services")

    def __init__(self, services: Services, key: SessionKey) -> None:
        self._services = services
        self._key = key

    async def __aenter__(self) -> None:
        self._services.idle.begin(self._key)

    async def __aexit__(self, *exc: object) -> None:
        self._services.idle.end(self._key, self._services.clock())


class SessionHold:
    """A joined client's hold on a session (``Sessions.hold``); ``release`` once, or more."""

    __slots__ = ("_key", "_services")

    def __init__(self, services: Services, key: SessionKey) -> None:
        self._services: Services | None = services
        self._key = key

    def release(self, *_: object) -> None:
        """The client left: the session is idle again from now (if nothing else runs in it).

        Takes and ignores any arguments, so it can be an ``on_exit`` callback."""
        services, self._services = self._services, None
        if services is not None:
            services.idle.end(self._key, services.clock())


async def _session_call(ref: ActorRef, session_id: str, request: Any) -> Any:
    try:
        answer = await call(ref, request)
    except (NoProcessError, ActorExitedError) as error:
        raise SessionNotFoundError(session_id) from error
    if answer.__class__ is Failed:  # the request failed (the store, resolution), not the context
        raise answer.error
    return answer


def _config_request(options: ConfigRequest | Mapping[str, Any] | None) -> ConfigRequest | None:
    if isinstance(options, ConfigRequest):
        return None if options == _NO_REQUEST else options
    if not options:
        return None
    given = dict(options)
    parameters = {k: given.pop(k) for k in list(given) if k in _PARAMETER_FIELDS}
    return ConfigRequest.model_validate({**given, "parameters": parameters})


def _count_when_durable(counter: UsageCounter | None, event: UsageEvent,
                        done: asyncio.Future[bool]) -> None:
    # Reads the outcome even with no counter: a future nobody awaits then leaves no
    # "exception was never retrieved" behind.
    if (not done.cancelled() and done.exception() is None and done.result()
            and counter is not None):
        counter.add(event)


class _Parked:
    """``record_event``'s awaitable while the usage recorder restarts: the event is parked
    (``Services.park``) and written once a recorder is back, awaited or not; awaiting waits
    for that up to ``RECORDER_WAIT_S``, then raises ``RuntimeNotRunningError`` (the event
    stays parked: retrying with the same request id is safe)."""

    __slots__ = ("_future",)

    def __init__(self, future: asyncio.Future[bool]) -> None:
        self._future = future

    def __await__(self) -> Generator[Any, None, bool]:
        return self._wait().__await__()

    async def _wait(self) -> bool:
        try:
            async with asyncio.timeout(RECORDER_WAIT_S):
                return await asyncio.shield(self._future)
        except TimeoutError:
            raise RuntimeNotRunningError(
                "the usage recorder is restarting; the usage is kept and written when it is "
                "back — retry with the same request id to learn the outcome") from None
