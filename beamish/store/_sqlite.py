"""The SQLite backend: aiosqlite, WAL mode, one writer connection and one reader.

SQLite allows one writer at a time per database, so writes go through a single connection
guarded by an ``asyncio.Lock`` and each transaction starts with ``BEGIN IMMEDIATE`` (it takes
the write lock up front, so two processes on one file queue instead of failing on upgrade).
WAL lets the reader connection see the last commit while a write is in progress.

Recording usage goes through ``LedgerPipe`` (``_sqlite_ledger``): the writer's thread forms
the group commits itself, from whatever queued during the previous one, and never while a
transaction is open (the transaction's end resumes it).

Pragmas: ``journal_mode=WAL``, ``synchronous=FULL`` (a commit is on disk when it returns, which
the usage recorder's "durable" promise needs), ``foreign_keys=ON``, ``busy_timeout`` 5000 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import aiosqlite

from beamish.store import _migrations
from beamish.store._backend import Backend, Executor, Row, UsageOutcome, utc_now
from beamish.store._sqlite_errors import translate
from beamish.store._sqlite_ledger import (
    LEDGER_ROW_VARIABLES,
    MAX_VALUES_ROWS,
    LedgerPipe,
    ledger_micros,
    writer_thread,
)
from beamish.store.errors import StoreError, StoreUnavailableError
from beamish.store.models import UsageEvent

BUSY_TIMEOUT_MS = 5000
WAL_ATTEMPTS = 30  # about 4.5 s of backoff in all, like the busy timeout

_PLACEHOLDER = re.compile(r"\$(\d+)")


@functools.lru_cache(maxsize=512)
def _dialect_sql(sql: str) -> str:
    # asyncpg's $1 is SQLite's numbered placeholder ?1 (bound by _bind).
    return _PLACEHOLDER.sub(r"?\1", sql)


def _bind(args: Iterable[object]) -> dict[str, object]:
    """The values of ``_dialect_sql``'s numbered placeholders, by number: sqlite3 names
    ``?1`` "1". (Bound from a sequence, they warn since Python 3.12 and fail from 3.14.)"""
    return {key: value if type(value) in _PLAIN else _param(value)
            for key, value in zip(_KEYS, args, strict=False)}


_KEYS = tuple(str(number) for number in range(1, 32767))
"""The placeholder names, once: SQLite binds at most 32766 variables in a statement."""
_PLAIN = frozenset({str, int, float, bytes, type(None), bool})
"""Types sqlite3 binds as they are (``_param`` converts the others)."""


def format_time(value: datetime) -> str:
    """A timestamp as stored: UTC ISO-8601 with microseconds, so text order is time order."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def _param(value: object) -> object:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, UUID):
        return str(value)
    return value


def _connect_ledger(path: str) -> sqlite3.Connection:
    """A writer connection of the ledger's own, set up as ``_open`` sets aiosqlite's up
    (used only when the installed aiosqlite's queue cannot be; see ``_sqlite_ledger``)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in (f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}", "PRAGMA synchronous = FULL",
                       "PRAGMA foreign_keys = ON"):
            conn.execute(pragma)
    except BaseException:
        conn.close()
        raise
    return conn


class _SqliteExecutor:
    """Executor over one aiosqlite connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        try:
            rows = list(await self._conn.execute_fetchall(_dialect_sql(sql), _bind(args)))
        except sqlite3.Error as error:
            raise translate(error) from error
        if not rows:
            return []
        names = rows[0].keys()  # once a statement: dict(row) would ask every row for them
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def execute(self, sql: str, *args: object) -> None:
        try:
            await self._conn.execute(_dialect_sql(sql), _bind(args))
        except sqlite3.Error as error:
            raise translate(error) from error

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        try:
            await self._conn.executemany(_dialect_sql(sql), [_bind(row) for row in rows])
        except sqlite3.Error as error:
            raise translate(error) from error


class _SqliteTransaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` on the writer, holding the writer lock throughout;
    ``released()`` runs once the lock is free again (the ledger's writes waited for it)."""

    def __init__(self, lock: asyncio.Lock, executor: _SqliteExecutor,
                 released: Callable[[], object]) -> None:
        self._lock = lock
        self._executor = executor
        self._released = released

    async def __aenter__(self) -> Executor:
        await self._lock.acquire()
        try:
            await self._executor.execute("BEGIN IMMEDIATE")
        except BaseException:
            try:
                await self._rollback_quietly()
            finally:
                self._release()
            raise
        return self._executor

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        try:
            if exc_type is None:
                try:
                    await self._executor.execute("COMMIT")
                except BaseException:
                    await self._rollback_quietly()
                    raise
            else:
                await self._rollback_quietly()
        finally:
            self._release()

    def _release(self) -> None:
        self._lock.release()
        self._released()

    async def _rollback_quietly(self) -> None:
        # aiosqlite runs statements in order on its thread, and a statement already queued
        # runs even if the awaiting task is cancelled. So after a cancelled or failed
        # BEGIN/COMMIT, a ROLLBACK queued now runs after it and leaves the connection outside
        # any transaction for the next writer; "no transaction is active" is then harmless.
        with contextlib.suppress(StoreError):
            await self._executor.execute("ROLLBACK")


class SqliteBackend(Backend):
    """A SQLite database file."""

    dialect = "sqlite"
    day_expr = "date(created_at / 1000000, 'unixepoch')"
    lock_rows = ""  # BEGIN IMMEDIATE already holds the database's only write lock
    groups_commits = True  # the ledger pipe (_sqlite_ledger)

    def ledger_time(self, value: datetime) -> object:
        return ledger_micros(value)

    def __init__(self, path: str) -> None:
        if path in ("", ":memory:"):
            raise StoreError(
                "SQLite store needs a file path (it uses a writer and a reader connection); "
                "use 'sqlite:///path/to.db'"
            )
        self._path = path
        self._max_values_rows = 1  # set from SQLite's bound-variable limit on connect
        self._lock = asyncio.Lock()
        self._writer: _SqliteExecutor | None = None
        self._reader: _SqliteExecutor | None = None
        self._ledger: LedgerPipe | None = None
        # Kept: on Python 3.11 asking for the running loop is a system call (getpid).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: list[aiosqlite.Connection] = []

    async def connect(self) -> None:
        Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        writer = await self._open()
        self._writer = _SqliteExecutor(writer)
        self._ledger = LedgerPipe(
            writer_thread(writer, functools.partial(_connect_ledger, self._path)),
            self._lock, self._max_values_rows)
        self._loop = asyncio.get_running_loop()
        self._reader = _SqliteExecutor(await self._open())

    async def _open(self) -> aiosqlite.Connection:
        try:
            # Probe first: when aiosqlite's own connect fails, its worker thread finishes
            # after the call returns and may report to a closed event loop.
            variables = await asyncio.to_thread(_probe, self._path)
            self._max_values_rows = min(MAX_VALUES_ROWS, _power_of_two_at_most(
                variables // LEDGER_ROW_VARIABLES))
            conn = await aiosqlite.connect(self._path, isolation_level=None)
        except sqlite3.Error as error:
            raise translate(error) from error
        self._connections.append(conn)
        conn.row_factory = sqlite3.Row
        executor = _SqliteExecutor(conn)
        await executor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await _enable_wal(executor)
        await executor.execute("PRAGMA synchronous = FULL")
        await executor.execute("PRAGMA foreign_keys = ON")
        return conn

    async def aclose(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        connections, self._connections = self._connections, []
        for conn in connections:
            await conn.close()
        self._writer = self._reader = None

    @property
    def reader(self) -> Executor:
        return self._connected(self._reader)

    def transaction(self) -> _SqliteTransaction:
        return _SqliteTransaction(self._lock, self._connected(self._writer), self._resume_ledger)

    def _resume_ledger(self) -> None:
        if self._ledger is not None:
            self._ledger.resume()

    @staticmethod
    def _connected(executor: _SqliteExecutor | None) -> _SqliteExecutor:
        if executor is None:
            raise StoreError("the store is not open; use 'async with open_store(url) as store'")
        return executor

    async def migrate(self) -> list[str]:
        async with self.transaction() as tx:
            await tx.execute(_migrations.CREATE_TABLE)
            rows = await tx.fetch("SELECT version, checksum FROM schema_migrations")
            todo = _migrations.pending(
                _migrations.shipped(self.dialect), {r["version"]: r["checksum"] for r in rows}
            )
            for migration in todo:
                for statement in split_statements(migration.sql):
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                    "VALUES ($1, $2, $3, $4)",
                    migration.version, migration.name, migration.checksum, utc_now(),
                )
        return [m.name for m in todo]

    def record_usage(self, events: Sequence[UsageEvent],
                     on_durable: Callable[[], object] | None = None,
                     ) -> asyncio.Future[frozenset[str]]:
        # Handed to the ledger pipe now. The pipe tells its callback in the loop turn right
        # after the commit, so on_durable is told there, a turn before an awaiting caller
        # resumes.
        if self._ledger is None or self._loop is None:
            raise StoreError("the store is not open; use 'async with open_store(url) as store'")
        future: asyncio.Future[frozenset[str]] = self._loop.create_future()

        def then(outcome: UsageOutcome) -> None:
            if future.done():  # the caller was cancelled; the rows are written all the same
                return
            if isinstance(outcome, StoreError):
                future.set_exception(outcome)
                return
            if on_durable is not None and len(outcome) == len(events):
                on_durable()
            future.set_result(outcome)

        self._ledger.submit(events, then)
        return future


async def _enable_wal(executor: _SqliteExecutor) -> None:
    # WAL is a property of the file, so this is a no-op after the first open. Switching a new
    # file needs an exclusive lock, and SQLite returns "locked" at once (no busy wait) while
    # another starter holds it, so concurrent first opens retry here.
    for attempt in range(1, WAL_ATTEMPTS + 1):
        try:
            await executor.fetch("PRAGMA journal_mode = WAL")
            return
        except StoreUnavailableError:
            if attempt == WAL_ATTEMPTS:
                raise
            await asyncio.sleep(0.01 * attempt)


def _probe(path: str) -> int:
    """Open and close ``path``; SQLite's limit on bound variables per statement."""
    conn = sqlite3.connect(path)
    try:
        return conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    finally:
        conn.close()


def _power_of_two_at_most(n: int) -> int:
    return 1 << (max(n, 1).bit_length() - 1)


def split_statements(script: str) -> list[str]:
    """Split a SQL script into statements (``sqlite3.complete_statement`` knows triggers)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
