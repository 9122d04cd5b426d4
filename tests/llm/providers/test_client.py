"""LLMClient: resolved timeouts, retries with backoff, the fallback chain, and streams."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from beamish.llm.errors import (
    FallbacksExhaustedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    StreamBrokenError,
)
from beamish.llm.hierarchy import Layer, ResolvedConfig
from beamish.llm.providers import (
    AnthropicProvider,
    ApiKey,
    ChatMessage,
    ChatRequest,
    Completion,
    EchoProvider,
    LLMClient,
    LLMProvider,
    OpenAIProvider,
    ProviderChunk,
    StreamDone,
    StreamError,
    StreamEvent,
    Target,
    TokenDelta,
    Usage,
)
from beamish.store import LLMParameters, Provider
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault
from tests.llm.providers.conftest import RecordedSleeps

pytestmark = pytest.mark.anyio

ASK = [ChatMessage(role="user", content="how are you")]
ANSWER = "you said: how are you"


def _target(provider: Provider = "openai", *fallbacks: str, **parameters: int) -> Target:
    return Target(provider=provider, model="model-a", parameters=LLMParameters(
        fallback_models=fallbacks, **parameters))


async def _events(client: LLMClient, target: Target) -> list[StreamEvent]:
    async with client.stream(target, ASK) as stream:
        return [event async for event in stream]


def _tries(answer: Completion | FallbacksExhaustedError) -> list[tuple[str, str, bool]]:
    return [(a.provider, a.model, a.error is None) for a in answer.attempts]


@pytest.fixture
async def quick_client(server: FakeLLMServer, sleeps: RecordedSleeps,
                       openai_provider: LLMProvider) -> AsyncIterator[LLMClient]:
    """Like ``client``, with a 1 s default timeout for the hang and stall tests (long enough
    for a real answer from the local server on a loaded machine)."""
    providers = [openai_provider,
                 AnthropicProvider("anthropic", base_url=server.anthropic_url,
                                   api_key=ApiKey(server.anthropic_key)), EchoProvider()]
    async with LLMClient(providers, timeout_s=1.0, max_retries=1, sleep=sleeps,
                         random=lambda: 0.5) as llm:
        yield llm


class _RecordingEcho(EchoProvider):
    """The echo provider, remembering each request it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        return await super().complete(request)


# -- complete: retries ---------------------------------------------------------------------


async def test_first_try_success_has_one_attempt(client: LLMClient) -> None:
    """A healthy call is served at once, without fallback."""
    answer = await client.complete(_target(), ASK)
    assert (answer.text, _tries(answer), answer.fell_back) == (
        ANSWER, [("openai", "model-a", True)], False)


async def test_server_errors_are_retried_with_exponential_backoff(
        client: LLMClient, server: FakeLLMServer, sleeps: RecordedSleeps) -> None:
    """Two 500s, then success: waits are jitter * base * 2**(n-1) = 0.5 then 1.0 s."""
    server.script(Fault.error(500), Fault.error(503))
    answer = await client.complete(_target(), ASK)
    assert answer.text == ANSWER
    assert sleeps.delays == [0.5, 1.0]
    assert _tries(answer) == [("openai", "model-a", False)] * 2 + [("openai", "model-a", True)]


async def test_retry_after_is_honoured(client: LLMClient, server: FakeLLMServer,
                                       sleeps: RecordedSleeps) -> None:
    """A 429 with Retry-After: 3 waits exactly 3 s, not the jittered backoff."""
    server.script(Fault.error(429, retry_after="3"))
    await client.complete(_target(), ASK)
    assert sleeps.delays == [3.0]


async def test_retry_after_too_long_falls_back_without_waiting(
        client: LLMClient, server: FakeLLMServer, sleeps: RecordedSleeps) -> None:
    """Asked to wait past the limit, the client moves on to the fallback at once."""
    server.script(Fault.error(429, retry_after="3600"))
    answer = await client.complete(_target("openai", "anthropic:model-b"), ASK)
    assert (answer.provider, answer.model, answer.fell_back) == ("anthropic", "model-b", True)
    assert sleeps.delays == []


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_non_retryable_errors_are_not_retried(client: LLMClient, server: FakeLLMServer,
                                                    sleeps: RecordedSleeps, status: int) -> None:
    """A 4xx other than 429 goes straight to the next model: one request, no wait."""
    server.script(Fault.error(status))
    answer = await client.complete(_target("openai", "echo:echo-1"), ASK)
    assert answer.offline
    assert len(server.requests) == 1
    assert sleeps.delays == []


async def test_target_max_retries_overrides_the_client(client: LLMClient, server: FakeLLMServer,
                                                       sleeps: RecordedSleeps) -> None:
    """max_retries=0 in the parameters means one try, then the fallback."""
    server.script(Fault.error(500))
    answer = await client.complete(_target("openai", "echo:echo-1", max_retries=0), ASK)
    assert _tries(answer) == [("openai", "model-a", False), ("echo", "echo-1", True)]
    assert sleeps.delays == []


async def test_timeouts_are_retried(quick_client: LLMClient, server: FakeLLMServer,
                                    sleeps: RecordedSleeps) -> None:
    """A request that hangs past the timeout is retried, and the retry answers."""
    server.script(Fault.hang())
    answer = await quick_client.complete(_target(), ASK)
    assert answer.text == ANSWER
    assert len(sleeps.delays) == 1
    assert "did not answer within 1 s" in str(answer.attempts[0].error)


async def test_the_resolved_timeout_reaches_the_provider() -> None:
    """parameters.timeout_s wins; without it the client's timeout_s is used."""
    echo = _RecordingEcho()
    async with LLMClient([echo], timeout_s=42.0) as client:
        await client.complete(_target("echo", timeout_s=7), ASK)
        await client.complete(_target("echo"), ASK)
    assert [r.timeout_s for r in echo.requests] == [7.0, 42.0]


# -- complete: the fallback chain ------------------------------------------------------------


async def test_fallback_chain_is_walked_in_order(client: LLMClient, server: FakeLLMServer,
                                                 sleeps: RecordedSleeps) -> None:
    """openai fails three times (two retries), anthropic's model-b fails, echo answers."""
    server.script(*[Fault.error(500)] * 3, Fault.error(400))
    answer = await client.complete(
        _target("openai", "anthropic:model-b", "echo:echo-1"), ASK)
    assert _tries(answer) == [("openai", "model-a", False)] * 3 + [
        ("anthropic", "model-b", False), ("echo", "echo-1", True)]
    assert (answer.provider, answer.offline, answer.fell_back) == ("echo", True, True)
    assert sleeps.delays == [0.5, 1.0]


async def test_bare_fallback_means_the_same_provider(client: LLMClient,
                                                     server: FakeLLMServer) -> None:
    """A bare model name in fallback_models is tried on the target's own provider."""
    server.script(Fault.error(404))
    answer = await client.complete(_target("anthropic", "model-b"), ASK)
    assert (answer.provider, answer.model) == ("anthropic", "model-b")
    assert [r.body["model"] for r in server.requests] == ["model-a", "model-b"]


async def test_unconfigured_links_are_skipped_and_named(client: LLMClient) -> None:
    """A link to a provider nobody configured is recorded and passed over."""
    answer = await client.complete(_target("ollama", "echo:echo-1"), ASK)
    assert _tries(answer) == [("ollama", "model-a", False), ("echo", "echo-1", True)]
    assert "provider 'ollama' is not usable" in str(answer.attempts[0].error)


async def test_exhausted_chain_names_every_try(client: LLMClient,
                                               server: FakeLLMServer) -> None:
    """When every link fails, the error lists each provider:model and why."""
    server.script(Fault.error(401), Fault.error(400, message="no such model"))
    with pytest.raises(FallbacksExhaustedError) as caught:
        await client.complete(_target("openai", "anthropic:model-b"), ASK)
    error = caught.value
    assert _tries(error) == [("openai", "model-a", False), ("anthropic", "model-b", False)]
    assert "openai:model-a: openai:model-a answered HTTP 401" in str(error)
    assert "anthropic:model-b answered HTTP 400: no such model" in str(error)
    assert isinstance(error.__cause__, Exception)


async def test_a_call_needs_messages(client: LLMClient) -> None:
    """No messages is a caller's mistake, reported before any request."""
    with pytest.raises(ValueError, match="at least one message"):
        await client.complete(_target(), [])


async def test_fallbacks_and_retries_are_logged_with_keys_masked(
        server: FakeLLMServer, sleeps: RecordedSleeps, caplog: pytest.LogCaptureFixture) -> None:
    """Every log line (ours and the SDKs', at DEBUG) is free of the key."""
    secret = "sk-leaky-key-that-must-not-show-0042"
    leaky = OpenAIProvider("openai", base_url=server.openai_url, api_key=ApiKey(secret))
    caplog.set_level(logging.DEBUG)
    async with LLMClient([leaky, EchoProvider()], sleep=sleeps) as client:
        answer = await client.complete(_target("openai", "echo:echo-1"), ASK)
    assert answer.offline
    assert secret not in caplog.text
    assert secret not in repr(answer)
    assert "falling back to echo:echo-1" in caplog.text
    assert "sk-...0042" in caplog.text


# -- streams ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_stream_delivers_tokens_then_done_with_usage(client: LLMClient,
                                                           kind: Provider) -> None:
    """Tokens arrive one by one; the done event carries the provider's usage."""
    events = await _events(client, _target(kind))
    assert [e.text for e in events if isinstance(e, TokenDelta)] == [
        "you ", "said: ", "how ", "are ", "you"]
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert (done.usage, done.provider, done.model) == (
        Usage(prompt_tokens=3, completion_tokens=5), client.provider(kind).kind, "model-a")


async def test_stream_exposes_its_state(client: LLMClient) -> None:
    """After the stream: status ok, whole text, final usage, who served it."""
    async with client.stream(_target("anthropic"), ASK) as stream:
        assert (stream.status, stream.provider) == ("open", None)
        async for _ in stream:
            pass
    assert (stream.status, stream.text, stream.usage) == (
        "ok", ANSWER, Usage(prompt_tokens=3, completion_tokens=5))
    assert (stream.provider, stream.provider_name, stream.model) == (
        "anthropic", "anthropic", "model-a")
    assert [a.error for a in stream.attempts] == [None]


@pytest.mark.parametrize("fault", [Fault.cut(after_tokens=0), Fault.end_early(after_tokens=0)])
async def test_stream_broken_before_first_token_falls_back(
        client: LLMClient, server: FakeLLMServer, fault: Fault) -> None:
    """Dropped or ended before any token, the stream moves on to the next model."""
    server.script(fault)
    events = await _events(client, _target("openai", "anthropic:model-b", max_retries=0))
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert (done.provider, done.model) == ("anthropic", "model-b")
    assert [(a.provider, a.error is None) for a in done.attempts] == [
        ("openai", False), ("anthropic", True)]
    assert "".join(e.text for e in events if isinstance(e, TokenDelta)) == ANSWER


@pytest.mark.parametrize("fault", [Fault.garbage(after_tokens=0),
                                   Fault.error_event(after_tokens=0)])
async def test_unreadable_stream_start_falls_back(client: LLMClient, server: FakeLLMServer,
                                                  fault: Fault) -> None:
    """Garbage or an in-stream error before the first token counts as a failed try."""
    server.script(fault)
    events = await _events(client, _target("anthropic", "echo:echo-1", max_retries=0))
    assert isinstance(events[-1], StreamDone)
    assert events[-1].offline


async def test_stream_broken_before_first_token_is_retried(
        client: LLMClient, server: FakeLLMServer, sleeps: RecordedSleeps) -> None:
    """With retries left, the same model is tried again first."""
    server.script(Fault.cut(after_tokens=0))
    events = await _events(client, _target("anthropic"))
    assert isinstance(events[-1], StreamDone)
    assert events[-1].provider == "anthropic"
    assert sleeps.delays == [0.5]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_stream_cut_mid_answer_ends_with_an_error_event(
        client: LLMClient, server: FakeLLMServer, kind: Provider) -> None:
    """Two tokens, then a dropped connection: a StreamError with the usage so far; no retry."""
    server.script(Fault.cut(after_tokens=2))
    async with client.stream(_target(kind, "echo:echo-1"), ASK) as stream:
        events = [event async for event in stream]
    assert [type(e) for e in events] == [TokenDelta, TokenDelta, StreamError]
    end = events[-1]
    assert isinstance(end, StreamError)
    assert isinstance(end.error, StreamBrokenError)
    assert isinstance(end.error.__cause__, ProviderUnavailableError)
    assert "stream broke after 2 chunks" in str(end.error)
    assert end.usage.completion_tokens == 2
    assert (stream.status, stream.text, len(server.requests)) == ("error", "you said: ", 1)


async def test_stream_ending_unfinished_is_never_a_success(client: LLMClient,
                                                           server: FakeLLMServer) -> None:
    """A stream that ends cleanly but without a finish reason ends in StreamError."""
    server.script(Fault.end_early(after_tokens=3))
    events = await _events(client, _target("openai"))
    end = events[-1]
    assert isinstance(end, StreamError)
    assert "without saying it was complete" in str(end.error)
    assert end.error.__cause__ is None


async def test_stream_stalling_mid_answer_times_out_into_an_error_event(
        quick_client: LLMClient, server: FakeLLMServer) -> None:
    """A stream that goes quiet past the timeout ends with a StreamError caused by it."""
    server.script(Fault.stall(after_tokens=1))
    events = await _events(quick_client, _target("anthropic"))
    end = events[-1]
    assert isinstance(end, StreamError)
    assert isinstance(end.error.__cause__, ProviderTimeoutError)


async def test_stream_hanging_before_first_token_times_out_and_falls_back(
        quick_client: LLMClient, server: FakeLLMServer) -> None:
    """No first token within the timeout counts as a failure before the answer began."""
    server.script(Fault.hang(), Fault.hang())
    events = await _events(quick_client, _target("openai", "echo:echo-1"))
    assert isinstance(events[-1], StreamDone)
    assert events[-1].offline


class _Deliberate(EchoProvider):
    """The echo provider taking its time before the answer, offline or not."""

    def __init__(self, offline: bool) -> None:
        super().__init__()
        self.offline = offline  # type: ignore[misc]

    async def complete(self, request: ChatRequest) -> Completion:
        await asyncio.sleep(0.05)
        return await super().complete(request)


@pytest.mark.parametrize("offline", [True, False])
async def test_only_providers_with_io_to_wait_for_are_timed(offline: bool) -> None:
    """An offline provider answers in this process: the client arms no timeout for it.
    Any other provider gets the resolved timeout."""
    async with LLMClient([_Deliberate(offline)], timeout_s=0.01, max_retries=0) as client:
        if offline:
            assert (await client.complete(_target("echo"), ASK)).offline
        else:
            with pytest.raises(FallbacksExhaustedError, match="no answer"):
                await client.complete(_target("echo"), ASK)


class _Silent(EchoProvider):
    """A provider whose whole answer is ready at once, and it holds no token."""

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        yield ProviderChunk(usage=Usage(prompt_tokens=1))


async def test_an_answer_ready_at_once_streams_as_tokens_then_done() -> None:
    """A provider whose answer is ready at once (nothing to wait for between its chunks)
    streams as its tokens then done, as any other does."""
    async with LLMClient([EchoProvider()]) as client:
        events = await _events(client, _target("echo"))
    assert [e.text for e in events if isinstance(e, TokenDelta)] == [
        "[echo] ", "how ", "are ", "you"]
    assert isinstance(events[-1], StreamDone)
    assert events[-1].usage == Usage(prompt_tokens=3, completion_tokens=4)


async def test_an_answer_made_at_once_without_a_token_is_a_failed_try() -> None:
    """No token and no finish reason in an answer ready at once: the try failed as any
    stream ending before its first token does, and the chain moves on."""
    async with LLMClient([_Silent(), EchoProvider("backup")], max_retries=0) as client:
        events = await _events(client, _target("echo", "backup:echo-1"))
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert [(a.provider, a.error is None) for a in done.attempts] == [
        ("echo", False), ("backup", True)]
    assert "before its first token" in (done.attempts[0].error or "")


async def test_stream_with_every_link_failing_raises(client: LLMClient,
                                                     server: FakeLLMServer) -> None:
    """Nothing answered at all: iteration raises FallbacksExhaustedError, status error."""
    server.script(Fault.error(401))
    stream = client.stream(_target("openai", max_retries=0), ASK)
    with pytest.raises(FallbacksExhaustedError, match="answered HTTP 401"):
        await _drain(stream)
    assert stream.status == "error"


async def _drain(events: AsyncIterator[StreamEvent]) -> None:
    async for _ in events:
        pass


@pytest.mark.parametrize(("kind", "prompt_tokens"), [("openai", 0), ("anthropic", 3)])
async def test_cancelled_stream_keeps_the_usage_seen_so_far(
        client: LLMClient, server: FakeLLMServer, kind: Provider, prompt_tokens: int) -> None:
    """A consumer cancelled mid-answer leaves status cancelled and the usage it saw."""
    server.script(Fault.stall(after_tokens=3))
    stream = client.stream(_target(kind), ASK)
    three_tokens = asyncio.Event()

    async def consume() -> None:
        async with stream:
            async for event in stream:
                if isinstance(event, TokenDelta) and len(stream.text.split()) == 3:
                    three_tokens.set()

    async with asyncio.TaskGroup() as group:
        consumer = group.create_task(consume())
        await three_tokens.wait()
        consumer.cancel()
    assert consumer.cancelled()
    assert stream.status == "cancelled"
    assert stream.usage == Usage(prompt_tokens=prompt_tokens, completion_tokens=3)


async def test_closing_a_stream_early_keeps_its_usage(client: LLMClient) -> None:
    """Leaving the async with after two tokens closes the stream as cancelled."""
    async with client.stream(_target("anthropic"), ASK) as stream:
        async for _ in stream:
            if stream.usage.completion_tokens == 2:
                break
    assert (stream.status, stream.usage) == (
        "cancelled", Usage(prompt_tokens=3, completion_tokens=2))


async def test_validate_all_reports_each_provider(client: LLMClient) -> None:
    """validate_all checks every provider at once, by name."""
    found = await client.validate_all()
    assert [(v.provider, v.status) for v in found] == [
        ("anthropic", "reachable"), ("echo", "reachable"), ("openai", "reachable")]
    assert (await client.validate("openai")).models == 2
    assert [m.model for m in await client.list_models("anthropic")] == ["model-a", "model-b"]


async def test_a_resolved_config_is_a_call_target(client: LLMClient) -> None:
    """What config resolution returns can be called as is, fallbacks included."""
    resolved = ResolvedConfig(
        provider="ollama", model="llama3:8b", user_id="ada", task_type="chat", tier="free",
        parameters=LLMParameters(fallback_models=("echo:echo-1",)),
        sources={"provider": Layer.REQUEST, "model": Layer.REQUEST})
    answer = await client.complete(resolved, ASK)
    assert (answer.provider, answer.model, answer.fell_back) == ("echo", "echo-1", True)
