"""The Phoenix Channels V2 frame codec: bytes and strings in, :class:`Frame` out, and back.

Text frames are JSON arrays ``[join_ref, ref, topic, event, payload]`` — exactly five
elements; ``join_ref`` and ``ref`` are strings or null, ``topic`` and ``event`` strings, and
``payload`` a JSON object. Phoenix itself tolerates extra elements and any payload; beamish is
stricter so that every frame an application sees has one shape, and a client that gets it
wrong learns why (:mod:`beamish.channels.errors`).

Binary frames follow the V2 binary layout of ``Phoenix.Socket.V2.JSONSerializer`` and the JS
client's serializer, which the JS client uses whenever a payload is an ``ArrayBuffer``. Header
lengths are one byte each, so each header field is at most 255 bytes; the payload is the rest
of the frame, raw::

    client → server push    0 [jr][ref][topic][event]   join_ref ref topic event   data
    server → client push    0 [jr][topic][event]        join_ref topic event       data
    server → client reply   1 [jr][ref][topic][status]  join_ref ref topic status  data
    server → client bcast   2 [topic][event]            topic event                data

The first byte is the kind; each ``[x]`` is one byte holding the length of field ``x``.

In a binary frame an absent ref is an empty field (Elixir's ``to_string(nil)``); decoding
maps an empty ``join_ref`` or ``ref`` back to None.

Encoding writes compact JSON (no spaces, non-ASCII as UTF-8), as Phoenix's Jason does, with a
reply payload ordered ``{"status": ..., "response": ...}``. (Elixir does not fix the key order
of small maps across OTP releases; no JSON reader depends on it.)

Options (keyword arguments of the decoders):
    max_size: Largest frame accepted, in bytes (UTF-8 bytes for text); None for no limit.
        :class:`~beamish.channels.socket_state.PhoenixSocket` defaults to
        :data:`DEFAULT_MAX_FRAME_SIZE` (1 MiB).
    limits: Bounds of the header fields (:class:`FieldLimits`); None for none. A socket
        keeps topics and refs (its channel map is keyed by topic), so it always passes them:
        ``topic`` [256] UTF-8 bytes, ``ref`` [64] (join_ref and ref), ``event`` [64]. Topics
        and events must be non-empty; no field may hold a control character (C0, DEL, C1).
        A field that breaks them raises :class:`~beamish.channels.errors.FrameFieldError`,
        which keeps the ref and topic only when they are themselves within bounds.

A JSON string holding an unpaired UTF-16 surrogate (``"\\ud800"`` alone) is refused too:
no UTF-8 frame can carry it back out. When the frame's join_ref, ref and topic are clean,
the error keeps them, so the socket answers that one frame instead of closing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final, NoReturn, TypeAlias

from beamish.channels.errors import (
    BinaryFrameError,
    EncodeError,
    FrameFieldError,
    FrameShapeError,
    FrameTooLargeError,
    InvalidJSONError,
    InvalidOptionError,
)
from beamish.compact_json import ENCODER, dumps

#: A frame's payload: a JSON object, or the raw bytes of a binary frame.
Payload: TypeAlias = dict[str, Any] | bytes

DEFAULT_MAX_FRAME_SIZE: Final = 1024 * 1024
REPLY_EVENT: Final = "phx_reply"

KIND_PUSH: Final = 0
KIND_REPLY: Final = 1
KIND_BROADCAST: Final = 2
MAX_HEADER_FIELD: Final = 255
_CLIENT_PUSH_HEADER: Final = 5  # kind + four lengths
DEFAULT_MAX_TOPIC_BYTES: Final = 256
DEFAULT_MAX_REF_BYTES: Final = 64
DEFAULT_MAX_EVENT_BYTES: Final = 64
# C0 controls, DEL and C1 controls: nothing a topic, event or ref needs, and each one makes
# logs and replies that echo the field harder to read.
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")
_RAW_SURROGATE: Final = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class FieldLimits:
    """Bounds of a frame's header fields, in UTF-8 bytes (see the module docstring)."""

    topic: int = DEFAULT_MAX_TOPIC_BYTES
    ref: int = DEFAULT_MAX_REF_BYTES
    event: int = DEFAULT_MAX_EVENT_BYTES

    def __post_init__(self) -> None:
        for name in ("topic", "ref", "event"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidOptionError(f"max_{name}_bytes", value, "an int >= 1")

def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


@dataclass(frozen=True, slots=True)
class Frame:
    """One Phoenix V2 message, in either direction."""

    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: Payload


# --- decoding ------------------------------------------------------------------------------


def decode_text(
    data: str, *, max_size: int | None = None, limits: FieldLimits | None = None
) -> Frame:
    """Decode a JSON text frame.

    Raises:
        FrameTooLargeError: ``data`` is over ``max_size`` UTF-8 bytes (checked before parsing).
        InvalidJSONError: ``data`` is not a JSON document, or a string in it holds an
            unpaired surrogate (then with the ref and topic when those are clean).
        FrameShapeError: the document is not ``[join_ref, ref, topic, event, payload]`` with
            the right types; its ``ref``/``topic`` attributes hold what could be read.
        FrameFieldError: a header field breaks ``limits``.
    """
    if max_size is not None:
        _check_text_size(data, max_size)
    try:
        document = _DECODER.decode(data)
    except RecursionError:
        raise InvalidJSONError("nested too deeply") from None
    except ValueError as exc:
        raise InvalidJSONError(str(exc)) from None
    if (("\\ud" in data or "\\uD" in data
            or (not data.isascii() and _RAW_SURROGATE.search(data) is not None))
            and _has_lone_surrogate(document)):
        # Python reads "\ud800" alone as a lone surrogate, which no UTF-8 frame can carry
        # back out; refuse it here rather than fail later when something echoes it.
        raise _surrogate_error(document, limits or FieldLimits())
    frame = _frame_from_document(document)
    if limits is not None:
        check_fields(frame, limits)
    return frame


def _check_text_size(data: str, max_size: int) -> None:
    # A character is 1 to 4 UTF-8 bytes: encode only when the length alone cannot decide.
    # Far over the limit, the character count is reported as a lower bound instead.
    size = len(data)
    if size <= max_size < size * 4:
        size = len(data.encode(errors="surrogatepass"))
    if size > max_size:
        raise FrameTooLargeError(size, max_size)


def _has_lone_surrogate(document: object) -> bool:
    try:
        ENCODER.encode(document).encode()
    except UnicodeEncodeError:
        return True
    except RecursionError:
        # What the decoder could nest, the encoder may not, deeper in a caller's stack:
        # the frame is refused either way (as nested too deeply, by _surrogate_error).
        return True
    return False


def _surrogate_error(document: object, limits: FieldLimits) -> InvalidJSONError:
    """The error for a document holding a lone surrogate, answerable when its header is clean."""
    detail = "a \\u escape is an unpaired UTF-16 surrogate"
    if not (isinstance(document, list) and len(document) == 5):
        return InvalidJSONError(detail)
    join_ref, ref, topic = (
        value if isinstance(value, str) and not _has_lone_surrogate(value)
        and _field_problem(value, bound, empty_ok=name != "topic") is None else None
        for name, value, bound in zip(("join_ref", "ref", "topic"), document[:3],
                                      (limits.ref, limits.ref, limits.topic), strict=True)
    )
    return InvalidJSONError(detail, join_ref=join_ref, ref=ref, topic=topic)


def check_fields(frame: Frame, limits: FieldLimits) -> None:
    """Check ``frame``'s header fields against ``limits`` (see the module docstring).

    Raises:
        FrameFieldError: the first field that breaks them, naming it and the bound.
    """
    join_ref, ref, topic, event = frame.join_ref, frame.ref, frame.topic, frame.event
    # The common case in a few C calls: ASCII, so characters are bytes, and printable ASCII
    # holds no control character.
    text = f"{join_ref or ''}{ref or ''}{topic}{event}"
    if (text.isascii() and text.isprintable() and 0 < len(topic) <= limits.topic
            and 0 < len(event) <= limits.event
            and (join_ref is None or len(join_ref) <= limits.ref)
            and (ref is None or len(ref) <= limits.ref)):
        return
    ref_ok = _field_problem(frame.ref, limits.ref, empty_ok=True) is None
    topic_ok = _field_problem(frame.topic, limits.topic, empty_ok=False) is None
    for name, value, bound, empty_ok in (
        ("join_ref", frame.join_ref, limits.ref, True),
        ("ref", frame.ref, limits.ref, True),
        ("topic", frame.topic, limits.topic, False),
        ("event", frame.event, limits.event, False),
    ):
        problem = _field_problem(value, bound, empty_ok=empty_ok)
        if problem is not None:
            join_ok = _field_problem(frame.join_ref, limits.ref, empty_ok=True) is None
            raise FrameFieldError(
                f"frame {name} {problem}",
                join_ref=frame.join_ref if join_ok else None,
                ref=frame.ref if ref_ok else None,
                topic=frame.topic if topic_ok else None,
            )


def _field_problem(value: str | None, bound: int, *, empty_ok: bool) -> str | None:
    """What is wrong with one header field, or None."""
    if value is None:
        return None
    size = len(value)
    # A character is 1 to 4 UTF-8 bytes: encode only when the length alone cannot decide.
    if size <= bound < size * 4 and not value.isascii():
        size = len(value.encode(errors="surrogatepass"))
    if size > bound:
        return f"is {size} bytes; at most {bound} are allowed: use a shorter one"
    if not value and not empty_ok:
        return "is empty; it must name something"
    if _CONTROL.search(value) is not None:
        return "holds a control character; use printable characters only"
    return None


def _frame_from_document(document: object) -> Frame:
    if not isinstance(document, list):
        raise FrameShapeError(
            "a frame must be a JSON array [join_ref, ref, topic, event, payload], "
            f"got a JSON {_json_type(document)}"
        )
    if len(document) != 5:
        raise FrameShapeError(
            "a frame must have exactly 5 elements [join_ref, ref, topic, event, payload], "
            f"got {len(document)}"
        )
    join_ref, ref, topic, event, payload = document
    if (
        isinstance(topic, str)
        and isinstance(event, str)
        and isinstance(payload, dict)
        and (join_ref is None or isinstance(join_ref, str))
        and (ref is None or isinstance(ref, str))
    ):
        return Frame(join_ref, ref, topic, event, payload)
    raise _element_error(join_ref, ref, topic, event, payload)


def _element_error(
    join_ref: object, ref: object, topic: object, event: object, payload: object
) -> FrameShapeError:
    """The error for the first element of the wrong type, keeping what could be read."""
    if join_ref is not None and not isinstance(join_ref, str):
        name, expected, value = "join_ref", "a string or null", join_ref
    elif ref is not None and not isinstance(ref, str):
        name, expected, value = "ref", "a string or null", ref
    elif not isinstance(topic, str):
        name, expected, value = "topic", "a string", topic
    elif not isinstance(event, str):
        name, expected, value = "event", "a string", event
    else:
        name, expected, value = "payload", "a JSON object", payload
    return FrameShapeError(
        f"frame element {name} must be {expected}, got a JSON {_json_type(value)}",
        join_ref=join_ref if isinstance(join_ref, str) else None,
        ref=ref if isinstance(ref, str) else None,
        topic=topic if isinstance(topic, str) else None,
    )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def decode_binary(
    data: bytes, *, max_size: int | None = None, limits: FieldLimits | None = None
) -> Frame:
    """Decode a binary push from a client: ``[0][len jr][len ref][len topic][len event]...``.

    The frame's payload is the raw bytes after the header.

    Raises:
        FrameTooLargeError: ``data`` is over ``max_size`` bytes.
        BinaryFrameError: not a kind-0 push, a truncated header, or a header field that is
            not UTF-8.
        FrameFieldError: a header field breaks ``limits``.
    """
    if max_size is not None and len(data) > max_size:
        raise FrameTooLargeError(len(data), max_size)
    if len(data) < _CLIENT_PUSH_HEADER:
        raise BinaryFrameError(
            f"binary frame of {len(data)} bytes is shorter than the 5-byte V2 push header"
        )
    if data[0] != KIND_PUSH:
        raise BinaryFrameError(
            f"binary frame kind {data[0]} is not a push (0); clients may only send pushes"
        )
    sizes = data[1:_CLIENT_PUSH_HEADER]
    end = _CLIENT_PUSH_HEADER + sum(sizes)
    if len(data) < end:
        raise BinaryFrameError(
            f"binary frame of {len(data)} bytes is shorter than its header says ({end} bytes)"
        )
    fields: list[str] = []
    offset = _CLIENT_PUSH_HEADER
    for name, size in zip(("join_ref", "ref", "topic", "event"), sizes, strict=True):
        fields.append(_utf8_field(data[offset:offset + size], name))
        offset += size
    join_ref, ref, topic, event = fields
    frame = Frame(join_ref or None, ref or None, topic, event, data[end:])
    if limits is not None:
        check_fields(frame, limits)
    return frame


def _utf8_field(raw: bytes, name: str) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise BinaryFrameError(f"binary frame field {name} is not UTF-8: {raw!r:.60}") from None


# --- encoding ------------------------------------------------------------------------------


def encode_text(frame: Frame) -> str:
    """Encode ``frame`` as a JSON text frame; its payload must be a dict.

    Raises:
        EncodeError: the payload is not a dict, or holds a value JSON cannot carry.
    """
    _require_object(frame.payload, frame.event)
    return _dump([frame.join_ref, frame.ref, frame.topic, frame.event, frame.payload])


def encode_reply(
    join_ref: str | None, ref: str | None, topic: str, status: str, response: Payload
) -> str | bytes:
    """A ``phx_reply``: text ``{"status", "response"}``, or a kind-1 binary frame for bytes."""
    if isinstance(response, bytes):
        return b"".join((
            _header(KIND_REPLY, join_ref or "", ref or "", topic, status, names=_REPLY_FIELDS),
            response,
        ))
    _require_object(response, REPLY_EVENT)
    body = {"status": status, "response": response}
    return _dump([join_ref, ref, topic, REPLY_EVENT, body])


def encode_push(join_ref: str | None, topic: str, event: str, payload: Payload) -> str | bytes:
    """A server push to one channel: ``[join_ref, null, topic, event, payload]``, or kind 0."""
    if isinstance(payload, bytes):
        return b"".join((
            _header(KIND_PUSH, join_ref or "", topic, event, names=_PUSH_FIELDS),
            payload,
        ))
    _require_object(payload, event)
    return _dump([join_ref, None, topic, event, payload])


def encode_broadcast(topic: str, event: str, payload: Payload) -> str | bytes:
    """A broadcast: ``[null, null, topic, event, payload]``, or a kind-2 binary frame.

    Encode a broadcast once and hand the same frame to every subscribed socket.
    """
    if isinstance(payload, bytes):
        return b"".join((
            _header(KIND_BROADCAST, topic, event, names=_BROADCAST_FIELDS),
            payload,
        ))
    _require_object(payload, event)
    return _dump([None, None, topic, event, payload])


_REPLY_FIELDS: Final = ("join_ref", "ref", "topic", "status")
_PUSH_FIELDS: Final = ("join_ref", "topic", "event")
_BROADCAST_FIELDS: Final = ("topic", "event")


def _header(kind: int, *values: str, names: tuple[str, ...]) -> bytes:
    encoded = [value.encode() for value in values]
    for name, raw in zip(names, encoded, strict=True):
        if len(raw) > MAX_HEADER_FIELD:
            raise EncodeError(
                f"binary frame field {name} is {len(raw)} bytes; the V2 binary header allows "
                f"at most {MAX_HEADER_FIELD}: shorten it or send a JSON payload instead"
            )
    return bytes([kind, *(len(raw) for raw in encoded)]) + b"".join(encoded)


def _require_object(payload: object, event: str) -> None:
    if not isinstance(payload, dict):
        raise EncodeError(
            f"payload of {event!r} must be a dict (a JSON object) or bytes, "
            f"got {type(payload).__name__}"
        )


def _dump(document: list[Any]) -> str:
    try:
        return dumps(document)
    except (TypeError, ValueError, RecursionError) as exc:
        raise EncodeError(f"frame cannot be encoded as JSON: {exc}") from exc
