"""``StallWatch``: when the writes of the store stop making progress — sans-I/O.

A *stall* is a wait for progress longer than ``threshold`` seconds: something is waiting to
be written and no write has completed for that long (a SQLite write lock held by another
process, a PostgreSQL server that is down). The rules, in loop-clock seconds:

* the wait starts when something starts waiting while nothing was (``busy``), and starts
  again at every completed write while something still waits (``progress``);
* ``check(now)`` says True once, when the wait has lasted ``threshold``: the stall starts,
  and ``stalled_since`` is the wait's start;
* the stall ends at the next completed write, or when nothing waits any more (``idle``:
  everything written or failed); both return the stall's duration then, else None.

The owner (``UsageRecorder``) logs a stall once when it starts and once when it ends, and
checks at ``next_check()``.
"""

from __future__ import annotations


class StallWatch:
    """Whether writes are stalled; see the module docstring."""

    __slots__ = ("stalled_since", "threshold", "waiting_since")

    def __init__(self, threshold: float) -> None:
        if threshold <= 0:
            raise ValueError(f"a stall threshold must be positive, not {threshold}")
        self.threshold = threshold
        self.waiting_since: float | None = None
        """When the current wait for progress began (None: nothing waits)."""
        self.stalled_since: float | None = None
        """When the current stall's wait began (None: not stalled)."""

    def busy(self, now: float) -> None:
        """Something waits to be written (from ``now`` if nothing waited)."""
        if self.waiting_since is None:
            self.waiting_since = now

    def progress(self, now: float) -> float | None:
        """A write completed and more may wait; the stall's duration if this ends one."""
        ended = self._end(now)
        self.waiting_since = now
        return ended

    def idle(self, now: float) -> float | None:
        """Nothing waits any more; the stall's duration if this ends one."""
        ended = self._end(now)
        self.waiting_since = None
        return ended

    def check(self, now: float) -> bool:
        """True exactly once per stall: when the wait has lasted ``threshold``."""
        since = self.waiting_since
        if self.stalled_since is None and since is not None and now - since >= self.threshold:
            self.stalled_since = since
            return True
        return False

    def next_check(self, now: float) -> float | None:
        """When to ``check`` next: when the wait reaches the threshold, or (stalled) a
        threshold from now, to notice ``idle`` if nobody reports it; None if nothing waits."""
        if self.waiting_since is None and self.stalled_since is None:
            return None
        if self.stalled_since is None and self.waiting_since is not None:
            return max(now, self.waiting_since + self.threshold)
        return now + self.threshold

    def _end(self, now: float) -> float | None:
        since, self.stalled_since = self.stalled_since, None
        return None if since is None else now - since
