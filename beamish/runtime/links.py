"""Links, monitors and exit signals, called from inside an actor (or an open Inbox).

* :func:`link` — a two-way bond: when one exits abnormally, the other gets the exit signal
  (and dies with the same reason unless it traps exits, when it gets an :class:`Exit` message).
* :func:`monitor` — a one-way watch: exactly one :class:`Down` with the exit reason, at once
  (reason ``noproc``) if the target is already dead.
* :func:`on_exit` — a monitor for plain code: a callback run when the target dies, with no
  inbox, task or message. It runs synchronously inside the actor's death, right after the
  DOWN messages and exit signals are delivered (``noproc`` soon after, if already dead), so
  it must be quick and must not block: set a flag, close a queue, wake a future.
* :func:`exit` — send an exit signal; :data:`~beamish.runtime.exits.KILL` cannot be trapped.
"""

from __future__ import annotations

from collections.abc import Callable

from beamish.runtime.errors import CallError
from beamish.runtime.exits import ExitReason
from beamish.runtime.names import Name, resolve, resolve_or_none
from beamish.runtime.process import ActorRef, ExitCallback, MonitorRef, current_process


def self_ref() -> ActorRef:
    """The calling actor's (or inbox's) own ref."""
    me = current_process.get()
    if me is None:
        raise CallError("not inside an actor; use `async with open_inbox()` in plain code")
    return me


def link(target: ActorRef | Name) -> None:
    """Link the caller and ``target``; a dead target sends an exit signal (noproc) at once."""
    me = self_ref()
    proc = target if isinstance(target, ActorRef) else resolve(target)
    me._link(proc)


def unlink(target: ActorRef | Name) -> None:
    """Remove a link (no-op if there is none)."""
    me = self_ref()
    proc = target if isinstance(target, ActorRef) else resolve_or_none(target)
    if proc is not None:
        me._unlink(proc)


def monitor(target: ActorRef | Name) -> MonitorRef:
    """Watch ``target``; the caller gets exactly one :class:`Down` when it exits."""
    me = self_ref()
    proc = target if isinstance(target, ActorRef) else resolve(target)
    return me._monitor(proc)


def demonitor(mref: MonitorRef) -> bool:
    """Stop watching; True if the monitor was still active (no Down will come)."""
    return self_ref()._demonitor(mref)


def on_exit(target: ActorRef | Name,
            callback: Callable[[ActorRef, ExitReason], object]) -> ExitCallback:
    """Call ``callback(target, reason)`` once ``target`` has exited; callable from anywhere.

    The cheap form of :func:`monitor` for code that is not an actor (a connection handler,
    a transport): no inbox and no task wait for the exit. The callback runs once, inside the
    actor's death (after its DOWN messages and exit signals are delivered); for a target
    already dead, with reason ``noproc`` from the event loop soon after. An exception in it
    is logged and does not stop the others. ``.cancel()`` the returned handle to forget it.

    Raises:
        NoProcessError: ``target`` is a name that nothing is registered under.
    """
    proc = target if isinstance(target, ActorRef) else resolve(target)
    return proc._on_exit(callback)


def exit(target: ActorRef | Name, reason: ExitReason) -> None:
    """Send an exit signal to ``target``, as if from a linked actor that exited with ``reason``.

    A non-trapping target dies with ``reason`` unless it is ``normal``; a trapping target gets
    an :class:`Exit` message; ``KILL`` kills it either way (reason ``killed``).
    """
    proc = target if isinstance(target, ActorRef) else resolve_or_none(target)
    if proc is None:
        return
    sender = current_process.get()
    if sender is None:
        if reason.is_normal:
            return  # from plain code, like a normal exit signal from an unrelated process
        sender = proc
    proc._signal(sender, reason)
