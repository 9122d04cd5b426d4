"""The fallback chain and the provider picked for each link, without I/O."""

from __future__ import annotations

from beamish.llm.providers import EchoProvider, LLMProvider, OpenAIProvider, Target
from beamish.llm.providers.router import Link, fallback_chain, parse_model_ref, pick_provider
from beamish.store import LLMParameters


def test_chain_is_target_then_fallbacks_in_order() -> None:
    """provider:model entries name their provider; bare ones keep the target's."""
    target = Target(provider="openai", model="gpt-4o", parameters=LLMParameters(
        fallback_models=("anthropic:claude-3", "gpt-4o-mini", "echo:echo-1")))
    assert fallback_chain(target) == (Link("openai", "gpt-4o"), Link("anthropic", "claude-3"),
                                      Link("openai", "gpt-4o-mini"), Link("echo", "echo-1"))


def test_chain_tries_each_link_once() -> None:
    """A fallback repeating the target (or another fallback) is dropped."""
    target = Target(provider="openai", model="gpt-4o", parameters=LLMParameters(
        fallback_models=("gpt-4o", "openai:gpt-4o", "echo:e", "echo:e")))
    assert fallback_chain(target) == (Link("openai", "gpt-4o"), Link("echo", "e"))


def test_colons_in_model_names_survive() -> None:
    """ollama:llama3:8b is Ollama's llama3:8b; a bare llama3:8b stays one model name."""
    assert parse_model_ref("ollama:llama3:8b", "openai") == Link("ollama", "llama3:8b")
    assert parse_model_ref("llama3:8b", "ollama") == Link("ollama", "llama3:8b")


def test_registry_names_are_known_prefixes() -> None:
    """A registered name before the colon picks that provider."""
    assert parse_model_ref("vllm-eu:qwen", "openai", {"vllm-eu"}) == Link("vllm-eu", "qwen")
    assert parse_model_ref("vllm-eu:qwen", "openai") == Link("openai", "vllm-eu:qwen")


def test_link_reads_as_provider_colon_model() -> None:
    """A link prints as the reference that names it."""
    assert str(Link("anthropic", "claude-3")) == "anthropic:claude-3"


def test_pick_prefers_the_name_then_the_first_of_the_kind() -> None:
    """By registry name first; else the first provider, by name, of that kind."""
    eu = OpenAIProvider("openai-eu", base_url="http://127.0.0.1:9/v1", api_key=None)
    us = OpenAIProvider("openai-us", base_url="http://127.0.0.1:9/v1", api_key=None)
    echo = EchoProvider()
    providers: dict[str, LLMProvider] = {p.name: p for p in (us, eu, echo)}
    assert pick_provider("openai-us", providers) is us
    assert pick_provider("openai", providers) is eu
    assert pick_provider("echo", providers) is echo
    assert pick_provider("anthropic", providers) is None
