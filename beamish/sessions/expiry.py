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

A session with a joined socket (a conversation channel) counts as a request in flight for as
long as the channel is joined (``Sessions.hold``): it is not evicted to make room for anyone,
nor expired under its user's open tab.

Whose session to evict. Sessions are keyed per user (``SessionKey``: user id, session id), so
one user's ids never collide with another's. ``SessionCensus`` counts each user's open
sessions: a user opening one beyond ``max_sessions_per_user`` evicts their own least recently
active idle session (``pop_least_recent_of``), never someone else's. At the global limit,
the victims are the idle sessions of users holding at least their cap first (``heavy``),
least recently active first, and only then anyone's (``pop_least_recent`` with ``prefer``).

Times are plain floats from the caller's clock (``loop.time()``), which keeps this module free
of I/O and lets its tests pass any time they like.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Generic, TypeAlias, TypeVar

K = TypeVar("K", bound=Hashable)

SessionKey: TypeAlias = tuple[str, str]
"""(user id, session id): a session's identity. Ids are chosen per user; the public API and
topics keep the bare session id and find the key from the caller's user id."""


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

    def pop_least_recent(self, n: int, prefer: Callable[[K], bool] | None = None) -> list[K]:
        """Remove and return up to ``n`` idle sessions, least recently active first.

        With ``prefer``, the idle sessions it accepts go first (least recent first among
        them), then the others. Without it this looks at ``n`` entries; with it, at every idle
        one in the worst case (the janitor passes it only while some user is at their cap).
        """
        victims: list[K] = []
        if prefer is not None:
            victims = [key for key in self._idle if prefer(key)][:n]
        if len(victims) < n:
            chosen = set(victims)
            victims += _take((key for key in self._idle if key not in chosen), n - len(victims))
        for key in victims:
            del self._idle[key]
        return victims

    def pop_least_recent_of(self, keys: Iterable[K]) -> K | None:
        """Remove and return the least recently active idle session among ``keys`` (None when
        each of them is busy or unknown)."""
        idle = self._idle
        oldest: K | None = None
        for key in keys:
            last = idle.get(key)
            if last is not None and (oldest is None or last < idle[oldest]):
                oldest = key
        if oldest is not None:
            del idle[oldest]
        return oldest

    def next_expiry(self) -> float | None:
        """When the oldest idle session expires, or None when no session is idle."""
        for last in self._idle.values():
            return last + self.ttl
        return None


class SessionCensus:
    """How many sessions each user has open, and who holds at least ``cap`` of them.

    Each session context counts itself in when it starts and out when it exits (however it
    exits), so the counts follow the live contexts without anyone scanning them.

    Args:
        cap: sessions per user (``max_sessions_per_user``); must be at least 1.
    """

    __slots__ = ("_counts", "_heavy", "cap")

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError(f"cap must be at least 1, got {cap}")
        self.cap = cap
        self._counts: dict[str, int] = {}
        self._heavy: set[str] = set()

    def opened(self, user_id: str) -> None:
        """A context of ``user_id`` started."""
        count = self._counts.get(user_id, 0) + 1
        self._counts[user_id] = count
        if count >= self.cap:
            self._heavy.add(user_id)

    def closed(self, user_id: str) -> None:
        """A context of ``user_id`` exited."""
        count = self._counts.get(user_id, 0) - 1
        if count <= 0:
            self._counts.pop(user_id, None)
        else:
            self._counts[user_id] = count
        if count < self.cap:
            self._heavy.discard(user_id)

    def count(self, user_id: str) -> int:
        """How many sessions ``user_id`` has open."""
        return self._counts.get(user_id, 0)

    def at_cap(self, user_id: str) -> bool:
        """Whether ``user_id`` holds ``cap`` sessions or more (opening one more evicts one
        of theirs)."""
        return self._counts.get(user_id, 0) >= self.cap

    @property
    def heavy(self) -> frozenset[str]:
        """The users holding ``cap`` sessions or more: evicted first under global pressure."""
        return frozenset(self._heavy)


def _take(keys: Iterator[K], n: int) -> Iterator[K]:
    for _, key in zip(range(n), keys, strict=False):
        yield key
