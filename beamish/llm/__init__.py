"""Per-user LLM configuration resolution and provider clients.

Two halves:

* **Resolution** (``resolution``, sans-I/O; ``resolver``, cached over a ``Store``): what a user
  gets for a task, field by field, from the hierarchy — request > the user's task override >
  the user's default > the user's config for the requested provider > tier config > global
  config > system default > first available provider — with the layer behind every value
  (``ResolvedConfig.sources``) and a warning for every stored preference that was skipped.
* **Providers** (``providers``): one ``LLMClient`` over OpenAI, Anthropic, any
  OpenAI-compatible server (Ollama, TGI, vLLM, LM Studio) and the offline ``echo`` provider,
  with timeouts, retries with backoff, fallback chains, streaming and usage capture.

::

    resolver = ConfigResolver(store, settings.llm)
    config = await resolver.resolve("ada", "reasoning")
    print(config.explain())
    async with await LLMClient.from_store(store, settings.llm) as client:
        answer = await client.complete(config, [ChatMessage(role="user", content="hi")])

Settings come from ``LLMSettings`` (``[llm]`` in ``beamish.toml``, ``BEAMISH_LLM__*``).
Errors are ``beamish.llm.errors``. The SDK-backed ``OpenAIProvider`` and ``AnthropicProvider``
load on first use, so importing this package does not import the SDKs.
"""

from typing import TYPE_CHECKING, Any

from beamish.llm.errors import (
    FallbacksExhaustedError,
    LLMError,
    NoUsableProviderError,
    ProviderCallError,
    ProviderError,
    ResolutionError,
)
from beamish.llm.hierarchy import ConfigRequest, Layer, ResolvedConfig, resolve_config
from beamish.llm.providers import (
    Attempt,
    CallTarget,
    ChatMessage,
    ChatStream,
    Completion,
    EchoProvider,
    LLMClient,
    LLMProvider,
    StreamDone,
    StreamError,
    StreamEvent,
    Target,
    TokenDelta,
    Usage,
    Validation,
    refresh_catalog,
)
from beamish.llm.resolver import CacheStats, ConfigResolver
from beamish.llm.settings import LLMSettings, ProviderSettings, TaskTypeSettings

if TYPE_CHECKING:
    from beamish.llm.providers.anthropic import AnthropicProvider
    from beamish.llm.providers.openai import OpenAIProvider

__all__ = [
    # resolution
    "CacheStats", "ConfigRequest", "ConfigResolver", "Layer", "ResolvedConfig",
    "resolve_config",
    # settings
    "LLMSettings", "ProviderSettings", "TaskTypeSettings",
    # providers
    "AnthropicProvider", "Attempt", "CallTarget", "ChatMessage", "ChatStream", "Completion",
    "EchoProvider", "LLMClient", "LLMProvider", "OpenAIProvider", "StreamDone", "StreamError",
    "StreamEvent", "Target", "TokenDelta", "Usage", "Validation", "refresh_catalog",
    # errors
    "FallbacksExhaustedError", "LLMError", "NoUsableProviderError", "ProviderCallError",
    "ProviderError", "ResolutionError",
]


def __getattr__(name: str) -> Any:
    if name in ("OpenAIProvider", "AnthropicProvider"):
        from beamish.llm import providers

        return getattr(providers, name)
    raise AttributeError(f"module 'beamish.llm' has no attribute {name!r}")
