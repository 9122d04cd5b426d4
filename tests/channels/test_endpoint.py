"""The WebSocket endpoint against real clients: the upgrade, limits, closes, malformed frames.

A real uvicorn server (``conftest``) and real ``websockets`` clients; each close is checked
for its exact code and reason, and every misbehaving client is followed by a well-behaved one
to show that the server still serves.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from beamish.auth import SECRET_KEY_ENV, DevModeAuthenticator, SigningKeyError, TokenSigner
from beamish.channels.channel import Channel, ChannelEnd
from beamish.channels.close_codes import CloseCode
from beamish.channels.endpoint import SocketEndpoint, _Writer
from beamish.channels.limits import OutboundQueue
from beamish.channels.socket_actor import Outbox, SocketActor
from beamish.runtime import KILL, exit, idle_actor
from beamish.server.websocket_protocol import LeanWebSocketProtocol
from tests.channels._phx import (
    SECRET,
    ChannelServer,
    PhxClient,
    binary_push,
    error,
    js_auth_protocol,
    ok,
    serve_channels,
)

pytestmark = pytest.mark.anyio

# uvicorn's own WebSocket protocol (frames go out from the writer task) and beamish serve's
# (frames go out at once through its send_nowait extension, the task only when they must wait).
both_protocols = pytest.mark.parametrize("ws", ["auto", LeanWebSocketProtocol],
                                         ids=["uvicorn", "lean"])


def subprotocols(*names: str) -> list[Subprotocol]:
    return [Subprotocol(name) for name in names]


async def assert_still_serving(server: ChannelServer) -> None:
    """A new client connects, joins and gets an echo: the server is unharmed."""
    async with server.connect("carol") as ws:
        client = PhxClient(ws)
        jr, reply = await client.join("room:ok")
        assert reply[4]["status"] == "ok"
        assert (await client.call("room:ok", "echo", {"fine": True}, jr))[4] == ok({"fine": True})


async def _read_forever(ws: ClientConnection) -> None:
    while True:
        await PhxClient(ws).recv()


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    """Read until the server closes; the close frame's (code, reason)."""
    with pytest.raises(ConnectionClosed) as closed:
        await _read_forever(ws)
    rcvd = closed.value.rcvd
    assert rcvd is not None, "the server dropped the connection without a close frame"
    return rcvd.code, rcvd.reason


# --- the upgrade --------------------------------------------------------------------------


async def test_a_token_param_authenticates(server: ChannelServer) -> None:
    """?token=... is verified; the channel sees the token's user; no subprotocol is selected."""
    async with connect(server.url(token=server.token("ada"))) as ws:
        assert ws.subprotocol is None
        assert ws.response is not None
        assert "Sec-WebSocket-Protocol" not in ws.response.headers
        _, reply = await PhxClient(ws).join("room:1")
    assert reply[4] == ok({"user_id": "ada", "admin": False, "topic": "room:1"})


async def test_channels_see_the_connect_params_but_not_the_token(
    server: ChannelServer,
) -> None:
    """socket.params holds the query params (vsn too); the token is kept out of them."""
    async with connect(server.url(token=server.token("ada"), room="7", **{"user[id]": "9"})) as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        reply = await client.call("room:1", "whoami", {}, jr)
    assert reply[4] == ok({"user_id": "ada",
                           "params": {"room": "7", "user[id]": "9", "vsn": "2.0.0"}})


async def test_the_bearer_subprotocol_authenticates_and_phoenix_is_selected(
    server: ChannelServer,
) -> None:
    """The JS client's authToken offer: "phoenix" is selected and the token's user joins."""
    offer = subprotocols("phoenix", js_auth_protocol(server.token("root", admin=True)))
    async with connect(server.url(), subprotocols=offer) as ws:
        assert ws.subprotocol == "phoenix"
        _, reply = await PhxClient(ws).join("room:1")
    assert reply[4] == ok({"user_id": "root", "admin": True, "topic": "room:1"})


async def test_the_subprotocol_token_wins_over_the_param(server: ChannelServer) -> None:
    """With both, the bearer subprotocol's token is the one used (as Phoenix does)."""
    offer = subprotocols("phoenix", js_auth_protocol(server.token("sub")))
    url = server.url(token=server.token("param"))
    async with connect(url, subprotocols=offer) as ws:
        _, reply = await PhxClient(ws).join("room:1")
    assert reply[4]["response"]["user_id"] == "sub"


async def test_dev_mode_trusts_the_user_id_param() -> None:
    """With DevModeAuthenticator on loopback, ?user_id=dev connects without a token."""
    dev = DevModeAuthenticator("127.0.0.1", TokenSigner(SECRET))
    async with serve_channels(authenticate=dev) as srv, connect(srv.url(user_id="dev")) as ws:
        _, reply = await PhxClient(ws).join("room:1")
    assert reply[4]["response"]["user_id"] == "dev"


def _expired_token() -> str:
    return TokenSigner(SECRET, clock=lambda: 1_000_000.0).issue("ada", expires_in=60)


@pytest.mark.parametrize(
    ("query", "offer", "says"),
    [
        ({"token": TokenSigner("another-key-entirely-0123").issue("ada")}, [],
         "bad token signature"),
        ({}, [], "no token"),
        ({"token": "not-a-token"}, [], "malformed token"),
        ({"token": _expired_token()}, [], "token expired at 1970-01-12T13:47:40Z"),
        ({}, ["phoenix", "base64url.bearer.phx.!!!"], "not the base64 of a UTF-8"),
    ],
    ids=["bad-signature", "missing", "malformed", "expired", "undecodable-subprotocol"],
)
async def test_a_refused_upgrade_is_a_403_that_says_why(
    server: ChannelServer, query: dict[str, str], offer: list[str], says: str
) -> None:
    """Auth failures answer the upgrade with 403 and a reason that never repeats the token."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.url(**query), subprotocols=subprotocols(*offer) or None):
            pass
    response = refused.value.response
    assert response.status_code == 403
    body = response.body.decode()
    assert says in body
    for secret in query.values():
        assert secret not in body
    await assert_still_serving(server)


async def test_a_missing_vsn_is_a_403(server: ChannelServer) -> None:
    """Without vsn the client speaks V1, which is refused with a readable 403."""
    url = f"ws://127.0.0.1:{server.port}/socket/websocket?token={server.token()}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url):
            pass
    assert refused.value.response.status_code == 403
    assert b"speaks Phoenix Channels V2 only" in refused.value.response.body


async def test_http_routes_share_the_server(server: ChannelServer) -> None:
    """The same ASGI app answers HTTP while a socket is open on it."""
    async with server.connect() as ws, httpx.AsyncClient() as http:
        await PhxClient(ws).join("room:1")
        response = await http.get(f"http://127.0.0.1:{server.port}/health")
    assert (response.status_code, response.text) == (200, "ok")


async def test_a_heartbeat_is_answered(server: ChannelServer) -> None:
    """[null, ref, "phoenix", "heartbeat", {}] gets an ok reply on topic phoenix."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        ref = client.next_ref()
        await client.send(None, ref, "phoenix", "heartbeat", {})
        assert await client.recv() == [None, ref, "phoenix", "phx_reply", ok({})]


# --- closes the server decides --------------------------------------------------------------


async def test_an_idle_socket_is_closed_with_1001() -> None:
    """No frame for idle_timeout seconds: close 1001 with the reason; its channels are told."""
    async with serve_channels(idle_timeout=0.5) as srv, srv.connect() as ws:
        await PhxClient(ws).join("room:1")
        assert await closed_with(ws) == (1001, "idle timeout: no frame for 0.5 s")
        end = await srv.ends.wait_for("room:1")
    assert end == ChannelEnd("closed", 1001, "idle timeout: no frame for 0.5 s")


@both_protocols
async def test_a_slow_consumer_is_disconnected_and_the_channel_is_told(ws: object) -> None:
    """A client that stops reading is cut off with 1008; the channel learns why.

    The client reads nothing (a receive queue of one frame, no compression to shrink the
    flood) while its channel streams 32 KiB chunks; once the kernel's buffers are full, the
    outbound queue fills, and the socket closes.
    """
    async with serve_channels(outbound_frames=8, ws=ws) as srv:
        async with srv.connect(max_queue=1, compression=None) as conn:
            client = PhxClient(conn)
            jr, _ = await client.join("room:1")
            await client.call("room:1", "flood", {}, jr)
            end = await srv.ends.wait_for("room:1")
            assert end is not None
            assert (end.reason, end.close_code) == ("closed", CloseCode.POLICY_VIOLATION)
            assert end.close_reason.startswith("slow consumer: 8 frames / ")
            # Reading again drains what the kernel holds, then the close frame arrives.
            assert await closed_with(conn) == (1008, end.close_reason)
        await assert_still_serving(srv)


@both_protocols
async def test_a_burst_to_a_reading_client_is_not_a_slow_consumer(ws: object) -> None:
    """Far more pushes at once than the outbound queue holds reach a client that reads."""
    async with serve_channels(outbound_frames=2, ws=ws) as srv, srv.connect() as conn:
        client = PhxClient(conn)
        jr, _ = await client.join("room:1")
        refs = [await client.push("room:1", "shout", {"n": n}, jr) for n in range(50)]
        for n, ref in enumerate(refs):
            assert await client.recv() == [jr, None, "room:1", "shout", {"n": n}]
            assert await client.recv() == [jr, ref, "room:1", "phx_reply", ok({})]


@pytest.mark.parametrize("send_now", [False, True], ids=["woken", "sent_by_put"])
async def test_frames_that_cannot_go_at_once_follow_in_order_then_the_close(
        send_now: bool) -> None:
    """The writer sends what the server takes at once; from the first refusal, its task does.
    So does the outbox's put when attached with the send (and no writer runs)."""
    sent: list[tuple[str, object]] = []
    room = 2

    class TaskPath:
        async def send(self, message: dict[str, object]) -> None:
            sent.append(("task", message.get("text", message["type"])))

    def send_nowait(frame: str | bytes) -> bool:
        nonlocal room
        if not room:
            return False
        room -= 1
        sent.append(("now", frame))
        return True

    outbox = Outbox(OutboundQueue())
    writer = _Writer(TaskPath(), outbox,  # type: ignore[arg-type]
                     asyncio.get_running_loop().create_future(), send_nowait)
    outbox.attach(writer.wake, send_nowait if send_now else None)
    for frame in "abcd":
        outbox.put(frame)
    outbox.close(CloseCode.NORMAL, "bye")
    await writer.finished()
    assert sent == [("now", "a"), ("now", "b"), ("task", "c"), ("task", "d"),
                    ("task", "websocket.close")]


@pytest.mark.parametrize(
    ("code", "reason"),
    [(CloseCode.GOING_AWAY, "server shutting down"), (CloseCode.SERVICE_RESTART, "restarting")],
)
async def test_shutdown_closes_sockets_so_clients_reconnect(
    server: ChannelServer, code: CloseCode, reason: str
) -> None:
    """endpoint.shutdown closes with 1001 (or 1012), ends channels, then refuses with 503."""
    async with server.connect() as ws:
        await PhxClient(ws).join("room:1")
        assert await server.endpoint.shutdown(code, reason) is True
        assert await closed_with(ws) == (code, reason)
    assert await server.ends.wait_for("room:1") == ChannelEnd("closed", code, reason)
    assert server.endpoint.socket_count == 0
    with pytest.raises(InvalidStatus) as refused:
        async with server.connect():
            pass
    assert refused.value.response.status_code == 503


async def test_a_killed_socket_actor_closes_with_1011(server: ChannelServer) -> None:
    """If the socket's actor dies without closing (killed), the client gets 1011."""
    async with server.connect() as ws:
        await PhxClient(ws).join("room:1")
        (socket,) = [a.ref for a in server.node.actors() if a.type == "SocketActor"]
        exit(socket, KILL)
        assert await closed_with(ws) == (1011, "internal error")
    await assert_still_serving(server)


# --- malformed frames -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        ("this is not json", 1008, "text frame is not valid JSON"),
        (json.dumps(["1", "1", "room:1", "phx_join"]), 1008,
         "a frame must have exactly 5 elements [join_ref, ref, topic, event, payload], got 4"),
        (json.dumps({"topic": "room:1"}), 1008, "a frame must be a JSON array"),
        (bytes([1, 0, 0, 0, 0]), 1008, "binary frame kind 1 is not a push (0)"),
        (bytes([0, 1]), 1008, "binary frame of 2 bytes is shorter than the 5-byte V2 push"),
    ],
    ids=["bad-json", "wrong-arity", "not-an-array", "binary-reply-kind", "binary-truncated"],
)
async def test_an_unanswerable_frame_closes_with_1008_and_says_why(
    server: ChannelServer, frame: str | bytes, code: int, reason: str
) -> None:
    """A frame no reply can answer closes the socket with 1008 and a reason; others go on."""
    async with server.connect() as ws:
        await ws.send(frame)
        closed_code, closed_reason = await closed_with(ws)
    assert closed_code == code
    assert closed_reason.startswith(reason)
    await assert_still_serving(server)


async def test_a_huge_frame_closes_with_1009() -> None:
    """A frame over max_frame_size is not parsed: close 1009 saying the size and the limit."""
    async with serve_channels(max_frame_size=1024) as srv:
        frame = json.dumps(["1", "1", "room:1", "echo", {"x": "y" * 2000}])
        async with srv.connect() as ws:
            await ws.send(frame)
            code, reason = await closed_with(ws)
        assert code == 1009
        assert reason.startswith(f"frame of {len(frame)} bytes exceeds the 1024-byte limit")
        await assert_still_serving(srv)


async def test_a_frame_with_a_readable_ref_gets_an_error_reply(server: ChannelServer) -> None:
    """A wrong element type with readable ref and topic: an error reply, the socket stays."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        await client.send(jr, "7", "room:1", 42, {})  # type: ignore[arg-type]
        assert await client.recv() == [jr, "7", "room:1", "phx_reply", error({
            "reason": "invalid frame",
            "detail": "frame element event must be a string, got a JSON number",
        })]
        assert (await client.call("room:1", "echo", {"n": 1}, jr))[4] == ok({"n": 1})


async def test_a_binary_join_gets_an_error_reply(server: ChannelServer) -> None:
    """A join as a binary frame is refused with a clear error reply; the socket stays."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        await ws.send(binary_push("3", "3", "room:1", "phx_join", b"{}"))
        reply = await client.recv()
        assert reply == ["3", "3", "room:1", "phx_reply", error({
            "reason": "invalid frame",
            "detail": "a phx_join payload must be a JSON object, not a binary frame",
        })]
        assert (await client.heartbeat())[4] == ok({})


def test_the_channels_endpoint_verifies_with_the_environment_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SocketEndpoint without authenticate= needs BEAMISH_SECRET_KEY, and says so at once."""

    class Nothing(Channel):
        pass

    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    with pytest.raises(SigningKeyError):
        SocketEndpoint({"x:*": Nothing})
    monkeypatch.setenv(SECRET_KEY_ENV, SECRET)
    assert SocketEndpoint({"x:*": Nothing}).socket_count == 0


async def test_one_user_holds_at_most_max_sockets_per_user_and_the_count_is_released() -> None:
    """Beyond max_sockets_per_user a socket gets 429, other users' do not; nothing is kept after."""
    async with serve_channels(max_sockets_per_user=2) as server:
        async with server.connect("ada") as first, server.connect("ada") as second:
            await PhxClient(first).join("room:1")
            await PhxClient(second).join("room:2")
            assert server.endpoint.user_socket_count("ada") == 2
            with pytest.raises(InvalidStatus) as refused:
                async with server.connect("ada"):
                    pass
            assert refused.value.response.status_code == 429
            assert b"2 sockets open" in refused.value.response.body
            async with server.connect("bob") as other:
                assert (await PhxClient(other).join("room:1"))[1][4]["status"] == "ok"
        assert await server.endpoint.shutdown() is True  # returns once every handler is done
        assert server.endpoint.users_connected == 0
        assert server.endpoint.user_socket_count("ada") == 0


async def test_a_joined_channel_keeps_no_join_params(server: ChannelServer) -> None:
    """Once joined, neither the channel nor its socket holds the join's params."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        _, reply = await client.join("room:1", {"bulk": "x" * 50_000})
        assert reply[4]["status"] == "ok"
        assert (await client.heartbeat())[4]["status"] == "ok"  # the socket is idle again
        refs = {a.type: a.ref for a in server.node.actors()}
        socket, channel = idle_actor(refs["SocketActor"]), idle_actor(refs["RoomChannel"])
        assert isinstance(socket, SocketActor)
        assert isinstance(channel, Channel)
        assert [e.request.payload for e in socket._channels.values()] == [{}]
        assert channel._request.payload == {}
