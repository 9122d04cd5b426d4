"""Users' LLM configuration and usage: ``/api/users/{user_id}/...`` and ``/api/llm/...``.

A token reaches its own user's data; an admin token reaches everyone's (403 otherwise).
Every write goes to the store, whose change events drop the cached preferences — the
resolver's and every open session's — before it returns, and is audited with the caller as
actor.

* ``GET /api/users/{u}/llm-config`` — the user's whole configuration: tier, default,
  per-provider configs, per-task overrides.
* ``PUT`` — make ``{provider, model}`` the default (``parameters``, when given, replace
  the default config's); ``DELETE`` — remove every config and override (the profile and
  its tier stay), so the user falls back to the tier, global and system defaults.
* ``.../llm-config/providers/{provider}`` — one per-provider config (``PUT`` creates or
  updates it; ``is_default`` also makes it the default).
* ``.../llm-config/tasks/{task_type}`` — one per-task override.
* ``GET /api/users/{u}/usage`` — totals in a window (``since`` inclusive, ``until``
  exclusive), per provider/model and per task type; ``provider``, ``model`` and
  ``task_type`` narrow it, in any combination (the totals, both breakdowns and the days
  count only the matching requests); ``per_day=true`` adds per-UTC-day rows (``since``
  defaults to 30 days before ``until``, itself now).
* ``GET /api/llm/config/preview`` — what a user gets for a task, with provenance.
* ``GET /api/llm/models`` — the model catalog (any authenticated caller).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import AwareDatetime

from beamish.application import Application
from beamish.llm.hierarchy import ConfigRequest
from beamish.server.api.catalog import model_catalog
from beamish.server.api.deps import AppDep, CurrentPrincipal, check_user
from beamish.server.api.errors import (
    ERROR_RESPONSES,
    ResourceNotFoundError,
)
from beamish.server.api.limits import check_stored_json
from beamish.server.api.models import (
    NAME_PATTERN,
    Body,
    CatalogModel,
    ConfigView,
    Name,
    Out,
    TaskType,
    UserId,
)
from beamish.store import (
    ConfigNotFoundError,
    DailyUsage,
    LLMParameters,
    NewLLMConfig,
    Provider,
    ProviderModelUsage,
    TaskOverride,
    TaskTypeUsage,
    UsageTotals,
    UserLLMConfig,
    UserNotFoundError,
)
from beamish.store.text import NO_NUL, TextObject

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)

PER_DAY_DEFAULT_DAYS = 30


# --- models ------------------------------------------------------------------------------


class DefaultConfigIn(Body):
    """The user's default provider and model (and, if given, its parameters)."""

    provider: Provider
    model: Name
    parameters: LLMParameters | None = None


class ProviderConfigIn(Body):
    """A per-provider config: the model to use with that provider, and its parameters."""

    model: Name
    parameters: LLMParameters | None = None
    metadata: TextObject | None = None
    is_default: bool = False


class TaskOverrideIn(Body):
    """The provider, model and parameters a user wants for one task type."""

    provider: Provider
    model: Name
    parameters: LLMParameters = LLMParameters()


class UserLLMConfigView(Out):
    """Everything a user has configured."""

    user_id: str
    tier: str | None
    default: UserLLMConfig | None
    providers: tuple[UserLLMConfig, ...]
    tasks: tuple[TaskOverride, ...]


class UsageFilters(Out):
    """The filters a usage answer was narrowed by."""

    provider: str | None = None
    model: str | None = None
    task_type: str | None = None


class UsageReport(Out):
    """A user's usage in a window."""

    user_id: str
    since: datetime | None
    until: datetime | None
    filters: UsageFilters
    totals: UsageTotals
    by_provider_model: tuple[ProviderModelUsage, ...]
    by_task_type: tuple[TaskTypeUsage, ...]
    days: tuple[DailyUsage, ...] | None = None


class ModelList(Out):
    """The model catalog."""

    models: tuple[CatalogModel, ...]


# --- the user's configuration ------------------------------------------------------------


@router.get("/users/{user_id}/llm-config", summary="Show a user's LLM configuration",
            tags=["users"])
async def get_llm_config(user_id: UserId, caller: CurrentPrincipal,
                         rt: AppDep) -> UserLLMConfigView:
    """The user's tier, default, per-provider configs and per-task overrides."""
    check_user(caller, user_id)
    return await _config_view(rt, user_id)


@router.put("/users/{user_id}/llm-config", summary="Set a user's default model", tags=["users"])
async def put_llm_config(user_id: UserId, body: DefaultConfigIn, caller: CurrentPrincipal,
                         rt: AppDep) -> UserLLMConfigView:
    """Make ``provider``/``model`` the default; ``parameters``, if given, replace its own."""
    check_user(caller, user_id)
    await rt.users.set_default(user_id, body.provider, body.model, actor=caller.user_id)
    if body.parameters is not None:
        await rt.store.update_config(user_id, body.provider, parameters=body.parameters,
                                     actor=caller.user_id)
    return await _config_view(rt, user_id)


@router.delete("/users/{user_id}/llm-config", summary="Remove a user's LLM configuration",
               tags=["users"],
               status_code=status.HTTP_204_NO_CONTENT)
async def delete_llm_config(user_id: UserId, caller: CurrentPrincipal, rt: AppDep) -> Response:
    """Remove every config and override of the user (the profile and tier stay)."""
    check_user(caller, user_id)
    store = rt.store
    for config in await store.list_configs(user_id):
        await store.remove_config(user_id, config.provider, actor=caller.user_id)
    for override in await store.list_task_overrides(user_id):
        await store.delete_task_override(user_id, override.task_type, actor=caller.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _config_view(rt: Application, user_id: str) -> UserLLMConfigView:
    try:
        tier: str | None = (await rt.store.get_profile(user_id)).tier
    except UserNotFoundError:
        tier = None
    configs = await rt.store.list_configs(user_id)
    return UserLLMConfigView(
        user_id=user_id, tier=tier, default=next((c for c in configs if c.is_default), None),
        providers=tuple(configs), tasks=tuple(await rt.store.list_task_overrides(user_id)))


async def ensure_profile(rt: Application, user_id: str, actor: str) -> None:
    """Create the user's profile (default tier) unless it exists."""
    try:
        await rt.store.get_profile(user_id)
    except UserNotFoundError:
        await rt.store.upsert_profile(user_id, actor=actor)


# --- per provider ------------------------------------------------------------------------


@router.get("/users/{user_id}/llm-config/providers/{provider}",
            summary="Show a user's config for one provider", tags=["users"])
async def get_provider_config(user_id: UserId, provider: Provider, caller: CurrentPrincipal,
                              rt: AppDep) -> UserLLMConfig:
    """The user's config for one provider (404 if none)."""
    check_user(caller, user_id)
    return await rt.store.get_config(user_id, provider)


@router.put("/users/{user_id}/llm-config/providers/{provider}",
            summary="Set a user's config for one provider", tags=["users"])
async def put_provider_config(user_id: UserId, provider: Provider, body: ProviderConfigIn,
                              caller: CurrentPrincipal, rt: AppDep) -> UserLLMConfig:
    """Create or update the user's config for one provider."""
    check_user(caller, user_id)
    check_stored_json("metadata", body.metadata, rt.settings.server.max_metadata_bytes)
    store, actor = rt.store, caller.user_id
    try:
        await store.get_config(user_id, provider)
    except ConfigNotFoundError:
        await ensure_profile(rt, user_id, actor)
        return await store.add_config(user_id, NewLLMConfig(
            provider=provider, model=body.model, is_default=body.is_default,
            parameters=body.parameters or LLMParameters(), metadata=body.metadata or {}),
            actor=actor)
    if body.is_default:
        await store.set_default(user_id, provider, body.model, actor=actor)
    return await store.update_config(user_id, provider, model=body.model,
                                     parameters=body.parameters, metadata=body.metadata,
                                     actor=actor)


@router.delete("/users/{user_id}/llm-config/providers/{provider}",
               summary="Remove a user's config for one provider", tags=["users"],
               status_code=status.HTTP_204_NO_CONTENT)
async def delete_provider_config(user_id: UserId, provider: Provider, caller: CurrentPrincipal,
                                 rt: AppDep) -> Response:
    """Remove the user's config for one provider (404 if none)."""
    check_user(caller, user_id)
    await rt.store.remove_config(user_id, provider, actor=caller.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- per task type -----------------------------------------------------------------------


@router.get("/users/{user_id}/llm-config/tasks/{task_type}",
            summary="Show a user's override for one task type", tags=["users"])
async def get_task_override(user_id: UserId, task_type: TaskType, caller: CurrentPrincipal,
                            rt: AppDep) -> TaskOverride:
    """The user's override for one task type (404 if none)."""
    check_user(caller, user_id)
    override = await rt.store.get_task_override(user_id, task_type)
    if override is None:
        raise ResourceNotFoundError(
            f"user {user_id!r} has no override for task {task_type!r}; set one with PUT")
    return override


@router.put("/users/{user_id}/llm-config/tasks/{task_type}",
            summary="Set a user's override for one task type", tags=["users"])
async def put_task_override(user_id: UserId, task_type: TaskType, body: TaskOverrideIn,
                            caller: CurrentPrincipal, rt: AppDep) -> TaskOverride:
    """Create or replace the user's override for one task type."""
    check_user(caller, user_id)
    await ensure_profile(rt, user_id, caller.user_id)
    override = TaskOverride(task_type=task_type, provider=body.provider, model=body.model,
                            parameters=body.parameters)
    return await rt.store.set_task_override(user_id, override, actor=caller.user_id)


@router.delete("/users/{user_id}/llm-config/tasks/{task_type}",
               summary="Remove a user's override for one task type", tags=["users"],
               status_code=status.HTTP_204_NO_CONTENT)
async def delete_task_override(user_id: UserId, task_type: TaskType, caller: CurrentPrincipal,
                               rt: AppDep) -> Response:
    """Remove the user's override for one task type (404 if none)."""
    check_user(caller, user_id)
    await rt.store.delete_task_override(user_id, task_type, actor=caller.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- usage -------------------------------------------------------------------------------


@router.get("/users/{user_id}/usage", summary="Show a user's usage", tags=["users"])
async def get_usage(
    user_id: UserId, caller: CurrentPrincipal, rt: AppDep,
    since: Annotated[AwareDatetime | None, Query(description="from (inclusive)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="to (exclusive)")] = None,
    provider: Annotated[str | None, Query(max_length=255), NO_NUL] = None,
    model: Annotated[str | None, Query(max_length=255), NO_NUL] = None,
    task_type: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    per_day: Annotated[bool, Query(description="add per-UTC-day totals")] = False,
) -> UsageReport:
    """The user's usage in the window, optionally narrowed (see the module docs)."""
    check_user(caller, user_id)
    filters = UsageFilters(provider=provider, model=model, task_type=task_type)
    narrowed = filters.model_dump()  # provider, model, task_type: the store's keywords
    stats = await rt.store.user_stats(user_id, since=since, until=until, **narrowed)
    days = None
    if per_day:
        end = until or datetime.now(UTC)
        start = since or end - timedelta(days=PER_DAY_DEFAULT_DAYS)
        days = tuple(await rt.store.usage_per_day(since=start, until=end, user_id=user_id,
                                                  **narrowed))
    return UsageReport(user_id=user_id, since=since, until=until, filters=filters,
                       totals=stats.totals, by_provider_model=stats.by_provider_model,
                       by_task_type=stats.by_task_type, days=days)


# --- resolution and the catalog ----------------------------------------------------------


class PreviewView(ConfigView):
    """What a user gets for a task type, field by field with its source, and why."""

    explanation: str


@router.get("/llm/config/preview", summary="Preview the configuration a call would use",
            tags=["users"])
async def preview_config(
    caller: CurrentPrincipal, rt: AppDep,
    user_id: Annotated[str | None, Query(min_length=1, max_length=256,
                                         description="the user (the caller if omitted)"),
                       NO_NUL]
    = None,
    task_type: Annotated[str, Query(pattern=NAME_PATTERN)] = "chat",
    tier: Annotated[str | None, Query(pattern=NAME_PATTERN,
                                      description="resolve as this tier")] = None,
    provider: Annotated[Provider | None, Query(description="as if the call asked")] = None,
    model: Annotated[str | None, Query(min_length=1, max_length=255), NO_NUL] = None,
) -> PreviewView:
    """What ``user_id`` would get for ``task_type`` now, with provenance and warnings."""
    user = user_id or caller.user_id
    check_user(caller, user)
    request = None
    if provider is not None or model is not None:
        request = ConfigRequest(provider=provider, model=model)
    config = await rt.services.current_resolver().preview(user, task_type, request=request,
                                                          tier=tier)
    return PreviewView(**ConfigView.of(config).model_dump(), explanation=config.explain())


@router.get("/llm/models", summary="List the model catalog", tags=["catalog"])
async def list_models(caller: CurrentPrincipal, rt: AppDep) -> ModelList:
    """Every model beamish can call (stored catalogs and configured defaults)."""
    return ModelList(models=tuple(await model_catalog(rt)))


__all__ = ["ensure_profile", "router"]
