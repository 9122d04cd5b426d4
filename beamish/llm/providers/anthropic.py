"""Anthropic's Messages API through the official SDK.

System messages become the ``system`` field (joined by blank lines); the others are sent in
order. ``max_tokens`` is required by the API, so an unset one is ``DEFAULT_MAX_TOKENS``.
``temperature`` and ``top_p`` are sent only when set, in the request body: the SDK no longer
takes them as arguments, and recent models refuse them (a ``BadRequestError``, which moves the
call on to its fallbacks). The SDK's own retries are off; the client retries and falls back.

Usage counts every prompt token the API bills — ``input_tokens`` plus the cache's creation
and read tokens — and the answer's ``output_tokens``. Streams carry it twice: the prompt in
``message_start``, the answer's running total in ``message_delta``. Errors the API sends
inside a stream (an ``error`` event with ``overloaded_error``, say) are classified by their
type as the HTTP status it stands for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import anthropic
import httpx2
from anthropic.types import MessageParam, RawMessageStreamEvent

from beamish.llm.errors import ProviderCallError
from beamish.llm.providers.base import (
    VALIDATE_TIMEOUT_S,
    ChatRequest,
    Completion,
    LLMProvider,
    ProviderChunk,
    Usage,
    discovered,
)
from beamish.llm.providers.failures import (
    connection_error,
    error_detail,
    malformed_answer,
    status_error,
)
from beamish.llm.providers.keys import ApiKey, safe_cause
from beamish.llm.providers.retry import parse_retry_after
from beamish.store.models import ProviderModel

DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` sent when the parameters leave it unset (the API requires one)."""

MODEL_LIST = "(model list)"
"""The 'model' named in errors of ``list_models``."""

_ERROR_TYPE_STATUS: Mapping[str, int] = {
    "invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
    "api_error": 500, "overloaded_error": 529,
}


class AnthropicProvider(LLMProvider):
    """A provider speaking Anthropic's Messages API."""

    def __init__(self, name: str, *, base_url: str, api_key: ApiKey) -> None:
        """Talk to ``base_url`` (``https://api.anthropic.com``) with ``api_key``."""
        super().__init__(name, "anthropic")
        self._key = api_key
        self._client = anthropic.AsyncAnthropic(api_key=api_key.reveal(), base_url=base_url,
                                                max_retries=0)

    async def complete(self, request: ChatRequest) -> Completion:
        """One message."""
        try:
            message = await self._client.messages.create(
                **_arguments(request), timeout=request.timeout_s)
        except (anthropic.APIError, ValueError) as error:
            raise self._failure(error, request) from safe_cause(error, self._key)
        text = "".join(block.text for block in message.content if block.type == "text")
        usage = message.usage
        prompt = (usage.input_tokens + (usage.cache_creation_input_tokens or 0)
                  + (usage.cache_read_input_tokens or 0))
        return Completion(
            text=text, usage=Usage(prompt_tokens=prompt, completion_tokens=usage.output_tokens),
            provider=self.kind, provider_name=self.name, model=request.model,
            finish_reason=message.stop_reason)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        """One streamed message: its usage first, text deltas, then the stop reason."""
        try:
            events = await self._client.messages.create(
                **_arguments(request), stream=True, timeout=request.timeout_s)
        except (anthropic.APIError, ValueError) as error:
            raise self._failure(error, request) from safe_cause(error, self._key)
        reader = _StreamReader()
        try:
            async for event in events:
                chunk = reader.read(event)
                if chunk is not None:
                    yield chunk
        except (anthropic.APIError, httpx2.TransportError, ValueError) as error:
            # The SDK lets transport errors met mid-stream through unwrapped.
            raise self._failure(error, request) from safe_cause(error, self._key)
        finally:
            await events.close()

    async def list_models(self, *, timeout_s: float = VALIDATE_TIMEOUT_S) -> list[ProviderModel]:
        """The models the API lists, with their context windows."""
        try:
            models = [m async for m in self._client.models.list(timeout=timeout_s)]
        except (anthropic.APIError, ValueError) as error:
            raise self._failure(error, None, timeout_s) from safe_cause(error, self._key)
        return [discovered(self.name, m.id, m.max_input_tokens) for m in models]

    async def aclose(self) -> None:
        """Close the SDK client's connection pool."""
        await self._client.close()

    def _failure(self, error: anthropic.APIError | httpx2.TransportError | ValueError,
                 request: ChatRequest | None, timeout_s: float | None = None,
                 ) -> ProviderCallError:
        model = request.model if request is not None else MODEL_LIST
        timeout_s = request.timeout_s if request is not None else timeout_s
        if isinstance(error, ValueError):
            return malformed_answer(error, provider=self.name, model=model, key=self._key)
        if isinstance(error, anthropic.APIStatusError):
            status = error.status_code
            if status < 400:  # an error event inside a stream that began with 200
                status = _ERROR_TYPE_STATUS.get(error.type or "", 500)
            return status_error(
                status, error_detail(error.body, error.message), provider=self.name,
                model=model, retry_after=parse_retry_after(error.response.headers), key=self._key)
        timed_out = isinstance(error, anthropic.APITimeoutError | httpx2.TimeoutException)
        detail = _transport_detail(error)
        return connection_error(detail, provider=self.name, model=model, timed_out=timed_out,
                                timeout_s=timeout_s, key=self._key)


class _StreamReader:
    """Turns the API's stream events into chunks, remembering the prompt's usage."""

    __slots__ = ("prompt_tokens",)

    def __init__(self) -> None:
        self.prompt_tokens = 0

    def read(self, event: RawMessageStreamEvent) -> ProviderChunk | None:
        if event.type == "message_start":
            usage = event.message.usage
            self.prompt_tokens = (usage.input_tokens + (usage.cache_creation_input_tokens or 0)
                                  + (usage.cache_read_input_tokens or 0))
            return ProviderChunk(usage=Usage(prompt_tokens=self.prompt_tokens,
                                             completion_tokens=usage.output_tokens))
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            return ProviderChunk(text=event.delta.text) if event.delta.text else None
        if event.type == "message_delta":
            return ProviderChunk(
                usage=Usage(prompt_tokens=self.prompt_tokens,
                            completion_tokens=event.usage.output_tokens),
                finish_reason=event.delta.stop_reason or "end_turn")
        return None


def _arguments(request: ChatRequest) -> dict[str, Any]:
    parameters = request.parameters
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    messages: list[MessageParam] = []
    for message in request.messages:
        if message.role == "user":
            messages.append({"role": "user", "content": message.content})
        elif message.role == "assistant":
            messages.append({"role": "assistant", "content": message.content})
    arguments: dict[str, Any] = {
        "model": request.model, "messages": messages,
        "max_tokens": parameters.max_tokens or DEFAULT_MAX_TOKENS}
    if system:
        arguments["system"] = system
    # anthropic>=1 dropped the sampling arguments from its signatures; the API still takes
    # them (on models that allow sampling), so only the ones set go in the body.
    sampling = {"temperature": parameters.temperature, "top_p": parameters.top_p}
    extra = {name: value for name, value in sampling.items() if value is not None}
    if extra:
        arguments["extra_body"] = extra
    return arguments


def _transport_detail(error: anthropic.APIError | httpx2.TransportError) -> str:
    if isinstance(error, httpx2.TransportError):
        return f"{type(error).__name__}: {error}"
    cause = error.__cause__
    return f"{error.message} ({cause})" if cause is not None else error.message
