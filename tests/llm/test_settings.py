"""``LLMSettings``: defaults, task type merging, validation, configured providers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from beamish.llm.settings import DEFAULT_TASK_TYPES, ECHO_MODEL, LLMSettings
from beamish.store import LLMParameters


def test_defaults() -> None:
    """Echo by default, 60 s timeout, 2 retries, a 300 s cache of 10,000 entries."""
    settings = LLMSettings()
    assert (settings.default_provider, settings.default_model) == ("echo", ECHO_MODEL)
    assert (settings.timeout_s, settings.max_retries, settings.fallback_model) == (60, 2, None)
    assert (settings.retry_backoff_base_s, settings.retry_backoff_cap_s) == (0.5, 30)
    assert (settings.cache_ttl_s, settings.cache_maxsize) == (300, 10_000)
    assert (settings.tiers, settings.default_tier) == (("free", "pro", "enterprise"), "free")
    assert set(settings.task_types) == {"chat", "reasoning", "tools", "subagents", "planning",
                                        "embeddings"}


def test_task_type_entries_merge_over_the_built_in_ones() -> None:
    """Setting one parameter of a built-in task type keeps its other defaults."""
    settings = LLMSettings.model_validate(
        {"task_types": {"reasoning": {"parameters": {"timeout_s": 180}},
                        "code": {"provider": "openai", "model": "o3"}}})
    reasoning = settings.task_types["reasoning"]
    assert reasoning.parameters == LLMParameters(temperature=0.2, timeout_s=180)
    assert reasoning.description == DEFAULT_TASK_TYPES["reasoning"].description
    assert (settings.task_defaults("code").provider, settings.task_defaults("code").model) == (
        "openai", "o3")
    assert "chat" in settings.task_types


def test_an_unlisted_task_type_has_empty_defaults() -> None:
    """task_defaults of an unknown task type names no model and sets no parameter."""
    defaults = LLMSettings().task_defaults("translate")
    assert (defaults.provider, defaults.model, defaults.parameters) == (
        None, None, LLMParameters())


def test_a_task_type_names_both_provider_and_model_or_neither() -> None:
    """A provider without a model is refused."""
    with pytest.raises(ValidationError, match="both provider and model"):
        LLMSettings.model_validate({"task_types": {"code": {"provider": "openai"}}})


def test_default_tier_must_be_a_tier() -> None:
    """default_tier outside tiers is refused with the list of tiers."""
    with pytest.raises(ValidationError, match="default_tier 'gold' is not one of the tiers"):
        LLMSettings(default_tier="gold")


def test_backoff_cap_below_base_is_refused() -> None:
    """The retry backoff cap cannot be below its base."""
    with pytest.raises(ValidationError, match="retry_backoff_cap_s"):
        LLMSettings(retry_backoff_base_s=5, retry_backoff_cap_s=1)


@pytest.mark.parametrize(("field", "value"), [("timeout_s", 0.5), ("timeout_s", 301),
                                              ("max_retries", 11), ("cache_ttl_s", 0)])
def test_out_of_range_values_are_refused(field: str, value: float) -> None:
    """Timeouts, retries and the cache TTL are range-checked."""
    with pytest.raises(ValidationError, match=field):
        LLMSettings.model_validate({field: value})


def test_configured_providers_from_settings_and_sdk_variables() -> None:
    """An api_key or base_url configures a kind, as do OPENAI_API_KEY / ANTHROPIC_API_KEY."""
    settings = LLMSettings.model_validate({"providers": {
        "ollama": {"base_url": "http://localhost:11434"},
        "tgi": {"default_model": "m"},
        "anthropic": {"api_key": "k", "enabled": False}}})
    assert settings.configured_providers({}) == {"ollama"}
    assert settings.configured_providers({"OPENAI_API_KEY": "sk", "ANTHROPIC_API_KEY": "k"}) == {
        "ollama", "openai"}
    assert settings.configured_providers({"OPENAI_API_KEY": ""}) == {"ollama"}


def test_provider_default_models() -> None:
    """Echo's model is built in; others come from providers.<kind>.default_model."""
    settings = LLMSettings.model_validate({"providers": {"ollama": {"default_model": "qwen"}}})
    assert settings.provider_default_model("echo") == ECHO_MODEL
    assert settings.provider_default_model("ollama") == "qwen"
    assert settings.provider_default_model("openai") is None


def test_system_parameters_carry_timeout_retries_and_the_fallback_model() -> None:
    """system_parameters() is what the system_default layer sets for every task."""
    settings = LLMSettings(timeout_s=10, max_retries=0, fallback_model="openai:gpt-4o-mini")
    assert settings.system_parameters() == LLMParameters(
        timeout_s=10, max_retries=0, fallback_models=("openai:gpt-4o-mini",))


def test_api_keys_are_masked() -> None:
    """A provider API key in settings never shows in repr."""
    settings = LLMSettings.model_validate({"providers": {"openai": {"api_key": "sk-secret"}}})
    assert "sk-secret" not in repr(settings)


@pytest.mark.parametrize("task_types", [["chat"], {"chat": "fast"}])
def test_malformed_task_types_are_refused(task_types: object) -> None:
    """task_types must be a table of tables."""
    with pytest.raises(ValidationError, match="task_types"):
        LLMSettings.model_validate({"task_types": task_types})
