"""DynamicSupervisor: children on demand, max_children, restarts, termination, concurrent stop."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest

from beamish.runtime import (
    NORMAL,
    SHUTDOWN,
    Actor,
    ActorRef,
    Caller,
    ChildSpec,
    DynamicSupervisor,
    ExitReason,
    InvalidOptionError,
    Node,
    NoProcessError,
    StartChildError,
    TooManyChildrenError,
    call,
    child_spec,
    dynamic_supervisor_spec,
    monitor,
    open_inbox,
    send,
    start_child,
    start_dynamic_supervisor,
    start_supervisor,
    stop,
    terminate_child_ref,
    terminate_children,
    which_children,
)
from beamish.runtime.dynamic import dynamic_children
from beamish.runtime.exits import shutdown
from beamish.runtime.restarts import Restart
from tests.runtime._support import Refuses, down_of, exit_child

pytestmark = pytest.mark.anyio

Log = list[str]


class Session(Actor):
    """Answers with its id; crashes or stops on request; terminate takes ``delay`` seconds."""

    def init(self, arg: tuple[str, float, Log]) -> None:
        self.sid, self.delay, self.log = arg
        self.trap_exit()

    def handle_call(self, request: Any, caller: Caller) -> Any:
        return self.sid

    def handle_cast(self, request: Any) -> None:
        if request == "crash":
            raise RuntimeError(f"{self.sid} crashed")
        self.stop(request)

    async def terminate(self, reason: ExitReason) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.log.append(f"{self.sid}:{reason}")


def session(sid: str, log: Log, delay: float = 0.0, **options: Any) -> ChildSpec:
    return child_spec(Session, (sid, delay, log), id=sid, **options)


async def children_of(sup: ActorRef) -> dict[str, ActorRef]:
    """Spec id -> ref of every child; also waits for earlier EXITs to be handled."""
    return {str(cid): ref for ref, cid in await dynamic_children(sup)}


async def test_starts_with_no_children(node: Node) -> None:
    """A new DynamicSupervisor has no children."""
    sup = await start_dynamic_supervisor()
    assert await children_of(sup) == {}


async def test_start_child_on_demand(node: Node) -> None:
    """start_child starts a linked, working child and returns its ref."""
    log: Log = []
    sup = await start_dynamic_supervisor()
    a = await start_child(sup, session("a", log))
    b = await start_child(sup, session("b", log))
    assert (await call(a, "id"), await call(b, "id")) == ("a", "b")
    assert await children_of(sup) == {"a": a, "b": b}
    assert sup in (a._links or ())


async def test_max_children_refuses_and_keeps_working(node: Node) -> None:
    """At max_children start_child raises TooManyChildrenError; the supervisor keeps going."""
    log: Log = []
    sup = await start_dynamic_supervisor(max_children=2)
    a = await start_child(sup, session("a", log))
    await start_child(sup, session("b", log))
    with pytest.raises(TooManyChildrenError, match="max_children=2") as info:
        await start_child(sup, session("c", log))
    assert info.value.max_children == 2
    assert sup.alive
    assert sorted(await children_of(sup)) == ["a", "b"]
    await terminate_child_ref(sup, a)
    c = await start_child(sup, session("c", log))
    assert await call(c, "id") == "c"


async def test_max_children_zero_refuses_every_child(node: Node) -> None:
    """max_children=0 refuses the first child."""
    sup = await start_dynamic_supervisor(max_children=0)
    with pytest.raises(TooManyChildrenError):
        await start_child(sup, session("a", []))


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
async def test_invalid_max_children_names_the_field(node: Node, bad: Any) -> None:
    """An invalid max_children fails start with InvalidOptionError naming it."""
    with pytest.raises(InvalidOptionError, match="invalid max_children:"):
        await start_dynamic_supervisor(max_children=bad)


async def test_failing_child_start_raises_and_supervisor_survives(node: Node) -> None:
    """A child whose init raises fails start_child with StartChildError; nothing is added."""
    sup = await start_dynamic_supervisor(max_children=1)
    with pytest.raises(StartChildError, match="child 'Refuses' failed to start") as info:
        await start_child(sup, child_spec(Refuses))
    assert isinstance(info.value.__cause__, ValueError)
    assert sup.alive
    assert await children_of(sup) == {}
    assert await start_child(sup, session("a", [])) is not None


async def test_non_spec_child_is_refused(node: Node) -> None:
    """start_child with something other than a ChildSpec raises InvalidOptionError."""
    sup = await start_dynamic_supervisor()
    bad: Any = Session
    with pytest.raises(InvalidOptionError, match="invalid spec:"):
        await start_child(sup, bad)
    assert sup.alive


@pytest.mark.parametrize(
    ("restart", "how", "restarted"),
    [
        ("permanent", "crash", True),
        ("permanent", NORMAL, True),
        ("transient", "crash", True),
        ("transient", NORMAL, False),
        ("transient", SHUTDOWN, False),
        ("temporary", "crash", False),
        ("temporary", NORMAL, False),
    ],
)
async def test_restart_types(node: Node, restart: str, how: Any, restarted: bool) -> None:
    """permanent children are restarted on any exit, transient on a crash, temporary never."""
    log: Log = []
    sup = await start_dynamic_supervisor()
    old = await start_child(sup, session("s", log, restart=restart))
    async with open_inbox() as inbox:
        await exit_child(inbox, old, how)
    after = await children_of(sup)
    if restarted:
        assert list(after) == ["s"]
        assert after["s"] is not old
        assert after["s"].restart_count == 1
        assert await call(after["s"], "id") == "s"
    else:
        assert after == {}


async def test_intensity_exceeded_stops_the_supervisor(node: Node) -> None:
    """More than max_restarts crashes within max_seconds stop the supervisor with shutdown."""
    log: Log = []
    sup = await start_dynamic_supervisor(max_restarts=1)
    other = await start_child(sup, session("other", log))
    ref = await start_child(sup, session("s", log))
    async with open_inbox() as inbox:
        sup_down = monitor(sup)
        await exit_child(inbox, ref)
        await exit_child(inbox, (await children_of(sup))["s"])
        down = await down_of(inbox, sup_down)
    assert down.reason == shutdown("reached_max_restart_intensity")
    assert not other.alive
    assert "other:shutdown" in log


async def test_terminate_child_ref_stops_without_restart(node: Node) -> None:
    """terminate_child_ref stops a permanent child with shutdown; it is not restarted."""
    log: Log = []
    sup = await start_dynamic_supervisor()
    a = await start_child(sup, session("a", log))
    b = await start_child(sup, session("b", log))
    await terminate_child_ref(sup, a)
    assert not a.alive
    assert log == ["a:shutdown"]
    assert await children_of(sup) == {"b": b}


async def test_terminate_children_stops_many_concurrently(node: Node) -> None:
    """terminate_children stops the given children in one request, skipping strangers."""
    log: Log = []
    sup = await start_dynamic_supervisor()
    a, b, c = [await start_child(sup, session(sid, log, delay=1.0)) for sid in "abc"]
    stranger = await start_dynamic_supervisor()
    start_time = asyncio.get_running_loop().time()
    assert await terminate_children(sup, [a, stranger, c]) == 2
    assert asyncio.get_running_loop().time() - start_time == pytest.approx(1.0)  # concurrent
    assert sorted(log) == ["a:shutdown", "c:shutdown"]
    assert (a.alive, b.alive, c.alive, stranger.alive) == (False, True, False, True)
    assert await children_of(sup) == {"b": b}


async def test_terminate_unknown_ref_raises_and_supervisor_survives(node: Node) -> None:
    """terminate_child_ref of a ref that is not a child raises NoProcessError."""
    sup = await start_dynamic_supervisor()
    stranger = await start_dynamic_supervisor()
    with pytest.raises(NoProcessError, match="not a child of this supervisor"):
        await terminate_child_ref(sup, stranger)
    assert sup.alive
    assert stranger.alive


async def test_terminate_child_ref_respects_the_shutdown_budget(node: Node) -> None:
    """A child slower than its shutdown budget is killed after exactly that many ms."""
    loop = asyncio.get_running_loop()
    log: Log = []
    sup = await start_dynamic_supervisor()
    ref = await start_child(sup, session("slow", log, delay=60.0, shutdown=1500))
    t0 = loop.time()
    await terminate_child_ref(sup, ref)
    assert loop.time() - t0 == 1.5
    assert log == []
    assert not ref.alive


async def test_shutdown_stops_children_concurrently(node: Node) -> None:
    """Three children taking 2 s each in terminate stop in 2 s of virtual time, not 6."""
    loop = asyncio.get_running_loop()
    log: Log = []
    sup = await start_dynamic_supervisor()
    refs = [await start_child(sup, session(s, log, delay=2.0)) for s in "abc"]
    t0 = loop.time()
    assert await stop(sup, SHUTDOWN) == SHUTDOWN
    assert loop.time() - t0 == 2
    assert sorted(log) == ["a:shutdown", "b:shutdown", "c:shutdown"]
    assert not any(ref.alive for ref in refs)


async def test_concurrent_shutdown_kills_each_child_at_its_own_budget(node: Node) -> None:
    """On shutdown each child gets its own budget: the whole stop takes the longest one."""
    loop = asyncio.get_running_loop()
    log: Log = []
    sup = await start_dynamic_supervisor()
    await start_child(sup, session("quick", log, delay=1.0, shutdown=5000))
    await start_child(sup, session("stuck", log, delay=100.0, shutdown=3000))
    t0 = loop.time()
    await stop(sup, SHUTDOWN)
    assert loop.time() - t0 == 3
    assert log == ["quick:shutdown"]


async def test_dynamic_supervisor_inside_a_static_tree(node: Node) -> None:
    """dynamic_supervisor_spec nests a DynamicSupervisor; it stops with its parent."""
    log: Log = []
    spec = dynamic_supervisor_spec(id="sessions", max_children=5)
    assert (spec.type, spec.shutdown) == ("supervisor", "infinity")
    top = await start_supervisor([spec])
    [(cid, dyn, kind)] = await which_children(top)
    assert (cid, kind) == ("sessions", "supervisor")
    assert dyn is not None
    assert dyn.actor_type == DynamicSupervisor.__name__
    child = await start_child(dyn, session("a", log))
    await stop(top, SHUTDOWN)
    assert not dyn.alive
    assert not child.alive
    assert log == ["a:shutdown"]


async def test_malformed_request_is_answered_with_an_error(node: Node) -> None:
    """A request the dynamic supervisor does not understand does not crash it."""
    sup = await start_dynamic_supervisor()
    for bad in (42, (), ("start_child",)):
        status, error = await call(sup, bad)
        assert status == "error"
        assert isinstance(error, ValueError)
    assert sup.alive


class Flaky(Actor):
    """init fails while ``arg["failures"]`` is above zero, counting it down; else says "up"."""

    def init(self, arg: dict[str, Any]) -> None:
        if arg["failures"] > 0:
            arg["failures"] -= 1
            raise ValueError("not yet")
        send(arg["notify"], ("up", self.ref))

    def handle_cast(self, request: Any) -> None:
        raise RuntimeError("crash")


async def test_failed_restart_is_retried_within_intensity(node: Node) -> None:
    """A restart whose start fails is retried, each try counting toward the intensity."""
    sup = await start_dynamic_supervisor()
    async with open_inbox() as inbox:
        budget: dict[str, Any] = {"failures": 0, "notify": inbox.ref}
        ref = await start_child(sup, child_spec(Flaky, budget, id="flaky"))
        assert await inbox.receive() == ("up", ref)
        budget["failures"] = 2
        await exit_child(inbox, ref)
        _, new = await inbox.receive()
    assert await children_of(sup) == {"flaky": new}
    assert new.restart_count == 3
    assert budget["failures"] == 0


async def test_restart_failing_beyond_intensity_stops_the_supervisor(node: Node) -> None:
    """A child that can never be restarted makes the supervisor exceed its intensity."""
    sup = await start_dynamic_supervisor()
    async with open_inbox() as inbox:
        budget: dict[str, Any] = {"failures": 0, "notify": inbox.ref}
        ref = await start_child(sup, child_spec(Flaky, budget, id="flaky"))
        budget["failures"] = 1000
        sup_down = monitor(sup)
        await exit_child(inbox, ref)
        down = await down_of(inbox, sup_down)
    assert down.reason == shutdown("reached_max_restart_intensity")
    assert budget["failures"] == 997


async def test_spec_whose_start_returns_no_ref_is_refused(node: Node) -> None:
    """A spec whose start does not return an ActorRef fails start_child naming 'start'."""

    async def not_a_ref() -> Any:
        return 42

    sup = await start_dynamic_supervisor()
    with pytest.raises(StartChildError, match="invalid start:") as info:
        await start_child(sup, ChildSpec(id="bad", start=not_a_ref))
    assert isinstance(info.value.__cause__, InvalidOptionError)
    assert await children_of(sup) == {}


class _Arg:
    """A start argument a weakref can follow."""


class _Forgets(Actor):
    """Keeps nothing of its start argument."""

    def init(self, arg: _Arg) -> None:
        pass


@pytest.mark.parametrize(("restart", "kept"), [("temporary", False), ("transient", True),
                                               ("permanent", True)])
async def test_only_restartable_children_keep_their_start_argument(
        node: Node, restart: Restart, kept: bool) -> None:
    """A temporary child is never restarted, so nothing of how it started stays in memory."""
    arg = _Arg()
    watch = weakref.ref(arg)
    sup = await start_dynamic_supervisor()
    child = await start_child(sup, child_spec(_Forgets, arg, restart=restart))
    # Another request: the supervisor's loop no longer holds the start_child message.
    assert await children_of(sup) == {"_Forgets": child}
    del arg
    gc.collect()
    assert (watch() is not None) is kept
