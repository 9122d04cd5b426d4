"""The process: an actor's identity, mailbox, links, monitors and death.

An :class:`ActorRef` *is* the process (as a pid is in Erlang): it holds the mailbox, the
links and monitors, the timers aimed at it, and — while the actor runs — the asyncio task
executing its callbacks. A hibernated actor has no task and no mailbox object at all; the next
message delivered to it creates both again (see :mod:`beamish.runtime.actor`).

Message delivery is synchronous and cheap: append to a :class:`collections.deque`, and wake the
actor's task if it is waiting, through a single future. Exit signals, DOWN messages and timer
messages are *system* deliveries: they bypass the mailbox bound, so they are never lost.

Death (:meth:`ActorRef._finalize`) happens exactly once and, in this order: pending callers
fail with :class:`~beamish.runtime.errors.ActorExitedError`, timers are cancelled, names are
released, monitors deliver DOWN, links deliver exit signals.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

from beamish.runtime.errors import ActorExitedError, NoNodeError
from beamish.runtime.exits import KILLED, NOPROC, Down, ExitReason

if TYPE_CHECKING:
    from beamish.runtime.actor import Actor
    from beamish.runtime.node import Node

log = logging.getLogger("beamish.runtime")

# Statuses, ordered: anything >= EXITING no longer accepts calls.
STARTING: Final = 0
RUNNING: Final = 1
HIBERNATED: Final = 2
EXITING: Final = 3
DEAD: Final = 4
STATUS_NAMES: Final = ("starting", "running", "hibernated", "exiting", "dead")

# Mailbox item tags. A cast is stored as its bare payload (the hot path allocates nothing);
# every other item is a Msg(tag, payload, extra).
CALL: Final = 0
CAST: Final = 1
INFO: Final = 2
SIGNAL: Final = 3  # a trapped exit signal: payload = sender, extra = reason
STOP: Final = 4  # an orderly stop request: payload = reason



class Msg:
    """A mailbox item other than a cast."""

    __slots__ = ("extra", "payload", "tag")

    def __init__(self, tag: int, payload: Any, extra: Any) -> None:
        self.tag = tag
        self.payload = payload
        self.extra = extra


Item = Any  # a Msg, or a cast's bare payload

#: The process whose callbacks the current task runs (or an open Inbox).
current_process: ContextVar[ActorRef | None] = ContextVar("beamish_current", default=None)
_current_node: ContextVar[Node | None] = ContextVar("beamish_node", default=None)


def current_node() -> Node:
    """The Node running in this context; raise :class:`NoNodeError` if there is none."""
    node = _current_node.get()
    if node is None:
        raise NoNodeError
    return node


class Caller:
    """Who is waiting on a ``call``; reply through :meth:`reply` (possibly later, elsewhere).

    A reply after the caller timed out, or a second reply, is discarded: each call has its own
    caller, so a late reply can never reach a later call.
    """

    __slots__ = ("_callee", "_fut")

    def __init__(self, fut: asyncio.Future[Any], callee: ActorRef) -> None:
        self._fut = fut
        self._callee = callee

    def reply(self, value: Any) -> None:
        """Send ``value`` to the waiting caller (no-op if it already gave up)."""
        fut = self._fut
        if not fut.done():
            fut.set_result(value)
        deferred = self._callee._deferred
        if deferred:
            deferred.discard(self)

    def _fail(self, exc: BaseException) -> None:
        if not self._fut.done():
            self._fut.set_exception(exc)

    @property
    def waiting(self) -> bool:
        """True while the caller still waits for a reply."""
        return not self._fut.done()


class MonitorRef:
    """The handle of one monitor; it appears in the matching :class:`Down`."""

    __slots__ = ("id", "target", "watcher")
    _ids = itertools.count(1)

    def __init__(self, watcher: ActorRef, target: ActorRef) -> None:
        self.id = next(MonitorRef._ids)
        self.watcher = watcher
        self.target = target

    def __repr__(self) -> str:
        return f"<MonitorRef #{self.id} {self.watcher!r} -> {self.target!r}>"


class ExitCallback:
    """An ``on_exit`` registration: :meth:`cancel` it to stop waiting for the exit."""

    __slots__ = ("_fn", "target")

    def __init__(self, target: ActorRef, fn: Callable[[ActorRef, ExitReason], object]) -> None:
        self.target = target
        self._fn: Callable[[ActorRef, ExitReason], object] | None = fn

    def cancel(self) -> bool:
        """Forget the callback; True if it had not run (and now never will)."""
        if self._fn is None:
            return False
        self._fn = None
        callbacks = self.target._exit_callbacks
        if callbacks:
            callbacks.remove(self)
        return True

    def _run(self, reason: ExitReason) -> None:
        fn, self._fn = self._fn, None
        if fn is None:
            return
        try:
            fn(self.target, reason)
        except Exception:
            # The dying actor's other watchers still get their DOWN and exit signals.
            log.exception("an on_exit callback of %r failed", self.target)

    def __repr__(self) -> str:
        return f"<ExitCallback {self.target!r} {'pending' if self._fn else 'done'}>"


class ActorRef:
    """A handle on an actor, valid forever; it is alive until its exit.

    Compare refs with ``==`` / use them as dict keys. ``alive`` tells whether it still runs.
    Send to it with :func:`~beamish.runtime.call`, :func:`~beamish.runtime.cast` and
    :func:`~beamish.runtime.send`.
    """

    __slots__ = (
        "__weakref__",
        "_actor",
        "_attention",
        "_capacity",
        "_current",
        "_death",
        "_deferred",
        "_done",
        "_exit_callbacks",
        "_exit_reason",
        "_hibernate_after",
        "_id",
        "_idle_since",
        "_idle_timer",
        "_limit",
        "_links",
        "_loop",
        "_mailbox",
        "_monitored_by",
        "_monitoring",
        "_names",
        "_node",
        "_overflow_block",
        "_parent",
        "_restarts",
        "_space",
        "_status",
        "_task",
        "_timers",
        "_trap_exit",
        "_waiter",
        "label",
    )

    def __init__(
        self,
        node: Node,
        actor: Actor | None,
        *,
        capacity: int,
        overflow_block: bool,
        hibernate_after: float | None,
    ) -> None:
        self._id = node._next_id()
        self._node = node
        self._loop = node._loop
        self._done = node._done  # what cast returns when the message got in at once
        self._actor = actor
        self._status = STARTING
        self._mailbox: deque[Item] | None = deque()
        self._waiter: asyncio.Future[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._capacity = capacity
        # The cast fast path's bound: the capacity, or 0 while senders wait or after exit.
        self._limit = capacity
        self._overflow_block = overflow_block
        # Senders waiting for room (overflow="block"): (delivered future, item), in order.
        self._space: deque[tuple[asyncio.Future[None], Item]] | None = None
        # Set when the loop must look up from its messages: room to release, an action
        # requested by a callback, or a kill.
        self._attention = False
        self._hibernate_after = hibernate_after
        self._idle_since = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._links: set[ActorRef] | None = None
        self._monitored_by: dict[MonitorRef, ActorRef] | None = None
        self._monitoring: dict[MonitorRef, ActorRef] | None = None
        self._timers: set[Any] | None = None
        self._names: list[Callable[[ActorRef], None]] | None = None
        self._deferred: set[Caller] | None = None
        self._current: Caller | None = None
        self._death: list[asyncio.Future[ExitReason]] | None = None
        self._exit_callbacks: list[ExitCallback] | None = None
        self._exit_reason: ExitReason | None = None
        self._trap_exit = False
        self._parent: ActorRef | None = None
        self._restarts = 0
        self.label: Any = None

    # -- identity -------------------------------------------------------------------------

    def __repr__(self) -> str:
        kind = type(self._actor).__name__ if self._actor is not None else "Inbox"
        name = f" {self.label!r}" if self.label is not None else ""
        return f"<ActorRef #{self._id} {kind}{name}>"

    def __hash__(self) -> int:
        return self._id

    def __eq__(self, other: object) -> bool:
        return self is other

    @property
    def id(self) -> int:
        """The actor's number, unique within its node."""
        return self._id

    @property
    def alive(self) -> bool:
        """True until the actor has begun to exit."""
        return self._status < EXITING

    @property
    def status(self) -> str:
        """One of starting, running, hibernated, exiting, dead."""
        return STATUS_NAMES[self._status]

    @property
    def exit_reason(self) -> ExitReason | None:
        """Why the actor exited, once it has."""
        return self._exit_reason if self._status == DEAD else None

    @property
    def mailbox_depth(self) -> int:
        """Messages waiting in the mailbox."""
        mb = self._mailbox
        return len(mb) if mb is not None else 0

    @property
    def has_room(self) -> bool:
        """Whether a cast would get into the mailbox now, without waiting (as ``try_cast``
        checks); a cast to a hibernated or dead actor always does."""
        mb = self._mailbox
        return mb is None or len(mb) < self._limit or self._status >= EXITING or not self._full()

    @property
    def restart_count(self) -> int:
        """How many times its supervisor has restarted this child (0 if never)."""
        return self._restarts

    @property
    def actor_type(self) -> str:
        """The class name of the actor."""
        return type(self._actor).__name__ if self._actor is not None else "Inbox"

    # -- delivery -------------------------------------------------------------------------

    def _enqueue(self, item: Item) -> None:
        """Deliver without regard to the bound (system messages, or after a capacity check)."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            self._mailbox.append(item)  # type: ignore[union-attr]
            if not waiter.done():
                waiter.set_result(None)
            return
        mb = self._mailbox
        if mb is not None:
            mb.append(item)
        elif self._status == HIBERNATED:
            self._mailbox = deque((item,))
            self._node._resume(self)

    def _full(self) -> bool:
        mb = self._mailbox
        return mb is not None and (len(mb) >= self._capacity or bool(self._space))

    def _put_later(self, item: Item) -> asyncio.Future[None]:
        """Backpressure: queue ``item`` for when the mailbox has room; the future says when."""
        fut: asyncio.Future[None] = self._loop.create_future()
        if self._space is None:
            self._space = deque()
        self._space.append((fut, item))
        self._attention = True
        self._limit = 0
        return fut

    def _release_space(self) -> None:
        """Move waiting senders' items into the mailbox while there is room."""
        space, mb = self._space, self._mailbox
        while space and mb is not None and len(mb) < self._capacity:
            fut, item = space.popleft()
            if fut.done() or (item.__class__ is Msg and item.tag == CALL
                              and not item.extra.waiting):
                continue  # the sender gave up (cancelled, or its call timed out)
            mb.append(item)
            fut.set_result(None)
        if not space:
            self._space = None
            if self._status < EXITING:
                self._limit = self._capacity

    def _deliver_info(self, message: Any) -> None:
        if self._status < EXITING:
            self._enqueue(Msg(INFO, message, None))

    # -- exit signals ---------------------------------------------------------------------

    def _signal(self, sender: ActorRef, reason: ExitReason) -> None:
        """An exit signal from ``sender`` (a link, or ``exit(self, reason)``)."""
        if self._status >= EXITING:
            task = self._task
            if reason.kind == "kill" and task is not None and not task.cancelling():
                self._kill(KILLED)  # KILL cuts a running terminate short, as in OTP
            return
        if reason.kind == "kill":
            self._kill(KILLED)
        elif self._trap_exit:
            self._enqueue(Msg(SIGNAL, sender, reason))
        elif reason.kind != "normal" or sender is self:
            self._kill(reason)

    def _kill(self, reason: ExitReason) -> None:
        """Exit at once, without ``terminate``: cancel the task, or finalize if there is none."""
        if self._status == DEAD:
            return
        self._status = EXITING
        self._limit = 0
        self._exit_reason = reason
        self._attention = True
        task = self._task
        if task is None or task.done():
            self._finalize(reason)
        else:
            self._waiter = None
            task.cancel()

    def _finalize(self, reason: ExitReason) -> None:
        """Die: fail callers, drop timers and names, then deliver DOWN and exit signals."""
        if self._status == DEAD:
            return
        self._status = DEAD
        self._limit = 0
        self._exit_reason = reason
        self._task = None
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # an Inbox blocked in receive() wakes to find itself dead
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._fail_callers(reason)
        self._release_all_space()
        if self._timers:
            for timer in list(self._timers):
                timer.cancel()
            self._timers = None
        if self._names:
            for release in self._names:
                release(self)
            self._names = None
        self._node._forget(self)
        self._drop_monitoring()
        self._notify_monitors(reason)
        self._notify_links(reason)
        if self._exit_callbacks:
            callbacks, self._exit_callbacks = self._exit_callbacks, None
            for callback in callbacks:
                callback._run(reason)
        if self._death:
            for fut in self._death:
                if not fut.done():
                    fut.set_result(reason)
            self._death = None

    def _fail_callers(self, reason: ExitReason) -> None:
        callers: list[Caller] = []
        if self._current is not None:
            callers.append(self._current)
            self._current = None
        if self._deferred:
            callers.extend(self._deferred)
            self._deferred = None
        mb = self._mailbox
        if mb:
            callers.extend(i.extra for i in mb if i.__class__ is Msg and i.tag == CALL)
            mb.clear()
        self._mailbox = None
        for caller in callers:
            caller._fail(ActorExitedError(self, reason))

    def _release_all_space(self) -> None:
        space = self._space
        self._space = None
        while space:
            fut, item = space.popleft()
            if item.__class__ is Msg and item.tag == CALL:
                item.extra._fail(ActorExitedError(self, self._exit_reason or NOPROC))
            if not fut.done():
                fut.set_result(None)  # stop waiting; like any message to a dead actor, dropped

    def _drop_monitoring(self) -> None:
        monitoring = self._monitoring
        self._monitoring = None
        if monitoring:
            for mref, target in monitoring.items():
                if target._monitored_by:
                    target._monitored_by.pop(mref, None)

    def _notify_monitors(self, reason: ExitReason) -> None:
        monitored_by = self._monitored_by
        self._monitored_by = None
        if monitored_by:
            for mref, watcher in monitored_by.items():
                if watcher._monitoring:
                    watcher._monitoring.pop(mref, None)
                watcher._deliver_info(Down(mref, self, reason))

    def _notify_links(self, reason: ExitReason) -> None:
        links = self._links
        self._links = None
        if links:
            for other in links:
                if other._links:
                    other._links.discard(self)
                other._signal(self, reason)

    # -- links and monitors ---------------------------------------------------------------

    def _link(self, other: ActorRef) -> None:
        if other is self:
            return
        if other._status >= EXITING:
            # Linking to a dead actor delivers its exit at once, as in OTP (reason noproc).
            self._signal(other, NOPROC)
            return
        if self._links is None:
            self._links = set()
        if other._links is None:
            other._links = set()
        self._links.add(other)
        other._links.add(self)

    def _unlink(self, other: ActorRef) -> None:
        if self._links:
            self._links.discard(other)
        if other._links:
            other._links.discard(self)

    def _monitor(self, target: ActorRef) -> MonitorRef:
        mref = MonitorRef(self, target)
        if target._status == DEAD:
            # As in OTP: a monitor set on a dead actor reports noproc, not its old reason.
            # An exiting actor is not dead yet: its own death will deliver the real DOWN.
            self._deliver_info(Down(mref, target, NOPROC))
            return mref
        if target._monitored_by is None:
            target._monitored_by = {}
        if self._monitoring is None:
            self._monitoring = {}
        target._monitored_by[mref] = self
        self._monitoring[mref] = target
        return mref

    def _demonitor(self, mref: MonitorRef) -> bool:
        if self._monitoring is None or mref not in self._monitoring:
            return False
        target = self._monitoring.pop(mref)
        if target._monitored_by:
            target._monitored_by.pop(mref, None)
        return True

    def _on_exit(self, fn: Callable[[ActorRef, ExitReason], object]) -> ExitCallback:
        callback = ExitCallback(self, fn)
        if self._status == DEAD:
            # As a monitor on a dead actor: noproc, and never from inside the registration.
            self._loop.call_soon(callback._run, NOPROC)
        else:
            if self._exit_callbacks is None:
                self._exit_callbacks = []
            self._exit_callbacks.append(callback)
        return callback

    def _wait_dead(self) -> asyncio.Future[ExitReason]:
        """A future resolved with the exit reason when the actor is dead."""
        fut: asyncio.Future[ExitReason] = self._loop.create_future()
        if self._status == DEAD:
            fut.set_result(self._exit_reason or NOPROC)
        else:
            if self._death is None:
                self._death = []
            self._death.append(fut)
        return fut

