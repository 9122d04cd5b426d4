"""ExponentialBackoff: exact waits, caps, jitter and give-up counts, without an event loop."""

from __future__ import annotations

import math

import pytest

from beamish.runtime import ExponentialBackoff, Jitter


def test_ceilings_grow_by_the_factor_up_to_the_cap() -> None:
    """Retry n waits at most base * factor ** (n - 1), never more than cap."""
    assert [ExponentialBackoff(base=0.5, cap=3.0).ceiling(n) for n in range(1, 6)] == [
        0.5, 1.0, 2.0, 3.0, 3.0]
    assert [ExponentialBackoff(base=1.0, factor=3.0).ceiling(n) for n in range(1, 5)] == [
        1.0, 3.0, 9.0, 27.0]


def test_a_factor_of_one_waits_the_same_every_time() -> None:
    """factor=1 is a constant wait."""
    assert [ExponentialBackoff(base=0.25, factor=1.0).ceiling(n) for n in (1, 2, 50)] == [
        0.25, 0.25, 0.25]


def test_huge_retry_counts_reach_the_cap_without_overflow() -> None:
    """Far past the cap, the ceiling is the cap (and infinity with no cap), not an error."""
    assert ExponentialBackoff(base=1.0, cap=30.0).ceiling(100_000) == 30.0
    assert ExponentialBackoff(base=1.0).ceiling(100_000) == math.inf


def test_a_zero_base_never_waits() -> None:
    """base=0 waits 0 at every retry, even where the factor would overflow."""
    assert [ExponentialBackoff(base=0.0, cap=0.0).delay(n) for n in (1, 2, 100_000)] == [
        0.0, 0.0, 0.0]


def test_without_jitter_the_wait_is_the_ceiling_and_random_is_not_called() -> None:
    """Jitter.NONE waits the ceiling exactly and never asks the random source."""
    def no_random() -> float:
        raise AssertionError("called")

    backoff = ExponentialBackoff(base=0.1, cap=0.5)
    assert [backoff.delay(n, no_random) for n in range(1, 5)] == [0.1, 0.2, 0.4, 0.5]


def test_full_jitter_scales_the_ceiling_by_one_random_draw() -> None:
    """Jitter.FULL waits random() times the ceiling: uniform in [0, ceiling)."""
    draws = iter([0.0, 0.25, 0.5])
    backoff = ExponentialBackoff(base=1.0, cap=30.0, jitter=Jitter.FULL)
    assert [backoff.delay(3, lambda: next(draws)) for _ in range(3)] == [0.0, 1.0, 2.0]


def test_full_jitter_uses_the_module_random_by_default() -> None:
    """Without a random source, full jitter draws from random.random: within [0, ceiling)."""
    backoff = ExponentialBackoff(base=1.0, jitter=Jitter.FULL)
    assert all(0.0 <= backoff.delay(3) < 4.0 for _ in range(100))


def test_attempts_count_every_try_and_none_never_gives_up() -> None:
    """attempts=3 gives up at the third failure; None never does."""
    limited = ExponentialBackoff(base=1.0, attempts=3)
    assert [limited.gives_up(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert ExponentialBackoff(base=1.0).gives_up(10**9) is False


@pytest.mark.parametrize(("options", "message"), [
    ({"base": -1.0}, "base >= 0"),
    ({"base": 1.0, "factor": 0.5}, "factor >= 1"),
    ({"base": 1.0, "cap": -1.0}, "cap >= 0"),
    ({"base": math.nan}, "base >= 0"),
    ({"base": 1.0, "attempts": 0}, "attempts >= 1"),
])
def test_impossible_options_are_refused(options: dict[str, float], message: str) -> None:
    """Negative waits, shrinking factors, NaN and zero attempts raise ValueError."""
    with pytest.raises(ValueError, match=message):
        ExponentialBackoff(**options)  # type: ignore[arg-type]
