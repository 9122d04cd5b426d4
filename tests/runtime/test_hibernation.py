"""Hibernation: an idle actor drops its task and mailbox and wakes with its state intact."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from anyio import wait_all_tasks_blocked

from beamish.runtime import (
    KILL,
    KILLED,
    SHUTDOWN,
    Actor,
    Caller,
    Down,
    Exit,
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
from tests.runtime._support import now

pytestmark = pytest.mark.anyio


class Sleepy(Actor):
    """A counter that hibernates on request and records when each message arrived."""

    def init(self, arg: Any) -> None:
        self.count = 0
        self.seen: list[tuple[float, Any]] = []
        if arg == "trap":
            self.trap_exit()

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        self.seen.append((self.ref._loop.time(), request))
        if request == "hibernate":
            self.hibernate()
        elif isinstance(request, int | float) and not isinstance(request, bool):
            await asyncio.sleep(request)  # busy for that long
        elif request == "seen":
            return list(self.seen)
        return self.count

    def handle_cast(self, request: Any) -> None:
        self.seen.append((self.ref._loop.time(), request))
        self.count += request

    def handle_info(self, message: Any) -> None:
        self.seen.append((self.ref._loop.time(), message))


async def hibernated() -> Any:
    ref = await start(Sleepy)
    await cast(ref, 5)
    assert await call(ref, "hibernate") == 5
    await settle(ref)
    return ref


async def settle(ref: Any) -> None:
    """Wait until the actor hibernated (its task ended), without advancing virtual time."""
    task = ref._task
    if task is not None:
        await asyncio.wait({task})
    assert ref.status == "hibernated"


async def test_try_cast_wakes_a_hibernated_actor(node: Node) -> None:
    """A hibernated actor has room: try_cast delivers, and the message wakes it."""
    ref = await hibernated()
    assert try_cast(ref, 3)
    assert await call(ref, 0) == 8


async def test_a_hibernated_actor_is_idle(node: Node) -> None:
    """Hibernated, an actor is idle (idle_actor gives it): its state is all there is."""
    ref = await hibernated()
    actor = idle_actor(ref)
    assert isinstance(actor, Sleepy)
    assert ref.status == "hibernated"


async def test_explicit_hibernate_drops_task_and_mailbox(node: Node) -> None:
    """self.hibernate() leaves status "hibernated", no task and no mailbox object."""
    t0 = now()
    ref = await hibernated()
    assert ref.status == "hibernated"
    assert ref._task is None
    assert ref._mailbox is None
    assert ref.mailbox_depth == 0
    assert ref.alive
    assert [a.status for a in node.actors()] == ["hibernated"]
    assert now() == t0


async def test_hibernated_actor_wakes_with_state(node: Node) -> None:
    """The next message wakes a hibernated actor with its state intact."""
    ref = await hibernated()
    await cast(ref, 2)
    assert await call(ref, "get") == 7
    assert ref.status == "running"


async def test_call_wakes_hibernated_actor(node: Node) -> None:
    """A call to a hibernated actor is answered."""
    ref = await hibernated()
    assert await call(ref, "get") == 5


async def test_send_wakes_hibernated_actor(node: Node) -> None:
    """A plain message wakes a hibernated actor and reaches handle_info."""
    ref = await hibernated()
    send(ref, "hello")
    seen = await call(ref, "seen")
    assert [m for _, m in seen][-2:] == ["hello", "seen"]


async def test_hibernate_after_idle_exactly(node: Node) -> None:
    """hibernate_after=N hibernates after exactly N idle seconds of virtual time."""
    ref = await start(Sleepy, hibernate_after=30)
    t0 = now()
    assert await call(ref, "get") == 0
    await asyncio.sleep(29.5)
    assert ref.status == "running"
    await asyncio.sleep(1)
    assert ref.status == "hibernated"
    # It went to sleep at exactly t0 + 30 (the idle clock starts after the last message).
    assert ref._idle_since == t0


async def test_hibernate_after_counts_from_last_message(node: Node) -> None:
    """Each message restarts the idle countdown."""
    ref = await start(Sleepy, hibernate_after=10)
    for _ in range(5):
        await asyncio.sleep(8)
        assert ref.status == "running"
        await cast(ref, 1)
    t_last = now()
    await asyncio.sleep(9.5)
    assert ref.status == "running"
    await asyncio.sleep(1)
    assert ref.status == "hibernated"
    assert ref._idle_since == t_last
    assert await call(ref, "get") == 5


async def test_hibernate_after_not_while_busy(node: Node) -> None:
    """An actor busy in a long callback does not hibernate; the countdown starts after it."""
    ref = await start(Sleepy, hibernate_after=10)
    t0 = now()
    busy = asyncio.create_task(call(ref, 25, timeout=None))
    await asyncio.sleep(20)
    assert ref.status == "running"
    await busy
    assert now() - t0 == 25
    await asyncio.sleep(9.5)
    assert ref.status == "running"
    await asyncio.sleep(1)
    assert ref.status == "hibernated"


async def test_hibernate_after_repeats_after_waking(node: Node) -> None:
    """After waking, an idle actor hibernates again N seconds after its last message."""
    ref = await start(Sleepy, hibernate_after=5)
    await asyncio.sleep(6)
    assert ref.status == "hibernated"
    t_wake = now()
    assert await call(ref, "get") == 0
    assert ref.status == "running"
    await asyncio.sleep(4.5)
    assert ref.status == "running"
    await asyncio.sleep(1)
    assert ref.status == "hibernated"
    assert ref._idle_since == t_wake


async def test_hibernate_after_zero(node: Node) -> None:
    """hibernate_after=0 hibernates as soon as the mailbox is empty."""
    ref = await start(Sleepy, hibernate_after=0)
    await asyncio.sleep(0.001)
    assert ref.status == "hibernated"
    assert await call(ref, "get") == 0


async def test_monitor_hibernated_actor(node: Node) -> None:
    """A monitor on a hibernated actor delivers Down when it is stopped."""
    ref = await hibernated()
    async with open_inbox() as inbox:
        mref = monitor(ref)
        assert ref.status == "hibernated"
        await stop(ref, SHUTDOWN)
        assert await inbox.receive() == Down(mref, ref, SHUTDOWN)


async def test_kill_hibernated_actor_delivers_down(node: Node) -> None:
    """Killing a hibernated actor (it has no task) still delivers Down(killed)."""
    ref = await hibernated()
    async with open_inbox() as inbox:
        mref = monitor(ref)
        exit(ref, KILL)
        assert await inbox.receive() == Down(mref, ref, KILLED)
    assert ref.status == "dead"
    assert node.actors() == []


async def test_link_to_hibernated_actor(node: Node) -> None:
    """A link to a hibernated actor carries its exit: a crash arrives as Exit."""
    ref = await hibernated()
    async with open_inbox() as inbox:
        link(ref)
        assert ref.status == "hibernated"
        exit(ref, SHUTDOWN)
        assert await inbox.receive() == Exit(ref, SHUTDOWN)


async def test_trapping_hibernated_actor_wakes_for_exit(node: Node) -> None:
    """An exit signal to a trapping hibernated actor wakes it with an Exit message."""
    ref = await start(Sleepy, "trap")
    await call(ref, "hibernate")
    await settle(ref)
    async with open_inbox() as inbox:
        exit(ref, SHUTDOWN)
        seen = await call(ref, "seen")
        assert [m for _, m in seen][-2:] == [Exit(inbox.ref, SHUTDOWN), "seen"]
    assert ref.alive


async def test_timer_wakes_hibernated_actor(node: Node) -> None:
    """A timer message wakes a hibernated actor at exactly its time."""
    from beamish.runtime import send_after

    ref = await hibernated()
    t0 = now()
    send_after(ref, "alarm", 7)
    await asyncio.sleep(10)
    seen = await call(ref, "seen")
    assert seen[-2] == (t0 + 7, "alarm")


async def test_many_hibernated_actors_keep_state(node: Node) -> None:
    """Many hibernated actors each keep their own state."""
    refs = []
    for i in range(50):
        ref = await start(Sleepy, hibernate_after=1)
        await cast(ref, i)
        refs.append(ref)
    await asyncio.sleep(2)
    assert {r.status for r in refs} == {"hibernated"}
    assert [await call(r, "get") for r in refs] == list(range(50))


async def test_stop_hibernated_actor_runs_terminate(node: Node) -> None:
    """An orderly stop wakes a hibernated actor so that terminate runs."""
    reasons: list[Any] = []

    class Tidy(Sleepy):
        def terminate(self, reason: Any) -> None:
            reasons.append((reason, self.count))

    ref = await start(Tidy)
    await cast(ref, 3)
    await call(ref, "hibernate")
    await settle(ref)
    assert await stop(ref, SHUTDOWN) == SHUTDOWN
    assert reasons == [(SHUTDOWN, 3)]


async def test_hibernate_waits_for_queued_messages(node: Node) -> None:
    """A hibernate request takes effect only once the mailbox is empty."""
    ref = await start(Sleepy)
    call_task = asyncio.create_task(call(ref, "hibernate"))
    await asyncio.sleep(0)  # the call is queued first
    for i in range(1, 4):
        cast(ref, i)
    assert await call_task == 0
    await settle(ref)
    assert ref.status == "hibernated"
    assert await call(ref, "get") == 6


async def test_deferred_reply_survives_hibernation(node: Node) -> None:
    """A caller answered with NOREPLY can be replied to after the actor hibernated."""

    class Later(Actor):
        def init(self, arg: Any) -> None:
            self.callers: list[Caller] = []

        def handle_call(self, request: Any, caller: Caller) -> Any:
            if request == "answer":
                for waiting in self.callers:
                    waiting.reply("late")
                return "done"
            self.callers.append(caller)
            self.hibernate()
            from beamish.runtime import NOREPLY

            return NOREPLY

    ref = await start(Later)
    pending = asyncio.create_task(call(ref, "q", timeout=None))
    await wait_all_tasks_blocked()
    await settle(ref)
    assert not pending.done()
    assert await call(ref, "answer") == "done"
    assert await pending == "late"


async def test_monitor_from_hibernated_actor_still_delivers(node: Node) -> None:
    """A monitor held by a hibernated actor delivers its Down, waking it."""

    class Watcher(Sleepy):
        def handle_cast(self, request: Any) -> None:
            monitor(request)
            self.hibernate()

    target = await start(Sleepy)
    watcher = await start(Watcher)
    await cast(watcher, target)
    await settle(watcher)
    await stop(target, SHUTDOWN)
    seen = await call(watcher, "seen")
    assert [m.reason for _, m in seen if isinstance(m, Down)] == [SHUTDOWN]
