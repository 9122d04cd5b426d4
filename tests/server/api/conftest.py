"""Fixtures of the HTTP API tests: a real server over a real runtime, and a fake LLM server.

These tests use real sockets and asyncio's own clock; nothing in them waits on time: they
wait on answers, on events of the stream, or on the request log (``LLMLog.wait_for``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from beamish.store.secrets import ENV_VAR
from tests.server.api._support import SECRET, ApiServer, make_settings, serve_api
from tests.store.conftest import store_url


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """BEAMISH_SECRET_KEY is the tests' key (the LLM client decrypts stored keys with it)."""
    monkeypatch.setenv(ENV_VAR, SECRET)
    return SECRET


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiServer]:
    """A server over a fresh runtime (SQLite, echo)."""
    async with serve_api(tmp_path) as server:
        yield server


@pytest.fixture
async def api_on_both(tmp_path: Path, store_url: str) -> AsyncIterator[ApiServer]:
    """A server over a fresh runtime (echo) on a fresh database of each backend."""
    settings = make_settings(tmp_path).model_copy(update={"database_url": store_url})
    async with serve_api(tmp_path, settings=settings) as server:
        yield server


__all__ = ["store_url"]
