"""Bounded mailboxes: overflow="fail", overflow="block" backpressure, and depth."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from anyio import wait_all_tasks_blocked

from beamish.runtime import (
    KILL,
    NORMAL,
    Actor,
    ActorExitedError,
    Caller,
    CallTimeoutError,
    Exit,
    MailboxFullError,
    Node,
    call,
    cast,
    exit,
    idle_actor,
    link,
    monitor,
    open_inbox,
    send,
    start,
    stop,
    try_cast,
)

pytestmark = pytest.mark.anyio


class Gated(Actor):
    """Blocks in its first call until the gate opens; records casts, sends and calls."""

    def init(self, arg: tuple[asyncio.Event, asyncio.Event]) -> None:
        self.gate, self.entered = arg
        self.log: list[Any] = []

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "wait":
            self.entered.set()
            await self.gate.wait()
            return "opened"
        if request == "log":
            return list(self.log)
        self.log.append(("call", request))
        return request

    def handle_cast(self, request: Any) -> None:
        if isinstance(request, tuple) and request[0] == "entered":
            self.entered = request[1]  # signal on the next "wait"
            return
        self.log.append(("cast", request))

    def handle_info(self, message: Any) -> None:
        self.log.append(("info", message))


async def gated(size: int, overflow: str) -> tuple[Any, asyncio.Event, asyncio.Task[Any]]:
    """A Gated actor busy in a call, so its mailbox only fills up."""
    gate, entered = asyncio.Event(), asyncio.Event()
    ref = await start(Gated, (gate, entered), mailbox_size=size, overflow=overflow)  # type: ignore[arg-type]
    busy = asyncio.create_task(call(ref, "wait", timeout=None))
    await entered.wait()
    assert ref.mailbox_depth == 0
    return ref, gate, busy


async def test_mailbox_depth_is_observable(node: Node) -> None:
    """mailbox_depth counts queued messages and drops to 0 once they are handled."""
    ref, gate, busy = await gated(10, "block")
    for i in range(3):
        await cast(ref, i)
    send(ref, "s")
    assert ref.mailbox_depth == 4
    assert [a.mailbox_depth for a in node.actors()] == [4]
    gate.set()
    assert await busy == "opened"
    assert await call(ref, "log") == [("cast", 0), ("cast", 1), ("cast", 2), ("info", "s")]
    assert ref.mailbox_depth == 0


async def test_fail_overflow_raises_on_cast_call_send(node: Node) -> None:
    """With overflow="fail", cast, call and send to a full mailbox raise MailboxFullError."""
    ref, gate, busy = await gated(2, "fail")
    cast(ref, 1)
    cast(ref, 2)
    with pytest.raises(MailboxFullError) as caught:
        cast(ref, 3)
    assert caught.value.capacity == 2
    assert caught.value.target is ref
    with pytest.raises(MailboxFullError):
        await call(ref, 4)
    with pytest.raises(MailboxFullError):
        send(ref, 5)
    assert ref.mailbox_depth == 2
    gate.set()
    await busy
    assert await call(ref, "log") == [("cast", 1), ("cast", 2)]


async def test_send_raises_when_full_even_with_block(node: Node) -> None:
    """send never waits: it raises MailboxFullError on a full mailbox whatever the overflow."""
    ref, gate, busy = await gated(1, "block")
    send(ref, 1)
    with pytest.raises(MailboxFullError):
        send(ref, 2)
    gate.set()
    await busy


async def test_block_overflow_waits_then_delivers_in_order(node: Node) -> None:
    """With overflow="block", await cast waits for room and nothing is lost or reordered."""
    ref, gate, busy = await gated(2, "block")
    sent: list[int] = []

    async def producer() -> None:
        for i in range(10):
            await cast(ref, i)
            sent.append(i)

    task = asyncio.create_task(producer())
    await wait_all_tasks_blocked()
    assert sent == [0, 1]  # the third cast waits for room
    assert ref.mailbox_depth == 2
    assert not task.done()
    gate.set()
    await task
    assert await busy == "opened"
    assert await call(ref, "log") == [("cast", i) for i in range(10)]


async def test_block_keeps_order_across_fast_and_slow_casts(node: Node) -> None:
    """A cast sent while others wait for room queues behind them, never ahead."""
    ref, gate, busy = await gated(1, "block")
    first = cast(ref, "a")
    assert first.done()
    waiting = [cast(ref, "b"), cast(ref, "c")]
    assert not any(f.done() for f in waiting)
    gate.set()
    await asyncio.gather(*waiting)
    await busy
    assert await call(ref, "log") == [("cast", "a"), ("cast", "b"), ("cast", "c")]


async def test_try_cast_sends_only_while_there_is_room(node: Node) -> None:
    """try_cast queues while the mailbox has room, then says False and sends nothing, with
    either overflow policy; once room is back it sends again, in order."""
    for overflow in ("block", "fail"):
        ref, gate, busy = await gated(2, overflow)
        assert try_cast(ref, 1)
        assert try_cast(ref, 2)
        assert not try_cast(ref, 3)
        assert ref.mailbox_depth == 2
        gate.set()
        await busy
        assert try_cast(ref, 4)
        assert await call(ref, "log") == [("cast", 1), ("cast", 2), ("cast", 4)]


async def test_try_cast_never_overtakes_casts_waiting_for_room(node: Node) -> None:
    """While blocked casts wait, try_cast says False even once a slot frees up, so what it
    would send cannot get ahead of them."""
    ref, gate, busy = await gated(1, "block")
    cast(ref, "a")
    waiting = cast(ref, "b")
    assert not waiting.done()
    assert not try_cast(ref, "c")
    gate.set()
    await waiting
    await busy
    assert try_cast(ref, "d")
    assert await call(ref, "log") == [("cast", "a"), ("cast", "b"), ("cast", "d")]


async def test_try_cast_to_a_dead_actor_is_dropped(node: Node) -> None:
    """As with cast: nothing to wait for, so True, and nothing happens."""
    ref, _gate, busy = await gated(1, "block")
    exit(ref, KILL)
    with pytest.raises(ActorExitedError):
        await busy
    assert try_cast(ref, "late")


async def test_has_room_says_what_try_cast_would_do(node: Node) -> None:
    """has_room is True exactly while try_cast would deliver: room in the mailbox, or an
    actor that is dead (the cast is dropped); False when full."""
    ref, gate, busy = await gated(1, "fail")
    assert ref.has_room
    assert try_cast(ref, 1)
    assert not ref.has_room
    assert not try_cast(ref, 2)
    gate.set()
    await busy
    assert ref.has_room
    exit(ref, KILL)
    await wait_all_tasks_blocked()
    assert ref.has_room
    assert try_cast(ref, 3)


async def test_idle_actor_only_while_its_task_waits_for_mail(node: Node) -> None:
    """idle_actor gives the actor only while nothing is queued and its task is parked for
    the next message: not inside a callback (even one suspended in an await), not with a
    message waiting, not once dead."""
    ref, gate, busy = await gated(10, "block")
    assert idle_actor(ref) is None  # inside its "wait" call
    gate.set()
    await busy
    actor = idle_actor(ref)
    assert isinstance(actor, Gated)
    assert try_cast(ref, "queued")
    assert idle_actor(ref) is None  # a message is waiting: it goes first
    assert await call(ref, "log") == [("cast", "queued")]
    assert idle_actor(ref) is actor
    exit(ref, KILL)
    await wait_all_tasks_blocked()
    assert idle_actor(ref) is None


async def test_block_overflow_call_waits_for_room(node: Node) -> None:
    """A call to a full blocking mailbox waits for room, then gets its reply in order."""
    ref, gate, busy = await gated(1, "block")
    await cast(ref, "first")
    pending = asyncio.create_task(call(ref, "second", timeout=None))
    await wait_all_tasks_blocked()
    assert not pending.done()
    gate.set()
    assert await pending == "second"
    await busy
    assert await call(ref, "log") == [("cast", "first"), ("call", "second")]


async def test_blocked_call_times_out_in_virtual_time(node: Node) -> None:
    """A call waiting for room still times out at exactly its timeout."""
    ref, gate, busy = await gated(1, "block")
    await cast(ref, "first")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(CallTimeoutError):
        await call(ref, "late", timeout=3)
    assert loop.time() - t0 == 3
    gate.set()
    await busy
    # The timed-out call never reached the actor.
    assert await call(ref, "log") == [("cast", "first")]


async def test_cancelled_blocked_cast_is_dropped(node: Node) -> None:
    """A sender that gives up waiting for room does not deliver its message."""
    ref, gate, busy = await gated(1, "block")
    await cast(ref, "kept")
    gave_up = cast(ref, "dropped")
    gave_up.cancel()
    after = cast(ref, "after")
    gate.set()
    await after
    await busy
    assert await call(ref, "log") == [("cast", "kept"), ("cast", "after")]


async def test_blocked_senders_released_when_actor_dies(node: Node) -> None:
    """Senders blocked on a full mailbox are released when the actor dies, not left hanging."""
    ref, _, busy = await gated(1, "block")
    await cast(ref, "fill")
    blocked_cast = cast(ref, "blocked")
    blocked_call = asyncio.create_task(call(ref, "blocked", timeout=None))
    await wait_all_tasks_blocked()
    assert not blocked_cast.done()
    async with open_inbox() as inbox:
        monitor(ref)
        exit(ref, KILL)
        await inbox.receive()
    await blocked_cast
    with pytest.raises(ActorExitedError):
        await blocked_call
    with pytest.raises(ActorExitedError):
        await busy


async def test_blocked_senders_released_on_orderly_stop(node: Node) -> None:
    """An orderly stop (which gets past the bound) releases blocked senders too."""
    ref, gate, busy = await gated(1, "block")
    await cast(ref, "fill")
    blocked = cast(ref, "blocked")
    stopping = asyncio.create_task(stop(ref))
    await asyncio.sleep(0)
    gate.set()
    await stopping
    await blocked
    assert not ref.alive
    assert await busy == "opened"


async def test_system_messages_bypass_the_bound(node: Node) -> None:
    """An Exit from a link gets into a full mailbox of a trapping actor."""

    class TrappingGated(Gated):
        def init(self, arg: tuple[asyncio.Event, asyncio.Event]) -> None:
            super().init(arg)
            self.trap_exit()

    gate, entered = asyncio.Event(), asyncio.Event()
    ref = await start(TrappingGated, (gate, entered), mailbox_size=1, overflow="fail")
    busy = asyncio.create_task(call(ref, "wait", timeout=None))
    await entered.wait()
    send(ref, "fill")
    async with open_inbox() as inbox:
        link(ref)
        inbox_ref = inbox.ref
    assert ref.mailbox_depth == 2
    gate.set()
    await busy
    assert await call(ref, "log") == [("info", "fill"), ("info", Exit(inbox_ref, NORMAL))]


async def test_mailbox_refills_after_draining(node: Node) -> None:
    """After backpressure ends, fast casts work again up to the bound."""
    ref, gate, busy = await gated(2, "fail")
    cast(ref, 1)
    cast(ref, 2)
    gate.set()
    await busy
    assert await call(ref, "log") == [("cast", 1), ("cast", 2)]
    gate.clear()
    entered = asyncio.Event()
    await cast(ref, ("entered", entered))
    busy = asyncio.create_task(call(ref, "wait", timeout=None))
    await entered.wait()
    cast(ref, 3)
    cast(ref, 4)
    with pytest.raises(MailboxFullError):
        cast(ref, 5)
    gate.set()
    await busy


async def test_cancelled_blocked_call_leaves_nothing_behind(node: Node) -> None:
    """A call cancelled while waiting for room is dropped, and its timeout never fires later."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    ref, gate, busy = await gated(1, "block")
    await cast(ref, "fill")
    blocked = asyncio.create_task(call(ref, "dropped", timeout=5))
    await wait_all_tasks_blocked()
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    del blocked
    await asyncio.sleep(10)  # past the cancelled call's deadline
    gc.collect()
    gate.set()
    await busy
    assert await call(ref, "log") == [("cast", "fill")]
    assert errors == []
    loop.set_exception_handler(None)
