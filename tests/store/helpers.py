"""Building blocks shared by the usage tests."""

from __future__ import annotations

from beamish.store import NewLLMConfig, Store, UsageEvent


def usage(request_id: str, user_id: str = "ada", provider: str = "openai",
          prompt_tokens: int = 10, completion_tokens: int = 5) -> UsageEvent:
    """A usage event of ``user_id`` on ``provider``."""
    return UsageEvent.model_validate({
        "request_id": request_id, "user_id": user_id, "provider": provider, "model": "m",
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens})


async def configured_user(store: Store, user_id: str = "ada",
                          providers: tuple[str, ...] = ("openai",)) -> None:
    """Create a user with a config per provider (so usage is counted somewhere)."""
    await store.upsert_profile(user_id)
    for provider in providers:
        await store.add_config(user_id, NewLLMConfig.model_validate(
            {"provider": provider, "model": "m"}))


async def usage_count(store: Store, user_id: str = "ada", provider: str = "openai") -> int:
    """The config's usage counter."""
    return (await store.get_config(user_id, provider)).usage_count
