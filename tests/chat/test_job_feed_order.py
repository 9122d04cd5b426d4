"""The job feed never pushes a job's event older than one it pushed already: events of
other processes may cross this process's own, and a channel must not see a job go back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from beamish.application import Application
from beamish.chat.job_feed import JobFeed
from beamish.jobs import JobEvent
from beamish.runtime import call, start
from beamish.settings import Settings
from tests._inbox import Inbox

pytestmark = pytest.mark.anyio


def _event(kind: Any, job_id: int, attempt: int = 0) -> JobEvent:
    return JobEvent(event=kind, job_id=job_id, output_id=f"out-{job_id}", user_id="ada",
                    status="processing", attempt=attempt)


async def test_an_event_overtaken_by_a_later_one_of_its_job_is_not_pushed(
        tmp_path: Path) -> None:
    """started(1) of another process arriving before this process's queued: queued is
    left out; so are a retried(1) after started(2), anything after the end, and a second
    copy; other jobs' events and feedback pass; a feed remembering one output forgets the
    first job once a second is pushed."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}")
    async with Application(settings) as app:
        feed = JobFeed(app, max_outputs=1)
        channel = await start(Inbox, None)
        feed.follow("ada", channel)
        arrived = [_event("started", 1, 1), _event("queued", 1), _event("retried", 1, 1),
                   _event("started", 1, 2), _event("retried", 1, 1), _event("started", 1, 2),
                   _event("completed", 1, 2), _event("started", 1, 3),
                   _event("feedback", 1), _event("queued", 2), _event("queued", 1)]
        for event in arrived:
            app.jobs._ctx.deliver(event)  # as the notifier hands over another process's
        seen = await call(channel, "seen")
    assert [(push.payload["event"], push.payload["job_id"]) for push in seen] == [
        ("started", 1), ("retried", 1), ("started", 1), ("completed", 1), ("feedback", 1),
        ("queued", 2), ("queued", 1)]
