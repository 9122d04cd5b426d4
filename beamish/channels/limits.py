"""Per-socket and per-user limits as plain arithmetic: a token bucket and a bounded queue.

Nothing here reads a clock or touches a socket: the caller passes ``now`` (any monotonic
seconds, e.g. ``loop.time()``) and acts on the answers.

**Message rate** (:class:`RateLimit`, :class:`TokenBucket`, :class:`RateLimiter`). A bucket
holds up to ``burst`` tokens and refills at ``per_second``; each channel message takes one.
An empty bucket means the message is refused with an error reply
``{"reason": "rate_limited", "retry_after_ms": ...}`` (:func:`rate_limited_response`) and
does not reach the channel. :class:`RateLimiter` keeps one bucket per key (the user id), so
all of a user's sockets share one budget; a bucket that has refilled completely is dropped,
because a fresh one behaves identically.

**Outbound queue** (:class:`OutboundQueue`). Frames waiting to be written to one client. Its
bound is in frames and in bytes (text frames count their characters); :meth:`~OutboundQueue.put`
answers False instead of queueing past either. The socket then lets its writer catch up if the
writer merely has not run yet (a burst), and closes the connection as a slow consumer if the
writer is stuck sending (the client does not read).

Options (defaults in brackets): :class:`RateLimit` ``per_second`` (> 0) and ``burst`` [1]
(>= 1); :class:`OutboundQueue` ``max_frames`` [1024] and ``max_bytes`` [8 MiB].
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Final

from beamish.channels.errors import InvalidOptionError

RATE_LIMITED: Final = "rate_limited"
DEFAULT_OUTBOUND_FRAMES: Final = 1024
DEFAULT_OUTBOUND_BYTES: Final = 8 * 1024 * 1024
_MIN_PRUNE_AT: Final = 1024


def _check_rate(name: str, value: object) -> None:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value <= 0):
        raise InvalidOptionError(name, value, "a finite number > 0")


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidOptionError(name, value, "an int >= 1")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``burst`` messages at once, refilled at ``per_second`` messages a second."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        _check_rate("per_second", self.per_second)
        _check_count("burst", self.burst)


class TokenBucket:
    """One token bucket; starts full at ``now``."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.rate = float(limit.per_second)
        self.capacity = float(limit.burst)
        self.tokens = self.capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:  # a clock read out of order never takes tokens back
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if there are that many at ``now``; say whether it did."""
        self._refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def retry_after(self, now: float, cost: float = 1.0) -> float:
        """Seconds from ``now`` until ``cost`` tokens are available (0.0 if they are)."""
        self._refill(now)
        return max(0.0, (cost - self.tokens) / self.rate)

    def is_full(self, now: float) -> bool:
        """Whether the bucket has refilled completely at ``now``."""
        self._refill(now)
        return self.tokens >= self.capacity


class RateLimiter:
    """One :class:`TokenBucket` per key, created on first use."""

    __slots__ = ("_buckets", "_prune_at", "limit")

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._prune_at = _MIN_PRUNE_AT

    def allow(self, key: Hashable, now: float) -> bool:
        """Take one token from ``key``'s bucket at ``now``; False if it is empty."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._prune_at:
                self.prune(now)
            bucket = self._buckets[key] = TokenBucket(self.limit, now)
        return bucket.take(now)

    def retry_after(self, key: Hashable, now: float) -> float:
        """Seconds from ``now`` until ``key`` may send again (0.0 if it may now)."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.retry_after(now)

    def prune(self, now: float) -> int:
        """Forget every bucket that is full at ``now``; return how many were dropped."""
        full = [key for key, bucket in self._buckets.items() if bucket.is_full(now)]
        for key in full:
            del self._buckets[key]
        # Amortised: the next prune waits until the table has doubled again.
        self._prune_at = max(_MIN_PRUNE_AT, 2 * len(self._buckets))
        return len(full)

    def __len__(self) -> int:
        return len(self._buckets)


def rate_limited_response(retry_after: float) -> dict[str, Any]:
    """The error reply's response for a refused message: reason and whole milliseconds."""
    return {"reason": RATE_LIMITED, "retry_after_ms": math.ceil(retry_after * 1000)}


class OutboundQueue:
    """A FIFO of frames for one client, bounded in frames and bytes."""

    __slots__ = ("_frames", "max_bytes", "max_frames", "size")

    def __init__(
        self,
        *,
        max_frames: int = DEFAULT_OUTBOUND_FRAMES,
        max_bytes: int = DEFAULT_OUTBOUND_BYTES,
    ) -> None:
        _check_count("max_frames", max_frames)
        _check_count("max_bytes", max_bytes)
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        # None while empty: an idle connection keeps no deque (~600 bytes) around.
        self._frames: deque[str | bytes] | None = None
        #: Bytes waiting (characters for text frames).
        self.size = 0

    def put(self, frame: str | bytes) -> bool:
        """Queue ``frame``; False, queueing nothing, when it would break a bound.

        A single frame larger than ``max_bytes`` is still accepted into an empty queue, so
        that one big reply can never wedge a connection.
        """
        size = len(frame)
        frames = self._frames
        if frames is None:
            self._frames = deque((frame,))
            self.size = size
            return True
        if frames and (len(frames) >= self.max_frames or self.size + size > self.max_bytes):
            return False
        frames.append(frame)
        self.size += size
        return True

    def pop(self) -> str | bytes | None:
        """The oldest frame, or None if the queue is empty."""
        frames = self._frames
        if not frames:
            return None
        frame = frames.popleft()
        self.size -= len(frame)
        if not frames:
            self._frames = None
        return frame

    def clear(self) -> int:
        """Drop every waiting frame; return how many there were."""
        count = len(self)
        self._frames = None
        self.size = 0
        return count

    def __len__(self) -> int:
        return 0 if self._frames is None else len(self._frames)

    def describe(self) -> str:
        """The queue's fill, for a close reason: "N frames / B bytes"."""
        return f"{len(self)} frames / {self.size} bytes"


__all__ = [
    "DEFAULT_OUTBOUND_BYTES",
    "DEFAULT_OUTBOUND_FRAMES",
    "RATE_LIMITED",
    "OutboundQueue",
    "RateLimit",
    "RateLimiter",
    "TokenBucket",
    "rate_limited_response",
]
