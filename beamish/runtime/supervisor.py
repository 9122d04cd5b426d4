"""Supervisors: start children in order, restart them by strategy, stop them in reverse.

::

    children = [
        Store.child_spec(url),                                   # started first
        Recorder.child_spec(None, restart="permanent"),
        supervisor_spec([Worker.child_spec(1)], id="workers", strategy="rest_for_one"),
    ]
    sup = await start_supervisor(children, strategy="one_for_one")

**Child spec fields** (defaults in brackets): ``id`` [the actor class's name] — unique within the
supervisor; ``start`` — an async callable that starts the child *linked to the caller* and
returns its ref (``child_spec`` builds it); ``restart`` ["permanent"] — permanent (always
restarted), transient (restarted unless it exits normal/shutdown) or temporary (never
restarted); ``shutdown`` [5000 for workers, "infinity" for supervisors] — milliseconds to wait
after the shutdown signal before the child is killed, "brutal_kill" (killed at once) or
"infinity"; ``type`` ["worker"] — worker or supervisor.

**Supervisor options**: ``strategy`` ["one_for_one"] — restart only the failed child
(one_for_one), all children (one_for_all), or the failed child and those started after it
(rest_for_one); ``max_restarts`` [3] and ``max_seconds`` [5] — the restart intensity; when it is
exceeded the supervisor stops all children and exits with reason ``shutdown``, so its own
supervisor decides what happens next (nested trees fail upward).

A supervisor traps exits; its children learn of its shutdown through the exit signal from their
parent (trapping children run ``terminate``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from beamish.runtime.actor import Actor, call, start
from beamish.runtime.errors import (
    AlreadyStartedError,
    InvalidOptionError,
    NoProcessError,
    StartChildError,
)
from beamish.runtime.exits import KILLED, SHUTDOWN, Exit, ExitReason, shutdown
from beamish.runtime.names import Name
from beamish.runtime.node import TreeNode
from beamish.runtime.process import STOP, ActorRef, Caller, Msg, current_process
from beamish.runtime.restarts import (
    RESTARTS,
    STRATEGIES,
    Restart,
    RestartIntensity,
    Strategy,
    plan_restart,
    should_restart,
    shutdown_order,
)

Shutdown = int | Literal["brutal_kill", "infinity"]
ChildType = Literal["worker", "supervisor"]
StartFn = Callable[[], Awaitable[ActorRef]]


@dataclass(frozen=True)
class ChildSpec:
    """How a supervisor starts, restarts and stops one child (fields in the module docs)."""

    id: Hashable
    start: StartFn
    restart: Restart = "permanent"
    shutdown: Shutdown | None = None
    type: ChildType = "worker"

    def __post_init__(self) -> None:
        try:
            hash(self.id)
        except TypeError:
            raise InvalidOptionError("id", self.id, "a hashable value") from None
        if not callable(self.start):
            raise InvalidOptionError("start", self.start, "an async callable returning ActorRef")
        if self.restart not in RESTARTS:
            raise InvalidOptionError("restart", self.restart, " | ".join(RESTARTS))
        if self.type not in ("worker", "supervisor"):
            raise InvalidOptionError("type", self.type, "'worker' | 'supervisor'")
        if self.shutdown is None:
            object.__setattr__(self, "shutdown", 5000 if self.type == "worker" else "infinity")
        elif self.shutdown not in ("brutal_kill", "infinity") and not (
            isinstance(self.shutdown, int)
            and not isinstance(self.shutdown, bool)
            and self.shutdown >= 0
        ):
            raise InvalidOptionError(
                "shutdown", self.shutdown, "milliseconds >= 0, 'brutal_kill' or 'infinity'"
            )


def child_spec(
    actor_type: type[Actor],
    arg: Any = None,
    *,
    id: Hashable | None = None,
    restart: Restart = "permanent",
    shutdown: Shutdown | None = None,
    type: ChildType = "worker",
    **start_options: Any,
) -> ChildSpec:
    """A spec that starts ``actor_type`` with ``arg`` (and :func:`start` options)."""
    if "link" in start_options:
        raise InvalidOptionError("link", start_options["link"], "nothing: children are linked")
    return ChildSpec(
        id=id if id is not None else actor_type.__name__,
        start=functools.partial(start, actor_type, arg, link=True, **start_options),
        restart=restart,
        shutdown=shutdown,
        type=type,
    )


@dataclass
class _Child:
    spec: ChildSpec
    ref: ActorRef | None = None
    restarts: int = 0
    retrying: bool = False  # a failed restart will be tried again (a _RestartAgain is queued)


@dataclass(frozen=True)
class SupervisorInit:
    """The argument of :class:`Supervisor`'s ``init``."""

    children: Sequence[ChildSpec]
    strategy: Strategy = "one_for_one"
    max_restarts: int = 3
    max_seconds: float = 5.0


@dataclass(frozen=True)
class _RestartAgain:
    child_id: Hashable


class Supervisor(Actor):
    """A static supervisor. Start it with :func:`start_supervisor` or :func:`supervisor_spec`."""

    async def init(self, arg: SupervisorInit) -> None:
        if arg.strategy not in STRATEGIES:
            raise InvalidOptionError("strategy", arg.strategy, " | ".join(STRATEGIES))
        self.strategy: Strategy = arg.strategy
        self.intensity = RestartIntensity(arg.max_restarts, arg.max_seconds)
        self.children: list[_Child] = []
        seen: set[Hashable] = set()
        for index, spec in enumerate(arg.children):
            if not isinstance(spec, ChildSpec):
                raise InvalidOptionError(f"children[{index}]", spec, "a ChildSpec")
            if spec.id in seen:
                raise InvalidOptionError(f"children[{index}].id", spec.id, "a unique child id")
            seen.add(spec.id)
            self.children.append(_Child(spec))
        self.trap_exit()
        for child in self.children:
            try:
                await self._start(child)
            except Exception as exc:
                await self._stop_all()
                raise StartChildError(child.spec.id, exc) from exc

    async def _start(self, child: _Child) -> None:
        ref = await child.spec.start()
        if not isinstance(ref, ActorRef):
            raise InvalidOptionError("start", child.spec.start, "a callable returning ActorRef")
        ref._restarts = child.restarts
        child.ref = ref

    def _find(self, ref: ActorRef) -> _Child | None:
        for child in self.children:
            if child.ref is ref:
                return child
        return None

    def _by_id(self, child_id: Hashable) -> _Child | None:
        for child in self.children:
            if child.spec.id == child_id:
                return child
        return None

    async def handle_info(self, message: Any) -> None:
        if isinstance(message, Exit):
            child = self._find(message.actor)
            if child is not None:
                await self._child_exited(child, message.reason)
        elif isinstance(message, _RestartAgain):
            child = self._by_id(message.child_id)
            # Not if terminate_child or restart_child dealt with the child in the meantime.
            if child is not None and child.retrying and child.ref is None:
                child.retrying = False
                await self._restart_group(child)

    async def _child_exited(self, child: _Child, reason: ExitReason) -> None:
        child.ref = None
        if not should_restart(child.spec.restart, reason):
            if child.spec.restart == "temporary":
                self.children.remove(child)
            return
        await self._restart_group(child)

    async def _restart_group(self, failed: _Child) -> None:
        if not self.intensity.add(self._ref._loop.time()):
            self.stop(shutdown("reached_max_restart_intensity"))
            return
        kinds = [(c.spec.id, c.spec.restart) for c in self.children]
        to_stop, to_start = plan_restart(self.strategy, kinds, failed.spec.id)
        for cid in to_stop:
            sibling = self._by_id(cid)
            if sibling is not None and sibling.ref is not None:
                await shutdown_child(sibling.ref, sibling.spec.shutdown or 0)
                sibling.ref = None
        # Temporary siblings stopped by the strategy are not restarted: forget them, as OTP.
        # Only the stopped ones: siblings outside the plan keep their specs, running or not.
        dropped = set(to_stop) - set(to_start)
        self.children = [c for c in self.children if c.spec.id not in dropped]
        for cid in to_start:
            child = self._by_id(cid)
            if child is None or child.ref is not None:
                continue
            child.restarts += 1
            try:
                await self._start(child)
            except Exception:
                # As OTP: a failed restart counts as another restart, tried again shortly.
                child.retrying = True
                self._ref._deliver_info(_RestartAgain(cid))
                return

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        # Bad requests are answered with an error: they must not crash the whole subtree.
        op, args = _split_request(request)
        if op == "which_children":
            return [(c.spec.id, c.ref, c.spec.type) for c in self.children]
        if op == "count_children":
            alive = sum(1 for c in self.children if c.ref is not None)
            return {"specs": len(self.children), "active": alive}
        if op == "terminate_child" and len(args) == 1:
            return await _outcome(self._terminate_child(args[0]))
        if op == "restart_child" and len(args) == 1:
            return await _outcome(self._restart_child(args[0]))
        return ("error", ValueError(f"unknown supervisor request {request!r}"))

    async def _terminate_child(self, child_id: Hashable) -> bool:
        child = self._by_id(child_id)
        if child is None:
            raise NoProcessError(child_id, "no child with that id")
        child.retrying = False
        if child.ref is not None:
            await shutdown_child(child.ref, child.spec.shutdown or 0)
            child.ref = None
        if child.spec.restart == "temporary":
            self.children.remove(child)
        return True

    async def _restart_child(self, child_id: Hashable) -> ActorRef:
        child = self._by_id(child_id)
        if child is None:
            raise NoProcessError(child_id, "no child with that id")
        if child.ref is not None:
            raise AlreadyStartedError(child_id, child.ref)  # OTP: {error, running}
        try:
            await self._start(child)
        except Exception as exc:
            raise StartChildError(child_id, exc) from exc
        child.retrying = False
        assert child.ref is not None
        return child.ref

    async def terminate(self, reason: ExitReason) -> None:
        await self._stop_all()

    def _tree_children(self) -> list[tuple[Hashable, ActorRef | None, int]]:
        return [(c.spec.id, c.ref, c.restarts) for c in self.children]

    async def _stop_all(self) -> None:
        for child in shutdown_order(self.children):
            assert isinstance(child, _Child)
            if child.ref is not None:
                await shutdown_child(child.ref, child.spec.shutdown or 0)
                child.ref = None


def _split_request(request: Any) -> tuple[Any, tuple[Any, ...]]:
    """(operation, arguments) of a supervisor request; (None, ()) if it is not a tuple."""
    if isinstance(request, tuple) and request:
        return request[0], request[1:]
    return None, ()


async def _outcome(work: Awaitable[Any]) -> tuple[str, Any]:
    """Run a client request; errors go back to the caller instead of crashing the supervisor."""
    try:
        return ("ok", await work)
    except Exception as exc:
        return ("error", exc)


async def request(sup: ActorRef | Name, message: tuple[Any, ...]) -> Any:
    """Call a supervisor and re-raise the error it sent back, if any."""
    status, value = await call(sup, message, timeout=None)
    if status == "error":
        raise value
    return value


async def shutdown_child(ref: ActorRef, how: Shutdown, reason: ExitReason = SHUTDOWN) -> None:
    """Stop ``ref`` as a supervisor does: signal, wait up to ``how`` ms, then kill.

    The caller (its parent) unlinks first, so it gets no EXIT message for this child.
    """
    dead = signal_shutdown(ref, how, reason)
    if dead is not None:
        await await_shutdown(ref, how, dead)


def signal_shutdown(ref: ActorRef, how: Shutdown,
                    reason: ExitReason = SHUTDOWN) -> asyncio.Future[ExitReason] | None:
    """The first half of :func:`shutdown_child`: unlink and signal.

    Returns the future of the child's death, or None when the child is dead already (a
    hibernated child that does not trap exits dies on the spot), so stopping many children
    costs no task or timer for those.
    """
    if not ref.alive:
        return None
    me = current_process.get()
    if me is not None:
        me._unlink(ref)
    if how == "brutal_kill":
        ref._kill(KILLED)
    elif me is not None and ref._parent is me:
        ref._signal(me, reason)
    else:
        ref._enqueue(Msg(STOP, reason, None))  # no parent to signal from: an orderly stop
    return ref._wait_dead() if ref.alive else None


async def await_shutdown(ref: ActorRef, how: Shutdown,
                         dead: asyncio.Future[ExitReason]) -> None:
    """The second half of :func:`shutdown_child`: wait up to ``how`` ms, then kill."""
    if how in ("brutal_kill", "infinity"):
        await dead
        return
    assert isinstance(how, int)
    done, _ = await asyncio.wait([dead], timeout=how / 1000)
    if not done:
        ref._kill(KILLED)
        await ref._wait_dead()


async def start_supervisor(
    children: Sequence[ChildSpec],
    *,
    strategy: Strategy = "one_for_one",
    max_restarts: int = 3,
    max_seconds: float = 5.0,
    name: Name | None = None,
    link: bool = False,
) -> ActorRef:
    """Start a :class:`Supervisor` over ``children`` (started in order)."""
    init = SupervisorInit(list(children), strategy, max_restarts, max_seconds)
    return await start(Supervisor, init, name=name, link=link)


def supervisor_spec(
    children: Sequence[ChildSpec],
    *,
    id: Hashable = "supervisor",
    strategy: Strategy = "one_for_one",
    max_restarts: int = 3,
    max_seconds: float = 5.0,
    restart: Restart = "permanent",
    shutdown: Shutdown = "infinity",
    name: Name | None = None,
) -> ChildSpec:
    """A child spec for a nested :class:`Supervisor`."""
    init = SupervisorInit(list(children), strategy, max_restarts, max_seconds)
    return ChildSpec(
        id=id,
        start=functools.partial(start, Supervisor, init, link=True, name=name),
        restart=restart,
        shutdown=shutdown,
        type="supervisor",
    )


async def which_children(sup: ActorRef | Name) -> list[tuple[Hashable, ActorRef | None, str]]:
    """(id, ref or None, type) of each child, in start order."""
    # No call timeout, as OTP: a supervisor may be busy stopping children for a long while.
    result: list[tuple[Hashable, ActorRef | None, str]] = await call(
        sup, ("which_children",), timeout=None
    )
    return result


async def terminate_child(sup: ActorRef | Name, child_id: Hashable) -> None:
    """Stop a child by id (its spec stays unless temporary)."""
    await request(sup, ("terminate_child", child_id))


async def restart_child(sup: ActorRef | Name, child_id: Hashable) -> ActorRef:
    """Start again a child that was stopped with :func:`terminate_child`.

    Raises:
        NoProcessError: no child has that id.
        AlreadyStartedError: the child is running.
        StartChildError: its start failed (``__cause__`` is why).
    """
    ref: ActorRef = await request(sup, ("restart_child", child_id))
    return ref


def describe_tree(child_id: Any, ref: ActorRef) -> TreeNode:
    """The tree under ``ref``, read directly from supervisor state (no messages)."""
    actor = ref._actor
    kids: tuple[TreeNode, ...] = ()
    tree_children = getattr(actor, "_tree_children", None)
    if callable(tree_children) and ref.alive:
        kids = tuple(
            describe_tree(cid, cref) if cref is not None
            else TreeNode(cid, None, "-", "dead", restarts)
            for cid, cref, restarts in tree_children()
        )
    return TreeNode(child_id, ref, ref.actor_type, ref.status, ref._restarts, kids)

