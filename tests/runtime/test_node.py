"""Node: starts the tree, shuts it down in order, signals, introspection, node-wide names."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from beamish.runtime import (
    KILLED,
    ROOT,
    SHUTDOWN,
    Actor,
    ActorRef,
    AlreadyStartedError,
    InvalidOptionError,
    Node,
    NoNodeError,
    StartChildError,
    TreeNode,
    call,
    cast,
    child_spec,
    dynamic_supervisor_spec,
    monitor,
    open_inbox,
    send,
    start,
    start_child,
    start_dynamic_supervisor,
    start_supervisor,
    stop,
    supervisor_spec,
    terminate_child,
    which_children,
)
from beamish.runtime.exits import shutdown
from beamish.runtime.node import run
from beamish.runtime.process import current_node
from tests.runtime._support import Log, Refuses, down_of, worker

pytestmark = pytest.mark.anyio



class Idle(Actor):
    def handle_info(self, message: Any) -> None:
        pass


async def child(sup: ActorRef | None, child_id: str) -> ActorRef:
    assert sup is not None
    refs = {cid: ref for cid, ref, _ in await which_children(sup)}
    ref = refs[child_id]
    assert ref is not None
    return ref


def shape(tree: TreeNode) -> tuple[Any, ...]:
    return (tree.id, tree.type, tree.status, tree.restart_count,
            [shape(sub) for sub in tree.children])


# -- lifecycle --------------------------------------------------------------------------------


async def test_node_starts_the_tree_and_stops_it_in_reverse_order() -> None:
    """async with Node(children) starts them in order and on exit stops them in reverse."""
    log: Log = []
    children = [
        worker("a", log),
        supervisor_spec([worker("b1", log), worker("b2", log)], id="b"),
        worker("c", log),
    ]
    async with Node(children) as node:
        assert log == [("start", "a"), ("start", "b1"), ("start", "b2"), ("start", "c")]
        assert node.root is not None
        assert node.whereis("beamish.root") is node.root
        assert await call(await child(node.root, "a"), "name?") == "a"
    assert log[4:] == [("stop", "c"), ("stop", "b2"), ("stop", "b1"), ("stop", "a")]
    assert not node.root.alive
    assert node.root.exit_reason == SHUTDOWN


async def test_node_exit_leaves_no_task_running() -> None:
    """After the node exits, no actor task (tree or stray) is left on the loop."""
    before = asyncio.all_tasks()
    log: Log = []
    async with Node([worker("a", log)]) as node:
        stray = await start(Idle)
        dyn = await start_child(await start_dynamic_supervisor(), worker("d", log))
        assert len(asyncio.all_tasks() - before) >= 3
    assert asyncio.all_tasks() <= before
    assert node.actors() == []
    assert stray.exit_reason == KILLED
    assert not dyn.alive


async def test_node_shuts_down_when_the_body_raises() -> None:
    """An exception in the node's body still shuts the tree down, then propagates."""
    log: Log = []
    with pytest.raises(KeyError):
        async with Node([worker("a", log)]):
            raise KeyError("oops")
    assert log == [("start", "a"), ("stop", "a")]


async def test_empty_node_has_no_root() -> None:
    """A node without children runs no supervisor; tree() is None."""
    async with Node() as node:
        assert node.root is None
        assert node.tree() is None
        ref = await start(Idle)
        assert [a.ref for a in node.actors()] == [ref]


async def test_children_added_before_start_join_the_root_after_the_given_ones() -> None:
    """add_child before the node starts appends a child of the root supervisor, ROOT."""
    log: Log = []
    node = Node([worker("a", log)])
    node.add_child(worker("b", log))
    async with node:
        assert node.whereis(ROOT) is node.root
        tree = node.tree()
        assert tree is not None
        assert (tree.id, [child.id for child in tree.children]) == (ROOT, ["a", "b"])
    assert log == [("start", "a"), ("start", "b"), ("stop", "b"), ("stop", "a")]


async def test_add_child_once_the_node_runs_is_refused() -> None:
    """A running (or stopped) node takes no more children: its root has started."""
    log: Log = []
    async with Node() as node:
        with pytest.raises(RuntimeError, match="before entering the Node"):
            node.add_child(worker("late", log))
    with pytest.raises(RuntimeError, match="before entering the Node"):
        node.add_child(worker("later", log))
    assert log == []


async def test_failing_child_fails_node_start_and_cleans_up() -> None:
    """A child that fails to start makes entering the node raise StartChildError; nothing runs."""
    before = asyncio.all_tasks()
    log: Log = []
    node = Node([worker("a", log), child_spec(Refuses, id="bad")])
    with pytest.raises(StartChildError, match="child 'bad' failed to start"):
        async with node:
            pytest.fail("the body must not run")
    assert log == [("start", "a"), ("stop", "a")]
    assert asyncio.all_tasks() <= before
    with pytest.raises(NoNodeError):
        await start(Idle)


async def test_invalid_root_option_names_the_field() -> None:
    """A bad root supervisor option fails entering the node, naming the field."""
    bad: Any = "all_for_one"
    with pytest.raises(InvalidOptionError, match="invalid strategy:"):
        async with Node([worker("a", [])], strategy=bad):
            pytest.fail("the body must not run")


# -- wait: signals, root death, request_stop -------------------------------------------------


async def test_sigterm_makes_wait_return() -> None:
    """With handle_signals=True, SIGTERM makes node.wait() return; exit stops the tree."""
    log: Log = []
    term_before = signal.getsignal(signal.SIGTERM)
    int_before = signal.getsignal(signal.SIGINT)
    async with Node([worker("a", log)], handle_signals=True) as node:
        os.kill(os.getpid(), signal.SIGTERM)
        await node.wait()
        assert node.root is not None
        assert node.root.alive
    assert log == [("start", "a"), ("stop", "a")]
    assert signal.getsignal(signal.SIGTERM) == term_before
    assert signal.getsignal(signal.SIGINT) == int_before


async def test_request_stop_makes_wait_return() -> None:
    """node.request_stop() makes wait() return (what the signal handler does)."""
    async with Node() as node:
        asyncio.get_running_loop().call_later(7, node.request_stop)
        t0 = asyncio.get_running_loop().time()
        await node.wait()
        assert asyncio.get_running_loop().time() - t0 == 7


async def test_root_supervisor_death_makes_wait_return() -> None:
    """When the root supervisor gives up (intensity exceeded), wait() returns."""
    log: Log = []
    async with Node([worker("a", log)], max_restarts=0) as node:
        root = node.root
        assert root is not None
        await cast(await child(root, "a"), "crash")
        await node.wait()
        assert not root.alive
        assert root.exit_reason == shutdown("reached_max_restart_intensity")
    assert log == [("start", "a"), ("stop", "a")]


# -- introspection ----------------------------------------------------------------------------


async def test_actors_reports_name_type_status_depth_and_restarts() -> None:
    """actors() lists live actors oldest first with name, type, status, depth, restarts."""
    log: Log = []
    async with Node([worker("a", log)]) as node:
        async with open_inbox() as inbox:
            a = await child(node.root, "a")
            mref = monitor(a)
            await cast(a, "crash")
            await down_of(inbox, mref)
        a = await child(node.root, "a")
        named = await start(Idle, name="idle")
        sleepy = await start(Idle, hibernate_after=1)
        await asyncio.sleep(2)
        for i in range(3):
            send(named, i)
        report = [(i.name, i.type, i.status, i.mailbox_depth, i.restart_count)
                  for i in node.actors()]
        assert report == [
            ("beamish.root", "Supervisor", "running", 0, 0),
            (None, "Worker", "running", 0, 1),
            ("idle", "Idle", "running", 3, 0),
            (None, "Idle", "hibernated", 0, 0),
        ]
        assert [i.ref for i in node.actors()] == [node.root, a, named, sleepy]
        assert [i.id for i in node.actors()] == sorted(i.id for i in node.actors())


async def test_actors_omits_dead_actors() -> None:
    """An actor that exited is no longer listed."""
    async with Node() as node:
        ref = await start(Idle)
        await stop(ref)
        assert node.actors() == []


async def test_tree_shape_of_a_nested_tree() -> None:
    """tree() gives the nested shape: ids, types, statuses, restart counts."""
    log: Log = []
    children = [
        worker("a", log),
        supervisor_spec([worker("b1", log), worker("b2", log)], id="b",
                        strategy="one_for_all"),
        dynamic_supervisor_spec(id="dyn"),
    ]
    async with Node(children) as node:
        dyn = await child(node.root, "dyn")
        await start_child(dyn, worker("d1", log))
        b = await child(node.root, "b")
        async with open_inbox() as inbox:
            b1 = await child(b, "b1")
            mref = monitor(b1)
            await cast(b1, "crash")
            await down_of(inbox, mref)
        await child(b, "b1")  # b has handled the EXIT and restarted both
        assert node.root is not None
        await terminate_child(node.root, "a")
        tree = node.tree()
        assert tree is not None
        assert tree.ref is node.root
        assert shape(tree) == (
            "beamish.root", "Supervisor", "running", 0, [
                ("a", "-", "dead", 0, []),
                ("b", "Supervisor", "running", 0, [
                    ("b1", "Worker", "running", 1, []),
                    ("b2", "Worker", "running", 1, []),
                ]),
                ("dyn", "DynamicSupervisor", "running", 0, [
                    ("d1", "Worker", "running", 0, []),
                ]),
            ],
        )
        assert tree.children[0].ref is None


# -- outside a node, and node-wide names ------------------------------------------------------


async def test_start_outside_a_node_raises_no_node() -> None:
    """start(), start_supervisor() and name lookups outside a node raise NoNodeError."""
    with pytest.raises(NoNodeError, match="async with Node"):
        await start(Idle)
    with pytest.raises(NoNodeError):
        await start_supervisor([])
    with pytest.raises(NoNodeError):
        await call("somebody", "hi")


async def test_node_wide_name_is_unique_and_released_on_exit() -> None:
    """A str name taken by a live actor raises AlreadyStartedError; it is freed on exit."""
    async with Node() as node:
        first = await start(Idle, name="svc")
        with pytest.raises(AlreadyStartedError, match="name 'svc' is already taken") as info:
            await start(Idle, name="svc")
        assert info.value.existing is first
        assert node.whereis("svc") is first
        assert [a.name for a in node.actors()] == ["svc"]
        await stop("svc")
        assert node.whereis("svc") is None
        second = await start(Idle, name="svc")
        assert node.whereis("svc") is second


async def test_names_belong_to_their_node() -> None:
    """A name registered in one node is gone once that node has exited."""
    async with Node() as node:
        await start(Idle, name="svc")
    assert node.whereis("svc") is None
    async with Node() as other:
        assert other.whereis("svc") is None
        await start(Idle, name="svc")


async def test_signal_handlers_only_with_handle_signals() -> None:
    """SIGTERM/SIGINT handlers are installed only with handle_signals=True, removed on exit."""
    term_before = signal.getsignal(signal.SIGTERM)
    async with Node():
        assert signal.getsignal(signal.SIGTERM) == term_before
    async with Node(handle_signals=True):
        assert signal.getsignal(signal.SIGTERM) != term_before
    assert signal.getsignal(signal.SIGTERM) == term_before


async def test_signal_handlers_restore_exactly_what_was_there() -> None:
    """An ignored SIGINT stays ignored and a host's SIGTERM handler comes back after exit."""

    def host_handler(signum: int, frame: object) -> None:
        """The embedding program's own SIGTERM handler."""

    term_before = signal.signal(signal.SIGTERM, host_handler)
    int_before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        async with Node(handle_signals=True):
            assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is host_handler
    finally:
        signal.signal(signal.SIGTERM, term_before)
        signal.signal(signal.SIGINT, int_before)


class StopsTheNode(Actor):
    """Asks its node to stop as soon as it starts, and logs its stop."""

    def init(self, arg: Log) -> None:
        self.log = arg
        self.trap_exit()
        current_node().request_stop()

    def terminate(self, reason: Any) -> None:
        self.log.append(("stop", str(reason)))


def test_run_serves_until_stop_is_requested() -> None:
    """run() starts a node with the children, returns once a stop is requested, stops them."""
    log: Log = []
    run([child_spec(StopsTheNode, log)])
    assert log == [("stop", "shutdown")]
