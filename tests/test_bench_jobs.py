"""The jobs benchmark's usage check counts usage rows per upstream call, so a double count is
found even when calls in flight at the kill recorded nothing (``bench/jobs.py``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from beamish.store import UsageEvent, open_store
from bench.jobs import USER, _CallNumbers, _rows_per_call, _usage_per_call
from tests.llm.providers._fake_llm_server import OPENAI_KEY, FakeLLMServer

pytestmark = pytest.mark.anyio


def test_a_double_count_is_found_beside_a_call_that_recorded_nothing() -> None:
    """Job 1's first call died in flight (no row) and its second was recorded twice: in
    total rows equal calls, per call it is one double count and one unrecorded call."""
    calls = Counter({"work-1": 2, "work-2": 1})
    rows = Counter({("work-1", 2): 2, ("work-2", 1): 1})
    assert sum(rows.values()) == sum(calls.values())
    assert _usage_per_call(calls, rows) == (1, 1)
    assert _usage_per_call(calls, Counter({("work-1", 2): 1, ("work-2", 1): 1})) == (0, 1)
    assert _usage_per_call(calls, Counter({("work-2", 2): 1})) == (1, 3)  # no such call


def test_the_upstream_answers_the_kth_call_of_a_job_with_k_tokens() -> None:
    """Through the fake upstream, each job's calls are numbered 1, 2, ... in their usage."""
    with FakeLLMServer() as upstream:
        upstream.reply = numbers = _CallNumbers()

        def call(prompt: str) -> int:
            answer = httpx.post(f"{upstream.openai_url}/chat/completions", json={
                "model": "model-a", "messages": [{"role": "user", "content": prompt}]},
                headers={"Authorization": f"Bearer {OPENAI_KEY}"}, timeout=10)
            return int(answer.json()["usage"]["completion_tokens"])

        assert [call("work 1"), call("work 2"), call("work 1")] == [1, 1, 2]
    assert numbers.calls == Counter({"work-1": 2, "work-2": 1})


async def test_rows_are_read_per_task_type_and_k(tmp_path: Path) -> None:
    """Ok rows of the bench user are grouped by (task type, completion tokens); other rows
    are counted apart, other users' left out."""
    database = tmp_path / "ledger.db"

    def row(n: int, task: str, k: int, **fields: object) -> UsageEvent:
        return UsageEvent.model_validate({
            "request_id": f"r{n}", "user_id": USER, "provider": "openai", "model": "m",
            "task_type": task, "completion_tokens": k, **fields})

    async with open_store(f"sqlite:///{database}") as store:
        await store.record_many([
            row(1, "work-1", 1), row(2, "work-1", 2), row(3, "work-1", 2),
            row(4, "work-2", 0, status="error"), row(5, "work-2", 1, user_id="eve")])
    assert _rows_per_call(database) == (Counter({("work-1", 1): 1, ("work-1", 2): 2}), 1)
