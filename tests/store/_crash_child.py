"""Child process of test_crash: records usage through a recorder, printing each ack, until killed.

Usage: ``python -m tests.store._crash_child URL``. The user ``ada`` with an ``openai`` config
must exist. Request ids are ``r000000``, ``r000001``, … so the parent knows every id that may
have been sent.
"""

from __future__ import annotations

import sys

import anyio

from beamish.store import UsageRecorder, open_store
from tests.store.helpers import usage

WORKERS = 32
TOTAL = 1_000_000  # far more than get written before the parent kills us


async def main(url: str) -> None:
    """Record from WORKERS concurrent tasks, printing ``ack <id>`` once each is durable."""
    async with open_store(url) as store, UsageRecorder(store, max_batch=16,
                                                       flush_interval=0.001) as recorder:

        async def worker(first: int) -> None:
            for i in range(first, TOTAL, WORKERS):
                await recorder.record(usage(f"r{i:06d}"))
                print(f"ack r{i:06d}", flush=True)

        async with anyio.create_task_group() as tg:
            for first in range(WORKERS):
                tg.start_soon(worker, first)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
