"""mount_beamish: the HTTP API, the Phoenix socket and the runtime in a host app, one call;
a missing or malformed master key fails the app's start, whichever way beamish is mounted."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from websockets.asyncio.client import connect

import beamish
from beamish.auth import TokenSigner
from beamish.server import mount_beamish
from beamish.server.api import create_app, install_api
from beamish.server.mount import conversation_history
from beamish.settings import InvalidSecretKeyError, ServerSettings, Settings
from tests.channels._phx import PhxClient, ok

pytestmark = pytest.mark.anyio

SECRET = base64.urlsafe_b64encode(b"beamish-mount-tests-key-32-bytes").decode()
NOT_FERNET = "a-long-enough-signing-key-but-not-fernet"


def _settings(tmp_path: Path, secret: str | None = SECRET) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'host.db'}",
                    secret_key=SecretStr(secret) if secret is not None else None,
                    server=ServerSettings(port=0))


def _host_app() -> FastAPI:
    app = FastAPI()

    @app.get("/mine")
    async def mine() -> dict[str, str]:
        return {"host": "yes"}

    return app


@asynccontextmanager
async def _uvicorn(app: FastAPI) -> AsyncIterator[int]:
    """``app`` under a real uvicorn on a free port, its lifespan run by uvicorn (lifespan on)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_config=None)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    assert not server.should_exit, "the app did not start"
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        await server.shutdown()


async def test_one_call_mounts_the_api_and_the_socket(tmp_path: Path) -> None:
    """Host routes, /health, /v1 and a conversation over the socket, all from one call."""
    app = _host_app()
    mount_beamish(app, _settings(tmp_path))
    token = TokenSigner(SECRET).issue("ada")
    async with _uvicorn(app) as port:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/mine")).json() == {"host": "yes"}
            assert (await http.get("/health")).status_code == 200
            answer = await http.post(
                "/v1/chat/completions", headers={"Authorization": f"Bearer {token}"},
                json={"messages": [{"role": "user", "content": "hi"}]})
            assert answer.json()["choices"][0]["message"]["content"] == "[echo] hi"
        url = f"ws://127.0.0.1:{port}/socket/websocket?token={token}&vsn=2.0.0"
        async with connect(url) as ws:
            client = PhxClient(ws)
            join_ref, reply = await client.join("conversation:c1", {"session_id": "s1"})
            assert reply[4] == ok({"conversation_id": "c1", "session_id": "s1", "last_id": 0})
            sent = await client.call("conversation:c1", "message", {"content": "hello"},
                                     join_ref)
            request_id = sent[4]["response"]["request_id"]
            done = await client.expect(lambda f: f[3] == "done"
                                       and f[4].get("request_id") == request_id)
            assert done[4]["provider"] == "echo"
        usage = await app.state.beamish.store.session_totals("ada", "s1")
        assert usage.requests == 1


async def test_the_host_lifespan_runs_inside_beamish(tmp_path: Path) -> None:
    """The host's own lifespan still runs, with the runtime already started around it."""
    seen: list[str] = []

    @asynccontextmanager
    async def host_lifespan(app: FastAPI) -> AsyncIterator[None]:
        seen.append(f"start {type(app.state.beamish).__name__}")
        yield
        seen.append("stop")

    app = FastAPI(lifespan=host_lifespan)
    mount_beamish(app, _settings(tmp_path))
    async with app.router.lifespan_context(app):
        assert seen == ["start Application"]
    assert seen == ["start Application", "stop"]


@pytest.mark.parametrize("secret", [None, NOT_FERNET])
async def test_mount_beamish_refuses_a_bad_key_at_start(tmp_path: Path,
                                                        secret: str | None) -> None:
    """No key, or one Fernet refuses: the start fails saying how to make one."""
    app = _host_app()
    mount_beamish(app, _settings(tmp_path, secret))
    with pytest.raises(InvalidSecretKeyError, match=r"Fernet\.generate_key\(\)"):
        async with app.router.lifespan_context(app):
            pytest.fail("the app started")
    assert not (tmp_path / "host.db").exists()  # nothing was started


async def test_install_api_refuses_a_bad_key_at_start(tmp_path: Path) -> None:
    """install_api under beamish.lifespan(): a non-Fernet key fails the start, not requests."""
    app = FastAPI(lifespan=beamish.lifespan(_settings(tmp_path, NOT_FERNET)))
    install_api(app)
    with pytest.raises(InvalidSecretKeyError, match="not a Fernet key"):
        async with app.router.lifespan_context(app):
            pytest.fail("the app started")


async def test_create_app_refuses_a_missing_key_at_start(tmp_path: Path) -> None:
    """create_app(settings) without any key: the start fails naming BEAMISH_SECRET_KEY."""
    app = create_app(_settings(tmp_path, None))
    with pytest.raises(InvalidSecretKeyError, match="BEAMISH_SECRET_KEY is not set"):
        async with app.router.lifespan_context(app):
            pytest.fail("the app started")


def test_the_stored_conversation_bounds_come_from_the_server_settings() -> None:
    """[server] max_stored_messages, max_stored_chars and max_stored_conversations_per_user
    bound the conversations' history."""
    server = ServerSettings(max_stored_messages=7, max_stored_chars=2048,
                            max_stored_conversations_per_user=3)
    history = conversation_history(Settings(server=server))
    assert (history.max_stored_messages, history.max_stored_chars,
            history.max_stored_conversations_per_user) == (7, 2048, 3)
