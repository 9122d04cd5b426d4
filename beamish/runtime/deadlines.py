"""Call timeouts without a timer per call.

A call with a timeout must fail with :class:`CallTimeoutError` once its deadline passes. One
``loop.call_later`` per call (a heap push and a cancel) would cost more than the rest of the
call, so calls go into one FIFO per timeout value: within a FIFO, deadlines are in insertion
order, completed calls are dropped from its head as new calls arrive, and a single loop timer is
armed for the earliest live head. The cost per call is a ``deque.append``.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import TYPE_CHECKING, Any

from beamish.runtime.errors import CallTimeoutError

if TYPE_CHECKING:
    from beamish.runtime.process import ActorRef

_Entry = tuple[float, "asyncio.Future[Any]", "ActorRef", Any]


class Deadlines:
    """The pending call deadlines of one node."""

    __slots__ = ("_loop", "_queues", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[float, deque[_Entry]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def add(self, fut: asyncio.Future[Any], timeout: float, proc: ActorRef, request: Any) -> None:
        """Fail ``fut`` with CallTimeoutError after ``timeout`` seconds unless done by then."""
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = deque()
        else:
            while queue and queue[0][1].done():
                queue.popleft()
        deadline = self._loop.time() + timeout
        queue.append((deadline, fut, proc, request))
        if deadline < self._timer_at:
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        now = self._loop.time()
        earliest = math.inf
        for timeout, queue in list(self._queues.items()):
            while queue:
                deadline, fut, proc, request = queue[0]
                if fut.done():
                    queue.popleft()
                elif deadline <= now:
                    queue.popleft()
                    fut.set_exception(CallTimeoutError(proc, request, timeout))
                else:
                    earliest = min(earliest, deadline)
                    break
            if not queue:
                del self._queues[timeout]
        if earliest < math.inf:
            self._arm(earliest)

    def close(self) -> None:
        """Cancel the timer (the node is shutting down)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queues.clear()
