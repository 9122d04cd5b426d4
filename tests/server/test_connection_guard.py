"""Connection caps and deadlines over real sockets against a real ``beamish serve`` (and a
bare uvicorn for the handshake), and accept() shortages reported once per interval."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from websockets.asyncio.client import connect

from beamish.server.connection_guard import ConnectionGuard, GuardOptions
from beamish.server.connections import Refusal
from beamish.server.serve import BeamishServer
from beamish.server.websocket_adapter import websocket_protocol
from tests._serve import serve, token
from tests.channels._phx import READ_TIMEOUT, PhxClient, ok

pytestmark = pytest.mark.anyio

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]

UPGRADE = (b"GET /socket/websocket HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\n"
           b"connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"sec-websocket-version: 13\r\n\r\n")


async def open_raw(port: int, source: str = "127.0.0.1") -> Stream:
    """A raw TCP connection to the server from ``source`` (any 127.x address is local)."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def until_closed(stream: Stream) -> bytes:
    """Everything the server sends until it closes the connection (a safety net for reads:
    a connection left open fails the test instead of hanging it)."""
    reader, _ = stream
    received = b""
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            while chunk := await reader.read(65536):
                received += chunk
    except ConnectionResetError:
        pass
    return received


def close_all(streams: list[Stream]) -> None:
    for _, writer in streams:
        writer.close()


def guard_of(beamish: BeamishServer) -> ConnectionGuard:
    assert beamish.connections is not None
    return beamish.connections


async def test_idle_connections_over_the_per_address_cap_are_refused_others_still_served(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Idle raw connections beyond the per-address cap are closed at accept, counted and
    logged once; /health and a Phoenix join from another address still work."""
    async with serve(tmp_path, max_connections_per_ip=3) as beamish:
        guard = guard_of(beamish)
        idle = [await open_raw(beamish.port, "127.0.0.2") for _ in range(3)]
        refused = [await open_raw(beamish.port, "127.0.0.2") for _ in range(3)]
        for stream in refused:
            assert await until_closed(stream) == b""
        # Accepted in order: the refusals came after the first three were admitted.
        assert guard.caps.open_from("127.0.0.2") == 3
        assert guard.pending_deadlines == 3  # each due to send its request in time
        assert guard.caps.refused == {Refusal.PER_IP: 3, Refusal.TOTAL: 0}
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{beamish.url}/health")).status_code == 200
        url = f"ws://127.0.0.1:{beamish.port}/socket/websocket?token={token('ada')}&vsn=2.0.0"
        async with connect(url) as ws:
            _, reply = await PhxClient(ws).join("conversation:c1", {"session_id": "s1"})
            assert reply[4] == ok({"conversation_id": "c1", "session_id": "s1", "last_id": 0})
        close_all(idle + refused)
    reports = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(reports) == 1
    assert reports[0].startswith("refused 1 connection(s) since the last report (latest "
                                 "from 127.0.0.2: per_ip)")


async def test_connections_over_the_total_cap_are_refused_from_any_address(
        tmp_path: Path) -> None:
    """With max_connections open, a connection from a new address is refused too."""
    async with serve(tmp_path, max_connections=3) as beamish:
        guard = guard_of(beamish)
        idle = [await open_raw(beamish.port, f"127.0.0.{i}") for i in (2, 3, 4)]
        refused = await open_raw(beamish.port, "127.0.0.5")
        assert await until_closed(refused) == b""
        assert guard.caps.refused[Refusal.TOTAL] == 1
        close_all([*idle, refused])


async def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(
        tmp_path: Path) -> None:
    """An idle connection is closed, without a response, once its first request is late."""
    async with serve(tmp_path, header_timeout_s=0.05) as beamish:
        stream = await open_raw(beamish.port)
        assert await until_closed(stream) == b""
        guard = guard_of(beamish)
        assert guard.closed_by_deadline == 1
        assert (guard.caps.open, guard.pending_deadlines) == (0, 0)
        close_all([stream])


async def test_a_trickled_request_head_gets_408_at_the_header_deadline(tmp_path: Path) -> None:
    """Slowloris: part of a head, then nothing, is answered 408 and closed."""
    async with serve(tmp_path, header_timeout_s=0.05) as beamish:
        stream = await open_raw(beamish.port)
        stream[1].write(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        received = await until_closed(stream)
        assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert received.endswith(b"request head not complete before the deadline")
        close_all([stream])


async def test_a_request_in_time_is_served_and_the_keep_alive_then_closes_it(
        tmp_path: Path) -> None:
    """A whole head in time is answered; the idle keep-alive connection is closed after."""
    async with serve(tmp_path, header_timeout_s=0.5, keep_alive_timeout_s=1) as beamish:
        stream = await open_raw(beamish.port)
        stream[1].write(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        received = await until_closed(stream)
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert guard_of(beamish).closed_by_deadline == 0
        close_all([stream])


async def test_a_websocket_opened_in_time_outlives_the_header_deadline(tmp_path: Path) -> None:
    """After a joined socket's handshake, only the socket's own idle timeout applies."""
    async with serve(tmp_path, header_timeout_s=0.5, handshake_timeout_s=0.5) as beamish:
        url = f"ws://127.0.0.1:{beamish.port}/socket/websocket?token={token('ada')}&vsn=2.0.0"
        async with connect(url) as ws:
            client = PhxClient(ws)
            join_ref, _ = await client.join("conversation:c1", {"session_id": "s1"})
            assert guard_of(beamish).pending_deadlines == 0  # nothing left to close it
            answer = await client.call("conversation:c1", "message", {"content": "hi"},
                                       join_ref)
            assert answer[4]["status"] == "ok"
        assert guard_of(beamish).closed_by_deadline == 0


@asynccontextmanager
async def never_accepting_server(guard: ConnectionGuard) -> AsyncIterator[int]:
    """A bare uvicorn behind ``guard`` whose app never accepts a WebSocket; its port."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        while (await receive())["type"] != "websocket.disconnect":
            pass

    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None,
                            http=guard.protocol_class(AutoHTTPProtocol),
                            ws=websocket_protocol())
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        await server.shutdown()


async def test_an_upgrade_never_answered_is_closed_at_the_handshake_deadline() -> None:
    """A WebSocket upgrade the app does not answer in time is closed."""
    guard = ConnectionGuard(GuardOptions(10, 10, header_timeout_s=5, handshake_timeout_s=0.05,
                                         shortage_log_interval_s=10))
    async with never_accepting_server(guard) as port:
        stream = await open_raw(port)
        stream[1].write(UPGRADE)
        assert await until_closed(stream) == b""
        assert guard.closed_by_deadline == 1
        close_all([stream])


class _Records(logging.Handler):
    """Keeps the records of one logger and sets an event at each."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.arrived = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.arrived.set()


async def test_accept_shortages_are_logged_once_per_interval_with_their_count() -> None:
    """100 EMFILE accept failures: one line at once, one with the other 99 when due; any
    other loop exception still reaches the previous handler."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: seen.append(context))
    guard = ConnectionGuard(GuardOptions(10, 10, 1, 1, shortage_log_interval_s=0.5))
    records = _Records()
    logger = logging.getLogger("beamish.server")
    logger.addHandler(records)
    guard.install(loop)
    try:
        for _ in range(100):
            loop.call_exception_handler({
                "message": "socket.accept() out of system resource",
                "exception": OSError(errno.EMFILE, "Too many open files")})
        loop.call_exception_handler({"message": "something else"})
        assert len(records.messages) == 1
        assert "Too many open files (1 time(s) since the last report" in records.messages[0]
        records.arrived.clear()
        await records.arrived.wait()
        assert "Too many open files (99 time(s) since the last report" in records.messages[1]
        assert guard.accept_errors == 100
        assert seen == [{"message": "something else"}]
    finally:
        guard.uninstall()
        logger.removeHandler(records)
    assert loop.get_exception_handler() is not None
    loop.set_exception_handler(None)
