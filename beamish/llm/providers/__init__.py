"""LLM providers behind one interface, and the client that retries and falls back across them.

Example::

    from beamish.llm.providers import ChatMessage, LLMClient, Target, TokenDelta

    async with await LLMClient.from_store(store, settings.llm) as client:
        target = Target(provider="openai", model="gpt-4o-mini")    # or a ResolvedConfig
        answer = await client.complete(target, [ChatMessage(role="user", content="hi")])
        print(answer.text, answer.usage, answer.attempts)

        async with client.stream(target, messages) as stream:
            async for event in stream:
                if isinstance(event, TokenDelta):
                    print(event.text, end="")
        print(stream.status, stream.usage)               # also after a cancel

Which providers a client has: the store's registry rows, then ``llm.providers`` settings and
``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``, then the offline ``echo`` provider (``registry``).
Kinds: ``openai`` and ``anthropic`` through their official SDKs; ``ollama``, ``tgi`` and
``openai_compatible`` (vLLM, LM Studio, ...) through the lean wire client of the same API
(``wire.OpenAIWireProvider``: same answers and errors, a fraction of the SDK's CPU per call);
``echo`` (deterministic, offline, labelled ``offline=True`` in every answer).

Calls honour the resolved timeout, retry only what may pass (``retry``: 429, 5xx, timeouts,
connection errors; exponential backoff with full jitter; Retry-After obeyed), then walk the
fallback chain (``router``). Streams end with ``StreamDone``, or with ``StreamError`` if they
broke after the first token; usage is tracked as chunks arrive (``stream``). Keys never show
in any string (``keys``). ``discovery`` fills the store's model catalog; ``validate`` tells
reachable from unauthorized from unreachable.

Errors are the ``ProviderError`` branch of ``beamish.llm.errors``. ``OpenAIProvider`` and
``AnthropicProvider`` load their SDK (seconds of imports) on first use of the name, so
importing this package stays cheap for code that never calls a provider.
"""

from typing import TYPE_CHECKING, Any

from beamish.llm.providers.base import (
    Attempt,
    CallTarget,
    ChatMessage,
    ChatRequest,
    Completion,
    EmbeddingRequest,
    Embeddings,
    LLMProvider,
    Prompt,
    ProviderChunk,
    Role,
    Target,
    Usage,
    Validation,
    ValidationStatus,
    parse_chat_message,
)
from beamish.llm.providers.client import LLMClient
from beamish.llm.providers.discovery import Discovery, discover, refresh_catalog
from beamish.llm.providers.echo import EchoProvider
from beamish.llm.providers.keys import ApiKey, mask_key
from beamish.llm.providers.registry import (
    DEFAULT_BASE_URLS,
    ProviderConfig,
    ProviderPlan,
    build_provider,
    provider_configs,
)
from beamish.llm.providers.retry import Backoff, RetrySchedule, is_retryable, parse_retry_after
from beamish.llm.providers.stream import (
    ChatStream,
    StreamDone,
    StreamError,
    StreamEvent,
    StreamStatus,
    TokenDelta,
)

if TYPE_CHECKING:
    from beamish.llm.providers.anthropic import AnthropicProvider
    from beamish.llm.providers.openai import OpenAIProvider


def __getattr__(name: str) -> Any:
    if name == "OpenAIProvider":
        from beamish.llm.providers.openai import OpenAIProvider

        return OpenAIProvider
    if name == "AnthropicProvider":
        from beamish.llm.providers.anthropic import AnthropicProvider

        return AnthropicProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    # calling models
    "LLMClient", "CallTarget", "Target", "ChatMessage", "Prompt", "parse_chat_message",
    "Role", "Completion", "Usage", "Attempt", "EmbeddingRequest", "Embeddings",
    # streams
    "ChatStream", "StreamEvent", "TokenDelta", "StreamDone", "StreamError", "StreamStatus",
    # providers
    "LLMProvider", "ChatRequest", "ProviderChunk", "EchoProvider", "OpenAIProvider",
    "AnthropicProvider", "Validation", "ValidationStatus",
    # which providers exist
    "ProviderConfig", "ProviderPlan", "provider_configs", "build_provider", "DEFAULT_BASE_URLS",
    # keys
    "ApiKey", "mask_key",
    # retries
    "Backoff", "RetrySchedule", "is_retryable", "parse_retry_after",
    # discovery
    "Discovery", "discover", "refresh_catalog",
]
