"""Links, monitors and exit signals, called from inside an actor (or an open Inbox).

* :func:`link` — a two-way bond: when one exits abnormally, the other gets the exit signal
  (and dies with the same reason unless it traps exits, when it gets an :class:`Exit` message).
* :func:`monitor` — a one-way watch: exactly one :class:`Down` with the exit reason, at once
  (reason ``noproc``) if the target is already dead.
* :func:`exit` — send an exit signal; :data:`~beamish.runtime.exits.KILL` cannot be trapped.
"""

from __future__ import annotations

from beamish.runtime.errors import CallError
from beamish.runtime.exits import ExitReason
from beamish.runtime.names import Name, resolve, resolve_or_none
from beamish.runtime.process import ActorRef, MonitorRef, current_process


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
