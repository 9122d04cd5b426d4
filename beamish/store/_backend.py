"""What a database backend gives the store: executors, transactions and the dialect's few quirks.

The store's SQL is written once, with PostgreSQL-style ``$1`` placeholders, and runs on both
backends (SQLite reads ``?1``; the SQLite executor rewrites them). What cannot be shared is
here as small hooks: the day expression for per-day stats, the row-lock suffix, and the bulk
ledger insert, which each driver does its own fast way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from beamish.store.errors import StoreError
from beamish.store.models import UsageEvent

Row = dict[str, Any]
UsageOutcome = frozenset[str] | StoreError
"""How a usage write went: the request ids it newly counted, or why nothing was written."""


class Executor(Protocol):
    """Runs SQL on one connection (or, for reads, any pooled connection)."""

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        """Every row of a query."""
        ...

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        """The first row of a query, or None."""
        ...

    async def execute(self, sql: str, *args: object) -> None:
        """Run a statement for its effect."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run a statement once per parameter row."""
        ...


class Transaction(Protocol):
    """``async with backend.transaction() as tx``: commit on success, roll back on error."""

    async def __aenter__(self) -> Executor: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None: ...


class Backend(ABC):
    """A connected database of one dialect."""

    dialect: str
    """``sqlite`` or ``postgres``: also the migrations folder name."""

    day_expr: str
    """SQL for the UTC day (``YYYY-MM-DD`` or a date) of ``created_at``."""

    lock_rows: str
    """Suffix that row-locks a SELECT inside a transaction (empty where the whole DB locks)."""

    def ledger_time(self, value: datetime) -> object:
        """``value`` as the ledger's ``created_at`` column holds it (to compare with it)."""
        return value

    @abstractmethod
    async def connect(self) -> None:
        """Open connections; raise ``StoreUnavailableError`` if the database is unreachable."""

    @abstractmethod
    async def migrate(self) -> list[str]:
        """Apply pending migrations under the dialect's lock; return their names."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close every connection."""

    @property
    @abstractmethod
    def reader(self) -> Executor:
        """An executor for reads outside any transaction."""

    @abstractmethod
    def transaction(self) -> Transaction:
        """A new write transaction."""

    groups_commits: bool = False
    """Whether ``record_usage`` hands the events at once to a writer that groups commits
    itself (SQLite's ledger pipe): it then returns a future, and the rows are written whether
    or not anyone awaits it. Otherwise (PostgreSQL) it returns a coroutine that writes when
    awaited, and the caller forms the batches."""

    @abstractmethod
    def record_usage(self, events: Sequence[UsageEvent],
                     on_durable: Callable[[], object] | None = None,
                     ) -> Awaitable[frozenset[str]]:
        """Insert ledger rows and count them in ``usage_count``, in one transaction; await
        the request ids that were inserted (and counted).

        ``on_durable`` (see ``Store.record_many``) may be called on the event loop, before
        the awaitable is done, once every event is committed and was new.

        ``events`` has unique request ids — sorted, unless the backend ``groups_commits``:
        writing in that order is half of the lock order that keeps concurrent writers from
        deadlocking. Request ids already in the ledger are skipped and not counted.

        Raises:
            StoreError: the store is not open (at once, for a backend that groups commits).
        """

    async def listen(self, channels: Mapping[str, Callable[[str], object]], *,
                     on_lost: Callable[[], object] | None = None,
                     check_every_s: float | None = None,
                     ) -> Callable[[], Awaitable[None]] | None:
        """Call ``channels[channel](payload)`` on the event loop for each notification on
        each channel, and ``on_lost()`` if the listening connection is lost (the server
        restarted or ended it, or — checked every ``check_every_s`` when given — it stopped
        answering: the caller listens again); returns the function that stops listening,
        or None where the database cannot notify (SQLite: callers poll)."""
        return None

    async def notify(self, channel: str, payloads: Sequence[str]) -> None:
        """Send each of ``payloads`` on ``channel``, in order; nothing where the database
        cannot notify."""
        del channel, payloads  # nobody can listen here (see ``listen``)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (every stored timestamp is UTC)."""
    return datetime.now(UTC)
