"""``LLMClient``: the one way beamish calls a model.

Build it from the settings and the store's provider registry, then call it with a resolved
target (``beamish.llm.ResolvedConfig`` or a ``Target``)::

    async with await LLMClient.from_store(store, settings.llm) as client:
        completion = await client.complete(target, [ChatMessage(role="user", content="hi")])
        async with client.stream(target, messages) as stream:
            async for event in stream:
                ...

Every call, ``complete``, ``stream`` or ``embed`` (texts to vectors, ``EmbeddingRequest``):

1. walks the fallback chain: the target's model, then ``parameters.fallback_models``
   (``beamish.llm.providers.router``);
2. tries each link on its provider with the resolved timeout — ``parameters.timeout_s``, else
   the client's ``timeout_s`` — over the whole answer for ``complete``, up to the first token
   for ``stream`` (after it, each chunk must come within the timeout);
3. retries a retryable failure (429, 5xx, timeouts, connection errors) up to
   ``parameters.max_retries`` times (else the client's ``max_retries``), waiting as
   ``beamish.llm.providers.retry`` decides, then moves to the next link;
4. raises ``FallbacksExhaustedError`` naming every try when no link answers.

Every try is listed in the answer's ``attempts``; retries are logged at INFO and fallbacks at
WARNING on the ``beamish.llm`` logger, with keys masked; so is every failure that leaves the
client (a call no link answered, a stream that broke), with the upstream's own words. A
stream that breaks after its first token is not retried (its tokens are already out): it ends
with a ``StreamError`` event.

Options and their defaults: ``timeout_s`` 60, ``max_retries`` 2, ``backoff`` ``Backoff()``
(0.5 s base, 30 s cap, Retry-After obeyed up to 60 s); ``sleep`` (``asyncio.sleep``) and
``random`` (``random.random``) are there for tests. ``from_settings`` takes the first three
from ``LLMSettings`` (``timeout_s``, ``max_retries``, ``retry_backoff_base_s`` / ``_cap_s``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random as _random
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from beamish.llm.errors import (
    FallbacksExhaustedError,
    ProviderCallError,
    ProviderNotConfiguredError,
    StreamBrokenError,
)
from beamish.llm.providers.base import (
    Attempt,
    CallTarget,
    ChatMessage,
    ChatRequest,
    Completion,
    EmbeddingRequest,
    Embeddings,
    LLMProvider,
    ProviderChunk,
    Validation,
)
from beamish.llm.providers.failures import connection_error
from beamish.llm.providers.registry import ProviderPlan, build_provider, provider_configs
from beamish.llm.providers.retry import Backoff, RetrySchedule
from beamish.llm.providers.router import KINDS, Link, fallback_chain, pick_provider
from beamish.llm.providers.stream import ChatStream, StreamEvent, StreamState
from beamish.llm.settings import LLMSettings
from beamish.store import Store
from beamish.store.models import Provider, ProviderModel, ProviderRecord
from beamish.store.secrets import SecretBox

log = logging.getLogger("beamish.llm")

_T = TypeVar("_T")
_R = TypeVar("_R", ChatRequest, EmbeddingRequest)
_TryOnce = Callable[[LLMProvider, _R], Awaitable[_T]]


@dataclass(slots=True)
class _OpenedStream:
    """A stream read up to its first token: the chunks so far and the rest to come."""

    head: list[ProviderChunk]
    rest: AsyncIterator[ProviderChunk]


class LLMClient:
    """Calls providers with the resolved timeout, retries, then the fallback chain."""

    def __init__(self, providers: Iterable[LLMProvider] = (), *,
                 unavailable: Mapping[str, tuple[Provider, str]] | None = None,
                 disabled: Iterable[str] = (),
                 timeout_s: float = 60.0, max_retries: int = 2, backoff: Backoff | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 random: Callable[[], float] = _random.random) -> None:
        """Serve ``providers``; ``unavailable`` names those that could not be built, and why
        (``disabled`` those of them turned off on purpose, the rest are ``broken``)."""
        self._providers: dict[str, LLMProvider] = {}
        for provider in providers:
            if provider.name in self._providers:
                raise ValueError(f"two providers are named {provider.name!r}; names are unique")
            self._providers[provider.name] = provider
        self._unavailable = dict(unavailable or {})
        self._broken = frozenset(self._unavailable) - frozenset(disabled)
        self._known = KINDS | self._providers.keys() | self._unavailable.keys()
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._random = random

    @classmethod
    def from_settings(cls, settings: LLMSettings | None = None, *,
                      records: Iterable[ProviderRecord] = (), box: SecretBox | None = None,
                      environ: Mapping[str, str] | None = None) -> LLMClient:
        """A client for the registry ``records``, the settings and the environment.

        Args:
            settings: the ``[llm]`` settings (defaults: ``LLMSettings()``).
            records: the provider registry rows (``Store.list_providers()``).
            box: decrypts stored keys; defaults to ``SecretBox.from_env(environ)`` when needed.
            environ: where ``OPENAI_API_KEY`` and friends are read (``os.environ``).
        """
        settings = settings or LLMSettings()
        plan = provider_configs(settings, records, environ=os.environ if environ is None
                                else environ, box=None if box is None else (lambda: box))
        providers, unavailable = _build_all(plan)
        return cls(providers, unavailable=unavailable, disabled=plan.disabled,
                   timeout_s=settings.timeout_s,
                   max_retries=settings.max_retries,
                   backoff=Backoff(base_s=settings.retry_backoff_base_s,
                                   cap_s=settings.retry_backoff_cap_s))

    @classmethod
    async def from_store(cls, store: Store, settings: LLMSettings | None = None, *,
                         box: SecretBox | None = None,
                         environ: Mapping[str, str] | None = None) -> LLMClient:
        """``from_settings`` with the registry read from ``store``."""
        records = await store.list_providers()
        return cls.from_settings(settings, records=records, box=box, environ=environ)

    @property
    def broken(self) -> Mapping[str, str]:
        """The providers configured but impossible to build (not merely disabled), and why."""
        return {name: reason for name, (_, reason) in self._unavailable.items()
                if name in self._broken}

    @property
    def providers(self) -> Mapping[str, LLMProvider]:
        """The usable providers, by registry name."""
        return dict(self._providers)

    @property
    def unavailable(self) -> Mapping[str, str]:
        """The providers that could not be built, by name, with the reason."""
        return {name: reason for name, (_, reason) in self._unavailable.items()}

    def provider(self, name: str) -> LLMProvider:
        """The provider registered as ``name``, else the first of kind ``name``.

        Raises:
            ProviderNotConfiguredError: none is usable; the message says why and what to do.
        """
        found = pick_provider(name, self._providers)
        if found is not None:
            return found
        reasons = [reason for other, (kind, reason) in sorted(self._unavailable.items())
                   if name in (other, kind)]
        why = "; ".join(reasons) or (
            f"no provider is named {name!r} or of that kind; register one "
            "(Store.register_provider) or configure it in llm.providers")
        raise ProviderNotConfiguredError(f"provider {name!r} is not usable: {why}",
                                         provider=name, model="*")

    async def complete(self, target: CallTarget, messages: Sequence[ChatMessage]) -> Completion:
        """The whole answer from the first link of the chain that gives one.

        Raises:
            FallbacksExhaustedError: every link failed; ``attempts`` says how.
        """
        attempts: list[Attempt] = []
        _, _, completion = await self._walk(target, messages, attempts, self._complete_once)
        return completion.model_copy(update={"attempts": tuple(attempts)})

    def stream(self, target: CallTarget, messages: Sequence[ChatMessage]) -> ChatStream:
        """The answer token by token; see ``beamish.llm.providers.stream``."""
        state = StreamState()
        return ChatStream(self._stream_events(target, messages, state), state)

    async def embed(self, target: CallTarget, inputs: Sequence[str], *,
                    dimensions: int | None = None) -> Embeddings:
        """One vector per input, from the first link of the chain that gives them; retried,
        timed and fallen back as ``complete`` is.

        Raises:
            ValueError: no inputs, or an input that is not a string.
            FallbacksExhaustedError: every link failed; ``attempts`` says how.
        """
        texts = tuple(inputs)
        EmbeddingRequest(model=target.model, inputs=texts, dimensions=dimensions,
                         timeout_s=1.0)  # raises on bad inputs before any try

        def request(link: Link, timeout_s: float) -> EmbeddingRequest:
            return EmbeddingRequest(model=link.model, inputs=texts, dimensions=dimensions,
                                    timeout_s=timeout_s)

        attempts: list[Attempt] = []
        _, _, embeddings = await self._walk_chain(target, attempts, self._embed_once, request)
        return embeddings.model_copy(update={"attempts": tuple(attempts)})

    async def list_models(self, name: str) -> list[ProviderModel]:
        """The models provider ``name`` offers (one try, no fallback)."""
        return await self.provider(name).list_models()

    async def validate(self, name: str) -> Validation:
        """Whether provider ``name`` is reachable with its key."""
        return await self.provider(name).validate()

    async def validate_all(self) -> list[Validation]:
        """``validate`` every usable provider at once, by name."""
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(p.validate()) for p in self._providers.values()]
        return sorted((t.result() for t in tasks), key=lambda v: v.provider)

    async def aclose(self) -> None:
        """Close every provider's connections."""
        for provider in self._providers.values():
            await provider.aclose()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    # -- the walk: links, retries, deadlines ---------------------------------------------------

    async def _walk(self, target: CallTarget, messages: Sequence[ChatMessage],
                    attempts: list[Attempt], try_once: _TryOnce[ChatRequest, _T],
                    ) -> tuple[LLMProvider, ChatRequest, _T]:
        if not isinstance(messages, tuple):  # a Prompt is one already: no copy
            messages = tuple(messages)
        if not messages:
            raise ValueError("a call needs at least one message")

        def request(link: Link, timeout_s: float) -> ChatRequest:
            return ChatRequest(model=link.model, messages=messages,
                               parameters=target.parameters, timeout_s=timeout_s)

        return await self._walk_chain(target, attempts, try_once, request)

    async def _walk_chain(self, target: CallTarget, attempts: list[Attempt],
                          try_once: _TryOnce[_R, _T], request_for: Callable[[Link, float], _R],
                          ) -> tuple[LLMProvider, _R, _T]:
        chain = fallback_chain(target, self._known)
        timeout_s = target.parameters.timeout_s or self._timeout_s
        last: ProviderCallError | None = None
        for index, link in enumerate(chain):
            try:
                provider = self.provider(link.provider)
                request = request_for(link, timeout_s)
                return provider, request, await self._retry(provider, request, attempts,
                                                            try_once, target)
            except ProviderCallError as error:
                last = error
                if isinstance(error, ProviderNotConfiguredError):
                    attempts.append(Attempt(provider=link.provider, model=link.model,
                                            error=str(error)))
                if index + 1 < len(chain):
                    log.warning("%s failed, falling back to %s: %s", link, chain[index + 1],
                                error)
        exhausted = FallbacksExhaustedError(attempts)
        # The one place a failed call leaves beamish.llm: the upstream's words go to the log
        # here (scrubbed, as every message is); callers show only ``public_message``.
        log.warning("%s", exhausted)
        raise exhausted from last

    async def _retry(self, provider: LLMProvider, request: _R,
                     attempts: list[Attempt], try_once: _TryOnce[_R, _T], target: CallTarget,
                     ) -> _T:
        schedule: RetrySchedule | None = None  # made at the first failure: most calls succeed
        while True:
            try:
                result = await try_once(provider, request)
            except ProviderCallError as error:
                attempts.append(Attempt(provider=provider.name, model=request.model,
                                        error=str(error)))
                if schedule is None:
                    retries = target.parameters.max_retries
                    schedule = RetrySchedule(self._backoff, self._max_retries if retries is None
                                             else retries, self._random)
                delay = schedule.next_delay(error)
                if delay is None:
                    raise
                log.info("%s:%s failed, retry %d in %.2f s: %s", provider.name,
                         request.model, schedule.retries, delay, error)
                await self._sleep(delay)
                continue
            attempts.append(Attempt(provider=provider.name, model=request.model))
            return result

    async def _embed_once(self, provider: LLMProvider, request: EmbeddingRequest,
                          ) -> Embeddings:
        return await _timed(provider, request, provider.embed(request))

    async def _complete_once(self, provider: LLMProvider, request: ChatRequest) -> Completion:
        return await _timed(provider, request, provider.complete(request))

    async def _open_stream(self, provider: LLMProvider, request: ChatRequest) -> _OpenedStream:
        chunks = provider.stream(request)
        try:
            head = await _timed(provider, request, _read_head(chunks))
        except BaseException:
            await _aclose(chunks)
            raise
        if not head or not (head[-1].text or head[-1].finish_reason is not None):
            await _aclose(chunks)
            raise _no_first_token(provider, request)
        return _OpenedStream(head=head, rest=chunks)

    # -- streams -------------------------------------------------------------------------------

    async def _stream_events(self, target: CallTarget, messages: Sequence[ChatMessage],
                             state: StreamState) -> AsyncGenerator[StreamEvent, None]:
        # One generator from the walk to the terminal event: each layer between the provider
        # and the caller costs a step per token.
        try:
            provider, request, opened = await self._walk(target, messages, state.attempts,
                                                         self._open_stream)
            state.serve(provider.kind, provider.name, request.model, provider.offline)
            chunks = opened.rest
            try:
                for chunk in opened.head:
                    if (event := state.read(chunk)) is not None:
                        yield event
                try:
                    async for chunk in chunks:
                        if (event := state.read(chunk)) is not None:
                            yield event
                except ProviderCallError as error:
                    if state.finish_reason is None:
                        yield state.broken(_broken(state, error))
                        return
                    # The answer was complete; only the usage chunk after it was lost.
                    log.warning("stream of %s:%s cut after its last token: %s",
                                state.provider_name, state.model, error)
                if state.finish_reason is None:
                    yield state.broken(_broken(state, None))
                    return
                yield state.done()
            finally:
                await _aclose(chunks)
        except Exception:
            state.status = "error"
            raise
        finally:
            if state.status == "open":
                state.status = "cancelled"


def _timed(provider: LLMProvider, request: ChatRequest | EmbeddingRequest,
           call: Awaitable[_T]) -> Awaitable[_T]:
    """``call`` under the request's timeout; as it is for an offline provider, which answers
    from this process with no I/O to wait for (a deadline would only add a timer handle to
    every call)."""
    return call if provider.offline else _within_timeout(provider, request, call)


async def _within_timeout(provider: LLMProvider, request: ChatRequest | EmbeddingRequest,
                          call: Awaitable[_T]) -> _T:
    try:
        async with asyncio.timeout(request.timeout_s):
            return await call
    except TimeoutError:
        raise connection_error("no answer", provider=provider.name, model=request.model,
                               timed_out=True, timeout_s=request.timeout_s) from None


async def _read_head(chunks: AsyncIterator[ProviderChunk]) -> list[ProviderChunk]:
    head: list[ProviderChunk] = []
    async for chunk in chunks:
        head.append(chunk)
        if chunk.text or chunk.finish_reason is not None:
            break
    return head


def _no_first_token(provider: LLMProvider, request: ChatRequest) -> ProviderCallError:
    return connection_error("the stream ended before its first token", provider=provider.name,
                            model=request.model, timed_out=False)


def _broken(state: StreamState, cause: ProviderCallError | None) -> StreamBrokenError:
    provider, model = state.provider_name or "?", state.model or "?"
    why = f": {cause}" if cause is not None else " without saying it was complete"
    said = (f"{provider}:{model} stream broke after {len(state.text_parts)} chunks, so the "
            "answer is incomplete")
    error = StreamBrokenError(
        f"{said}{why}", provider=provider, model=model,
        status_code=cause.status_code if cause is not None else None,
        detail="" if cause is None else cause.detail, public=f"{said}; try again")
    error.__cause__ = cause
    log.warning("%s", error)
    return error


async def _aclose(chunks: AsyncIterator[ProviderChunk]) -> None:
    # Async generators (every built-in provider) hold a connection until closed.
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


def _build_all(plan: ProviderPlan) -> tuple[list[LLMProvider], dict[str, tuple[Provider, str]]]:
    """Build every provider of ``plan``; one that cannot be built is unavailable, not fatal.

    A stored row is data, not code: whatever is wrong with one (a URL the SDK refuses, a key
    it rejects) must not stop the server, which serves the others. Each broken provider is
    logged at WARNING, naming it and why, every time a client is built.
    """
    providers: list[LLMProvider] = []
    unavailable = dict(plan.unavailable)
    for config in plan.configs:
        try:
            providers.append(build_provider(config))
        except Exception as error:  # any fault of one row is that row's alone
            unavailable[config.name] = (config.kind, f"provider {config.name!r} cannot be "
                                        f"built: {type(error).__name__}: {error}")
    for name, (kind, reason) in sorted(unavailable.items()):
        if name not in plan.disabled:
            log.warning("provider %r (%s) is not served: %s", name, kind, reason)
    return providers, unavailable
