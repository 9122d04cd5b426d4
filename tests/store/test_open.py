"""Opening a store: URLs, unreachable databases, closed stores."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from beamish.store import (
    Store,
    StoreError,
    StoreUnavailableError,
    UnsupportedURLError,
    open_store,
)
from tests.store import _raw


def test_unknown_scheme_is_refused() -> None:
    """A URL without a backend raises UnsupportedURLError naming the scheme."""
    with pytest.raises(UnsupportedURLError, match=r"'mysql'.*sqlite:///"):
        open_store("mysql://localhost/db")


def test_in_memory_sqlite_is_refused() -> None:
    """The SQLite store needs a file (writer and reader connections)."""
    with pytest.raises(StoreError, match="needs a file path"):
        open_store("sqlite:///:memory:")


@pytest.mark.anyio
async def test_store_satisfies_the_protocol(store: Store) -> None:
    """Both implementations are a Store."""
    assert isinstance(store, Store)


@pytest.mark.anyio
async def test_unreachable_postgres_is_unavailable() -> None:
    """Nothing listening: StoreUnavailableError, not an OSError or asyncpg error."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(StoreUnavailableError, match="PostgreSQL unavailable"):
            async with open_store(f"postgresql://nobody@127.0.0.1:{port}/db"):
                pass


@pytest.mark.anyio
async def test_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    """A path that cannot be a database file raises StoreUnavailableError."""
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreUnavailableError, match="unable to open"):
        async with open_store(f"sqlite:///{tmp_path}/dir.db"):
            pass


@pytest.mark.anyio
async def test_closed_store_says_how_to_open(tmp_path: Path) -> None:
    """Using a store outside its context is a clear StoreError."""
    async with open_store(f"sqlite:///{tmp_path}/x.db") as store:
        pass
    with pytest.raises(StoreError, match="not open"):
        await store.get_default("ada")


@pytest.mark.anyio
async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    """The SQLite file is switched to WAL, so readers do not block the writer."""
    url = f"sqlite:///{tmp_path}/wal.db"
    async with open_store(url):
        assert await _raw.fetchval(url, "PRAGMA journal_mode") == "wal"
