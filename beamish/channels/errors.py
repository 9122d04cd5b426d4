"""Every exception ``beamish.channels`` raises.

Frame errors describe what a client sent wrong.
:class:`~beamish.channels.socket_state.PhoenixSocket` never lets them escape: it answers an
answerable one with an error reply and closes the connection for the rest (see
:attr:`FrameError.close_code`). The codec functions raise them for callers that decode frames
themselves (tests, clients, the benchmark)::

    ChannelsError
    ├── FrameError                  a client frame cannot be decoded
    │   ├── FrameTooLargeError      the frame is over the socket's max_frame_size (close 1009)
    │   ├── InvalidJSONError        a text frame is not JSON (close 1008)
    │   ├── FrameShapeError         not [join_ref, ref, topic, event, payload] with the right
    │   │                           element types (error reply when ref and topic are readable)
    │   ├── FrameFieldError         a join_ref, ref, topic or event over its length bound, empty
    │   │                           or holding a control character (error reply when ref and
    │   │                           topic are within bounds, else close 1008)
    │   └── BinaryFrameError        a binary frame does not follow the V2 binary layout
    ├── EncodeError                 the server cannot encode a frame it was asked to send
    │                               (also a ValueError: a bug in the caller, not the client)
    └── HandshakeError              the WebSocket upgrade must be refused with HTTP 403
        ├── AuthTokenError          the bearer subprotocol does not carry a readable token
        └── UnsupportedVersionError the client asked for a protocol version other than V2

A bad constructor option raises the runtime's
:class:`~beamish.runtime.errors.InvalidOptionError` (a ``ValueError`` naming the option),
re-exported here: one class for every option beamish checks, so one ``except`` catches them.

Errors say what was wrong and what to do about it.
"""

from __future__ import annotations

from beamish.channels.close_codes import CloseCode
from beamish.runtime.errors import InvalidOptionError as InvalidOptionError

_FRAME_FORM = "[join_ref, ref, topic, event, payload]"


class ChannelsError(Exception):
    """Base class of every error raised by ``beamish.channels``."""


# --- frames from the client ---------------------------------------------------------------


class FrameError(ChannelsError):
    """A frame from the client could not be decoded.

    Attributes:
        join_ref: The frame's join_ref when it could be read, else None.
        ref: The frame's ref when it could be read, else None.
        topic: The frame's topic when it could be read, else None.
        close_code: The WebSocket close code to use when the error cannot be answered.
    """

    close_code: CloseCode = CloseCode.POLICY_VIOLATION

    def __init__(
        self,
        message: str,
        *,
        join_ref: str | None = None,
        ref: str | None = None,
        topic: str | None = None,
    ) -> None:
        self.join_ref = join_ref
        self.ref = ref
        self.topic = topic
        super().__init__(message)

    @property
    def answerable(self) -> bool:
        """Whether the client can match an error reply to this frame (ref and topic read)."""
        return self.ref is not None and self.topic is not None


class FrameTooLargeError(FrameError):
    """The frame is larger than the configured maximum; it was not parsed.

    Attributes:
        size: The frame's size in bytes (for a text frame far over the limit, its length in
            characters: a lower bound, to avoid encoding a huge string just to measure it).
        max_size: The limit it broke.
    """

    close_code = CloseCode.MESSAGE_TOO_BIG

    def __init__(self, size: int, max_size: int) -> None:
        self.size = size
        self.max_size = max_size
        super().__init__(
            f"frame of {size} bytes exceeds the {max_size}-byte limit; "
            "send smaller messages or split the payload"
        )


class InvalidJSONError(FrameError):
    """A text frame is not a JSON document (or holds a string UTF-8 cannot carry).

    ``join_ref``, ``ref`` and ``topic`` are set when the frame's header could be read all the
    same (a lone surrogate deep in its payload): the socket then answers with an error reply.
    """

    def __init__(
        self,
        detail: str,
        *,
        join_ref: str | None = None,
        ref: str | None = None,
        topic: str | None = None,
    ) -> None:
        super().__init__(
            f"text frame is not valid JSON ({detail}); send {_FRAME_FORM} as JSON",
            join_ref=join_ref, ref=ref, topic=topic,
        )


class FrameShapeError(FrameError):
    """The JSON is not a five-element array with the element types Phoenix V2 uses."""


class FrameFieldError(FrameError):
    """A header field (join_ref, ref, topic, event) is too long, empty or not printable.

    The bounds are the socket's options (:class:`~beamish.channels.frames.FieldLimits`): a
    client-chosen string is kept (as a channel's topic, in maps keyed by it) only once it is
    known to be small. The error carries the ref and topic only when they are within bounds,
    so an answer never echoes an oversized field.
    """


class BinaryFrameError(FrameError):
    """A binary frame is not a V2 binary push ``[0][len jr][len ref][len topic][len event]...``."""


# --- frames to the client -----------------------------------------------------------------


class EncodeError(ChannelsError, ValueError):
    """A frame the server was asked to send cannot be encoded.

    This is a bug in the calling code (a payload that is not a dict or bytes, a value JSON
    cannot carry, a binary header field over 255 bytes), never something a client caused.
    """


# --- the WebSocket upgrade ----------------------------------------------------------------


class HandshakeError(ChannelsError):
    """The upgrade request must be refused; Phoenix answers such requests with HTTP 403."""


class AuthTokenError(HandshakeError):
    """The ``base64url.bearer.phx.`` subprotocol does not carry a decodable token."""


class UnsupportedVersionError(HandshakeError):
    """The ``vsn`` query parameter asks for a protocol other than Phoenix V2 (2.0.x)."""

    def __init__(self, vsn: str) -> None:
        self.vsn = vsn
        super().__init__(
            f"protocol version {vsn!r} is not supported: this server speaks Phoenix Channels "
            "V2 only; connect with vsn=2.0.0 (the phoenix JS client >= 1.4 sends it)"
        )
