"""The OpenAI and Anthropic providers through their official SDKs, and the OpenAI-compatible
API through the wire client, over real local HTTP: the same answers and errors from each."""

from __future__ import annotations

import socket
import traceback
from collections.abc import AsyncIterator

import pytest

from beamish.llm.errors import (
    BadRequestError,
    ProviderCallError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    UnauthorizedError,
)
from beamish.llm.providers import (
    AnthropicProvider,
    ApiKey,
    ChatMessage,
    ChatRequest,
    LLMProvider,
    OpenAIProvider,
    ProviderChunk,
    Usage,
)
from beamish.llm.providers.wire import OpenAIWireProvider
from beamish.store import LLMParameters
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault

pytestmark = pytest.mark.anyio

WRONG_KEY = "sk-wrong-but-secret-key-0123456789"
KINDS = ("openai", "wire", "anthropic")
"""The OpenAI SDK, the wire client of the OpenAI-compatible API, the Anthropic SDK."""
ASK = (ChatMessage(role="user", content="how are you"),)


def _make(kind: str, server: FakeLLMServer, key: str | None = None,
          url: str | None = None) -> LLMProvider:
    if kind == "openai":
        return OpenAIProvider("openai", base_url=url or server.openai_url,
                              api_key=ApiKey(key or server.openai_key))
    if kind == "wire":
        return OpenAIWireProvider("wire", base_url=url or server.openai_url,
                                  api_key=ApiKey(key or server.openai_key))
    return AnthropicProvider("anthropic", base_url=url or server.anthropic_url,
                             api_key=ApiKey(key or server.anthropic_key))


@pytest.fixture(params=KINDS)
async def provider(request: pytest.FixtureRequest,
                   server: FakeLLMServer) -> AsyncIterator[LLMProvider]:
    """Each provider in turn, talking to the fake server with the right key."""
    made = _make(request.param, server)
    yield made
    await made.aclose()


def _request(timeout_s: float = 5.0, **parameters: int | float) -> ChatRequest:
    return ChatRequest(model="model-a", messages=ASK, timeout_s=timeout_s,
                       parameters=LLMParameters.model_validate(parameters))


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_complete_returns_text_and_usage(provider: LLMProvider) -> None:
    """A plain call returns the answer with the usage the server reported."""
    answer = await provider.complete(_request())
    assert answer.text == "you said: how are you"
    assert answer.usage == Usage(prompt_tokens=3, completion_tokens=5)
    assert (answer.provider, answer.model, answer.offline) == (provider.kind, "model-a", False)


async def test_stream_yields_tokens_then_usage(provider: LLMProvider) -> None:
    """A stream yields each token and ends with a finish reason and the reported usage."""
    chunks = [c async for c in provider.stream(_request())]
    assert "".join(c.text for c in chunks) == "you said: how are you"
    assert sum(1 for c in chunks if c.text) == 5
    assert any(c.finish_reason for c in chunks)
    reported = [c.usage for c in chunks if c.usage is not None]
    assert reported[-1] == Usage(prompt_tokens=3, completion_tokens=5)


async def test_max_tokens_cuts_the_answer(provider: LLMProvider) -> None:
    """max_tokens reaches the server, which stops early and says so."""
    answer = await provider.complete(_request(max_tokens=2))
    assert answer.text == "you said: "
    assert answer.finish_reason in {"length", "max_tokens"}


async def test_wrong_key_is_unauthorized_and_never_shown(server: FakeLLMServer) -> None:
    """A 401 quoting the key becomes UnauthorizedError with the key masked everywhere."""
    for name in KINDS:
        leaky = _make(name, server, key=WRONG_KEY)
        with pytest.raises(UnauthorizedError) as caught:
            await leaky.complete(_request())
        await leaky.aclose()
        error = caught.value
        assert error.status_code == 401
        assert "sk-...6789" in str(error)
        printed = "".join(traceback.format_exception(error))
        assert WRONG_KEY not in printed
        assert WRONG_KEY not in repr(error)
        assert WRONG_KEY not in repr(leaky)


@pytest.mark.parametrize(("status", "kind"), [(429, RateLimitedError),
                                              (500, ProviderUnavailableError),
                                              (529, ProviderUnavailableError),
                                              (400, BadRequestError),
                                              (404, BadRequestError),
                                              (403, UnauthorizedError)])
async def test_http_errors_map_to_beamish_errors(provider: LLMProvider, server: FakeLLMServer,
                                                 status: int,
                                                 kind: type[ProviderCallError]) -> None:
    """Each HTTP error status becomes its beamish error, naming provider and model."""
    server.script(Fault.error(status))
    with pytest.raises(kind) as caught:
        await provider.complete(_request())
    assert caught.type is kind
    assert caught.value.status_code == status
    assert str(caught.value).startswith(f"{provider.name}:model-a answered HTTP {status}")


async def test_rate_limit_carries_retry_after(provider: LLMProvider,
                                              server: FakeLLMServer) -> None:
    """The Retry-After header of a 429 lands on the error."""
    server.script(Fault.error(429, retry_after="7"))
    with pytest.raises(RateLimitedError) as caught:
        await provider.complete(_request())
    assert caught.value.retry_after == 7.0


async def test_errors_before_a_stream_map_the_same(provider: LLMProvider,
                                                   server: FakeLLMServer) -> None:
    """A stream refused with 429 raises RateLimitedError before any chunk."""
    server.script(Fault.error(429, retry_after="1"))
    with pytest.raises(RateLimitedError):
        async for _ in provider.stream(_request()):
            pass


async def test_no_answer_in_time_is_a_timeout(provider: LLMProvider,
                                              server: FakeLLMServer) -> None:
    """A server that hangs past timeout_s gives ProviderTimeoutError naming the limit."""
    server.script(Fault.hang())
    with pytest.raises(ProviderTimeoutError, match=r"did not answer within 0\.05 s"):
        await provider.complete(_request(timeout_s=0.05))


async def test_refused_connection_is_unavailable(server: FakeLLMServer) -> None:
    """Nobody listening: ProviderUnavailableError, not a timeout."""
    for name in KINDS:
        url = _closed_port_url() + ("/v1" if name != "anthropic" else "")
        unreachable = _make(name, server, url=url)
        with pytest.raises(ProviderUnavailableError) as caught:
            await unreachable.complete(_request())
        await unreachable.aclose()
        assert caught.type is ProviderUnavailableError
        assert "could not be reached" in str(caught.value)


async def test_stream_dropped_mid_answer_raises_unavailable(provider: LLMProvider,
                                                            server: FakeLLMServer) -> None:
    """A connection dropped after two tokens surfaces as ProviderUnavailableError."""
    server.script(Fault.cut(after_tokens=2))
    seen: list[str] = []
    with pytest.raises(ProviderUnavailableError):
        await _collect(provider.stream(_request()), seen)
    assert "".join(seen) == "you said: "


@pytest.mark.parametrize("fault", [Fault.garbage(after_tokens=1),
                                   Fault.error_event(after_tokens=1)])
async def test_bad_or_failing_stream_frames_raise_unavailable(provider: LLMProvider,
                                                              server: FakeLLMServer,
                                                              fault: Fault) -> None:
    """A frame that is not JSON, or the API's in-stream error, is ProviderUnavailableError."""
    server.script(fault)
    seen: list[str] = []
    with pytest.raises(ProviderUnavailableError) as caught:
        await _collect(provider.stream(_request()), seen)
    assert "".join(seen) == "you "
    assert caught.value.status_code in {None, 529}
    assert isinstance(caught.value.__cause__, Exception)


async def _collect(chunks: AsyncIterator[ProviderChunk], into: list[str]) -> None:
    async for chunk in chunks:
        into.append(chunk.text)


async def test_list_models_reads_the_catalog_and_context_windows(provider: LLMProvider,
                                                                 ) -> None:
    """Discovery lists each model, with its context window where the server gives one."""
    models = await provider.list_models()
    assert [(m.provider, m.model, m.context_window) for m in models] == [
        (provider.name, "model-a", 8192), (provider.name, "model-b", None)]


async def test_validate_reports_reachable(provider: LLMProvider) -> None:
    """A server that lists models with our key is reachable."""
    validation = await provider.validate()
    assert (validation.status, validation.models) == ("reachable", 2)


async def test_validate_reports_unauthorized_and_unreachable(server: FakeLLMServer) -> None:
    """A refused key is unauthorized; nobody listening is unreachable; neither shows the key."""
    for name in KINDS:
        refused = _make(name, server, key=WRONG_KEY)
        gone = _make(name, server, url=_closed_port_url())
        denied, down = await refused.validate(), await gone.validate()
        await refused.aclose()
        await gone.aclose()
        assert (denied.status, down.status) == ("unauthorized", "unreachable")
        assert WRONG_KEY not in denied.detail
        assert "check the provider's API key" in denied.detail


async def test_validate_counts_a_server_error_as_unreachable(provider: LLMProvider,
                                                             server: FakeLLMServer) -> None:
    """A 503 from the model list is unreachable: the server is there but not serving."""
    server.script(Fault.error(503, route="models"))
    assert (await provider.validate()).status == "unreachable"


async def test_validate_counts_a_missing_model_list_as_reachable(provider: LLMProvider,
                                                                 server: FakeLLMServer) -> None:
    """A 404 from the model list still proves the server answers and took the key."""
    server.script(Fault.error(404, route="models"))
    validation = await provider.validate()
    assert (validation.status, validation.models) == ("reachable", None)
    assert "could not list models" in validation.detail


async def test_openai_sends_sampling_parameters(server: FakeLLMServer) -> None:
    """OpenAI gets max_completion_tokens; compatible servers get max_tokens; unset are omitted."""
    made: list[tuple[LLMProvider, str]] = [
        (OpenAIProvider(kind, base_url=server.openai_url, kind=kind,  # type: ignore[arg-type]
                        api_key=ApiKey(server.openai_key)), field)
        for kind, field in (("openai", "max_completion_tokens"), ("ollama", "max_tokens"))]
    made += [(OpenAIWireProvider(kind, base_url=server.openai_url, kind=kind,
                                 api_key=ApiKey(server.openai_key)), "max_tokens")
             for kind in ("ollama", "tgi", "openai_compatible")]
    for sdk, field in made:
        await sdk.complete(_request(max_tokens=50, temperature=0.3))
        await sdk.aclose()
        body = server.requests[-1].body
        assert (body[field], body["temperature"]) == (50, 0.3)
        assert "top_p" not in body
        assert "max_completion_tokens" not in body or field == "max_completion_tokens"


@pytest.mark.parametrize("client", [OpenAIProvider, OpenAIWireProvider])
async def test_keyless_servers_get_a_placeholder_key(
        server: FakeLLMServer, client: type[OpenAIProvider | OpenAIWireProvider]) -> None:
    """The SDK insists on a key; a keyless server receives the documented 'unused'."""
    sdk = client("ollama", base_url=server.openai_url, api_key=None, kind="ollama")
    with pytest.raises(UnauthorizedError):
        await sdk.complete(_request())
    await sdk.aclose()
    assert server.requests[-1].key == "unused"


async def test_anthropic_moves_system_messages_and_defaults_max_tokens(
        server: FakeLLMServer) -> None:
    """System messages become the system field; max_tokens defaults to 4096."""
    sdk = _make("anthropic", server)
    messages = (ChatMessage(role="system", content="be kind"),
                ChatMessage(role="system", content="be brief"),
                ChatMessage(role="user", content="hi"),
                ChatMessage(role="assistant", content="hello"),
                ChatMessage(role="user", content="bye"))
    answer = await sdk.complete(ChatRequest(model="model-a", messages=messages, timeout_s=5.0,
                                            parameters=LLMParameters(top_p=0.5)))
    await sdk.aclose()
    body = server.requests[-1].body
    assert body["system"] == "be kind\n\nbe brief"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert (body["max_tokens"], body["top_p"]) == (4096, 0.5)
    assert answer.usage.prompt_tokens == 3 + 4
