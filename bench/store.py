"""Store benchmark: write-behind usage recording against one transaction per event, and stats.

Figures (SQLite unprefixed, PostgreSQL prefixed ``pg_``):

* ``record_naive_per_s`` — the baseline: events/s with ``Store.record`` awaited one at a time
  (one transaction, one commit each).
* ``record_per_s`` — events/s through ``UsageRecorder`` with ``PRODUCERS`` concurrent callers,
  each awaiting durability before sending its next event (goal on SQLite: >= 50,000).
* ``record_ratio`` — ``record_per_s / record_naive_per_s``, same run (goal on SQLite: >= 20).
* ``record_lost`` — acknowledged events missing from the ledger or the counters (goal: 0).
* ``stats_ms_p50`` / ``stats_ms_p99`` — ``Store.user_stats`` for one random user over a ledger
  of ``LEDGER_ROWS`` rows spread over ``USERS`` users and 30 days (goal: p50 <= 20 ms).

Both backends commit durably: SQLite with ``synchronous=FULL``; PostgreSQL is the server named
by ``BEAMISH_BENCH_PG_URL`` or a private one started with ``fsync`` on (as the test suite does,
see ``tests/store/_pg.py``). Without PostgreSQL its figures are left out and ``raw`` says why.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import anyio
import asyncpg

from beamish.store import NewLLMConfig, Provider, Store, UsageEvent, UsageRecorder, open_store
from bench._harness import Report, median_of, now, percentile
from tests.store import _pg

PRODUCERS = 1000
BATCH = 1000
USERS = 1000
RECORD_USERS = 100
PROVIDERS: tuple[Provider, ...] = ("openai", "anthropic", "ollama")
MODELS = ("small", "large")
TASKS = ("chat", "summarize", "code", "translate")
START = datetime(2026, 1, 1, tzinfo=UTC)
FILL_CHUNK = 10_000

_names = count()


def _event(request_id: str, user: int, rng: random.Random) -> UsageEvent:
    return UsageEvent(
        request_id=request_id, user_id=f"u{user:05d}", provider=rng.choice(PROVIDERS),
        model=rng.choice(MODELS), task_type=rng.choice(TASKS),
        prompt_tokens=rng.randrange(2000), completion_tokens=rng.randrange(1000),
        latency_ms=rng.randrange(5000), created_at=START + timedelta(seconds=rng.randrange(
            30 * 86400)))


def _record_events(tag: str, n: int) -> list[UsageEvent]:
    # Live traffic: timestamps increase, and every event goes to its user's one config, so
    # the counters must add up to n.
    rng = random.Random(n)
    return [UsageEvent(request_id=f"{tag}{i:08d}", user_id=f"u{i % RECORD_USERS:05d}",
                       provider="openai", model=rng.choice(MODELS), task_type=rng.choice(TASKS),
                       prompt_tokens=rng.randrange(2000), completion_tokens=rng.randrange(1000),
                       latency_ms=rng.randrange(5000)) for i in range(n)]


async def _configure_users(store: Store) -> None:
    for user in range(RECORD_USERS):
        await store.upsert_profile(f"u{user:05d}")
        await store.add_config(f"u{user:05d}", NewLLMConfig(provider="openai", model="small"))


async def _counted(store: Store) -> int:
    configs = [await store.get_config(f"u{u:05d}", "openai") for u in range(RECORD_USERS)]
    return min(sum(c.usage_count for c in configs), (await store.usage_totals()).requests)


async def _naive(url: str, n: int) -> float:
    async with open_store(url) as store:
        await _configure_users(store)
        events = _record_events("n", n)
        start = now()
        for event in events:
            await store.record(event)
        return n / (now() - start)


async def _write_behind(url: str, n: int) -> tuple[float, int]:
    async with open_store(url) as store:
        await _configure_users(store)
        events = iter(_record_events("w", n))

        async def produce() -> None:
            for event in events:
                await recorder.record(event)

        async with UsageRecorder(store, max_batch=BATCH) as recorder:
            start = now()
            async with anyio.create_task_group() as tg:
                for _ in range(PRODUCERS):
                    tg.start_soon(produce)
            elapsed = now() - start
        return n / elapsed, n - await _counted(store)


async def _stats(url: str, rows: int, queries: int) -> list[float]:
    async with open_store(url) as store:
        rng = random.Random(7)
        for first in range(0, rows, FILL_CHUNK):
            await store.record_many([_event(f"s{i:08d}", rng.randrange(USERS), rng)
                                     for i in range(first, min(rows, first + FILL_CHUNK))])
        samples = []
        for _ in range(queries):
            user = f"u{rng.randrange(USERS):05d}"
            start = now()
            await store.user_stats(user)
            samples.append((now() - start) * 1000)
        return samples


FreshURL = Callable[[], str]
"""Hands out the URL of a new, empty database on one backend."""


@contextmanager
def _sqlite_target() -> Iterator[FreshURL]:
    with tempfile.TemporaryDirectory(prefix="beamish-bench-") as folder:
        yield lambda: f"sqlite:///{Path(folder) / f'db{next(_names)}.db'}"


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _postgres_server(raw: dict[str, Any]) -> AbstractContextManager[str] | None:
    external = os.environ.get("BEAMISH_BENCH_PG_URL")
    if external:
        return nullcontext(external)
    bindir = _pg.find_bindir()
    if bindir is None:
        raw["postgres"] = "skipped: no PostgreSQL found (set BEAMISH_BENCH_PG_URL)"
        return None
    return _pg.local_server(bindir, durable=True)


@contextmanager
def _postgres_target(server_url: str) -> Iterator[FreshURL]:
    created: list[str] = []

    def fresh() -> str:
        created.append(f"beamish_bench_{os.getpid()}_{next(_names)}")
        asyncio.run(_admin(server_url, f'CREATE DATABASE "{created[-1]}"'))
        return _pg.with_database(server_url, created[-1])

    try:
        yield fresh
    finally:
        for name in created:  # an external server keeps nothing of ours
            asyncio.run(_admin(server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


def _measure(report: Report, fresh_url: FreshURL, prefix: str, quick: bool) -> None:
    runs = 1 if quick else 3
    naive_n, wb_n = (300, 20_000) if quick else (2_000, 200_000)
    rows, queries = (100_000, 50) if quick else (1_000_000, 200)
    naive, naive_samples = median_of(runs, lambda: asyncio.run(_naive(fresh_url(),
                                                                        naive_n)))
    lost: list[int] = []

    def write_behind() -> float:
        per_s, missing = asyncio.run(_write_behind(fresh_url(), wb_n))
        lost.append(missing)
        return per_s

    fast, fast_samples = median_of(runs, write_behind)
    stats = asyncio.run(_stats(fresh_url(), rows, queries))
    sqlite_goals = prefix == ""
    report.add(f"{prefix}record_naive_per_s", naive, "events/s")
    report.add(f"{prefix}record_per_s", fast, "events/s", ">= 50000" if sqlite_goals else "")
    report.add(f"{prefix}record_ratio", fast / naive, "x", ">= 20" if sqlite_goals else "")
    report.add(f"{prefix}record_lost", max(lost), "events", "<= 0")
    report.add(f"{prefix}stats_ms_p50", percentile(stats, 50), "ms", "<= 20")
    report.add(f"{prefix}stats_ms_p99", percentile(stats, 99), "ms")
    report.raw[f"{prefix or 'sqlite_'}samples"] = {
        "naive_per_s": naive_samples, "record_per_s": fast_samples, "lost": lost,
        "stats_ms": stats, "naive_events": naive_n, "write_behind_events": wb_n,
        "ledger_rows": rows, "producers": PRODUCERS, "max_batch": BATCH, "users": USERS,
    }


def run(quick: bool) -> Report:
    """Measure both backends; SQLite figures first, then PostgreSQL's with a ``pg_`` prefix."""
    report = Report("store")
    report.raw["sqlite_version"] = sqlite3.sqlite_version
    with _sqlite_target() as fresh_sqlite:
        _measure(report, fresh_sqlite, "", quick)
    server = _postgres_server(report.raw)
    if server is not None:
        with server as server_url, _postgres_target(server_url) as fresh_postgres:
            _measure(report, fresh_postgres, "pg_", quick)
    return report
