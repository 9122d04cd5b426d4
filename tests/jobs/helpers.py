"""Small builders shared by the job tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from beamish.store.job_models import AttemptResult, JobRecord, NewJob

T0 = datetime(2030, 1, 1, tzinfo=UTC)
"""A fixed wall-clock time the store tests pass as ``now``."""


def new_job(*, queue: str = "default", priority: int = 0, run_at: datetime = T0,
            unique_key: str | None = None, user_id: str = "ada", max_attempts: int = 3,
            **fields: Any) -> NewJob:
    """A raw-prompt job for ``user_id``."""
    return NewJob(queue=queue, priority=priority, max_attempts=max_attempts, run_at=run_at,
                  scheduled=run_at > T0, unique_key=unique_key, user_id=user_id,
                  output_id=uuid.uuid4().hex,
                  args={"user_id": user_id, "prompt": "hello"}, task_type="chat", **fields)


def lease(seconds: float = 30) -> datetime:
    """The end of a lease taken at ``T0``."""
    return T0 + timedelta(seconds=seconds)


def result(job: JobRecord, state: Any, *, leased_by: str = "w1", **fields: Any,
           ) -> AttemptResult:
    """How ``job``'s attempt ended, as its worker writes it."""
    return AttemptResult(job_id=job.id, output_id=job.output_id, leased_by=leased_by,
                         state=state, **fields)
