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
from beamish.llm.providers.bounded import AnswerTooLargeError, bounded_http_client
from beamish.llm.providers.compatible import MODEL_LIST, UNUSED_KEY, context_window
from beamish.llm.providers.failures import (
    connection_error,
    error_detail,
    malformed_answer,
    status_error,
)
from beamish.llm.providers.keys import ApiKey, safe_cause
from beamish.llm.providers.retry import parse_retry_after
from beamish.store.models import LLMParameters, Provider, ProviderModel


class OpenAIProvider(LLMProvider):
    """A provider speaking OpenAI's chat-completions API."""

    def __init__(self, name: str, *, base_url: str, api_key: ApiKey | None,
                 kind: Provider = "openai") -> None:
        """Talk to ``base_url`` (ending in ``/v1``) with ``api_key`` (None for keyless servers)."""
        super().__init__(name, kind)
        self._key = api_key
        self._client = openai.AsyncOpenAI(
            api_key=api_key.reveal() if api_key is not None else UNUSED_KEY,
            base_url=base_url, max_retries=0, http_client=bounded_http_client(
                openai.DEFAULT_CONNECTION_LIMITS, openai.DEFAULT_TIMEOUT))

    async def complete(self, request: ChatRequest) -> Completion:
        """One chat completion."""
        try:
            response = await self._client.chat.completions.create(
                model=request.model, messages=_messages(request), timeout=request.timeout_s,
                **self._sampling(request.parameters))
        except (openai.APIError, ValueError) as error:
            raise self._failure(error, request.model, request.timeout_s) from safe_cause(
                error, self._key)
        try:
            choice = _first_choice(response)
            text = _content(getattr(choice, "message", None), required=choice is not None)
            finish, usage = _finish_reason(choice), _usage(response)
        except ValueError as error:  # the SDK does not check an answer's shape: we do
            raise self._failure(error, request.model, request.timeout_s) from None
        return Completion(
            text=text, usage=usage or Usage(), provider=self.kind, provider_name=self.name,
            model=request.model, finish_reason=finish)

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
        return [discovered(self.name, m.id, context_window(m.model_extra)) for m in models]

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
        if isinstance(error.__cause__, AnswerTooLargeError):
            return malformed_answer(error.__cause__, provider=self.name, model=model)
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
    choice = _first_choice(event)
    text = _content(getattr(choice, "delta", None), required=False)
    finish, usage = _finish_reason(choice), _usage(event)
    if not text and finish is None and usage is None:
        return None
    return ProviderChunk(text=text, usage=usage, finish_reason=finish)


# The SDK builds its answer objects without validating them (``construct``): a server that
# answers JSON of another shape gives objects whose fields are missing or of any type. These
# read the few fields beamish uses and raise ValueError (a malformed answer) if one is wrong.


def _first_choice(answer: object) -> openai.BaseModel | None:
    choices = getattr(answer, "choices", None)
    if not isinstance(choices, list):
        raise ValueError("the answer has no list of choices")
    if not choices:
        return None
    if not isinstance(choices[0], openai.BaseModel):
        raise ValueError("the answer's choice is not an object")
    return choices[0]


def _content(part: object, *, required: bool) -> str:
    if part is None and not required:
        return ""
    if not isinstance(part, openai.BaseModel):
        raise ValueError("the answer's choice has no message")
    content = getattr(part, "content", None)
    if content is not None and not isinstance(content, str):
        raise ValueError("the answer's content is not text")
    return content or ""


def _finish_reason(choice: object) -> str | None:
    reason = getattr(choice, "finish_reason", None)
    if reason is not None and not isinstance(reason, str):
        raise ValueError("the answer's finish_reason is not text")
    return reason


def _usage(answer: object) -> Usage | None:
    usage = getattr(answer, "usage", None)
    if usage is None:
        return None
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    if not (type(prompt) is int and type(completion) is int and prompt >= 0
            and completion >= 0):
        raise ValueError("the answer's usage is not two counts of tokens")
    return Usage(prompt_tokens=prompt, completion_tokens=completion)
