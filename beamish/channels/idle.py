"""Idle-socket bookkeeping as plain arithmetic on a clock value the adapter passes in.

Phoenix closes a socket that has received no frame for 60 s. The phoenix JS client sends a
heartbeat 30 s after its last reply, so a live client never gets near the limit; a socket
that does is a dead peer (a laptop lid shut, a network gone without a FIN).

The adapter reads its clock (``loop.time()``), calls :meth:`Idleness.frame_received` for every
frame, waits for the next frame at most :meth:`Idleness.remaining` seconds, and when
:meth:`Idleness.is_idle` turns true closes with
``CloseCode.GOING_AWAY`` and :attr:`Idleness.reason` (the client reconnects if it is alive).

Options (keyword arguments of :class:`Idleness`):
    timeout: Seconds without a frame before the socket is idle; default 60.
"""

from __future__ import annotations

import math
from typing import Final

from beamish.channels.errors import InvalidOptionError

DEFAULT_IDLE_TIMEOUT: Final = 60.0


class Idleness:
    """When the last frame arrived, and whether the socket has been idle too long since.

    Not a timer: nothing here fires. The adapter owns the timer (``send_after``) and asks
    this value, told the time, whether to close and how long to wait next.
    """

    __slots__ = ("last_frame_at", "timeout")

    def __init__(self, now: float, *, timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        """Start counting at ``now`` (the connection's opening counts as activity)."""
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise InvalidOptionError("timeout", timeout, "finite seconds > 0")
        self.timeout = float(timeout)
        self.last_frame_at = now

    def frame_received(self, now: float) -> None:
        """Record a frame (of any kind, heartbeats included) at ``now``."""
        # A clock read before an earlier call must not move the deadline back.
        self.last_frame_at = max(self.last_frame_at, now)

    @property
    def deadline(self) -> float:
        """The clock value at which the socket becomes idle if no frame arrives first."""
        return self.last_frame_at + self.timeout

    def is_idle(self, now: float) -> bool:
        """Whether ``timeout`` seconds or more have passed at ``now`` since the last frame."""
        return now >= self.deadline

    def remaining(self, now: float) -> float:
        """Seconds left at ``now`` before the socket is idle; 0.0 once it is."""
        return max(0.0, self.deadline - now)

    @property
    def reason(self) -> str:
        """A close reason for an idle socket."""
        return f"idle timeout: no frame for {self.timeout:g} s"
