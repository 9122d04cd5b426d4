"""The client API of the session layer: ``Sessions`` and ``Users``.

These are plain objects, not actors: each method runs in the caller's task and talks to the
actors (session contexts, the janitor) with calls and casts, and to the owned parts (usage
recorder, config resolver) through ``Services``. Get them from a running
``beamish.Application`` as ``rt.sessions`` and ``rt.users``.

Activity. Every operation on a session marks it busy while it runs and stamps its last
activity when it ends (``IdleQueue.begin``/``end``), so the janitor never expires or evicts a
session in the middle of a request, and the TTL counts from the end of the last one.

Usage. ``record_usage`` returns once the event is durable (group-committed by the usage
recorder), then adds it to the session's own totals: acknowledge a request to your caller only
after it returns. A repeated ``request_id`` counts nothing (``False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Generator, Mapping
from typing import Any
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
    SessionOwnerError,
)
from beamish.sessions.models import SessionInfo
from beamish.sessions.services import (
    JANITOR,
    RECORDER_WAIT_S,
    SESSION_SUP,
    SESSIONS,
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
        """Open the session (a new id if None), or resume it if it is open already.

        Raises:
            SessionOwnerError: the session is open for another user.
            SessionLimitError: ``max_sessions`` are open and none is idle.
        """
        sid = session_id or uuid4().hex
        ref = await self._open_ref(sid, user_id, fresh=session_id is None)
        # Tracked from here: a failed open leaves nothing behind for the janitor.
        async with self._active(sid):
            info: SessionInfo = await _session_call(ref, sid, ("info",))
            return info

    async def get(self, session_id: str, *, user_id: str | None = None) -> SessionInfo:
        """The session's context and usage (only for ``user_id`` when given)."""
        ref = self.entry(session_id, user_id)[0]
        async with self._active(session_id):
            info: SessionInfo = await _session_call(ref, session_id, ("info",))
            return info

    async def close(self, session_id: str, *, user_id: str | None = None) -> None:
        """Stop the session's context; its usage stays in the ledger."""
        ref = self.entry(session_id, user_id)[0]
        self._services.idle.remove(session_id)
        with contextlib.suppress(NoProcessError):
            await terminate_child_ref(self._services.whereis(SESSION_SUP), ref)

    def owner(self, session_id: str) -> str:
        """The user id of an open session."""
        return self.entry(session_id)[1]

    def open_sessions(self, user_id: str | None = None) -> list[tuple[str, str]]:
        """(session id, user id) of every open session, or of one user's."""
        entries = Registry.entries(self._services.whereis(SESSIONS))
        return sorted((str(sid), str(uid)) for sid, _, uid in entries if user_id in (None, uid))

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
        ref = self.entry(session_id, user_id)[0]
        if request is None:
            services = self._services
            cached = services.preferences.cached(session_id, task_type)
            if cached is not None:  # warm: no call to the context (PreferenceTable)
                services.idle.touch(session_id, services.clock())
                # Made directly: loop.create_future() is one Python call more.
                ready: asyncio.Future[ResolvedConfig] = asyncio.Future(loop=self._running_loop())
                ready.set_result(cached)
                return ready
        return self._resolve(ref, session_id, request, task_type)

    async def _resolve(self, ref: ActorRef, session_id: str, request: ConfigRequest | None,
                       task_type: str) -> ResolvedConfig:
        async with self._active(session_id):
            config: ResolvedConfig = await _session_call(
                ref, session_id, ("enhance", task_type, request))
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
        owner = self.entry(session_id, user_id)[1]
        event = UsageEvent(
            request_id=request_id or new_request_id(), session_id=session_id, user_id=owner,
            provider=provider, model=model, task_type=task_type, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, latency_ms=latency_ms, status=status)
        async with self._active(session_id):
            return await self.record_event(self.counter(session_id), event)

    def counter(self, session_id: str) -> UsageCounter | None:
        """The usage counter of the session's context, for ``record_event`` (None if closed).

        Take it once the context has answered (``enhance``): a resumed or restarted context
        sets its counter from the ledger before it answers anything.
        """
        return self._services.usage.get(session_id)

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

    def entry(self, session_id: str, user_id: str | None = None) -> tuple[ActorRef, str]:
        """(context, owner) of an open session, checked against ``user_id`` when given."""
        entry = session_entry(self._services, session_id)
        if entry is None:
            raise SessionNotFoundError(session_id)
        ref, owner = entry
        if user_id is not None and owner != user_id:
            raise SessionOwnerError(session_id, user_id)
        return ref, owner

    def _active(self, session_id: str) -> _Active:
        return _Active(self._services, session_id)

    async def _open_ref(self, sid: str, user_id: str, *, fresh: bool) -> ActorRef:
        services = self._services
        for _ in range(_OPEN_ATTEMPTS):
            entry = session_entry(services, sid)
            if entry is not None:
                if entry[1] != user_id:
                    raise SessionOwnerError(sid, user_id)
                return entry[0]
            if self.count() >= services.settings.max_sessions and not await self._evict_one():
                raise SessionLimitError(services.settings.max_sessions)
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

    async def _evict_one(self) -> bool:
        evicted: list[str] = await call(self._services.whereis(JANITOR), ("evict", 1))
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

    __slots__ = ("_services", "_session_id")

    def __init__(self, services: Services, session_id: str) -> None:
        self._services = services
        self._session_id = session_id

    async def __aenter__(self) -> None:
        self._services.idle.begin(self._session_id)

    async def __aexit__(self, *exc: object) -> None:
        self._services.idle.end(self._session_id, self._services.clock())


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
