"""The offline echo provider: deterministic, labelled, streamed token by token, counted."""

from __future__ import annotations

import pytest

from beamish.llm.providers import (
    ChatMessage,
    ChatRequest,
    EchoProvider,
    LLMClient,
    Prompt,
    ProviderChunk,
    StreamDone,
    Target,
    TokenDelta,
    Usage,
)
from beamish.llm.providers.echo import LABEL, _WordCounts, count_tokens
from beamish.llm.settings import ECHO_MODEL
from beamish.store import LLMParameters

pytestmark = pytest.mark.anyio

MESSAGES = (ChatMessage(role="system", content="be brief"),
            ChatMessage(role="user", content="first question"),
            ChatMessage(role="assistant", content="an answer"),
            ChatMessage(role="user", content="tell me a story"))


def _request(max_tokens: int | None = None) -> ChatRequest:
    return ChatRequest(model=ECHO_MODEL, messages=MESSAGES, timeout_s=1.0,
                       parameters=LLMParameters(max_tokens=max_tokens))


async def test_echo_answers_the_last_user_message_labelled() -> None:
    """The answer is '[echo] ' plus the last user message, marked offline."""
    answer = await EchoProvider().complete(_request())
    assert answer.text == f"{LABEL} tell me a story"
    assert (answer.offline, answer.provider, answer.finish_reason) == (True, "echo", "stop")


async def test_echo_is_deterministic() -> None:
    """The same request gets the same answer and usage every time."""
    echo = EchoProvider()
    assert await echo.complete(_request()) == await echo.complete(_request())


async def test_echo_counts_words_as_tokens() -> None:
    """Prompt tokens are the words of every message; completion tokens the answer's words."""
    answer = await EchoProvider().complete(_request())
    assert answer.usage == Usage(prompt_tokens=2 + 2 + 2 + 4, completion_tokens=5)
    assert count_tokens(answer.text) == answer.usage.completion_tokens


async def test_echo_streams_token_by_token_with_usage_first_and_last() -> None:
    """One chunk per word, the usage on the first (prompt and one token) and on the finish
    chunk (the whole answer), as Anthropic reports it."""
    chunks = [c async for c in EchoProvider().stream(_request())]
    assert [c.text for c in chunks] == ["[echo] ", "tell ", "me ", "a ", "story", ""]
    assert [(i, c.usage) for i, c in enumerate(chunks) if c.usage] == [
        (0, Usage(prompt_tokens=10, completion_tokens=1)),
        (5, Usage(prompt_tokens=10, completion_tokens=5))]
    assert chunks[-1] == ProviderChunk(usage=Usage(prompt_tokens=10, completion_tokens=5),
                                       finish_reason="stop")


async def test_echo_honours_max_tokens() -> None:
    """max_tokens cuts the answer with finish_reason 'length'."""
    answer = await EchoProvider().complete(_request(max_tokens=2))
    assert (answer.text, answer.finish_reason) == ("[echo] tell ", "length")
    assert answer.usage.completion_tokens == 2


async def test_echo_without_a_user_message_still_answers() -> None:
    """Only a system message: the answer is the label alone."""
    request = ChatRequest(model=ECHO_MODEL, timeout_s=1.0,
                          messages=(ChatMessage(role="system", content="x"),))
    assert (await EchoProvider().complete(request)).text == LABEL


async def test_echo_lists_its_one_model_and_validates() -> None:
    """Discovery finds echo-1; validation says reachable."""
    echo = EchoProvider()
    assert [m.model for m in await echo.list_models()] == [ECHO_MODEL]
    validation = await echo.validate()
    assert (validation.status, validation.ok, validation.models) == ("reachable", True, 1)


async def test_echo_stream_through_the_client_is_labelled_offline() -> None:
    """Through the client, the stream's end event says offline and carries exact usage."""
    async with LLMClient([EchoProvider()]) as client:
        stream = client.stream(Target(provider="echo", model=ECHO_MODEL), MESSAGES)
        events = [e async for e in stream]
    assert [e.text for e in events if isinstance(e, TokenDelta)] == [
        "[echo] ", "tell ", "me ", "a ", "story"]
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert (done.offline, done.usage, stream.offline, stream.text) == (
        True, Usage(prompt_tokens=10, completion_tokens=5), True, "[echo] tell me a story")


async def test_an_echo_stream_left_early_counts_the_tokens_sent() -> None:
    """Closed after three tokens, the stream's usage is the prompt and those three."""
    async with LLMClient([EchoProvider()]) as client:
        stream = client.stream(Target(provider="echo", model=ECHO_MODEL), MESSAGES)
        async with stream:
            seen = 0
            async for event in stream:
                seen += isinstance(event, TokenDelta)
                if seen == 3:
                    break
    assert (stream.status, stream.usage) == (
        "cancelled", Usage(prompt_tokens=10, completion_tokens=3))


async def test_every_kind_of_prompt_is_counted_from_its_messages() -> None:
    """The echo provider counts its prompt tokens itself, from the messages: a trusted prompt,
    a checked one and a tuple of the same messages count the same."""
    said = Prompt.trusted([ChatMessage(role="user", content="a b c")])
    async with LLMClient([EchoProvider()]) as client:
        target = Target(provider="echo", model=ECHO_MODEL)
        for prompt in (said, Prompt(said), tuple(said)):
            assert (await client.complete(target, prompt)).usage.prompt_tokens == 3


def test_word_counts_are_remembered_within_a_bound() -> None:
    """Counts match count_tokens, repeated texts are counted once, and the memory of texts
    stays under max_chars (everything is forgotten past it, then counted again)."""
    counts = _WordCounts(max_chars=30)
    history = [ChatMessage(role="user", content="one two"),
               ChatMessage(role="assistant", content="[echo] one  two\n")]
    assert counts.total(history) == 2 + 3
    assert counts.total(history * 3) == 3 * 5
    assert counts._chars == 7 + 16  # each text once
    longer = ChatMessage(role="user", content="a b c d e f g h i j k")  # 21 more: past 30
    assert counts.total([*history, longer]) == 5 + 11
    assert counts._chars == 21  # forgotten, but for the text that went past
    assert counts.total(history) == 5
    assert counts._chars <= 30
