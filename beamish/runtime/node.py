"""The Node: where actors live, and the owner of every actor task.

``async with Node(children) as node:`` starts a root supervisor over ``children`` and, on exit
(or SIGTERM/SIGINT with ``handle_signals=True``), shuts the tree down in order — children in
reverse start order, each with its shutdown budget — then kills any actor started outside the
tree and waits for every task. No actor task outlives its node.

Options (defaults in brackets): ``children`` [()] — child specs of the root supervisor
(more may be added with :meth:`Node.add_child` until the node starts);
``strategy`` ["one_for_one"], ``max_restarts`` [3], ``max_seconds`` [5] — the root
supervisor's; ``handle_signals`` [False] — install SIGTERM/SIGINT handlers that stop the node.
The root supervisor is registered as :data:`ROOT` (``"beamish.root"``); a node without
children runs none.

Introspection: :meth:`Node.actors` lists live actors (name, type, status, mailbox depth, restart
count); :meth:`Node.tree` gives the supervision tree's shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import signal
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from beamish.runtime.actor import _wake
from beamish.runtime.deadlines import Deadlines
from beamish.runtime.errors import AlreadyStartedError
from beamish.runtime.exits import KILLED, SHUTDOWN
from beamish.runtime.process import DEAD, RUNNING, ActorRef, _current_node

if TYPE_CHECKING:
    from beamish.runtime.restarts import Strategy
    from beamish.runtime.supervisor import ChildSpec

ROOT: Final = "beamish.root"
"""The node-wide name, and the id in :meth:`Node.tree`, of a node's root supervisor."""


@dataclass(frozen=True)
class ActorInfo:
    """One live actor, as :meth:`Node.actors` reports it."""

    id: int
    name: Any
    type: str
    status: str
    mailbox_depth: int
    restart_count: int
    ref: ActorRef = field(repr=False, compare=False)


@dataclass(frozen=True)
class TreeNode:
    """One actor in the supervision tree; ``children`` is empty for workers."""

    id: Any
    ref: ActorRef | None
    type: str
    status: str
    restart_count: int
    children: tuple[TreeNode, ...] = ()


class Node:
    """A runtime node: the process table, node-wide names, and the root supervision tree."""

    def __init__(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        handle_signals: bool = False,
    ) -> None:
        self._children = list(children)
        self._strategy = strategy
        self._max_restarts = max_restarts
        self._max_seconds = max_seconds
        self._handle_signals = handle_signals
        self._ids = 0
        self._procs: dict[int, ActorRef] = {}
        self._names: dict[str, ActorRef] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._token: Any = None
        self._context = contextvars.Context()
        self._deadlines: Deadlines
        self._done: asyncio.Future[None]
        self._stopping: asyncio.Event | None = None
        # Each handled signal and the handler it had before, restored exactly on exit.
        self._signals: list[tuple[int, Any]] = []
        self.root: ActorRef | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def add_child(self, spec: ChildSpec) -> None:
        """Add a child of the root supervisor, after those given; only before the node starts.

        For children whose arguments need the node itself (a services object holding it).
        """
        if self._stopping is not None:
            raise RuntimeError("add children before entering the Node")
        self._children.append(spec)

    async def __aenter__(self) -> Node:
        from beamish.runtime.supervisor import start_supervisor

        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._token = _current_node.set(self)
        self._context = contextvars.copy_context()
        self._deadlines = Deadlines(self._loop)
        self._done = self._loop.create_future()
        self._done.set_result(None)
        try:
            if self._children:
                self.root = await start_supervisor(
                    self._children,
                    strategy=self._strategy,
                    max_restarts=self._max_restarts,
                    max_seconds=self._max_seconds,
                    name=ROOT,
                )
                self.root._wait_dead().add_done_callback(lambda _: self.request_stop())
            if self._handle_signals:
                self._install_signal_handlers()
        except BaseException:
            await self.shutdown()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    def _install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            self._loop.add_signal_handler(sig, self.request_stop)
            self._signals.append((sig, previous))

    def request_stop(self) -> None:
        """Ask the node to stop: :meth:`wait` returns (SIGTERM does this)."""
        if self._stopping is not None:
            self._stopping.set()

    async def wait(self) -> None:
        """Wait until a stop is requested (signal, :meth:`request_stop`) or the root dies."""
        assert self._stopping is not None, "the node is not running"
        await self._stopping.wait()

    async def shutdown(self) -> None:
        """Stop the tree in order, kill stray actors, and wait for every task."""
        for sig, previous in self._signals:
            # remove_signal_handler resets to the default (SIGINT: KeyboardInterrupt), which
            # would undo a host's SIG_IGN or its own handler; put back what was there. None:
            # a handler not installed from Python, which cannot be put back.
            self._loop.remove_signal_handler(sig)
            if previous is not None:
                signal.signal(sig, previous)
        self._signals.clear()
        if self.root is not None and self.root.alive:
            from beamish.runtime.supervisor import shutdown_child

            await shutdown_child(self.root, "infinity", SHUTDOWN)
        for proc in sorted(self._procs.values(), key=lambda p: -p._id):
            proc._kill(KILLED)
        while self._tasks:
            tasks = list(self._tasks)
            await asyncio.gather(*tasks, return_exceptions=True)  # every outcome retrieved
            # Done now, but their discard callbacks may still wait in the loop's queue: since
            # Python 3.12, gather of tasks that are all done returns without yielding to the
            # loop, so waiting for the callbacks here would spin forever.
            self._tasks.difference_update(tasks)
        self.request_stop()
        self._deadlines.close()
        if self._token is not None:
            _current_node.reset(self._token)
            self._token = None

    # -- the process table ----------------------------------------------------------------

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _adopt(self, proc: ActorRef) -> None:
        self._procs[proc._id] = proc

    def _spawn(self, proc: ActorRef, coro: Coroutine[Any, Any, None]) -> None:
        self._procs[proc._id] = proc
        # Actor tasks start from the node's context, not their starter's or waker's.
        task = self._loop.create_task(coro, context=self._context.copy())
        proc._task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _resume(self, proc: ActorRef) -> None:
        """Wake a hibernated actor in a fresh task."""
        proc._status = RUNNING
        task = self._loop.create_task(_wake(proc), context=self._context.copy())
        proc._task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget(self, proc: ActorRef) -> None:
        self._procs.pop(proc._id, None)

    # -- names ----------------------------------------------------------------------------

    def _register_name(self, name: str, proc: ActorRef) -> None:
        existing = self._names.get(name)
        if existing is not None and existing._status != DEAD:
            raise AlreadyStartedError(name, existing)
        self._names[name] = proc
        if proc._names is None:
            proc._names = []
        proc._names.append(lambda p: self._release_name(name, p))

    def _release_name(self, name: str, proc: ActorRef) -> None:
        if self._names.get(name) is proc:
            del self._names[name]

    def whereis(self, name: str) -> ActorRef | None:
        """The live actor registered under ``name``, or None."""
        proc = self._names.get(name)
        return proc if proc is not None and proc.alive else None

    # -- introspection --------------------------------------------------------------------

    def actors(self) -> list[ActorInfo]:
        """Every live actor, oldest first."""
        return [
            ActorInfo(p._id, p.label, p.actor_type, p.status, p.mailbox_depth, p._restarts, p)
            for p in sorted(self._procs.values(), key=lambda p: p._id)
        ]

    def tree(self) -> TreeNode | None:
        """The shape of the supervision tree under the root supervisor, or None."""
        if self.root is None:
            return None
        from beamish.runtime.supervisor import describe_tree

        return describe_tree(ROOT, self.root)


def run(children: Sequence[ChildSpec], **options: Any) -> None:
    """Run a node with ``children`` until SIGTERM/SIGINT (a blocking entry point for scripts)."""

    async def main() -> None:
        async with Node(children, handle_signals=True, **options) as node:
            await node.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


__all__ = ["ROOT", "ActorInfo", "Node", "TreeNode", "run"]
