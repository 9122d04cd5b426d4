"""System LLM configuration: the ``[llm]`` table of ``beamish.toml`` and ``BEAMISH_LLM__*``.

``LLMSettings`` is the bottom of the resolution hierarchy (the *system default* layer) and
holds the knobs of the provider clients and of the resolution cache. It is a plain pydantic
model; ``beamish.settings.Settings`` reads it from the file and the environment::

    [llm]
    default_provider = "anthropic"
    default_model = "claude-sonnet-4"
    fallback_model = "openai:gpt-4o-mini"

    [llm.task_types.reasoning]          # merged over the built-in reasoning defaults
    provider = "openai"
    model = "o3"
    parameters = { timeout_s = 180 }

    [llm.providers.openai]
    api_key = "sk-..."                  # or BEAMISH_LLM__PROVIDERS__OPENAI__API_KEY

Options and their defaults:

* ``default_provider`` / ``default_model`` — ``"echo"`` / ``"echo-1"``: the offline echo
  provider, so a fresh install answers without any key.
* ``fallback_model`` — None. A model reference (``"provider:model"`` or a bare model of the
  resolved provider) tried when the resolved model fails, unless a higher layer sets
  ``fallback_models``.
* ``timeout_s`` — 60 (1 to 300); ``max_retries`` — 2 (0 to 10): the system defaults of every call.
* ``retry_backoff_base_s`` — 0.5; ``retry_backoff_cap_s`` — 30: exponential backoff with
  full jitter between retries.
* ``task_types`` — chat, reasoning, tools, subagents, planning, embeddings (see
  ``DEFAULT_TASK_TYPES``). Entries given in the file or the environment are merged over the
  built-in ones key by key, so ``task_types.reasoning.parameters.timeout_s = 180`` keeps the
  rest of the reasoning defaults. Task types are open: one not listed gets the system default.
* ``tiers`` — ``("free", "pro", "enterprise")``; ``default_tier`` — ``"free"``, the tier of a
  user without a profile (and of a profile whose tier is not listed, with a warning).
* ``cache_ttl_s`` — 300; ``cache_maxsize`` — 10,000 resolved configurations. The
  application caches prompt template versions for ``cache_ttl_s`` too
  (``beamish.templates.Templates``): the bound on how long another process's write
  goes unseen.
* ``providers`` — per provider kind: ``api_key``, ``base_url``, ``default_model``,
  ``enabled`` (True). A kind without an enabled provider registry row counts as *configured*
  when it has an ``api_key`` or ``base_url`` here (or ``OPENAI_API_KEY`` /
  ``ANTHROPIC_API_KEY`` is set); ``enabled = false`` turns a kind off whatever the registry
  says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from beamish.store.models import LLMParameters, Provider

ECHO_MODEL = "echo-1"
"""The model of the offline echo provider."""

PROVIDERS: tuple[Provider, ...] = get_args(Provider)
"""Every provider kind, in declaration order."""

STANDARD_KEY_ENV: Mapping[Provider, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}
"""The SDKs' own API key variables; a kind whose variable is set counts as configured."""


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProviderSettings(_Settings):
    """How to reach one provider kind when the provider registry does not say."""

    api_key: SecretStr | None = None
    base_url: str | None = None
    default_model: str | None = Field(default=None, min_length=1)
    enabled: bool = True

    @property
    def configured(self) -> bool:
        """Whether these settings alone make the kind usable."""
        return self.enabled and (self.api_key is not None or self.base_url is not None)


class TaskTypeSettings(_Settings):
    """The system default of one task type: an optional model and its parameters."""

    provider: Provider | None = None
    model: str | None = Field(default=None, min_length=1)
    parameters: LLMParameters = LLMParameters()
    description: str = ""

    @model_validator(mode="after")
    def _pair(self) -> TaskTypeSettings:
        if (self.provider is None) != (self.model is None):
            raise ValueError("a task type names both provider and model, or neither")
        return self


DEFAULT_TASK_TYPES: Mapping[str, TaskTypeSettings] = {
    "chat": TaskTypeSettings(description="conversation with a person",
                             parameters=LLMParameters(temperature=0.7)),
    "reasoning": TaskTypeSettings(description="long, careful answers",
                                  parameters=LLMParameters(temperature=0.2, timeout_s=120)),
    "tools": TaskTypeSettings(description="choosing and calling tools",
                              parameters=LLMParameters(temperature=0.0)),
    "subagents": TaskTypeSettings(description="delegated sub-tasks",
                                  parameters=LLMParameters(temperature=0.3)),
    "planning": TaskTypeSettings(description="breaking work into steps",
                                 parameters=LLMParameters(temperature=0.2)),
    "embeddings": TaskTypeSettings(description="vector embeddings of text",
                                   parameters=LLMParameters(timeout_s=30)),
}
"""The built-in task types; settings entries are merged over them."""


class LLMSettings(_Settings):
    """System LLM defaults, provider client knobs and the resolution cache (see module doc)."""

    default_provider: Provider = "echo"
    default_model: str = Field(default=ECHO_MODEL, min_length=1)
    fallback_model: str | None = Field(default=None, min_length=1)
    timeout_s: float = Field(default=60.0, ge=1, le=300)
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_base_s: float = Field(default=0.5, gt=0)
    retry_backoff_cap_s: float = Field(default=30.0, gt=0)
    task_types: dict[str, TaskTypeSettings] = Field(
        default_factory=lambda: dict(DEFAULT_TASK_TYPES))
    tiers: tuple[str, ...] = ("free", "pro", "enterprise")
    default_tier: str = "free"
    cache_ttl_s: float = Field(default=300.0, gt=0)
    cache_maxsize: int = Field(default=10_000, ge=1)
    providers: dict[Provider, ProviderSettings] = Field(default_factory=dict)

    @field_validator("task_types", mode="before")
    @classmethod
    def _merge_task_types(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        merged: dict[str, Any] = {name: t.model_dump(exclude_defaults=True)
                                  for name, t in DEFAULT_TASK_TYPES.items()}
        for name, given in value.items():
            if isinstance(given, BaseModel):
                given = given.model_dump(exclude_defaults=True)
            merged[name] = _deep_merge(merged.get(name, {}), given)
        return merged

    @model_validator(mode="after")
    def _check(self) -> LLMSettings:
        if self.default_tier not in self.tiers:
            raise ValueError(f"default_tier {self.default_tier!r} is not one of the tiers "
                             f"{list(self.tiers)}; add it to tiers or pick another")
        if self.retry_backoff_cap_s < self.retry_backoff_base_s:
            raise ValueError("retry_backoff_cap_s must be at least retry_backoff_base_s")
        return self

    def task_defaults(self, task_type: str) -> TaskTypeSettings:
        """The settings of ``task_type`` (empty ones for a task type not listed)."""
        return self.task_types.get(task_type) or _NO_TASK_DEFAULTS

    def system_parameters(self) -> LLMParameters:
        """The parameters every call gets when no layer sets them."""
        fallbacks = () if self.fallback_model is None else (self.fallback_model,)
        return LLMParameters(timeout_s=self.timeout_s, max_retries=self.max_retries,
                             fallback_models=fallbacks)

    def configured_providers(self, environ: Mapping[str, str]) -> frozenset[Provider]:
        """The kinds these settings or the SDKs' key variables in ``environ`` configure."""
        configured = {kind for kind, ps in self.providers.items() if ps.configured}
        configured.update(kind for kind, var in STANDARD_KEY_ENV.items() if environ.get(var))
        return frozenset(kind for kind in configured if self.provider_enabled(kind))

    def provider_enabled(self, kind: Provider) -> bool:
        """False when the settings turn ``kind`` off (``providers.<kind>.enabled = false``)."""
        entry = self.providers.get(kind)
        return entry is None or entry.enabled

    def provider_default_model(self, kind: Provider) -> str | None:
        """The model to use with ``kind`` when nothing else names one."""
        entry = self.providers.get(kind)
        if entry is not None and entry.default_model is not None:
            return entry.default_model
        return ECHO_MODEL if kind == "echo" else None


_NO_TASK_DEFAULTS = TaskTypeSettings()


def _deep_merge(base: Mapping[str, Any], update: Any) -> Any:
    if not isinstance(update, Mapping):
        return update
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _deep_merge(merged[key], value) if isinstance(merged.get(key),
                                                                    Mapping) else value
    return merged
