"""Channel actors behind a real server: joins, replies, pushes, crashes and how channels end.

Every test talks Phoenix V2 over a real WebSocket to a real uvicorn server (``conftest``) and
checks the exact frames a phoenix client would see.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from beamish.channels.channel import Channel, ChannelEnd, ChannelOut, ChannelRoutes, FrameLink
from beamish.channels.errors import InvalidOptionError
from beamish.runtime import Actor, Down, Node, call, monitor, open_inbox, start
from beamish.server.websocket_protocol import LeanWebSocketProtocol
from tests.channels._phx import (
    READ_TIMEOUT,
    ChannelServer,
    PhxClient,
    RoomChannel,
    binary_push,
    error,
    ok,
    read_binary_reply,
    serve_channels,
)

pytestmark = pytest.mark.anyio


# --- routes and the Channel class ------------------------------------------------------------


def test_routes_prefer_an_exact_topic_then_the_longest_prefix() -> None:
    """"a:b" exact beats "a:*", which a longer "a:b:*" beats for its topics."""
    class A(Channel): ...
    class B(Channel): ...
    class C(Channel): ...

    routes = ChannelRoutes({"a:*": A, "a:b": B, "a:b:*": C})
    assert routes.patterns == ("a:*", "a:b", "a:b:*")
    assert [routes.match(t) for t in ("a:b", "a:x", "a:b:c", "z")] == [B, A, C, None]


@pytest.mark.parametrize(
    "channels",
    [{}, {"a*b": RoomChannel}, {"a:*": object}],
    ids=["none", "star-inside", "not-a-channel"],
)
def test_routes_refuse_what_cannot_serve(channels: dict[str, Any]) -> None:
    """No routes, a '*' that is not last, or a value that is not a Channel: an error."""
    with pytest.raises(InvalidOptionError):
        ChannelRoutes(channels)


@pytest.mark.parametrize("name", ["init", "handle_cast"])
def test_the_protocol_callbacks_cannot_be_overridden(name: str) -> None:
    """A Channel subclass that overrides init or handle_cast is refused when defined."""
    with pytest.raises(TypeError, match=f"overrides Channel.{name}.*join"):
        type("Bad", (Channel,), {name: lambda self, arg: None})


async def test_join_replies_ok_with_what_join_returned(server: ChannelServer) -> None:
    """A join is answered [ref, ref, topic, phx_reply, ok] with join()'s response."""
    async with server.connect("ada") as ws:
        join_ref, reply = await PhxClient(ws).join("room:1")
    assert reply == [join_ref, join_ref, "room:1", "phx_reply",
                     ok({"user_id": "ada", "admin": False, "topic": "room:1"})]


async def test_refused_join_replies_error_and_the_channel_ends(server: ChannelServer) -> None:
    """JoinRefused becomes an error reply; the channel ends with reason "refused"."""
    async with server.connect() as ws:
        join_ref, reply = await PhxClient(ws).join("room:secret")
    assert reply == [join_ref, join_ref, "room:secret", "phx_reply",
                     error({"reason": "unauthorized", "detail": "members only"})]
    assert await server.ends.wait_for("room:secret") == ChannelEnd("refused")


async def test_a_join_that_crashes_replies_join_crashed(server: ChannelServer) -> None:
    """An exception in join() answers {"reason": "join crashed"}; the socket serves on."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        _, reply = await client.join("room:1", {"crash": True})
        assert reply[4] == error({"reason": "join crashed"})
        _, again = await client.join("room:1")
        assert again[4]["status"] == "ok"


async def test_pushes_made_while_joining_follow_the_ok_reply(server: ChannelServer) -> None:
    """A push from join() reaches the client right after the join's ok reply, not before."""
    async with server.connect("bob") as ws:
        client = PhxClient(ws)
        ref = client.next_ref()
        await client.send(ref, ref, "room:1", "phx_join", {"greet": True})
        first, second = await client.recv(), await client.recv()
    assert first == [ref, ref, "room:1", "phx_reply",
                     ok({"user_id": "bob", "admin": False, "topic": "room:1"})]
    assert second == [ref, None, "room:1", "greeting", {"to": "bob"}]


async def test_join_of_an_unrouted_topic_is_an_unmatched_topic(server: ChannelServer) -> None:
    """No channel pattern matches "nowhere:1": the join gets the unmatched topic reply."""
    async with server.connect() as ws:
        _, reply = await PhxClient(ws).join("nowhere:1")
    assert reply == [None, "1", "nowhere:1", "phx_reply", error({"reason": "unmatched topic"})]


async def test_exact_topic_routes_to_its_channel(server: ChannelServer) -> None:
    """"lobby" is routed to LobbyChannel, whose join returns None: ok with {}."""
    async with server.connect() as ws:
        _, reply = await PhxClient(ws).join("lobby")
    assert reply[4] == ok({})


async def test_a_second_join_closes_the_first(server: ChannelServer) -> None:
    """Joining a joined topic sends phx_close for the old join; the new join takes over."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        first, _ = await client.join("room:1")
        second = client.next_ref()
        await client.send(second, second, "room:1", "phx_join", {})
        assert await client.recv() == [first, first, "room:1", "phx_close", {}]
        assert (await client.recv())[:4] == [second, second, "room:1", "phx_reply"]
        echo = await client.call("room:1", "echo", {"n": 1}, second)
    assert echo[0] == second
    assert await server.ends.wait_for("room:1") == ChannelEnd("duplicate_join")


async def test_the_channel_limit_refuses_one_more_join() -> None:
    """With max_channels=2 a third join gets "too many channels joined"."""
    async with serve_channels(max_channels=2) as srv, srv.connect() as ws:
        client = PhxClient(ws)
        for topic in ("room:1", "room:2"):
            assert (await client.join(topic))[1][4]["status"] == "ok"
        _, reply = await client.join("room:3")
    assert reply[4] == error({"reason": "too many channels joined"})


# --- messages -----------------------------------------------------------------------------


async def test_replies_are_matched_by_ref(server: ChannelServer) -> None:
    """Two messages sent back to back get replies carrying their own refs and the join_ref."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        first = await client.push("room:1", "echo", {"n": 1}, jr)
        second = await client.push("room:1", "echo", {"n": 2}, jr)
        assert await client.recv() == [jr, first, "room:1", "phx_reply", ok({"n": 1})]
        assert await client.recv() == [jr, second, "room:1", "phx_reply", ok({"n": 2})]


async def test_pushes_carry_the_join_ref(server: ChannelServer) -> None:
    """A push is [join_ref, null, topic, event, payload]; the handler's None is ok {}."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:7")
        ref = await client.push("room:7", "shout", {"text": "hi"}, jr)
        assert await client.recv() == [jr, None, "room:7", "shout", {"text": "hi"}]
        assert await client.recv() == [jr, ref, "room:7", "phx_reply", ok({})]


async def test_a_message_to_an_unjoined_topic_is_an_unmatched_topic(
    server: ChannelServer,
) -> None:
    """A push on a topic the socket has not joined gets the unmatched topic error reply."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        ref = await client.push("room:9", "echo", {}, None)
        assert await client.recv() == [None, ref, "room:9", "phx_reply",
                                       error({"reason": "unmatched topic"})]


async def test_reply_error_becomes_an_error_reply(server: ChannelServer) -> None:
    """ReplyError(reason, detail) answers {"status": "error"} with that reason and detail."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        reply = await client.call("room:1", "invalid", {}, jr)
    assert reply[4] == error({"reason": "bad_request", "detail": "content is required"})


async def test_an_unknown_event_gets_a_clear_error(server: ChannelServer) -> None:
    """An event the channel does not handle: {"reason": "unknown event"} naming it."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        reply = await client.call("room:1", "dance", {}, jr)
        assert reply[4] == error({"reason": "unknown event",
                                  "detail": "room:1 does not handle event 'dance'"})
        assert (await client.call("room:1", "echo", {"still": "here"}, jr))[4] == ok(
            {"still": "here"})


async def test_noreply_then_a_later_reply(server: ChannelServer) -> None:
    """NOREPLY, then reply(reply_ref(), ...) from another callback answers the right ref."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        ref = await client.push("room:1", "later", {}, jr)
        assert await client.recv() == [jr, ref, "room:1", "phx_reply", ok({"late": True})]


async def test_a_binary_push_gets_a_binary_reply(server: ChannelServer) -> None:
    """A V2 binary push reaches handle_in as bytes; bytes returned go out as a kind-1 reply."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        await ws.send(binary_push(jr, "9", "room:1", "echo", b"\x00\xffraw"))
        frame = await client.recv()
    assert isinstance(frame, bytes)
    assert read_binary_reply(frame) == (jr, "9", "room:1", "ok", b"\x00\xffraw")


async def test_a_channel_with_a_full_mailbox_answers_overloaded(server: ChannelServer) -> None:
    """The socket never waits for a channel: past its mailbox_size a message gets overloaded."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("gated:1")
        busy = await client.push("gated:1", "echo", {"n": 1}, jr)
        await server.gate.entered.wait()  # handle_in holds message 1; the mailbox is empty
        queued = await client.push("gated:1", "echo", {"n": 2}, jr)
        refused = await client.push("gated:1", "echo", {"n": 3}, jr)
        assert await client.recv() == [jr, refused, "gated:1", "phx_reply", error({
            "reason": "overloaded",
            "detail": "gated:1 has 1 messages waiting; wait for replies before sending more",
        })]
        server.gate.open.set()
        assert await client.recv() == [jr, busy, "gated:1", "phx_reply", ok({"n": 1})]
        assert await client.recv() == [jr, queued, "gated:1", "phx_reply", ok({"n": 2})]


async def test_a_channel_answers_overloaded_past_its_mailbox_bytes(
        server: ChannelServer) -> None:
    """Messages waiting for a channel are bounded by bytes too (mailbox_bytes), then let in
    again once it has handled them."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("bulky:1")
        busy = await client.push("bulky:1", "echo", {"n": 1}, jr)
        await server.gate.entered.wait()  # handle_in holds message 1; the mailbox is empty
        queued = await client.push("bulky:1", "echo", {"pad": "x" * 600}, jr)
        waiting = json.dumps([jr, queued, "bulky:1", "echo", {"pad": "x" * 600}])
        refused = await client.push("bulky:1", "echo", {"pad": "y" * 600}, jr)
        reply = await client.reply(refused)
        assert reply[:4] == [jr, refused, "bulky:1", "phx_reply"]
        assert reply[4] == error({
            "reason": "overloaded",
            "detail": f"bulky:1 has {len(waiting)} bytes of messages waiting; wait for "
                      "replies before sending more"})
        server.gate.open.set()
        assert (await client.reply(busy))[4] == ok({"n": 1})
        assert (await client.reply(queued))[4]["status"] == "ok"
        again = await client.call("bulky:1", "echo", {"pad": "z" * 600}, jr)
        assert again[4]["status"] == "ok"


async def test_a_full_channel_still_learns_that_it_ended(server: ChannelServer) -> None:
    """Leaving a channel whose mailbox is full still ends it with ChannelEnd("leave")."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("gated:1")
        await client.push("gated:1", "echo", {"n": 1}, jr)
        await server.gate.entered.wait()
        await client.push("gated:1", "echo", {"n": 2}, jr)  # fills the mailbox
        await client.push("gated:1", "phx_leave", {}, jr)
        assert (await client.event("gated:1", "phx_close"))[0] == jr
        server.gate.open.set()
    assert await server.ends.wait_for("gated:1") == ChannelEnd("leave")


# --- failure ------------------------------------------------------------------------------


async def test_a_crash_sends_phx_error_and_everything_else_lives_on(
    server: ChannelServer,
) -> None:
    """A crashing channel gets phx_error; the socket, other channels and rejoin all work."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr1, _ = await client.join("room:1")
        jr2, _ = await client.join("room:2")
        await client.push("room:1", "crash", {}, jr1)
        assert await client.recv() == [jr1, jr1, "room:1", "phx_error",
                                       {"reason": "channel_crash"}]
        assert (await client.call("room:2", "echo", {"n": 2}, jr2))[4] == ok({"n": 2})
        assert (await client.heartbeat())[4] == ok({})
        gone = await client.push("room:1", "echo", {}, jr1)
        assert await client.recv() == [None, gone, "room:1", "phx_reply",
                                       error({"reason": "unmatched topic"})]
        rejoin, reply = await client.join("room:1")
        assert reply[4]["status"] == "ok"
        assert (await client.call("room:1", "echo", {"n": 1}, rejoin))[4] == ok({"n": 1})
    assert await server.ends.wait_for("room:1") is None  # a crash: no ChannelEnd


async def test_an_unencodable_reply_crashes_only_the_channel(server: ChannelServer) -> None:
    """A reply JSON cannot carry is the channel's bug: phx_error, and the socket serves on."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        await client.push("room:1", "unencodable", {}, jr)
        assert (await client.recv())[3] == "phx_error"
        assert (await client.heartbeat())[4] == ok({})


async def test_a_crash_leaves_other_sockets_alone(server: ChannelServer) -> None:
    """One client's crashing channel does not disturb another client's channel."""
    async with server.connect("ada") as ws1, server.connect("bob") as ws2:
        one, two = PhxClient(ws1), PhxClient(ws2)
        jr1, _ = await one.join("room:1")
        jr2, _ = await two.join("room:1")
        await one.push("room:1", "crash", {}, jr1)
        assert (await one.recv())[3] == "phx_error"
        assert (await two.call("room:1", "echo", {"n": 2}, jr2))[4] == ok({"n": 2})


# --- a plain def handle_in: answered as read ----------------------------------------------


@pytest.mark.parametrize("ws", ["auto", LeanWebSocketProtocol], ids=["uvicorn", "lean"])
async def test_an_idle_channel_answers_a_plain_handle_in_as_messages_are_read(ws: Any) -> None:
    """Outside the channel's task, but as the channel: replies, error replies, a stop, and a
    crash (phx_error, in the task) behave as they do in the task."""
    async with serve_channels(ws=ws) as srv, srv.connect() as conn:
        client = PhxClient(conn)
        jr, _ = await client.join("room:1")
        reply = await client.call("room:1", "now_echo", {"n": 1}, jr)
        assert reply[4] == ok({"payload": {"n": 1}, "as_self": True, "in_own_task": False})
        assert (await client.call("room:1", "now_invalid", {}, jr))[4] == error(
            {"reason": "bad_request", "detail": "not now"})
        ref = await client.push("room:1", "now_leave", {}, jr)
        assert await client.recv() == [jr, ref, "room:1", "phx_reply", ok({"bye": True})]
        assert await client.recv() == [jr, jr, "room:1", "phx_close", {}]
        jr, _ = await client.join("room:2")
        await client.push("room:2", "now_crash", {}, jr)
        assert await client.recv() == [jr, jr, "room:2", "phx_error",
                                       {"reason": "channel_crash"}]
        assert (await client.heartbeat())[4] == ok({})


async def test_a_busy_channel_answers_a_plain_handle_in_in_turn(
        server: ChannelServer) -> None:
    """Behind a message whose answer handle_in still awaits, the next waits its turn in the
    mailbox (in the channel's task, then) and is answered after it, in order."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        trickle = await client.push("room:1", "trickle", {"count": 20}, jr)
        now = await client.push("room:1", "now_echo", {"n": 2}, jr)
        frames = [await client.recv() for _ in range(22)]
        assert [f[4] for f in frames[:20]] == [{"n": n} for n in range(20)]
        assert frames[20] == [jr, trickle, "room:1", "phx_reply", ok({"pushed": 20})]
        assert frames[21] == [jr, now, "room:1", "phx_reply", ok(
            {"payload": {"n": 2}, "as_self": True, "in_own_task": True})]


# --- how channels end ---------------------------------------------------------------------


async def test_leave_replies_ok_then_closes(server: ChannelServer) -> None:
    """phx_leave: an ok reply, then phx_close; the channel ends with reason "leave"."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        ref = await client.push("room:1", "phx_leave", {}, jr)
        assert await client.recv() == [jr, ref, "room:1", "phx_reply", ok({})]
        assert await client.recv() == [jr, jr, "room:1", "phx_close", {}]
    assert await server.ends.wait_for("room:1") == ChannelEnd("leave")


async def test_a_channel_that_stops_itself_sends_phx_close(server: ChannelServer) -> None:
    """self.stop() in a channel: its reply goes out, then phx_close (the client won't rejoin)."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        ref = await client.push("room:1", "leave_me", {}, jr)
        assert await client.recv() == [jr, ref, "room:1", "phx_reply", ok({"bye": True})]
        assert await client.recv() == [jr, jr, "room:1", "phx_close", {}]


async def test_a_client_that_goes_away_ends_its_channels(server: ChannelServer) -> None:
    """When the client closes, every channel ends as "disconnected" with the client's code."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        await client.join("room:1")
        await client.join("room:2")
    assert await server.ends.wait_for("room:1") == ChannelEnd("disconnected", 1000)
    assert await server.ends.wait_for("room:2") == ChannelEnd("disconnected", 1000)


async def test_idle_actors_hibernate_and_wake_for_the_next_frame() -> None:
    """With hibernate_after, an idle socket and its channel drop their tasks."""
    async with serve_channels(hibernate_after=0.01) as srv, srv.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        tree = srv.node.tree()
        assert tree is not None
        (sockets,) = tree.children
        (socket,) = sockets.children
        (channel,) = socket.children
        refs = [node.ref for node in (socket, channel) if node.ref is not None]
        assert len(refs) == 2
        await wait_until(lambda: all(ref.status == "hibernated" for ref in refs))
        assert (await client.call("room:1", "echo", {"awake": True}, jr))[4] == ok(
            {"awake": True})


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (a state that changes on a timer, with no event to wait on)."""
    async with asyncio.timeout(READ_TIMEOUT):
        while not condition():  # noqa: ASYNC110 -- hibernation sets no event to wait on
            await asyncio.sleep(0.005)


async def test_the_socket_supervises_its_channels(server: ChannelServer) -> None:
    """The node's tree shows socket → one channel actor per joined topic."""
    async with server.connect() as ws:
        client = PhxClient(ws)
        await client.join("room:1")
        await client.join("lobby")
        tree = server.node.tree()
        assert tree is not None
        (sockets,) = tree.children
        (socket,) = sockets.children
        assert socket.type == "SocketActor"
        assert sorted(c.id for c in socket.children) == ["lobby", "room:1"]
        assert socket.ref is not None
        async with open_inbox() as inbox:
            mref = monitor(socket.ref)
            await ws.close()
            down = await inbox.receive(lambda m: isinstance(m, Down) and m.ref is mref)
        assert down.reason.is_normal
        with pytest.raises(ConnectionClosed):
            await ws.recv()


@pytest.mark.parametrize("outbound_frames", [1024, 2], ids=["direct", "outbox-full"])
async def test_streamed_pushes_arrive_in_order_then_their_reply(outbound_frames: int) -> None:
    """Pushes go straight to the outbox or, when it is full, through the socket: in order."""
    async with serve_channels(outbound_frames=outbound_frames) as srv, srv.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        ref = await client.push("room:1", "trickle", {"count": 100}, jr)
        got = [await client.recv() for _ in range(101)]
    assert [f[4] for f in got[:100]] == [{"n": n} for n in range(100)]
    assert all(f[:4] == [jr, None, "room:1", "n"] for f in got[:100])
    assert got[100] == [jr, ref, "room:1", "phx_reply", ok({"pushed": 100})]


class _Sink(Actor):
    """Stands for a socket: keeps what it is cast in the list it is started with."""

    def init(self, got: list[Any]) -> None:
        self.got = got

    def handle_cast(self, request: Any) -> None:
        self.got.append(request)

    def handle_call(self, request: Any, caller: Any) -> int:
        return len(self.got)  # after every cast sent before this call


async def test_a_link_holds_its_channel_back_while_the_socket_has_many_of_its_frames() -> None:
    """Past MAX_IN_MAILBOX frames waiting in the socket, send's future waits for half of them."""
    limit = FrameLink.MAX_IN_MAILBOX
    got: list[Any] = []
    async with Node():
        socket = await start(_Sink, got)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        link = FrameLink(socket, done)
        sent = [link.send(socket, "t", str(n)) for n in range(limit)]
        assert [f.done() for f in sent] == [True] * (limit - 1) + [False]
        for _ in range(limit - limit // 2 - 1):
            link.handled()
        assert not sent[-1].done()
        link.handled()  # half of them handled: room again
        assert sent[-1].done()
        waiting = [link.send(socket, "t", "more") for _ in range(limit // 2)][-1]
        assert not waiting.done()
        link.close()  # the channel stopped serving: nobody is left waiting
        assert waiting.done()
        assert await call(socket, "count") == limit + limit // 2
    assert all(isinstance(m, ChannelOut) for m in got)
    assert [m.frame for m in got[:limit]] == [str(n) for n in range(limit)]


async def test_a_hibernated_socket_hands_a_message_on_without_waking() -> None:
    """Under beamish's protocol, a message to a joined channel of an idle socket goes
    straight to the channel as it is read: the hibernated socket actor stays hibernated."""
    async with serve_channels(hibernate_after=0.01, ws=LeanWebSocketProtocol) as srv, \
            srv.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        tree = srv.node.tree()
        assert tree is not None
        (socket,) = tree.children[0].children
        assert socket.ref is not None
        await wait_until(lambda: socket.ref is not None and socket.ref.status == "hibernated")
        assert (await client.call("room:1", "echo", {"n": 1}, jr))[4] == ok({"n": 1})
        assert socket.ref.status == "hibernated"


async def test_a_message_right_behind_a_leave_does_not_overtake_it() -> None:
    """A leave and a message read together: the leave is the socket actor's to handle, so
    the message queues behind it and finds the topic left (unmatched), never the channel."""
    async with serve_channels(ws=LeanWebSocketProtocol) as srv, srv.connect() as ws:
        client = PhxClient(ws)
        jr, _ = await client.join("room:1")
        leave = await client.push("room:1", "phx_leave", {}, jr)
        message = await client.push("room:1", "echo", {"n": 1}, jr)
        assert (await client.reply(leave))[4] == ok({})
        assert (await client.reply(message))[4] == error({"reason": "unmatched topic"})


def test_an_answer_left_unrun_by_an_exited_channel_is_closed_not_reported() -> None:
    """A handle_in answer the channel's task never took (the channel exited first) is closed
    when dropped, so Python does not report a coroutine that was never awaited."""
    from beamish.channels.channel import _Resume
    from beamish.channels.socket_state import Message

    async def answer() -> str:
        return "late"

    coroutine = answer()
    resume = _Resume(Message("room:1", "slow", {}, "1", "1"), coroutine)
    del resume
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED
