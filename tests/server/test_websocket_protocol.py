"""LeanQueue and LeanEvent: what uvicorn's WebSocket protocol needs of asyncio's, held lean."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from anyio import wait_all_tasks_blocked
from uvicorn.server import ServerState
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode

from beamish.channels.endpoint import SEND_NOWAIT
from beamish.server.websocket_protocol import (
    READ_AHEAD,
    LeanEvent,
    LeanQueue,
    LeanWebSocketProtocol,
    _header,
)

pytestmark = pytest.mark.anyio


async def test_the_queue_is_fifo_and_empty_means_empty() -> None:
    """Items come out in the order they went in; empty() and qsize() follow."""
    queue: LeanQueue[int] = LeanQueue()
    assert queue.empty()
    assert queue.qsize() == 0
    for n in (1, 2, 3):
        queue.put_nowait(n)
    assert (queue.empty(), queue.qsize()) == (False, 3)
    assert [await queue.get() for _ in range(3)] == [1, 2, 3]
    assert queue.empty()


async def test_a_waiting_get_returns_the_next_put() -> None:
    """get() on an empty queue waits, and returns what is put next."""
    queue: LeanQueue[str] = LeanQueue()
    getter = asyncio.get_running_loop().create_task(queue.get())
    await wait_all_tasks_blocked()
    assert not getter.done()
    queue.put_nowait("x")
    assert await getter == "x"


async def test_cancelling_one_getter_leaves_the_other_waiting() -> None:
    """Each getter has its own future: a cancelled one does not cancel the rest."""
    queue: LeanQueue[str] = LeanQueue()
    loop = asyncio.get_running_loop()
    first, second = loop.create_task(queue.get()), loop.create_task(queue.get())
    await wait_all_tasks_blocked()
    first.cancel()
    await wait_all_tasks_blocked()
    queue.put_nowait("kept")
    assert await second == "kept"
    assert first.cancelled()
    assert queue.empty()


async def test_the_event_waits_until_set_and_not_after_clear() -> None:
    """wait() blocks until set(), returns at once while set, and blocks again after clear()."""
    event = LeanEvent()
    assert not event.is_set()
    waiter = asyncio.get_running_loop().create_task(event.wait())
    await wait_all_tasks_blocked()
    assert not waiter.done()
    event.set()
    await waiter
    assert event.is_set()
    await event.wait()  # set: returns at once
    event.clear()
    again = asyncio.get_running_loop().create_task(event.wait())
    await wait_all_tasks_blocked()
    assert not again.done()
    event.set()
    await again


@asynccontextmanager
async def _uvicorn(app: Any) -> AsyncIterator[int]:
    """uvicorn serving ``app`` with ws=LeanWebSocketProtocol; yields the port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None,
                            ws=LeanWebSocketProtocol)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # what serve() would set up
    await server.startup()
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        await server.shutdown()


async def test_uvicorn_serves_with_it_and_drops_the_handshake_at_the_accept() -> None:
    """A real uvicorn with ws=LeanWebSocketProtocol: lean buffers, no headers after accept."""
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        protocol = send.__self__  # the ASGI send of a uvicorn connection is its method
        assert (await receive())["type"] == "websocket.connect"
        seen["headers before"] = len(protocol.request.headers)
        await send({"type": "websocket.accept"})
        seen["kept request"] = hasattr(protocol, "request")
        seen["kept response"] = hasattr(protocol, "response")
        seen["scope headers"] = scope["headers"]
        seen["types"] = (type(protocol), type(protocol.queue), type(protocol.writable))
        await send({"type": "websocket.send", "text": "hello"})
        message = await receive()
        await send({"type": "websocket.send", "text": message.get("text", "")})
        await send({"type": "websocket.close", "code": 1000})

    async with _uvicorn(app) as port, connect(f"ws://127.0.0.1:{port}/") as ws:
        assert await ws.recv() == "hello"
        await ws.send("echo me")
        assert await ws.recv() == "echo me"
    assert seen["headers before"] > 0
    assert (seen["kept request"], seen["kept response"]) == (False, False)
    assert seen["scope headers"] == []
    assert seen["types"] == (LeanWebSocketProtocol, LeanQueue, LeanEvent)


async def test_an_upgrade_refused_with_a_403_logs_no_error(
        caplog: pytest.LogCaptureFixture) -> None:
    """A denial response completes the handshake: the client reads it, the log stays clean."""
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"bad token"})

    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        async with _uvicorn(app) as port:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"ws://127.0.0.1:{port}/"):
                    pass
        # Leaving _uvicorn waited for the handler's end, where uvicorn would have logged.
    assert refused.value.response.status_code == 403
    assert refused.value.response.body == b"bad token"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def _accepted(scope: Any, receive: Any, send: Any) -> LeanWebSocketProtocol:
    """Accept the connection an ASGI app was called for; its send_nowait extension."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    sender: LeanWebSocketProtocol = scope["extensions"][SEND_NOWAIT]
    return sender


class _Transport:
    """Notes whether the protocol asked to stop reading the connection."""

    def __init__(self) -> None:
        self.reading = True
        self.changes = 0

    def pause_reading(self) -> None:
        self.reading = False
        self.changes += 1

    def resume_reading(self) -> None:
        self.reading = True
        self.changes += 1


async def test_reading_stops_only_once_read_ahead_messages_wait() -> None:
    """Messages are read ahead; READ_AHEAD waiting ones stop reading until the app takes all."""
    config = uvicorn.Config(lambda *args: None, ws=LeanWebSocketProtocol)
    protocol = LeanWebSocketProtocol(config, ServerState(), {})
    transport = _Transport()
    protocol.transport = transport  # type: ignore[assignment]

    def arrive(text: str) -> None:  # what uvicorn does with each complete text frame
        protocol.curr_msg_data_type = "text"
        protocol.frames = [text.encode()]
        protocol.send_receive_event_to_app()

    async def taken() -> object:  # what the app's receive() gets
        message: dict[str, Any] = dict(await protocol.receive())
        return message["text"]

    arrive("first")
    assert await taken() == "first"
    assert (transport.reading, transport.changes) == (True, 0)
    for n in range(READ_AHEAD - 1):
        arrive(f"m{n}")
    assert (transport.reading, transport.changes) == (True, 0)
    arrive("last")
    assert (transport.reading, transport.changes) == (False, 1)
    received = [await taken() for _ in range(READ_AHEAD)]
    assert received == [f"m{n}" for n in range(READ_AHEAD - 1)] + ["last"]
    assert (transport.reading, transport.changes) == (True, 2)


async def test_delivered_messages_skip_the_queue_until_one_is_refused() -> None:
    """With deliver_to, messages go to the callback as they arrive; one it refuses is queued
    for receive, and so is every later one until the app has taken them all, in order."""
    config = uvicorn.Config(lambda *args: None, ws=LeanWebSocketProtocol)
    protocol = LeanWebSocketProtocol(config, ServerState(), {})
    protocol.transport = _Transport()  # type: ignore[assignment]
    delivered: list[str | bytes] = []
    room = True

    def deliver(target: object, message: str | bytes) -> bool:
        assert target == "the socket"
        if room:
            delivered.append(message)
        return room

    def arrive(data: bytes, kind: str = "text") -> None:
        protocol.curr_msg_data_type = kind  # type: ignore[assignment]
        protocol.frames = [data]
        protocol.send_receive_event_to_app()

    async def taken() -> object:
        message: dict[str, Any] = dict(await protocol.receive())
        return message.get("text", message.get("bytes"))

    protocol.deliver_to(deliver, "the socket")
    arrive(b"one")
    arrive(b"\x00", "bytes")
    assert (delivered, protocol.queue.empty()) == (["one", b"\x00"], True)
    room = False
    arrive(b"refused")
    room = True
    arrive(b"after")  # behind the refused one: queued too, not delivered
    assert delivered == ["one", b"\x00"]
    assert [await taken(), await taken()] == ["refused", "after"]
    arrive(b"again")  # the queue is empty: delivered again
    assert delivered == ["one", b"\x00", "again"]
    protocol.deliver_to(None)
    arrive(b"queued")
    assert await taken() == "queued"


async def test_send_nowait_sends_while_open_and_declines_once_the_client_closed() -> None:
    """The scope extension sends text and bytes at once; after the client's close it sends
    nothing and says so (False), without raising."""
    results: dict[str, object] = {}
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            sender = await _accepted(scope, receive, send)
            results["text"] = sender.send_nowait("now")
            results["bytes"] = sender.send_nowait(b"\x01")
            results["then"] = (await receive())["type"]
            results["after close"] = sender.send_nowait("late")
        finally:
            done.set()

    async with _uvicorn(app) as port:
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            assert await ws.recv() == "now"
            assert await ws.recv() == b"\x01"
        await done.wait()
    assert results == {"text": True, "bytes": True, "then": "websocket.disconnect",
                       "after close": False}


async def test_send_nowait_writes_a_turns_messages_at_once_and_send_keeps_their_order() -> None:
    """Messages sent without waiting in one turn of the event loop go out in one write; a
    ``send`` in between writes them first, so the client reads every message in order."""
    writes: list[bytes] = []
    done = asyncio.Event()

    class Counting:
        def __init__(self, transport: Any) -> None:
            self.transport = transport

        def __getattr__(self, name: str) -> Any:
            return getattr(self.transport, name)

        def write(self, data: bytes) -> None:
            writes.append(data)
            self.transport.write(data)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            sender = await _accepted(scope, receive, send)
            sender.transport = Counting(sender.transport)  # type: ignore[assignment]
            assert sender.send_nowait("a")
            assert sender.send_nowait("b")
            assert sender.send_nowait("c")
            assert writes == []  # not yet: at the next turn
            await asyncio.sleep(0)
            assert len(writes) == 1
            assert sender.send_nowait("d")
            await send({"type": "websocket.send", "text": "e"})  # writes d first, with e
            assert len(writes) == 2
            assert sender.send_nowait("f")
            await asyncio.sleep(0)
            assert len(writes) == 3  # f alone: the flush of d found nothing left to write
            await receive()
        finally:
            done.set()

    async with _uvicorn(app) as port:
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            assert [await ws.recv() for _ in range(6)] == ["a", "b", "c", "d", "e", "f"]
        await done.wait()
    assert len(writes) == 4  # and the reply to the client's close


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_frame_headers_are_what_websockets_writes(size: int, opcode: Opcode) -> None:
    """The header send_nowait writes itself is byte for byte websockets' own."""
    data = b"x" * size
    first = 0x81 if opcode is Opcode.TEXT else 0x82
    assert _header(first, size) + data == Frame(opcode, data).serialize(mask=False,
                                                                       extensions=[])


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_send_nowait_messages_arrive_whole_with_and_without_compression(
        compression: str | None) -> None:
    """Uncompressed, send_nowait writes frames itself; compressed, websockets does; both
    arrive intact, at every length boundary of the frame header."""
    sizes = [0, 125, 126, 65535, 65536, 200_000]
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            sender = await _accepted(scope, receive, send)
            for size in sizes:
                assert sender.send_nowait("é" * (size // 2) + "a" * (size % 2))
                assert sender.send_nowait(b"\x00" * size)
            await receive()
        finally:
            done.set()

    async with _uvicorn(app) as port:
        async with connect(f"ws://127.0.0.1:{port}/", compression=compression,
                           max_size=None) as ws:
            for size in sizes:
                text = await ws.recv()
                assert isinstance(text, str)
                assert len(text.encode()) == size
                assert await ws.recv() == b"\x00" * size
        await done.wait()
