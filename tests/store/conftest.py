"""Fixtures: every store test runs on SQLite and on a real PostgreSQL server.

``store_url`` is parametrized over both backends and gives each test a fresh database: a new
SQLite file in ``tmp_path``, or a ``CREATE DATABASE`` on the session's PostgreSQL server
(see ``tests/store/_pg.py``). Without PostgreSQL the postgres cases skip — except when
``CI=true``, where they fail, so CI can never go green by not testing PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from beamish.store import Store, open_store
from beamish.store._store import SqlStore
from tests.store import _pg
from tests.store.helpers import configured_user


def _require(server_url: str | None) -> str:
    if server_url is not None:
        return server_url
    reason = (f"no PostgreSQL found: install it (apt-get install -y postgresql) so initdb and "
              f"pg_ctl are on PATH or under /usr/lib/postgresql, or set {_pg.ENV_URL}")
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(params=["sqlite", "postgres"])
async def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                    ) -> AsyncIterator[str]:
    """A URL naming a fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/beamish.db"
        return
    server_url = _require(request.getfixturevalue("pg_server_url"))
    name = f"beamish_test_{uuid4().hex[:16]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield _pg.with_database(server_url, name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An open, migrated store on a fresh database."""
    async with open_store(store_url) as opened:
        yield opened


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    """An open, migrated SQLite store with a configured user (for what only SQLite does)."""
    async with open_store(f"sqlite:///{tmp_path / 'sqlite-only.db'}") as store:
        assert isinstance(store, SqlStore)
        await configured_user(store)
        yield store
