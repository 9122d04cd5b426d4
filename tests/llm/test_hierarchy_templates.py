"""The prompt template a task uses: from the tier or any-tier config, with its layer."""

from __future__ import annotations

from beamish.llm.hierarchy import Availability, Layer, resolve_config
from beamish.store import GlobalConfig
from tests.llm._support import inputs, override


def named(template: str | None, tier: str = "*", label: str | None = None,
          provider: str = "openai") -> GlobalConfig:
    return GlobalConfig.model_validate({
        "task_type": "chat", "tier": tier, "provider": provider, "model": "m",
        "template": template, "template_label": label})


def test_no_template_anywhere_leaves_it_unset_with_no_source() -> None:
    """Without a template in any global config, the result has none and no source."""
    config = resolve_config(inputs(global_configs=(named(None),)))
    assert (config.template, config.template_label) == (None, None)
    assert "template" not in config.sources
    assert "template" not in config.explain()


def test_the_tier_configs_template_wins_over_the_any_tier_one() -> None:
    """A free user gets the free tier's template and label, sourced to tier_config."""
    configs = (named("digest-any"), named("digest-free", tier="free", label="staging"))
    config = resolve_config(inputs(global_configs=configs))
    assert (config.template, config.template_label) == ("digest-free", "staging")
    assert config.sources["template"] is Layer.TIER_CONFIG
    assert "  template: digest-free@staging (tier_config)" in config.explain().splitlines()


def test_a_tier_config_without_a_template_falls_to_the_any_tier_one() -> None:
    """The template comes from the highest layer that names one."""
    configs = (named("digest-any"), named(None, tier="free"))
    config = resolve_config(inputs(global_configs=configs))
    assert (config.template, config.sources["template"]) == ("digest-any", Layer.GLOBAL_CONFIG)


def test_the_template_holds_whichever_pair_is_picked() -> None:
    """A user override wins the pair; a global config whose pair was skipped still names
    the template."""
    unusable = Availability(usable=("echo",), unusable={"openai": "is disabled"})
    config = resolve_config(inputs(
        availability=unusable, global_configs=(named("digest"),),
        task_override=override("echo", "e", task_type="chat")))
    assert (config.provider, config.sources["provider"]) == ("echo", Layer.USER_TASK_OVERRIDE)
    assert (config.template, config.sources["template"]) == ("digest", Layer.GLOBAL_CONFIG)
