"""The Phoenix socket state machine: every rule of the protocol notes, exact frames, no I/O."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import beamish.channels
from beamish.channels.errors import EncodeError, InvalidOptionError
from beamish.channels.socket_state import (
    DEFAULT_MAX_CHANNELS,
    JoinRequested,
    Left,
    Message,
    PhoenixSocket,
)
from tests.channels._support import TOPIC, UNMATCHED, error_reply, joined, request_join

# --- heartbeat ---------------------------------------------------------------------------


def test_heartbeat_gets_the_exact_ok_reply() -> None:
    """A heartbeat on topic phoenix is answered [null, ref, "phoenix", "phx_reply", ok {}]."""
    sock = PhoenixSocket()
    sock.receive_text('[null,"1","phoenix","heartbeat",{}]')
    assert sock.frames_to_send() == [
        '[null,"1","phoenix","phx_reply",{"status":"ok","response":{}}]'
    ]
    assert sock.events_received() == []


def test_heartbeat_is_answered_with_null_join_ref_whatever_the_client_sent() -> None:
    """Phoenix answers a heartbeat without a join_ref even if the frame had one."""
    sock = PhoenixSocket()
    sock.receive_text('["9","2","phoenix","heartbeat",{}]')
    assert sock.frames_to_send() == [
        '[null,"2","phoenix","phx_reply",{"status":"ok","response":{}}]'
    ]


def test_other_events_on_the_phoenix_topic_are_unmatched() -> None:
    """Only heartbeat is special on topic phoenix; anything else there is an unmatched topic."""
    sock = PhoenixSocket()
    sock.receive_text('[null,"3","phoenix","ping",{}]')
    assert sock.frames_to_send() == [error_reply(None, "3", "phoenix", UNMATCHED)]


# --- joining -----------------------------------------------------------------------------


def test_join_is_handed_to_the_application_and_sends_nothing_yet() -> None:
    """phx_join yields JoinRequested(topic, join_ref, ref, payload) and no frame until decided."""
    sock = PhoenixSocket()
    sock.receive_text('["5","5","conversation:42","phx_join",{"last_seen_id":"m9"}]')
    assert sock.events_received() == [
        JoinRequested(TOPIC, "5", "5", {"last_seen_id": "m9"})
    ]
    assert sock.frames_to_send() == []
    assert not sock.is_joined(TOPIC)


def test_accept_join_sends_the_exact_ok_reply_and_joins() -> None:
    """accept_join replies [jr, ref, topic, "phx_reply", ok response] and marks the topic joined."""
    sock = PhoenixSocket()
    request = request_join(sock)
    assert sock.accept_join(request, {"session_id": "s1"})
    assert sock.frames_to_send() == [
        '["5","5","conversation:42","phx_reply",'
        '{"status":"ok","response":{"session_id":"s1"}}]'
    ]
    assert sock.joined_topics() == {TOPIC: "5"}


def test_reject_join_defaults_to_unauthorized() -> None:
    """reject_join replies error {"reason": "unauthorized"} and leaves the topic unjoined."""
    sock = PhoenixSocket()
    assert sock.reject_join(request_join(sock))
    assert sock.frames_to_send() == [error_reply("5", "5", TOPIC, '{"reason":"unauthorized"}')]
    assert not sock.is_joined(TOPIC)


def test_reject_join_sends_the_given_response() -> None:
    """reject_join with a response sends that response as the error reply."""
    sock = PhoenixSocket()
    assert sock.reject_join(request_join(sock), {"reason": "no such session"})
    assert sock.frames_to_send() == [error_reply("5", "5", TOPIC, '{"reason":"no such session"}')]


def test_a_request_is_decided_only_once() -> None:
    """After accept_join, the same request can be neither accepted nor rejected again."""
    sock = PhoenixSocket()
    request = request_join(sock)
    assert sock.accept_join(request)
    sock.frames_to_send()
    assert not sock.accept_join(request)
    assert not sock.reject_join(request)
    assert sock.frames_to_send() == []


def test_an_unencodable_join_response_raises_and_leaves_the_request_undecided() -> None:
    """An unencodable accept_join response raises EncodeError; the join stays undecided."""
    sock = PhoenixSocket()
    request = request_join(sock)
    with pytest.raises(EncodeError, match="cannot be encoded as JSON"):
        sock.accept_join(request, {"bad": object()})
    assert sock.frames_to_send() == []
    assert sock.reject_join(request, {"reason": "internal error"})
    assert sock.frames_to_send() == [error_reply("5", "5", TOPIC, '{"reason":"internal error"}')]


def test_join_with_a_binary_payload_is_answered_invalid_frame() -> None:
    """A binary phx_join cannot carry join params; it gets an invalid-frame error reply."""
    sock = PhoenixSocket()
    sock.receive_bytes(b"\x00\x01\x01\x01\x08" + b"5" + b"5" + b"t" + b"phx_join" + b"\x01")
    assert sock.frames_to_send() == [
        error_reply(
            "5", "5", "t",
            '{"reason":"invalid frame","detail":'
            '"a phx_join payload must be a JSON object, not a binary frame"}',
        )
    ]
    assert sock.events_received() == []


# --- messages and replies ----------------------------------------------------------------


def test_message_to_a_joined_topic_becomes_a_message_event() -> None:
    """An event on a joined topic yields Message(topic, event, payload, ref, join_ref)."""
    sock = joined()
    sock.receive_text('["5","6","conversation:42","message",{"content":"hi"}]')
    assert sock.events_received() == [Message(TOPIC, "message", {"content": "hi"}, "6", "5")]
    assert sock.frames_to_send() == []


def test_message_in_reads_a_joined_topic_s_message_and_changes_nothing() -> None:
    """message_in gives the Message receive_text would make of a joined topic's event, with
    no event or frame left behind; None for every frame receive_text must handle itself."""
    sock = joined()
    assert sock.message_in('["5","6","conversation:42","message",{"content":"hi"}]') == (
        Message(TOPIC, "message", {"content": "hi"}, "6", "5"))
    for other in ('[null,"7","phoenix","heartbeat",{}]',
                  '["8","8","conversation:43","phx_join",{}]',
                  '["5","9","conversation:42","phx_leave",{}]',
                  '[null,"10","conversation:44","message",{}]',
                  '["5","11","conversation:42"]', "not json"):
        assert sock.message_in(other) is None, other
    assert (sock.events_received(), sock.frames_to_send()) == ([], [])
    assert sock.is_joined(TOPIC)
    sock.close()
    assert sock.message_in('["5","6","conversation:42","message",{}]') is None


def test_reply_is_matched_by_ref_and_carries_the_channel_join_ref() -> None:
    """reply answers with the message's ref and the channel's join_ref."""
    sock = joined()
    sock.receive_text('["5","6","conversation:42","message",{"content":"hi"}]')
    [message] = sock.events_received()
    assert isinstance(message, Message)
    assert sock.reply(message, {"request_id": "r1"})
    assert sock.frames_to_send() == [
        '["5","6","conversation:42","phx_reply",'
        '{"status":"ok","response":{"request_id":"r1"}}]'
    ]


def test_reply_with_error_status() -> None:
    """reply(status="error") sends an error reply, e.g. for an unknown event."""
    sock = joined()
    sock.receive_text('["5","7","conversation:42","bogus",{}]')
    [message] = sock.events_received()
    assert isinstance(message, Message)
    assert sock.reply(message, {"reason": "unknown event"}, status="error")
    assert sock.frames_to_send() == [error_reply("5", "7", TOPIC, '{"reason":"unknown event"}')]


def test_reply_defaults_to_ok_with_an_empty_response() -> None:
    """reply(message) alone is an ok reply with response {}."""
    sock = joined()
    sock.receive_text('["5","8","conversation:42","ack",{}]')
    [message] = sock.events_received()
    assert isinstance(message, Message)
    assert sock.reply(message)
    assert sock.frames_to_send() == [
        '["5","8","conversation:42","phx_reply",{"status":"ok","response":{}}]'
    ]


def test_binary_message_and_binary_reply() -> None:
    """A binary push becomes a Message with bytes; a bytes reply is a kind-1 binary frame."""
    sock = joined()
    header = b"\x00\x01\x01\x0f\x06" + b"5" + b"9" + TOPIC.encode() + b"upload"
    sock.receive_bytes(header + b"\x00\x01")
    [message] = sock.events_received()
    assert message == Message(TOPIC, "upload", b"\x00\x01", "9", "5")
    assert isinstance(message, Message)
    assert sock.reply(message, b"\xff")
    assert sock.frames_to_send() == [b"\x01\x01\x01\x0f\x02" + b"59" + TOPIC.encode() + b"ok\xff"]


def test_reply_after_the_channel_left_sends_nothing() -> None:
    """A late reply to a channel that has since left returns False and sends nothing."""
    sock = joined()
    sock.receive_text('["5","6","conversation:42","message",{}]')
    [message] = sock.events_received()
    assert isinstance(message, Message)
    sock.receive_text('["5","7","conversation:42","phx_leave",{}]')
    sock.frames_to_send()
    assert not sock.reply(message, {"late": True})
    assert sock.frames_to_send() == []


def test_message_to_an_unjoined_topic_is_unmatched_with_null_join_ref() -> None:
    """A push on an unjoined topic gets [null, ref, topic, "phx_reply", error unmatched topic]."""
    sock = PhoenixSocket()
    sock.receive_text('["3","4","room:1","new_msg",{"body":"x"}]')
    assert sock.frames_to_send() == [
        '[null,"4","room:1","phx_reply",'
        '{"status":"error","response":{"reason":"unmatched topic"}}]'
    ]
    assert sock.events_received() == []


def test_message_while_the_join_awaits_its_decision_is_unmatched() -> None:
    """A join not yet accepted does not make the topic joined for messages."""
    sock = PhoenixSocket()
    request_join(sock)
    sock.receive_text('["5","6","conversation:42","message",{}]')
    assert sock.frames_to_send() == [error_reply(None, "6", TOPIC, UNMATCHED)]


# --- pushes ------------------------------------------------------------------------------


def test_push_carries_the_join_ref_and_a_null_ref() -> None:
    """push sends [join_ref, null, topic, event, payload] on a joined topic."""
    sock = joined()
    assert sock.push(TOPIC, "token", {"request_id": "r1", "delta": "Hel"})
    assert sock.frames_to_send() == [
        '["5",null,"conversation:42","token",{"request_id":"r1","delta":"Hel"}]'
    ]


def test_push_of_bytes_is_a_binary_push() -> None:
    """push with bytes sends a kind-0 binary frame with the channel's join_ref."""
    sock = joined()
    assert sock.push(TOPIC, "img", b"\x89")
    assert sock.frames_to_send() == [b"\x00\x01\x0f\x03" + b"5" + TOPIC.encode() + b"img\x89"]


def test_push_to_an_unjoined_topic_sends_nothing() -> None:
    """push on a topic that is not joined returns False and sends nothing."""
    sock = PhoenixSocket()
    assert not sock.push(TOPIC, "token", {})
    assert sock.frames_to_send() == []


def test_push_of_an_unencodable_payload_raises_encode_error() -> None:
    """A payload that is not a dict or bytes is the caller's bug: EncodeError."""
    sock = joined()
    with pytest.raises(EncodeError, match="must be a dict"):
        sock.push(TOPIC, "token", ["not", "a", "map"])  # type: ignore[arg-type]


# --- leaving -----------------------------------------------------------------------------


def test_leave_replies_ok_then_sends_phx_close() -> None:
    """phx_leave gets an ok reply, then [jr, jr, topic, "phx_close", {}], and a Left event."""
    sock = joined()
    sock.receive_text('["5","7","conversation:42","phx_leave",{}]')
    assert sock.frames_to_send() == [
        '["5","7","conversation:42","phx_reply",{"status":"ok","response":{}}]',
        '["5","5","conversation:42","phx_close",{}]',
    ]
    assert sock.events_received() == [Left(TOPIC, "5", "leave")]
    assert not sock.is_joined(TOPIC)


def test_leave_of_an_unjoined_topic_gets_the_ok_reply_alone() -> None:
    """Leaving a topic that is not joined is answered ok, as Phoenix does, with no phx_close."""
    sock = PhoenixSocket()
    sock.receive_text('["5","7","room:1","phx_leave",{}]')
    assert sock.frames_to_send() == [
        '["5","7","room:1","phx_reply",{"status":"ok","response":{}}]'
    ]
    assert sock.events_received() == []


def test_leave_naming_an_older_join_is_ignored() -> None:
    """A leave whose join_ref is not the current join's raced a server close: no answer."""
    sock = joined(ref="8")
    sock.receive_text('["5","9","conversation:42","phx_leave",{}]')
    assert sock.frames_to_send() == []
    assert sock.events_received() == []
    assert sock.is_joined(TOPIC)


def test_leave_while_the_join_awaits_its_decision_cancels_it() -> None:
    """Leaving during a pending join answers ok and makes the pending request stale."""
    sock = PhoenixSocket()
    request = request_join(sock)
    sock.receive_text('["5","6","conversation:42","phx_leave",{}]')
    assert sock.frames_to_send() == [
        '["5","6","conversation:42","phx_reply",{"status":"ok","response":{}}]'
    ]
    assert not sock.accept_join(request)
    assert sock.frames_to_send() == []
    assert not sock.is_joined(TOPIC)


# --- joining again -----------------------------------------------------------------------


def test_second_join_closes_the_first_then_proceeds() -> None:
    """Joining a joined topic sends phx_close for the old join_ref, then asks about the new one."""
    sock = joined(ref="5")
    sock.receive_text('["11","11","conversation:42","phx_join",{}]')
    assert sock.frames_to_send() == ['["5","5","conversation:42","phx_close",{}]']
    assert sock.events_received() == [
        Left(TOPIC, "5", "duplicate_join"),
        JoinRequested(TOPIC, "11", "11", {}),
    ]


def test_after_a_second_join_pushes_carry_the_new_join_ref() -> None:
    """Once the new join is accepted, pushes use its join_ref."""
    sock = joined(ref="5")
    assert sock.accept_join(request_join(sock, ref="11"))
    sock.frames_to_send()
    assert sock.push(TOPIC, "token", {})
    assert sock.frames_to_send() == ['["11",null,"conversation:42","token",{}]']


def test_a_new_join_supersedes_one_still_awaiting_its_decision() -> None:
    """A second join before the first is decided makes the first request stale."""
    sock = PhoenixSocket()
    first = request_join(sock, ref="5")
    second = request_join(sock, ref="6")
    assert not sock.accept_join(first)
    assert sock.frames_to_send() == []
    assert sock.accept_join(second)
    assert sock.joined_topics() == {TOPIC: "6"}


# --- channel limit -----------------------------------------------------------------------


def test_default_channel_limit_is_100() -> None:
    """Phoenix's limit of 100 channels per socket is the default."""
    sock = PhoenixSocket()
    for n in range(DEFAULT_MAX_CHANNELS):
        assert sock.accept_join(request_join(sock, f"room:{n}", str(n)))
    sock.frames_to_send()
    sock.receive_text('["x","x","room:100","phx_join",{}]')
    assert sock.frames_to_send() == [
        error_reply("x", "x", "room:100", '{"reason":"too many channels joined"}')
    ]
    assert sock.events_received() == []


def test_joins_awaiting_a_decision_count_toward_the_limit() -> None:
    """Undecided joins hold their slot, so a flood of joins cannot bypass the limit."""
    sock = PhoenixSocket(max_channels=2)
    request_join(sock, "a", "1")
    request_join(sock, "b", "2")
    sock.receive_text('["3","3","c","phx_join",{}]')
    assert sock.frames_to_send() == [
        error_reply("3", "3", "c", '{"reason":"too many channels joined"}')
    ]


def test_rejoining_a_topic_at_the_limit_is_allowed() -> None:
    """A second join of a joined topic frees the old slot first, so it never hits the limit."""
    sock = joined("a", "1", max_channels=1)
    sock.receive_text('["2","2","a","phx_join",{}]')
    assert sock.frames_to_send() == ['["1","1","a","phx_close",{}]']
    assert sock.events_received()[-1] == JoinRequested("a", "2", "2", {})


def test_a_left_channel_frees_its_slot() -> None:
    """After a leave, a new topic can be joined under the limit again."""
    sock = joined("a", "1", max_channels=1)
    sock.receive_text('["1","2","a","phx_leave",{}]')
    sock.frames_to_send()
    sock.events_received()
    assert sock.accept_join(request_join(sock, "b", "3"))


# --- server-side channel ends ------------------------------------------------------------


def test_channel_crash_sends_phx_error_and_unjoins() -> None:
    """channel_crashed sends [jr, jr, topic, "phx_error", {"reason":"channel_crash"}]."""
    sock = joined()
    assert sock.channel_crashed(TOPIC)
    assert sock.frames_to_send() == [
        '["5","5","conversation:42","phx_error",{"reason":"channel_crash"}]'
    ]
    assert not sock.is_joined(TOPIC)
    assert sock.events_received() == []


def test_messages_after_a_crash_are_unmatched_until_the_client_rejoins() -> None:
    """After phx_error the topic is unjoined; the client's rejoin is a fresh JoinRequested."""
    sock = joined()
    sock.channel_crashed(TOPIC)
    sock.frames_to_send()
    sock.receive_text('["5","6","conversation:42","message",{}]')
    assert sock.frames_to_send() == [error_reply(None, "6", TOPIC, UNMATCHED)]
    assert request_join(sock, ref="7") == JoinRequested(TOPIC, "7", "7", {})


def test_crash_or_close_of_an_unjoined_topic_does_nothing() -> None:
    """channel_crashed and close_channel on an unjoined topic return False and send nothing."""
    sock = PhoenixSocket()
    assert not sock.channel_crashed(TOPIC)
    assert not sock.close_channel(TOPIC)
    assert sock.frames_to_send() == []


def test_close_channel_sends_phx_close() -> None:
    """close_channel ends one channel with [jr, jr, topic, "phx_close", {}]."""
    sock = joined()
    assert sock.close_channel(TOPIC)
    assert sock.frames_to_send() == ['["5","5","conversation:42","phx_close",{}]']
    assert not sock.is_joined(TOPIC)


# --- topic patterns ----------------------------------------------------------------------


def test_join_of_a_topic_no_pattern_serves_is_unmatched() -> None:
    """With topics=["conversation:*"], joining room:1 gets the unmatched-topic reply, null jr."""
    sock = PhoenixSocket(topics=["conversation:*"])
    sock.receive_text('["5","5","room:1","phx_join",{}]')
    assert sock.frames_to_send() == [error_reply(None, "5", "room:1", UNMATCHED)]
    assert sock.events_received() == []


def test_prefix_and_exact_patterns_match_as_in_phoenix() -> None:
    """'conversation:*' matches by prefix and 'lobby' matches exactly."""
    sock = PhoenixSocket(topics=["conversation:*", "lobby"])
    assert request_join(sock, "conversation:1", "1").topic == "conversation:1"
    assert request_join(sock, "lobby", "2").topic == "lobby"
    sock.receive_text('["3","3","lobby:2","phx_join",{}]')
    assert sock.frames_to_send() == [error_reply(None, "3", "lobby:2", UNMATCHED)]


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"max_channels": 0}, "max_channels"),
        ({"max_channels": True}, "max_channels"),
        ({"max_channels": 2.5}, "max_channels"),
        ({"max_frame_size": 0}, "max_frame_size"),
        ({"max_frame_size": "1MB"}, "max_frame_size"),
        ({"topics": ["room:*:x"]}, "topics"),
        ({"topics": "room:*"}, "topics"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], name: str) -> None:
    """Out-of-range limits and malformed topic patterns raise InvalidOptionError."""
    with pytest.raises(InvalidOptionError, match=f"invalid {name}:"):
        PhoenixSocket(**options)


# --- a whole session ---------------------------------------------------------------------


def test_a_js_client_session_frame_by_frame() -> None:
    """Join, message, reply, streamed pushes, heartbeat and leave give Phoenix's exact frames."""
    sock = PhoenixSocket()
    sock.receive_text('["1","1","conversation:42","phx_join",{"session":"s1"}]')
    [request] = sock.events_received()
    assert isinstance(request, JoinRequested)
    sock.accept_join(request)
    sock.receive_text('["1","2","conversation:42","message",{"content":"hi"}]')
    [message] = sock.events_received()
    assert isinstance(message, Message)
    sock.reply(message, {"request_id": "r1"})
    sock.push(TOPIC, "token", {"request_id": "r1", "delta": "Hi"})
    sock.push(TOPIC, "done", {"request_id": "r1"})
    sock.receive_text('[null,"3","phoenix","heartbeat",{}]')
    sock.receive_text('["1","4","conversation:42","phx_leave",{}]')
    assert sock.frames_to_send() == [
        '["1","1","conversation:42","phx_reply",{"status":"ok","response":{}}]',
        '["1","2","conversation:42","phx_reply",{"status":"ok","response":{"request_id":"r1"}}]',
        '["1",null,"conversation:42","token",{"request_id":"r1","delta":"Hi"}]',
        '["1",null,"conversation:42","done",{"request_id":"r1"}]',
        '[null,"3","phoenix","phx_reply",{"status":"ok","response":{}}]',
        '["1","4","conversation:42","phx_reply",{"status":"ok","response":{}}]',
        '["1","1","conversation:42","phx_close",{}]',
    ]
    assert sock.events_received() == [Left(TOPIC, "1", "leave")]


def test_output_queues_drain() -> None:
    """frames_to_send and events_received return each item once."""
    sock = PhoenixSocket()
    request_join(sock)
    sock.receive_text('[null,"1","phoenix","heartbeat",{}]')
    assert len(sock.frames_to_send()) == 1
    assert sock.frames_to_send() == []
    assert sock.events_received() == []


def test_the_protocol_core_imports_no_io() -> None:
    """The sans-I/O modules import neither asyncio nor websockets (nor any network module)."""
    package = Path(beamish.channels.__file__).parent
    forbidden = {"asyncio", "websockets", "socket", "anyio", "uvicorn", "fastapi"}
    for name in ("frames", "socket_state", "handshake", "idle", "close_codes", "errors"):
        tree = ast.parse((package / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & forbidden, f"{name}.py imports {roots & forbidden}"


def test_a_binary_heartbeat_gets_the_json_reply() -> None:
    """A heartbeat sent as a binary push is answered like a text one."""
    sock = PhoenixSocket()
    sock.receive_bytes(b"\x00\x00\x01\x07\x09" + b"9phoenixheartbeat")
    assert sock.frames_to_send() == [
        '[null,"9","phoenix","phx_reply",{"status":"ok","response":{}}]'
    ]
