"""The order of one job's events (``beamish.jobs.ordering``), without a loop: ranks, and the
bounded memory that drops what is older than what was already shown."""

from __future__ import annotations

from typing import Any

import pytest

from beamish.jobs.models import JobEvent
from beamish.jobs.ordering import NewestEvents, rank


def _event(kind: Any, attempt: int = 0, output_id: str = "o1") -> JobEvent:
    return JobEvent(event=kind, job_id=1, output_id=output_id, user_id="ada",
                    status="processing", attempt=attempt)


def test_a_job_s_events_rank_in_the_order_they_happen() -> None:
    """queued < started(1) < retried(1) < started(2) < each end; feedback has no rank."""
    story = [_event("queued"), _event("started", 1), _event("retried", 1),
             _event("started", 2), _event("retried", 2), _event("started", 3)]
    ranks = [r for event in story if (r := rank(event)) is not None]
    assert len(ranks) == len(story)
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)
    for end in ("completed", "failed", "cancelled"):
        end_rank = rank(_event(end, 1))
        assert end_rank is not None
        assert all(end_rank > r for r in ranks)
        assert end_rank == rank(_event(end, 3))
    assert rank(_event("feedback")) is None


def test_an_event_older_than_the_newest_admitted_is_refused() -> None:
    """started overtaking queued (another process ran the job) leaves queued out; an
    attempt's end after the next attempt started is out too; the same event twice once."""
    newest = NewestEvents()
    arrived = [_event("started", 1), _event("queued"), _event("retried", 1),
               _event("started", 2), _event("retried", 1), _event("started", 2),
               _event("completed", 2), _event("started", 2)]
    assert [newest.admit(event) for event in arrived] == [
        True, False, True, True, False, False, True, False]


def test_an_end_is_final_and_feedback_always_passes() -> None:
    """After cancelled, a late started or retried of any attempt is refused; feedback
    events of the output pass, every time."""
    newest = NewestEvents()
    assert newest.admit(_event("cancelled", 0))
    assert not newest.admit(_event("started", 1))
    assert not newest.admit(_event("retried", 4))
    assert not newest.admit(_event("failed", 1))
    assert [newest.admit(_event("feedback")) for _ in range(2)] == [True, True]


def test_outputs_are_remembered_apart_and_the_least_recent_forgotten() -> None:
    """Each output has its own newest event; past max_outputs the output seen least
    recently is forgotten (its next event passes as new), the others are kept."""
    newest = NewestEvents(max_outputs=2)
    assert newest.admit(_event("started", 1, "a"))
    assert newest.admit(_event("started", 1, "b"))
    assert not newest.admit(_event("queued", 0, "a"))  # a is now the most recent
    assert newest.admit(_event("started", 1, "c"))  # b is forgotten
    assert len(newest) == 2
    assert not newest.admit(_event("queued", 0, "a"))
    assert newest.admit(_event("queued", 0, "b"))


def test_a_memory_of_no_outputs_is_refused() -> None:
    """max_outputs below 1 is a ValueError naming it."""
    with pytest.raises(ValueError, match="max_outputs"):
        NewestEvents(max_outputs=0)
