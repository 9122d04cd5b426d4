"""The SQLite ledger's writes: ``LedgerPipe``, group commits formed in the writer's thread.

Every usage event is one ledger row, and the usage recorder promises its caller that the row
is durable before the request is acknowledged. On SQLite a commit costs an fsync (about a
millisecond), so rows must share commits. They could be grouped on the event loop — gather
the events of a moment, hand the batch over, wait for it — but then each event waits for
the loop twice (to form its batch, then to hand the next one over once this one is done),
and a busy loop's turn is itself about a millisecond.

The pipe groups them where the commits happen instead. ``submit`` appends rows to a queue
and, if the writer connection's thread has no drain of the queue scheduled, schedules one
(on aiosqlite's own request queue, so it runs in order with the connection's other work). A
drain takes what is queued (up to ``ROUND_ROWS`` rows), inserts it in one statement (one
implicit transaction: the connection is in autocommit mode), tells the loop the outcome with
one callback, and goes again while more is queued — up to ``DRAIN_ROUNDS`` commits, then it
leaves the thread to the connection's other requests and the loop schedules the next drain.
So under load each commit takes what queued during the previous one: an event waits for the
commit in progress and its own, and for the loop once.

Transactions. A drain must not run inside a transaction (its rows would commit or roll back
with it), so none is scheduled while the backend's writer lock is held; the transaction's end
calls ``resume``. A drain scheduled before a transaction began runs before its ``BEGIN``,
which aiosqlite queued after it.

aiosqlite. Scheduling a drain on aiosqlite's thread uses two of its private parts, its
request queue (``Connection._tx``) and its sqlite3 connection (``Connection._conn``), so it
sits behind one adapter, ``writer_thread``: for the aiosqlite releases in
``VERIFIED_AIOSQLITE`` (the versions whose worker loop was read and tested; pyproject.toml
bounds aiosqlite below the same release) the drains run on aiosqlite's thread as above. For
any other release they run, with a warning logged once, on a thread and a sqlite3
connection of the pipe's own (``_OwnThread``, the standard library's public API only): the
same drains, group commits and counting, but on a second writer connection, which waits
for a transaction of the first through SQLite's busy timeout instead of behind it in one
queue.

Counting. A row whose request id is already in the ledger inserts nothing (``ON CONFLICT DO
NOTHING``); the trigger of migration 0003 counts each inserted row in the same statement. If
the statement inserted fewer rows than it was given, the request ids it did insert are read
back by rowid, and each is credited to the first submission that carried it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

import aiosqlite

from beamish import _versions
from beamish.store._backend import UsageOutcome
from beamish.store._sqlite_errors import translate
from beamish.store.errors import StoreError
from beamish.store.models import UsageEvent

DRAIN_ROUNDS = 8
"""Commits a drain makes at most before the writer's other requests get their turn."""
ROUND_ROWS = 512
"""Rows a commit takes at most, unless one submission holds more: a backlog is split over
commits, so the event loop tells one commit's callers while the next is written."""
MAX_VALUES_ROWS = 1024
"""Rows one VALUES statement holds at most (more go as one JSON array)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_LEDGER_COLUMNS = """request_id, session_id, user_id, provider, model, task_type,
    prompt_tokens, completion_tokens, latency_ms, status, created_at"""
_LEDGER_ROW = "(?,?,?,?,?,?,?,?,?,?,?)"
LEDGER_ROW_VARIABLES = _LEDGER_ROW.count("?")
_RECORD_USAGE_JSON = f"""INSERT INTO usage_events ({_LEDGER_COLUMNS})
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
    json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
    json_extract(value, '$[6]'), json_extract(value, '$[7]'), json_extract(value, '$[8]'),
    json_extract(value, '$[9]'), json_extract(value, '$[10]')
FROM json_each(?) WHERE true
ON CONFLICT (request_id) DO NOTHING"""
_INSERTED_SINCE = "SELECT request_id FROM usage_events WHERE id > ? AND id <= ?"

Then = Callable[[UsageOutcome], object]

log = logging.getLogger("beamish.store")

VERIFIED_AIOSQLITE: Final = ((0, 20), (0, 23))
"""The aiosqlite releases ``[from, below)`` whose private request queue the pipe may use."""

_Row = tuple[object, ...]


def ledger_micros(value: datetime) -> int:
    """A ledger timestamp as stored: exact integer microseconds since the Unix epoch (UTC).

    Only ``usage_events.created_at`` uses it (migration 0002 says why); timedelta floor
    division keeps every microsecond, where ``timestamp()`` would round through a float.
    """
    return (value - _EPOCH) // _MICROSECOND


def usage_row(e: UsageEvent) -> _Row:
    """An event as the ledger statement binds it."""
    return (e.request_id, e.session_id, e.user_id, e.provider, e.model, e.task_type,
            e.prompt_tokens, e.completion_tokens, e.latency_ms, e.status,
            ledger_micros(e.created_at))


@functools.cache  # one per power of two up to MAX_VALUES_ROWS
def _values_statement(rows: int) -> str:
    return (f"INSERT INTO usage_events ({_LEDGER_COLUMNS}) VALUES "
            f"{','.join([_LEDGER_ROW] * rows)} ON CONFLICT (request_id) DO NOTHING")


def insert_statement(rows: list[_Row], max_values_rows: int) -> tuple[str, list[object]]:
    """One INSERT of ``rows`` (at least one) and its values.

    The rows are bound as VALUES, padded to a power of two with repeats of the last row (a
    repeated request id inserts nothing), so a handful of statements serve every batch size;
    more rows than ``max_values_rows`` go as one JSON array instead. No RETURNING: the
    writer's thread would take the GIL back once per returned row, and under load each of
    those waits for the busy event loop; the row count tells which ids were new instead.
    """
    if len(rows) > max_values_rows:
        return _RECORD_USAGE_JSON, [json.dumps(rows, separators=(",", ":"))]
    padded = 1 << (len(rows) - 1).bit_length()
    padding = [rows[-1]] * (padded - len(rows))
    return _values_statement(padded), [value for row in rows + padding for value in row]


# -- the adapter: whose thread runs the drains ---------------------------------------------------


class WriterThread(Protocol):
    """A thread that runs the pipe's drains in order, and the sqlite3 connection they use."""

    def run_soon(self, job: Callable[[], object]) -> None:
        """Queue ``job`` to run on the thread (called on the event loop)."""

    def connection(self) -> sqlite3.Connection:
        """The connection the drains write with (called on the thread)."""

    def close(self) -> None:
        """No job is queued after this one (called on the event loop)."""


class _AiosqliteThread:
    """aiosqlite's own thread, reached through its private request queue (verified range)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._requests = conn._tx  # aiosqlite's queue to its thread: (future, job) pairs
        self._raw = conn._conn  # the sqlite3 connection, used only from its thread
        self._loop = asyncio.get_running_loop()

    def run_soon(self, job: Callable[[], object]) -> None:
        # A future nobody awaits (the drain tells the loop itself): aiosqlite's thread sets
        # its result, as it does for every request it runs.
        self._requests.put_nowait((self._loop.create_future(), job))

    def connection(self) -> sqlite3.Connection:
        return self._raw

    def close(self) -> None:
        """Nothing to do: aiosqlite closes its connection after the queued drain."""


class _OwnThread:
    """A thread and a sqlite3 connection of the pipe's own: public API only (the fallback).

    The connection is opened by the first drain, on the thread, so that an error opening it
    reaches the submissions as a StoreError; ``close`` closes it after the last drain.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._raw: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="beamish-ledger")

    def run_soon(self, job: Callable[[], object]) -> None:
        self._thread.submit(job)

    def connection(self) -> sqlite3.Connection:
        if self._raw is None:
            self._raw = self._connect()
        return self._raw

    def close(self) -> None:
        self._thread.submit(self._close_connection)
        self._thread.shutdown(wait=False)

    def _close_connection(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None


def writer_thread(conn: aiosqlite.Connection,
                  connect: Callable[[], sqlite3.Connection]) -> WriterThread:
    """aiosqlite's thread if the installed aiosqlite is in ``VERIFIED_AIOSQLITE``; else a
    thread of its own writing through ``connect()``, with a warning logged once."""
    version = _versions.installed("aiosqlite")
    if _versions.verified(version, *VERIFIED_AIOSQLITE):
        return _AiosqliteThread(conn)
    _versions.warn_once(log, (
        f"aiosqlite {version} is not one the usage ledger was verified with "
        f"({_range(VERIFIED_AIOSQLITE)}); it writes usage on a connection of its own"))
    return _OwnThread(connect)


def _range(bounds: tuple[_versions.Release, _versions.Release]) -> str:
    lowest, below = (".".join(map(str, bound)) for bound in bounds)
    return f">={lowest},<{below}"


class _Submission:
    __slots__ = ("ids", "rows", "then")

    def __init__(self, rows: list[_Row], ids: frozenset[str], then: Then) -> None:
        self.rows = rows
        self.ids = ids
        self.then = then


class LedgerPipe:
    """Ledger rows on their way to the writer connection's thread; see the module docs."""

    def __init__(self, thread: WriterThread, writer_lock: asyncio.Lock,
                 max_values_rows: int) -> None:
        self._thread = thread
        self._writer_lock = writer_lock
        self._max_values_rows = max_values_rows
        self._loop = asyncio.get_running_loop()
        self._queued: deque[_Submission] = deque()  # appended on the loop, taken by the thread
        self._scheduled = False  # a drain is queued or running (read and set on the loop)
        self._closed = False
        self.commits = 0
        """Statements committed so far (each holds one or more submissions)."""

    def submit(self, events: Sequence[UsageEvent], then: Then) -> None:
        """Write ``events`` (unique request ids, at least one) in the next group commit;
        ``then(outcome)`` runs on the event loop once it is known.

        Raises:
            StoreError: the store is closed.
        """
        if self._closed:
            raise StoreError("the store is closed; use 'async with open_store(url) as store'")
        self._queued.append(_Submission([usage_row(e) for e in events],
                                        frozenset(e.request_id for e in events), then))
        if not self._scheduled and not self._writer_lock.locked():
            self._schedule()

    def resume(self) -> None:
        """A transaction ended: drain what queued while it was open."""
        if self._queued and not self._scheduled and not self._closed:
            self._schedule()

    def close(self) -> None:
        """Refuse new submissions; the drain scheduled (if any) still runs, before the close
        the connection queues after it. What is left then is failed in ``_drained``."""
        self._closed = True
        self._thread.close()
        if not self._scheduled:
            self._fail_queued()

    def _schedule(self) -> None:
        self._scheduled = True
        self._thread.run_soon(self._drain)

    # -- in the writer's thread ----------------------------------------------------------------

    def _drain(self) -> None:
        queued = self._queued
        call_soon = self._loop.call_soon_threadsafe
        for _ in range(DRAIN_ROUNDS):
            if not queued:
                break
            first = queued.popleft()
            taken, rows = [first], len(first.rows)
            while queued and rows + len(queued[0].rows) <= ROUND_ROWS:
                submission = queued.popleft()
                taken.append(submission)
                rows += len(submission.rows)
            outcome = self._insert(taken)
            if queued:
                call_soon(self._tell, taken, outcome, False)
                continue
            call_soon(self._tell, taken, outcome, True)
            return
        call_soon(self._drained)

    def _insert(self, taken: list[_Submission]) -> frozenset[str] | StoreError | None:
        """Insert the rows of ``taken``: the ids that were new, None if all were, or the
        error (a bug too: an exception here would be dropped by aiosqlite's thread, and the
        submissions never told)."""
        rows = [row for submission in taken for row in submission.rows]
        sql, args = insert_statement(rows, self._max_values_rows)
        try:
            raw = self._thread.connection()
            cursor = raw.execute(sql, args)
            inserted, last_id = cursor.rowcount, cursor.lastrowid or 0
            if inserted == len(rows):
                return None
            if inserted == 0:
                return frozenset()
            # The new rows took consecutive rowids ending at last_id (a new rowid is the
            # largest one plus one), and ledger rows are never deleted.
            fresh = raw.execute(_INSERTED_SINCE, (last_id - inserted, last_id))
            return frozenset(row[0] for row in fresh)
        except sqlite3.Error as error:
            return translate(error)
        except Exception as error:  # handed to the callers, not swallowed
            return StoreError(f"recording usage failed: {error!r}")

    # -- back on the event loop ----------------------------------------------------------------

    def _tell(self, taken: list[_Submission], new: frozenset[str] | StoreError | None,
              last: bool) -> None:
        if not isinstance(new, StoreError):
            self.commits += 1
        credited: set[str] = set()
        for submission in taken:
            outcome: UsageOutcome
            if isinstance(new, StoreError):
                outcome = new
            elif new is None:  # every row was new
                outcome = submission.ids
            else:  # an id repeated across submissions is counted for the first
                outcome = (submission.ids & new) - credited
                credited |= outcome
            try:
                submission.then(outcome)
            except Exception as error:  # one caller's bug must not strand the others
                self._loop.call_exception_handler({
                    "message": "a usage write's callback failed", "exception": error})
        if last:
            self._drained()

    def _drained(self) -> None:
        self._scheduled = False
        if self._closed:
            self._fail_queued()
        elif self._queued and not self._writer_lock.locked():
            self._schedule()

    def _fail_queued(self) -> None:
        error = StoreError("the store closed before this usage was written; it is not recorded")
        while self._queued:
            self._queued.popleft().then(error)
