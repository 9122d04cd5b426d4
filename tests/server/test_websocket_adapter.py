"""The adapter into uvicorn's WebSocket internals: verified releases get the lean protocol;
any other gets uvicorn's stock one, which serves a real Phoenix join and answer."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from beamish import _versions
from beamish.server import websocket_adapter
from beamish.server.websocket_adapter import (
    STOCK,
    VERIFIED_UVICORN,
    VERIFIED_WEBSOCKETS,
    websocket_protocol,
)
from beamish.server.websocket_protocol import LeanWebSocketProtocol
from tests._serve import serve, token
from tests.channels._phx import PhxClient, ok

pytestmark = pytest.mark.anyio

UNKNOWN: tuple[_versions.Release, _versions.Release] = ((0, 0), (0, 0))
"""A verified range no release is in: forces the stock protocol."""


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """warn_once forgets what this process warned of before the test."""
    monkeypatch.setattr(_versions, "_warned", set())


def test_the_installed_uvicorn_and_websockets_are_the_verified_ones() -> None:
    """Fails after an upgrade past VERIFIED_UVICORN or VERIFIED_WEBSOCKETS: re-check
    LeanWebSocketProtocol against the new release (its tests, and what it overrides), then
    widen the range and the bound in pyproject.toml."""
    for name, bounds in (("uvicorn", VERIFIED_UVICORN), ("websockets", VERIFIED_WEBSOCKETS)):
        installed = _versions.installed(name)
        assert _versions.verified(installed, *bounds), (
            f"{name} {installed} is outside the verified range {bounds}")


@pytest.mark.usefixtures("fresh_warnings")
def test_verified_releases_get_the_lean_protocol_without_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    """With the installed (verified) releases: LeanWebSocketProtocol, nothing logged."""
    with caplog.at_level(logging.WARNING, logger="beamish.server"):
        assert websocket_protocol() is LeanWebSocketProtocol
    assert caplog.records == []


@pytest.mark.usefixtures("fresh_warnings")
@pytest.mark.parametrize("range_name", ["VERIFIED_UVICORN", "VERIFIED_WEBSOCKETS"])
def test_an_unverified_release_gets_the_stock_protocol_and_one_warning(
        range_name: str, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside either range: uvicorn's "auto", and the warning names the release, once."""
    monkeypatch.setattr(websocket_adapter, range_name, UNKNOWN)
    with caplog.at_level(logging.WARNING, logger="beamish.server"):
        assert [websocket_protocol(), websocket_protocol()] == [STOCK, STOCK]
    name = "uvicorn" if range_name == "VERIFIED_UVICORN" else "websockets"
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert f"{name} {_versions.installed(name)}" in messages[0]
    assert "stock protocol" in messages[0]


@pytest.mark.usefixtures("fresh_warnings")
async def test_beamish_serve_with_the_stock_protocol_joins_and_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real BeamishServer forced onto uvicorn's stock protocol: a Phoenix join, a message
    and its streamed answer over a real WebSocket, and the usage recorded."""
    monkeypatch.setattr(websocket_adapter, "VERIFIED_UVICORN", UNKNOWN)
    async with serve(tmp_path) as beamish:
        assert beamish._uvicorn is not None
        assert beamish._uvicorn.config.ws_protocol_class is not LeanWebSocketProtocol
        url = f"ws://127.0.0.1:{beamish.port}/socket/websocket?token={token('ada')}&vsn=2.0.0"
        async with connect(url) as ws:
            client = PhxClient(ws)
            join_ref, reply = await client.join("conversation:c1", {"session_id": "s1"})
            assert reply[4] == ok({"conversation_id": "c1", "session_id": "s1", "last_id": 0})
            answer = await client.call("conversation:c1", "message", {"content": "hi there"},
                                       join_ref)
            request_id = answer[4]["response"]["request_id"]
            done = await client.expect(
                lambda f: f[3] == "done" and f[4].get("request_id") == request_id)
        assert done[4]["provider"] == "echo"
        usage = await beamish.runtime.store.session_totals("ada", "s1")
        assert usage.requests == 1
