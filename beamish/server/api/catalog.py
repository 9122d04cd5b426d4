"""The model catalog: every model beamish can call, read without calling any provider.

It is what ``GET /api/llm/models`` and ``GET /v1/models`` list:

* for each enabled provider of the registry, the models its last discovery stored
  (``POST /api/admin/providers/{name}/validate`` refreshes them), unless the running client
  found the provider broken (a base URL or key it cannot use: admin's provider list says why);
* for each provider the running client serves without a registry row (configured in
  settings or the environment, and echo), the default model the settings give it.
"""

from __future__ import annotations

from beamish.application import Application
from beamish.server.api.models import CatalogModel


async def model_catalog(rt: Application) -> list[CatalogModel]:
    """The catalog, registry providers by name first, then the others by name."""
    serving = rt.llm.providers
    records = await rt.store.list_providers()
    catalog: list[CatalogModel] = []
    broken = rt.llm.broken
    for record in records:
        if not record.enabled or record.name in broken:  # not offered: it cannot be called
            continue
        for model in await rt.store.list_provider_models(record.name):
            catalog.append(CatalogModel(
                provider=record.name, kind=record.kind, model=model.model,
                context_window=model.context_window, source="registry",
                serving=record.name in serving))
    registered = {record.name for record in records}
    llm_settings = rt.settings.llm
    for name, provider in sorted(serving.items()):
        default = llm_settings.provider_default_model(provider.kind)
        if name in registered or default is None:
            continue
        catalog.append(CatalogModel(
            provider=name, kind=provider.kind, model=default, serving=True,
            source="builtin" if provider.kind == "echo" else "settings"))
    return catalog


__all__ = ["model_catalog"]
