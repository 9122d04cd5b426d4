"""OpenAI, and every server that speaks its chat-completions API, through the official SDK.

One class serves the kinds ``openai``, ``ollama``, ``tgi`` and ``openai_compatible`` (vLLM,
LM Studio, llama.cpp, ...): only the base URL and the key differ. The SDK's own retries are
off (``max_retries=0``) because the client retries and falls back itself; its timeout is the
resolved ``timeout_s`` of each call. Streams ask for a final usage chunk
(``stream_options.include_usage``), so streamed calls report usage as plain ones do.
``embed`` calls the embeddings API (``POST /v1/embeddings``, float vectors, ``dimensions``
passed on when set), with the same error mapping as chat.

Discovery reads ``GET /v1/models``. OpenAI does not say a model's context window, but several
compatible servers add it to each entry (vLLM's ``max_model_len``, LM Studio's
``max_context_length``, ``context_length``, ``context_window``); the first one found is kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from beamish.llm.errors import ProviderCallError
from beamish.llm.providers.base import (
    VALIDATE_TIMEOUT_S,
    ChatRequest,
    Completion,
    EmbeddingRequest,
    Embeddings,
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
from beamish.store.models import LLMParameters, Provider, ProviderModel

UNUSED_KEY = "unused"
"""Sent to keyless servers: the SDK insists on a key, and Ollama and vLLM ignore it."""

MODEL_LIST = "(model list)"
"""The 'model' named in errors of ``list_models``."""

_CONTEXT_FIELDS = ("max_model_len", "context_length", "max_context_length", "context_window")


class OpenAIProvider(LLMProvider):
    """A provider speaking OpenAI's chat-completions API."""

    def __init__(self, name: str, *, base_url: str, api_key: ApiKey | None,
                 kind: Provider = "openai") -> None:
        """Talk to ``base_url`` (ending in ``/v1``) with ``api_key`` (None for keyless servers)."""
        super().__init__(name, kind)
        self._key = api_key
        self._client = openai.AsyncOpenAI(
            api_key=api_key.reveal() if api_key is not None else UNUSED_KEY,
            base_url=base_url, max_retries=0)

    async def complete(self, request: ChatRequest) -> Completion:
        """One chat completion."""
        try:
            response = await self._client.chat.completions.create(
                model=request.model, messages=_messages(request), timeout=request.timeout_s,
                **self._sampling(request.parameters))
        except (openai.APIError, ValueError) as error:
            raise self._failure(error, request.model, request.timeout_s) from safe_cause(
                error, self._key)
        choice = response.choices[0] if response.choices else None
        usage = response.usage
        return Completion(
            text=(choice.message.content or "") if choice else "",
            usage=Usage(prompt_tokens=usage.prompt_tokens,
                        completion_tokens=usage.completion_tokens) if usage else Usage(),
            provider=self.kind, provider_name=self.name, model=request.model,
            finish_reason=choice.finish_reason if choice else None)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        """One streamed chat completion, ending with its usage chunk."""
        try:
            events = await self._client.chat.completions.create(
                model=request.model, messages=_messages(request), timeout=request.timeout_s,
                stream=True, stream_options={"include_usage": True},
                **self._sampling(request.parameters))
        except (openai.APIError, ValueError) as error:
            raise self._failure(error, request.model, request.timeout_s) from safe_cause(
                error, self._key)
        try:
            async for event in events:
                chunk = _chunk(event)
                if chunk is not None:
                    yield chunk
        except (openai.APIError, ValueError) as error:
            raise self._failure(error, request.model, request.timeout_s) from safe_cause(
                error, self._key)
        finally:
            await events.close()

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """One embeddings call: a float vector per input, in the inputs' order."""
        extra: dict[str, Any] = {}
        if request.dimensions is not None:
            extra["dimensions"] = request.dimensions
        try:
            response = await self._client.embeddings.create(
                model=request.model, input=list(request.inputs), encoding_format="float",
                timeout=request.timeout_s, **extra)
            vectors = tuple(tuple(item.embedding) for item in
                            sorted(response.data, key=lambda item: item.index))
            if len(vectors) != len(request.inputs):
                raise ValueError(f"{len(vectors)} vectors for {len(request.inputs)} inputs")
        except (openai.APIError, ValueError) as error:
            raise self._failure(error, request.model, request.timeout_s) from safe_cause(
                error, self._key)
        usage = response.usage
        return Embeddings(vectors=vectors, usage=Usage(prompt_tokens=usage.prompt_tokens)
                          if usage is not None else Usage(),
                          provider=self.kind, provider_name=self.name, model=request.model)

    async def list_models(self, *, timeout_s: float = VALIDATE_TIMEOUT_S) -> list[ProviderModel]:
        """The models ``GET /v1/models`` lists."""
        try:
            models = [m async for m in self._client.models.list(timeout=timeout_s)]
        except (openai.APIError, ValueError) as error:
            raise self._failure(error, MODEL_LIST, timeout_s) from safe_cause(error, self._key)
        return [discovered(self.name, m.id, _context_window(m.model_extra)) for m in models]

    async def aclose(self) -> None:
        """Close the SDK client's connection pool."""
        await self._client.close()

    def _sampling(self, parameters: LLMParameters) -> dict[str, Any]:
        # OpenAI's own models take max_completion_tokens; compatible servers know max_tokens.
        tokens_field = "max_completion_tokens" if self.kind == "openai" else "max_tokens"
        given = {"temperature": parameters.temperature, "top_p": parameters.top_p,
                 tokens_field: parameters.max_tokens}
        return {name: value for name, value in given.items() if value is not None}

    def _failure(self, error: openai.APIError | ValueError, model: str, timeout_s: float,
                 ) -> ProviderCallError:
        if isinstance(error, ValueError):
            return malformed_answer(error, provider=self.name, model=model, key=self._key)
        if isinstance(error, openai.APIStatusError):
            return status_error(
                error.status_code, error_detail(error.body, error.message), provider=self.name,
                model=model, retry_after=parse_retry_after(error.response.headers), key=self._key)
        timed_out = isinstance(error, openai.APITimeoutError)
        cause = error.__cause__
        detail = f"{error.message} ({cause})" if cause is not None else error.message
        return connection_error(detail, provider=self.name, model=model, timed_out=timed_out,
                                timeout_s=timeout_s, key=self._key)


def _messages(request: ChatRequest) -> list[ChatCompletionMessageParam]:
    messages: list[ChatCompletionMessageParam] = []
    for message in request.messages:
        if message.role == "system":
            messages.append({"role": "system", "content": message.content})
        elif message.role == "user":
            messages.append({"role": "user", "content": message.content})
        else:
            messages.append({"role": "assistant", "content": message.content})
    return messages


def _chunk(event: ChatCompletionChunk) -> ProviderChunk | None:
    choice = event.choices[0] if event.choices else None
    text = (choice.delta.content or "") if choice else ""
    finish = choice.finish_reason if choice else None
    usage = None
    if event.usage is not None:
        usage = Usage(prompt_tokens=event.usage.prompt_tokens,
                      completion_tokens=event.usage.completion_tokens)
    if not text and finish is None and usage is None:
        return None
    return ProviderChunk(text=text, usage=usage, finish_reason=finish)


def _context_window(extra: dict[str, Any] | None) -> int | None:
    for field in _CONTEXT_FIELDS:
        value = (extra or {}).get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
