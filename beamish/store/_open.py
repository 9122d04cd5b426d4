"""Choosing a backend from a URL, and the ``migrate`` entry point."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from beamish.store._backend import Backend
from beamish.store._interface import Store
from beamish.store._postgres import PostgresBackend
from beamish.store._sqlite import SqliteBackend
from beamish.store._store import SqlStore
from beamish.store.errors import UnsupportedURLError

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")


def backend_for(url: str) -> Backend:
    """The backend a URL names.

    ``sqlite:///relative.db`` and ``sqlite:////absolute.db`` (SQLAlchemy's convention);
    anything asyncpg accepts after ``postgresql://`` or ``postgres://``.
    """
    if url.startswith(_SQLITE):
        return SqliteBackend(url.removeprefix(_SQLITE))
    if url.startswith(_POSTGRES):
        return PostgresBackend(url)
    raise UnsupportedURLError(url)


def open_store(url: str, *, migrate: bool = True) -> AbstractAsyncContextManager[Store]:
    """The store at ``url``, as an async context manager that connects and closes it.

    Args:
        url: ``sqlite:///path/to.db`` or ``postgresql://user@host/db``.
        migrate: apply pending migrations on entry (default True).

    Example::

        async with open_store("sqlite:///beamish.db") as store:
            await store.upsert_profile("ada", tier="premium")
    """
    return SqlStore(backend_for(url), migrate=migrate)


async def migrate(url: str) -> list[str]:
    """Bring the database at ``url`` up to date; return the migrations applied.

    Raises:
        MigrationChecksumError: an applied migration file was changed.
        UnknownMigrationError: the database is newer than this code.
        StoreUnavailableError: the database cannot be reached.
    """
    async with SqlStore(backend_for(url), migrate=False) as store:
        return await store.migrate()
