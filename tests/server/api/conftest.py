"""Fixtures of the HTTP API tests: a real server over a real runtime, and a fake LLM server.

These tests use real sockets and asyncio's own clock; nothing in them waits on time: they
wait on answers, on events of the stream, or on the request log (``LLMLog.wait_for``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from beamish.store.secrets import ENV_VAR
from tests.llm.providers._fake_llm_server import FakeLLMServer
from tests.server.api._support import SECRET, ApiServer, serve_api


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


@pytest.fixture(scope="session")
def llm_server() -> Iterator[FakeLLMServer]:
    """One fake OpenAI/Anthropic server for the whole session."""
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake_llm(llm_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    """The fake server with no faults; hung requests released after the test."""
    llm_server.reset()
    yield llm_server
    llm_server.reset()
