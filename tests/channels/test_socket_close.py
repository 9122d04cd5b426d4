"""Closing a Phoenix socket: server closes, lost connections, and malformed or oversized frames."""

from __future__ import annotations

import pytest

from beamish.channels.close_codes import CloseCode
from beamish.channels.errors import FrameShapeError, FrameTooLargeError, InvalidJSONError
from beamish.channels.socket_state import (
    FrameRejected,
    Left,
    Message,
    PhoenixSocket,
    SocketState,
)
from tests.channels._support import TOPIC, error_reply, frame, joined, request_join

# --- closing the socket ------------------------------------------------------------------


def test_close_ends_every_channel_and_asks_the_adapter_to_close() -> None:
    """close() sets CLOSING with the code and reason, and emits Left("closed") per channel."""
    sock = joined("a", "1")
    assert sock.accept_join(request_join(sock, "b", "2"))
    sock.close(CloseCode.GOING_AWAY, "server shutting down")
    assert (sock.state, sock.close_code, sock.close_reason) == (
        SocketState.CLOSING, CloseCode.GOING_AWAY, "server shutting down"
    )
    assert sock.events_received() == [Left("a", "1", "closed"), Left("b", "2", "closed")]
    assert sock.joined_topics() == {}


def test_frames_queued_before_close_are_still_sent() -> None:
    """close() keeps frames already queued, so a final push reaches the client first."""
    sock = joined()
    sock.push(TOPIC, "done", {})
    sock.close(CloseCode.SERVICE_RESTART)
    assert sock.frames_to_send() == ['["5",null,"conversation:42","done",{}]']


def test_a_closing_socket_ignores_input_and_sends_nothing_new() -> None:
    """After close(), frames in are ignored and push/reply/accept/crash all return False."""
    sock = joined()
    pending = request_join(sock, "b", "2")
    sock.receive_text('["5","6","conversation:42","message",{}]')
    [message] = sock.events_received()
    assert isinstance(message, Message)
    sock.close()
    sock.events_received()
    sock.receive_text('[null,"9","phoenix","heartbeat",{}]')
    sock.receive_bytes(b"\x00\x00\x01\x07\x09" + b"9phoenixheartbeat")
    assert not sock.push(TOPIC, "x", {})
    assert not sock.reply(message)
    assert not sock.accept_join(pending)
    assert not sock.channel_crashed(TOPIC)
    assert sock.frames_to_send() == []
    assert sock.events_received() == []


def test_close_is_idempotent() -> None:
    """A second close() keeps the first code and reason."""
    sock = PhoenixSocket()
    sock.close(CloseCode.GOING_AWAY, "first")
    sock.close(CloseCode.INTERNAL_ERROR, "second")
    assert (sock.close_code, sock.close_reason) == (CloseCode.GOING_AWAY, "first")


def test_close_reason_is_cut_to_what_a_close_frame_carries() -> None:
    """A close reason is truncated to 123 UTF-8 bytes without splitting a character."""
    sock = PhoenixSocket()
    sock.close(CloseCode.NORMAL, "é" * 100)
    assert sock.close_reason == "é" * 61
    assert len(sock.close_reason.encode()) == 122


def test_connection_lost_ends_channels_once() -> None:
    """connection_lost from OPEN emits Left("closed"); after close() it adds nothing."""
    sock = joined()
    sock.connection_lost()
    assert sock.events_received() == [Left(TOPIC, "5", "closed")]
    assert sock.state is SocketState.CLOSED
    assert sock.close_code is None
    other = joined()
    other.close()
    other.events_received()
    other.connection_lost()
    assert other.events_received() == []
    assert other.state is SocketState.CLOSED


# --- malformed frames --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error_type"),
    [
        ("{not json", InvalidJSONError),
        ('{"topic":"t"}', FrameShapeError),
        ('["1","1","t","e"]', FrameShapeError),
        ('["1",1,"t","e",{}]', FrameShapeError),
    ],
)
def test_unanswerable_malformed_text_closes_with_1008(
    text: str, error_type: type[Exception]
) -> None:
    """Bad JSON, a non-array, wrong arity or an unreadable ref close the socket with 1008."""
    sock = joined()
    sock.receive_text(text)
    events = sock.events_received()
    assert isinstance(events[0], FrameRejected)
    assert isinstance(events[0].error, error_type)
    assert events[1:] == [Left(TOPIC, "5", "closed")]
    assert (sock.state, sock.close_code) == (SocketState.CLOSING, CloseCode.POLICY_VIOLATION)
    assert sock.close_reason == str(events[0].error)[:123]
    assert sock.frames_to_send() == []


def test_answerable_malformed_frame_gets_an_error_reply_and_the_socket_serves_on() -> None:
    """A bad element beside a readable ref and topic is answered; the socket stays open."""
    sock = joined()
    sock.receive_text('["5","6","conversation:42","message",["not","an","object"]]')
    assert sock.frames_to_send() == [
        error_reply(
            "5", "6", TOPIC,
            '{"reason":"invalid frame","detail":'
            '"frame element payload must be a JSON object, got a JSON array"}',
        )
    ]
    [rejected] = sock.events_received()
    assert isinstance(rejected, FrameRejected)
    assert sock.state is SocketState.OPEN
    sock.receive_text('[null,"7","phoenix","heartbeat",{}]')
    assert len(sock.frames_to_send()) == 1


def test_oversized_frame_closes_with_1009() -> None:
    """A frame over max_frame_size is not parsed and closes the socket with 1009."""
    sock = PhoenixSocket(max_frame_size=64)
    sock.receive_text(frame("1", "1", "t", "message", {"content": "x" * 100}))
    [rejected] = sock.events_received()
    assert isinstance(rejected, FrameRejected)
    assert isinstance(rejected.error, FrameTooLargeError)
    assert (sock.close_code, sock.close_reason) == (
        CloseCode.MESSAGE_TOO_BIG,
        "frame of 138 bytes exceeds the 64-byte limit; send smaller messages or split the payload",
    )


def test_oversized_binary_frame_closes_with_1009() -> None:
    """A binary frame over max_frame_size also closes with 1009."""
    sock = PhoenixSocket(max_frame_size=16)
    sock.receive_bytes(b"\x00\x01\x01\x01\x01" + b"11te" + b"x" * 20)
    assert sock.close_code is CloseCode.MESSAGE_TOO_BIG


def test_max_frame_size_none_means_no_limit() -> None:
    """max_frame_size=None accepts any size."""
    sock = joined(max_frame_size=None)
    sock.receive_text(frame("5", "6", TOPIC, "message", {"content": "x" * 2_000_000}))
    [message] = sock.events_received()
    assert isinstance(message, Message)


def test_malformed_binary_frame_closes_with_1008() -> None:
    """A binary frame that is not a V2 push closes the socket with 1008."""
    sock = PhoenixSocket()
    sock.receive_bytes(b"\x02\x01\x01te")
    assert sock.close_code is CloseCode.POLICY_VIOLATION
    assert "kind 2 is not a push" in sock.close_reason
