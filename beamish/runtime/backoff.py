"""Exponential backoff without I/O: how long to wait before each retry, and when to give up.

Every part of beamish that retries something waits by this one rule: the usage recorder
retrying a batch, the LLM client retrying a provider, and jobs to come. The caller counts the
failures and does the sleeping; this module only answers numbers::

    backoff = ExponentialBackoff(base=0.5, cap=30.0, jitter=Jitter.FULL, attempts=3)
    backoff.ceiling(1), backoff.ceiling(2), backoff.ceiling(3)   # 0.5, 1.0, 2.0
    backoff.delay(2, random=lambda: 0.25)                        # 0.25: a quarter of 1.0
    backoff.gives_up(3)                                          # True: three tries failed

The wait before retry *n* (1-based) is at most ``min(cap, base * factor ** (n - 1))`` (its
*ceiling*). Without jitter it is the ceiling itself; with full jitter it is uniform between 0
and the ceiling ("full jitter" of the AWS Architecture Blog's "Exponential Backoff And
Jitter"), so clients that failed together do not retry together. The random source is an
argument, so tests pass a constant and get exact values.

Options and their defaults: ``base`` (required, seconds, at least 0), ``factor`` 2 (at least
1), ``cap`` infinity (seconds, at least 0), ``jitter`` ``Jitter.NONE``, ``attempts`` None
(tries in all, the first included; None for no limit).
"""

from __future__ import annotations

import enum
import math
import random as _random
from collections.abc import Callable
from dataclasses import dataclass


class Jitter(enum.Enum):
    """How a wait is drawn below its ceiling."""

    NONE = "none"
    """The ceiling itself."""
    FULL = "full"
    """Uniform between 0 and the ceiling."""


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """Exponential backoff, capped, with optional full jitter; see the module docstring."""

    base: float
    factor: float = 2.0
    cap: float = math.inf
    jitter: Jitter = Jitter.NONE
    attempts: int | None = None

    def __post_init__(self) -> None:
        if not (self.base >= 0 and self.factor >= 1 and self.cap >= 0):
            raise ValueError(
                f"backoff needs base >= 0, factor >= 1 and cap >= 0; got base={self.base}, "
                f"factor={self.factor}, cap={self.cap}")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError(f"backoff needs attempts >= 1 or None; got {self.attempts}")

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry number ``retry`` (1-based)."""
        if self.base == 0:
            return 0.0
        try:
            grown = self.base * float(self.factor) ** max(retry - 1, 0)
        except OverflowError:  # far past any cap
            grown = math.inf
        return min(self.cap, grown)

    def delay(self, retry: int, random: Callable[[], float] = _random.random) -> float:
        """Seconds to wait before retry number ``retry`` (1-based).

        Args:
            retry: which retry this is, from 1.
            random: uniform numbers in [0, 1); called once, and only with full jitter.
        """
        ceiling = self.ceiling(retry)
        if self.jitter is Jitter.NONE:
            return ceiling
        return random() * ceiling

    def gives_up(self, failures: int) -> bool:
        """Whether ``failures`` failed tries use up ``attempts`` (never with None)."""
        return self.attempts is not None and failures >= self.attempts


__all__ = ["ExponentialBackoff", "Jitter"]
