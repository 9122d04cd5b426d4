"""Queues run at most their concurrency at once, and a busy queue holds no other back (on
both backends). Calls are held at the fake upstream, so nothing here waits on time."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from anyio import to_thread

from beamish.jobs import JobEvent
from tests.jobs._app import WAIT_S, running
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault

pytestmark = pytest.mark.anyio

_ENDS = frozenset({"completed", "retried", "failed", "cancelled"})


class InFlight:
    """Each queue's jobs between their ``started`` and their end event, and the most seen
    at once (a worker publishes the end before it takes its next job)."""

    def __init__(self) -> None:
        self.running: dict[str, set[int]] = defaultdict(set)
        self.most: dict[str, int] = defaultdict(int)

    def __call__(self, event: JobEvent) -> None:
        if event.queue is None or event.job_id is None:
            return
        running = self.running[event.queue]
        if event.event == "started":
            running.add(event.job_id)
            self.most[event.queue] = max(self.most[event.queue], len(running))
        elif event.event in _ENDS:
            running.discard(event.job_id)


async def test_a_queue_runs_at_most_its_concurrency_and_holds_no_other_back(
        tmp_path: Path, store_url: str, fake_llm: FakeLLMServer) -> None:
    """default (concurrency 2) with five jobs whose first two calls hang: exactly two run,
    the other three wait queued; a high job meanwhile runs and completes. Once the held
    calls are let go (and retried), all complete, never more than two default jobs at
    once."""
    fake_llm.script(Fault.hang(), Fault.hang())
    in_flight = InFlight()
    async with running(tmp_path, fake_llm, database_url=store_url) as (app, events):
        app.jobs.subscribe(in_flight)
        assert app.settings.jobs.queues["default"].concurrency == 2
        waiting = [await app.jobs.enqueue(prompt=f"d{n}", user_id="ada") for n in range(5)]
        assert await to_thread.run_sync(fake_llm.wait_for_requests, 2, WAIT_S)
        urgent = await app.jobs.enqueue(prompt="h", user_id="ada", queue="high")
        await events.wait("completed", job_id=urgent.job_id)
        held = in_flight.running["default"]
        assert len(held) == 2
        assert [events.kinds(h.job_id) for h in waiting if h.job_id not in held] == [
            ["queued"]] * 3
        assert len(fake_llm.requests) == 3  # the two held and the high job's
        fake_llm.reset()  # the held calls fail (503) and are retried; the rest answer
        await events.wait("completed", count=6)
    assert in_flight.most == {"default": 2, "high": 1}
    assert len(events.of("retried")) == 2
