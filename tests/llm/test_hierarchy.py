"""The resolution rules, sans-I/O: every layer, every field's source, every fallback reason."""

from __future__ import annotations

from typing import Any

import pytest

from beamish.llm.errors import NoUsableProviderError, ResolutionError
from beamish.llm.hierarchy import (
    Availability,
    ConfigRequest,
    Layer,
    ResolvedConfig,
    build_catalog,
    parse_model_ref,
    resolve_config,
)
from beamish.llm.settings import LLMSettings, TaskTypeSettings
from beamish.store import LLMParameters, Provider, ProviderModel, ProviderRecord
from tests.llm._support import NOW, global_config, inputs, override, params, user_config

# -- the pair: which layer names provider and model ---------------------------------------

STACK: list[tuple[Layer, str, dict[str, Any]]] = [
    (Layer.REQUEST, "from-request",
     {"request": ConfigRequest(provider="openai", model="from-request")}),
    (Layer.USER_TASK_OVERRIDE, "from-override",
     {"task_override": override("openai", "from-override")}),
    (Layer.USER_DEFAULT, "from-default",
     {"user_configs": (user_config("openai", "from-default", default=True),)}),
    (Layer.TIER_CONFIG, "from-tier",
     {"global_configs": (global_config("openai", "from-tier", tier="free"),
                         global_config("openai", "from-global"))}),
    (Layer.GLOBAL_CONFIG, "from-global",
     {"global_configs": (global_config("openai", "from-global"),)}),
    (Layer.SYSTEM_DEFAULT, "echo-1", {}),
]


def _from(top: int) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for _, _, layer in reversed(STACK[top:]):
        merged.update(layer)
    return merged


@pytest.mark.parametrize("top", range(len(STACK)), ids=[str(layer) for layer, _, _ in STACK])
def test_the_pair_comes_from_the_highest_layer_naming_one(top: int) -> None:
    """With layers from ``top`` down present, provider and model come from ``top``."""
    layer, model, _ = STACK[top]
    config = resolve_config(inputs(**_from(top)))
    assert (config.sources["provider"], config.sources["model"]) == (layer, layer)
    assert config.model == model
    assert config.warnings == ()


def test_system_default_is_echo_when_nothing_is_configured() -> None:
    """No layers and default settings resolve to the offline echo provider."""
    config = resolve_config(inputs())
    assert (config.provider, config.model) == ("echo", "echo-1")
    assert config.sources["provider"] is Layer.SYSTEM_DEFAULT


def test_a_task_types_own_pair_is_the_system_default() -> None:
    """A task type naming a model in settings beats the system-wide default model."""
    settings = LLMSettings(task_types={"chat": TaskTypeSettings(provider="anthropic",
                                                                model="claude-haiku")})
    config = resolve_config(inputs(settings=settings))
    assert (config.provider, config.model) == ("anthropic", "claude-haiku")
    assert config.sources["model"] is Layer.SYSTEM_DEFAULT


def test_a_tier_config_applies_only_to_its_tier() -> None:
    """A pro-tier global config is ignored for a free user, who gets the any-tier one."""
    configs = (global_config("openai", "pro-model", tier="pro"),
               global_config("openai", "any-model"))
    free = resolve_config(inputs(global_configs=configs))
    pro = resolve_config(inputs(global_configs=configs, tier="pro"))
    assert (free.model, free.sources["model"]) == ("any-model", Layer.GLOBAL_CONFIG)
    assert (pro.model, pro.sources["model"]) == ("pro-model", Layer.TIER_CONFIG)
    assert pro.tier == "pro"


def test_first_available_when_every_layer_is_skipped() -> None:
    """A system default on an unconfigured provider falls to the first usable one."""
    settings = LLMSettings(default_provider="openai", default_model="gpt-4o")
    availability = Availability(usable=("anthropic", "echo"))
    config = resolve_config(inputs(
        settings=settings, availability=availability,
        catalog={"anthropic": {"claude-haiku": 200_000, "claude-sonnet": 200_000}}))
    assert (config.provider, config.model) == ("anthropic", "claude-haiku")
    assert config.sources["model"] is Layer.FIRST_AVAILABLE
    assert config.warnings == (
        "system_default: skipped openai:gpt-4o: provider 'openai' is not available",)


def test_first_available_prefers_the_kinds_default_model_then_skips_kinds_without_one() -> None:
    """A kind with no known model is passed over; a configured default_model is used."""
    settings = LLMSettings.model_validate({
        "default_provider": "openai", "default_model": "gpt-4o",
        "providers": {"ollama": {"base_url": "http://localhost:11434",
                                 "default_model": "llama3.1:8b"}}})
    availability = Availability(usable=("tgi", "ollama", "echo"))
    config = resolve_config(inputs(settings=settings, availability=availability))
    assert (config.provider, config.model) == ("ollama", "llama3.1:8b")


def test_nothing_usable_raises_with_every_reason() -> None:
    """When even echo is off, NoUsableProviderError lists what was skipped and why."""
    availability = Availability(usable=(), unusable={"echo": "is disabled in the registry"})
    with pytest.raises(NoUsableProviderError) as info:
        resolve_config(inputs(availability=availability,
                              task_override=override("openai", "gpt-4o")))
    assert isinstance(info.value, ResolutionError)
    assert info.value.warnings == (
        "user_task_override: skipped openai:gpt-4o: provider 'openai' is not available",
        "system_default: skipped echo:echo-1: provider 'echo' is disabled in the registry")
    assert "task 'chat' (user 'ada')" in str(info.value)
    assert "Enable a provider" in str(info.value)


# -- requests naming part of a pair ---------------------------------------------------------


def test_request_naming_a_provider_takes_the_users_config_for_it() -> None:
    """A request for anthropic only gets the model of ada's anthropic config."""
    config = resolve_config(inputs(
        request=ConfigRequest(provider="anthropic"),
        user_configs=(user_config("openai", "gpt-4o", default=True),
                      user_config("anthropic", "claude-sonnet"))))
    assert (config.provider, config.model) == ("anthropic", "claude-sonnet")
    assert config.sources["provider"] is Layer.REQUEST
    assert config.sources["model"] is Layer.USER_PROVIDER_CONFIG


def test_request_naming_a_provider_takes_a_lower_layers_model_for_it() -> None:
    """Without a user config for it, the highest layer naming that provider gives the model."""
    config = resolve_config(inputs(
        request=ConfigRequest(provider="anthropic"),
        task_override=override("openai", "gpt-4o"),
        global_configs=(global_config("anthropic", "claude-opus"),)))
    assert (config.model, config.sources["model"]) == ("claude-opus", Layer.GLOBAL_CONFIG)


def test_request_naming_a_provider_takes_its_settings_default_model() -> None:
    """No layer names the provider: its ``default_model`` in settings is used."""
    settings = LLMSettings.model_validate(
        {"providers": {"anthropic": {"api_key": "k", "default_model": "claude-haiku"}}})
    config = resolve_config(inputs(settings=settings,
                                   request=ConfigRequest(provider="anthropic")))
    assert (config.model, config.sources["model"]) == ("claude-haiku", Layer.SYSTEM_DEFAULT)


def test_request_naming_a_provider_takes_the_first_catalog_model() -> None:
    """Last resort for a provider-only request: the first model of its catalog."""
    config = resolve_config(inputs(request=ConfigRequest(provider="openai"),
                                   catalog={"openai": {"gpt-4o": None, "o3": None}}))
    assert (config.model, config.sources["model"]) == ("gpt-4o", Layer.FIRST_AVAILABLE)


def test_request_naming_a_provider_without_any_model_falls_through() -> None:
    """No model anywhere for the requested provider: the request is skipped, visibly."""
    config = resolve_config(inputs(request=ConfigRequest(provider="openai")))
    assert (config.provider, config.sources["provider"]) == ("echo", Layer.SYSTEM_DEFAULT)
    assert config.warnings == (
        "request: skipped provider 'openai': no layer names a model for it, settings give it "
        "no default_model and its catalog is empty; name a model in the request",)


def test_request_naming_an_unusable_provider_falls_through() -> None:
    """A provider-only request for a kind that is not usable is skipped with the reason."""
    availability = Availability(usable=("echo",), unusable={"openai": "is switched off"})
    config = resolve_config(inputs(availability=availability,
                                   request=ConfigRequest(provider="openai")))
    assert config.provider == "echo"
    assert config.warnings == ("request: skipped provider 'openai': provider 'openai' "
                               "is switched off",)


def test_request_model_from_the_catalog_skips_unknown_ones() -> None:
    """Candidate models for a provider-only request are checked against the catalog."""
    config = resolve_config(inputs(
        request=ConfigRequest(provider="openai"),
        user_configs=(user_config("openai", "gpt-3"),),
        catalog={"openai": {"gpt-4o": None}}))
    assert (config.model, config.sources["model"]) == ("gpt-4o", Layer.FIRST_AVAILABLE)
    assert config.warnings == ("user_provider_config: skipped openai:gpt-3: model 'gpt-3' "
                               "is not in the openai catalog",)


def test_request_naming_a_model_keeps_the_resolved_provider() -> None:
    """A model-only request pairs with the provider the layers below resolve to."""
    config = resolve_config(inputs(request=ConfigRequest(model="gpt-4o-mini"),
                                   task_override=override("openai", "gpt-4o")))
    assert (config.provider, config.model) == ("openai", "gpt-4o-mini")
    assert config.sources["provider"] is Layer.USER_TASK_OVERRIDE
    assert config.sources["model"] is Layer.REQUEST


def test_request_naming_an_unknown_model_is_skipped() -> None:
    """A model-only request for a model the catalog does not know keeps the lower model."""
    config = resolve_config(inputs(request=ConfigRequest(model="gpt-9"),
                                   task_override=override("openai", "gpt-4o"),
                                   catalog={"openai": {"gpt-4o": None}}))
    assert (config.model, config.sources["model"]) == ("gpt-4o", Layer.USER_TASK_OVERRIDE)
    assert config.warnings == ("request: skipped model 'gpt-9': model 'gpt-9' is not in the "
                               "openai catalog",)


def test_request_naming_an_invalid_pair_is_skipped() -> None:
    """A request naming both, with an unknown model, falls to the stored layers."""
    config = resolve_config(inputs(request=ConfigRequest(provider="openai", model="gpt-9"),
                                   user_configs=(user_config("openai", "gpt-4o", default=True),),
                                   catalog={"openai": {"gpt-4o": None}}))
    assert (config.model, config.sources["model"]) == ("gpt-4o", Layer.USER_DEFAULT)
    assert config.warnings == ("request: skipped openai:gpt-9: model 'gpt-9' is not in the "
                               "openai catalog",)


# -- invalid stored preferences fall to the next layer, visibly -----------------------------


def test_disabled_provider_falls_to_the_next_layer() -> None:
    """A default on a provider disabled in the registry is skipped for the global config."""
    registry = [ProviderRecord(name="openai", kind="openai", enabled=False),
                ProviderRecord(name="claude", kind="anthropic")]
    availability = Availability.of(registry, LLMSettings(), frozenset())
    config = resolve_config(inputs(
        availability=availability,
        user_configs=(user_config("openai", "gpt-4o", default=True),),
        global_configs=(global_config("anthropic", "claude-sonnet"),)))
    assert (config.model, config.sources["model"]) == ("claude-sonnet", Layer.GLOBAL_CONFIG)
    assert config.warnings == ("user_default: skipped openai:gpt-4o: provider 'openai' is "
                               "disabled in the provider registry",)


def test_a_row_with_a_base_url_the_client_refuses_is_not_offered() -> None:
    """A broken row does not make its kind usable; the skip says why and where to look."""
    registry = [ProviderRecord(name="pasted", kind="ollama",
                               base_url="http://loc\u200balhost:11434/v1")]
    availability = Availability.of(registry, LLMSettings(), frozenset())
    assert availability.usable == ("echo",)
    config = resolve_config(inputs(availability=availability,
                                   task_override=override("ollama", "llama3")))
    assert config.provider == "echo"
    assert config.warnings == (
        "user_task_override: skipped ollama:llama3: provider 'ollama' has registry rows only "
        "with a base URL the HTTP client cannot use (GET /api/admin/providers says which)",)


def test_unconfigured_provider_falls_to_the_next_layer() -> None:
    """A kind with no registry row and no settings is not usable, and says so."""
    availability = Availability.of([], LLMSettings(), frozenset())
    config = resolve_config(inputs(availability=availability,
                                   task_override=override("anthropic", "claude-sonnet")))
    assert config.provider == "echo"
    assert config.warnings == (
        "user_task_override: skipped anthropic:claude-sonnet: provider 'anthropic' is not "
        "configured (no registry entry, no api_key or base_url in settings)",)


def test_provider_disabled_in_settings_falls_to_the_next_layer() -> None:
    """``enabled = false`` in settings beats an enabled registry row."""
    settings = LLMSettings.model_validate({"providers": {"openai": {"enabled": False}}})
    availability = Availability.of([ProviderRecord(name="openai", kind="openai")], settings,
                                   frozenset())
    config = resolve_config(inputs(settings=settings, availability=availability,
                                   task_override=override("openai", "gpt-4o")))
    assert config.provider == "echo"
    assert config.warnings == (
        "user_task_override: skipped openai:gpt-4o: provider 'openai' is disabled in "
        "settings (llm.providers.openai.enabled = false)",)


def test_model_unknown_to_the_catalog_falls_to_the_next_layer() -> None:
    """An override naming a model the provider's catalog lacks is skipped for the tier's."""
    config = resolve_config(inputs(
        task_override=override("openai", "gpt-3"),
        global_configs=(global_config("openai", "gpt-4o", tier="free"),),
        catalog={"openai": {"gpt-4o": 128_000}}))
    assert (config.model, config.sources["model"]) == ("gpt-4o", Layer.TIER_CONFIG)
    assert config.warnings == ("user_task_override: skipped openai:gpt-3: model 'gpt-3' is "
                               "not in the openai catalog",)


def test_an_empty_catalog_accepts_any_model() -> None:
    """Only a non-empty catalog is checked: an undiscovered provider takes any model name."""
    config = resolve_config(inputs(task_override=override("ollama", "llama3.1:8b"),
                                   catalog={"openai": {"gpt-4o": None}, "ollama": {}}))
    assert (config.provider, config.model, config.warnings) == ("ollama", "llama3.1:8b", ())


def test_max_tokens_above_the_context_window_falls_to_the_next_layer() -> None:
    """An override's max_tokens beyond the model's window gives way to the global config's."""
    config = resolve_config(inputs(
        task_override=override("openai", "gpt-4o", max_tokens=200_000),
        global_configs=(global_config("openai", "gpt-4o", max_tokens=4096),),
        catalog={"openai": {"gpt-4o": 128_000}}))
    assert config.parameters.max_tokens == 4096
    assert config.sources["max_tokens"] is Layer.GLOBAL_CONFIG
    assert config.warnings == ("user_task_override: skipped max_tokens=200000: exceeds the "
                               "128000-token context window of openai:gpt-4o",)


def test_max_tokens_is_unchecked_when_the_window_is_unknown() -> None:
    """A catalog entry without a context window sets no max_tokens limit."""
    config = resolve_config(inputs(task_override=override("openai", "gpt-4o",
                                                          max_tokens=1_000_000),
                                   catalog={"openai": {"gpt-4o": None}}))
    assert (config.parameters.max_tokens, config.warnings) == (1_000_000, ())


def test_anthropic_temperature_above_one_falls_to_the_next_layer() -> None:
    """Temperature 1.5 is valid for OpenAI but not Anthropic: the chat default is used."""
    config = resolve_config(inputs(task_override=override("anthropic", "claude-sonnet",
                                                          temperature=1.5)))
    assert config.parameters.temperature == 0.7
    assert config.sources["temperature"] is Layer.SYSTEM_DEFAULT
    assert config.warnings == ("user_task_override: skipped temperature=1.5: anthropic "
                               "accepts a temperature of at most 1.0",)


def test_unknown_tier_resolves_as_the_default_tier() -> None:
    """A profile tier missing from settings is resolved as the default tier, with a warning."""
    configs = (global_config("openai", "free-model", tier="free"),
               global_config("openai", "gold-model", tier="gold"))
    config = resolve_config(inputs(tier="gold", global_configs=configs))
    assert (config.tier, config.model) == ("free", "free-model")
    assert config.warnings == ("tier_config: skipped tier 'gold' of user 'ada': not one of "
                               "the configured tiers (free, pro, enterprise); resolved as "
                               "'free'",)


def test_no_profile_means_the_default_tier_silently() -> None:
    """Without a profile (tier None) the default tier applies and nothing is warned."""
    config = resolve_config(inputs(tier=None, user_id=None))
    assert (config.tier, config.user_id, config.warnings) == ("free", None, ())


# -- parameters, field by field --------------------------------------------------------------


def test_each_parameter_comes_from_the_highest_layer_setting_it() -> None:
    """Six fields, six layers: each field's value and source is the highest setting it."""
    settings = LLMSettings(fallback_model="echo:echo-1")
    config = resolve_config(inputs(
        settings=settings,
        request=ConfigRequest(parameters=params(temperature=0.1)),
        task_override=override("openai", "gpt-4o", temperature=0.9, max_tokens=100),
        user_configs=(user_config("openai", "gpt-4o-mini", default=True, max_tokens=9,
                                  top_p=0.5),),
        global_configs=(global_config("openai", "x", tier="free", top_p=0.1, timeout_s=20),
                        global_config("openai", "y", timeout_s=99, max_retries=5))))
    assert config.parameters == LLMParameters(
        temperature=0.1, max_tokens=100, top_p=0.5, timeout_s=20, max_retries=5,
        fallback_models=("echo:echo-1",))
    assert dict(config.sources) == {
        "provider": Layer.USER_TASK_OVERRIDE, "model": Layer.USER_TASK_OVERRIDE,
        "temperature": Layer.REQUEST, "max_tokens": Layer.USER_TASK_OVERRIDE,
        "top_p": Layer.USER_DEFAULT, "timeout_s": Layer.TIER_CONFIG,
        "max_retries": Layer.GLOBAL_CONFIG, "fallback_models": Layer.SYSTEM_DEFAULT}


def test_system_defaults_fill_timeout_and_retries_and_unset_fields_have_no_source() -> None:
    """Settings supply timeout_s and max_retries; fields nobody sets stay unset, unsourced."""
    settings = LLMSettings(timeout_s=42, max_retries=7)
    config = resolve_config(inputs(settings=settings, task_type="tools"))
    assert (config.parameters.timeout_s, config.parameters.max_retries) == (42, 7)
    assert config.parameters.temperature == 0.0  # the tools task type's default
    assert set(config.sources) == {"provider", "model", "temperature", "timeout_s",
                                   "max_retries"}
    assert (config.parameters.max_tokens, config.parameters.top_p) == (None, None)


def test_task_type_defaults_beat_system_defaults() -> None:
    """The reasoning task type's timeout (120 s) replaces the system-wide 60 s."""
    config = resolve_config(inputs(task_type="reasoning"))
    assert (config.parameters.timeout_s, config.parameters.temperature) == (120, 0.2)
    assert config.sources["timeout_s"] is Layer.SYSTEM_DEFAULT


def test_user_provider_config_parameters_apply_to_their_provider() -> None:
    """Requesting anthropic uses the anthropic config's parameters, not the default's."""
    config = resolve_config(inputs(
        request=ConfigRequest(provider="anthropic"),
        user_configs=(user_config("openai", "gpt-4o", default=True, temperature=0.9,
                                  max_tokens=50),
                      user_config("anthropic", "claude-sonnet", temperature=0.3))))
    assert config.parameters.temperature == 0.3
    assert config.sources["temperature"] is Layer.USER_PROVIDER_CONFIG
    assert config.parameters.max_tokens is None
    assert config.warnings == ()


def test_user_provider_config_ranks_below_the_override() -> None:
    """The override's value beats the user's provider config's for the same field."""
    config = resolve_config(inputs(
        request=ConfigRequest(provider="anthropic"),
        task_override=override("openai", "gpt-4o", temperature=0.5),
        user_configs=(user_config("anthropic", "claude-sonnet", temperature=0.3,
                                  top_p=0.2),)))
    assert (config.parameters.temperature, config.parameters.top_p) == (0.5, 0.2)
    assert config.sources["temperature"] is Layer.USER_TASK_OVERRIDE
    assert config.sources["top_p"] is Layer.USER_PROVIDER_CONFIG


def test_user_provider_config_applies_when_the_pair_comes_from_elsewhere() -> None:
    """A global config picking openai still gets the user's openai config's parameters."""
    config = resolve_config(inputs(
        user_configs=(user_config("openai", "gpt-4o-mini", max_tokens=300),),
        global_configs=(global_config("openai", "gpt-4o", max_tokens=900),)))
    assert (config.model, config.parameters.max_tokens) == ("gpt-4o", 300)
    assert config.sources["max_tokens"] is Layer.USER_PROVIDER_CONFIG


def test_skipped_override_still_supplies_task_parameters() -> None:
    """An override whose provider is off still sets the task's parameters, checked as usual."""
    availability = Availability(usable=("echo",))
    config = resolve_config(inputs(availability=availability,
                                   task_override=override("openai", "gpt-4o", top_p=0.4)))
    assert (config.provider, config.parameters.top_p) == ("echo", 0.4)
    assert config.sources["top_p"] is Layer.USER_TASK_OVERRIDE


# -- fallback models ---------------------------------------------------------------------------


def test_fallback_entries_are_qualified_deduplicated_and_exclude_the_primary() -> None:
    """Bare entries take the resolved provider; duplicates and the primary model go."""
    config = resolve_config(inputs(task_override=override(
        "ollama", "llama3.1:8b",
        fallback_models=("llama3.1:8b", "qwen2:7b", "ollama:qwen2:7b", "openai:gpt-4o"))))
    assert config.parameters.fallback_models == ("ollama:qwen2:7b", "openai:gpt-4o")
    assert config.fallback_chain == (("ollama", "qwen2:7b"), ("openai", "gpt-4o"))
    assert config.warnings == ()


def test_invalid_fallback_entries_are_dropped_with_a_reason() -> None:
    """Unusable provider, unknown model and empty model each drop their entry, visibly."""
    availability = Availability(usable=("openai", "echo"), unusable={"anthropic": "is off"})
    config = resolve_config(inputs(
        availability=availability, catalog={"openai": {"gpt-4o": None, "o3": None}},
        task_override=override("openai", "gpt-4o", fallback_models=(
            "anthropic:claude", "gpt-9", "openai:", "o3"))))
    assert config.parameters.fallback_models == ("openai:o3",)
    assert config.warnings == (
        "user_task_override: skipped fallback 'anthropic:claude': provider 'anthropic' is off",
        "user_task_override: skipped fallback 'gpt-9': model 'gpt-9' is not in the openai "
        "catalog",
        "user_task_override: skipped fallback 'openai:': the model name is empty")


def test_a_layer_whose_fallbacks_all_drop_gives_way_to_the_next() -> None:
    """When none of a layer's fallback entries is usable, the next layer's list applies."""
    config = resolve_config(inputs(
        settings=LLMSettings(fallback_model="echo:echo-1"),
        task_override=override("openai", "gpt-4o", fallback_models=("anthropic:claude",)),
        availability=Availability(usable=("openai", "echo"))))
    assert config.parameters.fallback_models == ("echo:echo-1",)
    assert config.sources["fallback_models"] is Layer.SYSTEM_DEFAULT
    assert len(config.warnings) == 1


@pytest.mark.parametrize(("ref", "expected"), [
    ("openai:gpt-4o", ("openai", "gpt-4o")),
    ("gpt-4o", ("ollama", "gpt-4o")),
    ("llama3.1:8b", ("ollama", "llama3.1:8b")),
    ("ollama:llama3.1:8b", ("ollama", "llama3.1:8b")),
    ("openai_compatible:mistral", ("openai_compatible", "mistral")),
])
def test_parse_model_ref(ref: str, expected: tuple[Provider, str]) -> None:
    """Only a provider kind before the first colon is a prefix; anything else is a model."""
    assert parse_model_ref(ref, "ollama") == expected


# -- availability and catalog ----------------------------------------------------------------


def test_availability_orders_registry_then_configured_then_echo() -> None:
    """Enabled registry kinds by name, then settings/env kinds, then echo; reasons for the rest."""
    registry = [ProviderRecord(name="z-claude", kind="anthropic"),
                ProviderRecord(name="a-local", kind="ollama"),
                ProviderRecord(name="b-local", kind="ollama"),
                ProviderRecord(name="tgi", kind="tgi", enabled=False)]
    availability = Availability.of(registry, LLMSettings(), frozenset({"openai"}))
    assert availability.usable == ("ollama", "anthropic", "openai", "echo")
    assert availability.problem("tgi") == "provider 'tgi' is disabled in the provider registry"
    assert availability.problem("openai_compatible") == (
        "provider 'openai_compatible' is not configured (no registry entry, no api_key or "
        "base_url in settings)")
    assert availability.problem("echo") is None


def test_a_disabled_echo_row_turns_echo_off() -> None:
    """Echo is usable without a row, but not when its registry row is disabled."""
    availability = Availability.of([ProviderRecord(name="echo", kind="echo", enabled=False)],
                                   LLMSettings(), frozenset())
    assert availability.usable == ()


def test_a_kind_with_one_enabled_row_is_usable() -> None:
    """Of two rows of a kind, one enabled is enough."""
    registry = [ProviderRecord(name="a", kind="openai", enabled=False),
                ProviderRecord(name="b", kind="openai")]
    assert Availability.of(registry, LLMSettings(), frozenset()).problem("openai") is None


def test_catalog_pools_enabled_rows_and_keeps_the_smaller_window() -> None:
    """Rows of one kind pool their models; disabled rows' models are not in the catalog."""
    registry = [ProviderRecord(name="a", kind="openai"), ProviderRecord(name="b", kind="openai"),
                ProviderRecord(name="c", kind="anthropic", enabled=False)]

    def model(provider: str, name: str, window: int | None) -> ProviderModel:
        return ProviderModel(provider=provider, model=name, context_window=window,
                             discovered_at=NOW)

    catalog = build_catalog(registry, {
        "a": [model("a", "gpt-4o", 128_000), model("a", "o3", None)],
        "b": [model("b", "gpt-4o", 64_000), model("b", "o3", 200_000)],
        "c": [model("c", "claude", 1)]})
    assert catalog == {"openai": {"gpt-4o": 64_000, "o3": 200_000}}


# -- the result ------------------------------------------------------------------------------


def test_explain_lists_every_field_with_its_source_and_the_warnings() -> None:
    """explain() prints one line per field (unset ones too), then each warning."""
    config = resolve_config(inputs(task_override=override("anthropic", "claude",
                                                          temperature=1.5)))
    assert config.explain().splitlines() == [
        "user 'ada', task 'chat', tier 'free':",
        "  provider: anthropic (user_task_override)",
        "  model: claude (user_task_override)",
        "  temperature: 0.7 (system_default)",
        "  max_tokens: unset",
        "  top_p: unset",
        "  timeout_s: 60.0 (system_default)",
        "  max_retries: 2 (system_default)",
        "  fallback_models: unset",
        "  warning: user_task_override: skipped temperature=1.5: anthropic accepts a "
        "temperature of at most 1.0"]


def test_resolved_config_is_frozen() -> None:
    """A resolved configuration cannot be changed (it is shared from the cache)."""
    config = resolve_config(inputs())
    with pytest.raises(ValueError, match="frozen"):
        config.model = "other"
    assert isinstance(config, ResolvedConfig)


def test_inputs_are_not_changed_by_resolving() -> None:
    """Resolving twice from the same inputs gives equal results (no hidden state)."""
    layers = inputs(task_override=override("openai", "gpt-9"),
                    catalog={"openai": {"gpt-4o": None}})
    assert resolve_config(layers) == resolve_config(layers)
