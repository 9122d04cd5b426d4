"""A real server and a small Phoenix V2 client for the transport and channel-actor tests.

:func:`serve_channels` runs a :class:`SocketEndpoint` inside a Node, behind a real uvicorn
server on 127.0.0.1 (an OS-chosen port); :class:`PhxClient` speaks Phoenix V2 frames over a
real ``websockets`` connection, as the phoenix JS client does. :class:`RoomChannel` is the
application under test; every way a channel ends is recorded in :class:`Ends`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from websockets.asyncio.client import ClientConnection, connect

from beamish.auth import Authenticator, TokenAuthenticator, TokenSigner
from beamish.channels.channel import (
    NOREPLY,
    Channel,
    ChannelEnd,
    JoinRefused,
    ReplyError,
    SocketInfo,
    channel_end,
)
from beamish.channels.endpoint import DEFAULT_MAX_SOCKETS_PER_USER, SocketEndpoint, SocketOptions
from beamish.channels.frames import Payload
from beamish.runtime import ExitReason, Node, send
from beamish.runtime.process import current_process

SECRET = "test-secret-key-for-channels-0123456789"
FLOOD_CHUNK = "x" * 32 * 1024
#: Pushes a flood makes at most (64 MiB of chunks): far beyond any socket buffer.
FLOOD_LIMIT = 2000
#: A safety net for reads: a test that would wait longer fails instead of hanging.
READ_TIMEOUT = 5.0

Frame = list[Any]


def js_auth_protocol(token: str) -> str:
    """The subprotocol the phoenix JS client 1.8 offers for ``authToken``: btoa without '='."""
    return "base64url.bearer.phx." + base64.b64encode(token.encode()).decode().rstrip("=")


def binary_push(join_ref: str, ref: str, topic: str, event: str, data: bytes) -> bytes:
    """A client V2 binary push: [0][len jr][len ref][len topic][len event] fields data."""
    fields = [part.encode() for part in (join_ref, ref, topic, event)]
    return bytes([0, *(len(f) for f in fields)]) + b"".join(fields) + data


def read_binary_reply(frame: bytes) -> tuple[str, str, str, str, bytes]:
    """(join_ref, ref, topic, status, data) of a server V2 binary reply (kind 1)."""
    assert frame[0] == 1, f"not a binary reply: kind {frame[0]}"
    sizes, offset, fields = frame[1:5], 5, []
    for size in sizes:
        fields.append(frame[offset:offset + size].decode())
        offset += size
    return fields[0], fields[1], fields[2], fields[3], frame[offset:]


# --- the application under test ---------------------------------------------------------------


@dataclass
class Ends:
    """Each channel that ended: (topic, its ChannelEnd or None for a crash), in order."""

    items: list[tuple[str, ChannelEnd | None]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, topic: str, end: ChannelEnd | None) -> None:
        self.items.append((topic, end))
        self._changed.set()

    async def wait_for(self, topic: str) -> ChannelEnd | None:
        """The end of the first channel of ``topic`` to end (waits for it)."""
        async with asyncio.timeout(READ_TIMEOUT):
            while True:
                for seen, end in self.items:
                    if seen == topic:
                        return end
                self._changed.clear()
                await self._changed.wait()


class RoomChannel(Channel):
    """Echoes, pushes, crashes, answers late, floods — whatever a test asks for by event."""

    def join(self, topic: str, params: dict[str, Any], socket: SocketInfo) -> dict[str, Any]:
        self.ends: Ends = socket.assigns["ends"]
        self.pending: Any = None
        if topic == "room:secret":
            raise JoinRefused("unauthorized", detail="members only")
        if params.get("crash"):
            raise RuntimeError("join blew up")
        if params.get("greet"):
            self.push("greeting", {"to": socket.user_id})
        return {"user_id": socket.user_id, "admin": socket.principal.is_admin, "topic": topic}

    def handle_in(self, event: str, payload: Payload) -> Any:
        # A plain def: every event is answered as it is read while the channel is idle (the
        # "now_" ones say where they ran), and "trickle"'s awaitable then in its task.
        if event == "now_echo":
            # Where it ran: as this actor, and (taken at once) outside its task.
            return {"payload": payload, "as_self": current_process.get() is self.ref,
                    "in_own_task": asyncio.current_task() is self.ref._task}
        if event == "now_invalid":
            raise ReplyError("bad_request", "not now")
        if event == "now_crash":
            raise RuntimeError("handle_in blew up as read")
        if event == "now_leave":
            self.stop()
            return {"bye": True}
        if event == "echo":
            return payload
        if event == "whoami":
            return {"user_id": self.socket.user_id, "params": dict(self.socket.params)}
        if event == "shout":
            self.push("shout", payload)
            return None
        if event == "crash":
            raise RuntimeError("handle_in blew up")
        if event == "invalid":
            raise ReplyError("bad_request", "content is required")
        if event == "later":
            self.pending = self.reply_ref()
            send(self.ref, "answer")
            return NOREPLY
        if event == "leave_me":
            self.stop()
            return {"bye": True}
        if event == "unencodable":
            return {"value": object()}
        if event == "flood":
            send(self.ref, ("flood", 0))
            return None
        if event == "trickle" and isinstance(payload, dict):
            return self._trickle(int(payload["count"]))  # awaited by the base class
        return super().handle_in(event, payload)

    async def _trickle(self, count: int) -> dict[str, int]:
        """Numbered pushes, yielding after every fifth as a stream would; then the reply."""
        for n in range(count):
            self.push("n", {"n": n})
            if n % 5 == 4:
                await asyncio.sleep(0)
        return {"pushed": count}

    async def handle_info(self, message: Any) -> None:
        if message == "answer":
            self.reply(self.pending, {"late": True})
        elif isinstance(message, tuple) and message[0] == "flood":
            # A stream: one push per message, yielding between them as a provider stream
            # would, so the socket and its writer run and an EndChannel can get in.
            await self.push("chunk", {"n": message[1], "data": FLOOD_CHUNK})
            await asyncio.sleep(0)
            if message[1] < FLOOD_LIMIT:
                send(self.ref, ("flood", message[1] + 1))
        else:
            super().handle_info(message)

    def terminate(self, reason: ExitReason) -> None:
        self.ends.add(self.topic, channel_end(reason))


@dataclass
class Gate:
    """Holds GatedChannel's handle_in until opened; says when one is waiting."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    open: asyncio.Event = field(default_factory=asyncio.Event)


class GatedChannel(Channel):
    """"gated:*": a mailbox of one message; handle_in waits for the test to open the gate."""

    mailbox_size = 1

    def join(self, topic: str, params: dict[str, Any], socket: SocketInfo) -> None:
        self.gate: Gate = socket.assigns["gate"]
        self.ends: Ends = socket.assigns["ends"]

    async def handle_in(self, event: str, payload: Payload) -> Any:
        self.gate.entered.set()
        await self.gate.open.wait()
        return payload

    def terminate(self, reason: ExitReason) -> None:
        self.ends.add(self.topic, channel_end(reason))


class BulkyGatedChannel(GatedChannel):
    """"bulky:*": GatedChannel with room for many messages but only 1000 bytes of them."""

    mailbox_size = 100
    mailbox_bytes = 1000


class LobbyChannel(Channel):
    """The exact topic "lobby": always joins."""

    def join(self, topic: str, params: dict[str, Any], socket: SocketInfo) -> None:
        return None


# --- the server -------------------------------------------------------------------------------


@dataclass
class ChannelServer:
    """A running endpoint behind uvicorn."""

    endpoint: SocketEndpoint
    node: Node
    port: int
    signer: TokenSigner
    ends: Ends
    gate: Gate

    def url(self, **params: str) -> str:
        """The socket URL with ``params`` and vsn=2.0.0."""
        query = urlencode({**params, "vsn": "2.0.0"})
        return f"ws://127.0.0.1:{self.port}/socket/websocket?{query}"

    def token(self, user_id: str = "ada", *, admin: bool = False) -> str:
        return self.signer.issue(user_id, admin=admin)

    def connect(self, user_id: str = "ada", **kwargs: Any) -> connect:
        """A websockets connection authenticated as ``user_id`` through the token param."""
        return connect(self.url(token=self.token(user_id)), **kwargs)


def _app(endpoint: SocketEndpoint) -> FastAPI:
    """An HTTP API and the socket route in one ASGI app, as the server mounts them."""
    app = FastAPI()

    @app.get("/health", response_class=PlainTextResponse)
    async def health() -> str:
        return "ok"

    app.router.routes.append(endpoint.route())
    return app


@asynccontextmanager
async def serve_channels(
    authenticate: Authenticator | None = None, *, ws: Any = "auto",
    max_sockets_per_user: int = DEFAULT_MAX_SOCKETS_PER_USER, **options: Any
) -> AsyncIterator[ChannelServer]:
    """Serve RoomChannel, LobbyChannel and GatedChannel with these SocketOptions.

    ``ws`` is uvicorn's WebSocket protocol: its own by default, or ``beamish serve``'s
    ``LeanWebSocketProtocol``, whose ``send_nowait`` extension the endpoint writes through.
    """
    signer = TokenSigner(SECRET)
    ends, gate = Ends(), Gate()
    endpoint = SocketEndpoint(
        {"room:*": RoomChannel, "lobby": LobbyChannel, "gated:*": GatedChannel,
         "bulky:*": BulkyGatedChannel},
        authenticate=authenticate or TokenAuthenticator(signer),
        options=SocketOptions(**options),
        assigns={"ends": ends, "gate": gate},
        max_sockets_per_user=max_sockets_per_user,
    )
    app = _app(endpoint)
    async with Node([endpoint.child_spec()]) as node:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off",
                                log_level="warning", access_log=False, ws=ws)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        # Started from inside the node: connection tasks inherit it (see transport docs).
        await server.startup()
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield ChannelServer(endpoint, node, port, signer, ends, gate)
        finally:
            await endpoint.shutdown()
            await server.shutdown()


# --- the client -------------------------------------------------------------------------------


class PhxClient:
    """Phoenix V2 frames over a websockets connection; frames not asked for yet are kept."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._refs = 0
        self._kept: list[Frame | bytes] = []

    def next_ref(self) -> str:
        self._refs += 1
        return str(self._refs)

    async def send(self, join_ref: str | None, ref: str | None, topic: str, event: str,
                   payload: Any) -> None:
        await self.ws.send(json.dumps([join_ref, ref, topic, event, payload]))

    async def push(self, topic: str, event: str, payload: Any, join_ref: str | None) -> str:
        """Send a message; return its ref."""
        ref = self.next_ref()
        await self.send(join_ref, ref, topic, event, payload)
        return ref

    async def join(self, topic: str, params: dict[str, Any] | None = None) -> tuple[str, Frame]:
        """Join as the JS client does (join_ref == ref); return (join_ref, the reply)."""
        ref = self.next_ref()
        await self.send(ref, ref, topic, "phx_join", params or {})
        return ref, await self.reply(ref)

    async def call(self, topic: str, event: str, payload: Any, join_ref: str | None) -> Frame:
        """Push and wait for the reply matched by ref."""
        return await self.reply(await self.push(topic, event, payload, join_ref))

    async def heartbeat(self) -> Frame:
        ref = self.next_ref()
        await self.send(None, ref, "phoenix", "heartbeat", {})
        return await self.reply(ref)

    async def recv(self) -> Frame | bytes:
        """The next frame (a kept one first): decoded JSON, or the bytes of a binary frame."""
        if self._kept:
            return self._kept.pop(0)
        async with asyncio.timeout(READ_TIMEOUT):
            data = await self.ws.recv()
        frame: Frame | bytes = data if isinstance(data, bytes) else json.loads(data)
        return frame

    async def expect(self, match: Callable[[Frame], bool]) -> Frame:
        """The first text frame ``match`` accepts; frames before it are kept for later."""
        for index, kept in enumerate(self._kept):
            if not isinstance(kept, bytes) and match(kept):
                return self._kept.pop(index)  # type: ignore[return-value]
        while True:
            async with asyncio.timeout(READ_TIMEOUT):
                data = await self.ws.recv()
            if isinstance(data, bytes):
                self._kept.append(data)
                continue
            frame = json.loads(data)
            if match(frame):
                return frame  # type: ignore[no-any-return]
            self._kept.append(frame)

    async def reply(self, ref: str) -> Frame:
        """The phx_reply whose ref is ``ref``."""
        return await self.expect(lambda f: f[3] == "phx_reply" and f[1] == ref)

    async def event(self, topic: str, event: str) -> Frame:
        """The next frame with this topic and event."""
        return await self.expect(lambda f: f[2] == topic and f[3] == event)


def ok(response: dict[str, Any]) -> dict[str, Any]:
    return {"status": "ok", "response": response}


def error(response: dict[str, Any]) -> dict[str, Any]:
    return {"status": "error", "response": response}
