"""Retry decisions without I/O: which failures to retry, and how long to wait first.

Only failures that may pass on their own are retried: rate limits (429), server errors
(5xx), timeouts and refused or dropped connections. A bad request or a refused key fails the
same way every time, so the client moves straight on to the next model of the fallback chain.

The wait before retry *n* (1-based) is exponential with full jitter — uniform between 0 and
``min(cap_s, base_s * 2 ** (n - 1))`` — so clients that failed together do not retry together
(``beamish.runtime.ExponentialBackoff``, the rule every retry of beamish follows).
A provider that says how long to wait (``Retry-After``, or OpenAI's ``retry-after-ms``) is
obeyed exactly instead, up to ``max_retry_after_s``; a provider asking for longer is given up
on at once, so the fallback chain serves the caller rather than a long sleep.

``RetrySchedule`` is the state of one model's retries: feed it each failure and it answers
the seconds to wait, or None to give up. The client does the sleeping. Options of ``Backoff``
and their defaults: ``base_s`` 0.5, ``cap_s`` 30, ``max_retry_after_s`` 60.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from beamish.llm.errors import ProviderCallError, ProviderUnavailableError, RateLimitedError
from beamish.runtime.backoff import ExponentialBackoff, Jitter


def is_retryable(error: ProviderCallError) -> bool:
    """Whether ``error`` may pass on its own: 429, 5xx, timeouts, connection failures."""
    return isinstance(error, RateLimitedError | ProviderUnavailableError)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter, capped; see the module docstring."""

    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 60.0
    _exponential: ExponentialBackoff = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.max_retry_after_s < 0:
            raise ValueError(
                f"backoff needs 0 < base_s <= cap_s and max_retry_after_s >= 0; got "
                f"base_s={self.base_s}, cap_s={self.cap_s}, "
                f"max_retry_after_s={self.max_retry_after_s}")
        object.__setattr__(self, "_exponential", ExponentialBackoff(
            base=self.base_s, cap=self.cap_s, jitter=Jitter.FULL))

    def ceiling(self, retry: int) -> float:
        """The longest jittered wait before retry number ``retry`` (1-based)."""
        return self._exponential.ceiling(retry)

    def delay(self, retry: int, retry_after: float | None, jitter: float) -> float | None:
        """Seconds to wait before retry ``retry``, or None if the provider asks too long.

        Args:
            retry: which retry this is, from 1.
            retry_after: the seconds the provider asked for, if it did.
            jitter: a uniform random number in [0, 1).
        """
        if retry_after is None:
            return self._exponential.delay(retry, lambda: jitter)
        if retry_after > self.max_retry_after_s:
            return None
        return max(retry_after, 0.0)


class RetrySchedule:
    """The retries of one model: each failure in, the wait before the next try (or None) out."""

    __slots__ = ("_backoff", "_max_retries", "_random", "retries")

    def __init__(self, backoff: Backoff, max_retries: int, random: Callable[[], float]) -> None:
        """Allow ``max_retries`` retries after the first try, jittered by ``random()``."""
        self._backoff = backoff
        self._max_retries = max_retries
        self._random = random
        self.retries = 0

    def next_delay(self, error: ProviderCallError) -> float | None:
        """Seconds to wait before retrying after ``error``, or None to give up on this model."""
        if not is_retryable(error) or self.retries >= self._max_retries:
            return None
        delay = self._backoff.delay(self.retries + 1, error.retry_after, self._random())
        if delay is not None:
            self.retries += 1
        return delay


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """The wait a response asks for: ``retry-after-ms``, or ``retry-after`` seconds or date.

    ``headers`` must look names up case-insensitively, as httpx's do. Unparseable values are
    ignored (None), as RFC 9110 asks of recipients.
    """
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    return _seconds_until(value, now or datetime.now(UTC))


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _seconds_until(http_date: str, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)
