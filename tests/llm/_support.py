"""Building blocks for resolution tests: layers as plain data, and a clock for TTLs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from beamish.llm.hierarchy import Availability, Catalog, ResolutionInputs
from beamish.llm.settings import LLMSettings
from beamish.store import GlobalConfig, LLMParameters, Provider, TaskOverride, UserLLMConfig

NOW = datetime(2026, 1, 1, tzinfo=UTC)

OPEN = Availability(usable=("openai", "anthropic", "ollama", "echo"))
"""Every kind the tests use is usable."""


def params(**fields: Any) -> LLMParameters:
    """``LLMParameters`` from keyword fields."""
    return LLMParameters.model_validate(fields)


def user_config(provider: Provider, model: str, *, default: bool = False,
                **fields: Any) -> UserLLMConfig:
    """One provider config of user ada, parameters from keyword fields."""
    return UserLLMConfig(id=uuid4(), user_id="ada", provider=provider, model=model,
                         is_default=default, usage_count=0, parameters=params(**fields),
                         metadata={}, created_at=NOW, updated_at=NOW)


def override(provider: Provider, model: str, task_type: str = "chat",
             **fields: Any) -> TaskOverride:
    """Ada's override for ``task_type``."""
    return TaskOverride(task_type=task_type, provider=provider, model=model,
                        parameters=params(**fields))


def global_config(provider: Provider, model: str, tier: str = "*", task_type: str = "chat",
                  **fields: Any) -> GlobalConfig:
    """A global config of ``task_type`` for ``tier``."""
    return GlobalConfig(task_type=task_type, tier=tier, provider=provider, model=model,
                        parameters=params(**fields))


def inputs(*, settings: LLMSettings | None = None, availability: Availability = OPEN,
           catalog: Catalog | None = None, **layers: Any) -> ResolutionInputs:
    """Inputs for ada's ``chat`` on the free tier, every kind usable, no catalog."""
    fields: dict[str, Any] = {"task_type": "chat", "user_id": "ada", "tier": "free", **layers}
    return ResolutionInputs(settings=settings or LLMSettings(), availability=availability,
                            catalog=catalog or {}, **fields)
