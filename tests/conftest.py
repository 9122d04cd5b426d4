"""Fixtures shared by every test package.

``isolated_from_checkout`` (autouse): every test runs in an empty working directory of its
own with no ``BEAMISH_*`` variable set (but ``BEAMISH_TEST_*``, which configure the test run),
so neither a ``beamish.toml``, a ``.beamish/secret_key`` nor a ``beamish.db`` left in the
checkout by ``beamish serve`` nor the developer's shell can change a result.

``anyio_backend``: asyncio, the loop beamish runs on (the runtime's tests add a virtual clock).

``beamish``: a real ``beamish serve`` (``BeamishServer``) on a free port, with a fresh SQLite
file and the echo provider.

``fake_llm``: the session's one fake OpenAI/Anthropic server (``llm_server``), reset to no
faults, no recorded requests and default answers around each test.

``pg_server_url``: the one PostgreSQL server of the test session — the one named by
``BEAMISH_TEST_PG_URL``, else a private server started
with initdb/pg_ctl in a temporary directory (as the ``postgres`` user when run as root), else
None. Session-scoped here, at the root, so every package shares one server.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.store import _pg

if TYPE_CHECKING:
    from beamish.server.serve import BeamishServer
    from tests.llm.providers._fake_llm_server import FakeLLMServer


#: Variables that configure the test run itself, kept by ``isolated_from_checkout``.
TEST_RUN_PREFIX = "BEAMISH_TEST_"


@pytest.fixture(autouse=True)
def isolated_from_checkout(monkeypatch: pytest.MonkeyPatch,
                           tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run in an empty directory, with no BEAMISH_* variable but the test run's own."""
    for name in list(os.environ):
        if name.upper().startswith("BEAMISH_") and not name.startswith(TEST_RUN_PREFIX):
            monkeypatch.delenv(name)
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def anyio_backend() -> str:
    """Every async test runs on asyncio."""
    return "asyncio"


@pytest.fixture
async def beamish(tmp_path: Path) -> AsyncIterator[BeamishServer]:
    """beamish serve on a free port, a fresh SQLite file and the echo provider."""
    from tests._serve import serve  # imports the whole server: only for tests that use it

    async with serve(tmp_path) as running:
        yield running


@pytest.fixture(scope="session")
def llm_server() -> Iterator[FakeLLMServer]:
    """The session's fake OpenAI/Anthropic server, listening on 127.0.0.1."""
    from tests.llm.providers._fake_llm_server import FakeLLMServer

    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake_llm(llm_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    """The fake server with no faults; hung requests released after the test."""
    llm_server.reset()
    yield llm_server
    llm_server.reset()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str | None]:
    """URL of the session's PostgreSQL server, or None when there is none."""
    external = os.environ.get(_pg.ENV_URL)
    if external:
        yield external
        return
    bindir = _pg.find_bindir()
    if bindir is None:
        yield None
        return
    with _pg.local_server(bindir) as url:
        yield url
