"""An application whose LLM is the fake OpenAI-compatible upstream, and a recorder of job
events to wait on (state, not time)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from beamish.application import Application
from beamish.jobs import JobEvent, JobsSettings, QueueSettings
from beamish.llm.settings import LLMSettings, ProviderSettings
from beamish.settings import Settings
from tests.llm.providers._fake_llm_server import OPENAI_KEY, FakeLLMServer

WAIT_S = 30.0
"""Longest wait for an event a test expects (it normally comes in milliseconds)."""


def settings(database_url: str, upstream: FakeLLMServer, **jobs: Any) -> Settings:
    """Settings that send every call to ``upstream`` (no client retries) and run jobs with
    ``jobs`` over quick test defaults (no backoff, one worker per queue)."""
    llm = LLMSettings(default_provider="openai_compatible", default_model="model-a",
                      timeout_s=60, max_retries=0,
                      providers={"openai_compatible": ProviderSettings(
                          base_url=upstream.openai_url, api_key=SecretStr(OPENAI_KEY))})
    options: dict[str, Any] = {
        "backoff_base_s": 0.0, "poll_interval_s": 0.2, "lease_s": 30.0,
        "queues": {"high": QueueSettings(concurrency=1), "default": QueueSettings(
            concurrency=2), "low": QueueSettings(concurrency=1)}, **jobs}
    return Settings(database_url=database_url, llm=llm, jobs=JobsSettings(**options))


class Events:
    """Every job event of an application, and a way to wait for one."""

    def __init__(self) -> None:
        self.seen: list[JobEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: JobEvent) -> None:
        self.seen.append(event)
        self._changed.set()

    async def wait(self, kind: str, *, job_id: int | None = None, count: int = 1,
                   ) -> list[JobEvent]:
        """The first ``count`` events of ``kind`` (of ``job_id``), once they happened."""
        async with asyncio.timeout(WAIT_S):
            while len(found := self.of(kind, job_id)) < count:
                self._changed.clear()
                await self._changed.wait()
        return found[:count]

    def of(self, kind: str, job_id: int | None = None) -> list[JobEvent]:
        """The events of ``kind`` so far (of ``job_id``)."""
        return [e for e in self.seen if e.event == kind and job_id in (None, e.job_id)]

    def kinds(self, job_id: int) -> list[str]:
        """The kinds of ``job_id``'s events, in order."""
        return [e.event for e in self.seen if e.job_id == job_id]


@asynccontextmanager
async def running(tmp_path: Path, upstream: FakeLLMServer, *, database_url: str | None = None,
                  **jobs: Any) -> AsyncIterator[tuple[Application, Events]]:
    """An application on ``database_url`` (a SQLite file in ``tmp_path`` if None), with its
    events recorded."""
    url = database_url or f"sqlite:///{tmp_path / 'jobs.db'}"
    app = Application(settings(url, upstream, **jobs))
    async with app:
        events = Events()
        app.jobs.subscribe(events)
        yield app, events


def openai_answer(content: str) -> str:
    """A whole OpenAI chat completion whose answer is ``content``."""
    return json.dumps({
        "id": "chatcmpl-raw", "object": "chat.completion", "created": 0, "model": "model-a",
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": content}}]})
