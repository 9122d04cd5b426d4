"""Timers: send_after and send_interval, in virtual time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from beamish.runtime import (
    Actor,
    Caller,
    InvalidOptionError,
    Node,
    NoProcessError,
    call,
    monitor,
    open_inbox,
    send_after,
    send_interval,
    start,
    stop,
)
from tests.runtime._support import now

pytestmark = pytest.mark.anyio


class Clocked(Actor):
    """Records (loop time, message) for every message it receives."""

    def init(self, arg: Any) -> None:
        self.got: list[tuple[float, Any]] = []

    def handle_info(self, message: Any) -> Any:
        self.got.append((self.ref._loop.time(), message))

    def handle_call(self, request: Any, caller: Caller) -> Any:
        return list(self.got)


async def test_send_after_delivers_at_exact_delay(node: Node) -> None:
    """send_after delivers its message once, exactly `delay` seconds later."""
    async with open_inbox() as inbox:
        t0 = now()
        timer = send_after(inbox.ref, "ping", 2.5)
        assert timer.active
        assert await inbox.receive() == "ping"
        assert now() - t0 == 2.5
        assert not timer.active


async def test_send_after_to_actor_handle_info(node: Node) -> None:
    """A timer message reaches the actor's handle_info at the planned time."""
    ref = await start(Clocked)
    t0 = now()
    send_after(ref, "tick", 3)
    await asyncio.sleep(10)
    assert await call(ref, "got") == [(t0 + 3, "tick")]


async def test_send_after_by_name(node: Node) -> None:
    """send_after accepts a registered name."""
    ref = await start(Clocked, name="clocked")
    t0 = now()
    send_after("clocked", "tick", 1)
    await asyncio.sleep(2)
    assert await call(ref, "got") == [(t0 + 1, "tick")]


async def test_cancel_prevents_delivery(node: Node) -> None:
    """A cancelled timer never delivers; cancel is idempotent."""
    async with open_inbox() as inbox:
        timer = send_after(inbox.ref, "never", 1)
        timer.cancel()
        timer.cancel()
        assert not timer.active
        with pytest.raises(TimeoutError):
            await inbox.receive(timeout=10)


async def test_cancel_after_fire_is_noop(node: Node) -> None:
    """Cancelling a timer that already fired changes nothing."""
    async with open_inbox() as inbox:
        timer = send_after(inbox.ref, "once", 1)
        assert await inbox.receive() == "once"
        timer.cancel()
        assert not timer.active


async def test_send_interval_has_no_drift(node: Node) -> None:
    """send_interval delivers at exactly t0 + k * interval, however busy the receiver."""

    class Busy(Clocked):
        async def handle_info(self, message: Any) -> None:
            self.got.append((self.ref._loop.time(), message))
            await asyncio.sleep(0.25)  # work between ticks must not shift the schedule

    ref = await start(Busy)
    t0 = now()
    timer = send_interval(ref, "tick", 1)
    await asyncio.sleep(5.5)
    timer.cancel()
    got = await call(ref, "got")
    assert got == [(t0 + k, "tick") for k in range(1, 6)]
    await asyncio.sleep(10)
    assert len(await call(ref, "got")) == 5


async def test_send_interval_stays_active_until_cancelled(node: Node) -> None:
    """A periodic timer stays active after firing until cancelled."""
    async with open_inbox() as inbox:
        timer = send_interval(inbox.ref, "tick", 2)
        assert await inbox.receive() == "tick"
        assert timer.active
        timer.cancel()
        assert not timer.active
        with pytest.raises(TimeoutError):
            await inbox.receive(timeout=10)


async def test_timers_of_dead_actor_are_cancelled(node: Node) -> None:
    """When the target exits, its pending timers are cancelled without error."""
    ref = await start(Clocked)
    once = send_after(ref, "once", 5)
    every = send_interval(ref, "every", 1)
    await stop(ref)
    assert not once.active
    assert not every.active
    await asyncio.sleep(20)
    once.cancel()


async def test_send_after_to_dead_actor_is_inactive(node: Node) -> None:
    """send_after aimed at an already dead actor raises nothing and is inactive."""
    ref = await start(Clocked)
    async with open_inbox() as inbox:
        monitor(ref)
        await stop(ref)
        await inbox.receive()
    timer = send_after(ref, "late", 1)
    assert not timer.active
    assert not send_interval(ref, "late", 1).active
    await asyncio.sleep(5)


async def test_send_after_to_unknown_name_raises(node: Node) -> None:
    """send_after to a name nobody holds raises NoProcessError."""
    with pytest.raises(NoProcessError):
        send_after("nobody", "x", 1)


@pytest.mark.parametrize("delay", [-1, "1", True])
async def test_invalid_delay(node: Node, delay: Any) -> None:
    """A negative or non-number delay raises InvalidOptionError naming the field."""
    async with open_inbox() as inbox:
        with pytest.raises(InvalidOptionError) as caught:
            send_after(inbox.ref, "x", delay)
        assert caught.value.field == "delay"


@pytest.mark.parametrize("interval", [0, -1, "1"])
async def test_invalid_interval(node: Node, interval: Any) -> None:
    """A zero, negative or non-number interval raises InvalidOptionError naming the field."""
    async with open_inbox() as inbox:
        with pytest.raises(InvalidOptionError) as caught:
            send_interval(inbox.ref, "x", interval)
        assert caught.value.field == "interval"


async def test_timer_bypasses_full_mailbox(node: Node) -> None:
    """A timer message gets into a full mailbox (it is a system delivery)."""
    release = asyncio.Event()

    class Blocked(Clocked):
        async def handle_call(self, request: Any, caller: Caller) -> Any:
            if request == "wait":
                await release.wait()
            return list(self.got)

    ref = await start(Blocked, mailbox_size=1, overflow="fail")
    waiting = asyncio.create_task(call(ref, "wait", timeout=None))
    await asyncio.sleep(0)
    filler = asyncio.create_task(call(ref, "got", timeout=None))
    await asyncio.sleep(0)
    assert ref.mailbox_depth == 1
    send_after(ref, "tick", 1)
    await asyncio.sleep(2)
    assert ref.mailbox_depth == 2
    release.set()
    await waiting
    assert await filler == []
    assert [message for _, message in await call(ref, "got")] == ["tick"]
