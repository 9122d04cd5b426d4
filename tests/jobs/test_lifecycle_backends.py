"""A job's life through ``Application.jobs`` on both backends (a fresh SQLite file and a
fresh PostgreSQL database each): completed with its usage, retried on an answer that is not
JSON, cancelled while running, re-run and rated. The other app-level tests run on SQLite;
these keep the same paths honest on PostgreSQL, where claims, finishes and events differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from anyio import to_thread

from tests.jobs._app import WAIT_S, openai_answer, running
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault

pytestmark = pytest.mark.anyio


async def test_a_job_completes_retries_is_cancelled_re_run_and_rated(
        tmp_path: Path, fake_llm: FakeLLMServer, store_url: str) -> None:
    """Each transition on this backend, with usage once per attempt."""
    fake_llm.script(Fault.raw(openai_answer("not json")))
    async with running(tmp_path, fake_llm, database_url=store_url,
                       queues={"default": {"concurrency": 1}}) as (app, events):
        handle = await app.jobs.enqueue(prompt="title?", user_id="ada", format="json",
                                        schema={"type": "object"})
        fake_llm.reply = '{"title": "ok"}'
        output = await app.jobs.wait(handle.output_id, user_id="ada", timeout=WAIT_S)
        assert events.kinds(handle.job_id) == ["queued", "started", "retried", "started",
                                               "completed"]
        assert (output.status, output.attempts, json.loads(output.parsed_output or "")) == (
            "completed", 2, {"title": "ok"})
        assert (await app.store.usage_totals(user_id="ada")).requests == 2

        again = await app.jobs.rerun(handle.output_id, user_id="ada")
        rerun = await app.jobs.wait(again.output_id, user_id="ada", timeout=WAIT_S)
        assert (rerun.status, rerun.parent_output_id, rerun.relation) == (
            "completed", handle.output_id, "rerun")
        await app.jobs.set_feedback(handle.output_id, user_id="ada", rating="up")
        [stats] = await app.jobs.feedback_stats()
        assert (stats.up, stats.down, stats.model) == (1, 0, "model-a")

        fake_llm.script(Fault.hang())
        stuck = await app.jobs.enqueue(prompt="hang", user_id="ada")
        assert await to_thread.run_sync(fake_llm.wait_for_requests, 4, WAIT_S)
        cancelled = await app.jobs.cancel(stuck.job_id, user_id="ada")
        after = await app.jobs.enqueue(prompt="after", user_id="ada")
        assert (await app.jobs.wait(after.output_id, user_id="ada",
                                    timeout=WAIT_S)).status == "completed"
    assert cancelled.status == "cancelled"
    assert "completed" not in events.kinds(stuck.job_id)
