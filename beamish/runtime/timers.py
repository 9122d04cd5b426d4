"""Timers: messages delivered to an actor later, once or periodically.

A timer message is a system delivery: it bypasses the mailbox bound and arrives through
``handle_info``. Timers aimed at an actor are cancelled when it exits.
"""

from __future__ import annotations

import asyncio
from typing import Any

from beamish.runtime.errors import InvalidOptionError
from beamish.runtime.names import Name, resolve
from beamish.runtime.process import ActorRef


class Timer:
    """A pending timer; :meth:`cancel` it at any time (a no-op once it has fired)."""

    __slots__ = ("_handle", "_interval", "_message", "_next", "_target")

    def __init__(self, target: ActorRef, message: Any, delay: float, interval: float | None):
        self._target = target
        self._message = message
        self._interval = interval
        loop = target._loop
        self._next = loop.time() + delay
        self._handle: asyncio.TimerHandle | None = None
        if not target.alive:
            return  # as in Erlang: a timer aimed at a dead actor is cancelled at once
        self._handle = loop.call_at(self._next, self._fire)
        if target._timers is None:
            target._timers = set()
        target._timers.add(self)

    @property
    def active(self) -> bool:
        """True until it fired (one-shot) or was cancelled."""
        return self._handle is not None

    def cancel(self) -> None:
        """Stop the timer; a message not yet delivered will not be."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        timers = self._target._timers
        if timers:
            timers.discard(self)

    def _fire(self) -> None:
        target = self._target
        target._deliver_info(self._message)
        if self._interval is None or self._handle is None:
            self._handle = None
            if target._timers:
                target._timers.discard(self)
            return
        # Schedule from the planned time, not from now, so a periodic timer does not drift.
        self._next += self._interval
        self._handle = target._loop.call_at(self._next, self._fire)


def _target(target: ActorRef | Name) -> ActorRef:
    # A ref stays a valid target after death (the timer is then inactive); a name must resolve.
    return target if isinstance(target, ActorRef) else resolve(target)


def _check_delay(field: str, value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise InvalidOptionError(field, value, "seconds >= 0")


def send_after(target: ActorRef | Name, message: Any, delay: float) -> Timer:
    """Deliver ``message`` to ``target``'s ``handle_info`` after ``delay`` seconds.

    A timer aimed at a dead ref is inactive from the start; an unknown name raises
    :class:`~beamish.runtime.errors.NoProcessError`.
    """
    _check_delay("delay", delay)
    return Timer(_target(target), message, delay, None)


def send_interval(target: ActorRef | Name, message: Any, interval: float) -> Timer:
    """Deliver ``message`` every ``interval`` seconds until cancelled or the target exits."""
    _check_delay("interval", interval)
    if interval == 0:
        raise InvalidOptionError("interval", interval, "seconds > 0")
    return Timer(_target(target), message, interval, interval)
