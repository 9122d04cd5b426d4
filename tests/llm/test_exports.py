"""The public API of beamish.llm: pinned, every name resolves, and the SDKs load lazily."""

from __future__ import annotations

import subprocess
import sys

import beamish.llm as llm

PINNED = sorted([
    "AnthropicProvider", "Attempt", "CacheStats", "CallTarget", "ChatMessage", "ChatStream",
    "Completion", "ConfigRequest", "ConfigResolver", "EchoProvider", "FallbacksExhaustedError",
    "LLMClient", "LLMError", "LLMProvider", "LLMSettings", "Layer", "NoUsableProviderError",
    "OpenAIProvider", "ProviderCallError", "ProviderError", "ProviderSettings",
    "ResolutionError", "ResolvedConfig", "StreamDone", "StreamError", "StreamEvent", "Target",
    "TaskTypeSettings", "TokenDelta", "Usage", "Validation", "refresh_catalog",
    "resolve_config",
])


def test_all_is_pinned() -> None:
    """__all__ lists exactly the pinned names, each once."""
    assert sorted(llm.__all__) == PINNED
    assert len(set(llm.__all__)) == len(llm.__all__)


def test_every_exported_name_resolves() -> None:
    """Each name in __all__ is reachable on the package, the lazy ones included."""
    assert [name for name in llm.__all__ if getattr(llm, name, None) is None] == []


def test_importing_the_package_does_not_import_the_sdks() -> None:
    """``import beamish.llm`` leaves the openai and anthropic SDKs unloaded."""
    code = "import sys, beamish.llm; print('openai' in sys.modules, 'anthropic' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.split() == ["False", "False"]
