"""The worker process the jobs benchmark kills: it enqueues jobs and runs them until SIGKILL.

Usage: ``python -m bench._jobs_child DATABASE_URL OPENAI_URL LEASE_S JOBS WORKERS``. It
enqueues ``JOBS`` jobs for the bench user, prints ``enqueued``, and runs them with
``WORKERS`` workers against the upstream at ``OPENAI_URL`` until it is killed. Job ``N``'s
prompt is ``work N`` and its task type ``work-N``: the task type names the job in each
usage row its attempts record (``bench.jobs`` counts the rows per call with it).
"""

from __future__ import annotations

import asyncio
import sys

from beamish.application import Application
from tests.jobs._app import settings
from tests.jobs._worker_child import _Upstream

USER = "bench"


async def main(database_url: str, openai_url: str, lease_s: float, jobs: int,
               workers: int) -> None:
    """Enqueue, say so, then run until killed."""
    options = settings(database_url, _Upstream(openai_url), lease_s=lease_s,
                       max_unfinished_per_user=jobs + 1,
                       queues={"default": {"concurrency": workers}})
    async with Application(options) as app:
        await asyncio.gather(*(app.jobs.enqueue(prompt=f"work {index}", user_id=USER,
                                                task_type=f"work-{index}")
                               for index in range(jobs)))
        print("enqueued", flush=True)
        await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]),
                     int(sys.argv[5])))
