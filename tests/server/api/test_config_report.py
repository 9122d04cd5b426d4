"""The config summary and validate-all, decided without a server (config_report)."""

from __future__ import annotations

from collections.abc import Mapping

from beamish.llm.settings import LLMSettings, TaskTypeSettings
from beamish.server.api.config_report import ConfigFacts, TierCheck, summary, validate
from beamish.server.api.models import CatalogModel
from beamish.store import GlobalConfig, Provider

FAKE_MODELS = (
    CatalogModel(provider="fake", kind="openai_compatible", model="model-a", source="registry",
                 serving=True),
    CatalogModel(provider="echo", kind="echo", model="echo-1", source="builtin", serving=True),
)


def _facts(*configs: GlobalConfig, settings: LLMSettings | None = None,
           serving: Mapping[str, Provider] | None = None,
           unavailable: Mapping[str, str] | None = None) -> ConfigFacts:
    return ConfigFacts(
        settings=settings or LLMSettings(), configs=configs, catalog=FAKE_MODELS,
        serving={"echo": "echo", "fake": "openai_compatible"} if serving is None else serving,
        unavailable=unavailable or {}, registered=frozenset({"fake"}))


def _check(facts: ConfigFacts, task_type: str, tier: str) -> TierCheck:
    (found,) = [c for c in validate(facts).checks
                if (c.task_type, c.tier) == (task_type, tier)]
    return found


def test_a_configuration_that_serves_everywhere_is_ok() -> None:
    """Defaults only: every task type and tier is served by the system default."""
    result = validate(_facts())
    assert result.ok
    assert {(c.provider, c.model, c.source) for c in result.checks} == {
        ("echo", "echo-1", "system default")}
    assert len(result.checks) == 6 * 3  # the built-in task types, each tier


def test_an_unknown_model_is_named_and_the_next_layer_serves() -> None:
    """A global config naming a model the provider's catalog lacks: unknown_model."""
    facts = _facts(GlobalConfig(task_type="chat", provider="openai_compatible",
                                model="model-z"))
    check = _check(facts, "chat", "pro")
    assert not check.ok
    assert [(p.kind, p.source) for p in check.problems] == [("unknown_model", "global config")]
    assert "fake does not list 'model-z'" in check.problems[0].message
    assert (check.provider, check.source) == ("echo", "system default")
    assert _check(facts, "reasoning", "pro").ok


def test_a_tier_config_on_a_provider_not_serving_says_why() -> None:
    """A tier config whose provider is not serving: provider_not_serving, with the reason."""
    facts = _facts(GlobalConfig(task_type="chat", tier="pro", provider="openai",
                                model="gpt-4o"),
                   unavailable={"openai": "OPENAI_API_KEY is not set"})
    problems = _check(facts, "chat", "pro").problems
    assert [(p.kind, p.source) for p in problems] == [("provider_not_serving", "tier config")]
    assert "OPENAI_API_KEY is not set" in problems[0].message
    assert _check(facts, "chat", "free").ok


def test_anthropic_for_embeddings_is_a_problem() -> None:
    """Anthropic named for the task type embeddings: no_embeddings, even when serving."""
    facts = _facts(GlobalConfig(task_type="embeddings", provider="anthropic", model="claude"),
                   serving={"echo": "echo", "anthropic": "anthropic"})
    assert [p.kind for p in _check(facts, "embeddings", "free").problems] == ["no_embeddings"]
    assert _check(facts, "chat", "free").ok


def test_no_usable_layer_is_no_usable_provider() -> None:
    """Every layer unusable, the system default too: no_usable_provider, nothing serving."""
    settings = LLMSettings(default_provider="openai", default_model="gpt-4o", task_types={
        "summarize": TaskTypeSettings(provider="anthropic", model="claude")})
    check = _check(_facts(settings=settings, serving={}), "summarize", "free")
    assert [(p.kind, p.source) for p in check.problems] == [
        ("provider_not_serving", "settings"), ("provider_not_serving", "system default"),
        ("no_usable_provider", None)]
    assert (check.ok, check.provider, check.model) == (False, None, None)


def test_task_types_named_only_by_a_global_config_are_checked() -> None:
    """A task type no setting names, configured globally, is checked too."""
    facts = _facts(GlobalConfig(task_type="triage", provider="openai_compatible",
                                model="model-a"))
    check = _check(facts, "triage", "enterprise")
    assert (check.ok, check.model, check.source) == (True, "model-a", "global config")


def test_the_summary_says_each_layer_and_provider_with_its_provenance() -> None:
    """The summary names the default, each task type's configs and where providers come from."""
    facts = _facts(GlobalConfig(task_type="chat", provider="openai_compatible",
                                model="model-a"),
                   GlobalConfig(task_type="chat", tier="pro", provider="echo", model="echo-1"),
                   unavailable={"openai": "OPENAI_API_KEY is not set"})
    text = summary(facts).text
    assert "System default: echo:echo-1 (from settings" in text
    assert "    every tier: openai_compatible:model-a (global config)\n" \
           "    tier pro: echo:echo-1 (tier config)" in text
    assert "  reasoning - long, careful answers\n    the system default" in text
    assert "  fake (openai_compatible): serving, from the registry" in text
    assert "  echo (echo): serving, built in" in text
    assert "  openai: not serving - OPENAI_API_KEY is not set" in text
