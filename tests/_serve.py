"""A real ``BeamishServer`` for tests: free port, fresh SQLite file, echo provider, known key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from beamish.auth import TokenSigner
from beamish.server.serve import BeamishServer
from beamish.settings import ServerSettings, Settings

SECRET = "beamish-test-server-secret-0123456789abcdef"


@asynccontextmanager
async def serve(folder: Path, *, database_url: str | None = None,
                **server: Any) -> AsyncIterator[BeamishServer]:
    """``beamish serve`` on port 0 with these ``[server]`` options (rate limit lifted), on
    ``database_url`` (a SQLite file in ``folder`` when None)."""
    options: dict[str, Any] = {"port": 0, "message_rate_per_s": 1000, "message_burst": 1000,
                               **server}
    settings = Settings(database_url=database_url or f"sqlite:///{folder / 'serve.db'}",
                        secret_key=SecretStr(SECRET), server=ServerSettings(**options))
    async with BeamishServer(settings) as running:
        yield running


def token(user_id: str, *, admin: bool = False) -> str:
    """A token the test server accepts."""
    return TokenSigner(SECRET).issue(user_id, admin=admin)
