"""Actors: init, calls, casts, sends, terminate, errors and option checks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from anyio import wait_all_tasks_blocked

from beamish.runtime import (
    KILL,
    NOREPLY,
    NORMAL,
    SHUTDOWN,
    Actor,
    ActorExitedError,
    ActorRef,
    Caller,
    CallError,
    CallTimeoutError,
    Down,
    Exit,
    ExitReason,
    InvalidOptionError,
    Node,
    NoNodeError,
    NoProcessError,
    call,
    cast,
    exit,
    link,
    monitor,
    open_inbox,
    reply,
    self_ref,
    send,
    start,
    stop,
)
from tests.runtime._support import now

pytestmark = pytest.mark.anyio


class Boom(Exception):
    """The error test actors raise on purpose."""


class Recorder(Actor):
    """Records every callback it receives, in order; replies to calls with its log."""

    def init(self, arg: Any) -> None:
        self.log: list[Any] = []
        self.events: list[ExitReason] | None = arg

    def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "log":
            return list(self.log)
        if request == "crash":
            raise Boom("in call")
        if request == "stop":
            self.stop(NORMAL)
            return "stopping"
        self.log.append(("call", request))
        return ("reply", request)

    def handle_cast(self, request: Any) -> None:
        if request == "crash":
            raise Boom("in cast")
        self.log.append(("cast", request))

    def handle_info(self, message: Any) -> None:
        self.log.append(("info", message))

    def terminate(self, reason: ExitReason) -> None:
        if self.events is not None:
            self.events.append(reason)


class AsyncRecorder(Actor):
    """The same callbacks as Recorder, but async."""

    async def init(self, arg: Any) -> None:
        await asyncio.sleep(0)
        self.log: list[Any] = []

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        await asyncio.sleep(0)
        if request == "log":
            return list(self.log)
        self.log.append(("call", request))
        return ("reply", request)

    async def handle_cast(self, request: Any) -> None:
        await asyncio.sleep(0)
        self.log.append(("cast", request))

    async def handle_info(self, message: Any) -> None:
        await asyncio.sleep(0)
        self.log.append(("info", message))


class FailingInit(Actor):
    def init(self, arg: Any) -> None:
        raise arg


class AsyncFailingInit(Actor):
    async def init(self, arg: Any) -> None:
        await asyncio.sleep(1)
        raise arg


class Continuing(Actor):
    def init(self, arg: Any) -> None:
        self.log: list[Any] = ["init"]
        self.continue_with("first")

    async def handle_continue(self, arg: Any) -> None:
        await asyncio.sleep(1)
        self.log.append(("continue", arg))

    def handle_cast(self, request: Any) -> None:
        self.log.append(("cast", request))

    def handle_call(self, request: Any, caller: Caller) -> Any:
        return list(self.log)


class Deferring(Actor):
    """Replies to calls later, from another task, through the caller."""

    def init(self, arg: tuple[int, asyncio.Event] | None) -> None:
        self.callers: list[Caller] = []
        self.expect = arg

    def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "pending":
            return len(self.callers)
        if request == "take":
            taken, self.callers = self.callers, []
            return taken
        self.callers.append(caller)
        if self.expect is not None and len(self.callers) == self.expect[0]:
            self.expect[1].set()
        return NOREPLY


class Slow(Actor):
    """Replies to ("sleep", n, value) after n virtual seconds."""

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        _, seconds, value = request
        await asyncio.sleep(seconds)
        return value


class SelfCaller(Actor):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        try:
            await call(self.ref, "again")
        except CallError as exc:
            return exc
        return None


class Trapping(Actor):
    def init(self, arg: list[ExitReason]) -> None:
        self.events = arg
        self.trap_exit()

    def handle_info(self, message: Any) -> None:
        pass

    def terminate(self, reason: ExitReason) -> None:
        self.events.append(reason)


class Parent(Actor):
    """Starts a linked child on request and returns its ref."""

    def init(self, arg: Any) -> None:
        self.exits: list[Any] = []

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        _, child_type, child_arg = request
        try:
            return await start(child_type, child_arg, link=True)
        except Exception as exc:
            return exc

    def handle_info(self, message: Any) -> None:
        self.exits.append(message)


# -- init -------------------------------------------------------------------------------------


async def test_init_failure_reraises_the_very_error(node: Node) -> None:
    """start() raises exactly the exception init raised."""
    error = Boom("bad init")
    with pytest.raises(Boom) as caught:
        await start(FailingInit, error, name="failing")
    assert caught.value is error


async def test_init_failure_leaves_no_actor_behind(node: Node) -> None:
    """After a failed init the actor is dead: its name is free and the node lists nothing."""
    with pytest.raises(Boom):
        await start(AsyncFailingInit, Boom("late"), name="failing")
    assert node.whereis("failing") is None
    assert node.actors() == []
    with pytest.raises(NoProcessError):
        await call("failing", "x")


class StopsInInit(Actor):
    def init(self, arg: list[str]) -> None:
        self.log = arg
        self.stop(SHUTDOWN)

    def terminate(self, reason: ExitReason) -> None:
        self.log.append("terminate")


async def test_init_asking_to_stop_fails_start_without_terminate(node: Node) -> None:
    """init calling self.stop() makes start fail with that reason, as OTP's {stop, Reason}."""
    log: list[str] = []
    with pytest.raises(ActorExitedError) as caught:
        await start(StopsInInit, log, name="stopper")
    assert caught.value.reason == SHUTDOWN
    assert log == []
    assert node.whereis("stopper") is None
    assert node.actors() == []


async def test_init_failure_sends_no_exit_to_linked_starter(node: Node) -> None:
    """A linked starter gets the init error as a return value, no EXIT signal, and lives."""
    parent = await start(Parent)
    error = Boom("child init")
    result = await call(parent, ("start", FailingInit, error))
    assert result is error
    async with open_inbox() as inbox:
        monitor(parent)
        assert parent.alive
        # A marker through the parent's mailbox proves any EXIT would have been handled.
        send(parent, "marker")
        await stop(parent)
        down = await inbox.receive()
    assert isinstance(down, Down)
    assert down.reason == NORMAL


async def test_init_continue_runs_before_first_message(node: Node) -> None:
    """handle_continue asked for in init runs before any queued message."""
    ref = await start(Continuing)
    await cast(ref, "m1")
    assert await call(ref, "log") == ["init", ("continue", "first"), ("cast", "m1")]


async def test_init_timeout_raises_and_kills_the_actor(node: Node) -> None:
    """start(timeout=) gives up at exactly the timeout and kills the half-started actor."""
    t0 = now()
    with pytest.raises(TimeoutError):
        await start(AsyncFailingInit, Boom("never"), name="slow", timeout=0.5)
    assert now() - t0 == 0.5
    assert node.whereis("slow") is None
    assert node.actors() == []


async def test_linked_start_timeout_does_not_kill_the_starter(node: Node) -> None:
    """A linked start that times out unlinks before killing, so the starter survives."""

    class Starter(Actor):
        async def handle_call(self, request: Any, caller: Caller) -> Any:
            try:
                await start(AsyncFailingInit, Boom("never"), link=True, timeout=0.5)
            except TimeoutError:
                return "timed out"
            return "started"

    starter = await start(Starter)
    assert await call(starter, "go") == "timed out"
    assert starter.alive
    assert [info.ref for info in node.actors()] == [starter]


# -- calls ------------------------------------------------------------------------------------


async def test_call_returns_handle_call_value(node: Node) -> None:
    """The value handle_call returns is the reply."""
    ref = await start(Recorder)
    assert await call(ref, "hello") == ("reply", "hello")


async def test_deferred_reply_from_another_task(node: Node) -> None:
    """handle_call may return NOREPLY and another task replies through the caller later."""
    arrived = asyncio.Event()
    ref = await start(Deferring, (3, arrived))

    async def caller_task(value: int) -> Any:
        return await call(ref, value)

    tasks = [asyncio.create_task(caller_task(i)) for i in range(3)]
    await arrived.wait()
    callers: list[Caller] = await call(ref, "take")
    assert all(c.waiting for c in callers)
    for index, c in enumerate(reversed(callers)):
        c.reply(("late", index))
    assert not any(c.waiting for c in callers)
    assert await asyncio.gather(*tasks) == [("late", 2), ("late", 1), ("late", 0)]


async def test_second_reply_is_ignored(node: Node) -> None:
    """Only the first reply through a caller counts; a second is a no-op."""
    arrived = asyncio.Event()
    ref = await start(Deferring, (1, arrived))
    task = asyncio.create_task(call(ref, "q"))
    await arrived.wait()
    (caller,) = await call(ref, "take")
    caller.reply("first")
    caller.reply("second")
    assert await task == "first"


async def test_call_timeout_at_exact_virtual_time(node: Node) -> None:
    """A call with no reply raises CallTimeoutError exactly `timeout` seconds later."""
    ref = await start(Deferring)
    t0 = now()
    with pytest.raises(CallTimeoutError) as caught:
        await call(ref, "never", timeout=2.5)
    assert now() - t0 == 2.5
    assert caught.value.timeout == 2.5
    assert isinstance(caught.value, TimeoutError)


async def test_call_timeouts_of_different_lengths_each_fire_on_time(node: Node) -> None:
    """Concurrent calls with different timeouts each time out at their own deadline."""
    ref = await start(Deferring)
    t0 = now()
    times: dict[float, float] = {}

    async def timed(timeout: float) -> None:
        with pytest.raises(CallTimeoutError):
            await call(ref, timeout, timeout=timeout)
        times[timeout] = now() - t0

    async with asyncio.TaskGroup() as tg:
        for timeout in (3.0, 1.0, 2.0, 1.0):
            tg.create_task(timed(timeout))
    assert times == {1.0: 1.0, 2.0: 2.0, 3.0: 3.0}


async def test_late_reply_is_discarded(node: Node) -> None:
    """A reply arriving after the timeout never reaches a later call."""
    ref = await start(Slow)
    with pytest.raises(CallTimeoutError):
        await call(ref, ("sleep", 10, "late"), timeout=1)
    t0 = now()
    assert await call(ref, ("sleep", 0, "fresh"), timeout=20) == "fresh"
    # The fresh call waited for the slow one to finish; it got its own reply.
    assert now() - t0 == 9


async def test_call_without_timeout_waits_forever(node: Node) -> None:
    """timeout=None waits as long as the reply takes."""
    ref = await start(Slow)
    t0 = now()
    assert await call(ref, ("sleep", 1000, "done"), timeout=None) == "done"
    assert now() - t0 == 1000


async def test_call_to_dead_actor_raises_no_process_at_once(node: Node) -> None:
    """Calling a stopped actor raises NoProcessError without waiting."""
    ref = await start(Recorder)
    await stop(ref)
    t0 = now()
    with pytest.raises(NoProcessError) as caught:
        await call(ref, "hello")
    assert caught.value.target is ref
    assert now() == t0


async def test_call_to_unknown_name_raises_no_process_at_once(node: Node) -> None:
    """Calling a name nobody holds raises NoProcessError without waiting."""
    t0 = now()
    with pytest.raises(NoProcessError, match="nobody"):
        await call("nobody", "hello")
    assert now() == t0


async def test_call_by_name(node: Node) -> None:
    """A registered name reaches the actor; it is released when the actor exits."""
    ref = await start(Recorder, name="rec")
    assert node.whereis("rec") is ref
    assert await call("rec", "x") == ("reply", "x")
    await stop("rec")
    assert node.whereis("rec") is None


async def test_callee_crash_mid_call_raises_actor_exited(node: Node) -> None:
    """A callee that raises in handle_call fails the call with ActorExitedError(crash)."""
    ref = await start(Recorder)
    with pytest.raises(ActorExitedError) as caught:
        await call(ref, "crash")
    reason = caught.value.reason
    assert reason.kind == "crash"
    assert isinstance(reason.exception, Boom)
    assert str(reason.exception) == "in call"
    assert not ref.alive
    assert ref.exit_reason == reason


async def test_queued_calls_fail_when_callee_crashes(node: Node) -> None:
    """Calls still queued behind a crashing message fail with the crash reason."""
    ref = await start(Recorder)
    await cast(ref, "crash")
    with pytest.raises(ActorExitedError) as caught:
        await call(ref, "queued")
    assert caught.value.reason.kind == "crash"


async def test_callee_killed_during_async_call(node: Node) -> None:
    """A callee killed while handling a call fails it with ActorExitedError(killed)."""
    ref = await start(Slow)
    task = asyncio.create_task(call(ref, ("sleep", 100, "x")))
    await wait_all_tasks_blocked()
    exit(ref, KILL)
    with pytest.raises(ActorExitedError) as caught:
        await task
    assert caught.value.reason.kind == "killed"


async def test_deferred_caller_fails_when_callee_stops(node: Node) -> None:
    """A caller waiting on a NOREPLY call fails when the callee exits."""
    arrived = asyncio.Event()
    ref = await start(Deferring, (1, arrived))
    task = asyncio.create_task(call(ref, "q"))
    await arrived.wait()
    await stop(ref, SHUTDOWN)
    with pytest.raises(ActorExitedError) as caught:
        await task
    assert caught.value.reason == SHUTDOWN


async def test_actor_calling_itself_raises_call_error(node: Node) -> None:
    """An actor calling its own ref gets CallError instead of deadlocking."""
    ref = await start(SelfCaller)
    error = await call(ref, "go")
    assert isinstance(error, CallError)
    assert "called itself" in str(error)


async def test_stop_reply_is_sent_before_exit(node: Node) -> None:
    """self.stop() in handle_call still delivers the reply, then the actor exits normally."""
    events: list[ExitReason] = []
    ref = await start(Recorder, events)
    async with open_inbox() as inbox:
        monitor(ref)
        assert await call(ref, "stop") == "stopping"
        down = await inbox.receive()
    assert down.reason == NORMAL
    assert events == [NORMAL]


# -- casts and sends --------------------------------------------------------------------------


async def test_casts_and_sends_arrive_in_order(node: Node) -> None:
    """Casts, sends and calls from one sender are handled in the order sent."""
    ref = await start(Recorder)
    await cast(ref, 1)
    send(ref, 2)
    await cast(ref, 3)
    send(ref, 4)
    assert await call(ref, 5) == ("reply", 5)
    assert await call(ref, "log") == [
        ("cast", 1),
        ("info", 2),
        ("cast", 3),
        ("info", 4),
        ("call", 5),
    ]


async def test_many_casts_keep_order(node: Node) -> None:
    """A thousand casts arrive in order."""
    ref = await start(Recorder)
    for i in range(1000):
        cast(ref, i)
    log = await call(ref, "log")
    assert log == [("cast", i) for i in range(1000)]


async def test_cast_and_send_to_dead_or_unknown_are_dropped(node: Node) -> None:
    """cast and send to a dead actor or an unknown name do nothing and raise nothing."""
    ref = await start(Recorder)
    await stop(ref)
    await cast(ref, "x")
    await cast("nobody", "x")
    send(ref, "x")
    send("nobody", "x")
    assert node.actors() == []


async def test_cast_crash_kills_only_that_actor(node: Node) -> None:
    """A callback exception crashes its own actor and leaves an unrelated one untouched."""
    victim = await start(Recorder)
    bystander = await start(Recorder)
    async with open_inbox() as inbox:
        monitor(victim)
        await cast(victim, "crash")
        down = await inbox.receive()
    assert down.reason.kind == "crash"
    assert bystander.alive
    await cast(bystander, "still here")
    assert await call(bystander, "log") == [("cast", "still here")]


async def test_async_callbacks_work(node: Node) -> None:
    """async def init/handle_call/handle_cast/handle_info run in order like sync ones."""
    ref = await start(AsyncRecorder)
    await cast(ref, 1)
    send(ref, 2)
    assert await call(ref, 3) == ("reply", 3)
    assert await call(ref, "log") == [("cast", 1), ("info", 2), ("call", 3)]


async def test_default_handle_call_crashes_with_call_error(node: Node) -> None:
    """An actor without handle_call crashes on a call, with a CallError naming the request."""

    class Mute(Actor):
        pass

    ref = await start(Mute)
    with pytest.raises(ActorExitedError) as caught:
        await call(ref, "anything")
    assert isinstance(caught.value.reason.exception, CallError)
    assert "'anything'" in str(caught.value.reason.exception)


# -- terminate --------------------------------------------------------------------------------


async def test_terminate_on_orderly_stop(node: Node) -> None:
    """stop(ref, reason) runs terminate(reason) and returns the reason."""
    events: list[ExitReason] = []
    ref = await start(Recorder, events)
    assert await stop(ref, SHUTDOWN) == SHUTDOWN
    assert events == [SHUTDOWN]
    assert ref.exit_reason == SHUTDOWN
    assert ref.status == "dead"


async def test_terminate_on_crash(node: Node) -> None:
    """A crashing callback runs terminate with the crash reason."""
    events: list[ExitReason] = []
    ref = await start(Recorder, events)
    async with open_inbox() as inbox:
        monitor(ref)
        await cast(ref, "crash")
        down = await inbox.receive()
    assert len(events) == 1
    assert events[0] is down.reason
    assert events[0].kind == "crash"


async def test_terminate_on_parent_shutdown_when_trapping(node: Node) -> None:
    """A trapping child gets terminate(reason) when its linked parent exits with it."""
    events: list[ExitReason] = []
    parent = await start(Parent)
    child = await call(parent, ("start", Trapping, events))
    assert isinstance(child, ActorRef)
    async with open_inbox() as inbox:
        monitor(child)
        await stop(parent, SHUTDOWN)
        down = await inbox.receive()
    assert down.reason == SHUTDOWN
    assert events == [SHUTDOWN]


async def test_trapping_non_parent_exit_is_a_message(node: Node) -> None:
    """A trapping actor turns a non-parent's exit signal into an Exit message, no terminate."""

    class Keeper(Actor):
        def init(self, arg: Any) -> None:
            self.trap_exit()
            self.got: list[Any] = []

        def handle_info(self, message: Any) -> None:
            self.got.append(message)

        def handle_call(self, request: Any, caller: Caller) -> Any:
            return list(self.got)

    keeper = await start(Keeper)
    async with open_inbox() as inbox:
        exit(keeper, SHUTDOWN)
        assert await call(keeper, "got") == [Exit(inbox.ref, SHUTDOWN)]
        assert keeper.alive
        assert inbox.pending == 0


async def test_terminate_not_called_on_kill(node: Node) -> None:
    """KILL ends the actor without terminate, even when it traps exits."""
    events: list[ExitReason] = []
    ref = await start(Trapping, events)
    async with open_inbox() as inbox:
        monitor(ref)
        exit(ref, KILL)
        down = await inbox.receive()
    assert down.reason.kind == "killed"
    assert events == []


async def test_terminate_not_called_on_untrapped_exit_signal(node: Node) -> None:
    """An exit signal to a non-trapping actor kills it without terminate."""
    events: list[ExitReason] = []
    ref = await start(Recorder, events)
    async with open_inbox() as inbox:
        monitor(ref)
        exit(ref, SHUTDOWN)
        down = await inbox.receive()
    assert down.reason == SHUTDOWN
    assert events == []


async def test_terminate_crash_changes_reason(node: Node) -> None:
    """An exception in terminate turns the exit reason into that crash."""

    class BadTerminate(Actor):
        def terminate(self, reason: ExitReason) -> None:
            raise Boom("terminate")

    ref = await start(BadTerminate)
    reason = await stop(ref)
    assert reason.kind == "crash"
    assert str(reason.exception) == "terminate"


async def test_stop_dead_actor_raises_no_process(node: Node) -> None:
    """stop() on a dead actor raises NoProcessError."""
    ref = await start(Recorder)
    await stop(ref)
    with pytest.raises(NoProcessError):
        await stop(ref)


async def test_stop_timeout_raises_call_timeout(node: Node) -> None:
    """stop(timeout=) raises CallTimeoutError when terminate outlasts it (virtual time)."""

    class SlowTerminate(Actor):
        async def terminate(self, reason: ExitReason) -> None:
            await asyncio.sleep(10)

    ref = await start(SlowTerminate)
    t0 = now()
    with pytest.raises(CallTimeoutError):
        await stop(ref, timeout=3)
    assert now() - t0 == 3


# -- links from start -------------------------------------------------------------------------


async def test_start_link_needs_a_calling_actor(node: Node) -> None:
    """start(link=True) from plain code raises CallError."""
    with pytest.raises(CallError, match="link"):
        await start(Recorder, link=True)


async def test_linked_child_crash_kills_parent(node: Node) -> None:
    """start(link=True) links: a child crash kills a non-trapping parent with the same reason."""
    parent = await start(Parent)
    child = await call(parent, ("start", Recorder, None))
    async with open_inbox() as inbox:
        monitor(parent)
        await cast(child, "crash")
        down = await inbox.receive()
    assert down.reason.kind == "crash"
    assert down.reason == child.exit_reason


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"mailbox_size": 0}, "mailbox_size"),
        ({"mailbox_size": True}, "mailbox_size"),
        ({"mailbox_size": 1.5}, "mailbox_size"),
        ({"overflow": "drop"}, "overflow"),
        ({"hibernate_after": -1}, "hibernate_after"),
        ({"hibernate_after": "soon"}, "hibernate_after"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
        ({"name": 42}, "name"),
    ],
)
async def test_invalid_start_option_names_the_field(
    node: Node, options: dict[str, Any], field: str
) -> None:
    """A bad start option raises InvalidOptionError naming the field; nothing is started."""
    with pytest.raises(InvalidOptionError) as caught:
        await start(Recorder, **options)
    assert caught.value.field == field
    assert field in str(caught.value)
    assert node.actors() == []


async def test_start_non_actor_type_is_invalid(node: Node) -> None:
    """start() of something that is not an Actor subclass raises InvalidOptionError."""
    with pytest.raises(InvalidOptionError) as caught:
        await start(dict)  # type: ignore[arg-type]
    assert caught.value.field == "actor_type"


async def test_start_without_node_raises_no_node() -> None:
    """start() outside a running Node raises NoNodeError."""
    with pytest.raises(NoNodeError):
        await start(Recorder)


async def test_link_from_plain_code_needs_inbox(node: Node) -> None:
    """link() outside an actor or inbox raises CallError."""
    ref = await start(Recorder)
    with pytest.raises(CallError, match="open_inbox"):
        link(ref)


# -- edge cases -------------------------------------------------------------------------------


async def test_init_failure_sends_no_exit_to_trapping_starter(node: Node) -> None:
    """A trapping starter of a failing linked child gets the error and no Exit message."""

    class TrappingParent(Parent):
        def init(self, arg: Any) -> None:
            super().init(arg)
            self.trap_exit()

        async def handle_call(self, request: Any, caller: Caller) -> Any:
            if request == "exits":
                return list(self.exits)
            return await super().handle_call(request, caller)

    parent = await start(TrappingParent)
    error = Boom("child init")
    assert await call(parent, ("start", FailingInit, error)) is error
    send(parent, "marker")
    assert await call(parent, "exits") == ["marker"]


async def test_cancelled_start_kills_the_child(node: Node) -> None:
    """Cancelling start() while init runs kills the half-started actor."""
    task = asyncio.create_task(start(AsyncFailingInit, Boom("never"), name="half"))
    await wait_all_tasks_blocked()
    (info,) = node.actors()
    async with open_inbox() as inbox:
        monitor(info.ref)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        down = await inbox.receive()
    assert down.reason.kind in ("killed", "noproc")
    assert node.whereis("half") is None
    assert not info.ref.alive


async def test_continue_chain_runs_in_order(node: Node) -> None:
    """continue_with from handle_continue runs next, still before queued messages."""

    class Chain(Continuing):
        async def handle_continue(self, arg: Any) -> None:
            self.log.append(("continue", arg))
            if arg == "first":
                self.continue_with("second")

        def handle_cast(self, request: Any) -> None:
            self.log.append(("cast", request))
            self.continue_with(("after", request))

    ref = await start(Chain)
    await cast(ref, "m")
    assert await call(ref, "log") == [
        "init",
        ("continue", "first"),
        ("continue", "second"),
        ("cast", "m"),
        ("continue", ("after", "m")),
    ]


async def test_handle_continue_crash_is_a_crash(node: Node) -> None:
    """An exception in handle_continue crashes the actor with that error."""

    class BadContinue(Actor):
        def init(self, arg: Any) -> None:
            self.continue_with(arg)

        def handle_continue(self, arg: Any) -> None:
            raise arg

    boom = Boom("continue")
    ref = await start(BadContinue, boom)
    async with open_inbox() as inbox:
        monitor(ref)
        down = await inbox.receive()
    assert down.reason.kind in ("crash", "noproc")
    assert ref.exit_reason is not None
    assert ref.exit_reason.exception is boom


async def test_exit_self_from_callback(node: Node) -> None:
    """exit(self_ref(), reason) in a sync callback kills the actor with that reason."""

    class Quitter(Actor):
        def handle_cast(self, request: Any) -> None:
            exit(self.ref, request)

    ref = await start(Quitter)
    async with open_inbox() as inbox:
        monitor(ref)
        await cast(ref, SHUTDOWN)
        down = await inbox.receive()
    assert down.reason == SHUTDOWN


async def test_uncaught_call_error_crashes_the_caller_actor(node: Node) -> None:
    """An actor whose call fails with ActorExitedError, uncaught, crashes with that error."""

    class Forwarder(Actor):
        async def handle_cast(self, request: Any) -> None:
            await call(request, "crash")

    target = await start(Recorder)
    forwarder = await start(Forwarder)
    async with open_inbox() as inbox:
        monitor(forwarder)
        await cast(forwarder, target)
        down = await inbox.receive()
    assert isinstance(down.reason.exception, ActorExitedError)
    assert down.reason.exception.reason.kind == "crash"


async def test_kill_during_async_terminate(node: Node) -> None:
    """A KILL while terminate is running ends the actor at once with reason killed."""
    entered = asyncio.Event()

    class SlowTerminate(Actor):
        async def terminate(self, reason: ExitReason) -> None:
            entered.set()
            await asyncio.sleep(100)

    ref = await start(SlowTerminate)
    stopping = asyncio.create_task(stop(ref))
    await entered.wait()
    t0 = now()
    exit(ref, KILL)
    assert (await stopping).kind == "killed"
    assert now() == t0


async def test_same_timeout_calls_each_fire_at_own_deadline(node: Node) -> None:
    """Calls with one timeout value, started at different times, each time out on time."""
    ref = await start(Deferring)
    t0 = now()
    times: list[float] = []

    async def timed(delay: float) -> None:
        await asyncio.sleep(delay)
        with pytest.raises(CallTimeoutError):
            await call(ref, delay, timeout=4)
        times.append(now() - t0)

    async with asyncio.TaskGroup() as tg:
        for delay in (0, 1, 2.5):
            tg.create_task(timed(delay))
    assert times == [4, 5, 6.5]


async def test_helper_task_of_an_actor_may_call_it(node: Node) -> None:
    """A task spawned by an actor is not the actor: it may call the actor without CallError."""

    class Spawner(Actor):
        def init(self, arg: Any) -> None:
            self.helper: asyncio.Task[None] | None = None

        def handle_cast(self, request: ActorRef) -> None:
            async def ask_myself() -> None:
                try:
                    send(request, await call(self.ref, "ping"))
                except CallError as exc:
                    send(request, exc)

            self.helper = asyncio.create_task(ask_myself())

        def handle_call(self, request: Any, caller: Caller) -> Any:
            return "pong"

    ref = await start(Spawner)
    async with open_inbox() as inbox:
        await cast(ref, inbox.ref)
        assert await inbox.receive() == "pong"


async def test_actor_stopping_itself_raises_call_error(node: Node) -> None:
    """stop() of an actor from its own callback raises CallError (use self.stop())."""

    class SelfStopper(Actor):
        async def handle_call(self, request: Any, caller: Caller) -> Any:
            try:
                await stop(self.ref)
            except CallError as exc:
                return exc
            return None

    ref = await start(SelfStopper)
    error = await call(ref, "go")
    assert isinstance(error, CallError)
    assert "self.stop()" in str(error)
    assert ref.alive


async def test_reply_function_answers_a_deferred_call(node: Node) -> None:
    """reply(caller, value) is the same as caller.reply(value)."""
    arrived = asyncio.Event()
    ref = await start(Deferring, (1, arrived))
    task = asyncio.create_task(call(ref, "q"))
    await arrived.wait()
    (caller,) = await call(ref, "take")
    reply(caller, "via reply()")
    assert await task == "via reply()"


async def test_exit_self_normal_ends_the_actor_normally(node: Node) -> None:
    """exit(self_ref(), NORMAL) from inside a non-trapping actor ends it with reason normal."""
    events: list[ExitReason] = []

    class Leaver(Actor):
        def handle_cast(self, request: Any) -> None:
            exit(self_ref(), NORMAL)

        def terminate(self, reason: ExitReason) -> None:
            events.append(reason)

    ref = await start(Leaver)
    async with open_inbox() as inbox:
        monitor(ref)
        await cast(ref, "go")
        down = await inbox.receive()
    assert down.reason == NORMAL
    assert events == []


async def test_stray_cancelled_error_in_callback_is_a_crash(node: Node) -> None:
    """A CancelledError escaping a callback (not a kill) is a crash: terminate runs."""
    events: list[ExitReason] = []

    class Awaiter(Actor):
        async def handle_cast(self, request: Any) -> None:
            cancelled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            cancelled.cancel()
            await cancelled

        def terminate(self, reason: ExitReason) -> None:
            events.append(reason)

    ref = await start(Awaiter)
    async with open_inbox() as inbox:
        monitor(ref)
        await cast(ref, "go")
        down = await inbox.receive()
    assert down.reason.kind == "crash"
    assert isinstance(down.reason.exception, asyncio.CancelledError)
    assert events == [down.reason]


async def test_late_deferred_reply_never_reaches_next_call(node: Node) -> None:
    """A reply sent after its call timed out is dropped, even while a newer call waits."""
    ref = await start(Deferring)
    with pytest.raises(CallTimeoutError):
        await call(ref, "first", timeout=1)
    second = asyncio.create_task(call(ref, "second"))
    await asyncio.sleep(0)  # the second call is queued before "take"
    stale, fresh = await call(ref, "take")
    assert not stale.waiting
    assert fresh.waiting
    stale.reply("late answer to first")
    assert fresh.waiting
    fresh.reply("answer to second")
    assert await second == "answer to second"
