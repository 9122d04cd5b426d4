"""Fixtures: one fake LLM server for the session, reset around each test, and clients of it.

The server (``_fake_llm_server.FakeLLMServer``) runs in a thread, so every test's event loop
reaches it over real HTTP through the official SDKs. ``openai_provider`` is each client of the
OpenAI API in turn: the SDK's, then the wire client (kind ``openai_compatible``, named
``openai`` all the same, so the tests' targets reach it). ``sleeps`` replaces the client's sleep:
retries are decided and recorded, never waited for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from beamish.llm.providers import (
    AnthropicProvider,
    ApiKey,
    Backoff,
    EchoProvider,
    LLMClient,
    LLMProvider,
    OpenAIProvider,
)
from beamish.llm.providers.wire import OpenAIWireProvider
from tests.llm.providers._fake_llm_server import FakeLLMServer


class RecordedSleeps:
    """A stand-in for ``asyncio.sleep`` that records each delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def server(fake_llm: FakeLLMServer) -> FakeLLMServer:
    """This package's name for the root conftest's ``fake_llm``."""
    return fake_llm


@pytest.fixture(params=["sdk", "wire"])
async def openai_provider(request: pytest.FixtureRequest,
                          server: FakeLLMServer) -> AsyncIterator[LLMProvider]:
    """A provider named ``openai`` talking to the fake server: the SDK's, then the wire one."""
    provider: LLMProvider
    if request.param == "sdk":
        provider = OpenAIProvider("openai", base_url=server.openai_url,
                                  api_key=ApiKey(server.openai_key))
    else:
        provider = OpenAIWireProvider("openai", base_url=server.openai_url,
                                      api_key=ApiKey(server.openai_key))
    yield provider
    await provider.aclose()


@pytest.fixture
async def anthropic_provider(server: FakeLLMServer) -> AsyncIterator[AnthropicProvider]:
    """An Anthropic provider talking to the fake server."""
    provider = AnthropicProvider("anthropic", base_url=server.anthropic_url,
                                 api_key=ApiKey(server.anthropic_key))
    yield provider
    await provider.aclose()


@pytest.fixture
def sleeps() -> RecordedSleeps:
    """The client's sleep: records delays, waits for nothing."""
    return RecordedSleeps()


@pytest.fixture
async def client(openai_provider: LLMProvider, anthropic_provider: AnthropicProvider,
                 sleeps: RecordedSleeps) -> AsyncIterator[LLMClient]:
    """A client of OpenAI, Anthropic (both the fake server) and echo; jitter fixed at 0.5."""
    async with LLMClient([openai_provider, anthropic_provider, EchoProvider()],
                         timeout_s=5.0, max_retries=2, backoff=Backoff(base_s=1.0, cap_s=8.0),
                         sleep=sleeps, random=lambda: 0.5) as llm:
        yield llm
