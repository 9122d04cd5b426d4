"""Raw SQL on a test database, for setting up states the public API refuses to create."""

from __future__ import annotations

from typing import Any

import aiosqlite
import asyncpg

from beamish.store._open import backend_for


async def fetchval(url: str, sql: str) -> Any:
    """The first column of the first row of ``sql`` (no parameters; same text on both)."""
    if url.startswith("sqlite:///"):
        async with aiosqlite.connect(url.removeprefix("sqlite:///")) as lite:
            rows = list(await lite.execute_fetchall(sql))
            await lite.commit()
            return rows[0][0] if rows else None
    pg = await asyncpg.connect(url)
    try:
        return await pg.fetchval(sql)
    finally:
        await pg.close()


def dialect(url: str) -> str:
    """``sqlite`` or ``postgres``."""
    return backend_for(url).dialect


async def fetchcol(url: str, sql: str) -> list[Any]:
    """The first column of every row of ``sql``."""
    if url.startswith("sqlite:///"):
        async with aiosqlite.connect(url.removeprefix("sqlite:///")) as lite:
            return [row[0] for row in await lite.execute_fetchall(sql)]
    pg = await asyncpg.connect(url)
    try:
        return [row[0] for row in await pg.fetch(sql)]
    finally:
        await pg.close()


async def script(url: str, sqlite_sql: str, postgres_sql: str) -> None:
    """Run a multi-statement script written for the URL's dialect."""
    if url.startswith("sqlite:///"):
        async with aiosqlite.connect(url.removeprefix("sqlite:///")) as lite:
            await lite.executescript(sqlite_sql)
        return
    pg = await asyncpg.connect(url)
    try:
        await pg.execute(postgres_sql)
    finally:
        await pg.close()
