"""The SQLite backend: aiosqlite, WAL mode, one writer connection and one reader.

SQLite allows one writer at a time per database, so writes go through a single connection
guarded by an ``asyncio.Lock`` and each transaction starts with ``BEGIN IMMEDIATE`` (it takes
the write lock up front, so two processes on one file queue instead of failing on upgrade).
WAL lets the reader connection see the last commit while a write is in progress.

Recording usage is one statement in its own implicit transaction, so it needs no lock of its
own: aiosqlite runs a connection's requests one after another in the order they were handed
over, so batches queued back to back commit back to back, with no turn of the event loop in
between. It only waits while a transaction is open, which would otherwise absorb it.

Pragmas: ``journal_mode=WAL``, ``synchronous=FULL`` (a commit is on disk when it returns, which
the usage recorder's "durable" promise needs), ``foreign_keys=ON``, ``busy_timeout`` 5000 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import aiosqlite

from beamish.store import _migrations
from beamish.store._backend import Backend, Executor, Row, utc_now
from beamish.store.errors import ConflictError, StoreError, StoreUnavailableError
from beamish.store.models import UsageEvent

BUSY_TIMEOUT_MS = 5000
WAL_ATTEMPTS = 30  # about 4.5 s of backoff in all, like the busy timeout

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PLACEHOLDER = re.compile(r"\$(\d+)")
_CONFLICT_KINDS = {
    "UNIQUE": "unique",
    "FOREIGN KEY": "foreign_key",
    "CHECK": "check",
    "NOT NULL": "not_null",
}
_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "readonly", "full")

_LEDGER_COLUMNS = """request_id, session_id, user_id, provider, model, task_type,
    prompt_tokens, completion_tokens, latency_ms, status, created_at"""
_LEDGER_ROW = "(?,?,?,?,?,?,?,?,?,?,?)"
_MAX_VALUES_ROWS = 1024  # bounds the statements cached (about 1.4 KiB each per row)
_RECORD_USAGE = f"""INSERT INTO usage_events ({_LEDGER_COLUMNS})
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
    json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
    json_extract(value, '$[6]'), json_extract(value, '$[7]'), json_extract(value, '$[8]'),
    json_extract(value, '$[9]'), json_extract(value, '$[10]')
FROM json_each(?) WHERE true
ON CONFLICT (request_id) DO NOTHING"""
_INSERTED_SINCE = "SELECT request_id FROM usage_events WHERE id > ? AND id <= ?"


@functools.cache  # one per power of two up to _MAX_VALUES_ROWS
def _record_usage_values(rows: int) -> str:
    return (f"INSERT INTO usage_events ({_LEDGER_COLUMNS}) VALUES "
            f"{','.join([_LEDGER_ROW] * rows)} ON CONFLICT (request_id) DO NOTHING")


@functools.lru_cache(maxsize=512)
def _dialect_sql(sql: str) -> str:
    # asyncpg's $1 is SQLite's numbered placeholder ?1 (bound by _bind).
    return _PLACEHOLDER.sub(r"?\1", sql)


def _bind(args: Iterable[object]) -> dict[str, object]:
    """The values of ``_dialect_sql``'s numbered placeholders, by number: sqlite3 names
    ``?1`` "1". (Bound from a sequence, they warn since Python 3.12 and fail from 3.14.)"""
    return {str(number): _param(value) for number, value in enumerate(args, 1)}


def format_time(value: datetime) -> str:
    """A timestamp as stored: UTC ISO-8601 with microseconds, so text order is time order."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def ledger_micros(value: datetime) -> int:
    """A ledger timestamp as stored: exact integer microseconds since the Unix epoch (UTC).

    Only ``usage_events.created_at`` uses it (migration 0002 says why); timedelta floor
    division keeps every microsecond, where ``timestamp()`` would round through a float.
    """
    return (value - _EPOCH) // _MICROSECOND


def _param(value: object) -> object:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, UUID):
        return str(value)
    return value


def translate(error: sqlite3.Error) -> StoreError:
    """The beamish error for a sqlite3 error (the caller raises it ``from`` the original)."""
    message = str(error)
    if isinstance(error, sqlite3.IntegrityError):
        for prefix, kind in _CONFLICT_KINDS.items():
            if message.startswith(prefix):
                return ConflictError(f"{kind} constraint violated: {message}", kind=kind)
        return ConflictError(message, kind="unknown")
    if isinstance(error, sqlite3.OperationalError) and any(
        word in message.lower() for word in _UNAVAILABLE
    ):
        return StoreUnavailableError(f"SQLite database unavailable: {message}")
    return StoreError(f"SQLite error: {message}")


class _SqliteExecutor:
    """Executor over one aiosqlite connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        try:
            rows = await self._conn.execute_fetchall(_dialect_sql(sql), _bind(args))
        except sqlite3.Error as error:
            raise translate(error) from error
        return [dict(row) for row in rows]

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

    async def fetch_raw(self, sql: str, *args: object) -> Iterable[sqlite3.Row]:
        """``fetch`` of SQLite-native SQL and values, rows as sqlite3 gives them (hot paths)."""
        try:
            return await self._conn.execute_fetchall(sql, args)
        except sqlite3.Error as error:
            raise translate(error) from error

    async def execute_insert(self, sql: str, *args: object,
                             then: Callable[[int], object] | None = None) -> tuple[int, int]:
        """Run an INSERT of SQLite-native SQL and values: (rows inserted, last rowid).

        ``then(rows inserted)`` runs on the event loop once the statement has run, scheduled
        by the connection's thread itself: a turn of the loop before this coroutine resumes,
        which waits for the loop to run aiosqlite's completion and then for its own step.
        """
        conn = self._conn
        run_in_thread = getattr(conn, "_execute", None)  # aiosqlite's queue to its thread
        try:
            if then is None or run_in_thread is None:
                cursor = await conn.execute(sql, args)
                if then is not None:
                    then(cursor.rowcount)
                return cursor.rowcount, cursor.lastrowid or 0
            loop = asyncio.get_running_loop()
            raw = conn._conn  # the sqlite3 connection, used only from its thread

            def insert() -> tuple[int, int]:
                cursor = raw.execute(sql, args)
                loop.call_soon_threadsafe(then, cursor.rowcount)
                return cursor.rowcount, cursor.lastrowid or 0

            result: tuple[int, int] = await run_in_thread(insert)
        except sqlite3.Error as error:
            raise translate(error) from error
        return result


class _SqliteTransaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` on the writer, holding the writer lock throughout."""

    def __init__(self, lock: asyncio.Lock, executor: _SqliteExecutor) -> None:
        self._lock = lock
        self._executor = executor

    async def __aenter__(self) -> Executor:
        await self._lock.acquire()
        try:
            await self._executor.execute("BEGIN IMMEDIATE")
        except BaseException:
            try:
                await self._rollback_quietly()
            finally:
                self._lock.release()
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
            self._lock.release()

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
        self._connections: list[aiosqlite.Connection] = []

    async def connect(self) -> None:
        Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = _SqliteExecutor(await self._open())
        self._reader = _SqliteExecutor(await self._open())

    async def _open(self) -> aiosqlite.Connection:
        try:
            # Probe first: when aiosqlite's own connect fails, its worker thread finishes
            # after the call returns and may report to a closed event loop.
            variables = await asyncio.to_thread(_probe, self._path)
            self._max_values_rows = min(_MAX_VALUES_ROWS, _power_of_two_at_most(
                variables // _LEDGER_ROW.count("?")))
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
        connections, self._connections = self._connections, []
        for conn in connections:
            await conn.close()
        self._writer = self._reader = None

    @property
    def reader(self) -> Executor:
        return self._connected(self._reader)

    def transaction(self) -> _SqliteTransaction:
        return _SqliteTransaction(self._lock, self._connected(self._writer))

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

    async def record_usage(self, events: Sequence[UsageEvent],
                           on_durable: Callable[[], object] | None = None) -> frozenset[str]:
        # One statement, so one implicit transaction (the connection is in autocommit mode)
        # and one trip to the connection's thread. The conflict clause skips known request
        # ids, and the trigger of migration 0003 counts each inserted row in
        # user_llm_configs within the same statement. The rows are bound as VALUES, padded to
        # a power of two with repeats of the last row (a repeated request id inserts nothing),
        # so a handful of statements serve every batch size; a batch too large for one
        # statement's bound variables arrives as one JSON array instead. No RETURNING: the
        # thread would take the GIL back once per returned row, and under load each of those
        # waits for the busy event loop; the row count tells which ids were new instead.
        # When all were, on_durable hears it straight from the thread (see execute_insert).
        rows = [_usage_row(e) for e in events]
        if len(rows) <= self._max_values_rows:
            padded = 1 << (len(rows) - 1).bit_length()
            rows += [rows[-1]] * (padded - len(rows))
            sql, args = _record_usage_values(padded), [v for row in rows for v in row]
        else:
            sql, args = _RECORD_USAGE, [json.dumps(rows, separators=(",", ":"))]
        writer = self._connected(self._writer)
        while self._lock.locked():  # a transaction is open: queue behind it
            async with self._lock:
                pass
        # No await between the check above and aiosqlite queueing the statement, so it runs
        # before the next transaction's BEGIN.
        count = len(events)
        inserted, last_id = await writer.execute_insert(
            sql, *args, then=None if on_durable is None else (
                lambda rows: on_durable() if rows == count else None))
        if inserted == len(events):
            return frozenset(e.request_id for e in events)
        if inserted == 0:
            return frozenset()
        # Some ids were known. The statement's new rows took consecutive rowids ending at
        # last_id (a new rowid is the largest one plus one, and nothing else wrote meanwhile),
        # and ledger rows are never deleted, so read back just those.
        fresh = await writer.fetch_raw(_INSERTED_SINCE, last_id - inserted, last_id)
        return frozenset(row[0] for row in fresh)


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


def _usage_row(e: UsageEvent) -> tuple[object, ...]:
    return (e.request_id, e.session_id, e.user_id, e.provider, e.model, e.task_type,
            e.prompt_tokens, e.completion_tokens, e.latency_ms, e.status,
            ledger_micros(e.created_at))


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
