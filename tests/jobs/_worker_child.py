"""Child process of test_rescue: an application whose one worker runs a job until killed.

Usage: ``python -m tests.jobs._worker_child DATABASE_URL OPENAI_URL LEASE_S``. It enqueues
one job for ``ada`` and prints ``started <job id> <output id>`` once a worker has started
it; the upstream is expected to hold the call, so the job is mid-call when the parent sends
SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys

from beamish.application import Application
from beamish.jobs import JobEvent
from tests.jobs._app import settings
from tests.llm.providers._fake_llm_server import FakeLLMServer


class _Upstream(FakeLLMServer):
    """Only its URL: the parent runs the real server."""

    def __init__(self, openai_url: str) -> None:
        super().__init__()
        self._openai_url = openai_url

    @property
    def openai_url(self) -> str:
        return self._openai_url


async def main(database_url: str, openai_url: str, lease_s: float) -> None:
    """Enqueue, report the start, then wait to be killed."""
    options = settings(database_url, _Upstream(openai_url), lease_s=lease_s,
                       queues={"default": {"concurrency": 1}})
    async with Application(options) as app:
        started = asyncio.Event()

        def on(event: JobEvent) -> None:
            if event.event == "started":
                print(f"started {event.job_id} {event.output_id}", flush=True)
                started.set()

        app.jobs.subscribe(on)
        await app.jobs.enqueue(prompt="long work", user_id="ada")
        await started.wait()
        await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
