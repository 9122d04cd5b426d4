"""Feedback rates answers: only completed outputs take it, each user reads their own rating
back, and the stats count completed outputs only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from beamish.jobs import JobNotFoundError, OutputForbiddenError, OutputNotCompletedError
from tests.jobs._app import running
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault

pytestmark = pytest.mark.anyio


async def test_only_a_completed_output_can_be_rated(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """Rating a pending, a failed or a cancelled output is an OutputNotCompletedError saying
    to rate it once completed; nothing is stored, no feedback event is published, and the
    stats count only the completed output's rating."""
    later = datetime.now(UTC) + timedelta(hours=1)
    fake_llm.script(Fault.error(400))
    async with running(tmp_path, fake_llm) as (app, events):
        failed = await app.jobs.enqueue(user_id="ada", prompt="refused")
        await events.wait("failed", job_id=failed.job_id)
        done = await app.jobs.enqueue(user_id="ada", prompt="fine")
        await events.wait("completed", job_id=done.job_id)
        pending = await app.jobs.enqueue(user_id="ada", prompt="later", run_at=later)
        cancelled = await app.jobs.enqueue(user_id="ada", prompt="never", run_at=later)
        await app.jobs.cancel(cancelled.job_id, user_id="ada")
        refusals = []
        for handle in (pending, failed, cancelled):
            with pytest.raises(OutputNotCompletedError) as refused:
                await app.jobs.set_feedback(handle.output_id, user_id="ada", rating="down")
            refusals.append(refused.value)
            assert await app.jobs.get_feedback(handle.output_id, user_id="ada") is None
        await app.jobs.set_feedback(done.output_id, user_id="ada", rating="up")
        stats = await app.jobs.feedback_stats()
    assert [r.status for r in refusals] == ["pending", "failed", "cancelled"]
    assert "rate it once it has completed" in str(refusals[0])
    assert len(events.of("feedback")) == 1
    assert [(s.model, s.up, s.down) for s in stats] == [("model-a", 1, 0)]


async def test_a_user_reads_their_own_rating_back(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """get_feedback is None before a rating, then the rating (replaced by a second); another
    user's output is forbidden and an unknown one not found."""
    async with running(tmp_path, fake_llm) as (app, events):
        handle = await app.jobs.enqueue(user_id="ada", prompt="x")
        await events.wait("completed", job_id=handle.job_id)
        before = await app.jobs.get_feedback(handle.output_id, user_id="ada")
        await app.jobs.set_feedback(handle.output_id, user_id="ada", rating="up")
        await app.jobs.set_feedback(handle.output_id, user_id="ada", rating="down",
                                    reason="too long")
        after = await app.jobs.get_feedback(handle.output_id, user_id="ada")
        with pytest.raises(OutputForbiddenError):
            await app.jobs.get_feedback(handle.output_id, user_id="eve")
        with pytest.raises(JobNotFoundError):
            await app.jobs.get_feedback("f" * 32, user_id="ada")
    assert before is None
    assert after is not None
    assert (after.output_id, after.user_id, after.rating, after.reason) == (
        handle.output_id, "ada", "down", "too long")
