"""Links, monitors, exit signals and exit reasons."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from anyio import wait_all_tasks_blocked

from beamish.runtime import (
    KILL,
    KILLED,
    NOPROC,
    NORMAL,
    SHUTDOWN,
    Actor,
    ActorRef,
    Caller,
    Down,
    Exit,
    ExitReason,
    Node,
    NoProcessError,
    call,
    cast,
    demonitor,
    exit,
    link,
    monitor,
    on_exit,
    open_inbox,
    self_ref,
    start,
    stop,
    unlink,
)
from beamish.runtime.exits import crash, shutdown

pytestmark = pytest.mark.anyio


class Boom(Exception):
    """The error test actors raise on purpose."""


class Worker(Actor):
    """Links or monitors on request, crashes on request, records its messages."""

    def init(self, arg: bool) -> None:
        self.got: list[Any] = []
        if arg:
            self.trap_exit()

    def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case ("link", ActorRef() as other):
                link(other)
            case ("unlink", ActorRef() as other):
                unlink(other)
            case ("monitor", ActorRef() as other):
                return monitor(other)
            case "got":
                return list(self.got)
            case "self":
                return self_ref()
        return None

    def handle_cast(self, request: Any) -> None:
        if isinstance(request, BaseException):
            raise request
        if isinstance(request, ExitReason):
            self.stop(request)

    def handle_info(self, message: Any) -> None:
        self.got.append(message)


async def linked_pair(trap: bool = False) -> tuple[ActorRef, ActorRef]:
    a = await start(Worker, False)
    b = await start(Worker, trap)
    await call(a, ("link", b))
    return a, b


async def test_monitor_delivers_exactly_one_down(node: Node) -> None:
    """A monitor yields one Down carrying the monitor ref, the actor and the reason."""
    ref = await start(Worker, False)
    async with open_inbox() as inbox:
        mref = monitor(ref)
        await stop(ref, SHUTDOWN)
        down = await inbox.receive()
        assert down == Down(mref, ref, SHUTDOWN)
        assert inbox.pending == 0
        with pytest.raises(TimeoutError):
            await inbox.receive(timeout=100)


async def test_two_monitors_two_downs(node: Node) -> None:
    """Each monitor gets its own Down."""
    ref = await start(Worker, False)
    async with open_inbox() as inbox:
        first = monitor(ref)
        second = monitor(ref)
        await stop(ref)
        downs = [await inbox.receive(), await inbox.receive()]
    assert [d.ref for d in downs] == [first, second]
    assert {d.reason for d in downs} == {NORMAL}


async def test_monitor_of_dead_actor_gives_noproc_at_once(node: Node) -> None:
    """Monitoring an actor that already exited delivers Down(noproc) immediately."""
    ref = await start(Worker, False)
    await stop(ref)
    async with open_inbox() as inbox:
        mref = monitor(ref)
        assert inbox.receive_nowait() == Down(mref, ref, NOPROC)


async def test_monitor_of_unknown_name_raises(node: Node) -> None:
    """Monitoring a name nobody holds raises NoProcessError."""
    async with open_inbox():
        with pytest.raises(NoProcessError):
            monitor("nobody")


async def test_demonitor_prevents_down(node: Node) -> None:
    """After demonitor no Down arrives, and a second demonitor returns False."""
    ref = await start(Worker, False)
    async with open_inbox() as inbox:
        mref = monitor(ref)
        assert demonitor(mref) is True
        assert demonitor(mref) is False
        await stop(ref)
        assert inbox.pending == 0


async def test_monitor_from_actor_delivers_down_to_handle_info(node: Node) -> None:
    """An actor's monitor delivers the Down through handle_info."""
    watcher = await start(Worker, False)
    target = await start(Worker, False)
    mref = await call(watcher, ("monitor", target))
    boom = Boom("x")
    async with open_inbox() as inbox:
        monitor(target)
        await cast(target, boom)
        await inbox.receive()
    assert await call(watcher, "got") == [Down(mref, target, crash(boom))]


async def test_link_propagates_crash_with_same_reason(node: Node) -> None:
    """A crash kills the linked non-trapping actor with the very same reason."""
    a, b = await linked_pair()
    boom = Boom("linked")
    async with open_inbox() as inbox:
        monitor(a)
        monitor(b)
        await cast(b, boom)
        downs = {d.actor: d.reason for d in [await inbox.receive(), await inbox.receive()]}
    assert downs == {a: crash(boom), b: crash(boom)}
    assert downs[a].exception is boom


async def test_link_does_not_propagate_normal(node: Node) -> None:
    """A normal exit leaves linked actors alive."""
    a, b = await linked_pair()
    async with open_inbox() as inbox:
        monitor(b)
        await cast(b, NORMAL)
        await inbox.receive()
    assert a.alive
    assert await call(a, "got") == []


async def test_link_propagates_shutdown(node: Node) -> None:
    """A shutdown exit kills the linked non-trapping actor with shutdown."""
    a, b = await linked_pair()
    async with open_inbox() as inbox:
        monitor(a)
        await stop(b, SHUTDOWN)
        down = await inbox.receive()
    assert down.reason == SHUTDOWN


async def test_link_chain_propagates(node: Node) -> None:
    """A crash travels along a chain of links."""
    a, b = await linked_pair()
    c = await start(Worker, False)
    await call(b, ("link", c))
    boom = Boom("chain")
    async with open_inbox() as inbox:
        monitor(a)
        await cast(c, boom)
        down = await inbox.receive()
    assert down.reason == crash(boom)
    assert not b.alive


async def test_trap_exit_turns_signal_into_message(node: Node) -> None:
    """A trapping actor receives Exit(sender, reason) and stays alive."""
    a, b = await linked_pair(trap=True)
    boom = Boom("trapped")
    async with open_inbox() as inbox:
        monitor(a)
        await cast(a, boom)
        await inbox.receive()
    assert b.alive
    assert await call(b, "got") == [Exit(a, crash(boom))]


async def test_trap_exit_receives_normal_exits_too(node: Node) -> None:
    """A trapping actor gets an Exit message even for a normal exit of its link."""
    a, b = await linked_pair(trap=True)
    async with open_inbox() as inbox:
        monitor(a)
        await cast(a, NORMAL)
        await inbox.receive()
    assert await call(b, "got") == [Exit(a, NORMAL)]


async def test_unlink_stops_propagation(node: Node) -> None:
    """After unlink a crash does not reach the former partner."""
    a, b = await linked_pair()
    await call(a, ("unlink", b))
    async with open_inbox() as inbox:
        monitor(b)
        await cast(b, Boom("alone"))
        await inbox.receive()
    assert a.alive


async def test_link_to_dead_actor_signals_noproc(node: Node) -> None:
    """Linking to a dead actor sends an exit signal with reason noproc at once."""
    dead = await start(Worker, False)
    await stop(dead)
    async with open_inbox() as inbox:
        link(dead)
        assert inbox.receive_nowait() == Exit(dead, NOPROC)


async def test_inbox_gets_exit_from_linked_crash(node: Node) -> None:
    """An inbox always traps: a linked crash arrives as an Exit message."""
    ref = await start(Worker, False)
    boom = Boom("to inbox")
    async with open_inbox() as inbox:
        link(ref)
        await cast(ref, boom)
        assert await inbox.receive() == Exit(ref, crash(boom))


async def test_kill_is_untrappable(node: Node) -> None:
    """exit(ref, KILL) kills even a trapping actor, with reason killed."""
    ref = await start(Worker, True)
    async with open_inbox() as inbox:
        monitor(ref)
        exit(ref, KILL)
        down = await inbox.receive()
    assert down.reason == KILLED
    assert ref.exit_reason == KILLED


async def test_killed_propagates_as_killed_and_is_trappable(node: Node) -> None:
    """A killed actor's links get reason killed, which a trapping actor receives as Exit."""
    a, b = await linked_pair(trap=True)
    async with open_inbox() as inbox:
        monitor(a)
        exit(a, KILL)
        await inbox.receive()
    assert b.alive
    assert await call(b, "got") == [Exit(a, KILLED)]


async def test_exit_reasons_are_distinguished(node: Node) -> None:
    """normal, shutdown, crash and killed come through Down as distinct kinds."""
    refs = [await start(Worker, False) for _ in range(4)]
    boom = Boom("kind")
    async with open_inbox() as inbox:
        for ref in refs:
            monitor(ref)
        await stop(refs[0], NORMAL)
        await stop(refs[1], SHUTDOWN)
        await cast(refs[2], boom)
        exit(refs[3], KILL)
        downs = {}
        for _ in refs:
            down = await inbox.receive()
            downs[down.actor] = down.reason
    assert [downs[r].kind for r in refs] == ["normal", "shutdown", "crash", "killed"]
    assert [downs[r].is_normal for r in refs] == [True, False, False, False]
    assert [downs[r].is_shutdown for r in refs] == [True, True, False, False]
    assert str(downs[refs[2]]) == "crash: Boom('kind')"


async def test_shutdown_with_detail(node: Node) -> None:
    """A shutdown reason may carry a detail, and it reaches the monitor unchanged."""
    ref = await start(Worker, False)
    reason = shutdown("maintenance")
    async with open_inbox() as inbox:
        monitor(ref)
        await stop(ref, reason)
        down = await inbox.receive()
    assert down.reason == reason
    assert str(reason) == "shutdown: 'maintenance'"


async def test_exit_normal_from_other_is_ignored(node: Node) -> None:
    """exit(ref, NORMAL) from another process does not kill a non-trapping actor."""
    ref = await start(Worker, False)
    async with open_inbox():
        exit(ref, NORMAL)
    exit(ref, NORMAL)
    assert await call(ref, "got") == []
    assert ref.alive


async def test_exit_abnormal_kills_non_trapping(node: Node) -> None:
    """exit(ref, reason) kills a non-trapping actor with that reason, from plain code too."""
    ref = await start(Worker, False)
    async with open_inbox() as inbox:
        monitor(ref)
        exit(ref, shutdown("told"))
        down = await inbox.receive()
    assert down.reason == shutdown("told")


async def test_exit_to_trapping_actor_is_message(node: Node) -> None:
    """exit() to a trapping actor delivers Exit(sender, reason) instead of killing it."""
    ref = await start(Worker, True)
    async with open_inbox() as inbox:
        exit(ref, SHUTDOWN)
        assert await call(ref, "got") == [Exit(inbox.ref, SHUTDOWN)]
    assert ref.alive


async def test_exit_to_unknown_name_is_ignored(node: Node) -> None:
    """exit() to a name nobody holds does nothing."""
    exit("nobody", KILL)
    assert node.actors() == []


async def test_self_ref_outside_actor_raises(node: Node) -> None:
    """self_ref() in plain code raises CallError; inside an actor it is its own ref."""
    from beamish.runtime import CallError

    with pytest.raises(CallError):
        self_ref()
    ref = await start(Worker, False)
    assert await call(ref, "self") is ref


async def test_down_arrives_after_messages_sent_before_death(node: Node) -> None:
    """Messages sent to an inbox before an actor dies come before its Down."""

    class Sender(Actor):
        def handle_cast(self, request: Any) -> None:
            from beamish.runtime import send

            send(request, "last words")
            self.stop(SHUTDOWN)

    ref = await start(Sender)
    async with open_inbox() as inbox:
        monitor(ref)
        await cast(ref, inbox.ref)
        assert await inbox.receive() == "last words"
        down = await inbox.receive()
    assert down.reason == SHUTDOWN


async def test_waiting_in_receive_wakes_on_down(node: Node) -> None:
    """inbox.receive() blocked with a match wakes for the matching Down only."""
    ref = await start(Worker, False)
    async with open_inbox() as inbox:
        monitor(ref)
        waiting = asyncio.create_task(inbox.receive(lambda m: isinstance(m, Down)))
        await wait_all_tasks_blocked()
        from beamish.runtime import send

        send(inbox.ref, "noise")
        await stop(ref)
        down = await waiting
        assert down.reason == NORMAL
        assert inbox.receive_nowait() == "noise"


async def test_inbox_receive_times_out_exactly(node: Node) -> None:
    """inbox.receive(timeout=) raises TimeoutError at exactly the timeout (virtual time)."""
    loop = asyncio.get_running_loop()
    async with open_inbox() as inbox:
        t0 = loop.time()
        with pytest.raises(TimeoutError):
            await inbox.receive(timeout=3)
        assert loop.time() - t0 == 3


async def test_killed_inbox_receive_raises_instead_of_hanging(node: Node) -> None:
    """A killed inbox's receive raises NoProcessError, whether already waiting or not."""
    async with open_inbox() as inbox:
        waiting = asyncio.create_task(inbox.receive())
        await wait_all_tasks_blocked()
        exit(inbox.ref, KILL)
        with pytest.raises(NoProcessError, match="killed"):
            await waiting
        with pytest.raises(NoProcessError):
            await inbox.receive()
        assert inbox.ref.exit_reason == KILLED


async def test_inbox_answers_calls_and_matches_selectively(node: Node) -> None:
    """An inbox receives calls as (request, caller), can reply, and receive(match) skips others."""
    from beamish.runtime import send

    class Asker(Actor):
        async def handle_cast(self, request: ActorRef) -> None:
            send(request, ("answered", await call(request, "question")))

    asker = await start(Asker)
    async with open_inbox() as inbox:
        send(inbox.ref, "first")
        await cast(asker, inbox.ref)
        request, caller = await inbox.receive(lambda m: isinstance(m, tuple), timeout=5)
        assert request == "question"
        caller.reply("answer")
        assert await inbox.receive(lambda m: m != "first", timeout=5) == ("answered", "answer")
        assert inbox.receive_nowait() == "first"
        with pytest.raises(LookupError):
            inbox.receive_nowait()


# --- on_exit: a monitor for plain code ----------------------------------------------------------


async def test_on_exit_runs_once_with_the_reason_after_the_down(node: Node) -> None:
    """The callback gets (ref, reason) once, after the actor's monitors got their Down."""
    ref = await start(Worker, False)
    seen: list[tuple[ActorRef, ExitReason, int]] = []
    async with open_inbox() as inbox:
        monitor(ref)
        on_exit(ref, lambda actor, reason: seen.append((actor, reason, inbox.pending)))
        await stop(ref, SHUTDOWN)
        assert seen == [(ref, SHUTDOWN, 1)]
        assert (await inbox.receive()).reason == SHUTDOWN


async def test_on_exit_sees_a_crash_and_a_kill(node: Node) -> None:
    """Abnormal exits reach the callback with their reason, terminate or not."""
    crashing, killed = await start(Worker, False), await start(Worker, False)
    reasons: dict[ActorRef, ExitReason] = {}
    for ref in (crashing, killed):
        on_exit(ref, lambda actor, reason: reasons.__setitem__(actor, reason))
    boom = Boom("x")
    async with open_inbox() as inbox:
        monitor(crashing)
        await cast(crashing, boom)
        await inbox.receive()
    exit(killed, KILL)
    await killed._wait_dead()
    assert reasons == {crashing: crash(boom), killed: KILLED}


async def test_on_exit_of_a_dead_actor_gives_noproc_soon_not_at_once(node: Node) -> None:
    """As a monitor: noproc for an actor already dead, from the loop, not the registration."""
    ref = await start(Worker, False)
    await stop(ref)
    seen: list[ExitReason] = []
    on_exit(ref, lambda actor, reason: seen.append(reason))
    assert seen == []
    await asyncio.sleep(0)
    assert seen == [NOPROC]


async def test_on_exit_cancelled_never_runs(node: Node) -> None:
    """cancel() before the exit: no call, True once, then False."""
    ref = await start(Worker, False)
    seen: list[ExitReason] = []
    handle = on_exit(ref, lambda actor, reason: seen.append(reason))
    assert handle.cancel() is True
    assert handle.cancel() is False
    await stop(ref)
    assert seen == []


async def test_on_exit_failing_callback_does_not_stop_the_others(
        node: Node, caplog: pytest.LogCaptureFixture) -> None:
    """A raising callback is logged; later callbacks and links still get the exit."""
    ref = await start(Worker, False)
    seen: list[ExitReason] = []

    def fails(actor: ActorRef, reason: ExitReason) -> None:
        raise RuntimeError("callback bug")

    on_exit(ref, fails)
    on_exit(ref, lambda actor, reason: seen.append(reason))
    await stop(ref)
    assert seen == [NORMAL]
    assert "on_exit callback" in caplog.text


async def test_on_exit_works_outside_any_actor(node: Node) -> None:
    """No inbox needed: plain code registers, and a name resolves as for monitor."""
    ref = await start(Worker, False, name="watched")
    seen: list[ExitReason] = []
    on_exit("watched", lambda actor, reason: seen.append(reason))
    await stop(ref, SHUTDOWN)
    assert seen == [SHUTDOWN]
    with pytest.raises(NoProcessError):
        on_exit("watched", lambda actor, reason: None)
