"""LeanQueue and LeanEvent: what uvicorn's WebSocket protocol needs of asyncio's, held lean."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect

from beamish.server.websocket_protocol import LeanEvent, LeanQueue, LeanWebSocketProtocol

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
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put_nowait("x")
    assert await getter == "x"


async def test_cancelling_one_getter_leaves_the_other_waiting() -> None:
    """Each getter has its own future: a cancelled one does not cancel the rest."""
    queue: LeanQueue[str] = LeanQueue()
    loop = asyncio.get_running_loop()
    first, second = loop.create_task(queue.get()), loop.create_task(queue.get())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    queue.put_nowait("kept")
    assert await second == "kept"
    assert first.cancelled()
    assert queue.empty()


async def test_the_event_waits_until_set_and_not_after_clear() -> None:
    """wait() blocks until set(), returns at once while set, and blocks again after clear()."""
    event = LeanEvent()
    assert not event.is_set()
    waiter = asyncio.get_running_loop().create_task(event.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    event.set()
    await waiter
    assert event.is_set()
    await event.wait()  # set: returns at once
    event.clear()
    again = asyncio.get_running_loop().create_task(event.wait())
    await asyncio.sleep(0)
    assert not again.done()
    event.set()
    await again


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
        seen["types"] = (type(protocol), type(protocol.queue), type(protocol.writable))
        await send({"type": "websocket.send", "text": "hello"})
        message = await receive()
        await send({"type": "websocket.send", "text": message.get("text", "")})
        await send({"type": "websocket.close", "code": 1000})

    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None,
                            ws=LeanWebSocketProtocol)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # what serve() would set up
    await server.startup()
    try:
        port = server.servers[0].sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            assert await ws.recv() == "hello"
            await ws.send("echo me")
            assert await ws.recv() == "echo me"
    finally:
        await server.shutdown()
    assert seen["headers before"] > 0
    assert (seen["kept request"], seen["kept response"]) == (False, False)
    assert seen["types"] == (LeanWebSocketProtocol, LeanQueue, LeanEvent)
