"""The wire client's server-sent-event decoder, without a loop: the SDK's rules, on bytes."""

from __future__ import annotations

from beamish.llm.providers.wire.sse import ServerSentEvent, SSEDecoder

STREAM = (b'data: {"a": 1}\n\n'
          b": a comment\n"
          b"event: ping\ndata: x\ndata:y\n\n"
          b"id: 7\nretry: nope\n"
          b"data: [DONE]\n\n")
EVENTS = [(None, b'{"a": 1}'), ("ping", b"x\ny"), (None, b"[DONE]")]


def _decode(pieces: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.end()


def test_events_are_the_same_however_the_bytes_are_cut() -> None:
    """Whole, byte by byte, or cut at every point: the same events."""
    assert _decode([STREAM]) == EVENTS
    assert _decode([bytes([b]) for b in STREAM]) == EVENTS
    for cut in range(len(STREAM)):
        assert _decode([STREAM[:cut], STREAM[cut:]]) == EVENTS, cut


def test_every_line_end_counts_and_a_split_crlf_is_one() -> None:
    """CRLF, CR and LF all end lines; a CRLF cut between pieces ends one line, not two."""
    crlf = STREAM.replace(b"\n", b"\r\n")
    assert _decode([crlf]) == EVENTS
    assert _decode([STREAM.replace(b"\n", b"\r")]) == EVENTS
    assert _decode([bytes([b]) for b in crlf]) == EVENTS
    assert _decode([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [(None, b"a\nb")]


def test_a_blank_line_alone_dispatches_nothing_until_an_id_was_seen() -> None:
    """Empty events are skipped; after an id field (kept across events, as the SDK keeps it)
    a blank line dispatches an event with empty data, which the provider then rejects."""
    assert _decode([b"\n\n\n"]) == []
    assert _decode([b"id: 1\n\n\n"]) == [(None, b""), (None, b"")]
    assert _decode([b"retry: 10\n\n\n"]) == [(None, b"")]


def test_a_stream_cut_mid_event_drops_the_unfinished_event() -> None:
    """The last line is read at the end, but an event without its blank line is dropped."""
    assert _decode([b'data: {"a": 1}\n\ndata: {"b"']) == [(None, b'{"a": 1}')]
    assert _decode([b"data: x\r"]) == []


def test_a_line_of_many_pieces_is_joined_once() -> None:
    """A long line given in pieces is held as pieces, then read whole."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: ") == []
    for _ in range(100):
        assert decoder.feed(b"x" * 1000) == []
    assert decoder.feed(b"\n\n") == [(None, b"x" * 100_000)]
