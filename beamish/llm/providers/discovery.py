"""Model discovery: fill the store's catalog with what each provider lists.

``refresh_catalog(store, client)`` asks every registered provider for its models at once —
``GET /v1/models`` for OpenAI-compatible servers, the models list for Anthropic, the one model
for echo — and, for each that answers, replaces its catalog (``Store.replace_provider_models``)
and stamps the registry row's ``validated_at``. The resolution layer reads that catalog to
tell a known model from a stale preference.

A provider that fails is reported, not raised, and its catalog is left as it was: one
unreachable server neither stops the others nor empties its own catalog. Providers that come
from settings or the environment have no registry row, so no catalog to fill; ``discover``
still lists their models.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from beamish.llm.errors import ProviderCallError
from beamish.llm.providers.base import (
    VALIDATE_TIMEOUT_S,
    LLMProvider,
    Validation,
    validation_from_error,
    validation_from_models,
)
from beamish.llm.providers.client import LLMClient
from beamish.store import Store
from beamish.store.models import ProviderModel


class Discovery(BaseModel):
    """What one provider listed.

    Attributes:
        provider: the provider's registry name.
        validation: whether it is reachable with its key (``validation.ok``).
        models: the models it listed, or None when it could not list them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str
    validation: Validation
    models: tuple[ProviderModel, ...] | None = None


async def discover(provider: LLMProvider, *, timeout_s: float = VALIDATE_TIMEOUT_S) -> Discovery:
    """The models ``provider`` lists, and what the listing says about reaching it."""
    try:
        models = await provider.list_models(timeout_s=timeout_s)
    except ProviderCallError as error:
        return Discovery(provider=provider.name,
                         validation=validation_from_error(provider.name, error))
    return Discovery(provider=provider.name, models=tuple(models),
                     validation=validation_from_models(provider.name, models))


async def refresh_catalog(store: Store, client: LLMClient, *,
                          names: Collection[str] | None = None,
                          timeout_s: float = VALIDATE_TIMEOUT_S,
                          actor: str = "discovery") -> list[Discovery]:
    """Discover the registered providers (or those ``names``) and store what they list.

    Returns:
        One ``Discovery`` per provider asked, by name.
    """
    records = {r.name: r for r in await store.list_providers()}
    asked = [p for name, p in sorted(client.providers.items())
             if name in records and (names is None or name in names)]
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(discover(p, timeout_s=timeout_s)) for p in asked]
    found = [task.result() for task in tasks]
    for discovery in found:
        if discovery.models is None:
            continue
        await store.replace_provider_models(discovery.provider, discovery.models)
        stamped = records[discovery.provider].model_copy(
            update={"validated_at": datetime.now(UTC)})
        await store.update_provider(stamped, actor=actor)
    return found
