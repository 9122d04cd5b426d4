"""``Waiters``: the callers waiting for outputs to end, found by one lookup per job event.

``Jobs.wait`` (and so the HTTP long poll) adds a ``Waiter`` for its output here and awaits
its ``ended`` flag; the job context hands every event it delivers — this process's, and
other processes' — to ``wake``, which sets the flags of the output's waiters when the event
ends the output. One dict lookup per event, however many wait: no waiter listens to every
event. Each waiter also reads its output every ``poll_interval_s`` besides (an end no
event told of, such as another process's on SQLite), so waiters are bounded.

Options (``[jobs]``, defaults in brackets): ``max_waits_per_user`` [16] — the waits one
user may have at once; ``max_waits`` [1000] — the waits of the process. One more is a
``WaitLimitError`` (HTTP 429) until a wait ends. A wait of trusted code that names no user
counts against ``max_waits`` only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Final

from beamish.jobs.errors import WaitLimitError
from beamish.jobs.models import JobEvent

ENDED: Final = frozenset({"completed", "failed", "cancelled"})
"""The output statuses that do not change again."""


@dataclass(eq=False)
class Waiter:
    """One wait for ``output_id`` to end: ``ended`` is set by an event that ends it."""

    output_id: str
    user_id: str | None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Waiters:
    """The waiters of one application run, by output, within their bounds."""

    def __init__(self, *, max_per_user: int, max_total: int) -> None:
        self._max_per_user = max_per_user
        self._max_total = max_total
        self._by_output: dict[str, set[Waiter]] = {}
        self._per_user: dict[str, int] = {}
        self._total = 0

    def add(self, output_id: str, user_id: str | None) -> Waiter:
        """A waiter for ``output_id`` (on behalf of ``user_id``); ``remove`` it when done.

        Raises:
            WaitLimitError: ``user_id`` has ``max_per_user`` waits, or the process
                ``max_total``.
        """
        if self._total >= self._max_total:
            raise WaitLimitError(self._max_total)
        if user_id is not None:
            if self._per_user.get(user_id, 0) >= self._max_per_user:
                raise WaitLimitError(self._max_per_user, user_id=user_id)
            self._per_user[user_id] = self._per_user.get(user_id, 0) + 1
        self._total += 1
        waiter = Waiter(output_id, user_id)
        self._by_output.setdefault(output_id, set()).add(waiter)
        return waiter

    def remove(self, waiter: Waiter) -> None:
        """Forget ``waiter`` (its wait is over); again is a no-op."""
        waiting = self._by_output.get(waiter.output_id)
        if waiting is None or waiter not in waiting:
            return
        waiting.discard(waiter)
        if not waiting:
            del self._by_output[waiter.output_id]
        self._total -= 1
        if waiter.user_id is not None:
            left = self._per_user[waiter.user_id] - 1
            if left:
                self._per_user[waiter.user_id] = left
            else:
                del self._per_user[waiter.user_id]

    def wake(self, event: JobEvent) -> None:
        """Set the flags of the waiters of ``event``'s output, when the event ends it."""
        if event.status not in ENDED:
            return
        for waiter in self._by_output.get(event.output_id, ()):
            waiter.ended.set()

    def count(self, user_id: str | None = None) -> int:
        """The waits of ``user_id`` (of the process, when None)."""
        return self._total if user_id is None else self._per_user.get(user_id, 0)


__all__ = ["ENDED", "Waiter", "Waiters"]
