"""Which providers a client gets: registry rows, then settings and environment, then echo."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from beamish.llm.errors import FallbacksExhaustedError, ProviderNotConfiguredError
from beamish.llm.providers import (
    AnthropicProvider,
    ApiKey,
    ChatMessage,
    EchoProvider,
    LLMClient,
    OpenAIProvider,
    ProviderConfig,
    Target,
    build_provider,
    provider_configs,
)
from beamish.llm.providers.wire import OpenAIWireProvider
from beamish.llm.settings import LLMSettings, ProviderSettings
from beamish.store import ProviderRecord, SecretBox, open_store

pytestmark = pytest.mark.anyio

KEY = "sk-registry-test-key-0001"
BOX = SecretBox(Fernet.generate_key().decode())


def _names(settings: LLMSettings, records: list[ProviderRecord],
           environ: dict[str, str]) -> dict[str, str]:
    plan = provider_configs(settings, records, environ=environ, box=lambda: BOX)
    return {c.name: c.kind for c in plan.configs}


def test_nothing_configured_means_echo_only() -> None:
    """A fresh install gets the offline echo provider and nothing else."""
    assert _names(LLMSettings(), [], {}) == {"echo": "echo"}


def test_sdk_variables_configure_their_kinds() -> None:
    """OPENAI_API_KEY and ANTHROPIC_API_KEY each bring their provider, named after the kind."""
    environ = {"OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": KEY}
    assert _names(LLMSettings(), [], environ) == {
        "anthropic": "anthropic", "openai": "openai", "echo": "echo"}


def test_registry_rows_come_first_and_cover_their_kind() -> None:
    """An enabled row of a kind replaces the settings' provider of that kind."""
    records = [ProviderRecord(name="openai-eu", kind="openai", api_key_ciphertext=BOX.encrypt(KEY),
                              base_url="http://eu.example/v1")]
    plan = provider_configs(LLMSettings(), records, environ={"OPENAI_API_KEY": "sk-other-000000"},
                            box=lambda: BOX)
    assert [(c.name, c.kind, c.base_url, c.api_key) for c in plan.configs] == [
        ("openai-eu", "openai", "http://eu.example/v1", ApiKey(KEY)), ("echo", "echo", None, None)]


def test_rows_without_a_stored_key_use_settings_or_environment() -> None:
    """A row with no ciphertext takes llm.providers.<kind>.api_key, then the SDK variable."""
    settings = LLMSettings(providers={"anthropic": ProviderSettings(api_key=SecretStr(KEY))})
    records = [ProviderRecord(name="claude", kind="anthropic")]
    plan = provider_configs(settings, records, environ={}, box=lambda: BOX)
    assert plan.configs[0].api_key == ApiKey(KEY)


def test_disabled_and_broken_rows_are_unavailable_with_a_reason() -> None:
    """Disabled rows, turned-off kinds and undecryptable keys are listed with why."""
    other_box = SecretBox(Fernet.generate_key().decode())
    settings = LLMSettings(providers={"tgi": ProviderSettings(enabled=False)})
    records = [ProviderRecord(name="off", kind="ollama", enabled=False),
               ProviderRecord(name="tgi-1", kind="tgi"),
               ProviderRecord(name="locked", kind="openai",
                              api_key_ciphertext=other_box.encrypt(KEY))]
    plan = provider_configs(settings, records, environ={}, box=lambda: BOX)
    assert [c.name for c in plan.configs] == ["echo"]
    assert plan.unavailable["off"][1] == "provider 'off' is disabled in the registry"
    assert "llm.providers.tgi.enabled" in plan.unavailable["tgi-1"][1]
    assert "cannot be used" in plan.unavailable["locked"][1]
    assert KEY not in repr(plan)


def test_missing_key_or_base_url_is_a_problem_not_a_crash() -> None:
    """An openai row with no key anywhere, or openai_compatible with no URL, is unavailable."""
    records = [ProviderRecord(name="oa", kind="openai"),
               ProviderRecord(name="lmstudio", kind="openai_compatible")]
    plan = provider_configs(LLMSettings(), records, environ={}, box=lambda: BOX)
    assert "OPENAI_API_KEY" in plan.unavailable["oa"][1]
    assert "no base URL" in plan.unavailable["lmstudio"][1]


def test_echo_can_be_turned_off() -> None:
    """llm.providers.echo.enabled = false leaves echo out."""
    settings = LLMSettings(providers={"echo": ProviderSettings(enabled=False)})
    assert _names(settings, [], {}) == {}


def test_stored_keys_need_the_secret_key() -> None:
    """Without BEAMISH_SECRET_KEY a stored key is unusable, and says how to fix it."""
    records = [ProviderRecord(name="oa", kind="openai", api_key_ciphertext=BOX.encrypt(KEY))]
    plan = provider_configs(LLMSettings(), records, environ={})
    assert "BEAMISH_SECRET_KEY is not set" in plan.unavailable["oa"][1]


def test_build_provider_picks_the_client_by_kind() -> None:
    """openai gets the openai SDK, the compatible kinds the wire client, anthropic its SDK,
    echo the offline one."""
    assert isinstance(build_provider(ProviderConfig("e", "echo")), EchoProvider)
    for kind in ("ollama", "tgi", "openai_compatible"):
        built = build_provider(ProviderConfig("o", kind, base_url="http://127.0.0.1:9/v1"))
        assert isinstance(built, OpenAIWireProvider)
        assert built.kind == kind
    assert isinstance(build_provider(ProviderConfig("o", "openai", api_key=ApiKey(KEY))),
                      OpenAIProvider)
    assert isinstance(build_provider(ProviderConfig("a", "anthropic", api_key=ApiKey(KEY))),
                      AnthropicProvider)
    with pytest.raises(ValueError, match="no API key"):
        build_provider(ProviderConfig("a", "anthropic"))


def test_a_proxied_compatible_server_keeps_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wire client uses no proxy: a base URL the *_proxy variables route through one is
    spoken to by the SDK (httpx honours them); one that no_proxy exempts, by the wire client."""
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    config = ProviderConfig("v", "openai_compatible", base_url="http://10.1.2.3:8000/v1")
    assert isinstance(build_provider(config), OpenAIProvider)
    monkeypatch.setenv("no_proxy", "10.1.2.3")
    assert isinstance(build_provider(config), OpenAIWireProvider)


async def test_client_from_store_serves_registry_providers(tmp_path: Path) -> None:
    """from_store reads the registry: a row's provider answers; echo is always there."""
    async with open_store(f"sqlite:///{tmp_path}/beamish.db") as store:
        await store.register_provider(ProviderRecord(name="local", kind="ollama",
                                                     base_url="http://127.0.0.1:9/v1"))
        async with await LLMClient.from_store(store, LLMSettings(), box=BOX,
                                              environ={}) as client:
            assert sorted(client.providers) == ["echo", "local"]
            assert client.provider("ollama").name == "local"
            answer = await client.complete(Target(provider="echo", model="echo-1"),
                                           [ChatMessage(role="user", content="hi")])
            assert answer.offline


async def test_unconfigured_provider_fails_with_advice() -> None:
    """Calling a kind nobody configured names it and says how to configure it."""
    async with LLMClient.from_settings(LLMSettings(), environ={}) as client:
        with pytest.raises(ProviderNotConfiguredError, match="register one"):
            client.provider("anthropic")
        with pytest.raises(FallbacksExhaustedError, match="anthropic:claude"):
            await client.complete(Target(provider="anthropic", model="claude"),
                                  [ChatMessage(role="user", content="hi")])


async def test_unavailable_reason_reaches_the_caller() -> None:
    """A provider that could not be built is reported with its reason when called."""
    records = [ProviderRecord(name="oa", kind="openai")]
    async with LLMClient.from_settings(LLMSettings(), records=records, environ={}) as client:
        assert "no API key" in client.unavailable["oa"]
        with pytest.raises(ProviderNotConfiguredError, match="has no API key"):
            client.provider("openai")


def test_client_refuses_duplicate_names() -> None:
    """Two providers under one name would make routing ambiguous."""
    with pytest.raises(ValueError, match="two providers are named 'echo'"):
        LLMClient([EchoProvider(), EchoProvider()])


@pytest.mark.parametrize("url", ["http://exa\u200bmple.com/v1", "http://a\x01b/v1",
                                 "ftp://example.com/v1", "https:///v1", "http://h:0/v1"])
def test_a_base_url_the_http_client_refuses_makes_the_row_unavailable(url: str) -> None:
    """The row is planned as unavailable (broken, not disabled), saying its URL is the fault."""
    records = [ProviderRecord(name="pasted", kind="ollama", base_url=url)]
    plan = provider_configs(LLMSettings(), records, environ={}, box=lambda: BOX)
    assert [c.name for c in plan.configs] == ["echo"]
    assert "base URL the HTTP client cannot use" in plan.broken["pasted"]


def test_a_disabled_row_is_unavailable_but_not_broken() -> None:
    """Turning a provider off on purpose is not reported as a fault."""
    records = [ProviderRecord(name="off", kind="ollama", enabled=False)]
    plan = provider_configs(LLMSettings(), records, environ={}, box=lambda: BOX)
    assert "off" in plan.unavailable
    assert plan.broken == {}
