"""A clock that moves only when a test says so (cache TTLs, session idleness)."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds, starting at ``start``; ``advance`` moves them forward."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds
