"""Which sessions have been idle too long, and which to evict first: sans-I/O bookkeeping.

The janitor asks two questions, often and with many sessions open:

* *Which sessions have been idle longer than the TTL?* — every sweep.
* *Which idle sessions were active least recently?* — when the session limit is reached.

With one TTL for every session, both answers come from the same order: idle sessions by time
of last activity. ``IdleQueue`` keeps them in an insertion-ordered dict, oldest first. Activity
moves a session to the back in O(1); a sweep pops from the front and stops at the first session
that is still fresh, so its cost is proportional to the sessions that expire, never to the
sessions that exist (a sweep that expires nothing looks at one entry).

A session with a request in flight is not idle: ``begin`` takes it out of the queue and ``end``
puts it back at the back, stamped with the time the request ended. So neither expiry nor
eviction can ever pick it, however long the request runs.

Times are plain floats from the caller's clock (``loop.time()``), which keeps this module free
of I/O and lets its tests pass any time they like.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class IdleQueue(Generic[K]):
    """Sessions by last activity, oldest first, with their requests in flight counted.

    Args:
        ttl: seconds of idleness after which a session expires (must be positive).
    """

    __slots__ = ("_busy", "_idle", "ttl")

    def __init__(self, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl}")
        self.ttl = ttl
        self._idle: dict[K, float] = {}  # key -> last activity; insertion order = age order
        self._busy: dict[K, int] = {}  # key -> requests in flight (> 0)

    def __len__(self) -> int:
        return len(self._idle) + len(self._busy)

    def __contains__(self, key: object) -> bool:
        return key in self._idle or key in self._busy

    @property
    def idle_count(self) -> int:
        """Sessions with no request in flight."""
        return len(self._idle)

    def add(self, key: K, now: float) -> None:
        """Track a new (or resumed) session as active at ``now``."""
        if key not in self._busy:
            self.touch(key, now)

    def touch(self, key: K, now: float) -> None:
        """Record activity of an idle session at ``now`` (a busy one stays busy)."""
        if key in self._busy:
            return
        self._idle.pop(key, None)
        self._idle[key] = now

    def begin(self, key: K) -> None:
        """A request of ``key`` started: it can be neither expired nor evicted until it ends."""
        count = self._busy.get(key)
        if count is None:
            self._idle.pop(key, None)
            self._busy[key] = 1
        else:
            self._busy[key] = count + 1

    def end(self, key: K, now: float) -> None:
        """A request of ``key`` ended at ``now``; with none left in flight it is idle again."""
        count = self._busy.get(key)
        if count is None:
            return  # removed meanwhile (closed), or never begun
        if count > 1:
            self._busy[key] = count - 1
            return
        del self._busy[key]
        self._idle[key] = now

    def remove(self, key: K) -> None:
        """Forget ``key`` (the session closed). Unknown keys are ignored."""
        self._idle.pop(key, None)
        self._busy.pop(key, None)

    def last_active(self, key: K) -> float | None:
        """When an idle session was last active; None if it is busy or unknown."""
        return self._idle.get(key)

    def pop_expired(self, now: float, limit: int | None = None) -> list[K]:
        """Remove and return idle sessions whose last activity is ``ttl`` or more before ``now``.

        Oldest first; at most ``limit`` of them (all when None), so a janitor can spread a big
        expiry over several sweeps.
        """
        cutoff = now - self.ttl
        expired: list[K] = []
        for key, last in self._idle.items():
            if last > cutoff or (limit is not None and len(expired) >= limit):
                break
            expired.append(key)
        for key in expired:
            del self._idle[key]
        return expired

    def pop_least_recent(self, n: int) -> list[K]:
        """Remove and return up to ``n`` idle sessions, least recently active first."""
        victims = list(_take(iter(self._idle), n))
        for key in victims:
            del self._idle[key]
        return victims

    def next_expiry(self) -> float | None:
        """When the oldest idle session expires, or None when no session is idle."""
        for last in self._idle.values():
            return last + self.ttl
        return None


def _take(keys: Iterator[K], n: int) -> Iterator[K]:
    for _, key in zip(range(n), keys, strict=False):
        yield key
