"""Several processes share one queue: on PostgreSQL a new job wakes idle workers by NOTIFY,
job events reach the other processes' listeners, and listening recovers when its
connection is lost."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from beamish.chat.job_feed import JobFeed
from beamish.jobs.event_log import error_code
from beamish.jobs.models import JobEvent
from beamish.runtime import call, start
from beamish.store import open_store
from beamish.store._postgres import _LISTEN_CHECK
from tests._inbox import Inbox
from tests.jobs._app import WAIT_S, Events, running
from tests.jobs.helpers import new_job
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault

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


class LogWatch(logging.Handler):
    """The messages of ``beamish.jobs``, and a way to wait for one (state, not time)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self._changed.set()

    async def wait(self, text: str) -> None:
        """Until a message containing ``text`` was logged."""
        async with asyncio.timeout(WAIT_S):
            while not any(text in message for message in self.messages):
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
def jobs_log() -> Iterator[LogWatch]:
    """The job tree's log, watched."""
    logger = logging.getLogger("beamish.jobs")
    watch, level = LogWatch(), logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(watch)
    yield watch
    logger.removeHandler(watch)
    logger.setLevel(level)


def _database(url: str) -> str:
    return url.partition("?")[0].rpartition("/")[2]


async def _terminate_listeners(admin: asyncpg.Connection, url: str) -> int:
    """End, from ``admin`` (another connection), the backends of ``url``'s database that
    LISTEN (as a server restart or an administrator would); how many."""
    ended = await admin.fetch(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'",
        _database(url))
    return len(ended)


async def _enqueue_elsewhere(url: str) -> int:
    """A job inserted by another store (as another process would); its id."""
    async with open_store(url) as other:
        return (await other.enqueue_job(new_job(run_at=datetime.now(UTC)))).job.id


async def _runs_on_notify(url: str, events: Events) -> None:
    """Jobs inserted elsewhere run, one after the other, though the workers poll once an
    hour: the second can only have been woken by its NOTIFY (the first may also have been
    claimed by the wake-up that follows listening again)."""
    for _ in range(2):
        job_id = await _enqueue_elsewhere(url)
        await events.wait("completed", job_id=job_id)


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_listening_again_after_the_listening_connection_is_terminated(
        tmp_path: Path, store_url: str, fake_llm: FakeLLMServer, jobs_log: LogWatch) -> None:
    """When the server ends the listening connection, the notifier listens again by itself;
    after that, a job inserted elsewhere wakes the idle workers at once again."""
    async with running(tmp_path, fake_llm, database_url=store_url,
                       poll_interval_s=3600.0) as (_, events):
        admin = await asyncpg.connect(store_url)
        try:
            assert await _terminate_listeners(admin, store_url) == 1
        finally:
            await admin.close()
        await jobs_log.wait("the connection listening for new jobs was lost")
        await jobs_log.wait("listening for new jobs again")
        await _runs_on_notify(store_url, events)


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_a_failed_listen_is_tried_again_until_it_succeeds(
        tmp_path: Path, store_url: str, pg_server_url: str, fake_llm: FakeLLMServer,
        jobs_log: LogWatch) -> None:
    """LISTEN that fails (the database takes no new connections) is tried again after a
    backoff, and again, until it succeeds; then NOTIFY wakes the workers as before."""
    name = _database(store_url)
    admin = await asyncpg.connect(pg_server_url)
    try:
        async with running(tmp_path, fake_llm, database_url=store_url,
                           poll_interval_s=3600.0) as (_, events):
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            assert await _terminate_listeners(admin, store_url) == 1
            await jobs_log.wait("listening for new jobs failed")
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await jobs_log.wait("listening for new jobs again")
            await _runs_on_notify(store_url, events)
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def _listener_pid(admin: asyncpg.Connection, url: str) -> int:
    """The server process of ``url``'s listening connection (its last statement is a LISTEN,
    or its check once one has run)."""
    pid = await admin.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() "
        "AND (query ILIKE 'LISTEN%' OR query = $2)", _database(url), _LISTEN_CHECK)
    assert isinstance(pid, int)
    return pid


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_a_listening_connection_that_stops_answering_is_replaced(
        tmp_path: Path, store_url: str, fake_llm: FakeLLMServer, jobs_log: LogWatch) -> None:
    """The listening connection's server process is frozen (SIGSTOP: the socket stays open
    and nothing arrives — what a network path gone silent looks like from here). Its check
    gets no answer, so the notifier takes it as lost and listens on a new connection; NOTIFY
    wakes the idle workers again."""
    admin = await asyncpg.connect(store_url)
    frozen: int | None = None
    try:
        async with running(tmp_path, fake_llm, database_url=store_url,
                           poll_interval_s=3600.0, listen_check_s=2.0) as (_, events):
            frozen = await _listener_pid(admin, store_url)
            os.kill(frozen, signal.SIGSTOP)
            await jobs_log.wait("the connection listening for new jobs was lost")
            await jobs_log.wait("listening for new jobs again")
            await _runs_on_notify(store_url, events)
    finally:
        if frozen is not None:
            os.kill(frozen, signal.SIGCONT)
        await admin.close()


def _shown(seen: list[JobEvent], job_id: int, story: list[str]) -> list[str]:
    """The kinds of ``job_id``'s events in ``seen`` that a channel shows: each one later in
    ``story`` (the job's events in the order they happen) than every one before it."""
    shown: list[str] = []
    for event in seen:
        if event.job_id == job_id and (
                not shown or story.index(event.event) > story.index(shown[-1])):
            shown.append(event.event)
    return shown


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_a_job_run_by_another_process_reaches_its_user_s_channel_here(
        tmp_path: Path, store_url: str, fake_llm: FakeLLMServer) -> None:
    """A server with jobs disabled follows ada's channel; another process runs her jobs:
    each event reaches the server once (and the runner once, the server's ``queued`` among
    them), a failure as its kind; the channel is pushed them in the order they happened,
    ending with the job's end — an event that arrived after a later one of its job (the
    processes' events may cross) is left out, nothing else."""
    async with running(tmp_path, fake_llm, database_url=store_url, enabled=False) as (
            server, here), \
            running(tmp_path, fake_llm, database_url=store_url) as (_, there):
        feed = JobFeed(server)
        channel = await start(Inbox, None)
        feed.follow("ada", channel)
        done = await server.jobs.enqueue(prompt="x", user_id="ada")
        await here.wait("completed", job_id=done.job_id)
        fake_llm.script(Fault.error(400, message="refused VARMARKER"))
        refused = await server.jobs.enqueue(prompt="y", user_id="ada")
        [failed_here] = await here.wait("failed", job_id=refused.job_id)
        pushes = await call(channel, "seen")
        await there.wait("queued", job_id=refused.job_id)
    stories = {done.job_id: ["queued", "started", "completed"],
               refused.job_id: ["queued", "started", "failed"]}
    for job_id, story in stories.items():
        assert sorted(here.kinds(job_id)) == sorted(story)
        assert sorted(there.kinds(job_id)) == sorted(story)
    assert [(p.payload["event"], p.payload["job_id"]) for p in pushes] == [
        (kind, job_id) for job_id, story in stories.items()
        for kind in _shown(here.seen, job_id, story)]
    assert pushes[-1].payload["event"] == "failed"
    [failed_there] = there.of("failed", refused.job_id)
    assert failed_here.error == error_code(failed_there)
    assert "VARMARKER" not in str(failed_there.error)
    assert failed_here.model_copy(update={"error": None}) == failed_there.model_copy(
        update={"error": None})
