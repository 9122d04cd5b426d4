"""Migrations: planning (no I/O), applying on open, refusing changed files, concurrent start."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from beamish.store import MigrationChecksumError, UnknownMigrationError, migrate, open_store
from beamish.store._migrations import CREATE_TABLE, Migration, ordered, parse, pending, shipped
from beamish.store.errors import MigrationError
from tests.store import _raw


def _migration(version: int, text: str = "SELECT 1;") -> Migration:
    return parse(f"{version:04d}_step.sql", text.encode())


def test_pending_lists_unapplied_in_version_order() -> None:
    """Versions not yet applied come back sorted."""
    available = [_migration(3), _migration(1), _migration(2)]
    assert [m.version for m in pending(available, {1: _migration(1).checksum})] == [2, 3]


def test_pending_refuses_a_changed_applied_file() -> None:
    """An applied version whose checksum differs raises MigrationChecksumError."""
    with pytest.raises(MigrationChecksumError, match=r"0001 .*changed after it was applied"):
        pending([_migration(1, "SELECT 2;")], {1: _migration(1).checksum})


def test_pending_refuses_versions_it_does_not_ship() -> None:
    """A database ahead of the code raises UnknownMigrationError."""
    with pytest.raises(UnknownMigrationError, match="0002"):
        pending([_migration(1)], {1: _migration(1).checksum, 2: "x"})


def test_parse_rejects_badly_named_files() -> None:
    """A file not named NNNN_name.sql is an error, not silently skipped."""
    with pytest.raises(MigrationError, match=r"NNNN_lowercase_name\.sql"):
        parse("1_initial.sql", b"")


def test_ordered_rejects_duplicate_versions() -> None:
    """Two files with one version number are refused."""
    with pytest.raises(MigrationError, match="two migrations have version 0001"):
        ordered([parse("0001_a.sql", b""), parse("0001_b.sql", b"")])


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_both_dialects_ship_the_same_versions(dialect: str) -> None:
    """Each dialect has the same migration versions and names."""
    assert [(m.version, m.name) for m in shipped(dialect)] == [
        (m.version, m.name) for m in shipped("sqlite")]


@pytest.mark.anyio
async def test_open_applies_every_migration_once(store_url: str) -> None:
    """Opening migrates; a second migrate() finds nothing to do."""
    async with open_store(store_url):
        pass
    assert await migrate(store_url) == []
    count = await _raw.fetchval(store_url, "SELECT count(*) FROM schema_migrations")
    assert count == len(shipped(_raw.dialect(store_url)))


@pytest.mark.anyio
async def test_migrate_on_a_fresh_database_returns_what_it_applied(store_url: str) -> None:
    """migrate() reports the names it applied."""
    assert await migrate(store_url) == [m.name for m in shipped(_raw.dialect(store_url))]


@pytest.mark.anyio
async def test_changed_applied_migration_stops_start_up(store_url: str) -> None:
    """A recorded checksum that no longer matches the file refuses to open the store."""
    await migrate(store_url)
    await _raw.fetchval(store_url, "UPDATE schema_migrations SET checksum = 'feed' "
                                   "WHERE version = 1")
    with pytest.raises(MigrationChecksumError, match="restore the original file"):
        async with open_store(store_url):
            pass


@pytest.mark.anyio
async def test_database_newer_than_code_stops_start_up(store_url: str) -> None:
    """An applied version this code does not ship refuses to open the store."""
    await migrate(store_url)
    await _raw.fetchval(store_url, "INSERT INTO schema_migrations VALUES "
                                   "(9999, 'future', 'x', '2030-01-01')")
    with pytest.raises(UnknownMigrationError, match="9999"):
        await migrate(store_url)


@pytest.mark.anyio
async def test_concurrent_starters_apply_each_migration_once(store_url: str) -> None:
    """Several processes' worth of migrate() at once: all succeed, nothing runs twice."""
    applied: list[list[str]] = []

    async def start() -> None:
        applied.append(await migrate(store_url))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(start)
    names = [name for batch in applied for name in batch]
    assert sorted(names) == sorted(m.name for m in shipped(_raw.dialect(store_url)))


@pytest.mark.anyio
async def test_sqlite_0002_keeps_every_ledger_microsecond(tmp_path: Path) -> None:
    """Rows written as ISO text under 0001 keep their exact time once 0002 makes it integer."""
    path = tmp_path / "old.db"
    first = shipped("sqlite")[0]
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(first.sql)
        conn.execute(CREATE_TABLE)
        conn.execute("INSERT INTO schema_migrations VALUES (1, ?, ?, '2026-01-01')",
                     (first.name, first.checksum))
        conn.execute("INSERT INTO usage_events (request_id, user_id, provider, model, task_type, "
                     "prompt_tokens, completion_tokens, latency_ms, status, created_at) VALUES "
                     "('r1', 'ada', 'echo', 'echo-1', 'chat', 3, 4, 5, 'ok', "
                     "'2026-03-04T05:06:07.123456+00:00')")
        conn.commit()
    when = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    async with open_store(f"sqlite:///{path}") as store:
        assert (await store.usage_totals(since=when)).requests == 1
        assert (await store.usage_totals(since=when + timedelta(microseconds=1))).requests == 0
        days = await store.usage_per_day(since=when - timedelta(days=1), until=when)
        assert days == []
        days = await store.usage_per_day(since=when, until=when + timedelta(days=1))
        assert [(d.day, d.total_tokens) for d in days] == [(date(2026, 3, 4), 7)]
    with closing(sqlite3.connect(path)) as conn:
        stored = conn.execute("SELECT created_at FROM usage_events").fetchone()[0]
    assert stored == int(when.timestamp()) * 1_000_000 + 123456
