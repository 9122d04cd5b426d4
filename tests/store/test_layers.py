"""``Store.get_user_llm_layers``: what config resolution reads about a user, in one query."""

from __future__ import annotations

import pytest

from beamish.store import LLMParameters, NewLLMConfig, Store, TaskOverride, UserLLMLayers

pytestmark = pytest.mark.anyio


async def test_a_user_without_profile_has_no_layers(store: Store) -> None:
    """An unknown user reads as no profile, no configs, no override."""
    assert await store.get_user_llm_layers("ghost", "chat") == UserLLMLayers(profile=None)


async def test_profile_without_configs_or_override(store: Store) -> None:
    """A bare profile comes back alone, its tier intact."""
    await store.upsert_profile("ada", tier="pro")
    layers = await store.get_user_llm_layers("ada", "chat")
    assert layers.profile == await store.get_profile("ada")
    assert (layers.configs, layers.task_override) == ((), None)


async def test_layers_match_the_single_reads(store: Store) -> None:
    """Profile, every config (by provider) and the task's override equal the one-by-one reads."""
    await store.upsert_profile("ada", tier="pro", llm_preferences={"tone": "terse"})
    await store.add_config("ada", NewLLMConfig(
        provider="openai", model="gpt-4o", parameters=LLMParameters(temperature=0.2),
        metadata={"team": "x"}))
    await store.set_default("ada", "anthropic", "claude-sonnet")
    override = TaskOverride(task_type="code", provider="openai", model="o3",
                            parameters=LLMParameters(max_tokens=900))
    await store.set_task_override("ada", override)
    await store.set_task_override("ada", TaskOverride(task_type="chat", provider="echo",
                                                      model="echo-1"))
    layers = await store.get_user_llm_layers("ada", "code")
    assert layers.profile == await store.get_profile("ada")
    assert layers.configs == tuple(await store.list_configs("ada"))
    assert [c.provider for c in layers.configs] == ["anthropic", "openai"]
    assert layers.task_override == override


async def test_override_of_another_task_is_not_read(store: Store) -> None:
    """Only the override of the asked task type comes back."""
    await store.upsert_profile("ada")
    await store.add_config("ada", NewLLMConfig(provider="openai", model="gpt-4o"))
    await store.set_task_override("ada", TaskOverride(task_type="code", provider="openai",
                                                      model="o3"))
    layers = await store.get_user_llm_layers("ada", "chat")
    assert (len(layers.configs), layers.task_override) == (1, None)


async def test_other_users_are_not_mixed_in(store: Store) -> None:
    """Configs and overrides of another user never appear."""
    for user in ("ada", "bob"):
        await store.upsert_profile(user)
        await store.add_config(user, NewLLMConfig(provider="openai", model=f"m-{user}"))
        await store.set_task_override(user, TaskOverride(task_type="chat", provider="echo",
                                                         model=f"e-{user}"))
    layers = await store.get_user_llm_layers("bob", "chat")
    assert [c.model for c in layers.configs] == ["m-bob"]
    assert layers.task_override is not None
    assert layers.task_override.model == "e-bob"
