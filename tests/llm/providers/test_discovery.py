"""Model discovery fills the store's catalog (a real SQLite store) from each provider's list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from beamish.llm.providers import LLMClient, discover, refresh_catalog
from beamish.llm.settings import LLMSettings
from beamish.store import ProviderRecord, SecretBox, Store, open_store
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault

pytestmark = pytest.mark.anyio

BOX = SecretBox(Fernet.generate_key().decode())


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh SQLite store."""
    async with open_store(f"sqlite:///{tmp_path}/beamish.db") as opened:
        yield opened


@pytest.fixture
async def registered(store: Store, server: FakeLLMServer) -> AsyncIterator[LLMClient]:
    """A client of the fake server's two APIs, registered in the store with encrypted keys."""
    await store.register_provider(ProviderRecord(
        name="oa", kind="openai_compatible", base_url=server.openai_url,
        api_key_ciphertext=BOX.encrypt(server.openai_key)))
    await store.register_provider(ProviderRecord(
        name="claude", kind="anthropic", base_url=server.anthropic_url,
        api_key_ciphertext=BOX.encrypt(server.anthropic_key)))
    async with await LLMClient.from_store(store, LLMSettings(), box=BOX, environ={}) as client:
        yield client


async def test_refresh_fills_each_registered_catalog(store: Store,
                                                     registered: LLMClient) -> None:
    """Both providers' models land in the catalog, and their rows are stamped validated."""
    found = await refresh_catalog(store, registered)
    assert [(d.provider, d.validation.status) for d in found] == [
        ("claude", "reachable"), ("oa", "reachable")]
    for name in ("oa", "claude"):
        catalog = await store.list_provider_models(name)
        assert [(m.model, m.context_window) for m in catalog] == [
            ("model-a", 8192), ("model-b", None)]
        assert (await store.get_provider(name)).validated_at is not None


async def test_refresh_can_be_limited_to_names(store: Store, registered: LLMClient) -> None:
    """names= asks only those providers; echo, with no registry row, is never asked."""
    found = await refresh_catalog(store, registered, names=["oa"])
    assert [d.provider for d in found] == ["oa"]
    assert await store.list_provider_models("claude") == []


async def test_a_failing_provider_keeps_its_catalog(store: Store, registered: LLMClient,
                                                    server: FakeLLMServer) -> None:
    """An unreachable provider is reported; its old catalog and validated_at stay as they were."""
    await refresh_catalog(store, registered)
    before = await store.get_provider("oa")
    server.models = {"model-c": 1024}
    server.script(Fault.error(503, route="models", api="openai"))
    found = {d.provider: d for d in await refresh_catalog(store, registered)}
    assert (found["oa"].validation.status, found["oa"].models) == ("unreachable", None)
    assert [m.model for m in await store.list_provider_models("oa")] == ["model-a", "model-b"]
    assert (await store.get_provider("oa")).validated_at == before.validated_at
    assert [m.model for m in await store.list_provider_models("claude")] == ["model-c"]


async def test_discover_works_without_a_registry_row(registered: LLMClient) -> None:
    """discover lists any provider's models, echo included."""
    found = await discover(registered.provider("echo"))
    assert found.models is not None
    assert [m.model for m in found.models] == ["echo-1"]
    assert found.validation.ok
