"""How a streamed call's frames reach the client: events ready together go out together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import anyio
import pytest

from beamish.application import Application
from beamish.llm.providers.base import Usage
from beamish.llm.providers.stream import StreamDone, StreamEvent, TokenDelta
from beamish.server.api.calls import RELAY_BACKLOG, CallPlan, StreamingCall
from beamish.server.api.errors import ErrorInfo
from beamish.server.api.sse import StreamInfo

DONE = StreamDone(Usage(prompt_tokens=1, completion_tokens=3), "echo", "echo", "echo-1",
                  "stop", True, ())


class _Wire:
    """Frames an event as its text, the terminal one as END."""

    def opening(self, info: StreamInfo) -> bytes:
        return b"<"

    def event(self, info: StreamInfo, event: StreamEvent) -> bytes:
        return event.text.encode() if isinstance(event, TokenDelta) else b"END"

    def failure(self, request_id: str, error: ErrorInfo) -> bytes:
        return b"FAIL"


def _call() -> StreamingCall:
    return StreamingCall(cast(Application, None), cast(CallPlan, None), _Wire(), "r1")


class _Sent:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, message: Any) -> None:
        self.bodies.append(message["body"])


async def _relay(events: AsyncIterator[StreamEvent], sent: _Sent) -> bytes:
    first = await anext(events)
    return await _call()._relay(sent, cast(StreamInfo, None), first, events)


@pytest.mark.anyio
async def test_events_that_arrive_together_are_sent_in_one_body() -> None:
    """After the first token (sent at once), the rest of an answer read at once goes out
    as one body with its end."""
    async def at_once() -> AsyncIterator[StreamEvent]:
        for text in ("a", "b", "c"):
            yield TokenDelta(text)
        yield DONE

    sent = _Sent()
    assert await _relay(at_once(), sent) == b"bcEND"
    assert sent.bodies == [b"<a"]


@pytest.mark.anyio
async def test_an_event_that_arrives_alone_is_sent_before_the_next_is_read() -> None:
    """Each token of a paced answer is sent as soon as it is read."""
    gates = [asyncio.Event() for _ in range(3)]
    sent = _Sent()

    async def paced() -> AsyncIterator[StreamEvent]:
        for gate, text in zip(gates, ("a", "b", "c"), strict=True):
            yield TokenDelta(text)
            await gate.wait()
        yield DONE

    async def send_then_release(message: Any) -> None:
        await sent(message)
        gates[len(sent.bodies) - 1].set()  # the next token arrives only after this send

    first = await anext(events := paced())
    relayed = await _call()._relay(send_then_release, cast(StreamInfo, None), first, events)
    assert relayed == b"END"
    assert sent.bodies == [b"<a", b"b", b"c"]


@pytest.mark.anyio
async def test_a_slow_client_holds_the_provider_back() -> None:
    """Reading stops RELAY_BACKLOG events ahead of a client that does not take them."""
    read = 0
    stuck = asyncio.Event()

    async def endless() -> AsyncIterator[StreamEvent]:
        nonlocal read
        while True:
            read += 1
            yield TokenDelta("x")

    async def stuck_send(message: Any) -> None:
        await stuck.wait()

    events = endless()
    first = await anext(events)
    relay = asyncio.create_task(_call()._relay(stuck_send, cast(StreamInfo, None), first,
                                               events))
    await anyio.wait_all_tasks_blocked()  # the send stuck, the reading waits on the queue
    assert read <= RELAY_BACKLOG + 2
    relay.cancel()
    with pytest.raises(asyncio.CancelledError):
        await relay


@pytest.mark.anyio
async def test_an_error_while_reading_is_raised_in_the_relay() -> None:
    """A provider failure mid-stream reaches the call as the same exception."""
    async def breaking() -> AsyncIterator[StreamEvent]:
        yield TokenDelta("a")
        raise OSError("cut")

    with pytest.raises(OSError, match="cut"):
        await _relay(breaking(), _Sent())


@pytest.mark.anyio
async def test_events_that_end_without_a_terminal_one_end_the_relay() -> None:
    """An event source that stops early raises StopAsyncIteration, not a hang."""
    async def short() -> AsyncIterator[StreamEvent]:
        yield TokenDelta("a")
        yield TokenDelta("b")

    with pytest.raises(StopAsyncIteration):
        await _relay(short(), _Sent())
