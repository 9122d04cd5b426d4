"""The retry policy without I/O: what is retried, exponential full-jitter waits, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from beamish.llm.errors import (
    BadRequestError,
    ProviderCallError,
    ProviderNotConfiguredError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    StreamBrokenError,
    UnauthorizedError,
)
from beamish.llm.providers import Backoff, RetrySchedule, is_retryable, parse_retry_after


def _error(kind: type[ProviderCallError], retry_after: float | None = None) -> ProviderCallError:
    return kind("failed", provider="p", model="m", retry_after=retry_after)


@pytest.mark.parametrize("kind", [RateLimitedError, ProviderUnavailableError,
                                  ProviderTimeoutError])
def test_transient_failures_are_retryable(kind: type[ProviderCallError]) -> None:
    """429, 5xx/connection failures and timeouts may pass on their own: retried."""
    assert is_retryable(_error(kind))


@pytest.mark.parametrize("kind", [UnauthorizedError, BadRequestError, StreamBrokenError,
                                  ProviderNotConfiguredError])
def test_permanent_failures_are_not_retryable(kind: type[ProviderCallError]) -> None:
    """A refused key, a bad request, a broken stream or a missing provider fail alike again."""
    assert not is_retryable(_error(kind))


def test_ceiling_doubles_from_base_up_to_cap() -> None:
    """The longest wait before retry n is base * 2**(n-1), never above the cap."""
    backoff = Backoff(base_s=0.5, cap_s=3.0)
    assert [backoff.ceiling(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_huge_retry_numbers_stay_at_the_cap() -> None:
    """The exponent is bounded, so a thousandth retry waits the cap, not an overflow."""
    assert Backoff(base_s=1.0, cap_s=30.0).ceiling(1000) == 30.0


def test_full_jitter_spreads_the_wait_over_zero_to_ceiling() -> None:
    """The wait is jitter * ceiling: 0 at jitter 0, the ceiling's fraction otherwise."""
    backoff = Backoff(base_s=1.0, cap_s=30.0)
    assert backoff.delay(3, None, 0.0) == 0.0
    assert backoff.delay(3, None, 0.25) == 1.0
    assert backoff.delay(3, None, 0.999) == pytest.approx(3.996)


def test_retry_after_is_obeyed_exactly() -> None:
    """A provider's Retry-After replaces the jittered wait, even above the cap."""
    backoff = Backoff(base_s=1.0, cap_s=2.0, max_retry_after_s=60.0)
    assert backoff.delay(1, 7.0, 0.5) == 7.0


def test_retry_after_beyond_the_limit_gives_up() -> None:
    """Asked to wait longer than max_retry_after_s, the client gives up (and falls back)."""
    assert Backoff(max_retry_after_s=60.0).delay(1, 61.0, 0.5) is None


@pytest.mark.parametrize(("base", "cap", "limit"), [(0.0, 1.0, 1.0), (2.0, 1.0, 1.0),
                                                    (1.0, 2.0, -1.0)])
def test_backoff_rejects_nonsense(base: float, cap: float, limit: float) -> None:
    """A non-positive base, a cap below the base or a negative limit is refused."""
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(base_s=base, cap_s=cap, max_retry_after_s=limit)


def test_schedule_allows_max_retries_then_gives_up() -> None:
    """Two retries allowed: two waits (doubling), then None."""
    schedule = RetrySchedule(Backoff(base_s=1.0, cap_s=30.0), max_retries=2, random=lambda: 1.0)
    error = _error(ProviderUnavailableError)
    assert [schedule.next_delay(error) for _ in range(3)] == [1.0, 2.0, None]
    assert schedule.retries == 2


def test_schedule_does_not_retry_permanent_failures() -> None:
    """A bad request ends the schedule at once, retries left or not."""
    schedule = RetrySchedule(Backoff(), max_retries=5, random=lambda: 0.5)
    assert schedule.next_delay(_error(BadRequestError)) is None
    assert schedule.retries == 0


def test_schedule_uses_the_errors_retry_after() -> None:
    """A rate limit with retry_after=3 waits exactly 3 s."""
    schedule = RetrySchedule(Backoff(), max_retries=1, random=lambda: 0.5)
    assert schedule.next_delay(_error(RateLimitedError, retry_after=3.0)) == 3.0


def test_zero_max_retries_never_retries() -> None:
    """max_retries=0 makes one try only."""
    schedule = RetrySchedule(Backoff(), max_retries=0, random=lambda: 0.5)
    assert schedule.next_delay(_error(RateLimitedError)) is None


def test_parse_retry_after_forms() -> None:
    """retry-after-ms wins; retry-after takes seconds or an HTTP date; garbage is ignored."""
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}, now) == 1.5
    assert parse_retry_after({"retry-after": "2"}, now) == 2.0
    assert parse_retry_after({"retry-after": "Wed, 01 Jan 2025 12:00:30 GMT"}, now) == 30.0
    assert parse_retry_after({"retry-after": "Wed, 01 Jan 2025 11:00:00 GMT"}, now) == 0.0
    assert parse_retry_after({"retry-after": "soon"}, now) is None
    assert parse_retry_after({"retry-after": "-3"}, now) is None
    assert parse_retry_after({}, now) is None
