"""A real beamish API server for the HTTP tests, and small clients of what it speaks.

``serve_api`` starts a ``Application`` on a private SQLite file (echo provider, plus any
providers registered up front), serves the API over it — in-process, or with uvicorn on
127.0.0.1 (a port the kernel picks) — and hands back an ``ApiServer``: the runtime, an httpx
client of the server and tokens for any user. ``parse_sse`` reads an event stream;
``LLMLog`` collects the structured request log lines and lets a test wait for one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from beamish.application import Application
from beamish.auth import TokenSigner
from beamish.request_log import LOGGER_NAME
from beamish.server.api import ApiAuth, create_app
from beamish.server.api.deps import AUTH_STATE
from beamish.sessions.settings import SessionSettings
from beamish.settings import Settings
from beamish.store import ProviderRecord, SecretBox, open_store

SECRET = base64.urlsafe_b64encode(b"beamish-http-api-tests-key-32byt").decode()
"""A Fernet key (32 bytes, base64url): it signs tokens and encrypts API keys alike."""


def make_settings(tmp_path: Path, *, secret: str | None = SECRET) -> Settings:
    """Settings of a test server: a private SQLite file, no periodic sweeps."""
    return Settings(database_url=f"sqlite:///{tmp_path / 'beamish.db'}",
                    secret_key=None if secret is None else SecretStr(secret),
                    sessions=SessionSettings(ttl_s=60.0, sweep_interval_s=3600.0))


@dataclass
class ApiServer:
    """A running API server."""

    rt: Application
    url: str
    http: httpx.AsyncClient
    signer: TokenSigner

    def token(self, user_id: str = "ada", *, admin: bool = False) -> str:
        """A valid token for ``user_id``."""
        return self.signer.issue(user_id, admin=admin)

    def auth(self, user_id: str = "ada", *, admin: bool = False) -> dict[str, str]:
        """The Authorization header of ``user_id``."""
        return {"Authorization": f"Bearer {self.token(user_id, admin=admin)}"}

    def admin(self) -> dict[str, str]:
        """The Authorization header of the admin ``root``."""
        return self.auth("root", admin=True)


async def register(tmp_path: Path, records: Iterable[ProviderRecord]) -> None:
    """Register providers before the runtime starts, so its LLM client serves them."""
    async with open_store(make_settings(tmp_path).database_url) as store:
        for record in records:
            await store.register_provider(record)


def encrypted(key: str) -> bytes:
    """``key`` as the store keeps it."""
    return SecretBox(SECRET).encrypt(key)


@asynccontextmanager
async def serve_api(tmp_path: Path, *, settings: Settings | None = None,
                    auth: ApiAuth | None = None,
                    real_server: bool = False) -> AsyncIterator[ApiServer]:
    """Serve the API over a fresh runtime until the block ends.

    By default the client calls the app in-process (httpx's ``ASGITransport``, which reads
    whole responses); ``real_server=True`` serves it with uvicorn on 127.0.0.1, for tests
    of what only a socket shows (streaming as it happens, a client going away, the SDK).
    """
    settings = settings or make_settings(tmp_path)
    app = shared_app()
    async with Application(settings) as rt:
        app.state.beamish = rt
        setattr(app.state, AUTH_STATE, auth or ApiAuth.tokens(settings))
        try:
            async with contextlib.AsyncExitStack() as stack:
                if real_server:
                    url = await stack.enter_async_context(_uvicorn(app))
                    transport = None
                else:
                    url, transport = "http://127.0.0.1:4000", httpx.ASGITransport(app=app)
                http = await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url=url, timeout=10.0))
                yield ApiServer(rt, url, http, TokenSigner(SECRET))
        finally:
            del app.state.beamish
            delattr(app.state, AUTH_STATE)


@functools.cache
def shared_app() -> FastAPI:
    """The app every ``serve_api`` serves, given the test's runtime and auth in turn.

    Building the app costs more than starting a runtime, so the tests share one, handing
    it their runtime and auth as a host app's lifespan would (``create_app(runtime=...)``
    itself is tested in ``test_app.py`` and ``test_auth_http.py``).
    """
    return create_app()


@asynccontextmanager
async def _uvicorn(app: FastAPI) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off",
                            log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    config.load()
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        await server.shutdown()


@dataclass(frozen=True)
class SSEvent:
    """One server-sent event."""

    event: str | None
    data: str

    def json(self) -> Any:
        """The data, parsed."""
        return json.loads(self.data)


def parse_sse(text: str) -> list[SSEvent]:
    """Every event of an event stream's text."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name = None
        data: list[str] = []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        events.append(SSEvent(name, "\n".join(data)))
    return events


class LLMLog(logging.Handler):
    """Collects the ``beamish.server.llm_requests`` lines; ``wait_for(n)`` waits for n."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, Any]] = []
        self.texts: list[str] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        self.texts.append(text)
        self.lines.append(json.loads(text))
        self._changed.set()

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        """The lines, once there are at least ``count`` of them (5 s at most)."""
        async with asyncio.timeout(5):
            while len(self.lines) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.lines


@asynccontextmanager
async def watching_llm_log() -> AsyncIterator[LLMLog]:
    """An ``LLMLog`` attached to the request logger for the block."""
    handler = LLMLog()
    logger = logging.getLogger(LOGGER_NAME)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
