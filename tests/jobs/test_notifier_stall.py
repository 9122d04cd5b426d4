"""The notifier against a database that does not answer: its sends are bounded, so it
stops in time, leaving the events out with a warning."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import asyncpg
import pytest

from beamish.jobs import JobEvent, actors
from beamish.jobs.actors import Notifier
from beamish.jobs.context import JobsContext
from beamish.runtime import start, stop
from beamish.store import NotFoundError, open_store
from tests.jobs._app import WAIT_S, running
from tests.llm.providers._fake_llm_server import FakeLLMServer

pytestmark = pytest.mark.anyio

POOL_SIZE = 10
"""Connections a PostgreSQL store pools at most (``beamish.store._postgres``)."""


async def _until_waiting(watch: asyncpg.Connection, url: str, count: int) -> None:
    """Until ``count`` connections to ``url``'s database wait for a lock (state, by query)."""
    name = url.partition("?")[0].rpartition("/")[2]
    async with asyncio.timeout(WAIT_S):
        while await watch.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
                "AND wait_event_type = 'Lock'", name) < count:
            pass


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_the_notifier_stops_though_its_last_send_gets_no_answer(
        tmp_path: Path, store_url: str, fake_llm: FakeLLMServer,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Every connection of the notifier's store waits for a lock that is never let go
    while it stops with an event to send: the send is given up after ``SEND_TIMEOUT_S``
    (scaled down here), with a warning, and the notifier stops."""
    monkeypatch.setattr(actors, "SEND_TIMEOUT_S", 0.05)
    event = JobEvent(event="feedback", job_id=1, output_id="o1", user_id="ada",
                     status="completed")
    async with running(tmp_path, fake_llm, database_url=store_url, enabled=False) as (
            app, _), open_store(store_url) as stalled:
        ctx = JobsContext(dataclasses.replace(app.services, store=stalled), app.settings.jobs)
        notifier = await start(Notifier, ctx)
        holder, watch = await asyncpg.connect(store_url), await asyncpg.connect(store_url)
        try:
            async with holder.transaction():
                await holder.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
                blocked = [asyncio.ensure_future(stalled.get_job(0))
                           for _ in range(POOL_SIZE)]
                await _until_waiting(watch, store_url, POOL_SIZE)
                stopping = asyncio.ensure_future(stop(notifier))
                # Published once the stop is asked for: the send in terminate carries it.
                asyncio.get_running_loop().call_soon(ctx.publish, event)
                async with asyncio.timeout(WAIT_S):
                    await stopping
            outcomes = await asyncio.gather(*blocked, return_exceptions=True)
        finally:
            await holder.close()
            await watch.close()
    assert all(isinstance(outcome, NotFoundError) for outcome in outcomes)
    assert not notifier.alive
    assert ctx.outbox is None
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING
                 and "job events" in r.getMessage()]
    assert warning.getMessage() == ("sending 1 job events to other processes took more "
                                    "than 0.05 s; they are left out")
