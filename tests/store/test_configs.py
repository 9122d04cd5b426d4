"""User profiles, provider configs, defaults, task overrides, providers, global configs, audit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from beamish.store import (
    ANY_TIER,
    ConfigNotFoundError,
    DuplicateConfigError,
    DuplicateProviderError,
    GlobalConfig,
    LLMParameters,
    NewLLMConfig,
    NotFoundError,
    ProviderModel,
    ProviderNotFoundError,
    ProviderRecord,
    Store,
    TaskOverride,
    UserNotFoundError,
)
from beamish.store._backend import utc_now

pytestmark = pytest.mark.anyio


async def test_profile_round_trips_and_upsert_replaces(store: Store) -> None:
    """upsert_profile creates, then replaces tier and preferences; get_profile reads it."""
    await store.upsert_profile("ada", llm_preferences={"tone": "terse"})
    await store.upsert_profile("ada", tier="premium", llm_preferences={"tone": "warm"})
    profile = await store.get_profile("ada")
    assert (profile.tier, profile.llm_preferences) == ("premium", {"tone": "warm"})


async def test_unknown_profile_is_a_beamish_error(store: Store) -> None:
    """Reading or deleting a missing profile raises UserNotFoundError naming the user."""
    with pytest.raises(UserNotFoundError, match="'ghost'"):
        await store.get_profile("ghost")
    with pytest.raises(UserNotFoundError):
        await store.delete_profile("ghost")


async def test_deleting_a_profile_cascades_to_configs(store: Store) -> None:
    """A deleted user's configs and overrides go with it."""
    await store.upsert_profile("ada")
    await store.add_config("ada", NewLLMConfig(provider="openai", model="gpt-4o"))
    await store.set_task_override("ada", TaskOverride(task_type="code", provider="openai",
                                                      model="gpt-4o"))
    await store.delete_profile("ada")
    assert await store.list_configs("ada") == []
    assert await store.list_task_overrides("ada") == []


async def test_add_config_round_trips_parameters_and_metadata(store: Store) -> None:
    """A config comes back with its parameters, metadata and a zero usage count."""
    await store.upsert_profile("ada")
    params = LLMParameters(temperature=0.2, max_tokens=512, timeout_s=30, max_retries=2,
                           fallback_models=("gpt-4o-mini",))
    added = await store.add_config("ada", NewLLMConfig(
        provider="openai", model="gpt-4o", parameters=params, metadata={"team": "x"}))
    got = await store.get_config("ada", "openai")
    assert got == added
    assert (got.parameters, got.metadata, got.usage_count) == (params, {"team": "x"}, 0)


async def test_duplicate_provider_config_is_refused(store: Store) -> None:
    """A second config for the same (user, provider) raises DuplicateConfigError."""
    await store.upsert_profile("ada")
    await store.add_config("ada", NewLLMConfig(provider="openai", model="gpt-4o"))
    with pytest.raises(DuplicateConfigError, match="'ada' already has a 'openai' config") as info:
        await store.add_config("ada", NewLLMConfig(provider="openai", model="o3"))
    assert (info.value.user_id, info.value.provider, info.value.kind) == ("ada", "openai",
                                                                          "unique")


async def test_config_for_unknown_user_is_refused(store: Store) -> None:
    """The user_profiles foreign key comes back as UserNotFoundError."""
    with pytest.raises(UserNotFoundError, match="'ghost'"):
        await store.add_config("ghost", NewLLMConfig(provider="openai", model="gpt-4o"))
    with pytest.raises(UserNotFoundError):
        await store.set_default("ghost", "openai", "gpt-4o")
    with pytest.raises(UserNotFoundError):
        await store.set_task_override("ghost", TaskOverride(task_type="code", provider="echo",
                                                            model="echo"))


def test_out_of_range_parameters_fail_before_the_database() -> None:
    """Timeouts outside 1-300 s and retries outside 0-10 are rejected by the model."""
    with pytest.raises(ValidationError):
        LLMParameters(timeout_s=301)
    with pytest.raises(ValidationError):
        LLMParameters(max_retries=11)


async def test_update_and_remove_config(store: Store) -> None:
    """update_config changes only the given fields; remove_config deletes the row."""
    await store.upsert_profile("ada")
    await store.add_config("ada", NewLLMConfig(provider="openai", model="gpt-4o",
                                               metadata={"a": 1}))
    updated = await store.update_config("ada", "openai", model="o3")
    assert (updated.model, updated.metadata) == ("o3", {"a": 1})
    await store.remove_config("ada", "openai")
    with pytest.raises(ConfigNotFoundError, match="no 'openai' config"):
        await store.get_config("ada", "openai")
    with pytest.raises(ConfigNotFoundError):
        await store.update_config("ada", "openai", model="x")
    with pytest.raises(ConfigNotFoundError):
        await store.remove_config("ada", "openai")


async def test_only_one_default_per_user(store: Store) -> None:
    """Setting a default clears the previous one; adding a default config does too."""
    await store.upsert_profile("ada")
    await store.add_config("ada", NewLLMConfig(provider="openai", model="gpt-4o",
                                               is_default=True))
    await store.set_default("ada", "anthropic", "claude-sonnet")
    await store.add_config("ada", NewLLMConfig(provider="ollama", model="llama3"))
    defaults = [c.provider for c in await store.list_configs("ada") if c.is_default]
    assert defaults == ["anthropic"]
    await store.add_config("ada", NewLLMConfig(provider="echo", model="echo", is_default=True))
    default = await store.get_default("ada")
    assert default is not None
    assert default.provider == "echo"
    assert [c.provider for c in await store.list_configs("ada") if c.is_default] == ["echo"]


async def test_set_default_updates_an_existing_config_in_place(store: Store) -> None:
    """set_default on a configured provider changes its model and keeps its id and usage."""
    await store.upsert_profile("ada")
    added = await store.add_config("ada", NewLLMConfig(provider="openai", model="gpt-4o"))
    default = await store.set_default("ada", "openai", "o3")
    assert (default.id, default.model, default.is_default) == (added.id, "o3", True)


async def test_no_default_is_none(store: Store) -> None:
    """get_default is None for a user without a default."""
    assert await store.get_default("ada") is None


async def test_task_overrides_crud(store: Store) -> None:
    """Overrides are created, replaced, listed and deleted per (user, task type)."""
    await store.upsert_profile("ada")
    first = TaskOverride(task_type="code", provider="openai", model="gpt-4o",
                         parameters=LLMParameters(timeout_s=120))
    await store.set_task_override("ada", first)
    second = first.model_copy(update={"model": "o3"})
    await store.set_task_override("ada", second)
    await store.set_task_override("ada", TaskOverride(task_type="chat", provider="echo",
                                                      model="echo"))
    assert await store.get_task_override("ada", "code") == second
    assert [o.task_type for o in await store.list_task_overrides("ada")] == ["chat", "code"]
    await store.delete_task_override("ada", "code")
    assert await store.get_task_override("ada", "code") is None
    with pytest.raises(NotFoundError, match="no override for task 'code'"):
        await store.delete_task_override("ada", "code")


async def test_provider_registry_keeps_ciphertext(store: Store) -> None:
    """A provider round-trips with its ciphertext bytes; names are unique."""
    record = ProviderRecord(name="corp-openai", kind="openai_compatible",
                            base_url="http://llm.internal/v1", api_key_ciphertext=b"\x00gAAAA")
    await store.register_provider(record)
    assert await store.get_provider("corp-openai") == record
    with pytest.raises(DuplicateProviderError, match="'corp-openai'"):
        await store.register_provider(record)
    validated = record.model_copy(update={"enabled": False, "validated_at": utc_now()})
    await store.update_provider(validated)
    assert await store.list_providers() == [validated]
    await store.remove_provider("corp-openai")
    with pytest.raises(ProviderNotFoundError):
        await store.get_provider("corp-openai")


async def test_provider_model_catalog_is_replaced(store: Store) -> None:
    """replace_provider_models swaps the whole catalog; unknown providers are refused."""
    await store.register_provider(ProviderRecord(name="local", kind="ollama"))
    now = utc_now()
    await store.replace_provider_models("local", [
        ProviderModel(provider="local", model="llama3", context_window=8192, discovered_at=now),
        ProviderModel(provider="local", model="qwen", discovered_at=now)])
    await store.replace_provider_models("local", [
        ProviderModel(provider="local", model="mistral", discovered_at=now)])
    assert [m.model for m in await store.list_provider_models("local")] == ["mistral"]
    with pytest.raises(ProviderNotFoundError):
        await store.replace_provider_models("ghost", [
            ProviderModel(provider="ghost", model="m", discovered_at=now)])


async def test_global_config_falls_back_to_any_tier(store: Store) -> None:
    """A tier's own entry wins; otherwise the '*' entry applies; upsert replaces."""
    await store.set_global_config(GlobalConfig(task_type="chat", provider="echo", model="a"))
    await store.set_global_config(GlobalConfig(task_type="chat", provider="echo", model="b"))
    premium = GlobalConfig(task_type="chat", tier="premium", provider="anthropic", model="c")
    await store.set_global_config(premium)
    assert await store.get_global_config("chat", "premium") == premium
    fallback = await store.get_global_config("chat", "free")
    assert fallback is not None
    assert (fallback.tier, fallback.model) == (ANY_TIER, "b")
    assert await store.get_global_config("code") is None
    assert len(await store.list_global_configs()) == 2


async def test_deleting_a_global_config_removes_exactly_that_entry(store: Store) -> None:
    """Deleting a tier's entry leaves the '*' one to apply; a missing entry is NotFoundError;
    the deletion is audited with what was there."""
    await store.set_global_config(GlobalConfig(task_type="chat", provider="echo", model="b"))
    await store.set_global_config(GlobalConfig(task_type="chat", tier="premium",
                                               provider="anthropic", model="c"))
    await store.delete_global_config("chat", "premium", actor="root")
    fallback = await store.get_global_config("chat", "premium")
    assert fallback is not None
    assert (fallback.tier, fallback.model) == (ANY_TIER, "b")
    with pytest.raises(NotFoundError, match="task 'chat' and tier 'premium'"):
        await store.delete_global_config("chat", "premium")
    await store.delete_global_config("chat")
    assert await store.list_global_configs() == []
    entries = await store.list_audit()
    assert [(e.actor, e.entity_key, e.action) for e in entries[:2]] == [
        ("system", "chat/*", "delete"), ("root", "chat/premium", "delete")]
    assert entries[1].before is not None
    assert entries[1].after is None


async def test_config_changes_are_audited(store: Store) -> None:
    """Each change writes who, what, before and after; newest first."""
    await store.upsert_profile("ada", actor="admin")
    await store.add_config("ada", NewLLMConfig(provider="openai", model="gpt-4o"), actor="ada")
    await store.update_config("ada", "openai", model="o3", actor="ada")
    await store.remove_config("ada", "openai", actor="admin")
    entries = await store.list_audit(user_id="ada")
    assert [(e.actor, e.entity, e.action) for e in entries] == [
        ("admin", "user_llm_config", "delete"),
        ("ada", "user_llm_config", "update"),
        ("ada", "user_llm_config", "create"),
        ("admin", "user_profile", "create"),
    ]
    update = entries[1]
    assert update.before is not None
    assert update.after is not None
    assert (update.before["model"], update.after["model"]) == ("gpt-4o", "o3")


async def test_audit_leaves_api_key_ciphertext_out(store: Store) -> None:
    """Provider audit rows never contain the ciphertext."""
    await store.register_provider(ProviderRecord(name="p", kind="openai",
                                                 api_key_ciphertext=b"secret"))
    (entry,) = await store.list_audit()
    assert entry.after is not None
    assert "api_key_ciphertext" not in entry.after
