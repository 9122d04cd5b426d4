"""A worker process killed with SIGKILL mid-job: its job runs again by itself, once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from beamish.store import open_store
from tests.jobs._app import WAIT_S, running
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 1.0


async def _start_then_kill(database_url: str, upstream: FakeLLMServer) -> tuple[int, str]:
    """Run the child until its job's call reaches the upstream, SIGKILL it; the job's ids."""
    command = [sys.executable, "-m", "tests.jobs._worker_child", database_url,
               upstream.openai_url, str(LEASE_S)]
    async with await anyio.open_process(command, cwd=ROOT, stderr=subprocess.DEVNULL) as child:
        assert child.stdout is not None
        text = ""
        with anyio.fail_after(WAIT_S):
            async for chunk in TextReceiveStream(child.stdout):
                text += chunk
                if "\n" in text:
                    break
        assert await anyio.to_thread.run_sync(upstream.wait_for_requests, 1, WAIT_S)
        child.kill()  # SIGKILL: no terminate, no lease given back
        await child.wait()
    _, job_id, output_id = text.split()
    return int(job_id), output_id


async def test_a_killed_worker_s_job_runs_again_once_its_lease_expires(
        tmp_path: Path, store_url: str, fake_llm: FakeLLMServer) -> None:
    """SIGKILL of the process running a job mid-call: a second application claims the job
    when the lease expires, with no rescue step, completes it once (attempt 2), and usage
    is counted once per attempt that finished a call."""
    fake_llm.script(Fault.hang())
    job_id, output_id = await _start_then_kill(store_url, fake_llm)
    fake_llm.reset()  # the held call is let go; the next ones answer
    async with running(tmp_path, fake_llm, database_url=store_url, lease_s=LEASE_S) as (
            app, events):
        [completed] = await events.wait("completed", job_id=job_id)
        output = await app.jobs.get_output(output_id, user_id="ada")
        assert (await app.store.get_job(job_id)).state == "completed"
    assert completed.attempt == 2
    assert (output.status, output.attempts, output.raw_response) == (
        "completed", 2, "you said: long work")
    assert len(events.of("completed")) == 1
    async with open_store(store_url) as store:
        usage = await store.usage_totals(user_id="ada")
    # The killed attempt died inside its call: it had nothing durable to record.
    assert (usage.requests, usage.errors) == (1, 0)
    assert len(fake_llm.requests) == 1
