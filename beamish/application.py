"""``Application``: all of beamish in one ``async with``, for scripts and host apps.

::

    import beamish

    async with beamish.Application() as rt:              # SQLite + the echo provider by default
        await rt.users.set_default("ada", "anthropic", "claude-sonnet-4")
        session = await rt.sessions.open(None, "ada")
        answer = await rt.complete(session.session_id, [{"role": "user", "content": "hi"}])
        async with rt.stream(session.session_id, "tell me more") as stream:
            async for event in stream:
                ...

What starts, in order (and stops in reverse)::

    store            open_store(settings.database_url): migrations applied   (resource)
    llm              LLMClient from settings and the provider registry        (resource)
    node             the actor node; its root supervisor is the tree below
    └── beamish.root (Supervisor, one_for_one)                    beamish.runtime.ROOT
        ├── usage recorder    UsageRecorderActor: write-behind, group commits
        ├── config cache      ConfigCache: resolution cache + invalidation fan-out
        ├── sessions          Registry (unique): (user id, session id) → context
        ├── sessions by user  Registry (duplicate): user id → contexts
        ├── sessions by id    Registry (duplicate): session id → contexts (ids are per user)
        ├── session sup       DynamicSupervisor (max_sessions) of SessionContext
        ├── janitor           Janitor: expiry and eviction
        ├── jobs              the job tree (beamish.jobs.actors): queues, workers, leases
        └── ...               ``children`` / ``add_child`` (``beamish serve``: the sockets)

one_for_one everywhere: a crashed session context is restarted alone (and rebuilds its usage
from the ledger); a crashed recorder loses no acknowledged usage and is restarted alone; the
session contexts reach the current recorder and resolver through ``Services``. Stopping the
runtime stops the node, whose root stops its children in reverse: the extra children (the
server's sockets) first, then the janitor and the sessions, and the recorder last, so
everything queued is written before the store closes. ``rt.node.tree()`` shows the whole
tree.

``complete`` and ``stream`` do a whole session-scoped call: enhance (resolution with
provenance) → provider (timeouts, retries, fallbacks) → usage recorded durably — also for
failed (``error``) and abandoned (``cancelled``) calls, with the tokens seen so far.
``embed`` does the same for texts to vectors (task type ``embeddings``), in a session or,
with ``session_id=None``, for a user outside any session::

    vectors = await rt.embed(None, ["a text", "another"], user_id="ada")
    vectors.embeddings.vectors                     # one per input; usage in the ledger

``lifespan(settings)`` is the same for a FastAPI/Starlette host app:
``FastAPI(lifespan=beamish.lifespan())``; handlers reach the runtime as
``request.app.state.beamish`` (or ``request.state.beamish``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from beamish.jobs import Jobs, JobsContext, JobsNotRunningError, jobs_spec
from beamish.llm.errors import LLMError
from beamish.llm.hierarchy import ConfigRequest, ResolvedConfig
from beamish.llm.providers.base import (
    ChatMessage,
    Completion,
    Embeddings,
    Prompt,
    only_messages,
    parse_chat_message,
)
from beamish.llm.providers.client import LLMClient
from beamish.llm.providers.registry import unserved_defaults
from beamish.llm.providers.stream import ChatStream, StreamEvent
from beamish.runtime import (
    ChildSpec,
    Node,
    Registry,
    child_spec,
    dynamic_supervisor_spec,
)
from beamish.sessions.api import Sessions, Users
from beamish.sessions.config_cache import ConfigCache
from beamish.sessions.counters import UsageCounter
from beamish.sessions.janitor import Janitor
from beamish.sessions.recorder import UsageRecorderActor
from beamish.sessions.services import (
    CONFIG_CACHE,
    JANITOR,
    SESSION_SUP,
    SESSIONS,
    SESSIONS_BY_ID,
    SESSIONS_BY_USER,
    USAGE_RECORDER,
    Services,
)
from beamish.settings import Settings
from beamish.store import (
    Provider,
    SecretBox,
    SecretKeyError,
    Store,
    UsageEvent,
    UsageStatus,
    open_store,
)
from beamish.store.models import new_request_id
from beamish.templates import Templates

log = logging.getLogger("beamish")

Messages = Sequence[ChatMessage | Mapping[str, Any]] | str
"""A conversation: messages (``{"role": ..., "content": ...}``), or one user message."""


class SessionCompletion(BaseModel):
    """A finished session-scoped call: the answer, the configuration used, the request id."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    completion: Completion
    config: ResolvedConfig


class SessionEmbeddings(BaseModel):
    """A finished embeddings call: the vectors, the configuration used, the request id."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    embeddings: Embeddings
    config: ResolvedConfig


class Application:
    """The store, the LLM client and the session tree, started and stopped in order.

    Args:
        settings: configuration (``Settings()`` — file and environment — if None).
        clock: seconds, monotonic, by which session idleness is measured (the event loop's
            clock if None); tests pass a fake one to expire sessions without waiting.
        children: more child specs for the node's root supervisor, started after the
            janitor and stopped before everything else (the server's sockets go here, so they
            close before the sessions and the usage recorder stop).
    """

    def __init__(self, settings: Settings | None = None, *,
                 clock: Callable[[], float] | None = None,
                 children: Sequence[ChildSpec] = ()) -> None:
        self.settings = settings or Settings()
        self._clock = clock
        self._extra = list(children)
        self._clients: list[LLMClient] = []
        self._stack: AsyncExitStack | None = None
        self._services: Services | None = None
        self._sessions: Sessions | None = None  # one for the whole run: every call uses it
        self._templates: Templates | None = None
        self._jobs: Jobs | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def add_child(self, spec: ChildSpec) -> None:
        """Add a root child (see ``children``); only before the runtime starts."""
        if self._stack is not None:
            raise RuntimeError("add children before entering the Application")
        self._extra.append(spec)

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("a Application can be entered only once at a time")
        async with AsyncExitStack() as stack:
            store = await stack.enter_async_context(open_store(self.settings.database_url))
            llm = await LLMClient.from_store(store, self.settings.llm, box=self._key_box())
            self._clients = [llm]
            served = {provider.kind for provider in llm.providers.values()}
            for warning in unserved_defaults(self.settings.llm, served):
                log.warning("%s", warning)
            stack.push_async_callback(self._close_clients)
            loop = asyncio.get_running_loop()
            node = Node()
            services = Services(node=node, store=store, llm=llm,
                                settings=self.settings.sessions,
                                llm_settings=self.settings.llm,
                                clock=self._clock or loop.time)
            # The children share the services, which hold the node: so the node is made
            # first and given its children before it starts them as its root's.
            # The job tree starts after the sessions' services, and stops before them.
            # Templates first: the job tree renders template jobs through them from its start.
            # Versions read stay cached as long as configs do: the bound on how long a
            # write by another process (which this store does not hear) goes unseen.
            templates = Templates(store, ttl_s=self.settings.llm.cache_ttl_s)
            stack.callback(templates.close)
            jobs = JobsContext(services, self.settings.jobs)
            jobs.renderer = templates
            for spec in (*_children(services), jobs_spec(jobs), *self._extra):
                node.add_child(spec)
            await stack.enter_async_context(node)
            self._services, self._sessions = services, Sessions(services)
            self._templates = templates
            self._jobs = Jobs(jobs)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        services = self._services
        try:
            if stack is not None:
                await stack.aclose()  # actors stopping may still use the services
        finally:
            self._services = self._sessions = None
            self._templates = None
            self._jobs = None
            if services is not None:
                _report_lost(services)

    def stop_within(self, seconds: float) -> None:
        """Bound what is left of the runtime's life: from now on the usage recorder retries
        a failing database only until ``seconds`` from now, and stops writing then when the
        runtime stops; what it could not write is reported lost, by count, at ERROR.
        (``beamish serve`` calls it on SIGTERM with ``[server] shutdown_timeout_s``.)"""
        services = self.services
        deadline = asyncio.get_running_loop().time() + seconds
        services.shutdown_deadline = deadline
        if services.recorder is not None:
            services.recorder.close_by(deadline)

    @property
    def running(self) -> bool:
        """Whether the runtime is entered and its supervision tree alive (the root supervisor
        exits for good once restart intensity is exceeded)."""
        services = self._services
        root = None if services is None else services.node.root
        return root is not None and root.alive

    @property
    def stalled_since(self) -> float | None:
        """Loop time since which usage waits with no write completing, once that has lasted
        ``sessions.store_stall_after_s`` (a store stall); None otherwise."""
        services = self._services
        recorder = None if services is None else services.recorder
        return None if recorder is None else recorder.stalled_since

    async def reload_providers(self) -> LLMClient:
        """Rebuild the LLM client from the provider registry (after adding or removing one).

        New calls use the new client at once; calls in flight finish on the old one, which is
        closed when the runtime stops.
        """
        services = self.services
        services.llm = await LLMClient.from_store(services.store, self.settings.llm,
                                                  box=self._key_box())
        self._clients.append(services.llm)
        return services.llm

    async def _close_clients(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            await client.aclose()

    @property
    def services(self) -> Services:
        """What the actors share (raises when the runtime is not running)."""
        if self._services is None:
            raise RuntimeError("the Application is not running; use 'async with Application(...)'")
        return self._services

    @property
    def store(self) -> Store:
        """The open store."""
        return self.services.store

    @property
    def llm(self) -> LLMClient:
        """The LLM client (providers, retries, fallbacks)."""
        return self.services.llm

    @property
    def node(self) -> Node:
        """The actor node (introspection: ``node.actors()``, ``node.tree()``)."""
        return self.services.node

    @property
    def sessions(self) -> Sessions:
        """Open, use and close sessions."""
        sessions = self._sessions
        return sessions if sessions is not None else Sessions(self.services)  # raises

    @property
    def users(self) -> Users:
        """Users' LLM configs and usage."""
        return Users(self.services)

    @property
    def templates(self) -> Templates:
        """Versioned prompt templates over the store (``beamish.templates``), cached and
        following the store's template changes."""
        if self._templates is None:
            raise RuntimeError("the Application is not running; use 'async with Application(...)'")
        return self._templates

    @property
    def jobs(self) -> Jobs:
        """Durable LLM jobs: enqueue, outputs, feedback, re-run, cancel (``beamish.jobs``)."""
        if self._jobs is None:
            raise JobsNotRunningError("the Application is not running; use app.jobs inside "
                                      "'async with Application(...)'")
        return self._jobs

    # -- session-scoped calls ---------------------------------------------------------------

    async def complete(self, session_id: str, messages: Messages, *,
                       task_type: str = "chat",
                       options: ConfigRequest | Mapping[str, Any] | None = None,
                       request_id: str | None = None,
                       user_id: str | None = None) -> SessionCompletion:
        """One whole answer in session ``session_id``; usage is durable when this returns.

        Raises:
            SessionNotFoundError: the session is not open.
            FallbacksExhaustedError: every model of the chain failed (usage recorded as error).
        """
        sessions = self.sessions
        config = await sessions.enhance(session_id, options, task_type=task_type,
                                        user_id=user_id)
        call = _call(sessions, session_id, config, request_id)
        started = time.monotonic()
        try:
            completion = await self.llm.complete(call.config, _messages(messages))
        except LLMError:
            await call.record("error", 0, 0, started)
            raise
        except asyncio.CancelledError:
            # The caller gave up: hand the usage over without waiting (see _Call.record).
            call.record("cancelled", 0, 0, started)
            raise
        await call.record("ok", completion.usage.prompt_tokens,
                          completion.usage.completion_tokens, started,
                          provider=completion.provider, model=completion.model)
        return SessionCompletion(request_id=call.request_id, completion=completion,
                                 config=call.config)

    async def embed(self, session_id: str | None, inputs: str | Sequence[str], *,
                    user_id: str | None = None, task_type: str = "embeddings",
                    options: ConfigRequest | Mapping[str, Any] | None = None,
                    dimensions: int | None = None,
                    request_id: str | None = None) -> SessionEmbeddings:
        """One vector per input, with the preferences of the session's user (or of
        ``user_id`` outside any session, ``session_id=None``) for ``task_type``; usage (prompt
        tokens, completion 0) is durable when this returns, once per request id.

        Raises:
            ValueError: no inputs, or no session and no user.
            SessionNotFoundError: the session is not open.
            FallbacksExhaustedError: every model of the chain failed (usage recorded as error).
        """
        texts = (inputs,) if isinstance(inputs, str) else tuple(inputs)
        if not texts:
            raise ValueError("embed needs at least one input text")
        call = await self._embedding_call(session_id, user_id, task_type, options, request_id)
        started = time.monotonic()
        try:
            result = await self.llm.embed(call.config, texts, dimensions=dimensions)
        except LLMError:
            await call.record("error", 0, 0, started)
            raise
        except asyncio.CancelledError:
            call.record("cancelled", 0, 0, started)  # handed over unawaited (_Call.record)
            raise
        await call.record("ok", result.usage.prompt_tokens, 0, started,
                          provider=result.provider, model=result.model)
        return SessionEmbeddings(request_id=call.request_id, embeddings=result,
                                 config=call.config)

    async def _embedding_call(self, session_id: str | None, user_id: str | None,
                              task_type: str,
                              options: ConfigRequest | Mapping[str, Any] | None,
                              request_id: str | None) -> _Call:
        sessions = self.sessions
        if session_id is not None:
            config = await sessions.enhance(session_id, options, task_type=task_type,
                                            user_id=user_id)
            return _call(sessions, session_id, config, request_id)
        if user_id is None:
            raise ValueError("embed outside a session needs the user_id it is on behalf of")
        request = (options if options is None or isinstance(options, ConfigRequest)
                   else ConfigRequest.model_validate(dict(options)))
        config = await self.services.current_resolver().resolve(user_id, task_type,
                                                                request=request)
        return _Call(sessions, None, user_id, None, request_id or new_request_id(), config)

    def stream(self, session_id: str, messages: Messages, *, task_type: str = "chat",
               options: ConfigRequest | Mapping[str, Any] | None = None,
               request_id: str | None = None, user_id: str | None = None) -> SessionStream:
        """An answer token by token in session ``session_id``; see ``SessionStream``."""
        return SessionStream(self, session_id, _messages(messages), task_type, options,
                             request_id, user_id)

    def _key_box(self) -> SecretBox | None:
        """What decrypts the registry's stored API keys: ``Settings.secret_key`` when it is a
        Fernet key, as the admin API encrypts them with it; else None (the client then reads
        ``BEAMISH_SECRET_KEY``)."""
        key = self.settings.secret_key
        if key is None:
            return None
        with contextlib.suppress(SecretKeyError):
            return SecretBox(key.get_secret_value())
        return None


def _call(sessions: Sessions, session_id: str, config: ResolvedConfig,
          request_id: str | None) -> _Call:
    # The session's owner, whom its context resolves for: no second registry lookup.
    owner = config.user_id if config.user_id is not None else sessions.owner(session_id)
    return _Call(sessions, sessions.counter(session_id, owner), owner, session_id,
                 request_id or new_request_id(), config)


class _Call:
    """One session-scoped call on its way: what to record when it ends (a call outside any
    session — ``embed``'s for a user — has no session id and no counter).

    The session's usage counter and owner are taken when the call starts, so usage is
    recorded even if the session is closed or expires while the provider answers.
    """

    __slots__ = ("config", "counter", "owner", "request_id", "session_id", "sessions")

    def __init__(self, sessions: Sessions, counter: UsageCounter | None, owner: str,
                 session_id: str | None, request_id: str, config: ResolvedConfig) -> None:
        self.sessions = sessions
        self.counter = counter
        self.owner = owner
        self.session_id = session_id
        self.request_id = request_id
        self.config = config

    def event(self, status: UsageStatus, prompt_tokens: int, completion_tokens: int,
              started: float, provider: Provider | None = None,
              model: str | None = None) -> UsageEvent:
        """The usage event of this call, ending now with ``status``."""
        return UsageEvent(
            request_id=self.request_id, session_id=self.session_id, user_id=self.owner,
            provider=provider or self.config.provider, model=model or self.config.model,
            task_type=self.config.task_type, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=int((time.monotonic() - started) * 1000), status=status)

    def record(self, status: UsageStatus, prompt_tokens: int, completion_tokens: int,
               started: float, *, provider: Provider | None = None,
               model: str | None = None) -> Awaitable[bool]:
        """Record the call's usage (``Sessions.record_event``): await it to return once it is
        durable. A cancelled call leaves it unawaited: it cannot safely await anything more
        (a further cancel would cut the wait short), and the usage is queued all the same.
        """
        event = self.event(status, prompt_tokens, completion_tokens, started, provider, model)
        return self.sessions.record_event(self.counter, event)


class SessionStream:
    """``async with rt.stream(...) as stream: async for event in stream`` — see ``ChatStream``.

    Entering resolves the configuration (``config``) and opens the provider stream; leaving
    records the usage — ``ok`` when the answer completed, ``error`` when it broke,
    ``cancelled`` when the block was left early or cancelled — with the tokens seen so far.
    ``recorded`` is then True once durable (False if the request id had been recorded
    before), or stays None when the block was cancelled: the usage was handed to the recorder
    without waiting, since a cancelled task cannot reliably wait.
    """

    def __init__(self, runtime: Application, session_id: str, messages: tuple[ChatMessage, ...],
                 task_type: str, options: ConfigRequest | Mapping[str, Any] | None,
                 request_id: str | None, user_id: str | None) -> None:
        self._runtime = runtime
        self._args = (session_id, task_type, options, request_id, user_id)
        self._messages = messages
        self._call: _Call | None = None
        self._stream: ChatStream | None = None
        self._started = 0.0
        self.recorded: bool | None = None

    @property
    def opened(self) -> bool:
        """Whether the stream got as far as opening (``config`` and ``chat`` are there)."""
        return self._call is not None and self._stream is not None

    @property
    def config(self) -> ResolvedConfig:
        """The configuration this call resolved to."""
        return self._opened()[0].config

    @property
    def request_id(self) -> str:
        """The id the usage is recorded under."""
        return self._opened()[0].request_id

    @property
    def chat(self) -> ChatStream:
        """The provider stream (usage, status, text so far, provider and model serving)."""
        return self._opened()[1]

    async def __aenter__(self) -> Self:
        session_id, task_type, options, request_id, user_id = self._args
        sessions = self._runtime.sessions
        config = await sessions.enhance(session_id, options, task_type=task_type,
                                        user_id=user_id)
        self._call = _call(sessions, session_id, config, request_id)
        self._started = time.monotonic()
        self._stream = self._runtime.llm.stream(self._call.config, self._messages)
        return self

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._opened()[1].__aiter__()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        call, stream = self._opened()
        try:
            await stream.aclose()
        finally:
            status = _status(stream, exc)
            usage = stream.usage
            recorded = call.record(status, usage.prompt_tokens, usage.completion_tokens,
                                   self._started, provider=stream.provider, model=stream.model)
            if not isinstance(exc, asyncio.CancelledError):
                # Cancelled, it is left unawaited: handed over all the same (_Call.record).
                self.recorded = await recorded

    def _opened(self) -> tuple[_Call, ChatStream]:
        if self._call is None or self._stream is None:
            raise RuntimeError("use the stream inside 'async with rt.stream(...)'")
        return self._call, self._stream


Lifespan = Callable[[Any], contextlib.AbstractAsyncContextManager[dict[str, Any]]]


def lifespan(settings: Settings | None = None) -> Lifespan:
    """A FastAPI/Starlette ``lifespan`` that runs a ``Application`` for the app's lifetime."""

    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[dict[str, Any]]:
        async with Application(settings) as runtime:
            app.state.beamish = runtime
            yield {"beamish": runtime}

    return run


def _report_lost(services: Services) -> None:
    """Say how many usage events the stop lost — at ERROR when any, never silently."""
    parked = services.close_parked()
    if parked:
        log.error("%d usage events were lost: the runtime stopped while the usage "
                  "recorder was restarting", parked)
    if services.usage_lost:
        log.error("%d usage events were lost: the usage recorder could not write them "
                  "before it stopped", services.usage_lost)
    if not parked and not services.usage_lost:
        log.info("runtime stopped: 0 usage events lost")


def _status(stream: ChatStream, exc: BaseException | None) -> UsageStatus:
    if isinstance(exc, LLMError) or stream.status == "error":
        return "error"
    if stream.status == "ok":
        return "ok"
    return "cancelled"  # left early, or cancelled


def _children(services: Services) -> list[ChildSpec]:
    settings = services.settings
    return [
        child_spec(UsageRecorderActor, services, id="usage_recorder", name=USAGE_RECORDER,
                   shutdown=30_000),
        child_spec(ConfigCache, services, id="config_cache", name=CONFIG_CACHE),
        child_spec(Registry, "unique", id="sessions", name=SESSIONS),
        child_spec(Registry, "duplicate", id="sessions_by_user", name=SESSIONS_BY_USER),
        child_spec(Registry, "duplicate", id="sessions_by_id", name=SESSIONS_BY_ID),
        dynamic_supervisor_spec(id="session_sup", name=SESSION_SUP,
                                max_children=settings.max_sessions),
        child_spec(Janitor, services, id="janitor", name=JANITOR),
    ]


def _messages(messages: Messages) -> tuple[ChatMessage, ...]:
    if type(messages) is Prompt:
        return messages  # checked when made: a conversation's history, as channels pass it
    if isinstance(messages, str):
        return (ChatMessage(role="user", content=messages),)
    if type(messages) is tuple and only_messages(messages):
        return messages  # no copy
    return tuple(m if isinstance(m, ChatMessage) else parse_chat_message(m)
                 for m in messages)
