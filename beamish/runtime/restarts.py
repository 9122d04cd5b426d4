"""Supervisor decisions, without I/O: what to restart, what to stop, and when to give up.

Everything here is a plain function or class over ids, restart types and timestamps, so it is
tested without an event loop; :mod:`beamish.runtime.supervisor` carries the decisions out.

Restart intensity follows OTP exactly: a supervisor may restart at most ``max_restarts``
children within any ``max_seconds`` window (default 3 in 5 s); the restart that would exceed
it makes the supervisor stop its children and exit with reason ``shutdown``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from typing import Literal

from beamish.runtime.errors import InvalidOptionError
from beamish.runtime.exits import ExitReason

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
Restart = Literal["permanent", "transient", "temporary"]
STRATEGIES: tuple[Strategy, ...] = ("one_for_one", "one_for_all", "rest_for_one")
RESTARTS: tuple[Restart, ...] = ("permanent", "transient", "temporary")


class RestartIntensity:
    """Counts restarts in a sliding window of ``max_seconds``."""

    def __init__(self, max_restarts: int = 3, max_seconds: float = 5.0) -> None:
        if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
            raise InvalidOptionError("max_restarts", max_restarts, "an int >= 0")
        # `not > 0` also refuses NaN, which would make the window never expire.
        if (not isinstance(max_seconds, int | float) or isinstance(max_seconds, bool)
                or not max_seconds > 0):
            raise InvalidOptionError("max_seconds", max_seconds, "seconds > 0")
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self._times: deque[float] = deque()

    def add(self, now: float) -> bool:
        """Record a restart at ``now``; False if it exceeds the intensity (give up)."""
        threshold = now - self.max_seconds
        times = self._times
        while times and times[0] < threshold:
            times.popleft()
        times.append(now)
        return len(times) <= self.max_restarts

    @property
    def recent(self) -> int:
        """Restarts recorded in the current window (as of the last :meth:`add`)."""
        return len(self._times)


def should_restart(restart: Restart, reason: ExitReason) -> bool:
    """Whether a child of restart type ``restart`` that exited with ``reason`` is restarted."""
    if restart == "permanent":
        return True
    if restart == "transient":
        return not reason.is_shutdown
    return False


def plan_restart(
    strategy: Strategy,
    children: Sequence[tuple[Hashable, Restart]],
    failed: Hashable,
) -> tuple[list[Hashable], list[Hashable]]:
    """What to do when ``failed`` must be restarted.

    Args:
        strategy: the supervisor's strategy.
        children: (id, restart type) of every child, in start order.
        failed: the id of the child that exited and is to be restarted.

    Returns:
        (to_stop, to_start): ids to stop, in stop order (reverse start order), then ids to
        start, in start order. Temporary siblings that get stopped are not started again.
    """
    ids = [cid for cid, _ in children]
    if failed not in ids:
        raise KeyError(failed)
    if strategy == "one_for_one":
        return [], [failed]
    if strategy == "one_for_all":
        affected = list(children)
    elif strategy == "rest_for_one":
        affected = list(children[ids.index(failed):])
    else:
        raise InvalidOptionError("strategy", strategy, " | ".join(STRATEGIES))
    to_stop = [cid for cid, _ in reversed(affected) if cid != failed]
    to_start = [cid for cid, kind in affected if cid == failed or kind != "temporary"]
    return to_stop, to_start


def shutdown_order(ids: Sequence[Hashable]) -> list[Hashable]:
    """Children stop in reverse start order."""
    return list(reversed(ids))
