"""Supervisor: start and stop order, strategies, restart types, intensity, shutdown, bad input.

Tests synchronise on DOWN messages and on supervisor replies (a supervisor handles a child's
EXIT before a call queued after it); time is virtual and asserted exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

import pytest

from beamish.runtime import (
    KILLED,
    NORMAL,
    SHUTDOWN,
    Actor,
    ActorRef,
    AlreadyStartedError,
    ChildSpec,
    ExitReason,
    InvalidOptionError,
    Node,
    NoProcessError,
    StartChildError,
    call,
    cast,
    child_spec,
    link,
    monitor,
    open_inbox,
    restart_child,
    send,
    start,
    start_supervisor,
    stop,
    supervisor_spec,
    terminate_child,
    which_children,
)
from beamish.runtime.exits import shutdown
from tests.runtime._support import Log, Worker, down_of, exit_child, worker

pytestmark = pytest.mark.anyio

MAX_INTENSITY = shutdown("reached_max_restart_intensity")


class SlowStop(Actor):
    """Traps exits and takes ``delay`` seconds in terminate."""

    def init(self, arg: tuple[float, Log]) -> None:
        self.delay, self.log = arg
        self.trap_exit()

    async def terminate(self, reason: ExitReason) -> None:
        await asyncio.sleep(self.delay)
        self.log.append(("stopped", str(reason)))


class FailingInit(Actor):
    """init raises while ``arg["fail"]`` is true."""

    def init(self, arg: dict[str, bool]) -> None:
        if arg["fail"]:
            raise ValueError("no database")


async def refs_of(sup: ActorRef) -> dict[Hashable, ActorRef | None]:
    """Child id -> ref; also waits for the supervisor to handle earlier EXITs."""
    return {cid: ref for cid, ref, _ in await which_children(sup)}


# -- order ------------------------------------------------------------------------------------


async def test_children_start_in_order_and_stop_in_reverse(node: Node) -> None:
    """Children start in spec order and stop in reverse order when the supervisor stops."""
    log: Log = []
    sup = await start_supervisor([worker("a", log), worker("b", log), worker("c", log)])
    assert log == [("start", "a"), ("start", "b"), ("start", "c")]
    assert list(await refs_of(sup)) == ["a", "b", "c"]
    assert await stop(sup, SHUTDOWN) == SHUTDOWN
    assert log[3:] == [("stop", "c"), ("stop", "b"), ("stop", "a")]


async def test_which_children_reports_id_ref_and_type(node: Node) -> None:
    """which_children lists (id, live ref, type) in start order."""
    log: Log = []
    sup = await start_supervisor([worker("a", log), supervisor_spec([], id="sub")])
    children = await which_children(sup)
    assert [(cid, kind) for cid, _, kind in children] == [("a", "worker"), ("sub", "supervisor")]
    assert all(ref is not None and ref.alive for _, ref, _ in children)
    assert await call(children[0][1], "name?") == "a"  # type: ignore[arg-type]


# -- strategies -------------------------------------------------------------------------------


async def test_one_for_one_restarts_only_the_failed_child(node: Node) -> None:
    """one_for_one: the crashed child gets a new ref, its siblings keep theirs."""
    log: Log = []
    sup = await start_supervisor([worker("a", log), worker("b", log), worker("c", log)])
    before = await refs_of(sup)
    async with open_inbox() as inbox:
        await exit_child(inbox, before["b"])
    after = await refs_of(sup)
    assert after["a"] is before["a"]
    assert after["c"] is before["c"]
    assert after["b"] is not before["b"]
    assert after["b"] is not None
    assert after["b"].alive
    assert log[3:] == [("stop", "b"), ("start", "b")]


async def test_one_for_all_restarts_every_child(node: Node) -> None:
    """one_for_all: siblings stop in reverse order, then all children start again in order."""
    log: Log = []
    children = [worker("a", log), worker("b", log), worker("c", log)]
    sup = await start_supervisor(children, strategy="one_for_all")
    before = await refs_of(sup)
    async with open_inbox() as inbox:
        await exit_child(inbox, before["b"])
    after = await refs_of(sup)
    assert all(after[cid] is not before[cid] for cid in "abc")
    assert all(ref is not None and ref.alive for ref in after.values())
    assert log[3:] == [
        ("stop", "b"),
        ("stop", "c"),
        ("stop", "a"),
        ("start", "a"),
        ("start", "b"),
        ("start", "c"),
    ]


async def test_rest_for_one_restarts_the_failed_and_later_children(node: Node) -> None:
    """rest_for_one: earlier children keep their refs; the failed one and later ones restart."""
    log: Log = []
    children = [worker("a", log), worker("b", log), worker("c", log)]
    sup = await start_supervisor(children, strategy="rest_for_one")
    before = await refs_of(sup)
    async with open_inbox() as inbox:
        await exit_child(inbox, before["b"])
    after = await refs_of(sup)
    assert after["a"] is before["a"]
    assert after["b"] is not before["b"]
    assert after["c"] is not before["c"]
    assert log[3:] == [("stop", "b"), ("stop", "c"), ("start", "b"), ("start", "c")]


async def test_one_for_all_drops_temporary_siblings(node: Node) -> None:
    """one_for_all stops a temporary sibling and does not start it again (its spec goes)."""
    log: Log = []
    children = [worker("a", log), worker("t", log, restart="temporary"), worker("c", log)]
    sup = await start_supervisor(children, strategy="one_for_all")
    before = await refs_of(sup)
    async with open_inbox() as inbox:
        await exit_child(inbox, before["c"])
    after = await refs_of(sup)
    assert list(after) == ["a", "c"]
    assert ("stop", "t") in log
    assert log.count(("start", "t")) == 1


async def test_one_for_one_keeps_stopped_siblings_specs(node: Node) -> None:
    """A restart under one_for_one leaves the specs of not-running siblings in place."""
    log: Log = []
    children = [worker("a", log), worker("t", log, restart="transient"), worker("p", log)]
    sup = await start_supervisor(children)
    before = await refs_of(sup)
    await terminate_child(sup, "p")
    async with open_inbox() as inbox:
        await exit_child(inbox, before["t"], NORMAL)
        await exit_child(inbox, before["a"])
    after = await refs_of(sup)
    assert list(after) == ["a", "t", "p"]
    assert (after["t"], after["p"]) == (None, None)
    assert await restart_child(sup, "p") is not None


# -- restart types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restart", "how", "reason", "restarted"),
    [
        ("permanent", NORMAL, NORMAL, True),
        ("permanent", SHUTDOWN, SHUTDOWN, True),
        ("permanent", "crash", None, True),
        ("transient", NORMAL, NORMAL, False),
        ("transient", SHUTDOWN, SHUTDOWN, False),
        ("transient", "crash", None, True),
        ("temporary", NORMAL, NORMAL, False),
        ("temporary", SHUTDOWN, SHUTDOWN, False),
        ("temporary", "crash", None, False),
    ],
)
async def test_restart_type_decides_on_exit(
    node: Node, restart: str, how: Any, reason: ExitReason | None, restarted: bool
) -> None:
    """permanent restarts on any exit, transient only on a crash, temporary never."""
    log: Log = []
    sup = await start_supervisor([worker("w", log, restart=restart)])
    old = (await refs_of(sup))["w"]
    async with open_inbox() as inbox:
        got = await exit_child(inbox, old, how)
    if reason is None:
        assert got.kind == "crash"
        assert str(got.exception) == "w crashed"
    else:
        assert got == reason
    after = await refs_of(sup)
    if restarted:
        assert after["w"] is not None
        assert after["w"] is not old
        assert after["w"].alive
    elif restart == "temporary":
        assert after == {}  # a temporary child's spec goes with it
    else:
        assert after == {"w": None}
    assert sup.alive


# -- restart intensity ------------------------------------------------------------------------


async def test_exceeding_intensity_stops_children_and_exits_shutdown(node: Node) -> None:
    """The 4th crash within 5 s stops every child in reverse order; the supervisor exits."""
    log: Log = []
    sup = await start_supervisor([worker("a", log), worker("b", log)])
    async with open_inbox() as inbox:
        sup_down = monitor(sup)
        for _ in range(3):
            await exit_child(inbox, (await refs_of(sup))["b"])
        a = (await refs_of(sup))["a"]
        await exit_child(inbox, (await refs_of(sup))["b"])
        down = await down_of(inbox, sup_down)
    assert down.reason == MAX_INTENSITY
    assert a is not None
    assert not a.alive
    assert log[-2:] == [("stop", "b"), ("stop", "a")]


async def test_intensity_is_counted_per_supervisor_options(node: Node) -> None:
    """max_restarts=1 allows one restart; the second within max_seconds stops the supervisor."""
    log: Log = []
    sup = await start_supervisor([worker("a", log)], max_restarts=1, max_seconds=10)
    async with open_inbox() as inbox:
        sup_down = monitor(sup)
        await exit_child(inbox, (await refs_of(sup))["a"])
        assert (await refs_of(sup))["a"] is not None
        await asyncio.sleep(9)
        await exit_child(inbox, (await refs_of(sup))["a"])
        down = await down_of(inbox, sup_down)
    assert down.reason == MAX_INTENSITY


async def test_restarts_spaced_beyond_max_seconds_do_not_exceed(node: Node) -> None:
    """Crashes 6 s apart (virtual) never exceed 3-in-5: the supervisor keeps restarting."""
    loop = asyncio.get_running_loop()
    log: Log = []
    sup = await start_supervisor([worker("a", log)])
    t0 = loop.time()
    async with open_inbox() as inbox:
        for _ in range(8):
            await exit_child(inbox, (await refs_of(sup))["a"])
            await asyncio.sleep(6)
    assert loop.time() - t0 == 48
    a = (await refs_of(sup))["a"]
    assert sup.alive
    assert a is not None
    assert a.restart_count == 8


async def test_max_restarts_zero_gives_up_on_first_crash(node: Node) -> None:
    """With max_restarts=0 the first crash stops the supervisor."""
    log: Log = []
    sup = await start_supervisor([worker("a", log)], max_restarts=0)
    async with open_inbox() as inbox:
        sup_down = monitor(sup)
        await exit_child(inbox, (await refs_of(sup))["a"])
        down = await down_of(inbox, sup_down)
    assert down.reason == MAX_INTENSITY
    assert log == [("start", "a"), ("stop", "a")]


async def test_nested_supervisor_failure_is_restarted_by_its_parent(node: Node) -> None:
    """An inner supervisor that exceeds its intensity exits; the outer one restarts it."""
    log: Log = []
    inner = supervisor_spec([worker("leaf", log)], id="inner", max_restarts=0)
    outer = await start_supervisor([worker("top", log), inner])
    before = await refs_of(outer)
    inner_ref = before["inner"]
    assert inner_ref is not None
    leaf = (await refs_of(inner_ref))["leaf"]
    async with open_inbox() as inbox:
        inner_down = monitor(inner_ref)
        await exit_child(inbox, leaf)
        down = await down_of(inbox, inner_down)
    assert down.reason == MAX_INTENSITY
    after = await refs_of(outer)
    assert after["top"] is before["top"]
    new_inner = after["inner"]
    assert new_inner is not None
    assert new_inner is not inner_ref
    assert new_inner.restart_count == 1
    new_leaf = (await refs_of(new_inner))["leaf"]
    assert new_leaf is not None
    assert new_leaf.alive


async def test_nested_tree_fails_upward(node: Node) -> None:
    """When every level exceeds its intensity the failure climbs to the top supervisor."""
    log: Log = []
    inner = supervisor_spec([worker("leaf", log)], id="inner", max_restarts=0)
    outer = await start_supervisor([worker("top", log), inner], max_restarts=0)
    inner_ref = (await refs_of(outer))["inner"]
    assert inner_ref is not None
    async with open_inbox() as inbox:
        outer_down = monitor(outer)
        await exit_child(inbox, (await refs_of(inner_ref))["leaf"])
        down = await down_of(inbox, outer_down)
    assert down.reason == MAX_INTENSITY
    assert not inner_ref.alive
    assert log[-2:] == [("stop", "leaf"), ("stop", "top")]


# -- per-child shutdown -----------------------------------------------------------------------


async def test_shutdown_timeout_kills_a_slow_child_after_exactly_n_ms(node: Node) -> None:
    """A trapping child slower than its shutdown budget is killed after exactly that many ms."""
    loop = asyncio.get_running_loop()
    log: Log = []
    sup = await start_supervisor([child_spec(SlowStop, (100.0, log), id="s", shutdown=300)])
    ref = (await refs_of(sup))["s"]
    assert ref is not None
    async with open_inbox() as inbox:
        mref = monitor(ref)
        t0 = loop.time()
        await terminate_child(sup, "s")
        assert loop.time() - t0 == pytest.approx(0.3, abs=1e-9)
        down = await down_of(inbox, mref)
    assert down.reason == KILLED
    assert log == []


async def test_shutdown_within_budget_runs_terminate(node: Node) -> None:
    """A child that stops within its budget finishes terminate and exits with shutdown."""
    loop = asyncio.get_running_loop()
    log: Log = []
    sup = await start_supervisor([child_spec(SlowStop, (2.0, log), id="s", shutdown=3000)])
    ref = (await refs_of(sup))["s"]
    assert ref is not None
    async with open_inbox() as inbox:
        mref = monitor(ref)
        t0 = loop.time()
        await terminate_child(sup, "s")
        assert loop.time() - t0 == 2
        down = await down_of(inbox, mref)
    assert down.reason == SHUTDOWN
    assert log == [("stopped", "shutdown")]


async def test_brutal_kill_kills_at_once_without_terminate(node: Node) -> None:
    """shutdown='brutal_kill' kills the child at once; terminate does not run."""
    loop = asyncio.get_running_loop()
    log: Log = []
    sup = await start_supervisor([worker("w", log, shutdown="brutal_kill")])
    ref = (await refs_of(sup))["w"]
    assert ref is not None
    async with open_inbox() as inbox:
        mref = monitor(ref)
        t0 = loop.time()
        await terminate_child(sup, "w")
        assert loop.time() == t0
        down = await down_of(inbox, mref)
    assert down.reason == KILLED
    assert log == [("start", "w")]


async def test_infinity_waits_for_terminate(node: Node) -> None:
    """shutdown='infinity' waits however long terminate takes."""
    loop = asyncio.get_running_loop()
    log: Log = []
    sup = await start_supervisor([child_spec(SlowStop, (1000.0, log), id="s",
                                             shutdown="infinity")])
    t0 = loop.time()
    await terminate_child(sup, "s")
    assert loop.time() - t0 == 1000
    assert log == [("stopped", "shutdown")]


async def test_default_worker_shutdown_is_5000_ms(node: Node) -> None:
    """A worker spec defaults to shutdown=5000: a slow child is killed after exactly 5 s."""
    loop = asyncio.get_running_loop()
    log: Log = []
    spec = child_spec(SlowStop, (100.0, log), id="s")
    assert spec.shutdown == 5000
    sup = await start_supervisor([spec])
    t0 = loop.time()
    await terminate_child(sup, "s")
    assert loop.time() - t0 == 5
    assert log == []


def test_default_supervisor_shutdown_is_infinity() -> None:
    """A supervisor spec (or a ChildSpec of type supervisor) defaults to shutdown='infinity'."""
    assert supervisor_spec([]).shutdown == "infinity"
    assert child_spec(Worker, None, type="supervisor").shutdown == "infinity"
    assert child_spec(Worker, None).restart == "permanent"


async def test_supervisor_stop_uses_each_childs_budget_in_reverse(node: Node) -> None:
    """Stopping a supervisor stops children one by one in reverse order, each within budget."""
    loop = asyncio.get_running_loop()
    log: Log = []
    sup = await start_supervisor([
        child_spec(SlowStop, (1.0, log), id="first", shutdown=5000),
        child_spec(SlowStop, (100.0, log), id="second", shutdown=2000),
    ])
    t0 = loop.time()
    await stop(sup, SHUTDOWN)
    assert loop.time() - t0 == 3
    assert log == [("stopped", "shutdown")]


# -- start failures and bad input -------------------------------------------------------------


async def test_failing_child_start_fails_the_supervisor_start(node: Node) -> None:
    """A child whose init raises fails start with StartChildError naming it; earlier children
    are stopped and later ones never start."""
    log: Log = []
    children = [
        worker("a", log),
        child_spec(FailingInit, {"fail": True}, id="db"),
        worker("c", log),
    ]
    with pytest.raises(StartChildError, match="child 'db' failed to start") as info:
        await start_supervisor(children)
    assert info.value.child_id == "db"
    assert isinstance(info.value.__cause__, ValueError)
    assert str(info.value.__cause__) == "no database"
    assert log == [("start", "a"), ("stop", "a")]
    assert [a.type for a in node.actors()] == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"restart": "sometimes"}, "restart"),
        ({"shutdown": -1}, "shutdown"),
        ({"shutdown": "soon"}, "shutdown"),
        ({"shutdown": 1.5}, "shutdown"),
        ({"shutdown": True}, "shutdown"),
        ({"type": "manager"}, "type"),
        ({"link": True}, "link"),
    ],
)
def test_invalid_child_spec_names_the_field(options: dict[str, Any], field: str) -> None:
    """An invalid child spec field raises InvalidOptionError naming the field."""
    with pytest.raises(InvalidOptionError, match=f"invalid {field}:") as info:
        child_spec(Worker, None, **options)
    assert info.value.field == field


def test_unhashable_child_id_names_the_field() -> None:
    """A child id must be hashable."""
    unhashable: Any = ["a"]
    with pytest.raises(InvalidOptionError, match="invalid id:"):
        child_spec(Worker, None, id=unhashable)


async def test_duplicate_child_id_fails_start_naming_the_field(node: Node) -> None:
    """Two children with one id fail the supervisor's start, naming children[1].id."""
    log: Log = []
    with pytest.raises(InvalidOptionError, match=r"invalid children\[1\]\.id: 'a'"):
        await start_supervisor([worker("a", log), worker("a", log)])
    assert log == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"strategy": "all_for_one"}, "strategy"),
        ({"max_restarts": -1}, "max_restarts"),
        ({"max_seconds": 0}, "max_seconds"),
    ],
)
async def test_invalid_supervisor_options_name_the_field(
    node: Node, options: dict[str, Any], field: str
) -> None:
    """A bad supervisor option fails start with InvalidOptionError naming it."""
    with pytest.raises(InvalidOptionError, match=f"invalid {field}:"):
        await start_supervisor([], **options)


async def test_non_spec_child_fails_start_naming_the_index(node: Node) -> None:
    """A child that is not a ChildSpec fails start naming children[i]."""
    bad: Any = Worker
    with pytest.raises(InvalidOptionError, match=r"invalid children\[0\]:"):
        await start_supervisor([bad])


async def test_terminate_unknown_child_raises_and_supervisor_survives(node: Node) -> None:
    """terminate_child / restart_child of an unknown id raise NoProcessError to the caller."""
    log: Log = []
    sup = await start_supervisor([worker("a", log)])
    with pytest.raises(NoProcessError, match="'ghost'"):
        await terminate_child(sup, "ghost")
    with pytest.raises(NoProcessError, match="'ghost'"):
        await restart_child(sup, "ghost")
    assert sup.alive
    assert list(await refs_of(sup)) == ["a"]


async def test_restart_child_start_failure_raises_and_supervisor_survives(node: Node) -> None:
    """A restart_child whose start fails raises StartChildError; the supervisor lives on."""
    flag = {"fail": False}
    sup = await start_supervisor([child_spec(FailingInit, flag, id="db")])
    await terminate_child(sup, "db")
    flag["fail"] = True
    with pytest.raises(StartChildError, match="child 'db' failed to start"):
        await restart_child(sup, "db")
    assert sup.alive
    assert await refs_of(sup) == {"db": None}
    flag["fail"] = False
    ref = await restart_child(sup, "db")
    assert ref.alive
    assert await refs_of(sup) == {"db": ref}


async def test_terminate_then_restart_child(node: Node) -> None:
    """terminate_child stops a child (its spec stays); restart_child starts it again."""
    log: Log = []
    sup = await start_supervisor([worker("a", log), worker("b", log)])
    old = (await refs_of(sup))["a"]
    await terminate_child(sup, "a")
    assert old is not None
    assert not old.alive
    assert await refs_of(sup) == {"a": None, "b": (await refs_of(sup))["b"]}
    new = await restart_child(sup, "a")
    assert new is not old
    assert new.alive
    assert log == [("start", "a"), ("start", "b"), ("stop", "a"), ("start", "a")]


async def test_terminate_temporary_child_removes_its_spec(node: Node) -> None:
    """terminate_child on a temporary child removes it from the supervisor."""
    log: Log = []
    sup = await start_supervisor([worker("t", log, restart="temporary"), worker("b", log)])
    await terminate_child(sup, "t")
    assert list(await refs_of(sup)) == ["b"]


async def test_restart_count_is_visible_on_the_ref(node: Node) -> None:
    """A restarted child's ref carries how many times its supervisor restarted it."""
    log: Log = []
    sup = await start_supervisor([worker("a", log)])
    first = (await refs_of(sup))["a"]
    assert first is not None
    assert first.restart_count == 0
    async with open_inbox() as inbox:
        await exit_child(inbox, first)
        await exit_child(inbox, (await refs_of(sup))["a"])
    third = (await refs_of(sup))["a"]
    assert third is not None
    assert third.restart_count == 2
    assert [(a.name, a.restart_count) for a in node.actors() if a.type == "Worker"] == [
        (None, 2)
    ]


async def test_failed_restarts_count_toward_intensity(node: Node) -> None:
    """A child that cannot be restarted is retried until the intensity is exceeded."""
    flag = {"fail": False}
    log: Log = []
    sup = await start_supervisor([worker("a", log), child_spec(FailingInit, flag, id="db")])
    db = (await refs_of(sup))["db"]
    assert db is not None
    flag["fail"] = True
    async with open_inbox() as inbox:
        sup_down = monitor(sup)
        await stop(db, SHUTDOWN)
        down = await down_of(inbox, sup_down)
    assert down.reason == MAX_INTENSITY
    assert log == [("start", "a"), ("stop", "a")]


@pytest.mark.parametrize("request_", [42, None, (), ("bogus",), ("terminate_child",)])
async def test_malformed_request_is_answered_with_an_error(node: Node, request_: Any) -> None:
    """A request the supervisor does not understand gets an error back; it does not crash."""
    log: Log = []
    sup = await start_supervisor([worker("a", log)])
    status, error = await call(sup, request_)
    assert status == "error"
    assert isinstance(error, ValueError)
    assert "unknown supervisor request" in str(error)
    assert sup.alive
    assert list(await refs_of(sup)) == ["a"]


async def test_which_children_waits_while_the_supervisor_is_busy_restarting(node: Node) -> None:
    """which_children waits (no 5 s call timeout) while a restart stops a slow sibling."""
    loop = asyncio.get_running_loop()
    log: Log = []
    sup = await start_supervisor(
        [worker("a", log), child_spec(SlowStop, (8.0, log), id="slow", shutdown=10_000)],
        strategy="one_for_all",
    )
    a = (await refs_of(sup))["a"]
    assert a is not None
    async with open_inbox() as inbox:
        await exit_child(inbox, a)
    t0 = loop.time()
    after = await refs_of(sup)
    assert loop.time() - t0 == 8
    assert after["a"] is not a
    assert log[-2:] == [("stopped", "shutdown"), ("start", "a")]


async def test_restart_child_of_a_running_child_is_an_error(node: Node) -> None:
    """restart_child of a child that is running raises AlreadyStartedError (OTP: running)."""
    log: Log = []
    sup = await start_supervisor([worker("a", log)])
    running = (await refs_of(sup))["a"]
    with pytest.raises(AlreadyStartedError, match="'a' is already taken") as info:
        await restart_child(sup, "a")
    assert info.value.existing is running
    assert (await refs_of(sup))["a"] is running
    assert log == [("start", "a")]


class Flaky(Actor):
    """init fails while ``arg["failures"]`` is above zero, counting it down."""

    def init(self, arg: dict[str, int]) -> None:
        if arg["failures"] > 0:
            arg["failures"] -= 1
            raise ValueError("not yet")

    def handle_cast(self, request: Any) -> None:
        raise RuntimeError("crash")


async def test_terminate_child_cancels_a_pending_restart_retry(node: Node) -> None:
    """A child terminated while its failed restart awaits a retry is not restarted."""
    budget = {"failures": 0}
    sup = await start_supervisor([child_spec(Flaky, budget, id="flaky")], max_restarts=100)
    ref = (await refs_of(sup))["flaky"]
    budget["failures"] = 1
    async with open_inbox() as inbox:
        # The DOWN wakes us before the supervisor handles the EXIT, so terminate_child is
        # queued right behind it: it runs between the failed restart and its retry.
        await exit_child(inbox, ref)
        await terminate_child(sup, "flaky")
    assert budget["failures"] == 0
    assert await refs_of(sup) == {"flaky": None}
    assert [a.type for a in node.actors() if a.type == "Flaky"] == []


async def test_named_children_get_their_names_back_on_restart(node: Node) -> None:
    """Restarted children re-register their node-wide names (the old ones are released first)."""
    log: Log = []
    children = [
        child_spec(Worker, ("a", log), id="a", name="svc.a"),
        child_spec(Worker, ("b", log), id="b", name="svc.b"),
    ]
    sup = await start_supervisor(children, strategy="one_for_all")
    before = await refs_of(sup)
    async with open_inbox() as inbox:
        await exit_child(inbox, before["a"])
    after = await refs_of(sup)
    assert node.whereis("svc.a") is after["a"]
    assert node.whereis("svc.b") is after["b"]
    assert after["b"] is not before["b"]
    assert await call("svc.b", "name?") == "b"


async def test_hibernated_child_is_woken_to_shut_down(node: Node) -> None:
    """A hibernated trapping child still runs terminate when its supervisor stops it."""
    log: Log = []
    sup = await start_supervisor([worker("a", log, hibernate_after=1)])
    ref = (await refs_of(sup))["a"]
    assert ref is not None
    await asyncio.sleep(2)
    assert ref.status == "hibernated"
    await terminate_child(sup, "a")
    assert log == [("start", "a"), ("stop", "a")]
    assert ref.exit_reason == SHUTDOWN


async def test_nested_supervisor_with_bad_option_fails_the_parent_start(node: Node) -> None:
    """A nested supervisor spec with a bad option fails the parent's start, naming both."""
    log: Log = []
    bad: Any = "all_for_one"
    children = [worker("a", log), supervisor_spec([], id="inner", strategy=bad)]
    with pytest.raises(StartChildError, match="child 'inner' failed to start") as info:
        await start_supervisor(children)
    assert isinstance(info.value.__cause__, InvalidOptionError)
    assert info.value.__cause__.field == "strategy"
    assert log == [("start", "a"), ("stop", "a")]


class LinksTo(Actor):
    """Links itself to ``arg`` in init, then crashes on any cast."""

    def init(self, arg: ActorRef) -> None:
        link(arg)

    def handle_cast(self, request: Any) -> None:
        raise RuntimeError("stranger crashed")


async def test_exit_from_a_non_child_and_stray_messages_are_ignored(node: Node) -> None:
    """A crash of a linked non-child and plain messages leave the supervisor and children be."""
    log: Log = []
    sup = await start_supervisor([worker("a", log)])
    before = await refs_of(sup)
    stranger = await start(LinksTo, sup)
    send(sup, "junk")
    async with open_inbox() as inbox:
        mref = monitor(stranger)
        await cast(stranger, "go")
        await down_of(inbox, mref)
    assert await refs_of(sup) == before
    assert sup.alive
    assert log == [("start", "a")]


async def test_spec_whose_start_returns_no_ref_fails_start(node: Node) -> None:
    """A ChildSpec whose start does not return an ActorRef fails start, naming 'start'."""

    async def not_a_ref() -> Any:
        return 42

    with pytest.raises(StartChildError, match="child 'bad' failed to start") as info:
        await start_supervisor([ChildSpec(id="bad", start=not_a_ref)])
    assert isinstance(info.value.__cause__, InvalidOptionError)
    assert info.value.__cause__.field == "start"


def test_child_spec_start_must_be_callable() -> None:
    """A ChildSpec whose start is not callable is refused, naming 'start'."""
    bad: Any = 42
    with pytest.raises(InvalidOptionError, match="invalid start: 42"):
        ChildSpec(id="x", start=bad)
