"""A real ``beamish serve`` (with the web app) in a thread of its own, for browser tests.

Playwright's sync API drives the browser from the test's thread, so the server runs its own
event loop in another: ``WebServer.start()`` returns once it listens, ``stop()`` once it has
stopped (sockets closed with 1012, "service restart", as ``beamish serve`` does on SIGTERM
with a restart). Settings as ``tests/_serve.py``'s, plus an ``openai_compatible`` provider
pointing at the fake LLM server; the key is a Fernet key, so the CLI accepts it too.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.fernet import Fernet
from pydantic import SecretStr

from beamish.auth import TokenSigner
from beamish.llm.settings import LLMSettings, ProviderSettings
from beamish.server.serve import BeamishServer
from beamish.settings import ServerSettings, Settings
from beamish.store import Provider
from beamish.web import install_web
from tests.llm.providers._fake_llm_server import OPENAI_KEY

SECRET = Fernet.generate_key().decode()


def token(user_id: str, *, admin: bool = False) -> str:
    """A token the test servers accept."""
    return TokenSigner(SECRET).issue(user_id, admin=admin)


class WebServer:
    """``beamish serve`` with the web app at ``/``, in its own thread and loop."""

    def __init__(self, folder: Path, *, openai_url: str | None = None, port: int = 0,
                 **server: Any) -> None:
        providers: dict[Provider, ProviderSettings] = {} if openai_url is None else {
            "openai_compatible": ProviderSettings(base_url=openai_url,
                                                  api_key=SecretStr(OPENAI_KEY))}
        self.database = folder / "web.db"
        self.settings = Settings(
            database_url=f"sqlite:///{self.database}", secret_key=SecretStr(SECRET),
            llm=LLMSettings(providers=providers),
            server=ServerSettings(port=port, message_rate_per_s=1000, message_burst=1000,
                                  **server))
        self._thread: threading.Thread | None = None
        self._server: BeamishServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None
        return self._server.url

    @property
    def port(self) -> int:
        """The port listened on."""
        assert self._server is not None
        return self._server.port

    def start(self) -> WebServer:
        """Start serving; return once listening (or raise what stopped the start)."""
        started: Future[None] = Future()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(started)),
                                        name="beamish-web-test-server", daemon=True)
        self._thread.start()
        started.result(timeout=30)
        return self

    async def _run(self, started: Future[None]) -> None:
        try:
            async with BeamishServer(self.settings, installs=[install_web]) as server:
                self._server, self._loop = server, asyncio.get_running_loop()
                started.set_result(None)
                await server.wait()
        except BaseException as error:
            if not started.done():
                started.set_exception(error)
            raise

    def stop(self) -> None:
        """Stop as on a restart (1012 to sockets); return once stopped."""
        if self._loop is not None and self._server is not None:
            server = self._server
            self._loop.call_soon_threadsafe(lambda: server.stop(restart=True))
        if self._thread is not None:
            self._thread.join(timeout=30)
            assert not self._thread.is_alive(), "the test server did not stop"
        self._thread = self._server = self._loop = None


class HostServer:
    """A host FastAPI app under uvicorn (its lifespan on), in its own thread and loop."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HostServer:
        """Serve; return once listening."""
        started: Future[None] = Future()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(started)),
                                        name="beamish-web-test-host", daemon=True)
        self._thread.start()
        started.result(timeout=30)
        return self

    async def _run(self, started: Future[None]) -> None:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, lifespan="on",
                                log_config=None)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup()
        if server.should_exit:
            started.set_exception(RuntimeError("the host app did not start"))
            return
        self.port = int(server.servers[0].sockets[0].getsockname()[1])
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        started.set_result(None)
        try:
            await self._stop.wait()
        finally:
            await server.shutdown()

    def stop(self) -> None:
        """Stop serving; return once stopped."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
            assert not self._thread.is_alive(), "the host app did not stop"
