"""DynamicSupervisor: children started on demand, one_for_one, with a ceiling.

::

    sup = await start_dynamic_supervisor(max_children=10_000)
    ref = await start_child(sup, Session.child_spec(session_id, restart="transient"))
    await terminate_child_ref(sup, ref)

Options (defaults in brackets): ``max_children`` [None: no limit] — :func:`start_child` raises
:class:`~beamish.runtime.errors.TooManyChildrenError` beyond it; ``max_restarts`` [3] and
``max_seconds`` [5] — the restart intensity, as for :class:`Supervisor`. On shutdown all
children are stopped *concurrently*, each within its own shutdown budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from beamish.runtime.actor import Actor, start
from beamish.runtime.errors import (
    InvalidOptionError,
    NoProcessError,
    StartChildError,
    TooManyChildrenError,
)
from beamish.runtime.exits import Exit, ExitReason, shutdown
from beamish.runtime.names import Name
from beamish.runtime.process import ActorRef, Caller
from beamish.runtime.restarts import Restart, RestartIntensity, should_restart
from beamish.runtime.supervisor import (
    ChildSpec,
    Shutdown,
    StartFn,
    _outcome,
    _split_request,
    await_shutdown,
    request,
    shutdown_child,
    signal_shutdown,
)


@dataclass(frozen=True)
class DynamicInit:
    """The argument of :class:`DynamicSupervisor`'s ``init``."""

    max_children: int | None = None
    max_restarts: int = 3
    max_seconds: float = 5.0


class _Dyn:
    """One child: what stopping and restarting it needs, and no more.

    A ``temporary`` child is never restarted, so its start function — with the argument it
    closes over — is not kept: a supervisor of thousands of connections or sessions would
    otherwise hold each one's spec for nothing (about 500 bytes a child).
    """

    __slots__ = ("id", "restart", "restarts", "shutdown", "start")

    def __init__(self, spec: ChildSpec) -> None:
        self.id = spec.id
        self.restart: Restart = spec.restart
        self.shutdown: Shutdown = spec.shutdown if spec.shutdown is not None else 5000
        self.start: StartFn | None = None if spec.restart == "temporary" else spec.start
        self.restarts = 0


@dataclass(frozen=True)
class _RestartAgain:
    child: _Dyn


class DynamicSupervisor(Actor):
    """Supervises children started at run time. Start it with :func:`start_dynamic_supervisor`."""

    async def init(self, arg: DynamicInit) -> None:
        limit = arg.max_children
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or limit < 0):
            raise InvalidOptionError("max_children", limit, "None or an int >= 0")
        self.max_children = limit
        self.intensity = RestartIntensity(arg.max_restarts, arg.max_seconds)
        self.children: dict[ActorRef, _Dyn] = {}
        self.trap_exit()

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        op, args = _split_request(request)
        if op == "start_child" and len(args) == 1:
            return await _outcome(self._start_child(args[0]))
        if op == "terminate_child" and len(args) == 1:
            return await _outcome(self._terminate_child(args[0]))
        if op == "terminate_children" and len(args) == 1:
            return await _outcome(self._terminate_children(args[0]))
        if op == "which_children":
            return ("ok", [(ref, d.id) for ref, d in self.children.items()])
        if op == "count_children":
            return ("ok", len(self.children))
        return ("error", ValueError(f"unknown dynamic supervisor request {request!r}"))

    async def _start_child(self, spec: ChildSpec) -> ActorRef:
        if not isinstance(spec, ChildSpec):
            raise InvalidOptionError("spec", spec, "a ChildSpec")
        if self.max_children is not None and len(self.children) >= self.max_children:
            raise TooManyChildrenError(self._ref, self.max_children)
        try:
            ref = await spec.start()
            if not isinstance(ref, ActorRef):
                raise InvalidOptionError("start", spec.start, "a callable returning ActorRef")
        except Exception as exc:
            raise StartChildError(spec.id, exc) from exc
        self.children[ref] = _Dyn(spec)
        return ref

    async def _terminate_child(self, ref: ActorRef) -> None:
        child = self.children.pop(ref, None)
        if child is None:
            raise NoProcessError(ref, "not a child of this supervisor")
        await shutdown_child(ref, child.shutdown)

    async def _terminate_children(self, refs: list[ActorRef]) -> int:
        stopped = 0
        waits = []
        for ref in refs:
            child = self.children.pop(ref, None)
            if child is None:
                continue
            stopped += 1
            how = child.shutdown
            dead = signal_shutdown(ref, how)
            if dead is not None:  # still dying (it traps exits, or had a task to cancel)
                waits.append(await_shutdown(ref, how, dead))
        await asyncio.gather(*waits)
        return stopped

    async def handle_info(self, message: Any) -> None:
        if isinstance(message, _RestartAgain):
            await self._restart(message.child)
            return
        if not isinstance(message, Exit):
            return
        child = self.children.pop(message.actor, None)
        if child is None or not should_restart(child.restart, message.reason):
            return
        await self._restart(child)

    async def _restart(self, child: _Dyn) -> None:
        if not self.intensity.add(self._ref._loop.time()):
            self.stop(shutdown("reached_max_restart_intensity"))
            return
        child.restarts += 1
        try:
            assert child.start is not None, "only temporary children drop their start"
            ref = await child.start()
        except Exception:
            # As OTP and Supervisor: a failed restart counts as another restart, tried again.
            self._ref._deliver_info(_RestartAgain(child))
            return
        ref._restarts = child.restarts
        self.children[ref] = child

    async def terminate(self, reason: ExitReason) -> None:
        children, self.children = self.children, {}
        await asyncio.gather(
            *(shutdown_child(ref, d.shutdown) for ref, d in children.items())
        )

    def _tree_children(self) -> list[tuple[Hashable, ActorRef | None, int]]:
        return [(d.id, ref, d.restarts) for ref, d in self.children.items()]


async def start_dynamic_supervisor(
    *,
    max_children: int | None = None,
    max_restarts: int = 3,
    max_seconds: float = 5.0,
    name: Name | None = None,
    link: bool = False,
) -> ActorRef:
    """Start a :class:`DynamicSupervisor` with no children."""
    init = DynamicInit(max_children, max_restarts, max_seconds)
    return await start(DynamicSupervisor, init, name=name, link=link)


def dynamic_supervisor_spec(
    *,
    id: Hashable = "dynamic_supervisor",
    max_children: int | None = None,
    max_restarts: int = 3,
    max_seconds: float = 5.0,
    restart: Restart = "permanent",
    name: Name | None = None,
) -> ChildSpec:
    """A child spec for a :class:`DynamicSupervisor` inside a static tree."""
    init = DynamicInit(max_children, max_restarts, max_seconds)

    async def start_it() -> ActorRef:
        return await start(DynamicSupervisor, init, name=name, link=True)

    return ChildSpec(id=id, start=start_it, restart=restart, shutdown="infinity",
                     type="supervisor")


async def start_child(sup: ActorRef | Name, spec: ChildSpec) -> ActorRef:
    """Start a child under ``sup``.

    Raises:
        TooManyChildrenError: ``sup`` is at ``max_children``.
        StartChildError: the child's start failed (``__cause__`` is why).
    """
    ref: ActorRef = await request(sup, ("start_child", spec))
    return ref


async def terminate_child_ref(sup: ActorRef | Name, ref: ActorRef) -> None:
    """Stop child ``ref`` of ``sup`` (within its shutdown budget); it is not restarted."""
    await request(sup, ("terminate_child", ref))


async def terminate_children(sup: ActorRef | Name, refs: Iterable[ActorRef]) -> int:
    """Stop the given children of ``sup`` concurrently, in one request; none is restarted.

    Refs that are not (or no longer) children of ``sup`` are skipped. Returns how many were
    stopped. Cheaper than :func:`terminate_child_ref` per child when stopping many at once.
    """
    stopped: int = await request(sup, ("terminate_children", list(refs)))
    return stopped


async def dynamic_children(sup: ActorRef | Name) -> list[tuple[ActorRef, Hashable]]:
    """(ref, spec id) of every child."""
    result: list[tuple[ActorRef, Hashable]] = await request(sup, ("which_children",))
    return result
