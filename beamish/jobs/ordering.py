"""The order of one job's events, and a bounded memory of the newest one pushed per output —
without I/O.

A job's state events happen in one order: ``queued``; then, for each attempt *n*,
``started`` (*n*) and the attempt's end — ``retried`` (*n*), after which attempt *n + 1*
starts, or the output's end: ``completed``, ``failed`` or ``cancelled``, after which
nothing happens to the job again. ``rank`` says where an event stands in it::

    queued < started(1) < retried(1) < started(2) < ... < completed | failed | cancelled

``feedback`` events rate an output and change no state: they have no rank.

A process hands its listeners its own events in the order they happened; events of other
processes sharing a PostgreSQL queue (``beamish.jobs.relay``) come through the database,
and can overtake or trail this process's events of the same job (a job queued here, run
there). What shows a job's state — a user's channel, say — keeps a ``NewestEvents`` and
drops what is older than what it already showed, so a page never goes from processing back
to pending.

Options: ``NewestEvents(max_outputs=4096)`` — how many outputs it remembers, the least
recently seen forgotten first (an event of a forgotten output is admitted as new).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from beamish.jobs.models import JobEvent

MAX_OUTPUTS: Final = 4096

_PHASE: Final = {"queued": 0, "started": 1, "retried": 2}
_ENDS: Final = frozenset({"completed", "failed", "cancelled"})

Rank = tuple[int, int, int]


def rank(event: JobEvent) -> Rank | None:
    """Where ``event`` stands among its job's events (a higher rank happened later); None
    for ``feedback``, which is no state change."""
    if event.event in _ENDS:
        return (1, 0, 0)  # the output's end: nothing comes after it
    phase = _PHASE.get(event.event)
    if phase is None:
        return None
    return (0, event.attempt, phase)


class NewestEvents:
    """The rank of the newest event admitted per output, for its ``max_outputs`` most
    recently seen outputs."""

    def __init__(self, max_outputs: int = MAX_OUTPUTS) -> None:
        if max_outputs < 1:
            raise ValueError(f"max_outputs must be at least 1, not {max_outputs}")
        self._max = max_outputs
        self._newest: OrderedDict[str, Rank] = OrderedDict()

    def admit(self, event: JobEvent) -> bool:
        """Whether ``event`` is newer than every event of its output admitted before (then
        it is remembered as the newest); a ``feedback`` event always is."""
        position = rank(event)
        if position is None:
            return True
        newest = self._newest.get(event.output_id)
        if newest is not None:
            self._newest.move_to_end(event.output_id)
            if position <= newest:
                return False  # older, or the same event again
        self._newest[event.output_id] = position
        if len(self._newest) > self._max:
            self._newest.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._newest)


__all__ = ["MAX_OUTPUTS", "NewestEvents", "Rank", "rank"]
