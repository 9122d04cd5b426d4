"""SQLite write-locked by another connection for longer than the stall threshold."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from beamish import Application
from beamish.server.api import create_app
from beamish.sessions.settings import SessionSettings
from beamish.settings import Settings
from tests.faults.conftest import LogWatch

pytestmark = [pytest.mark.anyio, pytest.mark.faults, pytest.mark.timeout(30)]


async def test_a_sqlite_write_lock_is_logged_once_as_a_stall_and_makes_ready_503(
        tmp_path: Path, store_log: LogWatch) -> None:
    """A lock longer than store_stall_after_s logs one stall start and one end (with its
    duration); /ready is 503 "stalled" meanwhile and 200 after, and the usage is written."""
    path = tmp_path / "beamish.db"
    settings = Settings(database_url=f"sqlite:///{path}", sessions=SessionSettings(
        store_stall_after_s=0.3, usage_retry_first_s=0.05, usage_retry_max_s=0.2,
        sweep_interval_s=3600.0))
    async with Application(settings) as rt:
        app = create_app(runtime=rt)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://beamish") as http:
            await rt.sessions.open("s1", "ada")
            assert (await http.get("/ready")).status_code == 200
            lock = sqlite3.connect(path, isolation_level=None)
            try:
                lock.execute("BEGIN IMMEDIATE")
                pending = asyncio.ensure_future(rt.complete("s1", "hi", request_id="r1"))
                started = await store_log.wait_for("store stalled")
                ready = await http.get("/ready")
                assert ready.status_code == 503
                assert ready.json()["store"] == "stalled"
                assert (await http.get("/health")).status_code == 200  # alive all the same
            finally:
                lock.execute("COMMIT")
                lock.close()
            await pending
            ended = await store_log.wait_for("store stall ended after")
            assert (await http.get("/ready")).json()["status"] == "ready"
    assert len(started) == 1, store_log.messages
    assert len(ended) == 1
    assert started[0].startswith("WARNING store stalled: 1 usage events have waited")
    with closing(sqlite3.connect(path)) as conn:  # sqlite3's own with does not close
        assert conn.execute("SELECT count(*) FROM usage_events").fetchone() == (1,)
