"""The PostgreSQL backend: an asyncpg pool.

Each transaction holds one pooled connection. Migrations run in one transaction that first
takes a transaction-scoped advisory lock, so several processes starting at once apply each
migration exactly once: the others wait, then find nothing pending.

Options (read from the URL by asyncpg, plus these defaults): pool ``min_size`` 1,
``max_size`` 10, connect ``timeout`` 10 s; closing waits ``CLOSE_TIMEOUT_S`` (10 s) for
connections in use before terminating them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence

import asyncpg

from beamish.store import _migrations
from beamish.store._backend import Backend, Executor, Row, utc_now
from beamish.store.errors import ConflictError, StoreError, StoreUnavailableError
from beamish.store.models import UsageEvent

CLOSE_TIMEOUT_S = 10.0

# Any fixed 64-bit number; it names the lock "beamish migrations" in pg_locks.
MIGRATION_LOCK_KEY = 0x6265616D69736801

_CONFLICTS: dict[type[asyncpg.PostgresError], str] = {
    asyncpg.UniqueViolationError: "unique",
    asyncpg.ForeignKeyViolationError: "foreign_key",
    asyncpg.CheckViolationError: "check",
    asyncpg.NotNullViolationError: "not_null",
}
# Deadlocks and serialization failures cannot happen with the store's lock order, but if one
# does, retrying is the right response, so they are reported as transient.
_TRANSIENT = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    ConnectionError,
    OSError,
    TimeoutError,
)

_INSERT_USAGE = """INSERT INTO usage_events (request_id, session_id, user_id, provider, model,
    task_type, prompt_tokens, completion_tokens, latency_ms, status, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::int[], $8::int[], $9::int[], $10::text[], $11::timestamptz[])
ON CONFLICT (request_id) DO NOTHING
RETURNING request_id"""

_COUNT_USAGE = ("UPDATE user_llm_configs SET usage_count = usage_count + $3 "
                "WHERE user_id = $1 AND provider = $2")


def translate(error: BaseException) -> StoreError:
    """The beamish error for an asyncpg or connection error."""
    for cls, kind in _CONFLICTS.items():
        if isinstance(error, cls):
            detail = getattr(error, "constraint_name", None) or str(error)
            return ConflictError(f"{kind} constraint violated: {detail}", kind=kind)
    if isinstance(error, _TRANSIENT):
        return StoreUnavailableError(f"PostgreSQL unavailable: {error}")
    return StoreError(f"PostgreSQL error: {error}")


_DRIVER_ERRORS = (asyncpg.PostgresError, *_TRANSIENT)


class _PgExecutor:
    """Executor over one connection, or over the pool for single statements."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy | asyncpg.Pool,
                 ) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        try:
            rows = await self._conn.fetch(sql, *args)
        except _DRIVER_ERRORS as error:
            raise translate(error) from error
        return [dict(row) for row in rows]

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def execute(self, sql: str, *args: object) -> None:
        try:
            await self._conn.execute(sql, *args)
        except _DRIVER_ERRORS as error:
            raise translate(error) from error

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if not rows:
            return
        try:
            await self._conn.executemany(sql, rows)
        except _DRIVER_ERRORS as error:
            raise translate(error) from error


class _PgTransaction:
    """A pooled connection inside ``BEGIN`` … ``COMMIT``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None
        self._tx: asyncpg.transaction.Transaction | None = None

    async def __aenter__(self) -> Executor:
        try:
            self._conn = await self._pool.acquire()
            self._tx = self._conn.transaction()
            await self._tx.start()
        except BaseException as error:
            # Also on cancellation: a connection not released would block pool.close().
            await self._release()
            if isinstance(error, _DRIVER_ERRORS):
                raise translate(error) from error
            raise
        return _PgExecutor(self._conn)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        assert self._tx is not None
        try:
            if exc_type is None:
                await self._tx.commit()
            elif not issubclass(exc_type, Exception) and self._conn is not None:
                # Cancelled (or worse) mid-statement: the connection may be half-way through
                # a protocol exchange, where a ROLLBACK can only fail. Drop it; the server
                # rolls the transaction back, and the pool opens a fresh connection.
                self._conn.terminate()
            else:
                await self._tx.rollback()
        except _DRIVER_ERRORS as error:
            if exc_type is None:
                raise translate(error) from error
        finally:
            await self._release()

    async def _release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._pool.release(conn)


class PostgresBackend(Backend):
    """A PostgreSQL database reached through an asyncpg pool."""

    dialect = "postgres"
    day_expr = "(created_at AT TIME ZONE 'UTC')::date"
    lock_rows = " FOR UPDATE"

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def connect(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn, min_size=self._min_size, max_size=self._max_size, timeout=10
            )
        except _DRIVER_ERRORS as error:
            raise translate(error) from error

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            # close() waits for every connection to come back; a stuck one must not hang
            # shutdown forever.
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            pool.terminate()

    @property
    def reader(self) -> Executor:
        return _PgExecutor(self._connected())

    def transaction(self) -> _PgTransaction:
        return _PgTransaction(self._connected())

    def _connected(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("the store is not open; use 'async with open_store(url) as store'")
        return self._pool

    async def migrate(self) -> list[str]:
        async with self.transaction() as tx:
            await tx.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            await tx.execute(_migrations.CREATE_TABLE)
            rows = await tx.fetch("SELECT version, checksum FROM schema_migrations")
            todo = _migrations.pending(
                _migrations.shipped(self.dialect), {r["version"]: r["checksum"] for r in rows}
            )
            for migration in todo:
                await tx.execute(migration.sql)
                await tx.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                    "VALUES ($1, $2, $3, $4)",
                    migration.version, migration.name, migration.checksum,
                    utc_now().isoformat(),
                )
        return [m.name for m in todo]

    async def record_usage(self, events: Sequence[UsageEvent],
                           on_durable: Callable[[], object] | None = None) -> frozenset[str]:
        # on_durable is not called: the commit's answer arrives on the event loop itself, in
        # the turn this coroutine resumes, so there is no earlier turn to tell it in.
        # One statement for the whole batch; unnest keeps the (sorted) order of the arrays.
        # Then the counters, one UPDATE per (user, provider) in sorted order: the rows are
        # locked in the order every writer uses, so concurrent writers cannot deadlock.
        columns = list(zip(*(
            (e.request_id, e.session_id, e.user_id, e.provider, e.model, e.task_type,
             e.prompt_tokens, e.completion_tokens, e.latency_ms, e.status, e.created_at)
            for e in events
        ), strict=True))
        async with self.transaction() as tx:
            inserted = await tx.fetch(_INSERT_USAGE, *(list(c) for c in columns))
            fresh = frozenset(row["request_id"] for row in inserted)
            counts = Counter((e.user_id, e.provider) for e in events if e.request_id in fresh)
            await tx.executemany(_COUNT_USAGE, [(u, p, n) for (u, p), n in sorted(counts.items())])
        return fresh

    async def listen(self, channels: Mapping[str, Callable[[str], object]], *,
                     on_lost: Callable[[], object] | None = None,
                     check_every_s: float | None = None,
                     ) -> Callable[[], Awaitable[None]] | None:
        """LISTEN on a connection of its own (a pooled one would be handed to others). If
        that connection is lost, ``on_lost`` is called and notifications stop until the
        caller listens again (callers poll as well).

        A connection can also die silently: a network path that drops packets, or a
        server that hangs, leaves it open with nothing arriving — no notification and no
        error. With ``check_every_s``, a query is sent on it that often, and a connection
        that does not answer within the same time is ended, so ``on_lost`` is called."""
        try:
            conn = await asyncpg.connect(self._dsn, timeout=10)
        except _DRIVER_ERRORS as error:
            raise translate(error) from error

        def lost(_conn: object) -> None:
            if on_lost is not None:
                on_lost()

        try:
            for channel, callback in channels.items():
                await conn.add_listener(channel, _notified(callback))
            conn.add_termination_listener(lost)
        except BaseException as error:
            conn.terminate()
            if isinstance(error, _DRIVER_ERRORS):
                raise translate(error) from error
            raise
        checking = (None if check_every_s is None
                    else asyncio.create_task(_check_answers(conn, check_every_s)))

        async def stop() -> None:
            if checking is not None:
                checking.cancel()
            conn.remove_termination_listener(lost)  # stopping is not losing it
            try:
                await asyncio.wait_for(conn.close(), CLOSE_TIMEOUT_S)
            except (TimeoutError, *_DRIVER_ERRORS):
                conn.terminate()

        return stop

    async def notify(self, channel: str, payloads: Sequence[str]) -> None:
        """One statement for all ``payloads`` (NOTIFY takes at most 8000 bytes each)."""
        if payloads:
            await self.reader.execute(_NOTIFY, channel, list(payloads))


_NOTIFY = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload"
"""Notifies in the array's order (unnest's), in one round trip."""


_LISTEN_CHECK = "SELECT 1 -- beamish: is the listening connection answering?"
"""The check, named so that an operator reading pg_stat_activity knows the connection."""


async def _check_answers(conn: asyncpg.Connection, every_s: float) -> None:
    """Every ``every_s``, a query on ``conn``; a connection that does not answer within
    ``every_s``, or fails, is terminated (which calls its termination listeners). Ends
    when the connection has closed."""
    while not conn.is_closed():
        await asyncio.sleep(every_s)
        try:
            async with asyncio.timeout(every_s):
                await conn.execute(_LISTEN_CHECK)
        except (TimeoutError, *_DRIVER_ERRORS):
            if not conn.is_closed():  # one closed already called its listeners
                conn.terminate()
            return


def _notified(callback: Callable[[str], object],
              ) -> Callable[[object, int, str, object], None]:
    """asyncpg's listener signature around ``callback(payload)``."""

    def notified(_conn: object, _pid: int, _channel: str, payload: object) -> None:
        callback(str(payload))

    return notified
