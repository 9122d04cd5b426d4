"""LeanQueue and LeanEvent: what uvicorn's WebSocket protocol needs of asyncio's, held lean."""

from __future__ import annotations

import asyncio

import pytest

from beamish.server.websocket_protocol import LeanEvent, LeanQueue

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
