"""Admin endpoints (``/api/admin/...``): providers, global and tier configs, audit, runtime.

Every one needs a token with the ``admin`` scope (403 otherwise).

**Providers.** ``POST /api/admin/providers`` registers one; its ``api_key`` is encrypted
with ``SecretBox`` (keyed by ``Settings.secret_key``, else ``BEAMISH_SECRET_KEY``; without
either, a key is refused with a 500 ``configuration_error`` saying so) and is never answered:
provider views carry ``has_api_key`` and the masked key (``sk-...wxyz``).
``POST /api/admin/providers/{name}/validate`` builds the provider from its registry row,
lists its models (one try, ``VALIDATE_TIMEOUT_S``), and, when it answers, stores that
catalog and stamps ``validated_at``. Adding or removing a provider rebuilds the runtime's
LLM client (``Application.reload_providers``), so it is ``serving`` at once when usable.

**Config.** ``GET/PUT/DELETE /api/admin/llm/global/{task_type}[?tier=]`` — the
system-wide provider, model and parameters of a task type, for every tier (no ``tier``,
stored as ``*``) or one (``tier`` must be one of ``llm.tiers``); ``GET`` of a tier without
its own entry answers the any-tier one (its ``tier`` says which); ``DELETE`` removes exactly
the entry named (404 if there is none), and calls fall back to the next layer at once. ``PUT
/api/admin/users/{user_id}/profile`` sets a user's tier.

**Checking the config.** ``GET /api/admin/config/summary`` answers the global configuration
in words (``{"text": ...}``): the system default, each task type with its global and tier
configs, and the providers with whether each is serving. ``POST /api/admin/config/validate``
checks every task type and tier against the catalog and the providers serving
(``config_report``): ``ok``, or the problems found.

**Introspection.** ``GET /api/admin/audit``, ``GET /api/admin/usage/top``, ``GET
/api/admin/sessions`` (live sessions), ``GET /api/admin/runtime`` (session count, the
supervision tree, the busiest mailboxes).
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import AwareDatetime, Field, SecretStr, field_validator

from beamish.application import Application
from beamish.llm.providers.base import VALIDATE_TIMEOUT_S, Validation
from beamish.llm.providers.discovery import discover
from beamish.llm.providers.keys import decrypt_key
from beamish.llm.providers.registry import build_provider, provider_configs
from beamish.llm.urls import base_url_problem
from beamish.runtime import TreeNode
from beamish.server.api.catalog import model_catalog
from beamish.server.api.config_report import (
    ConfigFacts,
    ConfigSummary,
    ConfigValidation,
    summary,
    validate,
)
from beamish.server.api.deps import AdminPrincipal, AppDep, get_admin
from beamish.server.api.errors import (
    ERROR_RESPONSES,
    ConfigurationError,
    InvalidRequestError,
    ResourceNotFoundError,
)
from beamish.server.api.models import NAME_PATTERN, Body, Name, Out, ProviderName, TaskType, UserId
from beamish.settings import Settings
from beamish.store import (
    ANY_TIER,
    AuditEntry,
    GlobalConfig,
    LLMParameters,
    Provider,
    ProviderRecord,
    SecretBox,
    SecretKeyError,
    UserNotFoundError,
    UserProfile,
    UserUsage,
)
from beamish.store.secrets import ENV_VAR as SECRET_KEY_ENV
from beamish.store.text import NO_NUL

router = APIRouter(prefix="/api/admin", tags=["admin"], responses=ERROR_RESPONSES,
                   dependencies=[Depends(get_admin)])

MAX_TREE_CHILDREN = 50
"""Children listed per supervisor in ``/api/admin/runtime`` (the rest are counted)."""


# --- providers ---------------------------------------------------------------------------


class ProviderIn(Body):
    """A provider to register. ``api_key`` is stored encrypted and never answered."""

    name: Name
    kind: Provider
    base_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://\S+$",
                                 description="http(s) URL of the provider's API")
    api_key: SecretStr | None = None
    enabled: bool = True

    @field_validator("base_url")
    @classmethod
    def _client_accepts(cls, url: str | None) -> str | None:
        # The pattern alone lets through what the HTTP client refuses (a pasted zero-width
        # space, a control character); such a row would never be served.
        problem = None if url is None else base_url_problem(url)
        if problem is not None:
            raise ValueError(f"base_url cannot be used: {problem}")
        return url


class ProviderView(Out):
    """A registered provider, as the API shows it: the key only masked."""

    name: str
    kind: Provider
    base_url: str | None
    enabled: bool
    validated_at: datetime | None
    has_api_key: bool
    api_key_masked: str | None = Field(
        description="the key's first and last characters, when the server can decrypt it")
    serving: bool
    problem: str | None = Field(
        default=None, exclude_if=lambda problem: problem is None,
        description="why the server cannot serve this provider as registered (absent when "
                    "it can, or when it is only disabled)")


class ProviderList(Out):
    """Every registered provider."""

    providers: tuple[ProviderView, ...]


class ValidationView(Out):
    """What validating a provider found."""

    provider: str
    status: Literal["reachable", "unauthorized", "unreachable", "unusable"]
    detail: str
    models: int | None = None
    validated_at: datetime | None = None
    serving: bool


@router.get("/providers", summary="List registered providers")
async def list_providers(rt: AppDep) -> ProviderList:
    """Every registered provider (keys masked)."""
    box = _box_or_none(rt.settings)
    return ProviderList(providers=tuple(_view(rt, record, box)
                                        for record in await rt.store.list_providers()))


@router.post("/providers", summary="Register a provider", status_code=status.HTTP_201_CREATED)
async def add_provider(body: ProviderIn, caller: AdminPrincipal, rt: AppDep) -> ProviderView:
    """Register a provider (409 if the name is taken); its key is stored encrypted."""
    ciphertext = None
    box = None
    if body.api_key is not None:
        key = body.api_key.get_secret_value().strip()
        if not key:
            raise InvalidRequestError("api_key is blank; leave it out for a provider without one")
        box = secret_box(rt.settings)
        ciphertext = box.encrypt(key)
    record = ProviderRecord(name=body.name, kind=body.kind, base_url=body.base_url,
                            api_key_ciphertext=ciphertext, enabled=body.enabled)
    stored = await rt.store.register_provider(record, actor=caller.user_id)
    await rt.reload_providers()
    return _view(rt, stored, box)


@router.delete("/providers/{name}", summary="Remove a provider",
               status_code=status.HTTP_204_NO_CONTENT)
async def remove_provider(name: ProviderName, caller: AdminPrincipal, rt: AppDep) -> Response:
    """Remove a provider and its catalog (404 if not registered)."""
    await rt.store.remove_provider(name, actor=caller.user_id)
    await rt.reload_providers()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/providers/{name}/validate", summary="Validate a provider and store its models")
async def validate_provider(name: ProviderName, caller: AdminPrincipal,
                            rt: AppDep) -> ValidationView:
    """Reach the provider with its key; store the models it lists."""
    record = await rt.store.get_provider(name)
    plan = provider_configs(rt.settings.llm, [record], environ=os.environ,
                            box=lambda: secret_box(rt.settings))
    config = next((c for c in plan.configs if c.name == name), None)
    serving = name in rt.llm.providers
    if config is None:
        _, reason = plan.unavailable.get(name, (record.kind, "it cannot be built"))
        return ValidationView(provider=name, status="unusable", detail=reason, serving=serving)
    provider = build_provider(config)
    try:
        found = await discover(provider, timeout_s=VALIDATE_TIMEOUT_S)
    finally:
        await provider.aclose()
    validated_at = None
    if found.models is not None:
        await rt.store.replace_provider_models(name, found.models)
        validated_at = datetime.now(UTC)
        await rt.store.update_provider(record.model_copy(update={"validated_at": validated_at}),
                                       actor=caller.user_id)
    return _validation_view(found.validation, validated_at, serving)


def _validation_view(validation: Validation, validated_at: datetime | None,
                     serving: bool) -> ValidationView:
    return ValidationView(provider=validation.provider, status=validation.status,
                          detail=validation.detail, models=validation.models,
                          validated_at=validated_at, serving=serving)


def secret_box(settings: Settings) -> SecretBox:
    """The box that encrypts API keys: ``settings.secret_key``, else the environment.

    Raises:
        ConfigurationError: neither holds a key.
        SecretKeyError: the key is not a Fernet key.
    """
    keys = settings.secret_key.get_secret_value() if settings.secret_key is not None else (
        os.environ.get(SECRET_KEY_ENV, ""))
    if not keys.strip():
        raise ConfigurationError(
            f"{SECRET_KEY_ENV} is not set, so the server cannot encrypt API keys; set it to "
            "a Fernet key (Fernet.generate_key()) and restart, or register the provider "
            "without api_key")
    return SecretBox(keys)


def _box_or_none(settings: Settings) -> SecretBox | None:
    with contextlib.suppress(SecretKeyError, ConfigurationError):
        return secret_box(settings)
    return None


def _view(rt: Application, record: ProviderRecord, box: SecretBox | None) -> ProviderView:
    masked = None
    if record.api_key_ciphertext is not None and box is not None:
        with contextlib.suppress(SecretKeyError, ValueError):
            masked = decrypt_key(record.api_key_ciphertext, box).masked
    return ProviderView(name=record.name, kind=record.kind, base_url=record.base_url,
                        enabled=record.enabled, validated_at=record.validated_at,
                        has_api_key=record.api_key_ciphertext is not None,
                        api_key_masked=masked, serving=record.name in rt.llm.providers,
                        problem=rt.llm.broken.get(record.name))


# --- global and tier configs -------------------------------------------------------------


class GlobalConfigIn(Body):
    """The provider, model and parameters of a task type (for one tier, or all)."""

    provider: Provider
    model: Name
    parameters: LLMParameters = LLMParameters()
    template: Annotated[str, Field(pattern=NAME_PATTERN)] | None = Field(
        default=None, description="the prompt template the task uses")
    template_label: Annotated[str, Field(pattern=NAME_PATTERN)] | None = Field(
        default=None, description="the label of it served (production if unset)")


class GlobalConfigList(Out):
    """Every global config, by task type then tier (``*``: every tier)."""

    configs: tuple[GlobalConfig, ...]


class ProfileIn(Body):
    """A user's tier."""

    tier: Annotated[str, Field(pattern=NAME_PATTERN)]


TierQuery = Annotated[str | None, Query(pattern=NAME_PATTERN,
                                        description="one tier; all tiers if omitted")]


@router.get("/llm/global", summary="List global and tier configs")
async def list_global_configs(rt: AppDep) -> GlobalConfigList:
    """Every global and tier config."""
    return GlobalConfigList(configs=tuple(await rt.store.list_global_configs()))


@router.get("/llm/global/{task_type}", summary="Show a task type's global config")
async def get_global_config(task_type: TaskType, rt: AppDep,
                            tier: TierQuery = None) -> GlobalConfig:
    """The config of ``task_type`` for ``tier`` (or its any-tier fallback); 404 if none."""
    config = await rt.store.get_global_config(task_type, _tier(rt, tier))
    if config is None:
        raise ResourceNotFoundError(
            f"no global config for task {task_type!r}" + (f" and tier {tier!r}" if tier else "")
            + "; set one with PUT")
    return config


@router.put("/llm/global/{task_type}", summary="Set a task type's global config")
async def put_global_config(task_type: TaskType, body: GlobalConfigIn, caller: AdminPrincipal,
                            rt: AppDep, tier: TierQuery = None) -> GlobalConfig:
    """Create or replace the config of ``task_type`` for ``tier`` (or every tier)."""
    config = GlobalConfig(task_type=task_type, tier=_tier(rt, tier), provider=body.provider,
                          model=body.model, parameters=body.parameters,
                          template=body.template, template_label=body.template_label)
    return await rt.store.set_global_config(config, actor=caller.user_id)


@router.delete("/llm/global/{task_type}", summary="Remove a task type's global config",
               status_code=status.HTTP_204_NO_CONTENT)
async def delete_global_config(task_type: TaskType, caller: AdminPrincipal, rt: AppDep,
                               tier: TierQuery = None) -> Response:
    """Remove the config of ``task_type`` for exactly ``tier`` (or the any-tier one); 404 if
    none. Calls fall back to the next layer at once."""
    await rt.store.delete_global_config(task_type, _tier(rt, tier), actor=caller.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _tier(rt: Application, tier: str | None) -> str:
    if tier is None or tier == ANY_TIER:
        return ANY_TIER
    tiers = rt.settings.llm.tiers
    if tier not in tiers:
        raise InvalidRequestError(f"tier {tier!r} is not one of the configured tiers "
                                  f"{list(tiers)} (llm.tiers); leave it out for every tier")
    return tier


async def _config_facts(rt: Application) -> ConfigFacts:
    providers = rt.llm.providers
    return ConfigFacts(
        settings=rt.settings.llm, configs=tuple(await rt.store.list_global_configs()),
        catalog=tuple(await model_catalog(rt)),
        serving={name: provider.kind for name, provider in providers.items()},
        unavailable=rt.llm.unavailable,
        registered=frozenset(r.name for r in await rt.store.list_providers()))


@router.get("/config/summary", summary="Summarise the global configuration in words")
async def config_summary(rt: AppDep) -> ConfigSummary:
    """The system default, each task type's global and tier configs, the providers."""
    return summary(await _config_facts(rt))


@router.post("/config/validate", summary="Check every task type against the catalog")
async def config_validate(rt: AppDep) -> ConfigValidation:
    """Per task type and tier: ok, or the problems found (unknown model, provider not
    serving, no usable provider)."""
    return validate(await _config_facts(rt))


@router.put("/users/{user_id}/profile", summary="Set a user's tier")
async def put_profile(user_id: UserId, body: ProfileIn, caller: AdminPrincipal,
                      rt: AppDep) -> UserProfile:
    """Set a user's tier (creating the profile if needed)."""
    _tier(rt, body.tier)
    preferences = {}
    with contextlib.suppress(UserNotFoundError):
        preferences = (await rt.store.get_profile(user_id)).llm_preferences
    return await rt.store.upsert_profile(user_id, tier=body.tier, llm_preferences=preferences,
                                         actor=caller.user_id)


# --- audit and usage ---------------------------------------------------------------------


class AuditLog(Out):
    """Config changes, newest first."""

    entries: tuple[AuditEntry, ...]


class TopUsers(Out):
    """The users with the most tokens (or requests) in a window."""

    by: Literal["tokens", "requests"]
    users: tuple[UserUsage, ...]


@router.get("/audit", summary="Read the audit log")
async def audit_log(
    rt: AppDep,
    user_id: Annotated[str | None, Query(min_length=1, max_length=256), NO_NUL] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditLog:
    """Config changes, newest first, optionally of one user."""
    return AuditLog(entries=tuple(await rt.store.list_audit(user_id=user_id, limit=limit)))


@router.get("/usage/top", summary="List the top users by usage")
async def top_users(
    rt: AppDep,
    n: Annotated[int, Query(ge=1, le=1000)] = 10,
    by: Literal["tokens", "requests"] = "tokens",
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> TopUsers:
    """The ``n`` users with the most tokens (or requests) in the window."""
    return TopUsers(by=by, users=tuple(await rt.store.top_users(n, by=by, since=since,
                                                                until=until)))


# --- runtime -----------------------------------------------------------------------------


class LiveSession(Out):
    """An open session and its owner."""

    session_id: str
    user_id: str


class LiveSessions(Out):
    """Open sessions."""

    sessions: tuple[LiveSession, ...]


class ActorView(Out):
    """A live actor and its mailbox."""

    id: int
    name: str | None
    type: str
    status: str
    mailbox_depth: int
    restart_count: int


class TreeView(Out):
    """An actor of the supervision tree; supervisors list their children."""

    id: str
    type: str
    status: str
    restart_count: int
    children: tuple[TreeView, ...] = ()
    children_total: int = 0


class RuntimeView(Out):
    """What the runtime is doing now."""

    sessions: int
    actors: int
    mailbox_total: int
    busiest: tuple[ActorView, ...]
    tree: TreeView | None


@router.get("/sessions", summary="List live sessions of every user")
async def live_sessions(
    rt: AppDep,
    user_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
) -> LiveSessions:
    """Every open session (or one user's), by session id."""
    return LiveSessions(sessions=tuple(LiveSession(session_id=sid, user_id=uid)
                                       for sid, uid in rt.sessions.open_sessions(user_id)))


@router.get("/runtime", summary="Show the runtime's supervision tree")
async def runtime_view(
    rt: AppDep,
    actors: Annotated[int, Query(ge=0, le=10_000, description="busiest actors listed")] = 20,
) -> RuntimeView:
    """Live sessions, the supervision tree and the deepest mailboxes."""
    live = rt.node.actors()
    busiest = sorted(live, key=lambda a: (-a.mailbox_depth, a.id))[:actors]
    tree = rt.node.tree()
    return RuntimeView(
        sessions=rt.sessions.count(), actors=len(live),
        mailbox_total=sum(a.mailbox_depth for a in live),
        busiest=tuple(ActorView(id=a.id, name=None if a.name is None else str(a.name),
                                type=a.type, status=a.status, mailbox_depth=a.mailbox_depth,
                                restart_count=a.restart_count) for a in busiest),
        tree=None if tree is None else _tree(tree))


def _tree(node: TreeNode) -> TreeView:
    return TreeView(id=str(node.id), type=node.type, status=node.status,
                    restart_count=node.restart_count,
                    children=tuple(_tree(child) for child in node.children[:MAX_TREE_CHILDREN]),
                    children_total=len(node.children))


__all__ = ["router", "secret_box"]
