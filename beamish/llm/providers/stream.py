"""Streamed answers: the events a caller sees, and the state that outlives the stream.

``LLMClient.stream`` returns a ``ChatStream``: iterate it for ``TokenDelta`` events, then
exactly one terminal event — ``StreamDone`` when the answer is complete, ``StreamError``
when it broke after its first token (the text so far is incomplete: never treat it as an
answer). A stream whose every model fails before the first token raises
``FallbacksExhaustedError`` from the iteration instead, as ``complete`` would.

Usage is kept up to date while tokens arrive, so it is there however the stream ends — done,
broken, closed early or cancelled::

    async with client.stream(target, messages) as stream:
        async for event in stream:
            ...
    record(stream.usage, stream.status)    # "ok", "error" or "cancelled"

Until the provider reports its own figures (OpenAI in the last chunk, Anthropic at start and
end), each text chunk counts as one completion token — both APIs send about one token per
chunk — and the prompt counts what the provider said of it so far (nothing, for OpenAI).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import Literal, NamedTuple

from beamish.llm.errors import ProviderCallError
from beamish.llm.providers.base import Attempt, ProviderChunk, Usage
from beamish.store.models import Provider

StreamStatus = Literal["open", "ok", "error", "cancelled"]
"""How a stream ended (``open`` while it runs); the last three are ``UsageStatus`` values."""


# The events are named tuples, not pydantic models: the client makes them from what it has
# already checked, one per token, and validating them again cost more than the rest (and a
# frozen dataclass takes three times as long to make as a named tuple).


class TokenDelta(NamedTuple):
    """The next piece of the answer."""

    text: str


class StreamDone(NamedTuple):
    """The answer is complete; ``usage`` is final."""

    usage: Usage
    provider: Provider
    provider_name: str
    model: str
    finish_reason: str | None
    offline: bool
    attempts: tuple[Attempt, ...]


class StreamError(NamedTuple):
    """The stream broke after its first token; the answer is incomplete.

    ``error`` is a ``StreamBrokenError`` whose ``__cause__`` is what broke it.
    """

    error: ProviderCallError
    usage: Usage
    provider: Provider
    provider_name: str
    model: str
    attempts: tuple[Attempt, ...]


StreamEvent = TokenDelta | StreamDone | StreamError
"""What iterating a ``ChatStream`` yields."""


class UsageMeter:
    """Usage seen so far: the provider's figures, with text chunks counted until it gives them.

    ``StreamState.read`` writes ``reported`` (the provider's last figure) and ``chunks`` (text
    chunks seen) for every chunk, without a call of its own.
    """

    __slots__ = ("chunks", "reported")

    def __init__(self) -> None:
        self.reported: Usage | None = None
        self.chunks = 0

    def reset(self) -> None:
        """Start from zero (another model is answering)."""
        self.reported = None
        self.chunks = 0

    @property
    def usage(self) -> Usage:
        """The best figure now: reported counts, but never fewer answer tokens than chunks."""
        reported = self.reported or Usage()
        return Usage(prompt_tokens=reported.prompt_tokens,
                     completion_tokens=max(reported.completion_tokens, self.chunks))

    def final(self) -> Usage:
        """The figure for a finished answer: the provider's own, when it gave one."""
        if self.reported is not None and self.reported.completion_tokens > 0:
            return self.reported
        return self.usage


class StreamState:
    """What a stream has seen; the client writes it, the ``ChatStream`` reads it."""

    __slots__ = ("attempts", "finish_reason", "meter", "model", "offline", "provider",
                 "provider_name", "status", "text_parts")

    def __init__(self) -> None:
        self.meter = UsageMeter()
        self.attempts: list[Attempt] = []
        self.text_parts: list[str] = []
        self.status: StreamStatus = "open"
        self.provider: Provider | None = None
        self.provider_name: str | None = None
        self.model: str | None = None
        self.finish_reason: str | None = None
        self.offline = False

    def serve(self, provider: Provider, provider_name: str, model: str, offline: bool) -> None:
        """Name the model that is answering; the meter starts from zero for it."""
        self.provider, self.provider_name, self.model = provider, provider_name, model
        self.offline = offline
        self.meter.reset()

    def read(self, chunk: ProviderChunk) -> TokenDelta | None:
        """Account for one chunk; the event to yield for it, if any."""
        text, usage, finish_reason = chunk
        meter = self.meter  # no call of the meter's own: this runs for every token
        if usage is not None:
            meter.reported = usage
        if finish_reason is not None:
            self.finish_reason = finish_reason
        if not text:
            return None
        meter.chunks += 1
        self.text_parts.append(text)
        return TokenDelta(text)

    def done(self) -> StreamDone:
        """The terminal event of a complete answer."""
        self.status = "ok"
        provider, name, model = self._served()
        return StreamDone(usage=self.meter.final(), provider=provider, provider_name=name,
                          model=model, finish_reason=self.finish_reason, offline=self.offline,
                          attempts=tuple(self.attempts))

    def broken(self, error: ProviderCallError) -> StreamError:
        """The terminal event of an answer that broke after its first token."""
        self.status = "error"
        provider, name, model = self._served()
        return StreamError(error=error, usage=self.meter.usage, provider=provider,
                           provider_name=name, model=model, attempts=tuple(self.attempts))

    def _served(self) -> tuple[Provider, str, str]:
        if self.provider is None or self.provider_name is None or self.model is None:
            raise RuntimeError("no model is serving this stream yet")
        return self.provider, self.provider_name, self.model


class ChatStream:
    """An answer arriving token by token; see the module docstring.

    Made by ``LLMClient.stream``. Close it (``async with``, or ``aclose()``) when not reading
    it to the end, so its connection is released at once.
    """

    __slots__ = ("_events", "_state")

    def __init__(self, events: AsyncGenerator[StreamEvent, None], state: StreamState) -> None:
        """Wrap the client's event generator and the state it writes."""
        self._events = events
        self._state = state

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        # The events themselves: ``async for`` then steps the generator with no layer between.
        return self._events

    async def __anext__(self) -> StreamEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop the stream and release its connection; an unfinished one becomes cancelled."""
        events = self._events
        if getattr(events, "ag_frame", events) is not None:  # not run to its end: close it
            await events.aclose()
        if self._state.status == "open":
            self._state.status = "cancelled"

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    @property
    def usage(self) -> Usage:
        """Tokens used so far (final once the stream has ended)."""
        state = self._state
        return state.meter.final() if state.status == "ok" else state.meter.usage

    @property
    def status(self) -> StreamStatus:
        """``open`` while running; then ``ok``, ``error`` or ``cancelled``."""
        return self._state.status

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._state.text_parts)

    @property
    def provider(self) -> Provider | None:
        """The kind of the provider answering, once one is."""
        return self._state.provider

    @property
    def provider_name(self) -> str | None:
        """The registry name of the provider answering, once one is."""
        return self._state.provider_name

    @property
    def model(self) -> str | None:
        """The model answering, once one is."""
        return self._state.model

    @property
    def offline(self) -> bool:
        """True when the echo provider is answering."""
        return self._state.offline

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """Every try so far, the last being the one serving."""
        return tuple(self._state.attempts)
