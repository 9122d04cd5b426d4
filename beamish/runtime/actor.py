"""Actors: GenServer callbacks, the loop that runs them, and the client API.

A tutorial, in the order of Elixir's GenServer guide::

    class Counter(Actor):
        async def init(self, start: int) -> None:     # runs in the new actor; raise to fail
            self.count = start

        def handle_call(self, request, caller):       # the return value is the reply
            if request == "get":
                return self.count
            raise ValueError(request)                  # a crash: the actor exits

        async def handle_cast(self, request) -> None:  # fire-and-forget
            self.count += request

    ref = await start(Counter, 0)
    await cast(ref, 5)
    assert await call(ref, "get") == 5

**Client API vs callbacks.** Other code talks to an actor only through ``call`` (request and
reply, with a timeout), ``cast`` (one-way, with mailbox backpressure) and ``send`` (a plain
message for ``handle_info``). Callbacks run one at a time, in the actor's own task, and are the
only place its state changes. Each callback may be ``def`` or ``async def``.

**Callbacks.** ``init(arg)`` (may call ``self.continue_with(x)`` to run ``handle_continue(x)``
before any message, or ``self.stop(reason)`` to make ``start`` fail with
:class:`~beamish.runtime.errors.ActorExitedError`), ``handle_call(request, caller)``
(return the reply, or :data:`NOREPLY` and reply later with ``caller.reply(value)``),
``handle_cast(request)``, ``handle_info(message)`` (plain messages, timers,
:class:`~beamish.runtime.exits.Down`, :class:`~beamish.runtime.exits.Exit`),
``handle_continue(arg)`` and ``terminate(reason)``.

**When terminate runs.** On an orderly stop (``self.stop()``, :func:`stop`), when a callback
raises (reason ``crash``), and when the actor traps exits and its parent (supervisor) tells it
to shut down. It does *not* run when the actor is killed (``KILL``, ``brutal_kill``, a shutdown
timeout) or when an exit signal reaches an actor that does not trap exits: then the actor's
task is cancelled, as an Erlang process is killed. Put cleanup that must always happen in a
resource the supervisor owns, or trap exits.

**Options of** :func:`start` (defaults in brackets): ``name`` [None] — a str (node-wide) or
:func:`~beamish.runtime.registry.via` name; ``link`` [False] — link to the calling actor;
``mailbox_size`` [65536] — the bound for calls, casts and sends (system messages such as DOWN,
EXIT and timers always get in); ``overflow`` ["block"] — when the mailbox is full, ``cast`` and
``call`` wait for room ("block") or raise ``MailboxFullError`` ("fail"); ``send`` always raises;
``hibernate_after`` [None] — seconds idle before the actor hibernates (drops its task and
mailbox; its state stays); ``timeout`` [None] — how long ``init`` may take.

**When not to use an actor.** An actor models state, failure or concurrency; never use one
just to organise code — a plain function or class is cheaper and clearer.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from beamish.runtime.errors import (
    ActorExitedError,
    CallError,
    CallTimeoutError,
    InvalidOptionError,
    MailboxFullError,
    NoProcessError,
)
from beamish.runtime.exits import KILLED, NORMAL, Exit, ExitReason, crash
from beamish.runtime.names import Name, ViaName, resolve, resolve_or_none
from beamish.runtime.process import (
    CALL,
    EXITING,
    HIBERNATED,
    INFO,
    RUNNING,
    SIGNAL,
    STOP,
    ActorRef,
    Caller,
    Item,
    Msg,
    current_node,
    current_process,
)

if TYPE_CHECKING:
    from beamish.runtime.supervisor import ChildSpec

log = logging.getLogger("beamish.runtime")

DEFAULT_MAILBOX_SIZE: Final = 65536


class _NoReply:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOREPLY"


#: Return this from ``handle_call`` to reply later with ``caller.reply(value)``.
NOREPLY: Final = _NoReply()

_HIBERNATE: Final = object()


class Actor:
    """Base class of actors (GenServer). Subclass it and override the callbacks you need.

    Each callback may be a plain ``def`` or an ``async def``; a plain one costs less.

    The constructor takes no arguments: set up state in :meth:`init`, which runs inside the new
    actor. The action methods (``stop``, ``hibernate``, ``continue_with``, ``trap_exit``) are
    for use inside callbacks; they take effect when the callback returns.
    """

    _beamish_async: ClassVar[tuple[bool, bool, bool]] = (False, False, False)
    _ref: ActorRef
    _acted: bool = False
    _stop_reason: ExitReason | None = None
    _continue_args: list[Any] | None = None
    _hibernate_req: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._beamish_async = (
            inspect.iscoroutinefunction(cls.handle_call),
            inspect.iscoroutinefunction(cls.handle_cast),
            inspect.iscoroutinefunction(cls.handle_info),
        )

    @classmethod
    def child_spec(cls, arg: Any = None, **options: Any) -> ChildSpec:
        """A supervisor child spec for this actor (see :func:`~beamish.runtime.child_spec`)."""
        from beamish.runtime.supervisor import child_spec

        return child_spec(cls, arg, **options)

    # -- callbacks ------------------------------------------------------------------------

    def init(self, arg: Any) -> Any:
        """Set up state. Raise to make ``start`` fail with that error."""

    def handle_call(self, request: Any, caller: Caller) -> Any:
        """Answer a call: return the reply, or :data:`NOREPLY` and reply later."""
        raise CallError(f"{type(self).__name__} does not handle calls (got {request!r})")

    def handle_cast(self, request: Any) -> Any:
        """Handle a cast."""
        raise CallError(f"{type(self).__name__} does not handle casts (got {request!r})")

    def handle_info(self, message: Any) -> Any:
        """Handle a plain message, a timer message, a Down or an Exit."""
        log.warning("%r received an unexpected message: %r", self._ref, message)

    def handle_continue(self, arg: Any) -> Any:
        """Continue work asked for with :meth:`continue_with`."""
        raise CallError(f"{type(self).__name__} asked to continue but has no handle_continue")

    def terminate(self, reason: ExitReason) -> Any:
        """Clean up before exiting (see the module docs for when this runs)."""

    # -- actions --------------------------------------------------------------------------

    @property
    def ref(self) -> ActorRef:
        """This actor's own ref."""
        return self._ref

    def stop(self, reason: ExitReason = NORMAL) -> None:
        """Exit with ``reason`` after the current callback (a call's reply is sent first)."""
        self._stop_reason = reason
        self._acted = True
        self._ref._attention = True

    def continue_with(self, arg: Any) -> None:
        """Run ``handle_continue(arg)`` right after this callback, before any other message."""
        if self._continue_args is None:
            self._continue_args = []
        self._continue_args.append(arg)
        self._acted = True
        self._ref._attention = True

    def hibernate(self) -> None:
        """Give up the task once the mailbox is empty; wake with state intact on a message."""
        self._hibernate_req = True

    def trap_exit(self, enabled: bool = True) -> None:
        """Receive exit signals from links as :class:`Exit` messages instead of dying."""
        self._ref._trap_exit = enabled


# -- the loop -------------------------------------------------------------------------------


async def _boot(proc: ActorRef, actor: Actor, arg: Any, started: asyncio.Future[None]) -> None:
    """The first task of an actor: run ``init``, report to the starter, then serve."""
    current_process.set(proc)
    try:
        try:
            result = actor.init(arg)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            _fail_start(proc, exc, started)
            return
        del arg, result  # this frame lives as long as the actor: keep nothing init was given
        if actor._stop_reason is not None:
            # init asked to stop: as OTP's {stop, Reason}, start fails and terminate is not run.
            _fail_start(proc, ActorExitedError(proc, actor._stop_reason), started,
                        actor._stop_reason)
            return
        if proc._status < EXITING:
            proc._status = RUNNING
        if not started.done():
            started.set_result(None)
        await _serve(proc, actor)
    except asyncio.CancelledError:
        _cancelled(proc, started)
    finally:
        if not started.done():
            why = f"it exited during init: {proc._exit_reason}"
            started.set_exception(NoProcessError(proc, why))


async def _wake(proc: ActorRef) -> None:
    """The task of an actor woken from hibernation."""
    current_process.set(proc)
    try:
        await _serve(proc, proc._actor)  # type: ignore[arg-type]
    except asyncio.CancelledError:
        _cancelled(proc, None)


def _fail_start(
    proc: ActorRef,
    exc: Exception,
    started: asyncio.Future[None],
    reason: ExitReason | None = None,
) -> None:
    # A failed init reports its error to the starter instead of an exit signal to links.
    for other in list(proc._links or ()):
        proc._unlink(other)
    proc._finalize(reason or crash(exc))
    if not started.done():
        started.set_exception(exc)


def _cancelled(proc: ActorRef, started: asyncio.Future[None] | None) -> None:
    if proc._status >= EXITING and proc._exit_reason is not None:
        proc._finalize(proc._exit_reason)  # our own kill: the task ends cleanly
        return
    proc._finalize(KILLED)  # cancelled from outside (loop shutdown): let it propagate
    raise asyncio.CancelledError


async def _serve(proc: ActorRef, actor: Actor) -> None:
    """Run callbacks for queued messages until the actor exits or hibernates."""
    loop = proc._loop
    a_call, a_cast, a_info = actor._beamish_async
    envelope = Msg  # a local: read once per message on the hot path
    handle_call, handle_cast, handle_info = actor.handle_call, actor.handle_cast, actor.handle_info
    if proc._attention and await _attend(proc, actor):
        return
    while True:
        mb = proc._mailbox
        while mb:
            item = mb.popleft()
            try:
                if item.__class__ is not envelope:  # a cast: the payload itself
                    if a_cast:
                        await handle_cast(item)
                    else:
                        handle_cast(item)
                    if proc._attention and await _attend(proc, actor):
                        return
                    continue
                tag, payload, extra = item.tag, item.payload, item.extra
                if tag == CALL:
                    proc._current = extra
                    result = handle_call(payload, extra)
                    if a_call:
                        result = await result
                    proc._current = None
                    fut = extra._fut
                    if result is NOREPLY:
                        if not fut.done():
                            _defer(proc, extra)
                    elif not fut.done():
                        fut.set_result(result)
                elif tag == INFO:
                    if a_info:
                        await handle_info(payload)
                    else:
                        handle_info(payload)
                elif tag == SIGNAL:
                    if payload is proc._parent:
                        await _exit(proc, actor, extra)
                        return
                    message = Exit(payload, extra)
                    if a_info:
                        await handle_info(message)
                    else:
                        handle_info(message)
                else:  # STOP
                    await _exit(proc, actor, payload)
                    return
            except Exception as exc:
                await _exit(proc, actor, crash(exc))
                return
            except asyncio.CancelledError as exc:
                task = proc._task
                if task is None or task.cancelling() or proc._status != RUNNING:
                    raise  # this actor's own task is cancelled: a kill, handled by the caller
                await _exit(proc, actor, crash(exc))  # a callback let a stray one escape
                return
            if proc._attention and await _attend(proc, actor):
                return
        if actor._hibernate_req:
            _hibernate(proc, actor)
            return
        waiter = loop.create_future()
        proc._waiter = waiter
        if proc._hibernate_after is not None:
            _arm_idle_timer(proc)
        if await waiter is _HIBERNATE:
            _hibernate(proc, actor)
            return


async def _attend(proc: ActorRef, actor: Actor) -> bool:
    """Handle what set ``_attention``: a kill, actions, waiting senders. True if done."""
    proc._attention = False
    if proc._status != RUNNING:  # killed, but a callback swallowed the cancellation
        proc._finalize(proc._exit_reason or KILLED)
        return True
    if actor._acted and await _act(proc, actor):
        return True
    if proc._space:
        proc._release_space()
        proc._attention = proc._space is not None
    return False


def _defer(proc: ActorRef, caller: Caller) -> None:
    if proc._deferred is None:
        proc._deferred = set()
    proc._deferred.add(caller)


async def _act(proc: ActorRef, actor: Actor) -> bool:
    """Carry out stop / continue requests; True if the actor exited."""
    while actor._acted:
        actor._acted = False
        if actor._stop_reason is not None:
            await _exit(proc, actor, actor._stop_reason)
            return True
        pending = actor._continue_args
        while pending:
            arg = pending.pop(0)
            try:
                result = actor.handle_continue(arg)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                await _exit(proc, actor, crash(exc))
                return True
    return False


async def _exit(proc: ActorRef, actor: Actor, reason: ExitReason) -> None:
    """An orderly exit from inside the actor: run terminate, then die with ``reason``."""
    proc._status = EXITING
    proc._limit = 0
    proc._exit_reason = reason
    try:
        result = actor.terminate(reason)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:
        log.error("%r crashed in terminate(%s): %r", proc, reason, exc)
        reason = crash(exc)
    if reason.kind == "crash":
        log.error("%r crashed: %r", proc, reason.exception, exc_info=reason.exception)
    proc._finalize(reason)


def _hibernate(proc: ActorRef, actor: Actor) -> None:
    if actor._hibernate_req:
        # Only when set: writing the class default would add a key to the instance's dict,
        # which can grow it (about 300 bytes per hibernating actor for nothing).
        actor._hibernate_req = False
    proc._status = HIBERNATED
    proc._task = None
    proc._waiter = None
    if not proc._mailbox:
        proc._mailbox = None  # an empty deque costs ~600 bytes; a message brings it back
    else:
        proc._node._resume(proc)  # a message raced in: keep going in a fresh task


def _arm_idle_timer(proc: ActorRef) -> None:
    proc._idle_since = now = proc._loop.time()
    if proc._idle_timer is None:
        proc._idle_timer = proc._loop.call_at(
            now + proc._hibernate_after, _idle_timer_fired, proc  # type: ignore[operator]
        )


def _idle_timer_fired(proc: ActorRef) -> None:
    proc._idle_timer = None
    waiter = proc._waiter
    if waiter is None or proc._status != RUNNING:
        return  # busy: the next idle moment re-arms it
    due = proc._idle_since + proc._hibernate_after  # type: ignore[operator]
    if proc._loop.time() >= due:
        proc._waiter = None
        waiter.set_result(_HIBERNATE)
    else:
        proc._idle_timer = proc._loop.call_at(due, _idle_timer_fired, proc)


# -- client API -----------------------------------------------------------------------------

Overflow = Literal["block", "fail"]


def _check_options(
    name: object, mailbox_size: int, overflow: str, hibernate_after: float | None, timeout: object
) -> None:
    if name is not None and not isinstance(name, str | ViaName):
        raise InvalidOptionError("name", name, "None, a str or a via() name")
    if not isinstance(mailbox_size, int) or isinstance(mailbox_size, bool) or mailbox_size < 1:
        raise InvalidOptionError("mailbox_size", mailbox_size, "an int >= 1")
    if overflow not in ("block", "fail"):
        raise InvalidOptionError("overflow", overflow, "'block' or 'fail'")
    if hibernate_after is not None and (
        not isinstance(hibernate_after, int | float) or hibernate_after < 0
    ):
        raise InvalidOptionError("hibernate_after", hibernate_after, "None or seconds >= 0")
    if timeout is not None and (
        not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0
    ):
        raise InvalidOptionError("timeout", timeout, "None or seconds >= 0")


async def start(
    actor_type: type[Actor],
    arg: Any = None,
    *,
    name: Name | None = None,
    link: bool = False,
    mailbox_size: int = DEFAULT_MAILBOX_SIZE,
    overflow: Overflow = "block",
    hibernate_after: float | None = None,
    timeout: float | None = None,
) -> ActorRef:
    """Start an actor and wait until its ``init`` has run; re-raise ``init``'s error.

    Options and their defaults are listed in the module docs.
    """
    if not (isinstance(actor_type, type) and issubclass(actor_type, Actor)):
        raise InvalidOptionError("actor_type", actor_type, "a subclass of Actor")
    _check_options(name, mailbox_size, overflow, hibernate_after, timeout)
    node = current_node()
    parent = current_process.get() if link else None
    if link and parent is None:
        raise CallError("start(link=True) needs a calling actor to link to; use link=False")
    actor = actor_type()
    proc = ActorRef(
        node,
        actor,
        capacity=mailbox_size,
        overflow_block=overflow == "block",
        hibernate_after=hibernate_after,
    )
    actor._ref = proc
    if isinstance(name, str):
        node._register_name(name, proc)
    elif name is not None:
        name.register(proc)
    proc.label = name
    if parent is not None:
        proc._link(parent)
        proc._parent = parent
    started: asyncio.Future[None] = node._loop.create_future()
    node._spawn(proc, _boot(proc, actor, arg, started))
    try:
        if timeout is None:
            await started
        else:
            async with asyncio.timeout(timeout):
                await started
    except (asyncio.CancelledError, TimeoutError) as exc:
        started.cancel()
        if parent is not None:
            proc._unlink(parent)  # the starter gets the error, not an exit signal as well
        proc._kill(KILLED)
        if isinstance(exc, TimeoutError):
            await proc._wait_dead()  # start fails only once the half-started actor is gone
        raise
    return proc


def _is_own_task(proc: ActorRef) -> bool:
    # Tasks an actor spawns inherit its context, but they are not the actor: they may call it.
    return proc._actor is None or asyncio.current_task() is proc._task


async def call(target: ActorRef | Name, request: Any, timeout: float | None = 5.0) -> Any:
    """Send ``request`` and wait for the reply.

    Raises:
        NoProcessError: the target is dead or unknown (at once, not after the timeout).
        CallTimeoutError: no reply within ``timeout`` seconds (None waits forever).
        ActorExitedError: the target exited before replying.
        MailboxFullError: the mailbox is full and the target uses overflow="fail".
    """
    proc: ActorRef = target if target.__class__ is ActorRef else resolve(target)
    if proc._status >= EXITING:
        raise NoProcessError(target)
    if current_process.get() is proc and _is_own_task(proc):
        raise CallError(f"{proc!r} called itself; it would wait forever for its own reply")
    fut = proc._loop.create_future()
    item = Msg(CALL, request, Caller(fut, proc))
    mb = proc._mailbox
    if mb is not None and (len(mb) >= proc._capacity or proc._space):
        if not proc._overflow_block:
            raise MailboxFullError(proc, proc._capacity)
        if timeout is not None:
            proc._node._deadlines.add(fut, timeout, proc, request)
        room = proc._put_later(item)
        fut.add_done_callback(lambda _: None if room.done() else room.set_result(None))
        try:
            await room
        except asyncio.CancelledError:
            fut.cancel()  # else its deadline later fails a future nobody awaits
            raise
    else:
        proc._enqueue(item)
        if timeout is not None:
            proc._node._deadlines.add(fut, timeout, proc, request)
    return await fut


def _overflow(proc: ActorRef, item: Item) -> asyncio.Future[None]:
    if not proc._overflow_block:
        raise MailboxFullError(proc, proc._capacity)
    return proc._put_later(item)


def cast(target: ActorRef | Name, request: Any) -> asyncio.Future[None]:
    """Send ``request`` to ``handle_cast``; await the result to respect backpressure.

    The message is queued at once when the mailbox has room, and the returned future is
    already done. When the mailbox is full, overflow="block" returns a future that completes
    once the message got in (await it: that is the backpressure), and overflow="fail" raises
    :class:`MailboxFullError`. A cast to a dead actor or an unknown name is dropped, as in OTP.
    """
    try:
        mb = target._mailbox  # type: ignore[union-attr]
    except AttributeError:  # a name, not a ref
        proc = resolve_or_none(target)
        return current_node()._done if proc is None else _cast_slow(proc, request)
    if mb is not None and len(mb) < target._limit:  # type: ignore[union-attr]
        mb.append(request)
        waiter = target._waiter  # type: ignore[union-attr]
        if waiter is not None:
            target._waiter = None  # type: ignore[union-attr]
            if not waiter.done():
                waiter.set_result(None)
        return target._done  # type: ignore[union-attr]
    return _cast_slow(target, request)  # type: ignore[arg-type]


def try_cast(target: ActorRef, request: Any) -> bool:
    """``cast``, only if ``request`` gets into the mailbox now: False, having sent nothing,
    when the mailbox is full (or senders wait for room), whatever the overflow policy.

    For a caller that has something better to do than wait — a transport that stops reading
    its connection instead. A cast to a dead actor is dropped (True), as with ``cast``.
    """
    mb = target._mailbox
    if mb is not None and len(mb) < target._limit:
        mb.append(request)
        waiter = target._waiter
        if waiter is not None:
            target._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return True
    if target._status >= EXITING:
        return True
    if mb is None or not target._full():  # hibernated: the message wakes it
        target._enqueue(request)
        return True
    return False


def idle_actor(target: ActorRef) -> Actor | None:
    """The actor behind ``target`` while it is idle, else None.

    Idle: running with an empty mailbox and its task waiting for the next message (not inside
    a callback, which may be suspended in an ``await``), or hibernated. Code that calls the
    actor's own methods now, outside its task, then handles a message exactly as the task
    would handle it next: nothing is queued ahead of it, and nothing runs in the actor
    meanwhile. It is for an actor's own module, to take input in the caller's step of the
    event loop — a transport handing a socket actor the frames it can deal with at once —
    and only for code that does not wait; everything else sends messages.
    """
    status = target._status
    if status == RUNNING:
        if target._waiter is None or target._mailbox or target._attention:
            return None
    elif status != HIBERNATED:
        return None
    return target._actor  # None for an Inbox, which has no actor


def _cast_slow(proc: ActorRef, request: Any) -> asyncio.Future[None]:
    """A cast to a hibernated, full, or dead actor."""
    if proc._status >= EXITING:
        return proc._done
    if proc._mailbox is None or not proc._full():
        proc._enqueue(request)
        return proc._done
    return _overflow(proc, request)


def send(target: ActorRef | Name, message: Any) -> None:
    """Send a plain message to ``handle_info``; never waits.

    Raises :class:`MailboxFullError` if the mailbox is full. A message to a dead actor or an
    unknown name is dropped, as in OTP.
    """
    proc = target if target.__class__ is ActorRef else resolve_or_none(target)
    if proc is None or proc._status >= EXITING:
        return
    if proc._full():
        raise MailboxFullError(proc, proc._capacity)
    proc._enqueue(Msg(INFO, message, None))


async def stop(
    target: ActorRef | Name, reason: ExitReason = NORMAL, timeout: float | None = None
) -> ExitReason:
    """Stop an actor in order (its ``terminate`` runs) and wait until it is dead.

    Returns the reason it exited with. Raises :class:`NoProcessError` if it is not alive and
    :class:`CallTimeoutError` if it is not dead within ``timeout`` seconds.
    """
    proc = resolve(target) if not isinstance(target, ActorRef) else target
    if not proc.alive:
        raise NoProcessError(target)
    if current_process.get() is proc and _is_own_task(proc):
        raise CallError(f"{proc!r} cannot stop() itself; call self.stop() in a callback")
    dead = proc._wait_dead()
    if proc._actor is None:
        proc._finalize(reason)  # an Inbox has no callbacks to run
    else:
        proc._enqueue(Msg(STOP, reason, None))
    try:
        if timeout is None:
            return await dead
        async with asyncio.timeout(timeout):
            return await dead
    except TimeoutError:
        raise CallTimeoutError(proc, ("stop", reason), timeout or 0.0) from None


def reply(caller: Caller, value: Any) -> None:
    """Reply to a call that ``handle_call`` answered with :data:`NOREPLY`."""
    caller.reply(value)
