"""The public API of beamish.llm.providers: every name exists, is exported once, and is pinned."""

from __future__ import annotations

import beamish.llm.providers as providers

PINNED = sorted([
    "AnthropicProvider", "ApiKey", "Attempt", "Backoff", "CallTarget", "ChatMessage",
    "ChatRequest", "ChatStream", "Completion", "DEFAULT_BASE_URLS", "Discovery", "EchoProvider",
    "EmbeddingRequest", "Embeddings",
    "LLMClient", "LLMProvider", "OpenAIProvider", "ProviderChunk", "ProviderConfig",
    "ProviderPlan", "Prompt", "RetrySchedule", "Role", "StreamDone", "StreamError", "StreamEvent",
    "StreamStatus", "Target", "TokenDelta", "Usage", "Validation", "ValidationStatus",
    "build_provider", "discover", "is_retryable", "mask_key", "parse_chat_message",
    "parse_retry_after",
    "provider_configs", "refresh_catalog",
])


def test_all_is_pinned() -> None:
    """__all__ lists exactly the pinned names, each once."""
    assert sorted(providers.__all__) == PINNED
    assert len(set(providers.__all__)) == len(providers.__all__)


def test_every_exported_name_exists() -> None:
    """Each name in __all__ resolves on the package."""
    missing = [name for name in providers.__all__ if not hasattr(providers, name)]
    assert missing == []
