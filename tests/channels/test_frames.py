"""The Phoenix V2 frame codec: text and binary frames, exact bytes, and every malformed input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from beamish.channels.close_codes import CloseCode
from beamish.channels.errors import (
    BinaryFrameError,
    EncodeError,
    FrameError,
    FrameShapeError,
    FrameTooLargeError,
    InvalidJSONError,
)
from beamish.channels.frames import (
    Frame,
    decode_binary,
    decode_text,
    encode_broadcast,
    encode_push,
    encode_reply,
    encode_text,
)
from beamish.llm.hierarchy import Layer


def client_binary_push(join_ref: str, ref: str, topic: str, event: str, data: bytes) -> bytes:
    """Build a binary push the way the phoenix JS client's serializer.binaryEncode does."""
    fields = [part.encode() for part in (join_ref, ref, topic, event)]
    return bytes([0, *(len(field) for field in fields)]) + b"".join(fields) + data


# --- decoding text frames ----------------------------------------------------------------


def test_decodes_a_join_as_the_js_client_sends_it() -> None:
    """A JS client join decodes with join_ref equal to its ref and the params as payload."""
    frame = decode_text('["5","5","conversation:42","phx_join",{"last_seen_id":3}]')
    assert frame == Frame("5", "5", "conversation:42", "phx_join", {"last_seen_id": 3})


def test_decodes_a_heartbeat_with_null_join_ref() -> None:
    """A heartbeat's null join_ref decodes as None."""
    frame = decode_text('[null,"12","phoenix","heartbeat",{}]')
    assert frame == Frame(None, "12", "phoenix", "heartbeat", {})


def test_decodes_insignificant_whitespace_and_unicode() -> None:
    """Whitespace between tokens is allowed and escapes decode to their characters."""
    frame = decode_text(' [ "1" , "2" , "t" , "e" , {"s": "h\\u00e9 \\ud83d\\ude00"} ] ')
    assert frame.payload == {"s": "hé 😀"}


@pytest.mark.parametrize(
    "text",
    ["", "[", "not json", '["1","1","t","e",{}] trailing', "{'single': 'quotes'}"],
)
def test_bad_json_is_an_unanswerable_invalid_json_error(text: str) -> None:
    """Text that is not one JSON document raises InvalidJSONError with no ref to answer."""
    with pytest.raises(InvalidJSONError, match="not valid JSON") as caught:
        decode_text(text)
    assert not caught.value.answerable
    assert caught.value.close_code is CloseCode.POLICY_VIOLATION


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_constants_are_refused(constant: str) -> None:
    """NaN and the infinities, which Python's json would accept, are not JSON and are refused."""
    with pytest.raises(InvalidJSONError, match=constant):
        decode_text(f'["1","1","t","e",{{"x":{constant}}}]')


def test_deeply_nested_json_is_an_error_not_a_recursion_crash() -> None:
    """JSON nested deeper than the parser's stack raises InvalidJSONError, not RecursionError."""
    with pytest.raises(InvalidJSONError, match="nested too deeply"):
        decode_text("[" * 200_000 + "]" * 200_000)


def test_an_unpaired_surrogate_escape_is_refused() -> None:
    """A lone \\ud800 escape, which could never be sent back as UTF-8, is invalid JSON here."""
    with pytest.raises(InvalidJSONError, match="unpaired UTF-16 surrogate"):
        decode_text('["1","1","t","e",{"s":"\\ud800"}]')


@pytest.mark.parametrize(
    ("text", "got"),
    [('{"topic":"t"}', "object"), ('"text"', "string"), ("42", "number"), ("null", "null")],
)
def test_a_document_that_is_not_an_array_is_a_shape_error(text: str, got: str) -> None:
    """A JSON value other than an array raises FrameShapeError naming what it got."""
    with pytest.raises(FrameShapeError, match=f"must be a JSON array .* got a JSON {got}$"):
        decode_text(text)


@pytest.mark.parametrize("count", [0, 4, 6])
def test_wrong_arity_is_a_shape_error(count: int) -> None:
    """An array of other than 5 elements raises FrameShapeError with the count, unanswerable."""
    elements = ["1", "1", "t", "e", {}, "extra"][:count] + [{}] * max(0, count - 6)
    with pytest.raises(FrameShapeError, match=f"exactly 5 elements .* got {count}$") as caught:
        decode_text(json.dumps(elements))
    assert not caught.value.answerable


@pytest.mark.parametrize(
    ("elements", "message"),
    [
        ([1, "2", "t", "e", {}], "join_ref must be a string or null, got a JSON number"),
        (["1", "2", "t", 7, {}], "event must be a string, got a JSON number"),
        (["1", "2", "t", "e", []], "payload must be a JSON object, got a JSON array"),
        (["1", "2", "t", "e", "x"], "payload must be a JSON object, got a JSON string"),
        (["1", "2", "t", "e", None], "payload must be a JSON object, got a JSON null"),
        (["1", "2", "t", "e", True], "payload must be a JSON object, got a JSON boolean"),
    ],
)
def test_wrong_element_type_with_readable_ref_and_topic_is_answerable(
    elements: list[Any], message: str
) -> None:
    """A bad element beside a readable ref and topic raises an answerable FrameShapeError."""
    with pytest.raises(FrameShapeError, match=message) as caught:
        decode_text(json.dumps(elements))
    error = caught.value
    assert (error.ref, error.topic, error.answerable) == ("2", "t", True)
    assert error.join_ref == (elements[0] if isinstance(elements[0], str) else None)


@pytest.mark.parametrize(
    ("elements", "message"),
    [
        (["1", 2, "t", "e", {}], "ref must be a string or null, got a JSON number"),
        (["1", "2", None, "e", {}], "topic must be a string, got a JSON null"),
        (["1", "2", ["t"], "e", {}], "topic must be a string, got a JSON array"),
    ],
)
def test_unreadable_ref_or_topic_is_unanswerable(elements: list[Any], message: str) -> None:
    """A ref or topic of the wrong type leaves nothing to address a reply to."""
    with pytest.raises(FrameShapeError, match=message) as caught:
        decode_text(json.dumps(elements))
    assert not caught.value.answerable


def test_text_at_the_size_limit_decodes() -> None:
    """A frame of exactly max_size bytes is accepted."""
    text = '["1","1","t","e",{"s":"' + "x" * 10 + '"}]'
    assert decode_text(text, max_size=len(text)).payload == {"s": "x" * 10}


def test_text_over_the_size_limit_is_refused_before_parsing() -> None:
    """One byte over max_size raises FrameTooLargeError (close 1009), even for invalid JSON."""
    with pytest.raises(FrameTooLargeError, match="frame of 11 bytes exceeds the 10-byte") as caught:
        decode_text("x" * 11, max_size=10)
    assert (caught.value.size, caught.value.max_size) == (11, 10)
    assert caught.value.close_code is CloseCode.MESSAGE_TOO_BIG


def test_the_size_limit_counts_utf8_bytes_not_characters() -> None:
    """Ten 'é' are 10 characters but 20 UTF-8 bytes: over a 15-byte limit."""
    with pytest.raises(FrameTooLargeError, match="frame of 20 bytes"):
        decode_text("é" * 10, max_size=15)


def test_every_frame_error_is_a_frame_error() -> None:
    """All decode failures share the FrameError base the socket catches."""
    for error_type in (InvalidJSONError, FrameShapeError, FrameTooLargeError, BinaryFrameError):
        assert issubclass(error_type, FrameError)


# --- encoding text frames ----------------------------------------------------------------


def test_heartbeat_reply_bytes_match_phoenix() -> None:
    """The heartbeat reply is compact JSON exactly as the protocol notes give it."""
    frame = encode_reply(None, "1", "phoenix", "ok", {})
    assert frame == '[null,"1","phoenix","phx_reply",{"status":"ok","response":{}}]'


def test_error_reply_bytes_match_phoenix() -> None:
    """An error reply nests the response under "response" beside "status"."""
    frame = encode_reply("5", "5", "conversation:42", "error", {"reason": "unauthorized"})
    assert frame == (
        '["5","5","conversation:42","phx_reply",'
        '{"status":"error","response":{"reason":"unauthorized"}}]'
    )


def test_push_carries_join_ref_and_null_ref() -> None:
    """A push is [join_ref, null, topic, event, payload], non-ASCII written as UTF-8."""
    frame = encode_push("5", "conversation:42", "token", {"request_id": "r1", "delta": "hé"})
    assert frame == '["5",null,"conversation:42","token",{"request_id":"r1","delta":"hé"}]'


def test_broadcast_has_null_join_ref_and_ref() -> None:
    """A broadcast is [null, null, topic, event, payload]."""
    frame = encode_broadcast("room:1", "new_msg", {"body": "hi"})
    assert frame == '[null,null,"room:1","new_msg",{"body":"hi"}]'


def test_encode_text_round_trips_through_decode_text() -> None:
    """encode_text writes what decode_text reads back unchanged."""
    frame = Frame("3", "4", "conversation:1", "message", {"content": "x", "n": [1, 2.5, None]})
    assert decode_text(encode_text(frame)) == frame


@pytest.mark.parametrize("payload", [[1, 2], "text", None, 3])
def test_encoding_a_non_object_payload_is_an_encode_error(payload: Any) -> None:
    """Phoenix requires map payloads; anything but a dict or bytes raises EncodeError."""
    with pytest.raises(EncodeError, match="must be a dict"):
        encode_push("1", "t", "e", payload)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), object(), {1j: 2}])
def test_a_value_json_cannot_carry_is_an_encode_error(value: Any) -> None:
    """NaN, infinities and non-JSON objects raise EncodeError (also a ValueError)."""
    with pytest.raises(EncodeError, match="cannot be encoded as JSON") as caught:
        encode_broadcast("t", "e", {"v": value})
    assert isinstance(caught.value, ValueError)


def test_a_payload_that_contains_itself_is_an_encode_error() -> None:
    """A cycle cannot be written as JSON: EncodeError, not a crash of the pushing channel."""
    payload: dict[str, Any] = {}
    payload["self"] = payload
    with pytest.raises(EncodeError, match="cannot be encoded as JSON"):
        encode_push("1", "t", "e", payload)


def test_frames_encode_as_compact_json_with_text_as_is() -> None:
    """No spaces, non-ASCII text unescaped, StrEnum values as their strings."""
    frame = encode_push("1", "t", "e", {"text": "héllo ✓", "n": [1, 2.5, None, True],
                                        "layer": Layer.USER_DEFAULT})
    assert frame == ('["1",null,"t","e",{"text":"héllo ✓","n":[1,2.5,null,true],'
                     '"layer":"user_default"}]')


# --- binary frames -----------------------------------------------------------------------


def test_decodes_a_binary_push_from_the_js_client() -> None:
    """A kind-0 client push decodes its header fields and keeps the rest as raw bytes."""
    data = client_binary_push("5", "7", "conversation:42", "upload", b"\x00\xffraw")
    assert decode_binary(data) == Frame("5", "7", "conversation:42", "upload", b"\x00\xffraw")


def test_binary_push_bytes_are_the_documented_layout() -> None:
    """The layout is [0][len jr][len ref][len topic][len event] + fields + payload."""
    data = b"\x00\x01\x01\x01\x01" + b"1" + b"2" + b"t" + b"e" + b"payload"
    assert decode_binary(data) == Frame("1", "2", "t", "e", b"payload")


def test_empty_binary_refs_decode_as_none() -> None:
    """An empty join_ref or ref field (Elixir's to_string(nil)) decodes as None."""
    frame = decode_binary(client_binary_push("", "", "t", "e", b""))
    assert (frame.join_ref, frame.ref, frame.payload) == (None, None, b"")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter than the 5-byte V2 push header"),
        (b"\x00\x01\x01", "shorter than the 5-byte V2 push header"),
        (b"\x01\x00\x00\x01\x01te", "kind 1 is not a push"),
        (b"\x02\x01\x01te", "kind 2 is not a push"),
        (b"\x00\x01\x01\x05\x01" + b"12to", "shorter than its header says"),
        (b"\x00\x00\x00\x01\x01" + b"\xfft", "field topic is not UTF-8"),
    ],
)
def test_malformed_binary_frames_are_unanswerable_errors(data: bytes, message: str) -> None:
    """Short, truncated, wrong-kind or non-UTF-8 binary frames raise BinaryFrameError."""
    with pytest.raises(BinaryFrameError, match=message) as caught:
        decode_binary(data)
    assert not caught.value.answerable


def test_binary_over_the_size_limit_is_refused() -> None:
    """A binary frame over max_size raises FrameTooLargeError with its exact size."""
    data = client_binary_push("1", "1", "t", "e", b"x" * 100)
    with pytest.raises(FrameTooLargeError, match=f"frame of {len(data)} bytes exceeds the 50"):
        decode_binary(data, max_size=50)


def test_binary_push_to_the_client_is_kind_zero_without_ref() -> None:
    """A server push with bytes is [0][len jr][len topic][len event] + fields + payload."""
    frame = encode_push("5", "room:1", "img", b"\x89PNG")
    assert frame == b"\x00\x01\x06\x03" + b"5" + b"room:1" + b"img" + b"\x89PNG"


def test_binary_reply_is_kind_one_with_status_in_the_event_slot() -> None:
    """A reply with bytes is [1][jr][ref][topic][status] + fields + payload."""
    frame = encode_reply("5", "12", "room:1", "ok", b"data")
    assert frame == b"\x01\x01\x02\x06\x02" + b"5" + b"12" + b"room:1" + b"ok" + b"data"


def test_binary_reply_writes_absent_refs_as_empty_fields() -> None:
    """A None join_ref or ref is written as an empty field, as Elixir's to_string(nil)."""
    frame = encode_reply(None, None, "t", "error", b"")
    assert frame == b"\x01\x00\x00\x01\x05" + b"t" + b"error"


def test_binary_broadcast_is_kind_two() -> None:
    """A broadcast with bytes is [2][len topic][len event] + fields + payload."""
    frame = encode_broadcast("room:1", "img", b"\x00")
    assert frame == b"\x02\x06\x03" + b"room:1" + b"img" + b"\x00"


def test_binary_header_lengths_count_utf8_bytes() -> None:
    """Header lengths are UTF-8 byte counts: topic 'é' is 2 bytes."""
    assert encode_broadcast("é", "e", b"") == b"\x02\x02\x01" + "é".encode() + b"e"


def test_a_binary_header_field_over_255_bytes_is_an_encode_error() -> None:
    """A topic of 256 bytes cannot fit the one-byte length and raises EncodeError."""
    with pytest.raises(EncodeError, match=r"field topic is 256 bytes; .* at most 255"):
        encode_push("1", "t" * 256, "e", b"")
    assert encode_push("1", "t" * 255, "e", b"")[2] == 255
