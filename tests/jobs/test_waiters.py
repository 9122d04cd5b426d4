"""``Waiters`` without a loop: an output's end wakes its waiters only, and waits are
bounded per user and per process."""

from __future__ import annotations

from typing import Any

import pytest

from beamish.jobs import WaitLimitError
from beamish.jobs.models import JobEvent
from beamish.jobs.waiters import Waiters


def _event(kind: Any, status: Any, output_id: str) -> JobEvent:
    return JobEvent(event=kind, job_id=1, output_id=output_id, user_id="ada", status=status)


def test_an_output_s_end_wakes_its_waiters_and_no_other() -> None:
    """started and retried wake nobody; completed wakes both waiters of its output, not
    the waiter of another; each end status wakes."""
    waiters = Waiters(max_per_user=4, max_total=10)
    first, second = waiters.add("o1", "ada"), waiters.add("o1", "bob")
    other = waiters.add("o2", "ada")
    waiters.wake(_event("started", "processing", "o1"))
    waiters.wake(_event("retried", "pending", "o1"))
    assert [w.ended.is_set() for w in (first, second, other)] == [False, False, False]
    waiters.wake(_event("completed", "completed", "o1"))
    assert [w.ended.is_set() for w in (first, second, other)] == [True, True, False]
    for status in ("failed", "cancelled"):
        waiter = waiters.add(f"o-{status}", None)
        waiters.wake(_event(status, status, f"o-{status}"))
        assert waiter.ended.is_set()


def test_waits_are_bounded_per_user_and_per_process_until_one_ends() -> None:
    """Past max_per_user a user's wait is refused (another user's is not); past max_total
    anyone's is, a wait naming no user too; removing a waiter frees its place, once."""
    waiters = Waiters(max_per_user=2, max_total=3)
    ada = [waiters.add("o1", "ada"), waiters.add("o2", "ada")]
    with pytest.raises(WaitLimitError, match=r"user 'ada' .*max_waits_per_user") as refused:
        waiters.add("o3", "ada")
    assert (refused.value.user_id, refused.value.limit) == ("ada", 2)
    waiters.add("o3", "bob")
    for user in ("carol", None):
        with pytest.raises(WaitLimitError, match=r"\[jobs\] max_waits\)"):
            waiters.add("o4", user)
    assert (waiters.count(), waiters.count("ada"), waiters.count("bob")) == (3, 2, 1)
    waiters.remove(ada[0])
    waiters.remove(ada[0])
    assert (waiters.count(), waiters.count("ada")) == (2, 1)
    waiters.add("o5", "ada")
    waiters.wake(_event("completed", "completed", "o1"))  # its waiter is gone: no error
    assert not ada[0].ended.is_set()
