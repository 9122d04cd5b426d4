"""Embeddings through the client: OpenAI's SDK and the wire client over real HTTP, echo
offline, Anthropic refused."""

from __future__ import annotations

import math

import pytest

from beamish.llm.errors import BadRequestError, FallbacksExhaustedError, UnauthorizedError
from beamish.llm.providers import (
    ApiKey,
    EchoProvider,
    EmbeddingRequest,
    LLMClient,
    OpenAIProvider,
    Target,
)
from beamish.llm.providers.echo import EMBEDDING_DIMENSIONS, echo_embedding
from beamish.llm.providers.wire import OpenAIWireProvider
from beamish.store import LLMParameters
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault
from tests.llm.providers.conftest import RecordedSleeps

pytestmark = pytest.mark.anyio


async def test_openai_embeds_each_input_in_order(client: LLMClient,
                                                 server: FakeLLMServer) -> None:
    """OpenAI's embeddings API gives one vector per input, in order, with its usage."""
    result = await client.embed(Target(provider="openai", model="text-embedding-3-small"),
                                ["one two", "three"], dimensions=3)
    assert result.vectors == ((7.0, 1.0, 2.0), (5.0, 1.0, 2.0))
    assert result.usage.prompt_tokens == 3
    assert result.usage.completion_tokens == 0
    assert (result.provider, result.model, result.offline) == (
        client.provider("openai").kind, "text-embedding-3-small", False)
    sent = server.requests[-1].body
    assert (sent["input"], sent["dimensions"], sent["encoding_format"]) == (
        ["one two", "three"], 3, "float")


async def test_openai_embeddings_retry_a_server_error(client: LLMClient, server: FakeLLMServer,
                                                      sleeps: RecordedSleeps) -> None:
    """A 503 from the embeddings API is retried as chat calls are."""
    server.script(Fault.error(503, route="embeddings"))
    result = await client.embed(Target(provider="openai", model="e"), ["x"])
    assert len(result.vectors) == 1
    assert sleeps.delays == [0.5]
    assert [a.error is None for a in result.attempts] == [False, True]


@pytest.mark.parametrize("made", [OpenAIProvider, OpenAIWireProvider])
async def test_openai_embeddings_map_a_refused_key(
        server: FakeLLMServer, made: type[OpenAIProvider | OpenAIWireProvider]) -> None:
    """A refused key is an UnauthorizedError that never shows the key."""
    provider = made("openai", base_url=server.openai_url,
                    api_key=ApiKey("sk-wrong-key-0123456789abcdef"))
    try:
        with pytest.raises(UnauthorizedError) as caught:
            await provider.embed(EmbeddingRequest(model="e", inputs=("x",), timeout_s=5))
    finally:
        await provider.aclose()
    assert "0123456789abcdef" not in str(caught.value)


async def test_anthropic_refuses_embeddings_with_a_clear_error(client: LLMClient) -> None:
    """Anthropic has no embeddings API: a provider_rejected error saying what to configure."""
    with pytest.raises(FallbacksExhaustedError) as caught:
        await client.embed(Target(provider="anthropic", model="claude"), ["x"])
    assert isinstance(caught.value.last, BadRequestError)
    assert caught.value.code == "provider_rejected"
    assert caught.value.public_message == (
        "anthropic has no embeddings endpoint; configure an embeddings model for the task "
        "type embeddings")


async def test_a_refused_embedding_falls_back(client: LLMClient) -> None:
    """A provider without embeddings moves the call on to its fallbacks."""
    target = Target(provider="anthropic", model="claude",
                    parameters=LLMParameters(fallback_models=("echo:echo-1",)))
    result = await client.embed(target, ["hello"])
    assert (result.provider, result.offline) == ("echo", True)


async def test_echo_embeddings_are_deterministic_unit_vectors() -> None:
    """Equal texts get equal unit vectors of 256 dimensions (or as asked); others differ."""
    echo = EchoProvider()
    result = await echo.embed(EmbeddingRequest(model="echo-1", inputs=("a b", "a b", "c"),
                                               timeout_s=1))
    first, again, other = result.vectors
    assert first == again != other
    assert len(first) == EMBEDDING_DIMENSIONS == 256
    assert math.isclose(sum(x * x for x in first), 1.0)
    assert first == echo_embedding("a b")
    assert result.usage.prompt_tokens == 5
    assert result.offline
    sized = await echo.embed(EmbeddingRequest(model="echo-1", inputs=("a",), dimensions=8,
                                              timeout_s=1))
    assert len(sized.vectors[0]) == 8


async def test_embed_refuses_no_inputs(client: LLMClient) -> None:
    """No inputs is a ValueError before any provider is asked."""
    with pytest.raises(ValueError, match="at least one input"):
        await client.embed(Target(provider="echo", model="echo-1"), [])
