"""Properties of the codec and the socket state machine over any JSON-ish input (hypothesis).

Whatever a client sends, the decoder returns a Frame or raises a FrameError, and the socket
answers with frames UTF-8 can carry or closes with a close code: no other exception escapes.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from beamish.channels.errors import FrameError
from beamish.channels.frames import FieldLimits, Frame, decode_binary, decode_text
from beamish.channels.socket_state import (
    FrameRejected,
    JoinRequested,
    PhoenixSocket,
    SocketState,
)

# Every code point, lone surrogates included: json.dumps writes those as \ud800 escapes.
ANY_CHAR = st.characters(codec=None, categories=None)
ANY_TEXT = st.text(ANY_CHAR, max_size=40)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=30,
)
# No example database in the checkout, and no deadline: the machine may be busy.
PROPERTY = settings(database=None, deadline=None, max_examples=100)
HEADER = st.none() | ANY_TEXT | st.sampled_from(["1", "phoenix", "room:1", "x" * 300])
EVENT = ANY_TEXT | st.sampled_from(["phx_join", "phx_leave", "heartbeat", "say"])


@st.composite
def frames(draw: st.DrawFn) -> str:
    """A text frame: mostly five elements of the right kinds, sometimes anything, deep too."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        document: Any = draw(JSONISH)
    else:
        payload = draw(st.dictionaries(ANY_TEXT, JSONISH, max_size=3))
        if kind == 3:  # something deep in the payload
            depth = draw(st.sampled_from([1, 50, 500, 980]))
            head = ",".join(json.dumps(field) for field in document_head(draw, {})[:4])
            nested = "[" * depth + json.dumps(draw(ANY_TEXT)) + "]" * depth
            return f'[{head},{{"deep":{nested}}}]'
        document = document_head(draw, payload)
    return json.dumps(document)


def document_head(draw: st.DrawFn, payload: dict[str, Any]) -> list[Any]:
    """[join_ref, ref, topic, event, payload] with drawn header fields."""
    return [draw(HEADER), draw(HEADER), draw(HEADER | st.just("room:1")), draw(EVENT), payload]


def _decode(text: str) -> Frame | FrameError:
    try:
        return decode_text(text, max_size=64 * 1024, limits=FieldLimits())
    except FrameError as error:
        return error


@PROPERTY
@given(frames())
def test_the_decoder_returns_a_frame_or_a_frame_error(text: str) -> None:
    """decode_text never raises anything but a FrameError, and a Frame's fields obey the limits."""
    decoded = _decode(text)
    if isinstance(decoded, Frame):
        assert len(decoded.topic.encode()) <= 256
        assert decoded.event
        assert len(decoded.event.encode()) <= 64
        json.dumps(decoded.payload).encode()  # no lone surrogate reached the payload


@PROPERTY
@given(ANY_TEXT | st.text(max_size=300))
def test_any_text_at_all_decodes_or_is_a_frame_error(text: str) -> None:
    """Not even JSON: raw text, raw surrogates included, is a FrameError at worst."""
    _decode(text)


@PROPERTY
@given(st.binary(max_size=600))
def test_any_binary_frame_decodes_or_is_a_frame_error(data: bytes) -> None:
    """decode_binary raises nothing but a FrameError."""
    with contextlib.suppress(FrameError):
        decode_binary(data, max_size=512, limits=FieldLimits())


@PROPERTY
@given(st.lists(frames() | st.sampled_from([
    '["1","1","room:1","phx_join",{}]', '["1","2","room:1","say",{}]',
    '["1","3","room:1","phx_leave",{}]', '[null,"4","phoenix","heartbeat",{}]']), max_size=12))
def test_the_socket_answers_any_frames_with_utf8_or_closes(texts: list[str]) -> None:
    """Fed any frames, the socket raises nothing, every frame out is UTF-8, and a close has
    a protocol close code; what it keeps stays within max_channels."""
    sock = PhoenixSocket(max_channels=3)
    for text in texts:
        sock.receive_text(text)
        for event in sock.events_received():
            if isinstance(event, JoinRequested):
                sock.accept_join(event)
            else:
                assert not isinstance(event, FrameRejected) or isinstance(event.error, FrameError)
        for out in sock.frames_to_send():
            assert isinstance(out, str)
            out.encode()
    assert len(sock.joined_topics()) <= 3
    if sock.state is not SocketState.OPEN:
        assert sock.close_code in (1008, 1009)
        sock.close_reason.encode()
