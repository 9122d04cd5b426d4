"""Several processes share one queue: on PostgreSQL a new job wakes idle workers by NOTIFY."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.jobs._app import running
from tests.llm.providers._fake_llm_server import FakeLLMServer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)  # SQLite cannot notify
async def test_a_job_enqueued_elsewhere_wakes_idle_workers_without_polling(
        tmp_path: Path, store_url: str, fake_llm: FakeLLMServer) -> None:
    """A worker application that polls once an hour runs a job another application
    enqueued at once: PostgreSQL's NOTIFY wakes it."""
    async with running(tmp_path, fake_llm, database_url=store_url,
                       poll_interval_s=3600.0) as (_, worker_events), \
            running(tmp_path, fake_llm, database_url=store_url, enabled=False) as (
            enqueuer, _):
        handle = await enqueuer.jobs.enqueue(prompt="x", user_id="ada")
        [completed] = await worker_events.wait("completed", job_id=handle.job_id)
        output = await enqueuer.jobs.get_output(handle.output_id, user_id="ada")
    assert completed.attempt == 1
    assert output.status == "completed"
