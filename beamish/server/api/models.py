"""Request and response models shared by several routers, and the names paths accept.

Store models (``UserLLMConfig``, ``TaskOverride``, ``GlobalConfig``, ``AuditEntry``, the
usage rows, ``SessionInfo``) are answered as they are: they hold no secret. The provider
registry row is never answered (it holds the key's ciphertext); ``ProviderView`` is.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from beamish.auth.names import NAME_PATTERN
from beamish.llm.hierarchy import ResolvedConfig
from beamish.store.models import LLMParameters, Provider
from beamish.store.text import NO_NUL

# Free text (names, paths' user ids) holds no NUL character, which the store cannot hold on
# PostgreSQL: ``NO_NUL`` refuses it with the field's 422 (``beamish.store.text``).
UserId = Annotated[str, Path(min_length=1, max_length=256,
                             description="the user (1 to 256 characters)"), NO_NUL]
TaskType = Annotated[str, Path(pattern=NAME_PATTERN, description="e.g. chat, reasoning")]
SessionId = Annotated[str, Path(pattern=NAME_PATTERN, description="a session id")]
ProviderName = Annotated[str, Path(min_length=1, max_length=255,
                                   description="a provider's registry name"), NO_NUL]
Name = Annotated[str, Field(min_length=1, max_length=255), NO_NUL]


class Body(BaseModel):
    """Base of request bodies: unknown fields are an error, so typos do not go unnoticed."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """Base of response models."""

    model_config = ConfigDict(frozen=True)


class ConfigView(Out):
    """A resolved configuration: what a call uses, and where each value came from.

    ``sources`` maps ``provider``, ``model`` and every set parameter to its layer
    (``request``, ``user_task_override``, ``user_default``, ``user_provider_config``,
    ``tier_config``, ``global_config``, ``system_default``, ``first_available``);
    ``warnings`` names what resolution skipped, and why.
    """

    user_id: str | None
    task_type: str
    tier: str
    provider: Provider
    model: str
    parameters: LLMParameters
    sources: dict[str, str]
    warnings: tuple[str, ...]
    template: str | None = Field(
        default=None, exclude_if=lambda template: template is None,
        description="the prompt template a global config names for the task (its layer: "
                    "sources.template); absent when none does")
    template_label: str | None = Field(
        default=None, exclude_if=lambda label: label is None,
        description="the label of the template served; absent for production")

    @classmethod
    def of(cls, config: ResolvedConfig) -> ConfigView:
        """The view of ``config``."""
        return cls(user_id=config.user_id, task_type=config.task_type, tier=config.tier,
                   provider=config.provider, model=config.model, parameters=config.parameters,
                   sources={k: str(v) for k, v in config.sources.items()},
                   warnings=config.warnings, template=config.template,
                   template_label=config.template_label)


class UsageView(Out):
    """Tokens one answer took."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CatalogModel(Out):
    """One model beamish can call.

    Attributes:
        provider: the provider's registry name (``echo``, ``openai``, ``vllm-local``).
        kind: the provider kind.
        model: the model's name.
        context_window: its context window in tokens, when the provider said.
        source: ``registry`` (discovered from a registered provider), ``settings`` (the
            default model of a provider configured in settings) or ``builtin`` (echo).
        serving: whether the running server can call this provider now (a provider
            registered since the server started is served after a restart).
    """

    provider: str
    kind: Provider
    model: str
    context_window: int | None = None
    source: Literal["registry", "settings", "builtin"]
    serving: bool


__all__ = [
    "NAME_PATTERN", "Body", "CatalogModel", "ConfigView", "Name", "Out", "ProviderName",
    "SessionId", "TaskType", "UsageView", "UserId",
]
