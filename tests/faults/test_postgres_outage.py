"""A real PostgreSQL stopped and started during traffic through ``beamish.Application``."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from beamish import Application
from beamish.sessions.settings import SessionSettings
from beamish.settings import Settings
from beamish.store import StoreError, StoreUnavailableError
from tests.store import _pg

pytestmark = [pytest.mark.anyio, pytest.mark.faults, pytest.mark.timeout(60)]


def _settings(url: str) -> Settings:
    return Settings(database_url=url, sessions=SessionSettings(
        usage_retry_first_s=0.05, usage_retry_max_s=0.2, sweep_interval_s=3600.0))


async def _ledger_ids(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT request_id FROM usage_events ORDER BY request_id")
    finally:
        await conn.close()
    return [row["request_id"] for row in rows]


async def test_a_postgresql_outage_fails_requests_typed_and_the_runtime_recovers(
        pg_cluster: _pg.Cluster) -> None:
    """Sessions opened while PostgreSQL is down fail with StoreUnavailableError, the tree
    survives, and once it is back new calls succeed with every acknowledged call counted
    once."""
    acknowledged: list[str] = []
    async with Application(_settings(pg_cluster.url)) as rt:
        for n in range(3):
            await rt.sessions.open(f"s{n}", "ada")
            done = await rt.complete(f"s{n}", "before", request_id=f"a{n}")
            acknowledged.append(done.request_id)
        pg_cluster.stop()
        try:
            # Far more context starts than the restart intensity allows crashes (3 in 5 s).
            for n in range(12):
                sid = f"s{n % 3}"
                await rt.sessions.close(sid)
                with pytest.raises(StoreUnavailableError):
                    await rt.sessions.open(sid, "ada")
                with pytest.raises(StoreError):
                    await rt.sessions.open(f"new{n}", "bob")
            assert rt.running
            # A warm session's call during the outage waits for its usage to be durable.
            pending = asyncio.ensure_future(rt.complete("s0", "during", request_id="d0"))
        finally:
            pg_cluster.start()
        acknowledged.append((await pending).request_id)
        for n in range(3):
            await rt.sessions.open(f"s{n}", "ada")  # resumed: the ledger is read again
            done = await rt.complete(f"s{n}", "after", request_id=f"z{n}")
            acknowledged.append(done.request_id)
        assert (await rt.sessions.usage("s0")).requests == 3
        assert rt.running
    assert await _ledger_ids(pg_cluster.url) == sorted(acknowledged)
