"""Header-field bounds and lone surrogates: refused at the codec, before a socket keeps them."""

from __future__ import annotations

import sys

import pytest

from beamish.channels.close_codes import CloseCode
from beamish.channels.errors import FrameFieldError, InvalidJSONError, InvalidOptionError
from beamish.channels.frames import FieldLimits, decode_binary, decode_text
from beamish.channels.socket_state import FrameRejected, JoinRequested, PhoenixSocket, SocketState
from tests.channels._phx import binary_push
from tests.channels._support import frame, joined

LIMITS = FieldLimits()


def test_a_join_of_an_oversized_topic_closes_1008_and_keeps_nothing() -> None:
    """A 1 MB topic is not echoed, not joined, not pending: the socket closes with 1008."""
    sock = PhoenixSocket()
    topic = "conversation:" + "x" * 1_000_000
    sock.receive_text(frame("1", "1", topic, "phx_join", {}))
    assert sock.state is SocketState.CLOSING
    assert sock.close_code is CloseCode.POLICY_VIOLATION
    assert "topic is 1000013 bytes; at most 256" in sock.close_reason
    assert sock.frames_to_send() == []
    [rejected] = sock.events_received()
    assert isinstance(rejected, FrameRejected)
    assert rejected.error.topic is None  # the oversized topic is not kept, even in the error
    assert sock.joined_topics() == {}
    assert sys.getsizeof(sock._pending) == sys.getsizeof({})


def test_a_topic_at_the_bound_is_joined_and_one_byte_more_is_refused() -> None:
    """256 UTF-8 bytes is the default bound: multi-byte characters count as their bytes."""
    sock = PhoenixSocket()
    at_bound = "t:" + "é" * 127  # 2 + 254 bytes
    sock.receive_text(frame("1", "1", at_bound, "phx_join", {}))
    assert isinstance(sock.events_received()[0], JoinRequested)
    sock.receive_text(frame("2", "2", at_bound + "x", "phx_join", {}))
    assert sock.close_code is CloseCode.POLICY_VIOLATION


def test_a_long_event_on_a_joined_topic_gets_an_error_reply() -> None:
    """A bad event name with a readable ref and topic is answered, and the socket stays open."""
    sock = joined()
    sock.receive_text(frame("5", "6", "conversation:42", "e" * 65, {}))
    [reply] = sock.frames_to_send()
    assert isinstance(reply, str)
    assert reply.startswith('["5","6","conversation:42","phx_reply",{"status":"error"')
    assert "event is 65 bytes; at most 64" in reply
    assert sock.state is SocketState.OPEN


@pytest.mark.parametrize(
    ("join_ref", "ref", "topic", "event", "problem"),
    [
        ("1", "r" * 65, "t", "e", "ref is 65 bytes; at most 64"),
        ("j" * 65, "1", "t", "e", "join_ref is 65 bytes"),
        ("1", "1", "", "e", "topic is empty"),
        ("1", "1", "t", "", "event is empty"),
        ("1", "1", "room:\x00", "e", "topic holds a control character"),
        ("1", "1", "t", "say\n", "event holds a control character"),
        ("1\x85", "1", "t", "e", "join_ref holds a control character"),
    ],
)
def test_each_field_rule_names_the_field(
    join_ref: str, ref: str, topic: str, event: str, problem: str
) -> None:
    """Every bound and character rule raises FrameFieldError naming the field and the rule."""
    with pytest.raises(FrameFieldError, match=problem):
        decode_text(frame(join_ref, ref, topic, event, {}), limits=LIMITS)


def test_a_binary_push_obeys_the_same_bounds() -> None:
    """A binary frame's event is bounded like a text frame's."""
    with pytest.raises(FrameFieldError, match="event is 70 bytes"):
        decode_binary(binary_push("1", "2", "t", "e" * 70, b"x"), limits=LIMITS)


def test_bounds_are_options_checked_at_construction() -> None:
    """A bound below 1 is an InvalidOptionError naming the socket option."""
    with pytest.raises(InvalidOptionError, match="max_topic_bytes"):
        PhoenixSocket(max_topic_bytes=0)
    sock = PhoenixSocket(max_topic_bytes=8)
    sock.receive_text(frame("1", "1", "room:123", "phx_join", {}))
    assert isinstance(sock.events_received()[0], JoinRequested)


def test_a_lone_surrogate_deep_in_a_payload_gets_an_error_reply_not_a_close() -> None:
    """The header is clean, so that one frame is answered "invalid frame"; the socket serves on."""
    sock = joined()
    nested = "[" * 500 + '"\\udc00"' + "]" * 500
    sock.receive_text(f'["5","7","conversation:42","say",{{"a":{{"b":{nested}}}}}]')
    [reply] = sock.frames_to_send()
    assert isinstance(reply, str)
    assert reply.startswith('["5","7","conversation:42","phx_reply",{"status":"error"')
    assert "unpaired UTF-16 surrogate" in reply
    assert isinstance(sock.events_received()[0], FrameRejected)
    assert sock.state is SocketState.OPEN
    sock.receive_text('[null,"8","phoenix","heartbeat",{}]')
    assert sock.frames_to_send() == [
        '[null,"8","phoenix","phx_reply",{"status":"ok","response":{}}]']


def test_a_lone_surrogate_in_the_topic_closes_the_socket() -> None:
    """A topic that cannot be echoed as UTF-8 makes the frame unanswerable: close 1008."""
    sock = PhoenixSocket()
    sock.receive_text('["1","1","room:\\ud800","phx_join",{}]')
    assert sock.close_code is CloseCode.POLICY_VIOLATION


def test_a_raw_surrogate_character_is_refused_like_an_escaped_one() -> None:
    """A str holding a surrogate itself (not an escape) is refused, keeping the clean header."""
    with pytest.raises(InvalidJSONError, match="surrogate") as caught:
        decode_text('["1","2","t","e",{"a":["\ud800"]}]')
    assert (caught.value.ref, caught.value.topic) == ("2", "t")


def test_a_join_frame_over_max_join_size_gets_an_error_reply_and_is_not_kept() -> None:
    """Join params are kept until the join is decided: a join over max_join_size is refused."""
    sock = PhoenixSocket(max_join_size=1000)
    sock.receive_text(frame("1", "1", "room:1", "phx_join", {"p": "x" * 1000}))
    [reply] = sock.frames_to_send()
    assert isinstance(reply, str)
    assert reply.startswith('["1","1","room:1","phx_reply",{"status":"error"')
    assert "at most 1000 characters" in reply
    assert sock.events_received() == []
    assert sock.state is SocketState.OPEN
    sock.receive_text(frame("2", "2", "room:1", "phx_join", {"p": "x" * 900}))
    assert isinstance(sock.events_received()[0], JoinRequested)


def test_a_lone_surrogate_with_an_overlong_ref_is_not_answered() -> None:
    """The error keeps only header fields within the bounds, so nothing oversized is echoed."""
    with pytest.raises(InvalidJSONError) as caught:
        decode_text(frame("1", "r" * 65, "t", "e", {}).replace("{}", '{"a":"\\ud800"}'))
    assert (caught.value.join_ref, caught.value.ref, caught.value.topic) == ("1", None, "t")
    assert not caught.value.answerable
